"""Adaptive (``raid-levels.md`` §6): hot RBs mirrored, cold RBs in RAID 5, migration by heat.

Layout: options, the capacity rule and the default RB / PEX sizes.  Pool (RAM
devices behind FaultyDevice): every failure set for N = 4 and 5 (3, 6, 8 and
10 slow; expectation from the map: an extent is lost iff one of its RBs has
both copies / two stripe members on F; never wrong bytes; random unaligned
sub-reads; surviving ranges of partly lost extents); degraded writes; heat as
a decayed write count (not recency); the workload test (hot set written
repeatedly, cold set once → after a policy tick hot RBs are mirror-class,
cold ones parity-class, data unchanged); a crash between a move's copy and
its map commit (old or new version, never a mix), power cuts in the middle
of a demotion, of ordinary writes and after a sync inside a write; a device
failing under a move (nothing committed); a full pool kept writable by
demotion; cleaning; the rebuild reserve; rebuild onto a blank replacement
equal to a twin that never failed, rebuild around a failing target, then a
second failure survived; scrub and read repair of silent corruption.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

import numpy as np
import pytest
from levels7_pool import SLOW
from pool_helpers import KiB, MiB, Ref, Rig, check_all, fill, read_tree

from dwcore import raid
from dwcore.devices import FaultyDevice, RamDevice
from dwcore.errors import DataLossError, InvalidArgumentError, NoSpaceError
from dwcore.pool import Pool, devstate
from dwcore.pool.manifest import MANIFEST_NAME
from dwcore.pool.migration import LOG_COPIES, STATE_NAME, AdaptivePool, HeatEngine
from dwcore.pool.statefile import read_state, write_state
from dwcore.raid.adaptive import PEX_SIZE, RB_SIZE, Adaptive, map_log_bound

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

RB = 16 * KiB
PEX = 256 * KiB
DEV = 8 * MiB


class Clock:
    """The pool's logical clock, moved by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make(tmp_path: Any, n: int, name: str = "pool", **opts: Any) -> tuple[Rig, AdaptivePool, Clock]:
    path = str(tmp_path / name)
    os.makedirs(path, exist_ok=True)
    rig = Rig.ram(path, n, DEV)
    opts.setdefault("heat_half_life", 10.0)
    pool = Pool.create(path, "adaptive", rig.wrappers, DEV, chunk_size=RB, pex_size=PEX, **opts)
    assert isinstance(pool, AdaptivePool)
    clock = Clock()
    pool.heat.clock = clock
    return rig, pool, clock


def reopen(rig: Rig, clock: Clock) -> AdaptivePool:
    pool = Pool.open(rig.path, devices=rig.rewrap())
    assert isinstance(pool, AdaptivePool)
    pool.heat.clock = clock
    return pool


def rbs_of(pool: AdaptivePool, ext: Any) -> range:
    rb0, n, _ = pool.heat.extents[ext.first_row]
    return range(rb0, rb0 + n)


def test_layout_capacity_and_options() -> None:
    lay = raid.layout("autoraid", 6, RB, pex_size=PEX)
    assert isinstance(lay, Adaptive)
    assert lay.width == 6 and lay.fault_tolerance == 1 and lay.min_devices == 3
    pexes = [20] * 6
    raw, spare, mirror = lay.budget(pexes)
    assert (raw, spare, mirror) == (120, 20, 12)
    per = PEX // RB
    # (R - spare - M)·(w-1)/w + M/2 PEXes of user data
    assert lay.capacity_rbs(pexes) == (120 - 20 - 12) // 6 * 5 * per + 12 // 2 * per
    assert raid.layout("adaptive", 12, RB).k == 7  # width min(N, 8)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"pex_size": RB + 4 * KiB}, "multiple of chunk_size"),
        ({"width": 2}, "width"),
        ({"mirror_fraction": 0.95}, "mirror_fraction"),
        ({"heat_half_life": 0}, "heat_half_life"),
    ]
    for opts, msg in bad:
        with pytest.raises(InvalidArgumentError, match=msg):
            raid.layout("adaptive", 5, RB, **opts)
    with pytest.raises(InvalidArgumentError, match="at least 3"):
        raid.layout("adaptive", 2, RB)
    # mixed sizes: each device's own PEXes (capped by the largest data area given)
    mixed = raid.layout("adaptive", 3, RB, pex_size=PEX, sizes=[10 * PEX, 20 * PEX + 5, 30 * PEX])
    assert isinstance(mixed, Adaptive)
    assert mixed.total_pexes(25 * PEX) == [10, 20, 25] and lay.total_pexes(7 * PEX) == [7] * 6
    # the map log's PEXes (sized for the largest map) are kept at the end of every device
    log = mixed.map_log_pexes([10, 20, 25])
    most = map_log_bound(55, mixed.capacity_rbs([10, 20, 25]))
    assert 2 * most <= log * PEX < 2 * most + 2 * PEX + 8 * KiB
    assert mixed.pexes(25 * PEX) == [10 - log, 20 - log, 25 - log]
    assert mixed.with_map_log(1).pexes(25 * PEX) == [9, 19, 24]
    assert mixed.with_map_log(0).pexes(25 * PEX) == [10, 20, 25]  # a pool made before the log
    assert mixed.with_map_log(1).map_log_area() == PEX // 2
    assert mixed.capacity(30 * PEX + 4 * MiB) == mixed.capacity_rbs(mixed.pexes(30 * PEX)) * RB
    assert mixed.with_sizes([PEX] * 3).sizes == (PEX,) * 3
    with pytest.raises(InvalidArgumentError, match="sizes lists 2"):
        raid.layout("adaptive", 3, RB, sizes=[PEX, PEX])


def workload(pool: AdaptivePool, clock: Clock, rng: np.random.Generator) -> tuple[Ref, Ref]:
    """Cold set written once at t = 0; hot set rewritten (new extents, old freed) at t = 100."""
    cold = fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 30)])
    clock.t = 100.0
    hot = Ref()
    for _ in range(4):
        new = fill(pool, rng, [int(x) for x in rng.integers(1, 2 * RB, 8)])
        for ext, _ in hot:
            pool.free(ext)
        hot = new
    pool.sync()
    return cold, hot


def test_hot_mirrored_cold_in_parity_after_tick(tmp_path: Any) -> None:
    _rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(1)
    cold, hot = workload(pool, clock, rng)
    did = pool.tick()
    assert did["demoted"] > 0
    cls = pool.heat.classes()
    assert {cls[rb] for ext, _ in cold for rb in rbs_of(pool, ext)} == {"parity"}
    assert {cls[rb] for ext, _ in hot for rb in rbs_of(pool, ext)} == {"mirror"}
    check_all(pool, cold)
    check_all(pool, hot)
    assert pool.scrub(repair=False).mismatches == []
    pool.close()


def rb_lost(pool: AdaptivePool, rb: int, failed: set[int]) -> bool:
    """Both copies on F (mirror), or the RB's own chunk and another member of its stripe."""
    eng = pool.heat
    peg = eng.pegs[eng.loc[rb][0]]
    on_f = sum(1 for d, _ in peg.members if d in failed)
    if peg.kind == "mirror":
        return on_f == 2
    s, dix = divmod(eng.loc[rb][1], len(peg.members) - 1)
    own = eng.stripe_map(peg, s).data_members(dix)[0].device
    return own in failed and on_f >= 2


