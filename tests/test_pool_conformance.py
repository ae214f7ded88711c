"""Conformance suite for the pool engine, ``raid-levels.md`` §0.5 adapted to extents.

For RAID 0, 1, 5, 6 and 10, through the fault-injecting device only:

1. a pool on N RAM devices (small chunks, ≥ 2 rotation periods of stripes
   used) filled with seeded random extents from 1 B to 3·C and a few large
   ones, checked against a reference dict;
2. the failure matrix: every F with |F| ≤ tolerance + 1 (every subset where
   the level's best case is larger, or with DWCORE_SLOW_TESTS=1), each
   started from the same saved image; survivable F read byte-identical with
   random unaligned sub-reads; otherwise each extent reads correctly or raises
   DataLossError exactly as its blocks dictate, never wrong bytes;
3. degraded writes (new extents, overwrite = write new + free old);
4. rebuild onto blank devices, scrub clean, then a different failure set;
5. silent corruption found by scrub (device named, repaired, second scrub
   clean) and by read (right bytes returned, block rewritten);
6. power cuts: every acknowledged extent survives, also with a device failed;
7. bad input: clear errors, nothing modified;
8. status: degraded flag, failed devices, rebuild progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
import zlib
from typing import Any

import numpy as np
import pytest
from pool_helpers import (
    ALL_CONFIGS,
    DEFAULT_CONFIGS,
    LEVELS,
    Image,
    KiB,
    Locator,
    MiB,
    Ref,
    Rig,
    check_all,
    chunk_for,
    classify,
    failure_sets,
    fill,
    quiet_close,
    read_tree,
    sizes_for,
    sub_reads,
)

from dwcore.devices import FaultyDevice, RamDevice
from dwcore.errors import DataLossError, DWError, InvalidArgumentError, NoSpaceError
from dwcore.pool import DeviceState, Extent, Pool

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")
BLOCK = 4096
DEV_SIZE = 8 * MiB


def seed_of(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def cfg_id(level: str, n: int, opts: dict[str, Any]) -> str:
    extra = "-".join(f"{k}={v}" for k, v in opts.items())
    return f"raid{level}-n{n}" + (f"-{extra}" if extra else "")


def matrix_params(configs: dict[str, list[tuple[int, dict[str, Any]]]], slow: bool) -> list[Any]:
    out = []
    for level in LEVELS:
        for n, opts in configs[level]:
            marks = [pytest.mark.slow] if slow else []
            out.append(pytest.param(level, n, opts, id=cfg_id(level, n, opts), marks=marks))
    return out


DEFAULT_MATRIX = matrix_params(DEFAULT_CONFIGS, slow=False)
SLOW_MATRIX = [
    p
    for p in matrix_params(ALL_CONFIGS, slow=True)
    # the default configurations run exhaustively in slow mode too, under their slow id
]
# one mid-size configuration per level for the other template tests
ONE = {"0": (4, {}), "1": (3, {}), "5": (5, {}), "6": (6, {}), "10": (6, {})}
REDUNDANT = ("1", "5", "6", "10")


# -- building pools ---------------------------------------------------------------------


class Built:
    """A filled pool on a rig, plus what the tests need to know about it."""

    def __init__(
        self,
        tmp_path: Any,
        level: str,
        n: int,
        opts: dict[str, Any],
        *,
        count: int | None = None,
        large: tuple[int, ...] | None = None,
        chunk: int | None = None,
        dev_size: int = DEV_SIZE,
        name: str = "pool",
    ) -> None:
        self.level, self.n, self.opts = level, n, opts
        self.chunk = chunk or chunk_for(n)
        self.path = str(tmp_path / name)
        os.makedirs(self.path, exist_ok=True)
        self.rig = Rig.ram(self.path, n, dev_size)
        self.pool = Pool.create(
            self.path,
            level,
            self.rig.wrappers,
            dev_size,
            chunk_size=self.chunk,
            block_size=BLOCK,
            **opts,
        )
        self.layout = self.pool.layout
        self.rpc = self.chunk // BLOCK  # rows per stripe
        self.rng = np.random.default_rng(seed_of(level, n, sorted(opts.items()), name))
        period = max(1, self.layout.period)
        if count is None:
            count = max(30, 2 * period * self.rpc + 8)
        if large is None:
            k = self.layout.k
            large = (7 * k * BLOCK + 5, 150 * KiB + 3)
        self.ref = fill(self.pool, self.rng, sizes_for(self.rng, count, self.chunk, large))
        self.pool.sync()

    # extents -> stripes (the Extent exposes its rows; a row is one block of
    # each member chunk, rows_per_stripe = C / block_size)
    def stripes_of(self, ext: Any) -> set[int]:
        return {r // self.rpc for r in range(ext.first_row, ext.first_row + ext.rows)}

    def coverage(self) -> set[int]:
        out: set[int] = set()
        for ext, _ in self.ref:
            out |= self.stripes_of(ext)
        return out

    def describes(self) -> list[str]:
        return [w.path for w in self.rig.wrappers]

    def reopen(self, devices: list[Any] | None = None) -> Any:
        self.pool = Pool.open(
            self.path, devices=devices if devices is not None else self.rig.rewrap()
        )
        return self.pool

    def locator(self) -> Locator:
        return Locator(self.rig.images(), BLOCK)

    def base(self, loc: Locator) -> int | None:
        """Device offset of stripe 0, from where extents' first blocks were found."""
        votes: dict[int, int] = {}
        for ext, data in self.ref:
            if len(data) < 32:
                continue
            occ = loc.pieces(data)[0]
            if not occ:
                continue
            r = ext.first_row
            cand = occ[0].offset - (r // self.rpc) * self.chunk - (r % self.rpc) * BLOCK
            votes[cand] = votes.get(cand, 0) + 1
        if not votes:
            return None
        return max(votes, key=lambda b: votes[b])


# -- 1 + 2: fill and the failure matrix -------------------------------------------------


def run_matrix(tmp_path: Any, level: str, n: int, opts: dict[str, Any], exhaustive: bool) -> None:
    b = Built(tmp_path, level, n, opts)
    layout = b.layout
    # the fill covers every rotation phase at least twice
    cov = b.coverage()
    period = max(1, layout.period)
    assert len(cov) >= 2 * period, f"fill used only {len(cov)} stripes, want ≥ {2 * period}"
    assert {s % period for s in cov} == set(range(period))
    b.pool.close()
    image = Image.save(b.rig)
    loc = Locator(image.devices, BLOCK)
    base = b.base(loc)
    pieces = {bytes(e): loc.pieces(d) for e, d in b.ref}

    tol = layout.fault_tolerance
    # every subset where affordable, and always for RAID 10 (best case N/2 > guaranteed 1)
    fmax = n if exhaustive or n <= 6 or level == "10" else min(n, tol + 1)
    sets = failure_sets(n, fmax)
    rng = np.random.default_rng(seed_of("matrix", level, n))
    problems: list[str] = []
    describes = b.describes()
    for F in sets:
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(F)
        try:
            problems += check_failure_set(b, pool, F, base, pieces, rng, describes)
        finally:
            quiet_close(pool)
            b.rig.heal()
        if len(problems) > 40:
            break
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:15])


