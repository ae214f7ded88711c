"""RAID-DP (row-diagonal parity, ``raid-levels.md`` §5): layout, codec and the §0.5 template.

* golden p = 5 row and diagonal parity worked out by hand (``raid_golden8``),
  the diagonal pattern, the prime and the chunk placement;
* ``survives(F)`` against an oracle that erases the failed devices' members
  of a stripe filled with random data and runs the real codec, for every F
  and n = 1..12 (virtual zero disks included);
* the pool template through the fault-injecting device: the failure matrix
  (every F with |F| ≤ 3; each extent reads byte-identical or raises
  DataLossError exactly where the chain cannot reach its blocks), degraded
  writes, rebuild onto blank devices (device images equal to a twin's in
  every allocated row, scrub clean, a different pair then fails), scrub and
  read repair of silent corruption on data and on both parities, power cuts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import Any

import numpy as np
import pytest
from pool_helpers import Image, KiB, MiB, Ref, Rig, check_all, fill, quiet_close, sizes_for
from raid_golden8 import DP_N4_CHUNKS, DP_P5, DP_P5_DIAGONALS, DP_PRIMES

from dwcore.devices import data_area
from dwcore.errors import DataLossError, DWError, InvalidArgumentError
from dwcore.pool import DeviceState, Pool
from dwcore.pool import codec as pcodec
from dwcore.raid import Codec, Dp, Role, RoleKind, layout
from dwcore.raid.dp import rdp_equations, rdp_schedule

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")
BLOCK = 4096
DEV = 8 * MiB


# --------------------------------------------------------------------------
# layout and codec
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", sorted(DP_PRIMES))
def test_prime_and_geometry(n: int) -> None:
    lay = layout("raid-dp", n + 2, BLOCK)
    assert isinstance(lay, Dp) and lay.prime == DP_PRIMES[n]
    p = lay.prime
    assert (lay.k, lay.m, lay.fault_tolerance, lay.min_devices) == (n * (p - 1), 2 * (p - 1), 2, 3)
    assert lay.device_bytes_per_stripe == (p - 1) * BLOCK
    size = 10 * MiB + 123
    assert lay.capacity(size) == n * (size - size % ((p - 1) * BLOCK))


def test_placement_golden() -> None:
    lay = layout("DP", 6, 8 * KiB)
    c = 8 * KiB
    for chunk, (dev, off) in DP_N4_CHUNKS.items():
        s, d, o = lay.locate(chunk * c + 5)
        assert o == 5
        (mem,) = lay.stripe(s).data_members(d)
        assert (mem.device, mem.device_offset) == (dev, off * c), chunk
    sm = lay.stripe(2)
    rows = [m for m in sm.members if m.role.kind is RoleKind.PARITY]
    assert [(m.device, m.device_offset // c, m.role) for m in rows] == [
        (4, 8 + r, Role.parity(r)) for r in range(4)
    ] + [(5, 8 + d, Role.parity(4 + d)) for d in range(4)]
    # every device byte of a stripe holds exactly one member
    for dev in range(6):
        offs = sorted(m.device_offset for m in sm.on_device(dev))
        assert offs == [(8 + r) * c for r in range(4)]


def test_diagonal_pattern_p5() -> None:
    lay = layout("DP", 6, BLOCK)
    assert isinstance(lay, Dp)
    for d, diagonal in enumerate(DP_P5_DIAGONALS):
        for r, col in diagonal:
            assert lay.diagonal_of(r, col) == d
    eqs = rdp_equations(4, 5)
    k = 16
    for d in range(4):
        cells = sorted(r * 4 + col if col < 4 else k + r for r, col in DP_P5_DIAGONALS[d])
        want = [*cells, k + 4 + d]
        assert sorted(eqs[4 + d]) == want


@pytest.mark.parametrize(("n", "p"), sorted(DP_P5))
def test_golden_parity_p5(n: int, p: int) -> None:
    data, rp, dp = DP_P5[(n, p)]
    sm = layout("DP", n + 2, BLOCK).stripe(0)
    bufs = [np.array([data[i // n][i % n]], dtype=np.uint8) for i in range(sm.k)]
    bufs += [np.zeros(1, dtype=np.uint8) for _ in range(2 * (p - 1))]
    pcodec.encode(sm, bufs)
    assert [int(b[0]) for b in bufs[sm.k : sm.k + p - 1]] == rp
    assert [int(b[0]) for b in bufs[sm.k + p - 1 :]] == dp
    # every pair of devices is recovered from the hand-made vectors
    full = [b.copy() for b in bufs]
    for pair in itertools.combinations(range(n + 2), 2):
        erased = {j for j, m in enumerate(sm.members) if m.device in pair}
        work = [b.copy() for b in full]
        for j in erased:
            work[j][:] = 0x5A
        assert pcodec.reconstruct(sm, work, erased) == set()
        assert [int(b[0]) for b in work] == [int(b[0]) for b in full], pair


_ENCODED: dict[int, list[np.ndarray]] = {}


def oracle_decodes(lay: Dp, failed: frozenset[int]) -> bool:
    """Erase the failed devices' members of a random stripe and decode with the codec."""
    sm = lay.stripe(1)
    ref = _ENCODED.get(lay.n_devices)
    if ref is None:
        rng = np.random.default_rng(lay.n_devices)
        ref = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(sm.k)]
        ref += [np.zeros(32, dtype=np.uint8) for _ in range(lay.m)]
        pcodec.encode(sm, ref)
        _ENCODED[lay.n_devices] = ref
    erased = {j for j, m in enumerate(sm.members) if m.device in failed}
    bufs = [np.zeros_like(b) if j in erased else b.copy() for j, b in enumerate(ref)]
    lost = pcodec.reconstruct(sm, bufs, erased)
    for j, (a, b) in enumerate(zip(bufs, ref, strict=True)):
        if j not in lost:
            np.testing.assert_array_equal(a, b)
    return not (lost & set(range(sm.k)))


