"""RAID 7 (``raid-levels.md`` §5): RAID 4 placement behind a journaled write-back cache.

Layout: RAID 4's placement, the failure predicate against the codec oracle,
options.  Pool (§0.5 template after ``flush()``, RAM devices behind
FaultyDevice): every failure set for N = 3..6 (N = 8 too with
DWCORE_SLOW_TESTS=1: ~20 s), degraded writes, rebuild equal to a never-failed twin,
scrub (exact stripes, a data and a parity block) and read repair; then the
cache: a power cut with a dirty cache keeps every acknowledged write (journal
replay), also with a device failed before or after the cut — and with the
journal on a fault-injecting device, a cut that drops every unsynced write
of the members and of the journal; a torn journal tail is ignored; a full
journal checkpoints or writes through; the journal device is checked; a
version 1 journal is replayed; ``volatile`` mode is opt-in, warns, reports
itself (also in ``status()``) and loses at most the dirty set; destaging
runs on one I/O worker per device, lets writes into the cache while a device
is slow, and ``flush`` drains and syncs every queue; destaging issues no
device reads (full-stripe writes, no pre-reads), continues degraded after a
device failure with a dirty cache, honours ``cache_bytes`` and
``max_dirty_s``; scrub destages the cached rows it reaches, and scrub and
rebuild run correctly while writers overwrite extents.  Journal failure: a
journal whose append, sync or emptying fails leaves no acknowledged write
lost (the cache destaged and synced), the pool writes through, warns and
reports it, also across a power cut right after, and never replays that
journal; ``replace_journal`` resumes journaled write-back (a power cut with a
dirty cache then replays); opening without the journal writes through after a
clean close and is refused after a crash with dirty entries (forced: warns,
the journal retired).  ``journal_on="members"``: the journal mirrored on two
members survives a power cut, also with one of them failed or replaced.
Journal format 3 (records name their journal): records an earlier journal
left on the same space are never replayed — after ``replace_journal`` (on
the members, or a journal device given again), in a new mirrored pool on
reused members — and a member that comes back with an earlier journal's
header does not hide the current journal; a version 2 journal (records
without a journal id) is replayed by its own rule and upgraded.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import threading
import time
import uuid
from typing import Any

import numpy as np
import pytest
from levels7_pool import (
    BLOCK,
    DATA_OFFSET,
    SLOW,
    Built,
    data_area_bytes,
    failure_sets,
    member_stripes,
    overwrite_some,
    seed_of,
)
from levels9_pool import check_set, crash
from pool_helpers import Image, KiB, MiB, Ref, Rig, check_all, fill, quiet_close

from dwcore import raid
from dwcore.checksum import crc32c
from dwcore.devices import DeviceIOError, FaultyDevice, RamDevice
from dwcore.errors import DataLossError, InvalidArgumentError, UnsupportedFormatError
from dwcore.pool import Pool, PoolDegradedWarning, PoolStatus
from dwcore.pool.writeback import (
    JOURNAL_NAME,
    JournalLostWarning,
    JournalMissingError,
    Raid7Pool,
    Raid7Status,
    VolatileCacheWarning,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::dwcore.pool.PoolDegradedWarning", "ignore::dwcore.pool.writeback.VolatileCacheWarning"
)

CHUNK = 8 * KiB


def build(
    tmp_path: Any, n: int, name: str = "pool", journal: FaultyDevice | None = None, **opts: Any
) -> Built:
    """A filled, flushed RAID 7 pool; ``journal``: its journal on that device."""
    opts.setdefault("max_dirty_s", 600)
    kw = {} if journal is None else {"journal": journal}
    return Built(
        tmp_path, "7", n, opts, count=36, chunk=CHUNK, name=name, pool_class=Raid7Pool, create_kw=kw
    )


def journal_device(size: int = 4 * MiB) -> FaultyDevice:
    """A fault-injecting journal device over RAM (its bytes outlive the wrapper)."""
    return FaultyDevice(RamDevice(size, name="r7-journal"), close_inner=False)


def reopen(b: Built, jw: FaultyDevice | None = None) -> Raid7Pool:
    """Open ``b`` again over fresh member wrappers (and its healed journal device)."""
    if jw is not None:
        jw.heal()
    b.pool = Raid7Pool.open(b.path, devices=b.rig.rewrap(), journal=jw)
    return r7(b.pool)


def cut_power(b: Built, jw: FaultyDevice, keep: Any = "none", seed: int = 0) -> None:
    """Freeze the members and the journal device, cut power on all of them (``keep``:
    which unsynced writes survive), drop the pool as a crash would."""
    every = [*b.rig.wrappers, jw]
    for w in every:
        w.fail_now("any")
    for i, w in enumerate(every):
        w.power_cut(seed=seed_of("r7cut-all", seed, i), keep=keep)
    b.pool.close(sync=False)


def journal_record(b: Any) -> dict[str, Any]:
    """The journal state record of ``b``'s manifest."""
    with open(os.path.join(b.path, "pool.json")) as f:
        rec: dict[str, Any] = json.load(f)["extra"]["raid7_journal"]
    return rec


def forget_journal_record(b: Built) -> None:
    """Make ``b``'s manifest one of a dwcore from before the journal state record."""
    path = os.path.join(b.path, "pool.json")
    with open(path) as f:
        raw = json.load(f)
    raw["extra"].pop("raid7_journal", None)
    with open(path, "w") as f:
        json.dump(raw, f)


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


