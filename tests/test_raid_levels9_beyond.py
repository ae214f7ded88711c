"""Beyond (``raid-levels.md`` §6): zones over mixed-size devices, growth, re-layout.

Capacity rule against 3 000 random size vectors (single: Σ − max, dual:
Σ − two largest) and through the pool, on logical ``sizes=`` and on devices
that really differ in size (RAM devices and sparse files; each contributes its
own data area; superblock copies inside each device; refused when smaller
than asked; native reads kept across different checksum-table offsets;
replacement and rebuild); a golden check
of the layered allocation and md's left-symmetric order inside a zone; the
§0.5 template: failure matrix (every F, expectation from each zone stripe's
codec, 100 random sub-reads per survivable F), degraded write, rebuild onto
blank replacements compared with a never-failed twin, scrub and read repair,
power cuts during writes; rebuild into free space restores redundancy;
DEGRADED_NO_SPACE reported with nothing lost; add a device → capacity grows
to the new bound by background re-layout ([1,1,4]+4 single, [2,2,2]+2 dual,
a bigger device) while reads and writes go on between the extents it moves;
power cuts at several points of the re-layout through the fault-injecting
device; a rebuild brings ONLINE only the replacements it started with, skips
zones the re-layout released meanwhile, and a pending replacement stops the
re-layout; the zone table on every device (damaged copies rewritten, none left:
DataLossError, a crash before zones.json names a new table), zones.json
formats 1 and 2 migrated to 3, newer refused.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from levels7_pool import SLOW, _row_lost, overwrite_some, seed_of
from pool_helpers import KiB, MiB, Ref, Rig, check_all, fill, read_tree

from dwcore import raid
from dwcore.devices import FaultyDevice, RamDevice, read_superblock_copies
from dwcore.errors import DataLossError, InvalidArgumentError, NoSpaceError
from dwcore.pool import Pool, devstate
from dwcore.pool.growth import STATE_NAME, BeyondPool, Zone, _zones_of
from dwcore.pool.statefile import read_state, write_state
from dwcore.pool.status import DeviceState
from dwcore.raid import Member, Raid1, Raid5, Raid6, RoleKind, StripeMap
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


def zones_of(pool: BeyondPool, ext: Any) -> list[Any]:
    eng = pool.zones
    return [eng.zones[z] for z, _, _ in eng.extents[ext.first_row]]


# -- devices that really differ in size ---------------------------------------------

BLOCK = 4096
#: Device sizes (MiB) whose data areas hold about 1, 2, 3, 4 MiB of zones.
RAW = [3, 4, 5, 6]


def zone_bytes_of(device_size: int) -> int:
    """Zone bytes a device holds, from the documented geometry (independent of the pool):
    1 MiB metadata at each end (the last one MiB-aligned), then zone slots followed by
    a 4-byte CRC per block, the table rounded up to a block."""
    area = device_size - device_size % MiB - 2 * MiB
    u = area - area % Z
    while u + -(-(u // BLOCK * 4) // BLOCK) * BLOCK > area:
        u -= Z
    return u


def make_real(
    tmp_path: Any, dev_mib: Sequence[float], mode: str = "single", name: str = "pool"
) -> tuple[Rig, BeyondPool]:
    """A pool on RAM devices of really different sizes, no device_size: each contributes
    what it holds."""
    path = str(tmp_path / name)
    os.makedirs(path, exist_ok=True)
    inners = [RamDevice(int(s * MiB), name=f"{name}-{i}") for i, s in enumerate(dev_mib)]
    rig = Rig(path, inners)
    rig.rewrap()
    pool = Pool.create(path, "beyond", rig.wrappers, None, chunk_size=CHUNK, zone_size=Z, mode=mode)
    assert isinstance(pool, BeyondPool)
    return rig, pool


def built_real(
    tmp_path: Any, dev_mib: Sequence[float], mode: str, count: int = 40, name: str = "pool"
) -> tuple[Rig, BeyondPool, Ref]:
    rig, pool = make_real(tmp_path, dev_mib, mode, name)
    rng = np.random.default_rng(seed_of("beyond-real", dev_mib, mode))
    edge = [1, 4095, 4097, CHUNK, 3 * CHUNK + 1, 150 * KiB]
    ref = fill(pool, rng, edge + [int(x) for x in rng.integers(1, 3 * CHUNK, count)])
    pool.sync()
    return rig, pool, ref


def reopen(rig: Rig) -> BeyondPool:
    """The pool on the rig's devices, opened again (fresh wrappers)."""
    pool = Pool.open(rig.path, devices=rig.rewrap())
    assert isinstance(pool, BeyondPool)
    return pool


def grow_rig(rig: Rig, size: int) -> FaultyDevice:
    """A new RAM device for the rig (its wrapper, for ``add_device``)."""
    rig.inners.append(RamDevice(size, name=f"{os.path.basename(rig.path)}-{len(rig.inners)}"))
    rig.wrappers.append(FaultyDevice(rig.inners[-1], close_inner=False))
    return rig.wrappers[-1]


def slot_bound(pool: BeyondPool) -> int:
    """The spec's capacity bound for the zone slots the devices hold now."""
    return bound(pool.zones.slots(), pool.layout.mode) * Z


# -- the oracle: each zone stripe's codec, from the placement function ---------------