@pytest.mark.parametrize("n", range(1, 13))
def test_survives_matches_codec_oracle(n: int) -> None:
    """Every F with |F| ≤ 3 (f_max), every F at all for N ≤ 10 (and in slow mode),
    otherwise 300 random larger sets from a fixed seed."""
    lay = layout("DP", n + 2, BLOCK)
    assert isinstance(lay, Dp)
    sm = lay.stripe(1)
    big = n + 2 if n + 2 <= 10 or SLOW else 3
    sets = [frozenset(f) for r in range(big + 1) for f in itertools.combinations(range(n + 2), r)]
    rnd = np.random.default_rng(n)
    if big < n + 2:
        for _ in range(300):
            size = int(rnd.integers(4, n + 3))
            sets.append(frozenset(int(x) for x in rnd.choice(n + 2, size=size, replace=False)))
    for fs in sets:
        verdict = oracle_decodes(lay, fs)
        assert lay.survives(fs) == verdict == (len(fs) <= 2), sorted(fs)
        assert sm.recoverable(fs) == verdict


def test_scattered_erasures_and_bad_arguments() -> None:
    # a checksum failure erases single blocks: the chain also reaches those
    n, p = 4, 5
    k = n * (p - 1)
    steps, unsolved = rdp_schedule(n, p, frozenset({0, 5, 10, k + 1, k + 6}))
    assert not unsolved and len(steps) == 5
    assert rdp_schedule(n, p, frozenset())[0] == ()
    with pytest.raises(InvalidArgumentError, match="at least 3 devices"):
        layout("DP", 2, BLOCK)
    with pytest.raises(InvalidArgumentError, match="at most 250 data devices"):
        layout("DP", 253, BLOCK)
    assert layout("rdp", 4, BLOCK).codec is Codec.RDP
    assert layout(**layout("DP", 7, 8 * KiB).params) == layout("DP", 7, 8 * KiB)


# --------------------------------------------------------------------------
# the pool template (§0.5)
# --------------------------------------------------------------------------


class Built:
    """A DP pool on RAM devices behind fault-injecting wrappers, filled with random extents."""

    def __init__(self, tmp: Any, n: int, chunk: int = 4 * KiB, count: int = 40) -> None:
        self.path = str(tmp / f"dp{n}")
        os.makedirs(self.path, exist_ok=True)
        self.n = n
        self.rig = Rig.ram(self.path, n, DEV)
        self.pool = Pool.create(
            self.path, "DP", self.rig.wrappers, DEV, chunk_size=chunk, block_size=BLOCK
        )
        lay = self.pool.layout
        assert isinstance(lay, Dp)
        self.layout: Dp = lay
        self.chunk = chunk
        self.rpc = chunk // BLOCK
        self.rng = np.random.default_rng(n * 31 + chunk)
        k = self.layout.k
        large = (3 * k * BLOCK + 17, 2 * k * self.chunk + 5)
        self.ref = fill(self.pool, self.rng, sizes_for(self.rng, count, chunk, large))
        self.pool.sync()
        self.base = data_area(DEV).offset

    def reopen(self) -> Pool:
        self.pool = Pool.open(self.path, devices=self.rig.rewrap())
        return self.pool

    def rows(self, ext: Any) -> list[tuple[int, int, dict[int, bool]]]:
        """Each row of ``ext``: (stripe, chunk row, data index -> holds extent bytes)."""
        out = []
        k = self.layout.k
        g, end, off = ext.first_row, ext.first_row + ext.rows, 0
        while g < end:
            s, r = divmod(g, self.rpc)
            seg = min(self.rpc - r, end - g)
            nb = seg * BLOCK
            for i in range(seg):
                used = {d: off + d * nb + i * BLOCK < ext.length for d in range(k)}
                out.append((s, r + i, used))
            off += k * nb
            g += seg
        return out

    def member_blocks(self, ext: Any) -> list[tuple[int, int, Any]]:
        """(device, device offset, role) of every block of every member in ``ext``'s rows."""
        out = []
        for s, r, _used in self.rows(ext):
            for m in self.layout.stripe(s).members:
                out.append((m.device, self.base + m.device_offset + r * BLOCK, m.role))
        return out

    def must_lose(self, ext: Any, failed: frozenset[int]) -> bool:
        """True iff some row of ``ext`` cannot give back its bytes with ``failed`` lost
        (padding blocks are known zeros, as in the engine)."""
        for s, _r, used in self.rows(ext):
            sm = self.layout.stripe(s)
            erased = {
                j for j, m in enumerate(sm.members) if m.device in failed and (j >= sm.k or used[j])
            }
            lost = pcodec.lost_members(sm, erased)
            if any(j < sm.k and used[j] for j in lost):
                return True
        return False