@pytest.mark.parametrize("n", [3, 4, 5, 6] + ([8] if SLOW else []))
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
    twin = build(tmp_path / "t", 5)  # the same writes, never failed
    rng = np.random.default_rng(3)
    a.rig.fail([1])
    a.pool.fail_device(1)
    # §0.5 item 3: overwrite ~10% while device 1 is failed (the twin does the same)
    overwrite_some(a.pool, a.ref, np.random.default_rng(31))
    overwrite_some(twin.pool, twin.ref, np.random.default_rng(31))
    assert [(e.first_row, e.rows) for e, _ in a.ref] == [(e.first_row, e.rows) for e, _ in twin.ref]
    extra = rng.bytes(70 * KiB)
    e1 = a.pool.write(extra)
    e2 = twin.pool.write(extra)
    assert (e1.first_row, e1.rows) == (e2.first_row, e2.rows)
    a.ref.add(e1, extra)
    check_all(a.pool, a.ref, rng, 20)  # from the cache
    r7(a.pool).flush()
    r7(twin.pool).flush()
    assert a.pool.status().failed == (1,)
    check_all(a.pool, a.ref, rng, 50)  # degraded reads of what was written degraded
    # §0.5 item 4: rebuild onto a blank device
    a.pool.replace_device(1, a.rig.replace_inner(1))
    a.pool.rebuild()
    check_all(a.pool, a.ref)
    assert a.pool.scrub(repair=False).mismatches == []
    # freed rows keep stale bytes on the twin and are blank on the replacement: compare the
    # rows of live extents (RAID 4 is flat: row g at g·B) and their checksum entries
    live = sorted({r for e, _ in a.ref for r in range(e.first_row, e.first_row + e.rows)})
    for i, (x, y) in enumerate(zip(a.rig.images(), twin.rig.images(), strict=True)):
        dx, dy = data_area_bytes(x, a.pool), data_area_bytes(y, twin.pool)
        table = a.pool.checksum_table_offset
        for r in live:
            blk = slice(r * BLOCK, (r + 1) * BLOCK)
            crc = slice(table + 4 * r, table + 4 * r + 4)
            assert dx[blk] == dy[blk] and dx[crc] == dy[crc], f"device {i} row {r}"
    a.rig.fail([4])  # the dedicated parity device, a different failure
    check_all(a.pool, a.ref, rng, 50)
    a.rig.heal()
    overwrite_some(a.pool, a.ref, rng)
    r7(a.pool).flush()
    # §0.5 item 5: silent corruption of a data block and, in another stripe, of a parity
    # block, in one scrub run: exactly those stripes and devices, both repaired
    lay = a.layout
    pd = lay.n_devices - 1
    ext, data = max(a.ref, key=lambda x: len(x[1]))
    _d, where = next(iter(a.blocks(ext)))
    dev, off = where[0]
    s_data = member_stripes(lay, dev, [off])
    p_off = next(
        w[0][1]
        for e, _ in a.ref
        for _d2, w in a.blocks(e)
        if member_stripes(lay, pd, [w[0][1]]).isdisjoint(s_data)
    )
    s_parity = member_stripes(lay, pd, [p_off])
    assert len(s_data) == len(s_parity) == 1 and dev != pd
    assert lay.member_at(pd, p_off - DATA_OFFSET)[1].role.data_index is None  # parity
    a.rig.inners[dev].pwrite(off + 9, b"\xa5" * 40)
    a.rig.inners[pd].pwrite(p_off + 9, b"\x5a" * 40)
    rep = a.pool.scrub(repair=True)
    found = sorted((m.stripe, m.device) for m in rep.mismatches)
    assert found == sorted([(*s_data, dev), (*s_parity, pd)]), rep.mismatches
    assert all(m.repaired and m.kind == "checksum" for m in rep.mismatches)
    assert a.pool.scrub(repair=False).mismatches == []
    check_all(a.pool, a.ref)
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