SCHEMES = {"mirror": Raid1, "mirror3": Raid1, "raid5": Raid5, "raid6": Raid6}


def zone_stripe(zone: Zone, s: int) -> StripeMap:
    """Stripe ``s`` of a zone from the md layouts (§1) over its members, on real devices."""
    sm = SCHEMES[zone.scheme](zone.width, CHUNK).stripe(s)
    members = tuple(
        Member(zone.members[m.device][0], m.device_offset, m.length, m.role) for m in sm.members
    )
    return StripeMap(s, sm.codec, sm.k, members)


def extent_rows(pool: BeyondPool, ext: Any) -> Iterator[tuple[StripeMap, set[int]]]:
    """Each row of ``ext``: its zone stripe and the data indices holding extent bytes (the
    documented mapping: pieces of rows cut at zone-stripe boundaries; inside a segment
    of n rows data index d holds bytes ``[off + d·n·B, off + (d+1)·n·B)``)."""
    eng, rpc, off = pool.zones, CHUNK // BLOCK, 0
    for z, r0, n in eng.extents[ext.first_row]:
        zone = eng.zones[z]
        g = r0
        while g < r0 + n:
            s, r = divmod(g, rpc)
            m = min(rpc - r, r0 + n - g)
            sm = zone_stripe(zone, s)
            for i in range(m):
                yield sm, {d for d in range(sm.k) if off + d * m * BLOCK + i * BLOCK < ext.length}
            off += m * sm.k * BLOCK
            g += m


def must_lose(pool: BeyondPool, ext: Any, failed: frozenset[int]) -> bool:
    """True when some row of ``ext`` is not decodable by its codec with ``failed`` erased."""
    return any(_row_lost(sm, used, failed) for sm, used in extent_rows(pool, ext))


def check_failure_set(
    pool: BeyondPool, ref: Ref, failed: frozenset[int], rng: np.random.Generator
) -> int:
    """Every extent byte-identical where the oracle says decodable, DataLossError naming a
    failed device where not (nothing lost when F is within the guarantee); 100 random
    unaligned sub-reads (1 000 slow) when F loses nothing.  Returns how many extents
    were lost."""
    lost = 0
    for ext, data in ref:
        must = must_lose(pool, ext, failed)
        try:
            got = pool.read(ext)
        except DataLossError as exc:
            assert must, f"F={sorted(failed)}: {ext!r} raised {exc}"
            assert set(exc.failed) & failed, f"F={sorted(failed)}: names {exc.failed}"
            lost += 1
            continue
        assert not must, f"F={sorted(failed)}: {ext!r} read although the oracle says lost"
        assert got == data, f"F={sorted(failed)}: WRONG BYTES"
    if len(failed) <= pool.layout.fault_tolerance:
        assert lost == 0
    if not lost:
        check_all(pool, ref, rng, 1000 if SLOW else 100)
    return lost


def built(
    tmp_path: Any, sizes: list[float], mode: str, count: int = 40, name: str = "pool"
) -> tuple[Rig, Any, Ref]:
    rig, pool = make(tmp_path, sizes, mode, name)
    rng = np.random.default_rng(seed_of("beyond", sizes, mode))
    edge = [1, 4095, 4097, CHUNK, 3 * CHUNK + 1, 150 * KiB]
    ref = fill(pool, rng, edge + [int(x) for x in rng.integers(1, 3 * CHUNK, count)])
    pool.sync()
    return rig, pool, ref


@pytest.mark.parametrize(
    ("sizes", "mode", "real"),
    [
        (RAW, "single", True),
        (RAW, "dual", True),
        ([2, 2, 2], "single", False),
        ([1, 1, 2, 2, 3], "dual", False),
    ]
    + ([([1, 1, 2, 3, 3, 4], "single", False), ([3, 3, 4, 5, 6, 6], "dual", True)] if SLOW else []),
)
def test_failure_matrix(tmp_path: Any, sizes: list[float], mode: str, real: bool) -> None:
    """Every F ⊆ devices: expectation from each zone stripe's codec (not the pool's own
    tolerance), never wrong bytes; sub-reads for F within the guarantee."""
    if real:
        rig, pool, ref = built_real(tmp_path, sizes, mode)
    else:
        rig, pool, ref = built(tmp_path, sizes, mode)
    rng = np.random.default_rng(seed_of("beyond-matrix", sizes, mode))
    n = len(sizes)
    lost_somewhere = 0
    for size in range(n + 1):
        for f in itertools.combinations(range(n), size):
            failed = frozenset(f)
            rig.fail(failed)
            if size <= pool.layout.fault_tolerance:
                assert pool.survives(failed) and pool.layout.survives(failed)
            lost_somewhere += check_failure_set(pool, ref, failed, rng)
            rig.heal()
    assert lost_somewhere, "no failure set lost anything"
    assert pool.scrub(repair=False).mismatches == []
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
        # a bounded number of writes (at most 640 KiB): however slowly the re-layout runs
        # on a loaded machine, the pool never fills up and every zone can be widened
        writes = 0
        try:
            while not stop.is_set():
                if writes < 16:
                    fill(pool, rng, [int(rng.integers(1, 40 * KiB))], during)
                    writes += 1
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