@pytest.mark.parametrize("n", [4, 5] + ([3, 6, 8, 10] if SLOW else []))
def test_failure_matrix(tmp_path: Any, n: int) -> None:
    """Every failure set (N ≤ 8; N = 10, w = 8 < N: every |F| ≤ 2): an extent raises
    exactly when one of its RBs is lost (naming a failed device), never wrong bytes;
    when the pool survives F, 100 random unaligned sub-reads (1 000 slow); a partly
    lost extent still reads its surviving RBs."""
    rig, pool, clock = make(tmp_path, n)
    rng = np.random.default_rng(n)
    cold, hot = workload(pool, clock, rng)
    pool.tick()
    everything = Ref({**cold.items, **hot.items})
    raised = partial = 0
    for size in range(min(n, 2 if n > 8 else n) + 1):
        for f in itertools.combinations(range(n), size):
            failed = set(f)
            rig.fail(failed)
            if size <= 1:
                assert pool.survives(failed) and pool.layout.survives(failed)
            readable = Ref()
            for ext, data in everything:
                gone = [rb_lost(pool, rb, failed) for rb in rbs_of(pool, ext)]
                try:
                    got = pool.read(ext)
                except DataLossError as exc:
                    assert any(gone), f"F={sorted(failed)}: {ext!r} raised {exc}"
                    assert set(exc.failed) & failed
                    raised += 1
                    partial += check_surviving_ranges(pool, ext, data, gone, rng)
                    continue
                assert not any(gone), f"F={sorted(failed)}: {ext!r} read although lost"
                assert got == data, "WRONG BYTES"
                readable.add(ext, data)
            if pool.survives(failed):
                assert len(readable) == len(everything)
                check_all(pool, readable, rng, subs=1000 if SLOW else 100)
            rig.heal()
    assert raised and partial
    pool.close()


def check_surviving_ranges(
    pool: AdaptivePool, ext: Any, data: bytes, gone: list[bool], rng: np.random.Generator
) -> int:
    """An extent with some RBs lost: every RB-range that survives reads back (whole and
    an unaligned piece of it), every lost one raises; returns surviving RBs checked."""
    ok = 0
    for i, lost in enumerate(gone):
        lo, hi = i * RB, min(len(data), (i + 1) * RB)
        if lost:
            with pytest.raises(DataLossError):
                pool.read(ext, lo, hi - lo)
            continue
        assert pool.read(ext, lo, hi - lo) == data[lo:hi]
        a = int(rng.integers(lo, hi))
        b = int(rng.integers(a, hi + 1))
        assert pool.read(ext, a, b - a) == data[a:b]
        ok += 1
    return ok


def test_degraded_write_rebuild_then_second_failure(tmp_path: Any) -> None:
    rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(2)
    cold, hot = workload(pool, clock, rng)
    pool.tick()
    rig.fail([1])
    pool.fail_device(1)
    more = fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 10)])
    check_all(pool, more)
    pool.rebuild()
    assert all(1 not in pool.heat._peg_devices(rb) for rb in pool.heat.loc)
    for ref in (cold, hot, more):
        check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    for f in (0, 2, 3, 4):  # 2 sequential: any further single failure is survived
        rig.fail([f])
        for ref in (cold, hot, more):
            check_all(pool, ref)
        rig.heal()
        rig.fail([1])
    pool.close()


def test_crash_between_copy_and_map_commit(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(3)
    cold, hot = workload(pool, clock, rng)
    before = pool.heat.classes()

    class Cut(Exception):
        pass

    def save(self: HeatEngine) -> None:
        raise Cut  # the stripes are written and synced; the map switch never happens

    monkeypatch.setattr(HeatEngine, "save", save)
    with pytest.raises(Cut):
        pool.tick()
    monkeypatch.undo()
    for w in rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=i, keep="random")
    pool.close(sync=False)
    pool = reopen(rig, clock)
    assert pool.heat.classes() == before  # the old version: still mirrored
    check_all(pool, cold)
    check_all(pool, hot)
    assert pool.scrub(repair=False).mismatches == []
    rig.fail([2])
    check_all(pool, cold)  # redundancy was never lowered
    rig.heal()
    pool.tick()  # the move runs again and commits
    assert {pool.heat.classes()[rb] for ext, _ in cold for rb in rbs_of(pool, ext)} == {"parity"}
    check_all(pool, cold)
    pool.close()


@pytest.mark.parametrize("keep", ["all", "random", "none"])
def test_a_freed_slot_is_not_reused_before_the_free_is_durable(tmp_path: Any, keep: str) -> None:
    """Write A, sync, free A, write B, cut the power: the saved map still names A live
    (the free never reached it), so B must not have gone into A's mirror slot."""
    rig, pool, clock = make(tmp_path, 4)
    rng = np.random.default_rng(11)
    kept = fill(pool, rng, [3 * RB + 5, RB])
    gone = fill(pool, rng, [2 * RB, RB - 7])
    pool.sync()
    slots = {pool.heat.loc[rb] for ext, _ in gone for rb in rbs_of(pool, ext)}
    for ext, _ in gone:
        pool.free(ext)
    new = fill(pool, rng, [2 * RB, RB, 3 * RB])
    assert not slots & {pool.heat.loc[rb] for ext, _ in new for rb in rbs_of(pool, ext)}
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=i, keep=keep)  # type: ignore[arg-type]
    pool.close(sync=False)
    pool = reopen(rig, clock)
    check_all(pool, kept)
    check_all(pool, gone)  # live again in the saved map, with their own bytes
    assert pool.scrub(repair=False).mismatches == []
    for ext, _ in gone:
        pool.free(ext)
    pool.sync()
    again = fill(pool, rng, [2 * RB, RB, 3 * RB])  # after the sync the slots are reused
    assert slots & {pool.heat.loc[rb] for ext, _ in again for rb in rbs_of(pool, ext)}
    check_all(pool, kept)
    check_all(pool, again)
    pool.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_power_cut_in_the_middle_of_a_demotion(tmp_path: Any, seed: int) -> None:
    rig, pool, clock = make(tmp_path, 4)
    rng = np.random.default_rng(seed)
    cold, hot = workload(pool, clock, rng)
    cut_after = int(rng.integers(1, 12))
    writes = 0

    class Kill(Exception):
        """The process dies at a device write (kill -9): the pool sees no device error."""

    for w in rig.wrappers:
        inner_write = w._write

        def counted(offset: int, view: memoryview, _iw: Any = inner_write) -> None:
            nonlocal writes
            writes += 1
            if writes == cut_after:
                raise Kill
            _iw(offset, view)

        w._write = counted  # type: ignore[method-assign]
    with pytest.raises(Kill):
        pool.tick()
    assert writes >= cut_after
    for i, w in enumerate(rig.wrappers):
        w.fail_now("any")
        w.power_cut(seed=seed * 10 + i, keep="random")
    pool.close(sync=False)
    pool = reopen(rig, clock)
    check_all(pool, cold)
    check_all(pool, hot)
    assert pool.scrub(repair=False).mismatches == []
    for f in range(4):  # redundancy was never lowered: any one device may go now
        rig.fail([f])
        check_all(pool, cold)
        check_all(pool, hot)
        rig.heal()
    pool.close()