def check_failure_set(
    b: Built,
    pool: Any,
    F: frozenset[int],
    base: int | None,
    pieces: dict[bytes, Any],
    rng: np.random.Generator,
    describes: list[str],
) -> list[str]:
    layout = b.layout
    tag = f"F={sorted(F)}"
    out: list[str] = []
    survivable = layout.survives(F)
    raised = 0
    for ext, data in b.ref:
        must_read = all(layout.stripe(s).recoverable(F) for s in b.stripes_of(ext))
        if survivable:
            assert must_read, "layout.survives disagrees with stripe.recoverable"
        expect = "either" if base is None else classify(layout, base, BLOCK, pieces[bytes(ext)], F)
        if must_read:
            if expect == "raise":
                out.append(f"{tag}: suite inconsistency for {ext!r}: rows recoverable, blocks lost")
            expect = "read"
        try:
            got = pool.read(ext)
        except DataLossError as exc:
            raised += 1
            if expect == "read":
                out.append(f"{tag}: {ext!r} raised DataLossError but is recoverable: {exc}")
            named = set(exc.failed)
            ok = named <= F if named else any(describes[i] in str(exc) for i in F)
            if not ok:
                out.append(
                    f"{tag}: DataLossError does not name the failed devices: "
                    f"failed={exc.failed} msg={exc}"
                )
            continue
        except Exception as exc:
            out.append(f"{tag}: {ext!r} raised {type(exc).__name__}: {exc}")
            continue
        if got != data:
            out.append(f"{tag}: {ext!r} returned WRONG BYTES")
        elif expect == "raise":
            out.append(f"{tag}: {ext!r} read back although its blocks are lost")
    if not survivable and raised == 0:
        out.append(f"{tag}: survives() is false but no extent raised DataLossError")
    if survivable:
        items = list(b.ref)
        for _ in range(1000 if SLOW else 100):
            ext, data = items[int(rng.integers(0, len(items)))]
            ((off, ln),) = sub_reads(rng, len(data), 1)
            try:
                got = pool.read(ext, off, ln)
            except Exception as exc:
                out.append(
                    f"{tag}: sub-read [{off},+{ln}) of {ext!r} raised {type(exc).__name__}: {exc}"
                )
                continue
            if got != data[off : off + ln]:
                out.append(f"{tag}: sub-read [{off},+{ln}) of {ext!r} returned WRONG BYTES")
    return out