class CutAt:
    """A power cut at the ``at``-th write of the re-layout thread (0: never): the pool
    directory's files are copied as they are at that instant and every device of the
    rig stops (all later requests fail), as if the machine died there."""

    def __init__(self, rig: Rig, at: int) -> None:
        self.rig, self.at, self.n = rig, at, 0
        self.files: dict[str, bytes] | None = None

    def tick(self) -> None:
        if threading.current_thread() is threading.main_thread():
            return  # the test's own writes (the fill, add_device's superblocks)
        self.n += 1
        if self.n == self.at:
            self.files = read_tree(self.rig.path)
            for w in self.rig.wrappers:
                w.fail_now("any")

    def restore_files(self) -> None:
        assert self.files is not None
        path = self.rig.path
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        for rel, data in self.files.items():
            with open(os.path.join(path, rel), "wb") as f:
                f.write(data)


class CountingDevice(FaultyDevice):
    """A fault-injecting device that reports each write to a :class:`CutAt` first."""

    def __init__(self, inner: Any, cut: CutAt) -> None:
        super().__init__(inner, close_inner=False)
        self.cut = cut

    def _write(self, offset: int, view: memoryview) -> None:
        self.cut.tick()
        super()._write(offset, view)


def relayout_until(tmp_path: Any, at: int, name: str) -> tuple[Rig, BeyondPool, Ref, CutAt]:
    """[1,1,1] MiB-ish devices filled with 40 extents, then a fourth added: the re-layout
    runs until its ``at``-th write (to the end for 0)."""
    path = str(tmp_path / name)
    os.makedirs(path)
    rig = Rig(path, [RamDevice(3 * MiB, name=f"{name}-{i}") for i in range(3)])
    cut = CutAt(rig, at)
    rig.wrappers = [CountingDevice(d, cut) for d in rig.inners]
    pool = Pool.create(path, "beyond", rig.wrappers, None, chunk_size=CHUNK, zone_size=Z)
    assert isinstance(pool, BeyondPool)
    rng = np.random.default_rng(seed_of("relayout-cut"))
    ref = fill(pool, rng, [int(x) for x in rng.integers(1, 40 * KiB, 40)])
    pool.sync()
    rig.inners.append(RamDevice(3 * MiB, name=f"{name}-3"))
    rig.wrappers.append(CountingDevice(rig.inners[-1], cut))
    pool.add_device(rig.wrappers[-1], wait=True)
    return rig, pool, ref, cut


