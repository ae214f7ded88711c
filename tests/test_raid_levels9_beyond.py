"""Beyond (``raid-levels.md`` §6): zones over mixed-size devices, growth, re-layout.

Capacity rule against 3 000 random size vectors (single: Σ − max, dual:
Σ − two largest) and through the pool; the §0.5 failure matrix (every F for
N ≤ 5, exact expectation from the zone table; never wrong bytes); rebuild
into free space restores redundancy (a further failure survived);
DEGRADED_NO_SPACE reported with nothing lost; add a device → capacity grows
to the new bound by background re-layout while the pool reads and writes,
then any single device fails and everything reads; a power cut in the middle
of the re-layout; scrub and read repair of silent corruption; power cuts
during writes.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

import numpy as np
import pytest
from levels7_pool import SLOW, seed_of
from pool_helpers import KiB, MiB, Ref, Rig, check_all, fill

from dwcore import raid
from dwcore.errors import DataLossError, InvalidArgumentError, NoSpaceError
from dwcore.pool import Pool
from dwcore.pool.growth import BeyondPool, ZoneEngine
from dwcore.raid.beyond import plan_units, zone_plan

pytestmark = pytest.mark.filterwarnings(
    "ignore::dwcore.pool.PoolDegradedWarning", "ignore::RuntimeWarning"
)

Z = 64 * KiB
CHUNK = 16 * KiB
DEV = 8 * MiB


def bound(sizes: list[int], mode: str) -> int:
    s = sorted(sizes, reverse=True)
    return sum(s) - sum(s[: 1 if mode == "single" else 2])


def test_capacity_rule_on_random_size_vectors() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(3000):
        n = int(rng.integers(2, 12))
        sizes = [int(x) for x in rng.integers(0, 40, n)]
        for mode in ("single", "dual"):
            got = plan_units(zone_plan(sizes, mode, 16), mode)
            assert got == max(0, bound(sizes, mode)), (sizes, mode)
    assert plan_units(zone_plan([1, 2, 3, 4], "single", 16), "single") == 6
    assert plan_units(zone_plan([1, 2, 3, 4], "dual", 16), "dual") == 3


def make(
    tmp_path: Any, sizes_mib: list[float], mode: str = "single", name: str = "pool"
) -> tuple[Rig, BeyondPool]:
    path = str(tmp_path / name)
    os.makedirs(path, exist_ok=True)
    rig = Rig.ram(path, len(sizes_mib), DEV)
    sizes = [int(s * MiB) for s in sizes_mib]
    pool = Pool.create(
        path, "beyond", rig.wrappers, DEV, chunk_size=CHUNK, zone_size=Z, mode=mode, sizes=sizes
    )
    assert isinstance(pool, BeyondPool)
    return rig, pool


@pytest.mark.parametrize(
    ("sizes", "mode"), [([1, 2, 3, 4], "single"), ([1, 2, 3, 4], "dual"), ([2, 2, 0.5], "single")]
)
def test_pool_capacity_is_the_bound_and_fills(tmp_path: Any, sizes: list[float], mode: str) -> None:
    _rig, pool = make(tmp_path, sizes, mode)
    want = bound([int(s * MiB) // Z for s in sizes], mode) * Z
    assert pool.status().capacity == want == pool.layout.capacity(DEV)
    rng = np.random.default_rng(1)
    ref = Ref()
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [60 * KiB], ref)
    assert pool.status().used >= 0.85 * want
    assert pool.status().capacity == want
    check_all(pool, ref)
    pool.close()


def built(tmp_path: Any, sizes: list[float], mode: str, count: int = 40) -> tuple[Rig, Any, Ref]:
    rig, pool = make(tmp_path, sizes, mode)
    rng = np.random.default_rng(seed_of("beyond", sizes, mode))
    edge = [1, 4095, 4097, CHUNK, 3 * CHUNK + 1, 150 * KiB]
    ref = fill(pool, rng, edge + [int(x) for x in rng.integers(1, 3 * CHUNK, count)])
    pool.sync()
    return rig, pool, ref


def zones_of(pool: BeyondPool, ext: Any) -> list[Any]:
    eng = pool.zones
    return [eng.zones[z] for z, _, _ in eng.extents[ext.first_row]]


@pytest.mark.parametrize(
    ("sizes", "mode"),
    [([1, 2, 3, 4], "single"), ([2, 2, 2], "single"), ([1, 1, 2, 2, 3], "dual")]
    + ([([1, 1, 2, 3, 3, 4], "single")] if SLOW else []),
)
def test_failure_matrix(tmp_path: Any, sizes: list[float], mode: str) -> None:
    rig, pool, ref = built(tmp_path, sizes, mode)
    n = len(sizes)
    tol = pool.layout.fault_tolerance
    raised = 0
    for size in range(n + 1):
        for f in itertools.combinations(range(n), size):
            failed = frozenset(f)
            rig.fail(failed)
            if size <= tol:
                assert pool.survives(failed) and pool.layout.survives(failed)
            for ext, data in ref:
                within = all(
                    sum(1 for d, _ in z.members if d in failed) <= z.tolerance
                    for z in zones_of(pool, ext)
                )
                try:
                    got = pool.read(ext)
                except DataLossError as exc:
                    assert not within, f"F={sorted(failed)}: {ext!r} raised {exc}"
                    assert set(exc.failed) & failed
                    raised += 1
                    continue
                assert got == data, f"F={sorted(failed)}: WRONG BYTES"
            rig.heal()
    assert raised, "no failure set lost anything"
    pool.close()


def test_rebuild_into_free_space_restores_redundancy(tmp_path: Any) -> None:
    rig, pool, ref = built(tmp_path, [2, 2, 3, 3], "single", count=20)
    rig.fail([2])
    pool.fail_device(2)
    pool.rebuild()
    assert all(2 not in {d for d, _ in z.members} for z in pool.zones.zones.values())
    check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    for f in (0, 1, 3):  # a further failure is survived: redundancy was restored
        rig.fail([f])
        check_all(pool, ref)
        rig.heal()
        rig.fail([2])
    # and a replacement in the failed slot is used again
    pool.replace_device(2, rig.replace_inner(2))
    pool.rebuild()
    assert not pool.status().degraded
    rng = np.random.default_rng(3)
    fill(pool, rng, [200 * KiB] * 4, ref)
    check_all(pool, ref)
    pool.close()


def test_no_space_to_restore_is_reported_and_nothing_lost(tmp_path: Any) -> None:
    rig, pool = make(tmp_path, [1, 1, 1], "single")
    rng = np.random.default_rng(4)
    ref = Ref()
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [50 * KiB], ref)
    pool.sync()
    rig.fail([0])
    pool.fail_device(0)
    pool.rebuild()
    st = pool.status()
    assert st.degraded and "DEGRADED_NO_SPACE" in st.reasons[-1]
    check_all(pool, ref)  # still readable, degraded
    pool.close()


def test_add_device_grows_capacity_while_serving(tmp_path: Any) -> None:
    rig, pool, ref = built(tmp_path, [1, 1, 1], "single", count=30)
    before = pool.status().capacity
    assert before == bound([16, 16, 16], "single") * Z
    rng = np.random.default_rng(8)
    stop = threading.Event()
    errors: list[BaseException] = []
    during = Ref()

    def worker() -> None:
        try:
            while not stop.is_set():
                fill(pool, rng, [int(rng.integers(1, 40 * KiB))], during)
                for ext, data in list(ref)[:5]:
                    assert pool.read(ext) == data
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    try:
        i = pool.add_device(size=int(1 * MiB))
        assert i == 3
        pool.wait_relayout()
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert pool.status().capacity == bound([16] * 4, "single") * Z > before
    assert all(z.width == 4 for z in pool.zones.zones.values()), "narrow zones left"
    check_all(pool, ref)
    check_all(pool, during)
    pool.sync()
    for f in range(3):  # any one device fails: the three original ones ...
        rig.wrappers[f].fail_now("any")
        check_all(pool, ref)
        check_all(pool, during)
        rig.wrappers[f].heal()
    pool.fail_device(3)  # ... or the added one
    check_all(pool, ref)
    check_all(pool, during)
    pool.close()


def test_power_cut_in_the_middle_of_relayout(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig, pool, ref = built(tmp_path, [1, 1, 1], "single", count=30)
    saves = 0

    class Cut(Exception):
        pass

    real_save = ZoneEngine.save

    def save(self: ZoneEngine) -> None:
        nonlocal saves
        saves += 1
        if saves == 4:  # the copy of an extent is on the devices, its map switch is not
            raise Cut
        real_save(self)

    monkeypatch.setattr(ZoneEngine, "save", save)
    pool.add_device(size=int(1 * MiB), wait=True)
    assert saves >= 4
    monkeypatch.setattr(ZoneEngine, "save", real_save)
    for w in rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=i, keep="random")
    new_dev = pool.devices[3]
    assert new_dev is not None
    new_path = new_dev.path  # a file in the pool directory: it keeps what was synced
    pool.close(sync=False)
    devices = [*rig.rewrap(), new_path]
    pool = Pool.open(rig.path, devices=devices)
    assert isinstance(pool, BeyondPool)
    check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    pool.relayout(wait=True)
    assert all(z.width == 4 for z in pool.zones.zones.values())
    check_all(pool, ref)
    pool.close()


def test_scrub_and_read_repair(tmp_path: Any) -> None:
    rig, pool, ref = built(tmp_path, [2, 2, 2, 2], "dual", count=10)
    ext, data = max(ref, key=lambda x: len(x[1]))
    eng = pool.zones
    seg = next(iter(eng.segments(ext.first_row)))
    m = seg.sm.data_members(0)[0]
    mem = pool._members[m.device]
    off, _ = pool._addr(mem, m, seg.row)
    rig.inners[m.device].pwrite(off + 3, b"\x99" * 50)
    assert pool.read(ext) == data  # found by the read, decoded around it and rewritten
    assert pool.scrub(repair=False).mismatches == []
    rig.inners[m.device].pwrite(off + 3, b"\x99" * 50)  # not read this time: scrub repairs
    rep = pool.scrub(repair=True)
    assert [x.device for x in rep.mismatches] == [m.device] and rep.mismatches[0].repaired
    assert pool.scrub(repair=False).mismatches == []
    check_all(pool, ref)
    pool.close()


def test_power_cut_during_writes_keeps_synced_extents(tmp_path: Any) -> None:
    rig, pool, ref = built(tmp_path, [1, 2, 2], "single", count=10)
    rng = np.random.default_rng(6)
    fill(pool, rng, [int(x) for x in rng.integers(1, 80 * KiB, 10)])
    for w in rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=i)
    pool.close(sync=False)
    pool = Pool.open(rig.path, devices=rig.rewrap())
    check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    more = fill(pool, rng, [30 * KiB] * 5)
    check_all(pool, more)
    pool.close()


@pytest.mark.parametrize("keep", ["all", "random", "none"])
def test_freed_rows_are_not_reused_before_the_free_is_durable(tmp_path: Any, keep: str) -> None:
    """Write A, sync, free A, write B, cut the power: the saved zone table still names A
    live (the free never reached it), so B must not have gone into A's rows."""
    rig, pool = make(tmp_path, [1, 2, 2])
    rng = np.random.default_rng(12)
    kept = fill(pool, rng, [50 * KiB, 7 * KiB])
    gone = fill(pool, rng, [40 * KiB, 30 * KiB, 4 * KiB])
    pool.sync()
    rows = {(z, a) for ext, _ in gone for z, a, _n in pool.zones.extents[ext.first_row]}
    for ext, _ in gone:
        pool.free(ext)
    new = fill(pool, rng, [40 * KiB, 30 * KiB, 4 * KiB, 64 * KiB])
    taken = {(z, a) for ext, _ in new for z, a, _n in pool.zones.extents[ext.first_row]}
    assert not rows & taken
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=i, keep=keep)  # type: ignore[arg-type]
    pool.close(sync=False)
    pool = Pool.open(rig.path, devices=rig.rewrap())
    check_all(pool, kept)
    check_all(pool, gone)  # live again in the saved table, with their own bytes
    assert pool.scrub(repair=False).mismatches == []
    pool.close()