@pytest.mark.parametrize(("level", "n", "opts"), DEFAULT_MATRIX)
def test_failure_matrix(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    run_matrix(tmp_path, level, n, opts, exhaustive=False)


@pytest.mark.parametrize(("level", "n", "opts"), SLOW_MATRIX)
def test_failure_matrix_exhaustive(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    run_matrix(tmp_path, level, n, opts, exhaustive=True)


@pytest.mark.parametrize("level", LEVELS)
def test_failure_at_open_is_degraded(tmp_path: Any, level: str) -> None:
    """Devices already failing when the pool opens: opens degraded and says which."""
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts, count=20)
    b.pool.close()
    F = frozenset({n - 1})
    wrappers = b.rig.rewrap()
    b.rig.fail(F)
    pool = Pool.open(b.path, devices=wrappers)
    try:
        st = pool.status()
        assert st.degraded
        assert st.devices[n - 1][2] in (DeviceState.MISSING, DeviceState.FAILED)
        assert all(st.devices[i][2] is DeviceState.ONLINE for i in range(n - 1))
        if b.layout.survives(F):
            check_all(pool, b.ref)
        else:
            outcomes = []
            for ext, data in b.ref:
                try:
                    outcomes.append(pool.read(ext) == data)
                except DataLossError:
                    outcomes.append(None)
            assert False not in outcomes, "wrong bytes returned"
            assert None in outcomes, "no extent reported lost"
    finally:
        quiet_close(pool)


# -- 3: degraded writes ----------------------------------------------------------------


def check_progress(seen: list[tuple[int, int]]) -> None:
    """Rebuild progress: ``(done, total)`` calls, done never decreasing, ending at total."""
    assert seen, "rebuild never reported progress"
    dones = [d for d, _t in seen]
    assert dones == sorted(dones) and all(0 <= d <= t for d, t in seen)
    assert seen[-1][0] == seen[-1][1] > 0


def survivable_set(layout: Any, n: int, rng: np.random.Generator, size: int) -> frozenset[int]:
    cands = [frozenset(c) for c in itertools.combinations(range(n), size) if layout.survives(c)]
    return cands[int(rng.integers(0, len(cands)))]


def overwrite_some(pool: Any, ref: Ref, rng: np.random.Generator, frac: float = 0.1) -> None:
    items = list(ref)
    pick = rng.choice(len(items), size=max(1, int(len(items) * frac)), replace=False)
    for i in pick:
        old, data = items[int(i)]
        new = rng.bytes(len(data) if rng.random() < 0.5 else int(rng.integers(1, 3 * 16 * KiB)))
        ext = pool.write(new)
        ref.add(ext, new)
        pool.free(old)
        ref.remove(old)


@pytest.mark.parametrize("level", REDUNDANT)
def test_degraded_write_then_rebuild(tmp_path: Any, level: str) -> None:
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("degraded", level))
    F = survivable_set(b.layout, n, rng, b.layout.fault_tolerance)
    b.rig.fail(F)
    check_all(b.pool, b.ref)
    overwrite_some(b.pool, b.ref, rng)
    fill(b.pool, rng, sizes_for(rng, 8, b.chunk, ()), b.ref)
    b.pool.sync()
    check_all(b.pool, b.ref, rng, subs=100)
    st = b.pool.status()
    assert st.degraded
    # rebuild onto blank devices restores everything, including rows written degraded
    for i in sorted(F):
        b.pool.replace_device(i, b.rig.replace_inner(i))
    b.pool.rebuild()
    check_all(b.pool, b.ref, rng, subs=100)
    rep = b.pool.scrub(repair=False)
    assert rep.mismatches == [], rep.mismatches[:5]
    # and the new members really hold their share: a different failure set still reads
    G = F
    while G == F:
        G = survivable_set(b.layout, n, rng, b.layout.fault_tolerance)
    b.rig.fail(G)
    check_all(b.pool, b.ref, rng, subs=50)
    quiet_close(b.pool)


@pytest.mark.parametrize("level", REDUNDANT)
def test_stale_devices_after_degraded_writes(tmp_path: Any, level: str) -> None:
    """Devices that missed degraded writes come back (healed) on reopen: their stale
    blocks — old but checksum-valid — must never be returned."""
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("stale", level))
    F = survivable_set(b.layout, n, rng, b.layout.fault_tolerance)
    b.rig.fail(F)
    check_all(b.pool, b.ref)
    # free everything and write new extents: rows get reused while F is away
    for ext, _ in b.ref:
        b.pool.free(ext)
    b.ref = fill(b.pool, rng, sizes_for(rng, 30, b.chunk, (100 * KiB,)))
    b.pool.sync()
    quiet_close(b.pool)
    b.rig.heal()
    pool = b.reopen()
    try:
        check_all(pool, b.ref, rng, subs=100)
        # with the devices that stayed up now failing, the stale ones must not be trusted
        G = frozenset(i for i in range(n) if i not in F)
        live_g = [
            g
            for g in itertools.combinations(sorted(G), b.layout.fault_tolerance)
            if b.layout.survives(frozenset(g))
        ]
        if live_g:
            b.rig.fail(live_g[0])
            for ext, data in b.ref:
                try:
                    got = pool.read(ext)
                except DataLossError:
                    continue
                assert got == data, "stale device returned old bytes"
    finally:
        quiet_close(pool)


def test_raid0_write_with_failed_device(tmp_path: Any) -> None:
    """RAID 0 cannot write around a failed device: a clear error; other extents unharmed."""
    b = Built(tmp_path, "0", 4, {}, count=20)
    b.rig.fail({2})
    with pytest.raises(DWError):
        for _ in range(4):
            b.pool.write(b.rng.bytes(4 * b.chunk * 4))
    b.rig.heal()
    quiet_close(b.pool)
    pool = b.reopen()
    try:
        st = pool.status()
        for ext, data in b.ref:
            try:
                assert pool.read(ext) == data
            except DataLossError:
                assert st.degraded
    finally:
        quiet_close(pool)


