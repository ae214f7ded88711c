"""The §0.5 conformance template through the pool for the issue 7 levels.

RAID 2, 3, 4, 01, 03, 50, 60, 100, 1E, 5E, 5EE, 6E and MD10 (near, far, offset), on RAM devices
behind :class:`~dwcore.devices.FaultyDevice`:

1. fill with seeded random extents (1 B … 3·C and larger), ≥ 2 rotation
   periods of stripes, against a reference;
2. failure matrix: every F ⊆ devices (N ≤ 8) where the level's best case
   exceeds its guarantee or N ≤ 6, else |F| ≤ tolerance+1 (every subset with
   ``DWCORE_SLOW_TESTS=1``; for N > 8 every |F| ≤ tolerance+1 and 200 random
   larger sets), each from the same saved image: survivable F read
   byte-identical plus random unaligned sub-reads; otherwise each extent reads
   correctly or raises DataLossError naming failed devices exactly as its rows
   dictate (``levels7_pool.extent_lost``), never wrong bytes;
3. degraded writes, then rebuild onto blank devices;
4. rebuild restores redundancy: rebuilt devices equal the never-failed twin
   in every allocated block, scrub is clean, a different failure set reads;
5. silent corruption found and repaired by scrub (data and parity) and by read;
6. power cuts: every acknowledged extent survives, also with a device failed;
7. RAID 5EE: compaction into the spare chunks (only those written, one chunk
   per stripe), then a second failure survived; a crash in the middle of
   compaction; expansion back onto a replacement equal to the twin;
8. RAID 5E / 6E: compression onto the spare space, then one (6E: two) more
   failures survived and one beyond that lost; a power cut in the middle of
   a stripe's move (resumed from the backup); expansion equal to the twin.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import pytest
from levels7_pool import (
    BLOCK,
    DATA_OFFSET,
    SLOW,
    Built,
    cfg_id,
    failure_sets,
    member_stripes,
    overwrite_some,
    seed_of,
)
from pool_helpers import (
    Image,
    KiB,
    Ref,
    check_all,
    fill,
    quiet_close,
    sizes_for,
    sub_reads,
)

from dwcore.errors import DataLossError, DWError
from dwcore.pool import DeviceState, Pool
from dwcore.pool.spare import BACKUP_NAME, compact, compress, expand

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

Cfg = tuple[str, int, dict[str, Any]]

#: (level, N, options) run by default; ``SLOW_CONFIGS`` add to them with DWCORE_SLOW_TESTS=1.
DEFAULT_CONFIGS: list[Cfg] = [
    ("2", 7, {}),
    ("3", 3, {}),
    ("3", 5, {}),
    ("3", 8, {}),
    ("4", 3, {}),
    ("4", 5, {}),
    ("4", 8, {}),
    ("01", 4, {}),
    ("01", 6, {}),
    ("03", 6, {}),
    ("50", 6, {}),
    ("50", 8, {}),
    ("60", 8, {}),
    ("100", 8, {"top_chunk_size": 48 * KiB}),  # N=8: C = 16 KiB, C2 = 3·C ≠ C·G
    ("1E", 3, {}),
    ("1E", 5, {}),
    ("1E", 8, {}),
    ("MD10", 4, {"layout": "f2"}),
    ("MD10", 5, {"layout": "n2"}),
    ("MD10", 5, {"layout": "o2"}),
    ("MD10", 5, {"layout": "n2f2"}),
    ("5EE", 4, {}),
    ("5EE", 6, {}),
    ("5E", 4, {}),
    ("5E", 5, {}),
    ("6E", 6, {}),
]
SLOW_CONFIGS: list[Cfg] = [
    ("2", 8, {"secded": True}),
    ("3", 4, {}),
    ("3", 6, {}),
    ("4", 4, {}),
    ("4", 6, {}),
    ("01", 6, {"copies": 3}),
    ("01", 8, {}),
    ("03", 9, {"width": 3}),
    ("03", 8, {}),
    ("50", 9, {"groups": 3}),
    ("60", 10, {}),
    ("100", 8, {}),
    ("100", 12, {"arrays": 3}),
    ("1E", 2, {}),
    ("1E", 4, {}),
    ("1E", 6, {}),
    ("1E", 7, {}),
    ("MD10", 2, {"layout": "n2"}),
    ("MD10", 4, {"layout": "n2"}),
    ("MD10", 6, {"layout": "n3"}),
    ("MD10", 6, {"layout": "f3"}),
    ("MD10", 6, {"layout": "o3"}),
    ("MD10", 7, {"layout": "f2"}),
    ("MD10", 8, {"layout": "o2"}),
    ("MD10", 6, {"layout": "f2", "far_sets": "improved"}),
    ("MD10", 8, {"layout": "n2f2"}),
    ("5EE", 5, {}),
    ("5EE", 8, {}),
    ("5E", 6, {}),
    ("5E", 8, {}),
    ("6E", 5, {}),
    ("6E", 7, {}),  # N=8: 56-stripe rotation period, two periods do not fit 8 MiB devices
]
#: One configuration per level (and per MD10 family) for the other template tests.
ONE: list[Cfg] = [
    ("2", 7, {}),
    ("3", 4, {}),
    ("4", 4, {}),
    ("01", 6, {"copies": 3}),
    ("03", 6, {}),
    ("50", 6, {}),
    ("60", 8, {}),
    ("100", 8, {"top_chunk_size": 48 * KiB}),
    ("1E", 5, {}),
    ("MD10", 5, {"layout": "n2"}),
    ("MD10", 5, {"layout": "f2"}),
    ("MD10", 4, {"layout": "o2"}),
    ("5EE", 5, {}),
    ("5E", 5, {}),
    ("6E", 6, {}),
]
#: The levels that locate-and-repair through parity (for the parity scrub test).
PARITY = [c for c in ONE if c[0] in ("3", "4", "03", "50", "60", "5EE", "5E", "6E")]


def params(cfgs: list[Cfg], slow: bool = False) -> list[Any]:
    marks = [pytest.mark.slow] if slow else []
    return [pytest.param(*c, id=cfg_id(*c), marks=marks) for c in cfgs]


# -- 1 + 2: the failure matrix --------------------------------------------------------------


def best_exceeds_guarantee(layout: Any) -> bool:
    tol = layout.fault_tolerance
    return any(layout.survives(f) for f in itertools.combinations(range(layout.n_devices), tol + 1))


def run_matrix(tmp_path: Any, level: str, n: int, opts: dict[str, Any], exhaustive: bool) -> None:
    b = Built(tmp_path, level, n, opts)
    layout = b.layout
    cov = b.coverage()
    period = max(1, layout.period)
    assert len(cov) >= 2 * period, f"fill used only {len(cov)} stripes, want ≥ {2 * period}"
    assert {s % period for s in cov} == set(range(period)), "a rotation phase is not covered"
    b.pool.close()
    image = Image.save(b.rig)
    tol = layout.fault_tolerance
    fmax = n if exhaustive or n <= 6 or best_exceeds_guarantee(layout) else tol + 1
    rng = np.random.default_rng(seed_of("matrix", level, n, sorted(opts.items())))
    if n <= 8 or (exhaustive and n <= 9):
        sets = failure_sets(n, fmax)
    else:  # beyond the exhaustive range: every |F| <= tolerance+1, then random larger sets
        sets = failure_sets(n, tol + 1)
        larger = rng.permutation(1 << n)
        sets += [
            frozenset(i for i in range(n) if int(x) >> i & 1)
            for x in larger
            if bin(int(x)).count("1") > tol + 1
        ][: 200 if exhaustive else 0]
    problems: list[str] = []
    for F in sets:
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(F)
        try:
            problems += check_failure_set(b, pool, F, rng)
        finally:
            quiet_close(pool)
            b.rig.heal()
        if len(problems) > 40:
            break
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:15])


def check_failure_set(
    b: Built, pool: Pool, F: frozenset[int], rng: np.random.Generator
) -> list[str]:
    tag = f"F={sorted(F)}"
    out: list[str] = []
    survivable = b.layout.survives(F)
    expected_losses = 0
    for ext, data in b.ref:
        lost, may = b.lost(ext, F)
        if survivable and may:
            out.append(f"{tag}: survives() is true but the rows of {ext!r} are lost")
        expected_losses += lost
        try:
            got = pool.read(ext)
        except DataLossError as exc:
            if not may:
                out.append(f"{tag}: {ext!r} raised DataLossError but is recoverable: {exc}")
            if not exc.failed or not set(exc.failed) <= F:
                out.append(f"{tag}: DataLossError names {exc.failed}, not failed devices")
            continue
        except Exception as exc:
            out.append(f"{tag}: {ext!r} raised {type(exc).__name__}: {exc}")
            continue
        if got != data:
            out.append(f"{tag}: {ext!r} returned WRONG BYTES")
        elif lost:
            out.append(f"{tag}: {ext!r} read back although its rows are lost")
    if not survivable and not expected_losses and len(b.coverage()) >= b.layout.period:
        # every stripe phase holds data: some extent must be affected
        out.append(f"{tag}: survives() is false but no stored extent lost anything")
    if survivable:
        items = list(b.ref)
        for _ in range(1000 if SLOW and b.n <= 8 else 100):
            ext, data = items[int(rng.integers(0, len(items)))]
            ((off, ln),) = sub_reads(rng, len(data), 1)
            try:
                got = pool.read(ext, off, ln)
            except Exception as exc:
                out.append(f"{tag}: sub-read [{off},+{ln}) raised {type(exc).__name__}: {exc}")
                continue
            if got != data[off : off + ln]:
                out.append(f"{tag}: sub-read [{off},+{ln}) of {ext!r} returned WRONG BYTES")
    return out


@pytest.mark.parametrize(("level", "n", "opts"), params(DEFAULT_CONFIGS))
def test_failure_matrix(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    run_matrix(tmp_path, level, n, opts, exhaustive=False)


@pytest.mark.parametrize(("level", "n", "opts"), params(DEFAULT_CONFIGS + SLOW_CONFIGS, True))
def test_failure_matrix_exhaustive(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    run_matrix(tmp_path, level, n, opts, exhaustive=True)


# -- 3 + 4: degraded writes and rebuild ----------------------------------------------------


def allocated_blocks(b: Built, device: int) -> list[tuple[int, int]]:
    """``(data-area offset of a block, its checksum entry offset)`` of every extent row on
    ``device``."""
    out = []
    table = b.pool.checksum_table_offset
    for ext, _ in b.ref:
        for g in range(ext.first_row, ext.first_row + ext.rows):
            s, r = divmod(g, b.rpc)
            for m in b.layout.stripe(s).on_device(device):
                off = m.device_offset + r * BLOCK
                out.append((off, table + 4 * (off // BLOCK)))
    return out


def assert_like_twin(b: Built, devices: Any, twin: list[bytes]) -> None:
    for i in devices:
        now = b.rig.inners[i].pread(0, b.rig.size)
        blocks = allocated_blocks(b, i)
        assert blocks, f"device {i} holds nothing of the extents"
        for off, coff in blocks:
            lo, clo = DATA_OFFSET + off, DATA_OFFSET + coff
            assert now[lo : lo + BLOCK] == twin[i][lo : lo + BLOCK], f"device {i} block {off}"
            assert now[clo : clo + 4] == twin[i][clo : clo + 4], f"device {i} checksum {off}"


def other_survivable(b: Built, F: frozenset[int], rng: np.random.Generator) -> frozenset[int]:
    tol = b.layout.fault_tolerance
    cands = [
        frozenset(c)
        for c in itertools.combinations(range(b.n), tol)
        if frozenset(c) != F and b.layout.survives(c)
    ]
    mixed = [c for c in cands if c & F]
    pick = mixed if mixed and tol > 1 else cands
    return pick[int(rng.integers(0, len(pick)))]


@pytest.mark.parametrize(("level", "n", "opts"), params(ONE))
def test_rebuild_restores_redundancy(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any]
) -> None:
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("rebuild", level, n))
    twin = b.rig.images()  # the array as it was before anything failed
    # the largest survivable failure set (best case), to rebuild several devices at once
    F = max(
        (frozenset(c) for r in range(1, n) for c in itertools.combinations(range(n), r)),
        key=lambda f: (b.layout.survives(f), len(f), -sum(f)),
    )
    assert b.layout.survives(F)
    b.rig.fail(F)
    check_all(b.pool, b.ref)
    for i in sorted(F):
        b.pool.fail_device(i)
    for i in sorted(F):
        b.pool.replace_device(i, b.rig.replace_inner(i))
    seen: list[tuple[int, int]] = []
    b.pool.rebuild(progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] > 0
    check_all(b.pool, b.ref, rng, subs=100)  # (a) content
    assert_like_twin(b, F, twin)  # (b) the rebuilt devices equal the twin
    rep = b.pool.scrub(repair=False)  # (c)
    assert rep.mismatches == [], rep.mismatches[:5]
    st = b.pool.status()
    assert not st.degraded and all(d[2] is DeviceState.ONLINE for d in st.devices)
    b.pool.close()
    pool = b.reopen()
    try:  # (d) a different survivable set
        G = other_survivable(b, F, rng)
        b.rig.fail(G)
        check_all(pool, b.ref, rng, subs=100)
    finally:
        quiet_close(pool)


@pytest.mark.parametrize(("level", "n", "opts"), params(ONE))
def test_degraded_write_then_rebuild(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any]
) -> None:
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("degraded", level, n))
    F = b.survivable_set(rng, b.layout.fault_tolerance)
    b.rig.fail(F)
    check_all(b.pool, b.ref)
    overwrite_some(b.pool, b.ref, rng)
    fill(b.pool, rng, sizes_for(rng, 8, b.chunk, ()), b.ref)
    b.pool.sync()
    check_all(b.pool, b.ref, rng, subs=100)
    assert b.pool.status().degraded
    for i in sorted(F):
        b.pool.replace_device(i, b.rig.replace_inner(i))
    b.pool.rebuild()
    check_all(b.pool, b.ref, rng, subs=100)
    assert b.pool.scrub(repair=False).mismatches == []
    G = other_survivable(b, F, rng)
    b.rig.fail(G)
    check_all(b.pool, b.ref, rng, subs=50)
    quiet_close(b.pool)


# -- 5: scrub and read repair --------------------------------------------------------------


def located(b: Built, rng: np.random.Generator, count: int) -> tuple[int, list[tuple[int, int]]]:
    """``count`` used data blocks ``(device offset, length)``, distinct extents, one device."""
    by_dev: dict[int, list[tuple[bytes, int]]] = {}
    for ext, _data in b.ref:
        for _d, where in b.blocks(ext):
            for dev, off in where:
                by_dev.setdefault(dev, []).append((bytes(ext), off))
    dev = int(rng.choice(sorted(by_dev)))
    chosen, seen = [], set()
    for i in rng.permutation(len(by_dev[dev])):
        key, off = by_dev[dev][int(i)]
        if key not in seen:
            seen.add(key)
            chosen.append((off, BLOCK))
        if len(chosen) == count:
            break
    return dev, chosen


@pytest.mark.parametrize(("level", "n", "opts"), params(ONE))
def test_scrub_finds_and_repairs(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("scrub", level, n))
    clean = b.pool.scrub(repair=False)
    assert clean.mismatches == [] and clean.stripes_checked >= len(b.coverage())
    dev, targets = located(b, rng, 5)
    before = b.rig.images()[dev]
    hits = []
    for off, ln in targets:
        at = off + int(rng.integers(0, max(1, ln - 16)))
        b.rig.wrappers[dev].corrupt(at, min(16, ln), "random", persistent=True, seed=at)
        hits.append((at, min(16, ln)))
    rep = b.pool.scrub(repair=True)
    assert {m.device for m in rep.mismatches} == {dev}
    assert {m.stripe for m in rep.mismatches} == member_stripes(
        b.layout, dev, [o for o, _ in targets]
    )
    assert rep.unrepaired == 0 and rep.repaired == len(rep.mismatches)
    after = b.rig.inners[dev].pread(0, b.rig.size)
    for at, ln in hits:
        assert after[at : at + ln] == before[at : at + ln], "repair did not restore the bytes"
    assert b.pool.scrub(repair=True).mismatches == []
    check_all(b.pool, b.ref, rng, subs=50)


@pytest.mark.parametrize(("level", "n", "opts"), params(PARITY))
def test_scrub_repairs_parity(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("parity", level, n))
    dev, targets = located(b, rng, 3)
    hits: set[tuple[int, int]] = set()
    for off, _ln in targets:
        sm, mem = b.layout.member_at(dev, off - DATA_OFFSET)
        within = off - DATA_OFFSET - mem.device_offset
        # the parity of the group holding this block (its own P for 50/60)
        group = next((idx for idx in sm.groups if sm.members.index(mem) in idx), None)
        pms = [sm.members[j] for j in group] if group else list(sm.members)
        pm = next(p for p in pms if p.role.kind.value == "P")
        b.rig.wrappers[pm.device].corrupt(
            DATA_OFFSET + pm.device_offset + within, 64, "flip", persistent=True
        )
        hits.add((sm.index, pm.device))
    rep = b.pool.scrub(repair=True)
    assert {(m.stripe, m.device) for m in rep.mismatches} == hits
    assert rep.unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    b.rig.fail({dev})  # parity is right again: lose the data device and read everything
    check_all(b.pool, b.ref)


@pytest.mark.parametrize(("level", "n", "opts"), params(ONE))
@pytest.mark.parametrize("persistent", [True, False], ids=["bitrot", "transient"])
def test_read_repairs_corruption(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any], persistent: bool
) -> None:
    b = Built(tmp_path, level, n, opts, count=24)
    rng = np.random.default_rng(seed_of("readrepair", level, n, persistent))
    for ext, data in list(b.ref)[:12]:
        blocks = list(b.blocks(ext))
        _d, where = blocks[int(rng.integers(0, len(blocks)))]
        victims = where[:-1] if len(where) > 1 else where  # every copy but one
        saved = [(dev, off, b.rig.inners[dev].pread(off, BLOCK)) for dev, off in victims]
        for dev, off in victims:
            b.rig.wrappers[dev].corrupt(off, BLOCK, "random", persistent=persistent, seed=off)
        assert b.pool.read(ext) == data, "a corrupted block read back wrong"
        if persistent and len(where) == 1:
            for dev, off, old in saved:
                assert b.rig.inners[dev].pread(off, BLOCK) == old, "bad block not rewritten"
    b.rig.heal()
    assert b.pool.scrub(repair=True).unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    check_all(b.pool, b.ref)


# -- 6: power cuts -------------------------------------------------------------------------


def crash(b: Built) -> None:
    """Freeze the devices, cut power on each (seeded), drop the pool as a crash would."""
    for w in b.rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(b.rig.wrappers):
        w.power_cut(seed=seed_of("cut", b.level, i, int(b.rng.integers(1 << 30))), keep="random")
    b.pool.close(sync=False)


@pytest.mark.parametrize(("level", "n", "opts"), params(ONE))
@pytest.mark.parametrize("seed", [1, 2])
def test_power_cut_keeps_acknowledged(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any], seed: int
) -> None:
    b = Built(tmp_path, level, n, opts, count=24, name=f"pool{seed}")
    rng = np.random.default_rng(seed)
    acked = Ref(dict(b.ref.items))
    items = list(acked)
    for i in rng.choice(len(items), size=4, replace=False):
        ext, _ = items[int(i)]
        b.pool.free(ext)
        acked.remove(ext)
    fill(b.pool, rng, sizes_for(rng, 16, b.chunk, (60 * KiB,)))
    crash(b)
    pool = b.reopen()
    try:
        check_all(pool, acked, rng, subs=50)
        more = fill(pool, rng, sizes_for(rng, 16, b.chunk, (60 * KiB,)))
        pool.sync()
        check_all(pool, acked)
        check_all(pool, more)
        F = b.survivable_set(rng, b.layout.fault_tolerance)
        b.rig.fail(F)
        check_all(pool, acked)
        check_all(pool, more)
    finally:
        quiet_close(pool)


@pytest.mark.parametrize(("level", "n", "opts"), params(ONE))
def test_crash_mid_write(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    """Power lost part-way through unsynced writes (each device keeps its own prefix),
    while one device had already started failing its writes."""
    b = Built(tmp_path, level, n, opts, count=20)
    rng = np.random.default_rng(seed_of("midwrite", level, n))
    acked = Ref(dict(b.ref.items))
    b.rig.wrappers[int(rng.integers(0, n))].fail_after(int(rng.integers(0, 30)), "write")
    for _ in range(25):
        b.pool.write(rng.bytes(int(rng.integers(1, 3 * b.chunk))))
    for w in b.rig.wrappers:
        w.fail_now("any")
    for w in b.rig.wrappers:
        cut = int(rng.integers(0, w.unsynced_writes + 1))

        def keep(index: int, _off: int, _len: int, cut: int = cut) -> bool:
            return index < cut

        w.power_cut(keep=keep)
    b.pool.close(sync=False)
    pool = b.reopen()
    try:
        check_all(pool, acked, rng, subs=30)
        more = fill(pool, rng, sizes_for(rng, 10, b.chunk, ()))
        pool.sync()
        check_all(pool, acked)
        check_all(pool, more)
    finally:
        quiet_close(pool)


def test_raid2_single_bit_errors_repaired(tmp_path: Any) -> None:
    """RAID 2: one flipped bit in blocks of random devices (at most two per row) — scrub
    names each device and repairs every block exactly."""
    b = Built(tmp_path, "2", 7, {})
    rng = np.random.default_rng(seed_of("raid2-bits"))
    before = b.rig.images()
    flipped: list[tuple[int, int]] = []
    per_row: dict[int, int] = {}
    for ext, _data in list(b.ref)[:20]:
        g = ext.first_row + int(rng.integers(0, ext.rows))
        if per_row.get(g, 0) >= 2:
            continue
        s, r = divmod(g, b.rpc)
        mem = b.layout.stripe(s).members[int(rng.integers(0, b.n))]
        at = DATA_OFFSET + mem.device_offset + r * BLOCK + int(rng.integers(0, BLOCK))
        b.rig.wrappers[mem.device].corrupt(at, 1, "flip", persistent=True)
        flipped.append((mem.device, at))
        per_row[g] = per_row.get(g, 0) + 1
    rep = b.pool.scrub(repair=True)
    assert {m.device for m in rep.mismatches} == {d for d, _ in flipped}
    assert rep.unrepaired == 0
    for dev, at in flipped:
        assert b.rig.inners[dev].pread(at, 1) == before[dev][at : at + 1]
    assert b.pool.scrub(repair=False).mismatches == []
    check_all(b.pool, b.ref)


# -- 7: RAID 5EE compaction and expansion ----------------------------------------------------


def spare_blocks(b: Built, skip: int | None = None) -> dict[int, set[int]]:
    """Per device, the data-area offsets of the spare-chunk blocks of allocated rows
    (stripes whose spare is on ``skip`` left out)."""
    out: dict[int, set[int]] = {}
    for ext, _ in b.ref:
        for g in range(ext.first_row, ext.first_row + ext.rows):
            s, r = divmod(g, b.rpc)
            sd = b.layout.spare_device(s)  # type: ignore[attr-defined]
            if sd != skip:
                out.setdefault(sd, set()).add(s * b.chunk + r * BLOCK)
    return out


def changed_blocks(old: bytes, new: bytes, usable: int) -> set[int]:
    a = np.frombuffer(old, dtype=np.uint8)[DATA_OFFSET : DATA_OFFSET + usable]
    z = np.frombuffer(new, dtype=np.uint8)[DATA_OFFSET : DATA_OFFSET + usable]
    diff = (a != z).reshape(-1, BLOCK).any(axis=1)
    return {int(i) * BLOCK for i in np.nonzero(diff)[0]}


def test_raid5ee_sequential_failures(tmp_path: Any) -> None:
    n = 5
    b = Built(tmp_path, "5EE", n, {})
    rng = np.random.default_rng(seed_of("5ee-seq"))
    twin = b.rig.images()
    usable = b.pool.checksum_table_offset
    f1 = 2
    assert not b.layout.survives({f1, 0}), "two concurrent failures must not survive"
    b.rig.fail({f1})
    b.pool.fail_device(f1)
    seen: list[tuple[int, int]] = []
    compact(b.pool, f1, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert b.pool.layout.compacted == f1  # type: ignore[attr-defined]
    check_all(b.pool, b.ref, rng, subs=50)
    assert b.pool.scrub(repair=False).mismatches == []
    # compaction wrote only the spare chunks of the stripes f1 did not hold the spare of,
    # each with exactly the chunk f1 held (same offset) and its checksum entry
    after = b.rig.images()
    want = spare_blocks(b, skip=f1)
    for dev in range(n):
        if dev == f1:
            continue
        assert changed_blocks(twin[dev], after[dev], usable) <= want.get(dev, set()), dev
        for off in want.get(dev, set()):
            lo, clo = DATA_OFFSET + off, DATA_OFFSET + usable + off // BLOCK * 4
            assert after[dev][lo : lo + BLOCK] == twin[f1][lo : lo + BLOCK]
            assert after[dev][clo : clo + 4] == twin[f1][clo : clo + 4]
    b.pool.close()
    image = Image.save(b.rig)
    lay = Pool.open(b.path, devices=b.rig.rewrap()).layout
    assert lay.compacted == f1 and all(lay.survives({f1, d}) for d in range(n))  # type: ignore[attr-defined]
    for f2 in range(n):  # a second failure, any device: everything still reads
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail({f2})
        try:
            check_all(pool, b.ref, rng, subs=30)
        finally:
            quiet_close(pool)
            b.rig.heal()
    image.restore(b.rig)
    pool = b.reopen()
    b.rig.fail({0, 1})  # a third failure: data is lost, never wrong
    outcomes = reads_or_loses(pool, b.ref)
    quiet_close(pool)
    assert False not in outcomes and None in outcomes


class _PowerLoss(Exception):
    """Raised from a progress callback: the process dies in the middle of compaction."""


def test_raid5ee_crash_during_compaction(tmp_path: Any) -> None:
    b = Built(tmp_path, "5EE", 5, {})
    rng = np.random.default_rng(seed_of("5ee-crash"))
    f1 = 1
    b.rig.fail({f1})
    b.pool.fail_device(f1)
    b.pool.sync()
    stop = int(rng.integers(1, max(2, len(b.coverage()) // 2)))

    def die(done: int, _total: int) -> None:
        if done >= stop:
            raise _PowerLoss

    with pytest.raises(_PowerLoss):
        compact(b.pool, f1, progress=die)
    # power is cut there: each device keeps a random part of what was not synced
    for w in b.rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(b.rig.wrappers):
        w.power_cut(seed=seed_of("5ee-cut", i), keep="random")
    b.pool.close(sync=False)
    b.rig.heal()
    pool = b.reopen()
    try:
        assert pool.layout.compacted is None  # type: ignore[attr-defined]
        assert pool.status().devices[f1][2] is DeviceState.FAILED
        check_all(pool, b.ref)  # the old placement is intact (degraded)
        compact(pool, f1)  # restart and finish
        check_all(pool, b.ref, rng, subs=30)
        assert pool.scrub(repair=False).mismatches == []
        b.rig.fail({4})
        check_all(pool, b.ref)
    finally:
        quiet_close(pool)


def test_raid5ee_expand_matches_twin(tmp_path: Any) -> None:
    n = 6
    b = Built(tmp_path, "5EE", n, {})
    rng = np.random.default_rng(seed_of("5ee-expand"))
    twin = b.rig.images()
    usable = b.pool.checksum_table_offset
    f1 = 4
    b.rig.fail({f1})
    b.pool.fail_device(f1)
    compact(b.pool, f1)
    with pytest.raises(DWError):
        compact(b.pool, 0)  # one spare per stripe: a second compaction is refused
    expand(b.pool, f1, b.rig.replace_inner(f1))
    assert b.pool.layout.compacted is None  # type: ignore[attr-defined]
    st = b.pool.status()
    assert not st.degraded and all(d[2] is DeviceState.ONLINE for d in st.devices)
    now = b.rig.images()
    for dev in range(n):  # every block and checksum entry as in the array that never failed
        lo, hi = DATA_OFFSET, DATA_OFFSET + usable + usable // BLOCK * 4
        assert now[dev][lo:hi] == twin[dev][lo:hi], f"device {dev} differs from the twin"
    assert changed_blocks(twin[0], now[0], usable) == set()
    assert b.pool.scrub(repair=False).mismatches == []
    check_all(b.pool, b.ref, rng, subs=30)
    b.rig.fail({1})
    check_all(b.pool, b.ref)


# -- 8: RAID 5E / 6E compression and expansion ------------------------------------------------


def reads_or_loses(pool: Pool, ref: Ref) -> list[bool | None]:
    out: list[bool | None] = []
    for ext, data in ref:
        try:
            out.append(pool.read(ext) == data)
        except DataLossError:
            out.append(None)
    return out


@pytest.mark.parametrize(("level", "n"), [("5E", 5), ("6E", 6)])
def test_end_spare_sequential_failures(tmp_path: Any, level: str, n: int) -> None:
    b = Built(tmp_path, level, n, {})
    rng = np.random.default_rng(seed_of("end-seq", level))
    p = b.layout.fault_tolerance
    f1 = 1
    assert not b.layout.survives(set(range(p + 1))), "p+1 concurrent failures must not survive"
    b.rig.fail({f1})
    b.pool.fail_device(f1)
    seen: list[tuple[int, int]] = []
    compress(b.pool, f1, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert b.pool.layout.absent == f1 and b.pool.layout.position is None  # type: ignore[attr-defined]
    assert not os.path.exists(os.path.join(b.path, BACKUP_NAME))
    check_all(b.pool, b.ref, rng, subs=50)
    assert b.pool.scrub(repair=False).mismatches == []
    b.pool.close()
    image = Image.save(b.rig)
    others = [d for d in range(n) if d != f1]
    for more in itertools.combinations(others, p):  # p more failures, any devices: all reads
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(set(more))
        try:
            check_all(pool, b.ref)
        finally:
            quiet_close(pool)
            b.rig.heal()
    image.restore(b.rig)
    pool = b.reopen()
    b.rig.fail(set(others[: p + 1]))  # one beyond: lost, never wrong
    outcomes = reads_or_loses(pool, b.ref)
    quiet_close(pool)
    assert False not in outcomes and None in outcomes


@pytest.mark.parametrize(("level", "n"), [("5E", 5), ("6E", 6)])
def test_end_spare_power_cut_mid_stripe(tmp_path: Any, level: str, n: int) -> None:
    """The process dies after a stripe's new blocks were written but before they were
    synced and recorded, where its old and new places overlap; power is cut (each device
    keeps a random part of those writes); compression resumes from the backup."""
    b = Built(tmp_path, level, n, {}, chunk=4 * KiB)
    rng = np.random.default_rng(seed_of("end-cut", level))
    f1 = n - 1
    b.rig.fail({f1})
    b.pool.fail_device(f1)
    b.pool.sync()
    overlap = n - 1 - b.layout.fault_tolerance  # stripes below this move onto themselves
    used = sorted({s for s in b.coverage() if s < overlap})
    assert used, "no data in the overlapping stripes"
    stop_at = used[-1]  # the first of them the backwards reshape reaches
    total = b.pool.rows // b.rpc

    def die(done: int, _total: int) -> None:
        if total - done == stop_at:
            raise _PowerLoss

    with pytest.raises(_PowerLoss):
        compress(b.pool, f1, progress=die)
    assert os.path.exists(os.path.join(b.path, BACKUP_NAME))
    for w in b.rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(b.rig.wrappers):
        w.power_cut(seed=seed_of("end-cut", level, i), keep="random")
    b.pool.close(sync=False)
    b.rig.heal()
    b.rig.fail({f1})
    pool = b.reopen()
    try:
        lay: Any = pool.layout
        assert lay.absent == f1 and lay.position == stop_at + 1
        compress(pool, f1)  # resumes: the in-flight stripe comes from the backup
        assert pool.layout.position is None  # type: ignore[attr-defined]
        check_all(pool, b.ref, rng, subs=30)
        assert pool.scrub(repair=False).mismatches == []
    finally:
        quiet_close(pool)


@pytest.mark.parametrize(("level", "n"), [("5E", 5), ("6E", 6)])
def test_end_spare_expand_matches_twin(tmp_path: Any, level: str, n: int) -> None:
    b = Built(tmp_path, level, n, {})
    rng = np.random.default_rng(seed_of("end-expand", level))
    twin = b.rig.images()
    usable = b.pool.checksum_table_offset
    f1 = 2
    b.rig.fail({f1})
    b.pool.fail_device(f1)
    compress(b.pool, f1)
    with pytest.raises(DWError):
        compress(b.pool, 0)  # the spare space is used: a second compression is refused
    expand(b.pool, f1, b.rig.replace_inner(f1))
    lay: Any = b.pool.layout
    assert lay.absent is None and lay.position is None
    st = b.pool.status()
    assert not st.degraded and all(d[2] is DeviceState.ONLINE for d in st.devices)
    assert_like_twin(b, range(n), twin)  # every allocated block and checksum entry
    spare = lay.spare_area(usable)
    for dev, img in enumerate(b.rig.images()):  # the spare space is blank again
        lo, hi = DATA_OFFSET + spare, DATA_OFFSET + usable
        assert img[lo:hi] == twin[dev][lo:hi]
        clo = DATA_OFFSET + usable + spare // BLOCK * 4
        assert (
            img[clo : DATA_OFFSET + usable + usable // BLOCK * 4]
            == twin[dev][clo : DATA_OFFSET + usable + usable // BLOCK * 4]
        )
    assert b.pool.scrub(repair=False).mismatches == []
    check_all(b.pool, b.ref, rng, subs=30)
    b.rig.fail(set(range(lay.fault_tolerance)))
    check_all(b.pool, b.ref)


def test_degraded_nested_reads_load_only_the_groups_that_lost_a_member() -> None:
    """A degraded read of RAID 50/60 loads each healthy group's data members only;
    the group that lost members is read whole (its parity rebuilds them), and a
    flat code needs every survivor."""
    from dwcore import raid
    from dwcore.pool import codec

    for level, n in (("60", 8), ("50", 8)):
        lay = raid.layout(level, n)
        for s in range(max(1, lay.period)):
            sm = lay.stripe(s)
            groups = [set(idx) for idx, _ in sm.subgroups()]
            assert len(groups) == 2
            first = groups[0]
            lost = {min(first)}
            need = codec.needed_members(sm, lost)
            other = groups[1]
            data_other = {j for j in other if sm.members[j].role.data_index is not None}
            assert need & other == data_other  # no parity of the intact group
            assert need & first == first - lost  # all survivors of the damaged group
            assert codec.needed_members(sm, set()) == {
                j for j, m in enumerate(sm.members) if m.role.data_index is not None
            }
    sm = raid.layout("6", 6).stripe(0)
    assert codec.needed_members(sm, {0, 1}) == set(range(6)) - {0, 1}