def test_rewrites_reuse_freed_slots_after_a_sync_instead_of_demoting(tmp_path: Any) -> None:
    """Free and rewrite the same amount, never syncing: the freed mirror slots are held
    until the map without them is saved, so when the mirror space runs low a write
    syncs (making them free again) rather than demoting live RBs to parity."""
    _rig, pool, _clock = make(tmp_path, 4)
    rng = np.random.default_rng(30)
    free, total = pool.heat.mirror_slots()
    n = max(1, (free - int(0.2 * total)) // 2)  # two rounds use more than the free slots
    live = fill(pool, rng, [RB] * n)
    pool.sync()
    moves = pool.heat.moves
    for _ in range(6):
        new = fill(pool, rng, [RB] * n)
        for ext, _ in live:
            pool.free(ext)
        live = new
    assert pool.heat.moves == moves  # nothing demoted: the writes synced instead
    assert {pool.heat.classes()[rb] for ext, _ in live for rb in rbs_of(pool, ext)} == {"mirror"}
    check_all(pool, live)
    pool.close()


def test_full_pool_stays_writable_by_demotion(tmp_path: Any) -> None:
    _rig, pool, clock = make(tmp_path, 4)
    rng = np.random.default_rng(4)
    cap = pool.status().capacity
    cold = Ref()
    while pool.status().used < 0.8 * cap:
        fill(pool, rng, [4 * RB], cold)
    pool.sync()
    hot = Ref()
    for i in range(150):
        clock.t = float(i)
        new = fill(pool, rng, [int(rng.integers(1, 3 * RB))])
        for ext, _ in hot:
            pool.free(ext)
        hot = new
        if i % 50 == 0:
            pool.tick(idle=False)
    assert pool.heat.moves > 0
    check_all(pool, cold)
    check_all(pool, hot)
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [8 * RB], cold)
    pool.close()


