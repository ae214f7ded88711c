"""RAID 7 (``raid-levels.md`` §5): RAID 4 placement behind a journaled write-back cache.

Layout: RAID 4's placement, the failure predicate against the codec oracle,
options.  Pool (§0.5 template after ``flush()``, RAM devices behind
FaultyDevice): every failure set for N = 3..5 (N ≤ 8 with
DWCORE_SLOW_TESTS=1), degraded writes, rebuild equal to a never-failed twin,
scrub and read repair; then the cache: a power cut with a dirty cache keeps
every acknowledged write (journal replay), also with a device failed before
or after the cut; a torn journal tail is ignored; ``volatile`` mode is
opt-in, warns, reports itself and loses at most the dirty set; destaging
issues no device reads (full-stripe writes, no pre-reads), continues
degraded after a device failure with a dirty cache, honours ``cache_bytes``
and ``max_dirty_s``.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import numpy as np
import pytest
from levels7_pool import SLOW, Built, data_area_bytes, failure_sets, overwrite_some, seed_of
from levels9_pool import check_set, crash
from pool_helpers import Image, KiB, MiB, Ref, check_all, fill, quiet_close

from dwcore import raid
from dwcore.errors import DataLossError, InvalidArgumentError
from dwcore.pool import Pool
from dwcore.pool.writeback import JOURNAL_NAME, Raid7Pool, VolatileCacheWarning

pytestmark = pytest.mark.filterwarnings(
    "ignore::dwcore.pool.PoolDegradedWarning", "ignore::dwcore.pool.writeback.VolatileCacheWarning"
)

CHUNK = 8 * KiB


def build(tmp_path: Any, n: int, name: str = "pool", **opts: Any) -> Built:
    opts.setdefault("max_dirty_s", 600)
    return Built(tmp_path, "7", n, opts, count=36, chunk=CHUNK, name=name)


def r7(pool: Pool) -> Raid7Pool:
    """The pool as the RAID 7 pool it is."""
    assert isinstance(pool, Raid7Pool)
    return pool


# -- layout ---------------------------------------------------------------------------------


def test_layout_is_raid4_with_cache_options() -> None:
    for n in (3, 5, 8):
        r7 = raid.layout("raid7", n, CHUNK)
        r4 = raid.layout("4", n, CHUNK)
        for s in range(2 * n):
            assert r7.stripe(s) == r4.stripe(s)
        assert r7.fault_tolerance == 1 and r7.min_devices == 3
        assert (
            r7.capacity(8 * MiB) == r4.capacity(8 * MiB) == (n - 1) * r4.usable_device_size(8 * MiB)
        )
        shapes = [r7.stripe(s) for s in range(r7.period)]
        for size in range(n + 1):
            for f in itertools.combinations(range(n), size):
                assert r7.survives(f) == all(sm.recoverable(f) for sm in shapes)
    assert raid.layout("7", 3, CHUNK).options == {
        "cache_bytes": 64 << 20,
        "cache_mode": "journaled",
        "max_dirty_s": 5.0,
    }
    bad: list[tuple[dict[str, Any], str]] = [
        ({"cache_mode": "lazy"}, "journaled"),
        ({"cache_bytes": 10}, "cache_bytes"),
        ({"max_dirty_s": 0}, "max_dirty_s"),
    ]
    for opts, msg in bad:
        with pytest.raises(InvalidArgumentError, match=msg):
            raid.layout("7", 4, CHUNK, **opts)
    with pytest.raises(InvalidArgumentError, match="at least 3"):
        raid.layout("7", 2, CHUNK)


# -- §0.5 template (after flush) -------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4, 5] + ([6, 8] if SLOW else []))
def test_failure_matrix(tmp_path: Any, n: int) -> None:
    b = build(tmp_path, n)
    assert isinstance(b.pool, Raid7Pool)
    b.pool.close()
    image = Image.save(b.rig)
    rng = np.random.default_rng(seed_of("r7matrix", n))
    problems: list[str] = []
    for failed in failure_sets(n, n):
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(failed)
        try:
            problems += check_set(b, pool, failed, rng)
        finally:
            quiet_close(pool)
            b.rig.heal()
    assert not problems, "\n".join(problems[:15])


def test_degraded_write_rebuild_twin_and_scrub(tmp_path: Any) -> None:
    a = build(tmp_path / "a", 5)
    twin = build(tmp_path / "t", 5)
    rng = np.random.default_rng(3)
    a.rig.fail([1])
    a.pool.fail_device(1)
    extra = rng.bytes(70 * KiB)
    e1 = a.pool.write(extra)
    e2 = twin.pool.write(extra)
    assert (e1.first_row, e1.rows) == (e2.first_row, e2.rows)
    a.ref.add(e1, extra)
    r7(a.pool).flush()
    r7(twin.pool).flush()
    check_all(a.pool, a.ref, rng, 50)
    a.pool.replace_device(1, a.rig.replace_inner(1))
    a.pool.rebuild()
    check_all(a.pool, a.ref)
    assert a.pool.scrub(repair=False).mismatches == []
    for i, (x, y) in enumerate(zip(a.rig.images(), twin.rig.images(), strict=True)):
        assert data_area_bytes(x, a.pool) == data_area_bytes(y, twin.pool), f"device {i}"
    a.rig.fail([4])  # the dedicated parity device, a different failure
    check_all(a.pool, a.ref, rng, 50)
    a.rig.heal()
    overwrite_some(a.pool, a.ref, rng)
    r7(a.pool).flush()
    # silent corruption on a data device and on the parity device: scrub finds and repairs
    ext, data = max(a.ref, key=lambda x: len(x[1]))
    _d, where = next(iter(a.blocks(ext)))
    dev, off = where[0]
    a.rig.inners[dev].pwrite(off + 9, b"\xa5" * 40)
    rep = a.pool.scrub(repair=True)
    assert [m.device for m in rep.mismatches] == [dev] and rep.mismatches[0].repaired
    lay = a.layout
    pd = lay.n_devices - 1
    a.rig.inners[pd].pwrite(off + 9, b"\x5a" * 40)
    rep = a.pool.scrub(repair=True)
    assert [m.device for m in rep.mismatches] == [pd] and rep.mismatches[0].repaired
    a.rig.inners[dev].pwrite(off + 1, b"\x01" * 8)
    assert a.pool.read(ext) == data  # found by read, repaired
    assert a.pool.scrub(repair=False).mismatches == []


# -- the cache ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_before", [None, 0, 3])
def test_power_cut_with_dirty_cache_keeps_acknowledged_writes(
    tmp_path: Any, fail_before: int | None
) -> None:
    b = build(tmp_path, 4)
    rng = np.random.default_rng(seed_of("r7cut", fail_before))
    if fail_before is not None:
        b.rig.fail([fail_before])
        b.pool.fail_device(fail_before)
    b.pool.sync()
    freed = list(b.ref)[:4]
    for ext, _ in freed:
        b.pool.free(ext)
        b.ref.remove(ext)
    dirty = fill(b.pool, rng, [int(x) for x in rng.integers(1, 60 * KiB, 25)])
    st = r7(b.pool).cache_status()
    assert st["dirty_extents"] == 25 and st["journal_bytes"] > st["dirty_bytes"]
    # some destaged, the rest still dirty, then the power goes
    r7(b.pool)._destage_until(st["dirty_bytes"] // 2)
    assert 0 < r7(b.pool).cache_status()["dirty_extents"] < 25
    crash(b, 11)
    pool = b.reopen()
    assert isinstance(pool, Raid7Pool)
    assert r7(pool).cache_status()["replayed_extents"] == 25 + 4 - 4  # the record of each write
    check_all(pool, b.ref)
    check_all(pool, dirty)
    assert pool.scrub(repair=False).mismatches == []
    other = 1 if fail_before is None else fail_before
    b.rig.fail([other])
    check_all(pool, dirty)
    check_all(pool, b.ref)
    b.rig.heal()
    # the freed extents' rows came back allocated at most (a leak reconcile frees)
    live = [e for e, _ in b.ref] + [e for e, _ in dirty]
    pool.reconcile(live)
    check_all(pool, dirty)
    quiet_close(pool)


def test_torn_journal_tail_is_ignored(tmp_path: Any) -> None:
    b = build(tmp_path, 3)
    rng = np.random.default_rng(5)
    acked = fill(b.pool, rng, [3000, 20000, 9000])
    crash(b, 1)
    jpath = os.path.join(b.path, JOURNAL_NAME)
    size = os.path.getsize(jpath)
    with open(jpath, "ab") as f:  # a record whose fsync never returned: cut short
        f.write(b"J7RC" + bytes(20))
    pool = b.reopen()
    assert r7(pool).cache_status()["replayed_extents"] == 3
    check_all(pool, acked)
    check_all(pool, b.ref)
    assert os.path.getsize(jpath) < size  # emptied after the replay
    quiet_close(pool)


def test_volatile_mode_is_opt_in_warns_and_loses_at_most_the_dirty_set(tmp_path: Any) -> None:
    with pytest.warns(VolatileCacheWarning, match="volatile"):
        b = build(tmp_path, 4, cache_mode="volatile")
    st = r7(b.pool).cache_status()
    assert st["volatile"] and st["cache_mode"] == "volatile"
    assert not os.path.exists(os.path.join(b.path, JOURNAL_NAME))
    rng = np.random.default_rng(9)
    dirty = fill(b.pool, rng, [int(x) for x in rng.integers(1, 40 * KiB, 12)])
    assert r7(b.pool).cache_status()["dirty_extents"] == 12
    check_all(b.pool, dirty)  # read hits from the cache
    crash(b, 3)
    with pytest.warns(VolatileCacheWarning):
        pool = Pool.open(b.path, devices=b.rig.rewrap())
    check_all(pool, b.ref)  # flushed before the cut: all there
    lost = 0
    for ext, data in dirty:  # never destaged: lost, and never returned wrong
        try:
            got = pool.read(ext)
        except DataLossError:
            lost += 1
            continue
        assert got == data
    assert lost == len(dirty)
    quiet_close(pool)


def test_destage_issues_no_reads_and_continues_degraded(tmp_path: Any) -> None:
    b = build(tmp_path, 5)
    rng = np.random.default_rng(13)
    for w in b.rig.wrappers:
        w.stats.reads = 0
        w.stats.bytes_written = 0
    dirty = fill(b.pool, rng, [4 * CHUNK * 3, 100 * KiB, 4097, 1])
    r7(b.pool).flush()
    assert all(w.stats.reads == 0 for w in b.rig.wrappers), "destage read from a device"
    assert all(w.stats.bytes_written > 0 for w in b.rig.wrappers)
    # a device fails while the cache is dirty: destaging continues degraded, nothing lost
    more = fill(b.pool, rng, [int(x) for x in rng.integers(1, 50 * KiB, 10)])
    b.rig.fail([2])
    r7(b.pool).flush()
    assert b.pool.status().failed == (2,)
    check_all(b.pool, dirty)
    check_all(b.pool, more)
    check_all(b.pool, b.ref)
    assert r7(b.pool).cache_status()["dirty_extents"] == 0
    # a second failure with a dirty cache: more than RAID 7 tolerates, the write stays dirty
    last = fill(b.pool, rng, [5000])
    b.rig.fail([0])
    with pytest.raises(DataLossError):
        r7(b.pool).flush()
    assert r7(b.pool).cache_status()["dirty_extents"] == 1
    check_all(b.pool, last)  # still served from the cache


def test_cache_bytes_and_max_dirty_age(tmp_path: Any) -> None:
    b = build(tmp_path, 3, cache_bytes=64 * KiB, max_dirty_s=0.2)
    rng = np.random.default_rng(17)
    ref = Ref()
    for _ in range(10):
        fill(b.pool, rng, [30 * KiB], ref)
        assert r7(b.pool).cache_status()["dirty_bytes"] <= 64 * KiB
    deadline = time.monotonic() + 10
    while r7(b.pool).cache_status()["dirty_extents"] and time.monotonic() < deadline:
        time.sleep(0.05)
    st = r7(b.pool).cache_status()
    assert st["dirty_extents"] == 0 and st["destaged_extents"] >= 10
    check_all(b.pool, ref)
    check_all(b.pool, b.ref)
