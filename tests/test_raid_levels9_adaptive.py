"""Adaptive (``raid-levels.md`` §6): hot RBs mirrored, cold RBs in RAID 5, migration by heat.

Layout: options and the capacity rule.  Pool (RAM devices behind
FaultyDevice): every failure set for N = 4 and 5 (expectation from the map:
an extent is lost iff one of its RBs has both copies / two stripe members on
F; never wrong bytes); degraded writes; the workload test (hot set written
repeatedly, cold set once → after a policy tick hot RBs are mirror-class,
cold ones parity-class, data unchanged); a crash between a move's copy and
its map commit (old or new version, never a mix) and power cuts in the middle
of a demotion; a full pool kept writable by demotion; rebuild, then a second
failure survived; scrub and read repair of silent corruption.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import pytest
from pool_helpers import KiB, MiB, Ref, Rig, check_all, fill

from dwcore import raid
from dwcore.errors import DataLossError, InvalidArgumentError, NoSpaceError
from dwcore.pool import Pool
from dwcore.pool.migration import AdaptivePool, HeatEngine
from dwcore.raid.adaptive import Adaptive

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


@pytest.mark.parametrize("n", [4, 5])
def test_failure_matrix(tmp_path: Any, n: int) -> None:
    rig, pool, clock = make(tmp_path, n)
    rng = np.random.default_rng(n)
    cold, hot = workload(pool, clock, rng)
    pool.tick()
    everything = Ref({**cold.items, **hot.items})
    raised = 0
    for size in range(n + 1):
        for f in itertools.combinations(range(n), size):
            failed = set(f)
            rig.fail(failed)
            if size <= 1:
                assert pool.survives(failed) and pool.layout.survives(failed)
            for ext, data in everything:
                lost = any(rb_lost(pool, rb, failed) for rb in rbs_of(pool, ext))
                try:
                    got = pool.read(ext)
                except DataLossError as exc:
                    assert lost, f"F={sorted(failed)}: {ext!r} raised {exc}"
                    assert set(exc.failed) & failed
                    raised += 1
                    continue
                assert not lost, f"F={sorted(failed)}: {ext!r} read although lost"
                assert got == data, "WRONG BYTES"
            rig.heal()
    assert raised
    pool.close()


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
    corrupt()  # not read this time: scrub finds and repairs both
    rep = pool.scrub(repair=True)
    assert len(rep.mismatches) == 2 and all(m.repaired for m in rep.mismatches)
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