def test_scrub_and_read_repair(tmp_path: Any) -> None:
    rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(5)
    cold, hot = workload(pool, clock, rng)
    pool.tick()
    eng = pool.heat
    # a parity-class data chunk and a mirror copy, corrupted silently
    prb = next(rb for ext, _ in cold for rb in rbs_of(pool, ext))
    mrb = next(rb for ext, _ in hot for rb in rbs_of(pool, ext))

    def corrupt() -> None:
        for rb in (prb, mrb):
            peg = eng.pegs[eng.loc[rb][0]]
            slot = eng.loc[rb][1]
            if peg.kind == "mirror":
                d, x = peg.members[0]
                rel = slot * RB
            else:
                s, dix = divmod(slot, len(peg.members) - 1)
                m = eng.stripe_map(peg, s).data_members(dix)[0]
                d, x = m.device, dict(peg.members)[m.device]
                rel = m.device_offset
            off, _ = eng._off(d, x, rel)
            rig.inners[d].pwrite(off + 11, b"\x42" * 33)

    corrupt()
    check_all(pool, cold)  # reads decode around the bad blocks and rewrite them
    check_all(pool, hot)
    assert pool.scrub(repair=False).mismatches == []
    # the parity chunk of another stripe of a parity PEG (reads never touch it)
    ppeg = eng.pegs[eng.loc[prb][0]]
    ps = (eng.loc[prb][1] // (len(ppeg.members) - 1) + 1) % ppeg.filled
    pm = eng.stripe_map(ppeg, ps).parity_members[0]
    poff, _ = eng._off(pm.device, dict(ppeg.members)[pm.device], pm.device_offset)
    rig.inners[pm.device].pwrite(poff + 100, b"\x17" * 9)
    (only,) = pool.scrub(repair=False).mismatches
    assert (only.stripe, only.device, only.kind) == (ppeg.id, pm.device, "checksum")
    assert only.how.endswith(f"stripe {ps}")
    corrupt()  # not read this time: scrub finds and repairs all three
    rep = pool.scrub(repair=True)
    assert all(m.repaired and m.kind == "checksum" for m in rep.mismatches)
    named = {(m.stripe, m.device) for m in rep.mismatches}  # (PEG, device)
    want = {(ppeg.id, pm.device)}
    for rb in (prb, mrb):
        peg = eng.pegs[eng.loc[rb][0]]
        if peg.kind == "mirror":
            want.add((peg.id, peg.members[0][0]))
        else:
            s, dix = divmod(eng.loc[rb][1], len(peg.members) - 1)
            want.add((peg.id, eng.stripe_map(peg, s).data_members(dix)[0].device))
    assert named == want and len(want) == 3
    assert pool.scrub(repair=False).mismatches == []
    check_all(pool, cold)
    check_all(pool, hot)
    pool.close()


def test_physical_runs_hold_the_extent(tmp_path: Any) -> None:
    """``physical(ext)`` (benchmark anchors): both copies, or the chunk and its parity."""
    rig, pool, clock = make(tmp_path, 5)
    cold, hot = workload(pool, clock, np.random.default_rng(8))
    pool.tick()
    base = [m.sb.data_offset if m.sb is not None else 0 for m in pool._members]
    for ref, per_rb in ((hot, 2), (cold, 1)):
        for ext, data in ref:
            runs = pool.heat.physical(ext)
            assert len(runs) >= per_rb * ext.rows
            blob = b"".join(rig.inners[d].pread(base[d] + off, n) for d, off, n in runs)
            assert data[:32] in blob and data[-32:] in blob
    pool.close()


def test_heat_is_a_decayed_write_count_not_recency(tmp_path: Any) -> None:
    """A written 5 times at t = 0, B once at t = 15 (half-life 10): at t = 30 A's heat is
    5·2^-3 = 0.625 and B's 2^-1.5 = 0.354, so the idle tick (colder than ½) demotes B and
    keeps A mirrored; by recency alone A (older) would be the colder one."""
    rig, pool, clock = make(tmp_path, 4)
    rng = np.random.default_rng(21)
    a = None
    for _ in range(5):  # overwrite: free, then write again — the same logical RB
        if a is not None:
            pool.free(a)
        data_a = rng.bytes(RB - 3)
        a = pool.write(data_a)
    assert a is not None
    (rb_a,) = rbs_of(pool, a)
    clock.t = 15.0
    data_b = rng.bytes(RB)
    b = pool.write(data_b)
    (rb_b,) = rbs_of(pool, b)
    clock.t = 30.0
    heat = pool.heat.decayed()
    assert heat[rb_a] == pytest.approx(5 * 2**-3)
    assert heat[rb_b] == pytest.approx(2**-1.5)
    pool.sync()
    assert pool.tick()["demoted"] == 1
    cls = pool.heat.classes()
    assert (cls[rb_a], cls[rb_b]) == ("mirror", "parity")
    assert pool.read(a) == data_a and pool.read(b) == data_b
    # the heat of a freed address is kept (and saved): a write there adds to it
    pool.free(a)
    pool.sync()
    pool.close()
    pool = reopen(rig, clock)
    clock.t = 40.0
    c = pool.write(rng.bytes(100))
    assert list(rbs_of(pool, c)) == [rb_a]
    assert pool.heat.decayed()[rb_a] == pytest.approx(5 * 2**-4 + 1)
    pool.close()


def _as_made_before_the_log(rig: Rig) -> None:
    """Drop ``map_log`` from the manifest, as releases before the map log wrote it."""
    mpath = os.path.join(rig.path, MANIFEST_NAME)
    with open(mpath) as f:
        man = json.load(f)
    del man["layout"]["map_log"]
    with open(mpath, "w") as f:
        json.dump(man, f)


def test_map_format_1_is_read_and_a_newer_one_refused(tmp_path: Any, monkeypatch: Any) -> None:
    """A pool made before the map log (no ``map_log`` in its manifest) keeps its map in
    adaptive.json and every PEX for PEGs; formats 1 and 2 of that file are read."""
    # made as the release before the log made it: no PEXes kept for a log
    monkeypatch.setattr(
        AdaptivePool, "_with_map_log", staticmethod(lambda layout, usable: layout.with_map_log(0))
    )
    rig, pool, clock = make(tmp_path, 4)
    monkeypatch.undo()
    assert pool.heat.pexes == pool.layout.total_pexes(pool._geo.usable)
    ref = fill(pool, np.random.default_rng(22), [RB, 3 * RB + 1])
    pool.close()
    _as_made_before_the_log(rig)
    pool = reopen(rig, clock)
    assert pool.layout.map_log == 0 and pool.heat.log_pexes == 0
    check_all(pool, ref)
    pool.close()
    path = os.path.join(rig.path, STATE_NAME)
    st = read_state(path, "adaptive map", 99)
    assert st is not None and st["version"] == 2
    del st["heat"]  # format 1: no heat for freed addresses
    write_state(path, {**st, "version": 1})
    pool = reopen(rig, clock)
    check_all(pool, ref)
    pool.close()
    write_state(path, {**st, "version": 3})
    with pytest.raises(InvalidArgumentError, match="newer"):
        reopen(rig, clock)


def test_scrub_while_degraded_or_rebuilding_reports_only_real_mismatches(tmp_path: Any) -> None:
    """A failed device, then a blank replacement not rebuilt yet: their members are the
    rebuild's, not mismatches (scrub reports nothing and writes nothing to them); a block
    corrupted on an online device is still found."""
    rig, pool, clock = make(tmp_path, 5)
    cold, hot = workload(pool, clock, np.random.default_rng(15))
    pool.tick()
    pool.sync()
    rig.fail([2])
    pool.fail_device(2)
    assert pool.scrub(repair=True).mismatches == []
    pool.replace_device(2, rig.replace_inner(2))
    blank = rig.inners[2].pread(0, rig.inners[2].size)
    assert pool.scrub(repair=True).mismatches == []
    eng = pool.heat
    rb = next(
        rb
        for ext, _ in hot
        for rb in rbs_of(pool, ext)
        if eng.pegs[eng.loc[rb][0]].kind == "mirror"
        and 2 not in {d for d, _ in eng.pegs[eng.loc[rb][0]].members}
    )
    peg, slot = eng.pegs[eng.loc[rb][0]], eng.loc[rb][1]
    d, x = peg.members[1]
    off, _ = eng._off(d, x, slot * RB)
    rig.inners[d].pwrite(off + 5, b"\x66" * 7)
    (only,) = pool.scrub(repair=False).mismatches
    assert (only.stripe, only.device) == (peg.id, d)
    assert rig.inners[2].pread(0, rig.inners[2].size)[1 << 20 :] == blank[1 << 20 :]
    pool.rebuild()
    assert pool.scrub(repair=True).mismatches[0].repaired
    assert pool.scrub(repair=False).mismatches == []
    check_all(pool, cold)
    check_all(pool, hot)
    pool.close()


def test_rebuild_onto_a_blank_replacement_equals_a_twin(tmp_path: Any) -> None:
    """§0.5 4(b): fail device 2, put a blank device in its slot and rebuild: every RB is
    stored where, and as, a twin pool that never failed stores it; scrub finds nothing;
    then any other single failure still reads everything back."""
    pools = []
    for name in ("pool", "twin"):
        rig, pool, clock = make(tmp_path, 5, name)
        cold, hot = workload(pool, clock, np.random.default_rng(6))
        pool.tick()
        pool.sync()
        pools.append((rig, pool, Ref({**cold.items, **hot.items})))
    (rig, pool, ref), (trig, twin, tref) = pools
    rig.fail([2])
    pool.fail_device(2)
    pool.replace_device(2, rig.replace_inner(2))
    pool.rebuild()
    assert pool.status().devices[2].state.value == "online"
    base = [m.sb.data_offset if m.sb is not None else 0 for m in pool._members]
    tbase = [m.sb.data_offset if m.sb is not None else 0 for m in twin._members]
    runs = 0
    for (ext, data), (text, tdata) in zip(ref, tref, strict=True):
        assert data == tdata
        phys = pool.heat.physical(ext)
        assert phys == twin.heat.physical(text)
        for d, off, n in phys:
            got = rig.inners[d].pread(base[d] + off, n)
            assert got == trig.inners[d].pread(tbase[d] + off, n)
            runs += d == 2
    assert runs  # the replacement holds rebuilt runs
    check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    for f in (0, 1, 3, 4):
        rig.fail([f])
        check_all(pool, ref)
        rig.heal()
    pool.close()
    twin.close()


@pytest.mark.parametrize("after", [0, 3, 9])
def test_a_device_write_failure_during_a_move_commits_nothing(tmp_path: Any, after: int) -> None:
    """A parity member fails part-way through a demotion: the move is abandoned (every RB
    still where it was, mirrored), the tick stops there (the cleaning that was due is not
    tried on the pool that just lost a device), everything reads, also after a power cut;
    once the device is replaced and rebuilt the moves run again."""
    rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(23)
    eng = pool.heat
    old = fill(pool, rng, [RB] * 80)
    clock.t = 100.0
    pool.tick()
    assert set(eng.classes().values()) == {"parity"}
    (full,) = [p for p in eng.pegs.values() if p.kind == "parity" and p.filled == eng.per_pex]
    in_full = set(eng.slot_rb[full.id].values())
    kept = Ref()
    for ext, data in old:  # three quarters of the full PEG freed: cleaning is due
        if rbs_of(pool, ext)[0] in in_full and rng.random() < 0.75:
            pool.free(ext)
        else:
            kept.add(ext, data)
    cold = fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 20)])
    clock.t = 200.0  # cold is colder than ½ now: the idle tick demotes it
    pool.sync()
    before = dict(eng.loc)
    rig.wrappers[2].fail_after(after, "write")  # every parity PEG spans all 5 devices
    did = pool.tick()
    assert did == {"demoted": 0, "cleaned": 0, "released": 0, "aborted": 1}
    assert eng.loc == before and eng.aborts == 1
    assert pool.status().devices[2].state.value == "failed"
    check_all(pool, cold, rng, subs=50)
    check_all(pool, kept)
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=after + i, keep="random")
    pool.close(sync=False)
    rig.heal()
    pool = reopen(rig, clock)
    assert pool.heat.loc == before
    check_all(pool, cold)
    check_all(pool, kept)
    pool.replace_device(2, rig.replace_inner(2))
    pool.rebuild()
    did = pool.tick()
    assert did["demoted"] > 0 and did["cleaned"] > 0 and did["aborted"] == 0
    assert {pool.heat.classes()[rb] for ext, _ in cold for rb in rbs_of(pool, ext)} == {"parity"}
    assert pool.scrub(repair=False).mismatches == []
    for f in range(5):
        rig.fail([f])
        check_all(pool, cold)
        check_all(pool, kept)
        rig.heal()
    pool.close()