def test_options_and_other_levels_cannot_grow(tmp_path: Any) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"mode": "triple"}, "single"),
        ({"zone_size": 3 * KiB}, "multiple of chunk_size"),
        ({"sizes": [1, 2]}, "3 devices"),
    ]
    for opts, msg in bad:
        with pytest.raises(InvalidArgumentError, match=msg):
            raid.layout("drobo", 3, 4 * KiB, **opts)
    with pytest.raises(InvalidArgumentError, match="at least 3"):
        raid.layout("beyond", 2, 4 * KiB, mode="dual")
    pool = Pool.create(tmp_path / "r5", "5", 3, DEV, chunk_size=CHUNK)
    with pytest.raises(InvalidArgumentError, match="cannot grow"):
        pool.add_device(size=DEV)
    pool.close()


def test_free_reuses_space_and_survives_reopen(tmp_path: Any) -> None:
    rig, pool, ref = built(tmp_path, [1, 1, 1], "single", count=10)
    rng = np.random.default_rng(12)
    used = pool.status().used
    gone = list(ref)[:5]
    for ext, _ in gone:
        pool.free(ext)
        ref.remove(ext)
    assert pool.status().used < used
    with pytest.raises(InvalidArgumentError):
        pool.read(gone[0][0])
    pool.sync()
    more = Ref()
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [40 * KiB], more)
    pool.close()
    pool = Pool.open(rig.path, devices=rig.rewrap())
    check_all(pool, ref)
    check_all(pool, more)
    assert pool.reconcile([e for e, _ in ref] + [e for e, _ in more]) == 0
    pool.close()


def test_physical_runs_hold_the_extent(tmp_path: Any) -> None:
    """``physical(ext)`` (benchmark anchors): the runs hold the extent's bytes and redundancy."""
    rig, pool, ref = built(tmp_path, [1, 2, 2], "single", count=4)
    for ext, data in ref:
        runs = pool.zones.physical(ext)
        assert sum(n for _, _, n in runs) >= len(data)
        base = [m.sb.data_offset if m.sb is not None else 0 for m in pool._members]
        blob = b"".join(rig.inners[d].pread(base[d] + off, n) for d, off, n in runs)
        assert data[:32] in blob and data[-32:] in blob
    pool.close()