def test_power_cut_at_points_of_the_relayout(tmp_path: Any) -> None:
    """A power cut (unsynced writes kept at random) at several points of the re-layout:
    after reopening the re-layout resumes by itself and reaches the bound, every
    extent reads back and scrub is clean."""
    rig, pool, ref, cut = relayout_until(tmp_path, 0, "whole")
    total = cut.n
    assert total > 50
    assert pool.status().capacity == slot_bound(pool)
    pool.close()
    points = sorted({1, total // 7, total // 3, total // 2, 2 * total // 3, total - 1})
    for at in points:
        rig, pool, ref, cut = relayout_until(tmp_path, at, f"cut{at}")
        assert cut.files is not None
        pool.close(sync=False)
        for i, w in enumerate(rig.wrappers):
            w.power_cut(seed=seed_of("relayout-cut", at, i), keep="random")
        cut.restore_files()
        pool = reopen(rig)
        assert not pool.status().degraded
        check_all(pool, ref)  # while the re-layout, resumed by itself at open, runs
        pool.wait_relayout()
        check_all(pool, ref)
        assert pool.scrub(repair=False).mismatches == [], f"cut at write {at}"
        assert pool.status().capacity == slot_bound(pool)
        assert all(z.width == 4 for z in pool.zones.zones.values()), f"cut at write {at}"
        check_all(pool, ref)
        assert pool.scrub(repair=False).mismatches == []
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
    pool = reopen(rig)
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


# -- devices of really different sizes ------------------------------------------------


@pytest.mark.parametrize("mode", ["single", "dual"])
def test_real_mixed_devices_fill_reopen_and_fail(tmp_path: Any, mode: str) -> None:
    """Devices of 3..6 MiB (about 1..4 MiB of zones each) without device_size: each
    contributes what it holds, capacity is the bound, it fills, reopens, and every
    failure set within the guarantee reads everything."""
    rig, pool = make_real(tmp_path, RAW, mode)
    slots = [zone_bytes_of(s * MiB) // Z for s in RAW]
    assert pool.zones.slots() == slots and len(set(slots)) == 4
    want = bound(slots, mode) * Z
    assert pool.status().capacity == want
    for d in rig.inners:  # both superblock copies lie inside each device, for its size
        copies = read_superblock_copies(d)
        assert copies.primary is not None and copies.backup is not None
        assert copies.primary.device_size == d.size
    rng = np.random.default_rng(seed_of("real-fill", mode))
    ref = Ref()
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [int(rng.integers(1, 60 * KiB))], ref)
    assert pool.status().used >= 0.85 * want
    check_all(pool, ref)
    pool.close()
    pool = reopen(rig)
    assert pool.status().capacity == want and not pool.status().degraded
    check_all(pool, ref)
    tol = pool.layout.fault_tolerance
    for size in range(1, tol + 1):  # each device, and in dual mode each pair
        for f in itertools.combinations(range(len(RAW)), size):
            rig.fail(f)
            check_all(pool, ref)
            rig.heal()
    pool.close()


def test_mixed_size_files_reopen_and_rebuild(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sparse files of 3..6 MiB given as paths: the pool reopens from its manifest,
    healthy reads take the native path (one call per checksum-table offset, the
    members' tables lying at different offsets), and a failed device is replaced by
    a new file sized for what it contributed and rebuilt."""
    paths = []
    for i, mib in enumerate(RAW):
        p = tmp_path / f"disk{i}"
        with open(p, "wb") as f:
            f.truncate(mib * MiB)
        paths.append(str(p))
    pool = Pool.create(tmp_path / "pool", "beyond", paths, None, chunk_size=CHUNK, zone_size=Z)
    assert isinstance(pool, BeyondPool)
    assert pool.zones.slots() == [zone_bytes_of(s * MiB) // Z for s in RAW]
    rng = np.random.default_rng(17)
    ref = fill(
        pool, rng, [150 * KiB, 3 * CHUNK + 1] + [int(x) for x in rng.integers(1, 90 * KiB, 30)]
    )
    pool.close()
    pool = Pool.open(tmp_path / "pool")
    assert isinstance(pool, BeyondPool)
    native: list[bool] = []
    real = pool._read_chunks

    def spy(*args: Any) -> Any:
        got = real(*args)
        native.append(got is not None)
        return got

    monkeypatch.setattr(pool, "_read_chunks", spy)
    check_all(pool, ref, rng, 100)
    assert native and all(native)
    pool.fail_device(3)
    check_all(pool, ref)
    pool.replace_device(3)
    pool.rebuild()
    assert not pool.status().degraded
    assert pool.scrub(repair=False).mismatches == []
    pool.fail_device(0)  # redundancy restored: another device may go
    check_all(pool, ref, rng, 100)
    pool.close()


def test_mixed_sizes_are_checked(tmp_path: Any) -> None:
    """A device smaller than what it is asked to contribute is refused (create, replace,
    add); new files are sized for what they contribute; other levels need device_size."""
    small = [RamDevice(3 * MiB), RamDevice(4 * MiB), RamDevice(4 * MiB)]
    with pytest.raises(InvalidArgumentError, match="less than the 2097152 bytes"):
        Pool.create(
            tmp_path / "a",
            "beyond",
            small,
            None,
            chunk_size=CHUNK,
            zone_size=Z,
            sizes=[2 * MiB] * 3,
        )
    assert not os.path.exists(tmp_path / "a")  # refused before anything was written
    with pytest.raises(InvalidArgumentError, match="does not exist yet"):
        Pool.create(tmp_path / "b", "beyond", 3, None, chunk_size=CHUNK, zone_size=Z)
    with pytest.raises(InvalidArgumentError, match="device_size is required"):
        Pool.create(tmp_path / "c", "5", 3, None, chunk_size=CHUNK)
    pool = Pool.create(
        tmp_path / "d",
        "beyond",
        3,
        None,
        chunk_size=CHUNK,
        zone_size=Z,
        sizes=[MiB, 2 * MiB, 2 * MiB],
    )
    assert isinstance(pool, BeyondPool)
    assert pool.zones.slots() == [16, 32, 32]
    assert pool.status().capacity == bound([16, 32, 32], "single") * Z
    rng = np.random.default_rng(5)
    ref = fill(pool, rng, [int(x) for x in rng.integers(1, 60 * KiB, 20)])
    pool.fail_device(1)
    with pytest.raises(InvalidArgumentError, match="less than the 2097152 bytes device 1"):
        pool.replace_device(1, RamDevice(3 * MiB))
    pool.replace_device(1)  # a new file, sized for what device 1 contributed
    pool.rebuild()
    assert not pool.status().degraded
    check_all(pool, ref)
    with pytest.raises(InvalidArgumentError, match="less than the 3145728 bytes"):
        pool.add_device(RamDevice(3 * MiB), size=3 * MiB)
    pool.close()


@pytest.mark.parametrize(
    ("dev_mib", "add_mib", "mode"),
    [([3, 3, 6], 6, "single"), ([4, 4, 4], 4, "dual"), ([3, 3, 3], 9, "single")],
    ids=["1-1-4+4-single", "2-2-2+2-dual", "1-1-1+8-single"],
)
def test_growth_reaches_the_new_bound(
    tmp_path: Any, dev_mib: list[int], add_mib: int, mode: str
) -> None:
    """Add a device to a pool 60 % full: it contributes its real size, the re-layout
    reaches the new bound, everything reads under every failure set within the
    guarantee, and the new capacity really fills."""
    rig, pool = make_real(tmp_path, dev_mib, mode)
    before = pool.status().capacity
    assert before == slot_bound(pool)
    rng = np.random.default_rng(seed_of("growth", dev_mib, add_mib, mode))
    ref = Ref()
    while pool.status().used < 0.6 * before:
        fill(pool, rng, [int(rng.integers(1, 40 * KiB))], ref)
    pool.sync()
    assert pool.add_device(grow_rig(rig, add_mib * MiB), wait=True) == len(dev_mib)
    assert pool.zones.slots()[-1] == zone_bytes_of(add_mib * MiB) // Z
    after = pool.status().capacity
    assert after == slot_bound(pool) > before
    check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    n, tol = len(dev_mib) + 1, pool.layout.fault_tolerance
    for f in itertools.combinations(range(n), tol):
        rig.fail(f)
        check_all(pool, ref)
        rig.heal()
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [int(rng.integers(1, 60 * KiB))], ref)
    assert pool.status().used > before  # more than the old capacity holds now
    pool.close()
    pool = reopen(rig)
    assert pool.status().capacity == after
    check_all(pool, ref)
    pool.close()


def test_relayout_serves_requests_between_the_extents_it_moves(tmp_path: Any) -> None:
    """The re-layout holds the pool lock per extent: reads and writes complete while a
    zone it is emptying has given up some of its extents and still holds others."""
    rig, pool = make_real(tmp_path, [3, 3, 3], "single")
    rng = np.random.default_rng(21)
    ref = fill(pool, rng, [int(x) for x in rng.integers(1, 24 * KiB, 60)])
    pool.sync()
    eng = pool.zones

    def inside(zone: int) -> set[int]:
        """The extents with rows in ``zone`` only (emptying any other zone leaves them)."""
        return {i for i, p in eng.extents.items() if all(z == zone for z, _, _ in p)}

    with pool._lock:
        start = {z: inside(z) for z in eng.zones}
    start = {z: u for z, u in start.items() if len(u) >= 2}
    assert len(start) >= 5
    items = list(ref)
    during = Ref()
    served = mid_zone = 0
    pool.add_device(grow_rig(rig, 3 * MiB))  # the re-layout runs in the background
    for _ in range(60):  # bounded: a few small writes, well inside the free space
        with pool._lock:
            if all(z.width == 4 for z in eng.zones.values()):
                break
        fill(pool, rng, [int(rng.integers(1, 8 * KiB))], during)
        ext, data = items[int(rng.integers(0, len(items)))]
        assert pool.read(ext) == data
        served += 1
        with pool._lock:
            # a zone that gave some of its own extents away and still holds others
            mid_zone += any(0 < len(inside(z) & u) < len(u) for z, u in start.items())
    pool.wait_relayout()
    assert served > 0 and mid_zone > 0, (served, mid_zone)
    assert pool.status().capacity == slot_bound(pool)
    check_all(pool, ref)
    check_all(pool, during)
    pool.close()


# -- rebuild and re-layout together, the zone table's format ---------------------------


def states(pool: BeyondPool) -> list[DeviceState]:
    return [d.state for d in pool.status().devices]


def test_a_device_replaced_during_rebuild_stays_rebuilding(tmp_path: Any) -> None:
    """Device 1 fails and is replaced after the rebuild of device 0 did its last zone:
    the rebuild brings only device 0 ONLINE; device 1 stays REBUILDING (degraded) until
    the next rebuild, after which any further failure is survived."""
    rig, pool, ref = built(tmp_path, [2, 2, 2], "single", count=20)
    rig.fail([0])
    pool.fail_device(0)
    pool.replace_device(0, rig.replace_inner(0))
    steps: list[tuple[int, int]] = []

    def late(done: int, total: int) -> None:
        steps.append((done, total))
        if done == total:  # every zone of device 0 is rebuilt: device 1 may go now
            rig.fail([1])
            pool.fail_device(1)
            pool.replace_device(1, rig.replace_inner(1))

    pool.rebuild(progress=late)
    assert steps and steps[-1][0] == steps[-1][1]
    st = pool.status()
    assert states(pool) == [DeviceState.ONLINE, DeviceState.REBUILDING, DeviceState.ONLINE]
    assert st.degraded
    check_all(pool, ref)
    pool.rebuild()
    assert states(pool) == [DeviceState.ONLINE] * 3 and not pool.status().degraded
    assert pool.scrub(repair=False).mismatches == []
    for f in range(3):  # redundancy really restored on both replacements
        rig.fail([f])
        check_all(pool, ref)
        rig.heal()
    pool.close()


def test_rebuild_while_the_relayout_releases_its_zones(tmp_path: Any) -> None:
    """Devices [2, 2, 1] MiB: mirror zones on devices 0 and 1 after the RAID 5 ones.
    Device 0 is replaced; during its rebuild a device is added and the re-layout
    empties mirror zones the rebuild still has to do into free rows of other zones
    (some on the replacement).  The rebuild skips the released zones, finishes, and
    everything reads with any one device lost."""
    rig, pool = make(tmp_path, [2, 2, 1], "single")
    rng = np.random.default_rng(31)
    ref = Ref()
    while pool.status().used < 2.1 * MiB:
        fill(pool, rng, [int(rng.integers(1, 24 * KiB))], ref)
    eng = pool.zones
    assert any(z.width == 2 and eng._used[z.id].any() for z in eng.zones.values())
    items = list(ref)
    keep = Ref()
    for n, (ext, data) in enumerate(items):  # free rows in the zones written first
        if n % 2 == 0 and all(z.width == 3 for z in zones_of(pool, ext)):
            pool.free(ext)
        else:
            keep.add(ext, data)
    pool.sync()
    rig.fail([0])
    pool.fail_device(0)
    pool.replace_device(0, rig.replace_inner(0))
    with pool._lock:
        on_0 = {z.id for z in eng.zones.values() if any(d == 0 for d, _ in z.members)}

    def grow(done: int, total: int) -> None:
        if done == 1:
            pool.add_device(grow_rig(rig, DEV), size=2 * MiB)
            pool.wait_relayout()

    pool.rebuild(progress=grow)
    pool.wait_relayout()  # it resumed after the rebuild: let it finish before failing devices
    assert on_0 - set(eng.zones), "the re-layout released none of the rebuild's zones"
    assert states(pool) == [DeviceState.ONLINE] * 4 and not pool.status().degraded
    check_all(pool, keep)
    assert pool.scrub(repair=False).mismatches == []
    for f in range(4):
        rig.fail([f])
        check_all(pool, keep)
        rig.heal()
    pool.relayout(wait=True)
    assert pool.status().capacity == slot_bound(pool)
    check_all(pool, keep)
    pool.close()


def test_relayout_waits_for_a_pending_replacement(tmp_path: Any) -> None:
    """With device 0 replaced but not rebuilt, a new zone can use only the online
    devices: adding a device moves nothing (no zone is evacuated into one as narrow);
    after the rebuild the re-layout reaches the bound."""
    rig, pool, ref = built(tmp_path, [1, 1, 1], "single", count=20)
    eng = pool.zones
    rig.fail([0])
    pool.fail_device(0)
    pool.replace_device(0, rig.replace_inner(0))
    with pool._lock:
        table = {z.id: list(z.members) for z in eng.zones.values()}
        extents = {i: list(p) for i, p in eng.extents.items()}
    pool.add_device(grow_rig(rig, DEV), size=MiB, wait=True)
    with pool._lock:
        assert {z.id: list(z.members) for z in eng.zones.values()} == table
        assert eng.extents == extents
    pool.rebuild()  # the re-layout resumes by itself once nothing is pending
    pool.wait_relayout()
    assert all(z.width == 4 for z in eng.zones.values())
    assert pool.status().capacity == slot_bound(pool)
    check_all(pool, ref)
    pool.close()


def _device_tables(rig: Rig, pool: BeyondPool) -> dict[int, list[int]]:
    """Per device, the generations of the zone table records it holds (fresh scan)."""
    store = devstate.RecordStore(pool.pool_id, devstate.KIND_ZONE_TABLE, pool.zones._metadata_areas)
    out: dict[int, list[int]] = {}
    for rec in store.scan(enumerate(rig.inners)):
        out.setdefault(rec.device, []).append(rec.generation)
    return out


def _table(pool: BeyondPool) -> dict[int, tuple[str, list[tuple[int, int]]]]:
    with pool._lock:
        return {z.id: (z.scheme, list(z.members)) for z in pool.zones.zones.values()}


def test_zone_table_is_on_every_device(tmp_path: Any) -> None:
    """§6: the zone table is replicated on every device (both metadata areas, the newer
    record first); zones.json names its generation and CRC and holds only extents."""
    rig, pool, ref = built(tmp_path, [1, 2, 3, 4], "single", count=30)
    gen = pool.zones.zone_gen[0]
    held = _device_tables(rig, pool)
    assert sorted(held) == [0, 1, 2, 3] and all(max(g) == gen for g in held.values())
    store = devstate.RecordStore(pool.pool_id, devstate.KIND_ZONE_TABLE, pool.zones._metadata_areas)
    for d in range(4):
        rec = store.load([(d, rig.inners[d])])
        assert rec is not None and rec.generation == gen
        zones, _ = _zones_of(rec.payload)
        assert {z.id: (z.scheme, list(z.members)) for z in zones} == _table(pool)
    state = read_state(os.path.join(rig.path, STATE_NAME), "zone table", 99)
    assert state is not None and "zones" not in state and state["zone_gen"] == gen
    # more zones: a new generation everywhere, the previous one still in the other area
    fill(pool, np.random.default_rng(3), [60 * KiB] * 12, ref)
    pool.sync()
    assert pool.zones.zone_gen[0] > gen
    assert all(max(g) == pool.zones.zone_gen[0] for g in _device_tables(rig, pool).values())
    pool.close()
    pool = reopen(rig)
    check_all(pool, ref)
    pool.close()


def test_zone_table_survives_damaged_copies_and_is_rewritten(tmp_path: Any) -> None:
    """Copies destroyed on all devices but one: the pool opens from that one and the next
    sync writes the table back to the others; with no copy left, a clear DataLossError."""
    rig, pool, ref = built(tmp_path, [2, 2, 2], "single", count=20)
    pool.close()
    areas = pool.zones._metadata_areas
    for d in (0, 1):
        for a in areas(d):
            rig.inners[d].pwrite(a.offset, bytes(a.size))
    pool = reopen(rig)
    check_all(pool, ref)
    assert sorted(_device_tables(rig, pool)) == [2]
    pool.sync()
    assert sorted(_device_tables(rig, pool)) == [0, 1, 2]
    pool.close()
    for d in range(3):
        a = areas(d)[0]
        rig.inners[d].pwrite(a.offset + 100, b"\xff" * 64)  # corrupt, not blank
        a = areas(d)[1]
        rig.inners[d].pwrite(a.offset + 100, b"\xff" * 64)
    with pytest.raises(DataLossError, match="zone table generation"):
        reopen(rig)


def test_zone_table_crash_before_the_map_commit(tmp_path: Any, monkeypatch: Any) -> None:
    """A crash after the new table reached the devices but before zones.json named it:
    the reopened pool uses the generation zones.json names (still in the other area), and
    later saves never overwrite it before zones.json moves on."""
    rig, pool, ref = built(tmp_path, [1, 1, 1], "single", count=10)
    committed = pool.zones.zone_gen
    import dwcore.pool.growth as growth

    def crash(path: str, state: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(growth, "write_state", crash)
    rng = np.random.default_rng(9)
    lost = Ref()
    fill(pool, rng, [60 * KiB] * 6, lost)  # new zones: a new table generation
    with pytest.raises(OSError, match="power cut"):
        pool.sync()
    monkeypatch.undo()
    assert max(max(g) for g in _device_tables(rig, pool).values()) > committed[0]
    pool.close(sync=False)
    for round_ in range(3):
        pool = reopen(rig)
        if round_ == 0:
            assert pool.zones.zone_gen == committed
        check_all(pool, ref)
        fill(pool, rng, [60 * KiB] * 4, ref)
        pool.sync()
        pool.close()
    pool = reopen(rig)
    check_all(pool, ref)
    pool.close()


def test_zone_table_after_a_failed_map_write(tmp_path: Any, monkeypatch: Any) -> None:
    """zones.json cannot be written once (ENOSPC): the table it still names stays the
    committed one, so a later crash between the next table record and zones.json still
    finds it (the reviewer's case: the next record used to overwrite it)."""
    rig, pool, ref = built(tmp_path, [1, 1, 1], "single", count=10)
    import dwcore.pool.growth as growth

    real = growth.write_state

    def enospc(path: str, state: Any) -> None:
        raise OSError(28, "No space left on device")

    rng = np.random.default_rng(12)
    monkeypatch.setattr(growth, "write_state", enospc)
    fill(pool, rng, [60 * KiB] * 6, Ref())  # new zones: a new table generation
    with pytest.raises(OSError, match="No space"):
        pool.sync()
    monkeypatch.setattr(growth, "write_state", real)
    fill(pool, rng, [60 * KiB] * 6, Ref())

    class Kill(BaseException):
        """The process dies just before zones.json is replaced."""

    def killed(path: str, state: Any) -> None:
        raise Kill

    monkeypatch.setattr(growth, "write_state", killed)
    with pytest.raises(Kill):
        pool.sync()
    monkeypatch.undo()
    pool.close(sync=False)
    pool = reopen(rig)
    check_all(pool, ref)
    fill(pool, rng, [60 * KiB] * 4, ref)
    pool.sync()
    pool.close()
    pool = reopen(rig)
    check_all(pool, ref)
    pool.close()


def test_zone_table_reaches_replacements_and_added_devices(tmp_path: Any) -> None:
    rig, pool, ref = built(tmp_path, [1, 1, 1], "single", count=10)
    rig.fail([1])
    pool.fail_device(1)
    pool.replace_device(1, rig.replace_inner(1))
    pool.sync()
    assert 1 in _device_tables(rig, pool)
    pool.rebuild()
    pool.add_device(grow_rig(rig, DEV), size=MiB, wait=True)
    pool.sync()
    gen = pool.zones.zone_gen[0]
    assert all(max(g) == gen for g in _device_tables(rig, pool).values())
    assert sorted(_device_tables(rig, pool)) == [0, 1, 2, 3]
    check_all(pool, ref)
    pool.close()
    pool = reopen(rig)
    check_all(pool, ref)
    pool.close()


def test_zone_table_too_big_for_the_metadata_area_is_refused(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="would not fit"):
        Pool.create(tmp_path / "big", "beyond", 4, 256 * MiB, chunk_size=4 * KiB, zone_size=4 * KiB)
    assert not os.path.exists(tmp_path / "big" / STATE_NAME)


def test_zone_table_format_migrates(tmp_path: Any) -> None:
    """zones.json formats 1 and 2 (the zone table in the file, as earlier releases wrote
    it, nothing on the devices) still open and move to format 3 at open; a newer format
    is refused with a clear error."""
    rig, pool = make_real(tmp_path, RAW)
    ref = fill(pool, np.random.default_rng(6), [int(x) for x in range(1, 60 * KiB, 7 * KiB)])
    pool.sync()
    table = _table(pool)
    pool.close()
    path = os.path.join(rig.path, STATE_NAME)
    state = read_state(path, "zone table", 99)
    assert state is not None and state["version"] == 3
    for old in (1, 2):
        old_state = {k: v for k, v in state.items() if k not in ("zone_gen", "zone_crc")}
        old_state["version"] = old
        old_state["zones"] = [
            {"id": i, "scheme": sch, "members": [list(m) for m in mem]}
            for i, (sch, mem) in table.items()
        ]
        write_state(path, old_state)
        for inner in rig.inners:
            for a in devstate.metadata_areas(inner.size):
                inner.pwrite(a.offset, bytes(a.size))
        pool = reopen(rig)
        assert _table(pool) == table
        check_all(pool, ref)
        pool.close()
        state = read_state(path, "zone table", 99)
        assert state is not None and state["version"] == 3 and "zones" not in state
        assert sorted(_device_tables(rig, pool)) == list(range(len(RAW)))
    write_state(path, {**state, "version": 4})
    with pytest.raises(InvalidArgumentError, match="newer"):
        reopen(rig)


# -- §0.5 items: degraded write, rebuild against a twin ---------------------------------


@pytest.mark.parametrize("mode", ["single", "dual"])
def test_degraded_write(tmp_path: Any, mode: str) -> None:
    """With a survivable F lost, overwrite 10 % at random: everything reads back, also
    after a reopen with F still lost."""
    rig, pool, ref = built_real(tmp_path, RAW, mode)
    rng = np.random.default_rng(seed_of("degraded-write", mode))
    tol = pool.layout.fault_tolerance
    failed = frozenset(int(x) for x in rng.choice(len(RAW), size=tol, replace=False))
    rig.fail(failed)
    overwrite_some(pool, ref, rng, 0.1)
    check_all(pool, ref, rng, 100)
    pool.sync()
    pool.close()
    pool = reopen(rig)
    rig.fail(failed)
    check_all(pool, ref, rng, 100)
    pool.close()


@pytest.mark.parametrize("mode", ["single", "dual"])
def test_rebuild_onto_blank_replacements_matches_a_twin(tmp_path: Any, mode: str) -> None:
    """Replace F (the smallest device among it) by blank devices of the same sizes and
    rebuild: (a) content, (b) every allocated extent's member blocks equal those of a
    twin that never failed, (c) scrub finds nothing, (d) a different survivable set
    then still reads back."""
    rig, pool, ref = built_real(tmp_path, RAW, mode, name="a")
    twin_rig, twin, _ = built_real(tmp_path, RAW, mode, name="b")
    table = [(z.scheme, z.members) for z in pool.zones.zones.values()]
    assert table == [(z.scheme, z.members) for z in twin.zones.zones.values()]
    assert pool.zones.extents == twin.zones.extents
    failed, other = ([0], [2]) if mode == "single" else ([0, 3], [1, 2])
    rig.fail(failed)
    for i in failed:
        pool.fail_device(i)
        pool.replace_device(i, rig.replace_inner(i, RAW[i] * MiB))
    pool.rebuild()
    assert not pool.status().degraded
    check_all(pool, ref)
    base = MiB  # the data area follows the 1 MiB metadata area on every device
    for ext, _ in ref:
        for dev, off, n in pool.zones.physical(ext):
            mine = rig.inners[dev].pread(base + off, n)
            assert mine == twin_rig.inners[dev].pread(base + off, n), (ext, dev, off)
    assert pool.scrub(repair=False).mismatches == []
    rig.fail(other)
    check_all(pool, ref, np.random.default_rng(9), 100)
    pool.close()
    twin.close()


# -- golden: the layered allocation and md's order inside a zone --------------------------


def simulate_layered(slots: list[int], mode: str) -> list[tuple[str, list[tuple[int, int]]]]:
    """The spec's allocator, written out: the next zone takes one slot (the lowest free
    one) on each of the min(w_max, #devices with a free slot) devices with the most
    free slots (ties: lower index); mirror/RAID 5 (single), 3-way mirror/RAID 6 (dual)."""
    free = [list(range(n)) for n in slots]
    out: list[tuple[str, list[tuple[int, int]]]] = []
    while True:
        have = [d for d in range(len(slots)) if free[d]]
        if len(have) < (2 if mode == "single" else 3):
            return out
        pick = sorted(have, key=lambda d: (-len(free[d]), d))[: min(16, len(have))]
        w = len(pick)
        if mode == "single":
            scheme = "mirror" if w == 2 else "raid5"
        else:
            scheme = "mirror3" if w == 3 else "raid6"
        out.append((scheme, [(d, free[d].pop(0)) for d in pick]))


def md_position(scheme: str, w: int, s: int, kind: RoleKind, index: int) -> int:
    """Member position (in zone-table order) of a role in stripe ``s``: md's
    left-symmetric (``raid5_compute_sector``: P at w-1-(s mod w), Q after it, data
    from the next one on, wrapping); mirrors: copy i on member i."""
    if scheme in ("mirror", "mirror3"):
        return index
    pd = w - 1 - s % w
    if kind is RoleKind.P:
        return pd
    if kind is RoleKind.Q:
        return (pd + 1) % w
    return (pd + (1 if scheme == "raid5" else 2) + index) % w


@pytest.mark.parametrize("mode", ["single", "dual"])
def test_golden_layered_allocation_and_zone_member_order(tmp_path: Any, mode: str) -> None:
    """[1,2,3,4] (16, 32, 48, 64 slots): the zone table a full pool built equals the
    independently simulated allocator (devices, slots, scheme per zone), its capacity
    is the spec's example (single 6, dual 3 units of 16 zones), and inside each zone
    the members follow md's left-symmetric order over the zone-table order."""
    _rig, pool = make(tmp_path, [1, 2, 3, 4], mode)
    rng = np.random.default_rng(2)
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [60 * KiB])
    eng = pool.zones
    got = [(z.scheme, z.members) for z in sorted(eng.zones.values(), key=lambda z: z.id)]
    assert got == simulate_layered([16, 32, 48, 64], mode)
    assert pool.status().capacity == (6 if mode == "single" else 3) * 16 * Z
    seen = set()
    for zone in eng.zones.values():
        if (zone.scheme, zone.width) in seen:
            continue
        seen.add((zone.scheme, zone.width))
        for s in range(Z // CHUNK):
            sm = eng.stripe_map(zone, s)
            for m in sm.members:
                index = m.role.index if m.role.kind in (RoleKind.DATA, RoleKind.COPY) else 0
                dev, slot = zone.members[
                    md_position(zone.scheme, zone.width, s, m.role.kind, index)
                ]
                assert (m.device, m.device_offset) == (dev, slot * Z + s * CHUNK), (zone, s, m)
    assert len(seen) >= 2