def test_cleaning_compacts_sparse_parity_pegs_and_returns_empty_ones(tmp_path: Any) -> None:
    """Full parity PEGs: one under half live is compacted (its live RBs re-appended) and
    released, an empty one is released, one ¾ live is left alone; the released PEXes
    are free again and everything reads back, also after a reopen and any one failure."""
    rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(24)
    eng = pool.heat
    ref = fill(pool, rng, [int(x) for x in rng.integers(RB // 2, RB + 1, 200)])  # 1 RB each
    clock.t = 100.0
    pool.tick()
    assert set(eng.classes().values()) == {"parity"}
    full = [p for p in eng.pegs.values() if p.kind == "parity" and p.filled == eng.per_pex]
    assert len(full) >= 3
    sparse, empty, dense = full[:3]
    share = {sparse.id: 0.75, empty.id: 1.0, dense.id: 0.25}  # fraction freed
    kept = Ref()
    for ext, data in ref:
        p = eng.loc[rbs_of(pool, ext)[0]][0]
        if rng.random() < share.get(p, 0.0):  # random() < 1.0 always: all of `empty`
            pool.free(ext)
        else:
            kept.add(ext, data)
    live = len(eng.slot_rb[sparse.id])
    per_peg = eng.per_pex * (len(sparse.members) - 1)
    assert 0 < live < per_peg / 2 and len(eng.slot_rb[dense.id]) > per_peg / 2
    assert not eng.slot_rb[empty.id]
    did = pool.tick()
    assert did["cleaned"] == live and did["released"] >= 2 and did["aborted"] == 0
    assert sparse.id not in eng.pegs and empty.id not in eng.pegs and dense.id in eng.pegs
    free = eng.free_pexes()
    assert all(x in free[d] for p in (sparse, empty) for d, x in p.members)
    check_all(pool, kept, rng, subs=50)
    assert pool.scrub(repair=False).mismatches == []
    pool.close()
    pool = reopen(rig, clock)
    check_all(pool, kept)
    for f in range(5):
        rig.fail([f])
        check_all(pool, kept)
        rig.heal()
    pool.close()


def test_the_reserve_survives_a_full_pool_and_absorbs_a_rebuild(tmp_path: Any) -> None:
    """Fill until NoSpaceError: one largest device's worth of PEXes is still free; a
    failure is then rebuilt into it (no replacement), after which any further single
    failure still reads everything (2 sequential failures).  Width 4 on 5 devices, so
    every PEG has a device outside it to rebuild onto."""
    rig, pool, clock = make(tmp_path, 5, width=4)
    rng = np.random.default_rng(25)
    eng = pool.heat
    ref = Ref()
    with pytest.raises(NoSpaceError):
        for i in range(10_000):
            clock.t = float(i)
            fill(pool, rng, [int(rng.integers(1, 4 * RB))], ref)
    assert sum(len(f) for f in eng.free_pexes()) >= eng.spare > 0
    pool.sync()
    rig.fail([1])
    pool.fail_device(1)
    check_all(pool, ref)
    pool.rebuild()
    assert all(d != 1 for p in eng.pegs.values() for d, _ in p.members)
    check_all(pool, ref, rng, subs=100)
    assert pool.scrub(repair=False).mismatches == []
    for f in (0, 2, 3, 4):
        rig.fail([f])
        check_all(pool, ref)
        rig.heal()
        rig.fail([1])
    pool.close()


def test_a_full_width_pool_needs_a_replacement_to_rebuild(tmp_path: Any) -> None:
    """With w = N (every parity PEG on every device) no device lies outside a PEG, so
    re-protecting a full pool without a replacement would need the lost data re-striped
    narrower — more than the reserve.  The rebuild says so (NoSpaceError), loses
    nothing, and a blank replacement then rebuilds."""
    rig, pool, clock = make(tmp_path, 4)
    rng = np.random.default_rng(26)
    ref = Ref()
    with pytest.raises(NoSpaceError):
        for i in range(10_000):
            clock.t = float(i)
            fill(pool, rng, [int(rng.integers(1, 4 * RB))], ref)
    pool.sync()
    rig.fail([1])
    pool.fail_device(1)
    with pytest.raises(NoSpaceError, match="lost device"):
        pool.rebuild()
    check_all(pool, ref)
    pool.replace_device(1, rig.replace_inner(1))
    pool.rebuild()
    check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    for f in range(4):
        rig.fail([f])
        check_all(pool, ref)
        rig.heal()
    pool.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_power_cut_drops_unsynced_writes(tmp_path: Any, seed: int) -> None:
    """Ordinary writes and frees after the last sync, then the power is cut keeping a
    random part of the unsynced device writes: every extent synced before reads back
    (those freed since, too: the free was not durable), scrub is clean, and the pool
    takes writes and survives any one failure."""
    rig, pool, clock = make(tmp_path, 4)
    rng = np.random.default_rng(seed)
    synced = fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 30)])
    clock.t = 100.0
    pool.tick()  # some of it parity-class
    fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 10)], synced)
    pool.sync()
    for ext, _ in list(synced)[::4]:
        pool.free(ext)  # not durable: live again after the cut
    fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 6)])
    assert any(w.unsynced_writes for w in rig.wrappers)
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=seed * 10 + i, keep="random")
    pool.close(sync=False)
    pool = reopen(rig, clock)
    check_all(pool, synced, rng, subs=100)
    assert pool.scrub(repair=False).mismatches == []
    new = fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 10)])
    pool.sync()
    for f in range(4):
        rig.fail([f])
        check_all(pool, synced)
        check_all(pool, new)
        rig.heal()
    pool.close()