def run_matrix(tmp: Any, n: int, fmax: int, extra: int = 0) -> None:
    """Every F with |F| ≤ fmax, then ``extra`` random sets of fmax + 1 devices."""
    b = Built(tmp, n)
    assert len({s for e, _ in b.ref for s, _r, _u in b.rows(e)}) >= 2
    b.pool.close()
    image = Image.save(b.rig)
    rng = np.random.default_rng(n)
    problems: list[str] = []
    sets = [f for r in range(fmax + 1) for f in itertools.combinations(range(n), r)]
    pick = np.random.default_rng(n + 1)
    sets += [
        tuple(sorted(int(x) for x in pick.choice(n, size=fmax + 1, replace=False)))
        for _ in range(extra)
    ]
    for f in sets:
        F = frozenset(f)
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(F)
        raised = 0
        try:
            for ext, data in b.ref:
                lose = b.must_lose(ext, F)
                try:
                    got = pool.read(ext)
                except DataLossError as exc:
                    raised += 1
                    if not lose:
                        problems.append(f"F={f}: {ext!r} raised but is recoverable")
                    if not set(exc.failed) <= F or not exc.failed:
                        problems.append(f"F={f}: error names {exc.failed}")
                    continue
                if got != data:
                    problems.append(f"F={f}: {ext!r} WRONG BYTES")
                elif lose:
                    problems.append(f"F={f}: {ext!r} read although lost")
            if b.layout.survives(F):
                check_all(pool, b.ref, rng, subs=1000 if SLOW else 100)
            elif not raised:
                problems.append(f"F={f}: beyond tolerance but nothing raised")
        finally:
            quiet_close(pool)
            b.rig.heal()
    assert not problems, problems[:10]


@pytest.mark.parametrize("n", [3, 4, 5, 6, 8])
def test_failure_matrix(tmp_path: Any, n: int) -> None:
    run_matrix(tmp_path, n, min(n, 3) if not SLOW else n)


@pytest.mark.slow
@pytest.mark.parametrize("n", [7, 9, 10, 12, 14])
def test_failure_matrix_slow(tmp_path: Any, n: int) -> None:
    """Wider arrays: |F| ≤ 3 up to 10 devices; |F| ≤ 2 and 40 random triples above
    (a 12-device stripe has 110 data chunks: every triple would take most of an hour)."""
    if n <= 10:
        run_matrix(tmp_path, n, 3)
    else:
        run_matrix(tmp_path, n, 2, extra=40)