@pytest.mark.parametrize("fail_before", [None, 3])
def test_power_cut_drops_unsynced_journal_and_member_writes(
    tmp_path: Any, fail_before: int | None
) -> None:
    """The journal on a fault-injecting device: a power cut that drops every write not
    yet synced, on every member and on the journal, loses no acknowledged write (the
    journal must be synced before ``write`` returns)."""
    jw = journal_device()
    b = build(tmp_path, 4, journal=jw)
    rng = np.random.default_rng(seed_of("r7cut-all", fail_before))
    if fail_before is not None:
        b.rig.fail([fail_before])
        b.pool.fail_device(fail_before)
    acked = Ref()
    for size in [int(x) for x in rng.integers(1, 60 * KiB, 20)]:
        data = rng.bytes(size)
        acked.add(b.pool.write(data), data)
        assert jw.unsynced_writes == 0, "write acknowledged before its journal record was synced"
    st = r7(b.pool).cache_status()
    assert st["journal"] == jw.path and st["journal_bytes"] > st["dirty_bytes"]
    r7(b.pool)._destage_until(st["dirty_bytes"] // 2)  # some on the members, not synced
    assert 0 < r7(b.pool).cache_status()["dirty_extents"] < 20
    assert any(w.unsynced_writes for w in b.rig.wrappers)
    cut_power(b, jw, keep="none")
    pool = reopen(b, jw)
    assert pool.cache_status()["replayed_extents"] == 20
    check_all(pool, acked)
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    other = 1 if fail_before is None else fail_before
    b.rig.fail([other])
    check_all(pool, acked)
    b.rig.heal()
    quiet_close(pool)


class Killed(BaseException):
    """The process dies in the middle of a request (a power cut while it runs)."""


class DiesDuringWrite(FaultyDevice):
    """A journal device during whose ``countdown``-th write from now the power goes: that
    write is not done and the writer "dies" (:class:`Killed`)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, close_inner=False)
        self.countdown: int | None = None

    def _write(self, offset: int, view: memoryview) -> None:
        if self.countdown is not None:
            if self.countdown == 0:
                self.countdown = None
                raise Killed
            self.countdown -= 1
        super()._write(offset, view)


def test_torn_journal_tail_is_ignored(tmp_path: Any) -> None:
    """An append cut short by a power cut (never acknowledged) is ignored at replay;
    appends continue in its place."""
    jw = DiesDuringWrite(RamDevice(4 * MiB, name="r7-journal"))
    b = build(tmp_path, 3, journal=jw)
    rng = np.random.default_rng(5)
    acked = fill(b.pool, rng, [3000, 20000, 9000])
    jw.countdown = 1  # the record's header lands, the power goes before its data
    with pytest.raises(Killed):
        b.pool.write(rng.bytes(12000))
    assert jw.unsynced_writes == 1
    cut_power(b, jw, keep="all")  # the torn record stays on the journal device
    pool = reopen(b, jw)
    assert pool.cache_status()["replayed_extents"] == 3
    check_all(pool, acked)
    check_all(pool, b.ref)
    last = fill(pool, rng, [5000])
    assert pool.cache_status()["journal_appends"] == 1
    cut_power(b, jw, keep="none")
    pool = reopen(b, jw)
    assert pool.cache_status()["replayed_extents"] == 1
    check_all(pool, last)
    check_all(pool, acked)
    quiet_close(pool)


def test_full_journal_checkpoints_and_writes_through(tmp_path: Any) -> None:
    """A journal device too small for the writes: a full journal is emptied by a flush
    first, a write larger than the whole journal is destaged and synced before it is
    acknowledged; nothing acknowledged is lost by a power cut."""
    jw = journal_device(64 * KiB)
    b = build(tmp_path, 3, journal=jw)  # the build's writes already overflow it
    st = r7(b.pool).cache_status()
    assert st["write_through"] > 0 and st["journal_appends"] > 0
    rng = np.random.default_rng(23)
    acked = Ref()
    for size in [3000, 20000, 30000, 100 * KiB, 9000, 25000]:
        data = rng.bytes(size)
        acked.add(b.pool.write(data), data)
        assert jw.unsynced_writes == 0
        assert all(w.unsynced_writes == 0 for w in b.rig.wrappers) or size < 60 * KiB
    assert r7(b.pool).cache_status()["journal_bytes"] <= 64 * KiB
    cut_power(b, jw, keep="none")
    pool = reopen(b, jw)
    check_all(pool, acked)
    check_all(pool, b.ref)
    quiet_close(pool)


def test_journal_device_is_checked(tmp_path: Any) -> None:
    jw = journal_device(1 * MiB)
    b = build(tmp_path, 3, journal=jw)
    b.pool.close()
    foreign = journal_device(1 * MiB)  # another pool's journal: never replayed
    build(tmp_path, 3, name="foreign", journal=foreign).pool.close()
    for force in (False, True):
        with pytest.raises(InvalidArgumentError, match="not the RAID 7 journal"):
            Raid7Pool.open(
                b.path, devices=b.rig.rewrap(), journal=foreign, force_journal_loss=force
            )
    pool = reopen(b, jw)
    assert pool.cache_status()["journal"] == jw.path
    pool.close()
    other = build(tmp_path, 3, name="other")  # journal in its directory
    other.pool.close()
    with pytest.raises(InvalidArgumentError, match="without journal="):
        Raid7Pool.open(other.path, devices=other.rig.rewrap(), journal=journal_device())
    cases: list[tuple[FaultyDevice, dict[str, Any], str]] = [
        (jw, {}, "another pool"),  # holds b's journal
        (journal_device(4096), {}, "too small"),
        (journal_device(), {"cache_mode": "volatile"}, "volatile"),
    ]
    for bad, kw, msg in cases:
        path = tmp_path / f"new-{msg.replace(' ', '-')}"
        with pytest.raises(InvalidArgumentError, match=msg):
            Raid7Pool.create(path, "7", 3, 8 * MiB, chunk_size=CHUNK, journal=bad, **kw)
        assert not os.path.exists(path)  # refused before anything was written
    with pytest.raises(InvalidArgumentError, match="RAID 7"):
        Raid7Pool.create(tmp_path / "r5", "5", 3, 8 * MiB, chunk_size=CHUNK)
    members = [FaultyDevice(RamDevice(8 * MiB, name=f"m{i}")) for i in range(3)]
    with pytest.raises(InvalidArgumentError, match="also given as a member"):
        Raid7Pool.create(tmp_path / "same", "7", members, 8 * MiB, journal=members[0])


def test_version_1_journal_is_replayed_and_replaced(tmp_path: Any) -> None:
    b = build(tmp_path, 3)
    rng = np.random.default_rng(29)
    data = rng.bytes(30000)
    ext = b.pool.write(data)
    crash(b, 4)  # the members lose it; only the journal has it
    forget_journal_record(b)  # a pool of that dwcore: its manifest has no record
    # the same write as dwcore's version 1 journal file held it
    jpath = os.path.join(b.path, JOURNAL_NAME)
    head = struct.pack("<4sQQQII", b"J7RC", 1, ext.first_row, ext.rows, len(data), crc32c(data))
    with open(jpath, "wb") as f:
        f.write(b"DWRAID7J" + struct.pack("<I", 1) + head + crc32c(head).to_bytes(4, "little"))
        f.write(data)
    pool = r7(b.reopen())
    assert pool.cache_status()["replayed_extents"] == 1
    assert pool.read(ext) == data
    check_all(pool, b.ref)
    with open(jpath, "rb") as f:
        assert struct.unpack("<8sI", f.read(12)) == (b"DWRAID7J", 3)
    assert journal_record(b)["state"] == "clean"  # an old pool gains the record
    pool.close()
    with open(jpath, "r+b") as f:  # a newer version is refused, not misread
        f.write(b"DWRAID7J" + struct.pack("<I", 9))
        f.seek(4096)
        f.write(b"DWRAID7J" + struct.pack("<I", 9))
    with pytest.raises(UnsupportedFormatError, match="version 9"):
        b.reopen()
    # an old pool (no record) whose journal file was created, but the power went before
    # its header was written: a new journal
    forget_journal_record(b)
    with open(jpath, "wb"):
        pass
    pool = r7(b.reopen())
    check_all(pool, b.ref)
    assert pool.cache_status()["journal_bytes"] == 0 and os.path.getsize(jpath) > 0
    quiet_close(pool)


def test_volatile_mode_is_opt_in_warns_and_loses_at_most_the_dirty_set(tmp_path: Any) -> None:
    with pytest.warns(VolatileCacheWarning, match="volatile"):
        b = build(tmp_path, 4, cache_mode="volatile")
    st = r7(b.pool).cache_status()
    assert st["volatile"] and st["cache_mode"] == "volatile"
    pst = b.pool.status()
    assert isinstance(pst, PoolStatus) and isinstance(pst, Raid7Status)
    assert pst.cache_mode == "volatile" and pst.volatile
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


# -- one I/O worker per device ------------------------------------------------------------------


class ThreadLog(FaultyDevice):
    """A member that records which thread wrote its data area."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, close_inner=False)
        self.threads: set[str] = set()

    def _write(self, offset: int, view: memoryview) -> None:
        if offset >= DATA_OFFSET:
            self.threads.add(threading.current_thread().name)
        super()._write(offset, view)


def pool_threads(pool: Pool) -> list[str]:
    tag = pool.pool_id.hex[:8]
    return sorted(t.name for t in threading.enumerate() if tag in t.name)


def test_destage_runs_on_one_worker_per_device_and_close_ends_them(tmp_path: Any) -> None:
    b = build(tmp_path, 4)
    b.pool.close()
    logs = [ThreadLog(d) for d in b.rig.inners]
    pool = r7(Pool.open(b.path, devices=logs))
    names = pool.cache_status()["io_threads"]
    assert len(set(names)) == 4 and all(n.endswith(f"-dev{i}") for i, n in enumerate(names))
    assert set(names) < set(pool_threads(pool))  # the workers and the destager
    rng = np.random.default_rng(41)
    more = fill(pool, rng, [int(x) for x in rng.integers(1, 80 * KiB, 12)])
    assert all(not log.threads for log in logs)  # acknowledged from the cache
    pool.flush()
    for i, log in enumerate(logs):
        assert log.threads == {names[i]}, f"device {i} written by {log.threads}"
    check_all(pool, more)
    check_all(pool, b.ref)
    st = pool.cache_status()
    assert st["io_queued"] == [0] * 4 and st["destage_requests"] == 12 * 4
    pool.close()
    assert pool_threads(pool) == []  # no thread outlives the pool
    # a power cut (close without sync) ends them too, dropping what was queued
    pool = r7(Pool.open(b.path, devices=b.rig.rewrap()))
    fill(pool, rng, [50 * KiB] * 4)
    pool.close(sync=False)
    assert pool_threads(pool) == []


def test_slow_device_does_not_block_cached_writes_and_flush_drains(tmp_path: Any) -> None:
    b = build(tmp_path, 4, max_dirty_s=0.05)
    pool = r7(b.pool)
    slow = b.rig.wrappers[1]
    slow.latency = 0.4  # per request: each destage costs this device >= 0.8 s
    rng = np.random.default_rng(43)
    acked = fill(pool, rng, [20 * KiB])
    deadline = time.monotonic() + 5
    while not pool.cache_status()["destaging_extents"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.cache_status()["destaging_extents"] == 1
    worst = 0.0
    for _ in range(10):
        data = rng.bytes(int(rng.integers(1, 30 * KiB)))
        t0 = time.monotonic()
        acked.add(pool.write(data), data)
        worst = max(worst, time.monotonic() - t0)
    assert worst < 0.3, f"a cached write waited {worst:.2f} s for a slow device"
    st = pool.cache_status()
    assert st["destaging_extents"] >= 1 and st["dirty_extents"] == 11  # still in flight
    assert st["io_queued"][1] >= 1
    check_all(pool, acked)  # served from the cache meanwhile
    slow.latency = 0.0
    pool.flush()
    st = pool.cache_status()
    assert st["dirty_extents"] == st["destaging_extents"] == 0
    assert st["io_queued"] == [0] * 4, "flush returned before every queue drained"
    assert all(w.unsynced_writes == 0 for w in b.rig.wrappers), "a device was not synced"
    assert st["journal_bytes"] == 0
    check_all(pool, acked)
    check_all(pool, b.ref)


def test_status_reports_the_cache_mode(tmp_path: Any) -> None:
    b = build(tmp_path, 3)
    rng = np.random.default_rng(47)
    fill(b.pool, rng, [10000, 3000])
    st = b.pool.status()
    assert isinstance(st, Raid7Status) and isinstance(st, PoolStatus)
    assert (st.cache_mode, st.volatile, st.dirty_extents) == ("journaled", False, 2)
    assert st.dirty_bytes == 13000 and st.level == "7" and not st.degraded
    r7(b.pool).flush()
    assert b.pool.status().dirty_bytes == 0


def test_scrub_and_rebuild_while_writers_overwrite(tmp_path: Any) -> None:
    """Scrub and rebuild take the pool lock step by step while writers overwrite extents
    (freed rows are written again) and destages run on the workers: no mismatch is
    reported or "repaired" from rows half written, and every extent reads back."""
    # a small journal: it fills often, and each checkpoint's sync lets freed rows be
    # written again while a scrub or rebuild that listed them is under way
    b = build(tmp_path, 4, journal=journal_device(48 * KiB), cache_bytes=96 * KiB)
    pool = r7(b.pool)
    for w in b.rig.wrappers:
        w.latency = 0.001
    live = Ref()
    for ext, data in b.ref:
        live.add(ext, data)
    guard = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                with guard:
                    items = list(live)
                    old, _ = items[int(rng.integers(0, len(items)))]
                    live.remove(old)
                data = rng.bytes(int(rng.integers(1, 40 * KiB)))
                ext = pool.write(data)
                pool.free(old)
                with guard:
                    live.add(ext, data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    try:
        reports = [pool.scrub(repair=True)]
        b.rig.fail([2])
        pool.fail_device(2)
        pool.replace_device(2, b.rig.replace_inner(2))
        b.rig.wrappers[2].latency = 0.001
        pool.rebuild()
        reports.append(pool.scrub(repair=True))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert all(r.mismatches == [] for r in reports), [r.mismatches for r in reports]
    pool.flush()
    assert pool.status().failed == () and not pool.status().degraded
    check_all(pool, live)
    assert pool.scrub(repair=False).mismatches == []


def test_scrub_checks_cached_extents_without_a_flush(tmp_path: Any) -> None:
    """Rows whose extent is still in the cache are destaged by the scrub step that reaches
    them (their destage I/O waited for), never read half written or not at all."""
    b = build(tmp_path, 4)
    rng = np.random.default_rng(53)
    for w in b.rig.wrappers:
        w.latency = 0.001  # destages stay in flight a while
    dirty = fill(b.pool, rng, [int(x) for x in rng.integers(1, 60 * KiB, 15)])
    assert r7(b.pool).cache_status()["dirty_extents"] == 15
    rep = b.pool.scrub(repair=False)
    assert rep.mismatches == [], rep.mismatches
    assert rep.rows_checked >= sum(e.rows for e, _ in dirty) + sum(e.rows for e, _ in b.ref)
    assert r7(b.pool).cache_status()["dirty_extents"] == 0
    check_all(b.pool, dirty)
    check_all(b.pool, b.ref)


# -- journal failure (md's raid5 journal, ZFS's SLOG: the pool goes on write-through) ------


class SyncFails(FaultyDevice):
    """A journal device whose syncs fail once ``failing`` is set (its writes land)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner, close_inner=False)
        self.failing = False

    def _sync(self) -> None:
        if self.failing:
            raise DeviceIOError(f"{self.path}: injected sync failure", self.path)
        super()._sync()


def assert_write_through(pool: Raid7Pool, state: str) -> None:
    """``status()`` and ``cache_status()`` report a pool without a usable journal."""
    st = pool.status()
    assert (st.cache_mode, st.journal_state, st.degraded) == ("write-through", state, True)
    assert st.failed == () and "journal" in st.reasons[-1]
    assert pool.cache_status()["cache_mode"] == "write-through"


def written_through(pool: Raid7Pool, b: Built, rng: np.random.Generator, ref: Ref) -> None:
    """Writes return with their bytes on the members and synced (nothing cached)."""
    for size in (7000, 40 * KiB, 1):
        data = rng.bytes(size)
        ref.add(pool.write(data), data)
        assert pool.cache_status()["dirty_extents"] == 0
        assert all(w.unsynced_writes == 0 for w in b.rig.wrappers)


@pytest.mark.parametrize("fault", ["append", "sync", "clear"])
def test_journal_failure_destages_and_goes_write_through(tmp_path: Any, fault: str) -> None:
    """The journal device fails (a record's write, its sync, or emptying it at a flush):
    no acknowledged write is lost — the cache is destaged and synced, the write that met
    the failure is written through — the pool warns and reports write-through, later
    writes are written through, flush succeeds; a power cut right after (the failed
    journal healed and given again) replays nothing stale."""
    jw = SyncFails(RamDevice(4 * MiB, name="r7-journal"))
    b = build(tmp_path, 4, journal=jw)
    pool = r7(b.pool)
    rng = np.random.default_rng(seed_of("r7jfail", fault))
    acked = fill(pool, rng, [int(x) for x in rng.integers(1, 50 * KiB, 8)])
    assert pool.cache_status()["dirty_extents"] == 8
    with pytest.warns(PoolDegradedWarning, match="journal"):
        if fault == "clear":
            jw.fail_now("write")
            pool.flush()  # everything destaged: the failure to empty the journal is no error
        else:
            if fault == "sync":
                jw.failing = True
            else:
                jw.fail_now("any")
            fill(pool, rng, [12000], acked)  # acknowledged, written through
    assert pool.cache_status()["dirty_extents"] == 0
    assert all(w.unsynced_writes == 0 for w in b.rig.wrappers)
    assert_write_through(pool, "failed")
    assert journal_record(b)["state"] == "failed"
    # the power goes right after (the journal device is given again, healed)
    cut_power(b, jw, keep="none")
    jw.failing = False
    with pytest.warns(PoolDegradedWarning, match="failed earlier"):
        pool = reopen(b, jw)
    assert pool.cache_status()["replayed_extents"] == 0
    assert_write_through(pool, "failed")
    check_all(pool, acked)
    check_all(pool, b.ref)
    written_through(pool, b, rng, acked)
    pool.flush()
    # a freed extent's rows are written again: the retired journal's records of them
    # must never come back
    for ext, _ in list(acked)[:3]:
        pool.free(ext)
        acked.remove(ext)
    written_through(pool, b, rng, acked)
    cut_power(b, jw, keep="none")
    with pytest.warns(PoolDegradedWarning, match="failed earlier"):
        pool = reopen(b, jw)
    assert pool.cache_status()["replayed_extents"] == 0
    check_all(pool, acked)
    check_all(pool, b.ref)
    pool.replace_journal(jw)  # the same device, repaired: a new journal on it
    assert pool.status().cache_mode == "journaled" and not pool.status().degraded
    fill(pool, rng, [15000, 2000], acked)
    assert pool.cache_status()["dirty_extents"] == 2
    cut_power(b, jw, keep="none")
    pool = reopen(b, jw)
    assert pool.cache_status()["replayed_extents"] == 2
    check_all(pool, acked)
    quiet_close(pool)


def test_replace_journal_resumes_write_back(tmp_path: Any) -> None:
    """After the journal failed, ``replace_journal`` gives a new one: journaled write-back
    resumes and a power cut with a dirty cache keeps every acknowledged write (replay);
    the failed journal is not the pool's journal any more.  Also to the default file."""
    jw = journal_device()
    b = build(tmp_path, 4, journal=jw)
    pool = r7(b.pool)
    rng = np.random.default_rng(61)
    acked = fill(pool, rng, [20000, 3000])
    jw.fail_now("any")
    fill(pool, rng, [9000], acked)
    assert_write_through(pool, "failed")
    foreign = journal_device()
    build(tmp_path, 3, name="foreign", journal=foreign).pool.close()
    with pytest.raises(InvalidArgumentError, match="another pool"):
        pool.replace_journal(foreign)
    with pytest.raises(InvalidArgumentError, match="member"):
        pool.replace_journal(b.rig.wrappers[0])
    with pytest.raises(InvalidArgumentError, match="superblock"):
        pool.replace_journal(FaultyDevice(b.rig.inners[1], close_inner=False))
    assert_write_through(pool, "failed")
    new = journal_device()
    pool.replace_journal(new)
    st = pool.status()
    assert (st.cache_mode, st.journal_state, st.degraded, st.journal) == (
        "journaled",
        "ok",
        False,
        new.path,
    )
    assert -1 not in st.reasons and journal_record(b)["state"] == "clean"
    fill(pool, rng, [int(x) for x in rng.integers(1, 50 * KiB, 10)], acked)
    assert pool.cache_status()["dirty_extents"] == 10 and new.unsynced_writes == 0
    cut_power(b, new, keep="none")
    jw.heal()
    with pytest.raises(InvalidArgumentError, match="not the RAID 7 journal"):
        Raid7Pool.open(b.path, devices=b.rig.rewrap(), journal=jw)  # the failed one
    pool = reopen(b, new)
    assert pool.cache_status()["replayed_extents"] == 10
    assert pool.status().journal_state == "ok"
    check_all(pool, acked)
    check_all(pool, b.ref)
    # back to the file in the pool directory: a crash keeps what it journaled
    pool.replace_journal()
    more = fill(pool, rng, [30000, 5000], acked)
    assert pool.cache_status()["dirty_extents"] == 2
    crash(b, 7)
    pool = r7(b.reopen())  # no journal= any more
    assert pool.cache_status()["replayed_extents"] == 2
    check_all(pool, more)
    check_all(pool, acked)
    quiet_close(pool)


def test_open_with_the_journal_missing_after_a_clean_close(tmp_path: Any) -> None:
    """The journal was emptied at the close: without it (or with a blank device) the pool
    opens write-through and warns; given again later, journaled write-back resumes."""
    jw = journal_device()
    b = build(tmp_path, 4, journal=jw)
    b.pool.close()
    rng = np.random.default_rng(67)
    ref = Ref()
    for given in (None, journal_device()):
        with pytest.warns(PoolDegradedWarning, match="clean"):
            pool = r7(Raid7Pool.open(b.path, devices=b.rig.rewrap(), journal=given))
        assert_write_through(pool, "missing")
        check_all(pool, b.ref)
        written_through(pool, b, rng, ref)
        pool.close()
    pool = reopen(b, jw)
    st = pool.status()
    assert (st.cache_mode, st.journal_state, st.degraded) == ("journaled", "ok", False)
    check_all(pool, ref)
    check_all(pool, b.ref)
    pool.close()
    # the default journal file, removed after a clean close
    f = build(tmp_path, 3, name="file")
    f.pool.close()
    os.unlink(os.path.join(f.path, JOURNAL_NAME))
    with pytest.warns(PoolDegradedWarning, match="clean"):
        pool = r7(f.reopen())
    assert_write_through(pool, "missing")
    check_all(pool, f.ref)
    pool.replace_journal()
    assert pool.status().cache_mode == "journaled"
    quiet_close(pool)


def test_open_with_the_journal_missing_after_a_crash_with_dirty_entries(tmp_path: Any) -> None:
    """The journal may hold acknowledged writes not on the members: opening without it
    is refused, naming it; forced, the pool opens write-through, warns that writes may
    be lost, and never replays that journal later."""
    jw = journal_device()
    b = build(tmp_path, 4, journal=jw)
    rng = np.random.default_rng(71)
    fill(b.pool, rng, [int(x) for x in rng.integers(1, 50 * KiB, 6)])
    jid = journal_record(b)["id"]
    cut_power(b, jw, keep="none")
    for given in (None, journal_device()):
        with pytest.raises(JournalMissingError, match=f"journal {jid}.*force_journal_loss"):
            Raid7Pool.open(b.path, devices=b.rig.rewrap(), journal=given)
    with pytest.warns(JournalLostWarning, match="MAY BE LOST"):
        pool = r7(Raid7Pool.open(b.path, devices=b.rig.rewrap(), force_journal_loss=True))
    assert_write_through(pool, "failed")
    check_all(pool, b.ref)  # flushed before the cut
    late = Ref()
    written_through(pool, b, rng, late)
    pool.close()
    jw.heal()  # the journal comes back: its records are older than what followed
    with pytest.warns(PoolDegradedWarning, match="failed earlier"):
        pool = reopen(b, jw)
    assert pool.cache_status()["replayed_extents"] == 0
    check_all(pool, late)
    check_all(pool, b.ref)
    pool.close()
    # the default journal file, lost after a crash
    f = build(tmp_path, 3, name="file")
    fill(f.pool, rng, [20000])
    crash(f, 5)
    os.unlink(os.path.join(f.path, JOURNAL_NAME))
    with pytest.raises(JournalMissingError, match="missing"):
        f.reopen()


def test_journal_mirrored_on_two_members(tmp_path: Any) -> None:
    """``journal_on="members"``: the journal is mirrored on members 0 and 1 (their
    metadata areas, no file, no log device); a power cut with a dirty cache replays it,
    also with one copy's member failed, and a replaced member gets its copy back."""
    b = build(tmp_path, 4, journal_on="members")
    pool = r7(b.pool)
    assert not os.path.exists(os.path.join(b.path, JOURNAL_NAME))
    assert pool.layout.params["journal_on"] == "members"
    assert pool.status().journal == pool.cache_status()["journal"]
    assert "members 0,1" in str(pool.status().journal)
    rng = np.random.default_rng(73)
    acked = Ref()

    def cut_and_replay(count: int) -> Raid7Pool:
        for w in b.rig.wrappers:
            w.fail_now("any")
        for i, w in enumerate(b.rig.wrappers):
            w.power_cut(seed=seed_of("r7mirror", i), keep="none")
        b.pool.close(sync=False)
        pool = r7(b.reopen())
        assert pool.cache_status()["replayed_extents"] == count
        check_all(pool, acked)
        check_all(pool, b.ref)
        return pool

    fill(pool, rng, [int(x) for x in rng.integers(1, 60 * KiB, 8)], acked)
    assert pool.cache_status()["dirty_extents"] == 8
    assert all(w.unsynced_writes == 0 for w in b.rig.wrappers[2:])  # acknowledged from cache
    pool = cut_and_replay(8)
    for lost in (0, 1):  # one copy's member fails: the other copy holds every record
        b.rig.fail([lost])
        if lost:
            pool.fail_device(lost)
        # member 0: its failure is found by the first journal write (failed out, the
        # record kept on the other copy)
        fill(pool, rng, [int(x) for x in rng.integers(1, 60 * KiB, 5)], acked)
        assert pool.status().failed == (lost,)
        pool = cut_and_replay(5)
        assert pool.status().failed == (lost,)
        pool.replace_device(lost, b.rig.replace_inner(lost))
        pool.rebuild()
        b.rig.heal()
    # a write larger than the journal area is written through
    big = rng.bytes(2 * MiB)
    acked.add(pool.write(big), big)
    assert pool.cache_status()["write_through"] >= 1
    pool = cut_and_replay(0)
    assert pool.scrub(repair=False).mismatches == []
    with pytest.raises(InvalidArgumentError, match="takes no device"):
        pool.replace_journal(journal_device())
    pool.replace_journal()
    assert pool.status().journal_state == "ok"
    pool.close()
    with pytest.raises(InvalidArgumentError, match="without journal="):
        Raid7Pool.open(b.path, devices=b.rig.rewrap(), journal=journal_device())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"journal_on": "disk"}, "journal_on"),
        ({"journal_on": "members", "cache_mode": "volatile"}, "volatile"),
    ]
    for opts, msg in cases:
        with pytest.raises(InvalidArgumentError, match=msg):
            raid.layout("7", 4, CHUNK, **opts)
    with pytest.raises(InvalidArgumentError, match="on the members"):
        Raid7Pool.create(
            tmp_path / "x", "7", 3, 8 * MiB, journal=journal_device(), journal_on="members"
        )


# -- the journal names its records' journal (format version 3) ---------------------------------


class Small:
    """A small, empty RAID 7 pool on RAM devices behind fault-injecting wrappers (no fill:
    the journal tests below place their own extents)."""

    def __init__(
        self, tmp_path: Any, name: str, n: int = 3, rig: Rig | None = None, **kw: Any
    ) -> None:
        self.path = str(tmp_path / name)
        os.makedirs(self.path, exist_ok=True)
        self.rig = rig if rig is not None else Rig.ram(self.path, n, 16 * MiB)
        self.journal: FaultyDevice | None = kw.get("journal")
        self.pool = r7(
            Raid7Pool.create(
                self.path,
                "7",
                self.rig.wrappers,
                16 * MiB,
                chunk_size=CHUNK,
                block_size=BLOCK,
                max_dirty_s=600,
                **kw,
            )
        )

    def reopen(self, force_journal_loss: bool = False) -> Raid7Pool:
        if self.journal is not None:
            self.journal.heal()
        self.pool = r7(
            Raid7Pool.open(
                self.path,
                devices=self.rig.rewrap(),
                journal=self.journal,
                force_journal_loss=force_journal_loss,
            )
        )
        return self.pool

    def cut(self, *others: FaultyDevice) -> None:
        """A power cut that drops every unsynced write of the members and the journal
        devices; the pool dropped as a crash would."""
        every = [*self.rig.wrappers, *others]
        if self.journal is not None and self.journal not in others:
            every.append(self.journal)
        for w in every:
            w.fail_now("any")
        for i, w in enumerate(every):
            w.power_cut(seed=seed_of("r7-small-cut", i), keep="none")
        self.pool.close(sync=False)
        for w in others:
            w.heal()


@pytest.mark.parametrize("where", ["members", "device"])
def test_replace_journal_never_brings_back_old_records(tmp_path: Any, where: str) -> None:
    """``replace_journal`` formats a journal again (the mirrored one on the same metadata
    areas, or a device that held a journal of this pool before): the records of the
    earlier journal still lie there, at the new journal's first epoch and sequence
    numbers, and must never be replayed — after a power cut (an old record of a freed
    extent after a new acknowledged write in its rows) nor after a clean close."""
    jdevs = [journal_device(1 * MiB), journal_device(1 * MiB)]
    kw: dict[str, Any] = {"journal_on": "members"} if where == "members" else {"journal": jdevs[0]}
    s = Small(tmp_path, where, **kw)
    rng = np.random.default_rng(seed_of("r7-replace-old", where))

    def replace() -> None:
        if where == "members":
            s.pool.replace_journal()
        else:  # away and back: the first device is formatted again
            s.pool.replace_journal(jdevs[1])
            s.pool.replace_journal(jdevs[0])

    size = 32 * KiB
    a0, a1 = s.pool.write(b"0" * size), s.pool.write(b"1" * size)
    s.pool.flush()  # destaged, the journal emptied: both records stay on its space
    s.pool.free(a1)
    s.pool.sync()
    s.pool.close()
    pool = s.reopen()
    replace()
    data = rng.bytes(size)
    ext = pool.write(data)  # the new journal's first record, in a1's rows
    assert (ext.first_row, ext.rows) == (a1.first_row, a1.rows)
    assert pool.cache_status()["dirty_extents"] == 1
    s.cut(*jdevs)
    pool = s.reopen()
    assert pool.cache_status()["replayed_extents"] == 1
    assert pool.read(ext) == data and pool.read(a0) == b"0" * size
    # an old record replayed after a clean close: the new journal never got a record
    old = pool.write(b"A" * 64 * KiB)
    pool.flush()
    replace()
    pool.free(old)
    pool.sync()
    big = rng.bytes(2 * MiB)  # larger than the journal: written through, no record
    big_ext = pool.write(big)
    assert pool.cache_status()["write_through"] == 1
    pool.close()
    pool = s.reopen()
    assert pool.cache_status()["replayed_extents"] == 0
    assert pool.read(big_ext) == big and pool.read(ext) == data
    quiet_close(pool)
    s.rig.close()


def test_new_mirrored_pool_on_reused_members_ignores_old_records(tmp_path: Any) -> None:
    """A ``journal_on="members"`` pool created (``force=True``) on the members of an older
    one: the old pool's journal records in the metadata areas are never replayed into
    the new pool, after a clean close or a power cut."""
    old = Small(tmp_path, "old", journal_on="members")
    old.pool.write(b"OLD!" * 8192)  # journaled in the old pool's mirrored journal
    old.pool.close()
    rig = old.rig
    rig.rewrap()
    new = Small(tmp_path, "new", rig=rig, journal_on="members", force=True)
    rng = np.random.default_rng(83)
    big = rng.bytes(2 * MiB)  # written through: the new journal gets no record
    ext = new.pool.write(big)
    new.pool.close()
    pool = new.reopen()
    assert pool.cache_status()["replayed_extents"] == 0
    assert pool.read(ext) == big
    small = rng.bytes(20 * KiB)
    acked = pool.write(small)
    new.cut()
    pool = new.reopen()
    assert pool.cache_status()["replayed_extents"] == 1
    assert pool.read(ext) == big and pool.read(acked) == small
    quiet_close(pool)
    rig.close()


@pytest.mark.parametrize("force", [False, True])
def test_returning_member_keeps_the_current_mirrored_journal(tmp_path: Any, force: bool) -> None:
    """Member 0 fails on a journal write at a high epoch; ``replace_journal`` then
    formats the new journal on member 1 only; member 0 comes back (``replace_device``
    with the same device): its copy of the earlier journal (a newer epoch) must not
    win over the pool's journal at open — a power cut keeps every acknowledged
    write (``force_journal_loss`` changes nothing: nothing is missing)."""
    s = Small(tmp_path, "pool", 4, journal_on="members")
    rng = np.random.default_rng(89)
    kept = Ref()
    for _ in range(4):  # epoch 5
        fill(s.pool, rng, [8 * KiB], kept)
        s.pool.flush()
    s.rig.fail([0])
    fill(s.pool, rng, [8 * KiB], kept)  # its journal write fails member 0 out
    assert s.pool.status().failed == (0,)
    s.pool.flush()
    s.rig.heal()
    s.pool.replace_journal()  # a new journal, on member 1 only
    s.pool.replace_device(0, s.rig.wrappers[0])  # the same disk comes back
    s.pool.rebuild()
    assert s.pool.status().failed == ()
    acked = fill(s.pool, rng, [20 * KiB] * 3)
    assert s.pool.cache_status()["dirty_extents"] == 3
    s.cut()
    pool = s.reopen(force_journal_loss=force)
    assert pool.cache_status()["replayed_extents"] == 3
    assert pool.status().journal_state == "ok"
    check_all(pool, acked)
    check_all(pool, kept)
    quiet_close(pool)
    s.rig.close()


def _v2_header(flags: int, epoch: int, pool_id: bytes, jid: bytes, cap: int) -> bytes:
    head = struct.pack("<8sIIQ16s16sQ", b"DWRAID7J", 2, flags, epoch, pool_id, jid, cap)
    return head + crc32c(head).to_bytes(4, "little")


def _v2_record(epoch: int, seq: int, first: int, rows: int, data: bytes) -> bytes:
    head = struct.pack("<4sQQQQQI", b"J7R2", epoch, seq, first, rows, len(data), crc32c(data))
    return head + crc32c(head).to_bytes(4, "little") + data


@pytest.mark.parametrize("where", ["file", "device"])
def test_version_2_journal_is_replayed_and_upgraded(tmp_path: Any, where: str) -> None:
    """A version 2 journal (records without a journal id, from dwcore before format 3)
    of a pool that crashed is replayed by its own rule (the epoch and the next
    sequence number; a record of another epoch ends it), then emptied into a version 3
    header; journaled writes after it survive a power cut."""
    jw = journal_device() if where == "device" else None
    s = Small(tmp_path, where, **({} if jw is None else {"journal": jw}))
    rng = np.random.default_rng(seed_of("r7-v2", where))
    data = rng.bytes(30000)
    ext = s.pool.write(data)
    s.cut()  # the members never got it: only the journal has it
    with open(os.path.join(s.path, "pool.json")) as f:
        man = json.load(f)
    pid = uuid.UUID(man["pool_id"]).bytes
    jid_text = man["extra"]["raid7_journal"]["id"]
    jid = uuid.UUID(jid_text).bytes

    def headers(flags: int, cap: int) -> bytearray:
        out = bytearray(8192)
        for slot in range(2):  # epochs 0 and 1, as a new version 2 journal
            head = _v2_header(flags, slot, pid, jid, cap)
            out[slot * 4096 : slot * 4096 + len(head)] = head
        return out

    # the write as the version 2 journal held it (epoch 1, sequence 1), then a record of
    # an earlier epoch where the next one would be
    rec = _v2_record(1, 1, ext.first_row, ext.rows, data)
    records = rec + bytes(-len(rec) % 4096)
    records += _v2_record(0, 2, ext.first_row + ext.rows, 2, rng.bytes(5000))
    jpath = os.path.join(s.path, JOURNAL_NAME)
    with open(jpath, "wb") as f:
        f.write(headers(0, 0) + records if jw is None else headers(1, 0))  # else a stub
    if jw is not None:
        jw.heal()
        jw.pwrite(0, bytes(headers(0, jw.size) + records))
        jw.sync()
    pool = s.reopen()
    assert pool.cache_status()["replayed_extents"] == 1
    assert pool.read(ext) == data
    # upgraded: the slot of the next epoch holds a version 3 header of the same journal
    if jw is not None:
        raw = jw.pread(0, 8192)
    else:
        with open(jpath, "rb") as f:
            raw = f.read(8192)
    slots = [struct.unpack_from("<8sIIQ16s16s", raw, slot * 4096) for slot in range(2)]
    newest = max(slots, key=lambda h: h[3])
    assert (newest[1], newest[3], newest[5]) == (3, 2, jid)
    assert journal_record(s) == {"version": 1, "id": jid_text, "state": "clean"}
    acked = fill(pool, rng, [20 * KiB, 3 * KiB])
    s.cut()
    pool = s.reopen()
    assert pool.cache_status()["replayed_extents"] == 2
    check_all(pool, acked)
    assert pool.read(ext) == data
    quiet_close(pool)
    s.rig.close()