# -- 4: rebuild ----------------------------------------------------------------------------


@pytest.mark.parametrize("level", REDUNDANT)
def test_rebuild_restores_redundancy(tmp_path: Any, level: str) -> None:
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("rebuild", level))
    twin = b.rig.images()  # the array as it was before anything failed
    base = b.base(Locator(twin, BLOCK))
    F = survivable_set(b.layout, n, rng, b.layout.fault_tolerance)
    b.rig.fail(F)
    check_all(b.pool, b.ref)  # the pool meets the failures on its own
    for i in sorted(F):
        b.pool.fail_device(i)
    st = b.pool.status()
    assert st.degraded and set(F) <= set(st.failed)
    for i in sorted(F):
        assert st.devices[i][2] is DeviceState.FAILED
    seen: list[tuple[int, int]] = []
    for i in sorted(F):
        b.pool.replace_device(i, b.rig.replace_inner(i))
    b.pool.rebuild(progress=lambda done, total: seen.append((done, total)))
    # (a) content
    check_all(b.pool, b.ref, rng, subs=100)
    # (b) each rebuilt device holds, in every allocated row, exactly what it held
    # before the failure (row g of the layouts so far: base + g*B on every device)
    assert base is not None
    for i in sorted(F):
        now = b.rig.inners[i].pread(0, b.rig.size)
        for ext, _data in b.ref:
            lo, hi = base + ext.first_row * BLOCK, base + (ext.first_row + ext.rows) * BLOCK
            assert now[lo:hi] == twin[i][lo:hi], f"device {i}: rows of {ext!r} differ from twin"
    # (c) scrub clean
    rep = b.pool.scrub(repair=False)
    assert rep.mismatches == [], rep.mismatches[:5]
    assert rep.stripes_checked >= len(b.coverage())
    st = b.pool.status()
    assert not st.degraded and st.failed == ()
    assert all(d[2] is DeviceState.ONLINE for d in st.devices)
    assert st.rebuild_progress in (None, 1.0)
    check_progress(seen)
    # the rebuilt pool reopens whole
    b.pool.close()
    pool = b.reopen()
    try:
        assert not pool.status().degraded
        check_all(pool, b.ref)
        # (d) a different survivable failure set (sharing devices with F where it can)
        tol = b.layout.fault_tolerance
        cands = [
            frozenset(c)
            for c in itertools.combinations(range(n), tol)
            if frozenset(c) != F and b.layout.survives(c)
        ]
        mixed = [c for c in cands if c & F]
        pool_of = mixed if mixed and tol > 1 else cands
        G = pool_of[int(rng.integers(0, len(pool_of)))]
        b.rig.fail(G)
        check_all(pool, b.ref, rng, subs=100)
    finally:
        quiet_close(pool)


def test_raid0_rebuild_is_data_loss(tmp_path: Any) -> None:
    b = Built(tmp_path, "0", 4, {}, count=20)
    b.rig.fail({1})
    b.pool.fail_device(1)
    b.pool.replace_device(1, b.rig.replace_inner(1))
    with pytest.raises(DataLossError) as ei:
        b.pool.rebuild()
    assert (
        1 in ei.value.failed
        or b.rig.wrappers[1].describe() in str(ei.value)
        or "1" in str(ei.value)
    )
    quiet_close(b.pool)


# -- 5: scrub and read-repair ------------------------------------------------------------------


def located_targets(
    b: Built, rng: np.random.Generator, count: int
) -> tuple[int, list[tuple[Any, int, int]], int | None]:
    """``count`` (extent, device offset, length) data pieces on one device, for corruption."""
    loc = b.locator()
    base = b.base(loc)
    by_dev: dict[int, list[tuple[Any, int, int]]] = {}
    for ext, data in b.ref:
        for pos, occ in zip(range(0, len(data), BLOCK), loc.pieces(data), strict=True):
            if occ:
                ln = min(BLOCK, len(data) - pos)
                for blk in occ:
                    by_dev.setdefault(blk.device, []).append((ext, blk.offset, ln))
    assert by_dev, "no extent block could be located on the devices (are they stored raw?)"
    dev = int(rng.choice(sorted(by_dev)))
    cands = by_dev[dev]
    # one piece per extent, distinct stripes
    chosen, seen_ext = [], set()
    for i in rng.permutation(len(cands)):
        ext, off, ln = cands[int(i)]
        if bytes(ext) in seen_ext:
            continue
        seen_ext.add(bytes(ext))
        chosen.append((ext, off, ln))
        if len(chosen) == count:
            break
    return dev, chosen, base