def overwrite_some(pool: Pool, ref: Ref, rng: np.random.Generator) -> None:
    items = list(ref)
    for i in rng.choice(len(items), size=max(1, len(items) // 10), replace=False):
        old, _data = items[int(i)]
        new = rng.bytes(int(rng.integers(1, 3 * 16 * KiB)))
        ref.add(pool.write(new), new)
        pool.free(old)
        ref.remove(old)


@pytest.mark.parametrize("pair", [(0, 1), (2, 4), (4, 5), (1, 5)])
def test_degraded_write_rebuild_twin(tmp_path: Any, pair: tuple[int, int]) -> None:
    b = Built(tmp_path, 6, chunk=8 * KiB)
    twin = b.rig.images()
    before = list(b.ref)
    F = frozenset(pair)
    b.rig.fail(F)
    check_all(b.pool, b.ref)
    for i in pair:
        b.pool.fail_device(i)
    # degraded writes
    overwrite_some(b.pool, b.ref, b.rng)
    fill(b.pool, b.rng, sizes_for(b.rng, 8, b.chunk, (100 * KiB,)), b.ref)
    b.pool.sync()
    check_all(b.pool, b.ref, b.rng, subs=100)
    assert b.pool.status().degraded
    for i in pair:
        b.pool.replace_device(i, b.rig.replace_inner(i))
    seen: list[tuple[int, int]] = []
    b.pool.rebuild(progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    check_all(b.pool, b.ref, b.rng, subs=100)
    # twin: rows of extents written before the failure are identical on the rebuilt devices
    live = {bytes(e) for e, _ in b.ref}
    for i in pair:
        now = b.rig.inners[i]
        for ext, _ in before:
            if bytes(ext) not in live:
                continue
            for dev, off, _role in b.member_blocks(ext):
                if dev == i:
                    assert now.pread(off, BLOCK) == twin[i][off : off + BLOCK], (i, ext)
    rep = b.pool.scrub(repair=False)
    assert rep.mismatches == []
    st = b.pool.status()
    assert not st.degraded and all(d[2] is DeviceState.ONLINE for d in st.devices)
    # redundancy restored: two different devices now fail
    G = frozenset({0, 1, 2, 3, 4, 5} - F)
    G2 = frozenset(sorted(G)[:1] + sorted(F)[:1])
    b.rig.fail(G2)
    check_all(b.pool, b.ref, b.rng, subs=100)
    quiet_close(b.pool)


@pytest.mark.parametrize("kind", ["data", "row", "diagonal"])
def test_scrub_and_read_repair(tmp_path: Any, kind: str) -> None:
    b = Built(tmp_path, 5, chunk=8 * KiB)
    assert b.pool.scrub(repair=False).mismatches == []
    rng = np.random.default_rng(len(kind))
    items = [e for e, d in b.ref if len(d) > 3 * BLOCK]
    targets: list[tuple[int, int]] = []
    for ext in items[:4]:
        blocks = [
            (dev, off)
            for dev, off, role in b.member_blocks(ext)
            if (kind == "data" and role.kind is RoleKind.DATA and role.index == 0)
            or (kind == "row" and role == Role.parity(0))
            or (kind == "diagonal" and role == Role.parity(b.layout.rows))
        ]
        targets.append(blocks[0])
    devs = {d for d, _ in targets}
    for dev, off in targets:
        at = off + int(rng.integers(0, BLOCK - 16))
        b.rig.wrappers[dev].corrupt(at, 16, "random", persistent=True, seed=at)
    if kind == "data":
        # read repair first: right bytes, block rewritten
        check_all(b.pool, b.ref)
    rep = b.pool.scrub(repair=True)
    if kind == "data":
        assert rep.mismatches == []  # already repaired by the reads
    else:
        assert rep.mismatches and {m.device for m in rep.mismatches} == devs
        assert rep.unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    for dev, off in targets:
        assert b.rig.inners[dev].pread(off, BLOCK) == b.rig.images()[dev][off : off + BLOCK]
    check_all(b.pool, b.ref)
    # repaired blocks serve a double failure that includes neither corrupted device
    others = [i for i in range(5) if i not in devs][:2]
    b.rig.fail(others)
    check_all(b.pool, b.ref)
    quiet_close(b.pool)


def keep_first(cut: int) -> Any:
    """A power-cut filter keeping the first ``cut`` unsynced writes."""

    def keep(index: int, _offset: int, _length: int) -> bool:
        return index < cut

    return keep


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_power_cut(tmp_path: Any, seed: int) -> None:
    b = Built(tmp_path, 6, count=20)
    rng = np.random.default_rng(seed)
    acked = Ref(dict(b.ref.items))
    b.rig.wrappers[int(rng.integers(0, 6))].fail_after(int(rng.integers(0, 40)), "write")
    for _ in range(20):
        b.pool.write(rng.bytes(int(rng.integers(1, 3 * b.chunk * 4))))
    for w in b.rig.wrappers:
        w.fail_now("any")
    for w in b.rig.wrappers:
        cut = int(rng.integers(0, w.unsynced_writes + 1))
        w.power_cut(keep=keep_first(cut))
    with contextlib.suppress(DWError, OSError):
        b.pool.close(sync=False)
    b.rig.heal()
    pool = b.reopen()
    try:
        check_all(pool, acked, rng, subs=30)
        more = fill(pool, rng, sizes_for(rng, 10, b.chunk, ()))
        pool.sync()
        # up to two devices down in all (one may have failed its writes before the cut)
        down = set(pool.status().failed)
        for x in rng.permutation(6):
            if len(down) >= 2:
                break
            down.add(int(x))
        b.rig.fail(down)
        check_all(pool, acked)
        check_all(pool, more)
    finally:
        quiet_close(pool)
