"""RAID-Z1, Z2 and Z3 (``raid-levels.md`` §4): block maps, ZFS-order parity, the §0.5 template.

* golden maps (``raid_golden8.RAIDZ_MAPS``, frozen from ``raidz_reference``, a
  literal port of ``vdev_raidz_map_alloc``, several checked by hand) — small
  q = 0 blocks, r = 0, skip sectors, the Z1 column swap at 1 MiB parent
  offsets — and the implementation against the port for random tuples;
* on the raw device images of a filled pool, every block's columns, parity
  (recomputed byte by byte in ZFS order by the reference) and zeroed skip
  sectors sit exactly where the port says;
* ``survives(F)`` against the codec (ZFS order) for every F, N ≤ 8;
* the pool template: every F with |F| ≤ p+1 (every F for N ≤ 6), each
  extent read byte-identical or DataLossError exactly when a sector row of
  its block has more than p columns on failed devices (decided from the port's
  map); degraded writes; rebuild (each rebuilt device equals a twin's in the
  columns and skip sectors of every live block; scrub clean; then another
  failure set); silent corruption of 1..p columns found on read and by scrub,
  p+1 columns → DataLossError, never wrong bytes; power cuts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
from typing import Any

import numpy as np
import pytest
from pool_helpers import Image, KiB, MiB, Ref, Rig, check_all, fill, quiet_close, sizes_for
from raid_golden8 import RAIDZ_MAPS
from raidz_reference import map_alloc, skip_sectors, zfs_parity

from dwcore import ec
from dwcore.devices import data_area
from dwcore.errors import DataLossError, DWError, InvalidArgumentError
from dwcore.pool import DeviceState, Pool
from dwcore.pool.raidz_engine import RaidzEngine
from dwcore.raid import Codec, layout
from dwcore.raid.raidz import RaidZ, raidz_asize, raidz_map

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")
SECTOR = 4096
DEV = 8 * MiB
BASE = data_area(DEV).offset
CONFIGS = [("Z1", 2), ("Z1", 4), ("Z1", 5), ("Z2", 3), ("Z2", 6), ("Z3", 4), ("Z3", 8)]


def ref_map(b: int, s: int, n: int, p: int) -> tuple[list[tuple[int, int, int]], list[Any]]:
    rm = map_alloc(b * SECTOR, s * SECTOR, 12, n, p)
    cols = [(d, off // SECTOR, size // SECTOR) for d, off, size in rm["cols"]]
    return cols, skip_sectors(rm, 12)


def impl_map(b: int, s: int, n: int, p: int) -> tuple[list[tuple[int, int, int]], list[Any]]:
    rm = raidz_map(b, s, n, p, 12)
    return [(c.device, c.sector, c.size) for c in rm.columns], list(rm.skips)


# --------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(RAIDZ_MAPS), ids=lambda k: "n{}-p{}-s{}-b{}".format(*k))
def test_golden_maps(key: tuple[int, int, int, int]) -> None:
    n, p, s, b = key
    assert ref_map(b, s, n, p) == RAIDZ_MAPS[key]  # the port is frozen
    assert impl_map(b, s, n, p) == RAIDZ_MAPS[key]
    cols, skips = RAIDZ_MAPS[key]
    rm = raidz_map(b, s, n, p, 12)
    assert rm.asize == rm.tot + len(skips) == raidz_asize(s, n, p)
    assert rm.asize % (p + 1) == 0
    assert sum(size for _d, _o, size in cols) == rm.tot == s + p * rm.rows


def test_maps_match_port_random() -> None:
    rnd = random.Random(8)
    for _ in range(3000 if SLOW else 600):
        p = rnd.randint(1, 3)
        n = rnd.randint(p + 1, 20)
        s = rnd.choice([1, 2, 3, rnd.randint(1, 4 * n), rnd.randint(1, 300)])
        b = rnd.choice([rnd.randrange(1 << 22), 256 * rnd.randrange(64), 255, 257])
        assert impl_map(b, s, n, p) == ref_map(b, s, n, p), (n, p, s, b)


def test_block_owns_contiguous_parent_sectors() -> None:
    """Data and parity fill [b, b+tot), skips [b+tot, b+asize) (parent sector x =
    device x mod N, sector x div N) — the Z1 swap only exchanges two of them."""
    rnd = random.Random(3)
    for _ in range(300):
        p = rnd.randint(1, 3)
        n = rnd.randint(p + 1, 12)
        s, b = rnd.randint(1, 100), rnd.randrange(1 << 20)
        rm = raidz_map(b, s, n, p, 12)
        owned = {c.sector * n + c.device + i * n for c in rm.columns for i in range(c.size)}
        owned |= {sec * n + dev for dev, sec in rm.skips}
        assert owned == set(range(b, b + rm.asize)), (n, p, s, b)


def test_geometry_and_efficiency() -> None:
    z2 = layout("raidz2", 8, SECTOR)
    assert isinstance(z2, RaidZ) and z2.codec is Codec.PQ_ZFS and z2.k == 6
    assert (z2.min_devices, z2.fault_tolerance) == (3, 2)
    assert layout("z", 2, SECTOR).fault_tolerance == 1
    assert layout("RAIDZ3", 4, SECTOR).codec is Codec.PQR_ZFS
    # 128 KiB records: 32 sectors
    assert z2.asize(128 * KiB) == raidz_asize(32, 8, 2) * SECTOR == 45 * SECTOR
    assert abs(z2.efficiency(128 * KiB) - 32 / 45) < 1e-12
    z1 = layout("Z1", 5, SECTOR)
    assert isinstance(z1, RaidZ) and z1.efficiency(4 * KiB) == 0.5  # one data + one parity
    with pytest.raises(InvalidArgumentError, match="at least 4 devices"):
        layout("Z3", 3, SECTOR)
    with pytest.raises(InvalidArgumentError, match="at most 255 data columns"):
        layout("Z2", 258, SECTOR)


def codec_decodes(sm: Any, failed: frozenset[int]) -> bool:
    rng = np.random.default_rng(len(sm.members))
    data = [rng.integers(0, 256, 16, dtype=np.uint8) for _ in range(sm.k)]
    p = len(sm.members) - sm.k
    if p == 1:
        full = [*data, ec.xor_parity(data)]
    elif p == 2:
        full = [*data, *ec.pq_parity(data, order="zfs")]
    else:
        full = [*data, *ec.pqr_parity(data, order="zfs")]
    shards = [None if m.device in failed else x for m, x in zip(sm.members, full, strict=True)]
    try:
        if p == 1:
            out = ec.xor_recover(shards)
        elif p == 2:
            out = ec.pq_recover(shards, order="zfs")
        else:
            out = ec.pqr_recover(shards, order="zfs")
    except DataLossError:
        return False
    return all((a == c).all() for a, c in zip(out, full, strict=True))


@pytest.mark.parametrize(("level", "n"), CONFIGS)
def test_survives_matches_codec_oracle(level: str, n: int) -> None:
    lay = layout(level, n, SECTOR)
    stripes = [lay.stripe(s) for s in (0, 1, 255, 256)]
    for r in range(n + 1):
        for f in itertools.combinations(range(n), r):
            fs = frozenset(f)
            verdict = all(codec_decodes(sm, fs) for sm in stripes)
            assert lay.survives(fs) == verdict == (len(fs) <= lay.fault_tolerance)
            assert all(sm.recoverable(fs) == verdict for sm in stripes)


# --------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------


def keep_first(cut: int) -> Any:
    """A power-cut filter keeping the first ``cut`` unsynced writes."""

    def keep(index: int, _offset: int, _length: int) -> bool:
        return index < cut

    return keep


class Built:
    """A filled RAID-Z pool on RAM devices behind fault-injecting wrappers."""

    def __init__(self, tmp: Any, level: str, n: int, count: int = 40, name: str = "z") -> None:
        self.path = str(tmp / name)
        os.makedirs(self.path, exist_ok=True)
        self.n = n
        self.rig = Rig.ram(self.path, n, DEV)
        self.pool = Pool.create(
            self.path, level, self.rig.wrappers, DEV, chunk_size=16 * KiB, block_size=SECTOR
        )
        self.layout = self.pool.layout
        assert isinstance(self.layout, RaidZ)
        self.p = self.layout.nparity
        self.rng = np.random.default_rng(n * 13 + self.p)
        large = (200 * KiB + 3, 600 * KiB + 5)
        self.ref = fill(self.pool, self.rng, sizes_for(self.rng, count, 16 * KiB, large))
        self.pool.sync()

    def reopen(self) -> Pool:
        self.pool = Pool.open(self.path, devices=self.rig.rewrap())
        return self.pool

    def cols(self, ext: Any) -> tuple[list[tuple[int, int, int]], list[Any]]:
        return ref_map(ext.first_row, -(-ext.length // SECTOR), self.n, self.p)

    def must_lose(self, ext: Any, failed: frozenset[int]) -> bool:
        cols, _skips = self.cols(ext)
        rows = max(size for _d, _o, size in cols)
        return any(
            sum(1 for d, _o, size in cols if d in failed and size > i) > self.p for i in range(rows)
        )


def test_device_images_match_reference(tmp_path: Any) -> None:
    """Columns, ZFS-order parity and zero skip sectors on the raw devices, per the port."""
    for level, n in (("Z1", 5), ("Z2", 6), ("Z3", 7)):
        b = Built(tmp_path, level, n, count=16, name=f"img{level}")
        images = b.rig.images()
        swapped = 0
        for ext, data in b.ref:
            if ext.length > 64 * KiB:
                continue
            cols, skips = b.cols(ext)
            if b.p == 1 and (ext.first_row * SECTOR) & (1 << 20):
                swapped += 1
            got = [images[d][BASE + o * SECTOR : BASE + (o + size) * SECTOR] for d, o, size in cols]
            data_cols = got[b.p :]
            assert b"".join(data_cols)[: len(data)] == data
            rows = max(size for _d, _o, size in cols)
            assert got[: b.p] == zfs_parity(data_cols, rows, SECTOR, b.p)
            for d, sec in skips:
                assert images[d][BASE + sec * SECTOR : BASE + (sec + 1) * SECTOR] == bytes(SECTOR)
        quiet_close(b.pool)


def run_matrix(tmp: Any, level: str, n: int) -> None:
    b = Built(tmp, level, n)
    b.pool.close()
    image = Image.save(b.rig)
    rng = np.random.default_rng(n)
    fmax = n if n <= 6 or (SLOW and n <= 8) else b.p + 1
    problems: list[str] = []
    for r in range(fmax + 1):
        for f in itertools.combinations(range(n), r):
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
                        if not exc.failed or not set(exc.failed) <= F:
                            problems.append(f"F={f}: error names {exc.failed}")
                        continue
                    if got != data:
                        problems.append(f"F={f}: {ext!r} WRONG BYTES")
                    elif lose:
                        problems.append(f"F={f}: {ext!r} read although lost")
                if b.layout.survives(F):
                    check_all(pool, b.ref, rng, subs=1000 if SLOW else (100 if n <= 6 else 30))
                elif not raised:
                    problems.append(f"F={f}: beyond tolerance and nothing raised")
            finally:
                quiet_close(pool)
                b.rig.heal()
    assert not problems, problems[:10]


@pytest.mark.parametrize(("level", "n"), CONFIGS)
def test_failure_matrix(tmp_path: Any, level: str, n: int) -> None:
    run_matrix(tmp_path, level, n)


@pytest.mark.slow
@pytest.mark.parametrize(("level", "n"), [("Z1", 9), ("Z2", 10), ("Z3", 12)])
def test_failure_matrix_wide(tmp_path: Any, level: str, n: int) -> None:
    """Wider vdevs (DWCORE_SLOW_TESTS=1): every F with |F| ≤ p+1."""
    run_matrix(tmp_path, level, n)


def overwrite_some(pool: Pool, ref: Ref, rng: np.random.Generator) -> None:
    items = list(ref)
    for i in rng.choice(len(items), size=max(1, len(items) // 10), replace=False):
        old, _data = items[int(i)]
        new = rng.bytes(int(rng.integers(1, 60 * KiB)))
        ref.add(pool.write(new), new)
        pool.free(old)
        ref.remove(old)


@pytest.mark.parametrize(("level", "n"), [("Z1", 4), ("Z2", 6), ("Z3", 8)])
def test_degraded_write_rebuild_twin(tmp_path: Any, level: str, n: int) -> None:
    b = Built(tmp_path, level, n)
    twin = b.rig.images()
    before = {bytes(e) for e, _ in b.ref}
    F = frozenset(range(1, 1 + b.p))
    b.rig.fail(F)
    check_all(b.pool, b.ref)
    for i in F:
        b.pool.fail_device(i)
    overwrite_some(b.pool, b.ref, b.rng)
    fill(b.pool, b.rng, sizes_for(b.rng, 10, 16 * KiB, (100 * KiB,)), b.ref)
    b.pool.sync()
    check_all(b.pool, b.ref, b.rng, subs=100)
    for i in sorted(F):
        b.pool.replace_device(i, b.rig.replace_inner(i))
    seen: list[tuple[int, int]] = []
    b.pool.rebuild(progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    check_all(b.pool, b.ref, b.rng, subs=100)
    # twin: columns and skip sectors of the blocks written before the failure
    for ext, _ in b.ref:
        if bytes(ext) not in before:
            continue
        cols, skips = b.cols(ext)
        for d, o, size in [*cols, *((d, s, 1) for d, s in skips)]:
            if d in F:
                lo, hi = BASE + o * SECTOR, BASE + (o + size) * SECTOR
                assert b.rig.inners[d].pread(lo, hi - lo) == twin[d][lo:hi], (d, ext)
    assert b.pool.scrub(repair=False).mismatches == []
    st = b.pool.status()
    assert not st.degraded and all(d[2] is DeviceState.ONLINE for d in st.devices)
    G = frozenset(range(n - b.p, n))
    b.rig.fail(G)
    check_all(b.pool, b.ref, b.rng, subs=100)
    quiet_close(b.pool)


@pytest.mark.parametrize(("level", "n"), [("Z1", 4), ("Z2", 6), ("Z3", 8)])
def test_silent_corruption(tmp_path: Any, level: str, n: int) -> None:
    """1..p corrupted columns of a block (no I/O error): read returns the right bytes and
    repairs; scrub finds and repairs what reads did not touch; p+1 columns corrupted in
    one sector row → DataLossError, never wrong bytes."""
    b = Built(tmp_path, level, n)
    big = [(e, d) for e, d in b.ref if len(d) > (n - b.p) * SECTOR]  # two sector rows or more
    assert len(big) >= b.p + 3
    rnd = random.Random(n)
    for count in range(1, b.p + 1):
        ext, data = big[count]
        cols, _ = b.cols(ext)
        for d, o, _size in rnd.sample(cols, count):
            b.rig.wrappers[d].corrupt(BASE + o * SECTOR + 9, 20, "random", persistent=True, seed=o)
        assert b.pool.read(ext) == data
        assert b.pool.scrub(repair=False).mismatches == []  # the read repaired them
    ext, data = big[b.p + 1]
    cols, _ = b.cols(ext)
    targets = rnd.sample(cols, b.p)
    for d, o, _size in targets:
        b.rig.wrappers[d].corrupt(BASE + o * SECTOR + 100, 8, "flip", persistent=True)
    rep = b.pool.scrub(repair=True)
    assert {(m.device, m.kind) for m in rep.mismatches} == {
        (d, "checksum") for d, _o, _s in targets
    }
    assert rep.unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    assert b.pool.read(ext) == data
    # p + 1 columns in row 0
    ext, data = big[b.p + 2]
    cols, _ = b.cols(ext)
    for d, o, _size in cols[: b.p + 1]:
        b.rig.wrappers[d].corrupt(BASE + o * SECTOR, 8, "flip", persistent=True)
    with pytest.raises(DataLossError):
        b.pool.read(ext)
    rep = b.pool.scrub(repair=True)
    assert rep.unrepaired >= 1
    others = [(e, d) for e, d in b.ref if bytes(e) != bytes(ext)]
    check_all(b.pool, Ref({bytes(e): (e, d) for e, d in others}))
    quiet_close(b.pool)


@pytest.mark.parametrize(("level", "n"), [("Z1", 4), ("Z2", 6), ("Z3", 5)])
@pytest.mark.parametrize("seed", [1, 2])
def test_power_cut(tmp_path: Any, level: str, n: int, seed: int) -> None:
    b = Built(tmp_path, level, n, count=20, name=f"z{seed}")
    rng = np.random.default_rng(seed)
    acked = Ref(dict(b.ref.items))
    for _ in range(20):
        b.pool.write(rng.bytes(int(rng.integers(1, 100 * KiB))))
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
        more = fill(pool, rng, sizes_for(rng, 10, 16 * KiB, ()))
        pool.sync()
        b.rig.fail(range(b.p))
        check_all(pool, acked)
        check_all(pool, more)
    finally:
        quiet_close(pool)


def test_extent_handles_checked(tmp_path: Any) -> None:
    b = Built(tmp_path, "Z2", 5, count=6)
    ext, data = next(iter(b.ref))
    from dwcore.pool import Extent

    with pytest.raises(InvalidArgumentError):
        b.pool.read(Extent(ext.pool_tag, ext.first_row, ext.rows + 1, ext.length))
    with pytest.raises(InvalidArgumentError):
        b.pool.read(Extent(ext.pool_tag, 1 << 40, ext.rows, ext.length))
    assert b.pool.read(ext) == data
    st = b.pool.status()
    assert 0 < st.used < st.capacity
    quiet_close(b.pool)


def test_block_map_checked_on_open(tmp_path: Any) -> None:
    """The block map is what resilver and scrub walk: a missing one is refused while the
    pool holds extents, a damaged or newer one too; nothing is modified."""
    from dwcore.errors import CorruptionError, UnsupportedFormatError
    from dwcore.pool.raidz_engine import BLOCKMAP_NAME

    b = Built(tmp_path, "Z1", 3, count=6)
    b.pool.close()
    path = os.path.join(b.path, BLOCKMAP_NAME)
    with open(path, "rb") as f:
        good = f.read()
    os.unlink(path)
    with pytest.raises(CorruptionError, match="block map"):
        b.reopen()
    assert not os.path.exists(path)
    with open(path, "wb") as f:
        f.write(good[:8] + (2).to_bytes(4, "little") + good[12:])
    with pytest.raises(UnsupportedFormatError):
        b.reopen()
    with open(path, "wb") as f:
        f.write(b"garbage!" + good[8:])
    with pytest.raises(CorruptionError):
        b.reopen()
    with open(path, "wb") as f:
        f.write(good)
    pool = b.reopen()
    try:
        check_all(pool, b.ref)
    finally:
        quiet_close(pool)


def test_physical_runs(tmp_path: Any) -> None:
    """``physical(ext)`` (for benchmark anchors) lists the port's columns and skips."""
    b = Built(tmp_path, "Z2", 6, count=8)
    for ext, _data in b.ref:
        cols, skips = b.cols(ext)
        want = [(d, o * SECTOR, n * SECTOR) for d, o, n in cols]
        want += [(d, s * SECTOR, SECTOR) for d, s in skips]
        eng = b.pool._engine
        assert isinstance(eng, RaidzEngine)
        assert eng.physical(ext) == want
        assert sum(n for _d, _o, n in want) == ext.rows * SECTOR
    quiet_close(b.pool)