@pytest.mark.parametrize("level", LEVELS)
def test_scrub_finds_and_repairs(tmp_path: Any, level: str) -> None:
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("scrub", level))
    clean = b.pool.scrub(repair=False)
    assert clean.mismatches == [] and clean.stripes_checked >= len(b.coverage())
    dev, targets, base = located_targets(b, rng, 5)
    before = b.rig.images()[dev]
    corrupted: list[tuple[int, int]] = []
    for _ext, off, ln in targets:
        at = off + int(rng.integers(0, max(1, ln - 16)))
        b.rig.wrappers[dev].corrupt(at, min(16, ln), "random", persistent=True, seed=at)
        corrupted.append((at, min(16, ln)))
    want_stripes = None if base is None else {(off - base) // b.chunk for _e, off, _l in targets}
    rep = b.pool.scrub(repair=True)
    got = {(m.stripe, m.device) for m in rep.mismatches}
    assert rep.mismatches, "scrub found nothing"
    assert {d for _s, d in got} == {dev}, f"scrub blamed {got}, corrupted device {dev}"
    if want_stripes is not None:
        assert {s for s, _d in got} == want_stripes
    if level == "0":
        assert rep.unrepaired >= 1 and rep.repaired == 0
        for ext, data in b.ref:
            with contextlib.suppress(DataLossError):
                assert b.pool.read(ext) == data
        hit = {bytes(e) for e, _o, _l in targets}
        for ext, _data in b.ref:
            if bytes(ext) in hit:
                with pytest.raises(DataLossError):
                    b.pool.read(ext)
        return
    assert rep.unrepaired == 0 and rep.repaired == len(rep.mismatches)
    after = b.rig.inners[dev].pread(0, b.rig.size)
    for at, ln in corrupted:
        assert after[at : at + ln] == before[at : at + ln], "repair did not restore the bytes"
    second = b.pool.scrub(repair=True)
    assert second.mismatches == []
    check_all(b.pool, b.ref, rng, subs=50)


@pytest.mark.parametrize("level", ("5", "6"))
def test_scrub_repairs_parity(tmp_path: Any, level: str) -> None:
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("parity", level))
    dev, targets, base = located_targets(b, rng, 3)
    assert base is not None, "cannot place stripes on the devices"
    hits: set[tuple[int, int]] = set()
    for _ext, off, _ln in targets:
        s = (off - base) // b.chunk
        within = (off - base) % b.chunk
        sm = b.layout.stripe(s)
        for pm in sm.parity_members:
            at = base + pm.device_offset + within
            b.rig.wrappers[pm.device].corrupt(at, 64, "flip", persistent=True)
            hits.add((s, pm.device))
            break  # only P (one member per stripe)
    rep = b.pool.scrub(repair=True)
    got = {(m.stripe, m.device) for m in rep.mismatches}
    assert got == hits
    assert rep.unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    # parity is right again: lose the data device of those stripes and read everything
    b.rig.fail({dev})
    check_all(b.pool, b.ref)


@pytest.mark.parametrize("level", REDUNDANT)
@pytest.mark.parametrize("persistent", [True, False], ids=["bitrot", "transient"])
def test_read_repairs_corruption(tmp_path: Any, level: str, persistent: bool) -> None:
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts, count=24)
    rng = np.random.default_rng(seed_of("readrepair", level, persistent))
    loc = b.locator()
    problems = []
    for ext, data in list(b.ref)[:12]:
        pcs = loc.pieces(data)
        pos = int(rng.integers(0, len(pcs)))
        occ = pcs[pos]
        if not occ:
            continue
        # corrupt every located copy but one (mirrors), or the single data block
        victims = occ[:-1] if len(occ) > 1 else occ
        ln = min(BLOCK, len(data) - pos * BLOCK)
        saved = []
        for blk in victims:
            saved.append((blk, b.rig.inners[blk.device].pread(blk.offset, ln)))
            b.rig.wrappers[blk.device].corrupt(
                blk.offset, ln, "random", persistent=persistent, seed=pos
            )
        got = b.pool.read(ext)
        if got != data:
            problems.append(f"{ext!r}: corrupted block read back WRONG")
        if persistent and len(occ) == 1:
            for blk, old in saved:
                if b.rig.inners[blk.device].pread(blk.offset, ln) != old:
                    problems.append(
                        f"{ext!r}: read did not rewrite the bad block on device {blk.device}"
                    )
    assert not problems, problems
    b.rig.heal()
    rep = b.pool.scrub(repair=True)
    assert rep.unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    check_all(b.pool, b.ref)


# -- 6: power cuts ------------------------------------------------------------------------------


_ABANDONED: list[Any] = []


def crash(b: Built) -> None:
    """Freeze the old pool's devices, cut power on each (seeded), drop the old pool.

    The crashed pool is released with ``close(sync=False)`` (the engine's
    "drop unsynced state as a crash would"; a plain close would sync, and the
    allocator file refuses a second opener while the old pool holds it).
    """
    for w in b.rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(b.rig.wrappers):
        w.power_cut(seed=seed_of("cut", b.level, i, int(b.rng.integers(1 << 30))), keep="random")
    try:
        b.pool.close(sync=False)
    except TypeError:  # no such option: leave it unclosed
        _ABANDONED.append(b.pool)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_power_cut_keeps_acknowledged(tmp_path: Any, level: str, seed: int) -> None:
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts, count=24, name=f"pool{seed}")
    rng = np.random.default_rng(seed)
    acked = Ref(dict(b.ref.items))
    # unsynced work after the last sync: frees of acknowledged extents and new writes
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
        # new writes after the crash never land on acknowledged rows
        more = fill(pool, rng, sizes_for(rng, 16, b.chunk, (60 * KiB,)))
        pool.sync()
        check_all(pool, acked)
        check_all(pool, more)
        if b.layout.fault_tolerance:
            F = survivable_set(b.layout, n, rng, b.layout.fault_tolerance)
            b.rig.fail(F)
            check_all(pool, acked)
            check_all(pool, more)
    finally:
        quiet_close(pool)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("seed", [11, 12])