def test_a_crash_after_a_sync_inside_a_write_leaks_no_slots(tmp_path: Any) -> None:
    """An extent larger than the mirror budget makes the write demote its own first RBs,
    and that demotion's commit saves the map in the middle of the write; a power cut
    before the next sync: the unacknowledged extent's RBs are not in the reopened map
    (no slot is held by an RB of no extent) and its space is written again."""
    rig, pool, clock = make(tmp_path, 4)
    rng = np.random.default_rng(27)
    small = fill(pool, rng, [RB, 2 * RB + 9])
    pool.sync()
    _free, total = pool.heat.mirror_slots()
    fill(pool, rng, [total * RB + RB // 2])  # never synced
    assert pool.heat.moves > 0
    for i, w in enumerate(rig.wrappers):
        w.power_cut(seed=i, keep="random")
    pool.close(sync=False)
    pool = reopen(rig, clock)
    eng = pool.heat
    assert set(eng.loc) == {rb for ext, _ in small for rb in rbs_of(pool, ext)}
    mirrored = sum(1 for c in eng.classes().values() if c == "mirror")
    assert eng.mirror_slots()[0] == total - mirrored
    assert sum(len(m) for m in eng.slot_rb.values()) == len(eng.loc)
    check_all(pool, small)
    again = fill(pool, rng, [total * RB + RB // 2])
    pool.sync()
    check_all(pool, again)
    check_all(pool, small)
    assert pool.scrub(repair=False).mismatches == []
    pool.close()


def test_default_rb_and_pex_sizes_follow_the_spec(tmp_path: Any) -> None:
    """RB 64 KiB and PEX 1 MiB when nothing is given, through ``raid.layout`` and
    ``Pool.create`` too (other levels keep md's 512 KiB); kept across a reopen."""
    lay = raid.layout("adaptive", 4)
    assert isinstance(lay, Adaptive)
    assert (lay.chunk_size, lay.pex_size) == (RB_SIZE, PEX_SIZE) == (64 * KiB, MiB)
    assert Adaptive(4).options == lay.options
    assert raid.layout("5", 4).chunk_size == 512 * KiB
    path = str(tmp_path / "pool")
    os.makedirs(path)
    rig = Rig.ram(path, 4, DEV)
    pool = Pool.create(path, "adaptive", rig.wrappers, DEV)
    assert isinstance(pool, AdaptivePool)
    assert (pool.layout.chunk_size, pool.layout.pex_size) == (64 * KiB, MiB)
    ref = fill(pool, np.random.default_rng(28), [1, 64 * KiB + 1, 200 * KiB])
    pool.close()
    pool = Pool.open(path, devices=rig.rewrap())
    assert pool.layout.chunk_size == 64 * KiB
    check_all(pool, ref)
    pool.close()


def test_a_rebuild_target_that_fails_is_not_used(tmp_path: Any) -> None:
    """Device 1 is lost; while its PEXes are rebuilt onto other devices, device 4 fails
    its writes: no PEG that had a PEX on device 1 ends up with its rebuilt PEX on the
    failed device 4 (it is rebuilt onto a working one), and everything reads."""
    rig, pool, clock = make(tmp_path, 5, width=3)
    rng = np.random.default_rng(29)
    cold, hot = workload(pool, clock, rng)
    pool.tick()
    pool.sync()
    eng = pool.heat
    had_1 = {p.id for p in eng.pegs.values() if any(d == 1 for d, _ in p.members)}
    rig.fail([1])
    pool.fail_device(1)
    rig.wrappers[4].fail_after(1, "write")
    pool.rebuild()
    assert pool.status().devices[4].state.value == "failed"
    online = {i for i, d in enumerate(pool.status().devices) if d.state.value == "online"}
    rebuilt = [eng.pegs[i] for i in had_1 if i in eng.pegs]
    assert rebuilt and all(d in online for p in rebuilt for d, _ in p.members)
    check_all(pool, cold)
    check_all(pool, hot)
    pool.close()


@pytest.mark.parametrize("again", [1, 0])
def test_a_device_replaced_during_a_rebuild_is_not_marked_online(tmp_path: Any, again: int) -> None:
    """Device 0 is replaced and rebuilt; after the rebuild's last PEG step (from its
    progress callback) device ``again`` fails and is replaced by a blank device too — an
    online one (1) or the replacement being rebuilt (0).  The rebuild marks online only
    the replacement it rebuilt: the blank one stays REBUILDING (the pool degraded), reads
    never use it, and the next rebuild brings it online with every single failure
    survived afterwards."""
    rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(41)
    cold, hot = workload(pool, clock, rng)
    pool.tick()
    pool.sync()
    rig.fail([0])
    pool.fail_device(0)
    pool.replace_device(0, rig.replace_inner(0))
    steps: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        steps.append((done, total))
        if done == total:
            pool.fail_device(again)
            pool.replace_device(again, rig.replace_inner(again))

    pool.rebuild(progress)
    assert steps and steps[-1][0] == steps[-1][1]
    st = pool.status()
    assert st.devices[again].state.value == "rebuilding" and st.degraded
    assert [d.state.value for i, d in enumerate(st.devices) if i != again] == ["online"] * 4
    for ref in (cold, hot):
        check_all(pool, ref)  # around the blank device
    pool.close()
    pool = reopen(rig, clock)  # the state is saved: still REBUILDING after a reopen
    assert pool.status().devices[again].state.value == "rebuilding"
    pool.rebuild()
    assert not pool.status().degraded
    for ref in (cold, hot):
        check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    for f in range(5):
        rig.fail([f])
        for ref in (cold, hot):
            check_all(pool, ref)
        rig.heal()
    pool.close()


def test_a_rebuild_never_reads_the_replacement_before_rebuilding_it(tmp_path: Any) -> None:
    """The replacement for device 2 is its own stale image (this pool's superblock, blocks
    whose checksums match, but older contents at places the map now uses for other RBs):
    reads during the rebuild (through the Python path: RAM devices) and the rebuild
    itself never take its unrebuilt PEXes as data; afterwards every RB reads back, also
    with any other device failed."""
    rig, pool, clock = make(tmp_path, 5)
    rng = np.random.default_rng(42)
    old, hot = workload(pool, clock, rng)
    pool.sync()
    stale = rig.inners[2].pread(0, rig.size)
    for ref in (old, hot):  # everything rewritten: the freed slots are used again
        for ext, _ in ref:
            pool.free(ext)
    pool.sync()
    clock.t += 1.0
    cold = fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 30)])
    hot = fill(pool, rng, [int(x) for x in rng.integers(1, 2 * RB, 8)])
    pool.sync()
    base = pool._members[2].sb.data_offset  # type: ignore[union-attr]
    runs = [
        (off, n)
        for ref in (cold, hot)
        for ext, _ in ref
        for d, off, n in pool.heat.physical(ext)
        if d == 2
    ]
    differ = [
        (off, n)
        for off, n in runs
        if stale[base + off : base + off + n] != rig.inners[2].pread(base + off, n)
        and any(stale[base + off : base + off + n])
    ]
    assert differ  # the stale image holds other, older data where live RBs are now
    rig.fail([2])
    pool.fail_device(2)
    rig.replace_inner(2)
    rig.inners[2].pwrite(0, stale)
    pool.replace_device(2, rig.wrappers[2])  # a member of this pool: no force needed
    reads: list[int] = []

    def progress(done: int, total: int) -> None:
        for ref in (cold, hot):
            check_all(pool, ref)
        reads.append(done)

    pool.rebuild(progress)
    assert reads and not pool.status().degraded
    for off, n in differ:  # rebuilt: the current bytes, not the stale ones
        assert rig.inners[2].pread(base + off, n) != stale[base + off : base + off + n]
    for ref in (cold, hot):
        check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    for f in (0, 1, 3, 4):
        rig.fail([f])
        for ref in (cold, hot):
            check_all(pool, ref)
        rig.heal()
    pool.close()


def test_mixed_device_sizes(tmp_path: Any) -> None:
    """Devices of 8, 12, 16 and 10 MiB (``device_size=None``): each is cut into its own
    number of PEXes, the spare is the largest device's, PEGs go to the devices with the
    most free PEXes; a full pool reads back, survives any one failure, a reopen, and a
    rebuild of the smallest device onto a blank replacement of its own size (a smaller
    one is refused, the pool unchanged)."""
    path = str(tmp_path / "pool")
    os.makedirs(path)
    sizes = [8 * MiB, 12 * MiB, 16 * MiB, 10 * MiB]
    rig = Rig.ram(path, 4, DEV)
    rig.inners = [RamDevice(size, name=f"mixed-{i}") for i, size in enumerate(sizes)]
    rig.rewrap()
    pool = Pool.create(path, "adaptive", rig.wrappers, None, chunk_size=RB, pex_size=PEX)
    assert isinstance(pool, AdaptivePool)
    clock = Clock()
    pool.heat.clock = clock
    eng = pool.heat
    # (size − 2 MiB of metadata) less its checksum table (4 B per 4 KiB), in 256 KiB PEXes
    totals = [int((s - 2 * MiB) * 1024 / 1025) // PEX for s in sizes]
    assert totals == [23, 39, 55, 31]
    log = pool.layout.map_log
    assert log == eng.log_pexes > 0
    assert eng.pexes == [t - log for t in totals]  # the map log at the end of each
    assert eng.spare == max(eng.pexes)
    assert pool.status().capacity == pool.layout.capacity_rbs(eng.pexes) * RB
    rng = np.random.default_rng(30)
    ref = Ref()
    with pytest.raises(NoSpaceError):
        for i in range(10_000):
            clock.t = float(i)
            fill(pool, rng, [int(rng.integers(1, 4 * RB))], ref)
    used = [sum(1 for p in eng.pegs.values() for d, _ in p.members if d == dev) for dev in range(4)]
    assert used[2] > used[0]  # the largest device takes the most PEXes
    pool.tick()
    check_all(pool, ref, rng, subs=100)
    assert pool.scrub(repair=False).mismatches == []
    pool.close()
    pool = reopen(rig, clock)
    assert pool.heat.pexes == eng.pexes
    check_all(pool, ref)
    for f in range(4):
        rig.fail([f])
        check_all(pool, ref)
        rig.heal()
    rig.fail([0])
    pool.fail_device(0)
    # a replacement needs only what the device it replaces contributed: one a MiB smaller
    # than the smallest (8 MiB) device is refused, and the pool is left as it was
    before = pool.status(), pool._members[0].device, read_tree(path)
    with pytest.raises(InvalidArgumentError, match=r"less than the .* device 0 contributes"):
        pool.replace_device(0, rig.replace_inner(0, sizes[0] - MiB))
    assert (pool.status(), pool._members[0].device, read_tree(path)) == before
    pool.replace_device(0, rig.replace_inner(0, sizes[0]))  # as big as the one it replaces
    assert pool.status().devices[0].state.value == "rebuilding"
    pool.rebuild()
    assert not pool.status().degraded
    check_all(pool, ref)
    assert pool.scrub(repair=False).mismatches == []
    pool.close()
    pool = reopen(rig, clock)
    assert pool.heat.pexes == eng.pexes and not pool.status().degraded
    check_all(pool, ref)
    for f in range(4):
        rig.fail([f])
        check_all(pool, ref)
        rig.heal()
    pool.close()


def test_mixed_sizes_on_files_read_natively(tmp_path: Any) -> None:
    """Sparse files of 8, 10 and 12 MiB (``device_size=None``): extents whose RBs lie on
    devices with different checksum-table offsets read back through the native path,
    also after a reopen, with a device failed and after it was rebuilt onto a new file
    of its own size."""
    path = str(tmp_path / "pool")
    os.makedirs(path)
    files = []
    for i, size in enumerate((8 * MiB, 10 * MiB, 12 * MiB)):
        files.append(str(tmp_path / f"d{i}"))
        with open(files[-1], "wb") as f:
            f.truncate(size)
    pool = Pool.create(
        path, "adaptive", files, None, chunk_size=RB, pex_size=PEX, heat_half_life=10.0
    )
    assert isinstance(pool, AdaptivePool)
    assert len({pool._table_off(d) for d in range(3)}) == 3
    rng = np.random.default_rng(31)
    clock = Clock()
    pool.heat.clock = clock
    ref = fill(pool, rng, [1, RB + 7, 5 * RB, 9 * RB - 3, 40 * RB])
    check_all(pool, ref, rng, subs=50)
    clock.t = 100.0
    pool.tick()  # parity class: an extent's chunks on every device
    assert set(pool.heat.classes().values()) == {"parity"}
    check_all(pool, ref, rng, subs=50)
    pool.close()
    pool = Pool.open(path)
    check_all(pool, ref)
    pool.fail_device(1)
    check_all(pool, ref, rng, subs=50)
    # a new file for the 10 MiB device is made as big as it (not as the largest, 12 MiB)
    pool.replace_device(1)
    assert os.path.getsize(pool.status().devices[1].path) == 10 * MiB
    pool.rebuild()
    assert not pool.status().degraded
    check_all(pool, ref, rng, subs=50)
    pool.close()
    pool = Pool.open(path)
    assert not pool.status().degraded
    check_all(pool, ref)
    pool.close()


# -- the map log: on three devices -----------------------------------------------------


def _log_copies(rig: Rig, pool: AdaptivePool) -> dict[int, int]:
    """Device → newest map record generation it holds (a fresh scan of every device)."""
    store = devstate.RecordStore(pool.pool_id, devstate.KIND_ADAPTIVE_MAP, pool.heat._log_areas)
    out: dict[int, int] = {}
    for rec in store.scan(enumerate(rig.inners)):
        out[rec.device] = max(out.get(rec.device, 0), rec.generation)
    return out


def _map_of(pool: AdaptivePool) -> tuple[Any, ...]:
    eng = pool.heat
    return (
        {i: (p.kind, list(p.members), p.filled) for i, p in eng.pegs.items()},
        dict(eng.loc),
        dict(eng.extents),
        eng.next_peg,
        eng.next_id,
    )


def test_map_log_is_on_three_devices(tmp_path: Any) -> None:
    """§6 Adaptive: the map is a checksummed log record replicated on 3 devices, inside
    PEXes no PEG uses; a failed log device hands its copy to the next online one; a
    reopened pool reads the same map (no adaptive.json)."""
    rig, pool, clock = make(tmp_path, 5)
    cold, hot = workload(pool, clock, np.random.default_rng(41))
    pool.tick()
    pool.sync()
    eng = pool.heat
    assert LOG_COPIES == 3 and eng.log_devices == [0, 1, 2]
    copies = _log_copies(rig, pool)
    assert sorted(copies) == [0, 1, 2] and len(set(copies.values())) == 1
    assert not os.path.exists(os.path.join(rig.path, STATE_NAME))
    taken = {(d, x) for p in eng.pegs.values() for d, x in p.members}
    assert all(x < eng.pexes[d] for d, x in taken)  # PEGs never reach the log's PEXes
    want = _map_of(pool)
    pool.close()
    pool = reopen(rig, clock)
    assert _map_of(pool) == want
    check_all(pool, Ref({**cold.items, **hot.items}))
    # device 1 fails: the next record goes to 0, 2 and 3
    rig.fail([1])
    pool.fail_device(1)
    fill(pool, np.random.default_rng(42), [RB] * 3, hot)
    pool.sync()
    assert pool.heat.log_devices == [0, 2, 3]
    newest = max(_log_copies(rig, pool).values())
    assert {d for d, g in _log_copies(rig, pool).items() if g == newest} == {0, 2, 3}
    want = _map_of(pool)
    pool.close()
    pool = reopen(rig, clock)
    assert _map_of(pool) == want
    check_all(pool, Ref({**cold.items, **hot.items}))
    pool.close()


def test_map_log_damaged_copies(tmp_path: Any) -> None:
    """Two of the three copies destroyed (both areas): the pool opens from the third.  A
    torn newer record (garbage in the area the next record goes to) is passed over for
    the older whole one.  No copy left: a clear DataLossError, not an empty pool."""
    rig, pool, clock = make(tmp_path, 4)
    ref = fill(pool, np.random.default_rng(43), [int(x) for x in range(1, 5 * RB, RB // 3)])
    pool.sync()
    areas = [pool.heat._log_areas(d) for d in range(4)]
    want = _map_of(pool)
    pool.close()
    for d in (0, 2):
        for a in areas[d]:
            rig.inners[d].pwrite(a.offset, bytes(a.size))
    pool = reopen(rig, clock)
    assert _map_of(pool) == want and pool.heat.log_devices == [1]
    check_all(pool, ref)
    pool.sync()  # back on three devices
    assert pool.heat.log_devices == [0, 1, 2]
    gen = pool.heat.records.generation
    pool.close()
    # a newer record torn on every copy: header whole, payload cut short
    for d in (0, 1, 2):
        for a in areas[d]:
            head = rig.inners[d].pread(a.offset, devstate.HEADER_SIZE)
            if int.from_bytes(head[32:40], "little") == gen:
                continue
            rig.inners[d].pwrite(a.offset, rig.inners[d].pread(areas[d][0].offset, a.size)[:8192])
    pool = reopen(rig, clock)
    assert _map_of(pool) == want
    check_all(pool, ref)
    pool.close()
    for d in range(4):
        for a in areas[d]:
            rig.inners[d].pwrite(a.offset + devstate.HEADER_SIZE + 10, b"\xff" * 32)
    with pytest.raises(DataLossError, match="map log"):
        reopen(rig, clock)


@pytest.mark.parametrize("seed", range(1, 9))
def test_map_log_power_cut_during_moves(tmp_path: Any, seed: int) -> None:
    """The process dies at a random device write — of data, of a move or of a map log
    record — during writes, frees, demotions and syncs; then the power is cut (unsynced
    writes kept or lost at random).  Every extent live at the last completed sync and not
    freed since reads back, and scrub finds nothing."""
    rig, pool, clock = make(tmp_path, 4, low_watermark=0.3)
    rng = np.random.default_rng(seed)
    live = fill(pool, rng, [int(x) for x in rng.integers(1, 3 * RB, 20)])
    pool.sync()
    durable = Ref(dict(live.items))
    cut_after = int(rng.integers(20, 400))
    writes = 0

    class Kill(Exception):
        """kill -9 at a device write: the pool sees no device error."""

    for w in rig.wrappers:
        inner_write, inner_sync = w._write, w._sync

        def counted(offset: int, view: memoryview, _iw: Any = inner_write) -> None:
            nonlocal writes
            writes += 1
            if writes == cut_after:
                raise Kill
            _iw(offset, view)

        def counted_sync(_is: Any = inner_sync) -> None:
            # dying at a flush leaves the writes before it (a map record) unsynced: the
            # power cut then tears them
            nonlocal writes
            writes += 1
            if writes == cut_after:
                raise Kill
            _is()

        w._write = counted  # type: ignore[method-assign]
        w._sync = counted_sync  # type: ignore[method-assign]
    with pytest.raises(Kill):
        for step in range(10_000):
            clock.t = float(step)
            if rng.random() < 0.3 and len(live):
                key = list(live.items)[int(rng.integers(0, len(live)))]
                ext = live.items[key][0]
                pool.free(ext)
                live.remove(ext)
                if key in durable.items:
                    durable.remove(ext)
            else:
                fill(pool, rng, [int(rng.integers(1, 2 * RB))], live)
            if rng.random() < 0.1:
                pool.tick()
            if rng.random() < 0.3:
                pool.sync()
                durable = Ref(dict(live.items))
    for i, w in enumerate(rig.wrappers):
        w.fail_now("any")
        w.power_cut(seed=seed * 10 + i, keep="random")
    pool.close(sync=False)
    pool = reopen(rig, clock)
    check_all(pool, durable)
    assert pool.scrub(repair=False).mismatches == []
    pool.close()


def test_map_log_size_is_checked_at_creation(tmp_path: Any) -> None:
    """An explicit map_log too small for the largest map (or 0, the file of pools made
    before the log) is refused before anything is written; unset, it is sized."""
    for bad in (0, 1):
        path = tmp_path / f"bad{bad}"
        with pytest.raises(InvalidArgumentError, match="map_log"):
            Pool.create(
                path, "adaptive", 3, 8 * MiB, chunk_size=4 * KiB, pex_size=16 * KiB, map_log=bad
            )
        assert not os.path.exists(path / MANIFEST_NAME)
    pool = Pool.create(
        tmp_path / "ok", "adaptive", 3, 8 * MiB, chunk_size=4 * KiB, pex_size=16 * KiB
    )
    assert isinstance(pool, AdaptivePool)
    need = pool.layout.map_log
    assert need is not None and need > 1
    # the largest map: every RB its own extent, half of them freed while still warm
    ref = Ref()
    rng = np.random.default_rng(44)
    with pytest.raises(NoSpaceError):
        while True:
            fill(pool, rng, [4 * KiB], ref)
    for i, (ext, _) in enumerate(list(ref)):
        if i % 2:
            pool.free(ext)
            ref.remove(ext)
    pool.sync()
    pool.close()
    pool = Pool.open(tmp_path / "ok")
    check_all(pool, ref)
    pool.close()


def test_replacement_holding_old_map_records_is_erased(tmp_path: Any) -> None:
    """A former member put back as the replacement still holds map records of this
    pool: they are erased when it is taken back, so no later open can pick them."""
    rig, pool, _clock = make(tmp_path, 4)
    fill(pool, np.random.default_rng(45), [RB] * 4)
    pool.sync()
    assert 0 in _log_copies(rig, pool)
    old = rig.inners[0]
    rig.fail([0])
    pool.fail_device(0)
    pool.replace_device(0, FaultyDevice(old, close_inner=False))
    assert 0 not in _log_copies(rig, pool)
    pool.rebuild()
    pool.sync()
    assert 0 in _log_copies(rig, pool)
    pool.close()


def test_scrub_reports_a_mirror_slot_with_no_good_copy(tmp_path: Any) -> None:
    """A mirror slot whose online copy is corrupt while the other copy's device is
    failed: scrub reports it as not repaired (it has nothing to repair from)."""
    rig, pool, _clock = make(tmp_path, 4)
    ref = fill(pool, np.random.default_rng(46), [RB] * 3)
    pool.sync()
    eng = pool.heat
    rb = next(iter(rbs_of(pool, next(iter(ref))[0])))
    peg, slot = eng.pegs[eng.loc[rb][0]], eng.loc[rb][1]
    (d0, _), (d1, x1) = peg.members
    rig.fail([d0])
    pool.fail_device(d0)
    off, _ = eng._off(d1, x1, slot * RB)
    rig.inners[d1].pwrite(off + 9, b"\x13" * 5)
    (only,) = pool.scrub(repair=True).mismatches
    assert (only.stripe, only.device, only.repaired) == (peg.id, d1, False)
    assert "no good copy" in only.how
    pool.close()