def test_crash_mid_write(tmp_path: Any, level: str, seed: int) -> None:
    """Power is lost part-way through a run of unsynced writes: each device keeps a
    prefix of them (its own cut point; the piece at the cut may be torn), and for
    the redundant levels one device had already started failing its writes."""
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts, count=20, name=f"pool{seed}")
    rng = np.random.default_rng(seed_of("midwrite", level, seed))
    acked = Ref(dict(b.ref.items))
    if b.layout.fault_tolerance:
        b.rig.wrappers[int(rng.integers(0, n))].fail_after(int(rng.integers(0, 30)), "write")
    for _ in range(25):
        b.pool.write(rng.bytes(int(rng.integers(1, 3 * b.chunk))))
    for w in b.rig.wrappers:
        w.fail_now("any")
    for w in b.rig.wrappers:
        cut = int(rng.integers(0, w.unsynced_writes + 1))
        w.power_cut(keep=lambda index, _off, _len, cut=cut: index < cut)
    try:
        b.pool.close(sync=False)
    except TypeError:
        _ABANDONED.append(b.pool)
    pool = b.reopen()
    try:
        check_all(pool, acked, rng, subs=30)
        more = fill(pool, rng, sizes_for(rng, 10, b.chunk, ()))
        pool.sync()
        check_all(pool, acked)
        check_all(pool, more)
    finally:
        quiet_close(pool)


# -- 7: bad input --------------------------------------------------------------------------------


def file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree_digest(path: str) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in read_tree(path).items()}


@pytest.mark.parametrize(
    ("level", "n", "kw"),
    [
        ("banana", 4, {}),
        ("Z9", 4, {}),
        ("7", 4, {"cache_mode": "lazy"}),  # RAID 7 with a cache mode it does not have
        ("5", 2, {}),
        ("6", 3, {}),
        ("10", 3, {}),
        ("10", 6, {"copies": 4}),
        ("1", 1, {}),
        ("0", 1, {}),
        ("5", 4, {"algorithm": "sideways"}),
        ("5", 4, {"colour": "red"}),
        ("5", 4, {"chunk_size": 3000}),
        ("5", 4, {"chunk_size": 0}),
        ("5", 4, {"block_size": 1000}),
        ("5", 4, {"block_size": 0}),
        ("5", 4, {"block_size": 64 * KiB, "chunk_size": 16 * KiB}),
    ],
)
def test_create_rejects_bad_arguments(
    tmp_path: Any, level: str, n: int, kw: dict[str, Any]
) -> None:
    path = tmp_path / "p"
    kw = {"chunk_size": 16 * KiB, **kw}
    with pytest.raises(InvalidArgumentError if level not in ("7",) else DWError) as ei:
        Pool.create(str(path), level, n, 8 * MiB, **kw)
    assert str(ei.value)
    assert not path.exists() or not any(path.iterdir()), "a failed create left files behind"


@pytest.mark.parametrize("size", [-1, 0, 1, 4096, 2 * MiB, 2**63, 2**64, 1.5, "8M", True])
def test_create_rejects_absurd_sizes(tmp_path: Any, size: Any) -> None:
    path = tmp_path / "p"
    with pytest.raises(InvalidArgumentError):
        Pool.create(str(path), "5", 3, size, chunk_size=16 * KiB)
    assert not path.exists() or not any(path.iterdir())


def test_create_rejects_bad_device_lists(tmp_path: Any) -> None:
    small = [FaultyDevice(RamDevice(1 * MiB), close_inner=False) for _ in range(3)]
    with pytest.raises(InvalidArgumentError):
        Pool.create(str(tmp_path / "a"), "5", small, 1 * MiB, chunk_size=16 * KiB)
    for d in small:
        assert d.inner.pread(0, d.size).count(0) == d.size, "a refused device was written"
    for devs in ([], "three", [object(), object(), object()]):
        with pytest.raises(InvalidArgumentError):
            Pool.create(str(tmp_path / "b"), "5", devs, 8 * MiB, chunk_size=16 * KiB)


def file_pool(tmp_path: Any, name: str, level: str = "5", n: int = 3) -> tuple[str, Ref]:
    path = str(tmp_path / name)
    rng = np.random.default_rng(seed_of("file", name))
    with Pool.create(path, level, n, 6 * MiB, chunk_size=8 * KiB) as pool:
        ref = fill(pool, rng, sizes_for(rng, 16, 8 * KiB, (50 * KiB,)))
        pool.sync()
    return path, ref


def device_files(path: str) -> list[str]:
    names = sorted(f for f in os.listdir(path) if os.path.isfile(os.path.join(path, f)))
    return [os.path.join(path, f) for f in names]


def test_open_with_foreign_device(tmp_path: Any) -> None:
    pa, ref_a = file_pool(tmp_path, "a")
    pb, ref_b = file_pool(tmp_path, "b")
    digest_b = tree_digest(pb)
    # the device files of pool a, in index order, as the manifest lists them
    with Pool.open(pa) as pool:
        paths_a = [d[1] for d in pool.status().devices]
    with Pool.open(pb) as pool:
        paths_b = [d[1] for d in pool.status().devices]
    mixed = [paths_a[0], paths_b[1], paths_a[2]]
    with Pool.open(pa, devices=mixed) as pool:
        st = pool.status()
        assert st.degraded
        assert st.devices[1][2] is DeviceState.MISSING
        assert (
            "foreign" in st.reasons.get(1, "").lower()
            or "another pool" in st.reasons.get(1, "").lower()
        )
        check_all(pool, ref_a)
        with pytest.raises(InvalidArgumentError):
            pool.read(next(iter(ref_b))[0])  # a handle of pool b
    assert tree_digest(pb) == digest_b, "the foreign device was modified"
    with Pool.open(pb) as pool:
        assert not pool.status().degraded
        check_all(pool, ref_b)


def test_open_with_truncated_or_missing_device(tmp_path: Any) -> None:
    pa, ref = file_pool(tmp_path, "a")
    with Pool.open(pa) as pool:
        paths = [d[1] for d in pool.status().devices]
    with open(paths[1], "r+b") as f:
        f.truncate(os.path.getsize(paths[1]) // 2)
    trunc = file_digest(paths[1])
    with Pool.open(pa) as pool:
        st = pool.status()
        assert st.degraded and st.devices[1][2] is DeviceState.MISSING
        assert st.reasons.get(1)
        check_all(pool, ref)
    assert file_digest(paths[1]) == trunc
    os.unlink(paths[1])
    with Pool.open(pa) as pool:
        st = pool.status()
        assert st.degraded and st.devices[1][2] is DeviceState.MISSING
        check_all(pool, ref)


def test_open_rejects_nonsense(tmp_path: Any) -> None:
    with pytest.raises(DWError):
        Pool.open(str(tmp_path / "nothing-here"))
    pa, _ref = file_pool(tmp_path, "a")
    before = tree_digest(pa)
    with pytest.raises(InvalidArgumentError):
        Pool.open(pa, devices=["/nonexistent/x"])  # wrong count
    assert tree_digest(pa) == before


def test_extent_handles(tmp_path: Any) -> None:
    b = Built(tmp_path, "5", 3, {}, count=10)
    ext, data = next(iter(b.ref))
    blob = bytes(ext)
    assert len(blob) <= 64
    assert Extent.from_bytes(blob) == ext
    assert b.pool.read(Extent.from_bytes(blob)) == data
    images = b.rig.images()
    for bad in (blob[:-1], blob[1:], blob + b"\0", b"", b"x" * len(blob)):
        with pytest.raises(InvalidArgumentError):
            Extent.from_bytes(bad)
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            garbled = bytearray(blob)
            garbled[i] ^= bit
            try:
                e2 = Extent.from_bytes(bytes(garbled))
            except InvalidArgumentError:
                continue
            try:
                got = b.pool.read(e2)
            except DWError:
                continue
            assert got == data, f"garbled handle (byte {i}) read back wrong bytes"
    # a well-formed handle pointing outside the pool, or at rows never written
    far = Extent(ext.pool_tag, 1 << 40, 3, 100)
    with pytest.raises(DWError):
        b.pool.read(far)
    for off, ln in ((-1, 1), (0, len(data) + 1), (len(data) + 1, 0), (0, -1)):
        with pytest.raises(InvalidArgumentError):
            b.pool.read(ext, off, ln)
    assert b.rig.images() == images, "bad handles modified the devices"


def test_no_space(tmp_path: Any) -> None:
    b = Built(tmp_path, "5", 3, {}, count=4, large=(), dev_size=4 * MiB)
    used = b.pool.status().used
    with pytest.raises(NoSpaceError):
        for _ in range(1000):
            data = b.rng.bytes(256 * KiB)
            b.ref.add(b.pool.write(data), data)
            used = b.pool.status().used
    assert b.pool.status().used == used, "a refused write consumed space"
    check_all(b.pool, b.ref)
    # freeing makes room again: the same big write now fits
    ext, _ = list(b.ref)[-1]
    assert ext.length == 256 * KiB
    b.pool.free(ext)
    b.ref.remove(ext)
    data = b.rng.bytes(256 * KiB)
    b.ref.add(b.pool.write(data), data)
    check_all(b.pool, b.ref)


# -- 8: status -----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", REDUNDANT)
def test_status(tmp_path: Any, level: str) -> None:
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts, count=20)
    st = b.pool.status()
    assert st.level == level
    assert len(st.devices) == n and [d[0] for d in st.devices] == list(range(n))
    assert all(d[2] is DeviceState.ONLINE for d in st.devices)
    assert not st.degraded and st.failed == () and st.rebuild_progress in (None, 1.0)
    assert 0 < st.used <= st.capacity
    used = st.used
    ext = b.pool.write(b"x" * 10000)
    assert b.pool.status().used > used
    b.pool.free(ext)
    assert b.pool.status().used == used
    # a failure met by I/O is reported after a scrub (which reads every member)
    b.rig.fail({0})
    b.pool.scrub(repair=True)
    st = b.pool.status()
    assert st.degraded and st.failed == (0,) and st.devices[0][2] is DeviceState.FAILED
    check_all(b.pool, b.ref)
    b.pool.replace_device(0, b.rig.replace_inner(0))
    st = b.pool.status()
    assert st.degraded and st.devices[0][2] in (DeviceState.REBUILDING, DeviceState.FAILED)
    seen: list[tuple[int, int]] = []
    during: list[tuple[float | None, DeviceState]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        st = b.pool.status()  # the callback runs outside the pool's lock
        during.append((st.rebuild_progress, st.devices[0][2]))

    b.pool.rebuild(progress=progress)
    check_progress(seen)
    fractions = [p for p, _state in during]
    assert all(p is not None and 0.0 <= p <= 1.0 for p in fractions[:-1]), fractions
    assert fractions[:-1] == sorted(fractions[:-1])
    assert during[0][1] is DeviceState.REBUILDING
    st = b.pool.status()
    assert not st.degraded and st.failed == () and st.rebuild_progress in (None, 1.0)
    # an explicit fail (administrator), then replacement by the pool's own choice of device
    b.pool.fail_device(n - 1)
    st = b.pool.status()
    assert st.degraded and st.failed == (n - 1,) and st.devices[n - 1][2] is DeviceState.FAILED
    check_all(b.pool, b.ref)
    b.pool.replace_device(n - 1, b.rig.replace_inner(n - 1))
    b.pool.rebuild()
    st = b.pool.status()
    assert not st.degraded and all(d[2] is DeviceState.ONLINE for d in st.devices)
    check_all(b.pool, b.ref)
    b.pool.close()


def test_fail_device_rejects_bad_index(tmp_path: Any) -> None:
    b = Built(tmp_path, "5", 3, {}, count=4)
    for bad in (-1, 3, 99, "0", 1.0):
        with pytest.raises(InvalidArgumentError):
            b.pool.fail_device(bad)
    assert not b.pool.status().degraded
    b.pool.close()


def test_file_devices_by_path(tmp_path: Any) -> None:
    """Devices given as paths (created sparse), reopened from the manifest alone."""
    paths = [str(tmp_path / f"disk{i}.img") for i in range(4)]
    rng = np.random.default_rng(7)
    with Pool.create(str(tmp_path / "p"), "6", paths, 6 * MiB, chunk_size=4 * KiB) as pool:
        ref = fill(pool, rng, sizes_for(rng, 12, 4 * KiB, (40 * KiB,)))
    for p in paths:
        assert os.path.getsize(p) >= 6 * MiB
    with Pool.open(str(tmp_path / "p")) as pool:
        assert not pool.status().degraded
        check_all(pool, ref, rng, subs=20)
    os.unlink(paths[0])
    os.unlink(paths[3])
    with Pool.open(str(tmp_path / "p")) as pool:
        st = pool.status()
        assert st.degraded and set(st.failed) == {0, 3}
        check_all(pool, ref, rng, subs=20)


@pytest.mark.parametrize("level", ("5", "6"))
def test_concurrent_degraded_io(tmp_path: Any, level: str) -> None:
    """Threads writing, reading and freeing at once on a degraded pool (the API is thread-safe)."""
    n, opts = ONE[level]
    b = Built(tmp_path, level, n, opts, count=16)
    b.rig.fail({1})
    errors: list[str] = []

    def worker(t: int) -> None:
        rng = np.random.default_rng(t)
        mine: list[tuple[Any, bytes]] = []
        try:
            for i in range(30):
                data = rng.bytes(int(rng.integers(1, 40 * KiB)))
                ext = b.pool.write(data)
                mine.append((ext, data))
                for e, d in (mine[-1], mine[int(rng.integers(0, len(mine)))]):
                    if b.pool.read(e) != d:
                        errors.append(f"thread {t}: wrong bytes")
                if i % 3 == 2:
                    e, _d = mine.pop(0)
                    b.pool.free(e)
            for e, d in mine:
                if b.pool.read(e) != d:
                    errors.append(f"thread {t}: wrong bytes at the end")
        except Exception as exc:
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:5]
    check_all(b.pool, b.ref)
    quiet_close(b.pool)


def test_create_refuses_used_devices_and_directories(tmp_path: Any) -> None:
    """Devices of another pool, or an existing pool's directory: refused, nothing modified."""
    pa, ref = file_pool(tmp_path, "a")
    with Pool.open(pa) as pool:
        paths_a = [d[1] for d in pool.status().devices]
    before = tree_digest(pa)
    with pytest.raises(DWError):
        Pool.create(str(tmp_path / "b"), "5", paths_a, 6 * MiB, chunk_size=8 * KiB)
    with pytest.raises(DWError):
        Pool.create(pa, "1", 2, 6 * MiB, chunk_size=8 * KiB)
    assert tree_digest(pa) == before, "a refused create modified the other pool"
    with Pool.open(pa) as pool:
        assert not pool.status().degraded
        check_all(pool, ref)
