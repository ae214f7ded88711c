"""RAID S and Unraid: unstriped volumes under dedicated parity (``raid-levels.md`` §5, §6).

* placement: RAID S hypers, parity rotation by hyper and volume numbering
  worked out by hand; Unraid volumes and parity spans;
* ``survives(F)`` against the codec deciding every stripe of one period,
  and the layout's lost-volume rule, for every F;
* the pool template through the fault-injecting device, expectations per
  volume: for every F ⊆ devices each extent reads byte-identical unless its
  own device failed and its group lost more than it tolerates (then
  DataLossError naming failed devices); where an extent lives is found on the
  raw device images by content, not from the engine; single-extent reads
  touch one device only; degraded writes; rebuild (device data areas equal a
  twin's, scrub clean, another device then fails); scrub and read repair;
  power cuts, including the write hole the write-intent log closes;
* Unraid specifics: unequal data disk sizes, a zeroed disk joins without a
  parity change (P and Q checked on the device images), and ``Pool.open``
  with every other device missing still reads the surviving data disk.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import Any

import numpy as np
import pytest
from pool_helpers import Image, KiB, Locator, MiB, Ref, Rig, check_all, fill, quiet_close, sizes_for

from dwcore import ec
from dwcore.devices import data_area
from dwcore.errors import DataLossError, DWError, InvalidArgumentError
from dwcore.pool import DeviceState, Pool
from dwcore.pool.volume_engine import VolumeEngine
from dwcore.raid import Codec, RoleKind, layout
from dwcore.raid.symmetrix import RaidS
from dwcore.raid.volumes import VolumeLayout

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")
BLOCK = 4096
DEV = 8 * MiB
BASE = data_area(DEV).offset

CONFIGS: list[tuple[str, int, dict[str, Any]]] = [
    ("S", 4, {"hyper_size": 1 * MiB}),
    ("S", 6, {"group": 2, "hyper_size": 512 * KiB}),
    ("S", 8, {"group": 7, "hyper_size": 1 * MiB}),
    ("S", 8, {"group": 3, "hyper_size": 1 * MiB}),
    ("UNRAID", 2, {}),
    ("UNRAID", 4, {}),
    ("UNRAID", 5, {"parity": 2, "data_sizes": [3 * MiB, 5 * MiB, 2 * MiB]}),
    ("UNRAID", 7, {"parity": 2, "fill": "fill-up"}),
    ("UNRAID", 4, {"write_mode": "reconstruct"}),
]


def cid(cfg: tuple[str, int, dict[str, Any]]) -> str:
    level, n, opts = cfg
    return (
        f"{level}-n{n}"
        + "".join(f"-{k}={v}" for k, v in opts.items() if k != "data_sizes")
        + ("-unequal" if "data_sizes" in opts else "")
    )


# --------------------------------------------------------------------------
# layout
# --------------------------------------------------------------------------


def test_raid_s_placement_by_hand() -> None:
    # 2 ranks of 3+1, V = 4 chunks of 4 KiB: hyper h of rank ρ has parity on member h mod 4
    lay = layout("raid s", 8, BLOCK, group=3, hyper_size=4 * BLOCK)
    assert isinstance(lay, RaidS) and (lay.ranks, lay.k, lay.m) == (2, 3, 1)
    usable = 3 * 4 * BLOCK  # three hypers per device
    vols = lay.volumes(usable)
    # slot-major numbering v = (h·R + ρ)·G + d, data members in member order without parity
    want = [
        (1, 0), (2, 0), (3, 0),  # h=0 ρ=0: parity on device 0
        (5, 0), (6, 0), (7, 0),  # h=0 ρ=1: parity on device 4
        (0, 1), (2, 1), (3, 1),  # h=1 ρ=0: parity on device 1
        (4, 1), (6, 1), (7, 1),
        (0, 2), (1, 2), (3, 2),  # h=2: parity on member 2
        (4, 2), (5, 2), (7, 2),
    ]  # fmt: skip
    assert [(v.device, v.offset // (4 * BLOCK)) for v in vols] == want
    groups = lay.parity_groups(usable)
    assert [(g.parity[0].device, g.parity[0].offset // (4 * BLOCK)) for g in groups] == [
        (0, 0), (4, 0), (1, 1), (5, 1), (2, 2), (6, 2),
    ]  # fmt: skip
    assert [g.volumes for g in groups][:2] == [(0, 1, 2), (3, 4, 5)]
    # stripe view: chunk 2 of group (ρ=1, h=1)
    sm = lay.stripe((1 * 2 + 1) * 4 + 2)
    assert [(m.device, m.device_offset) for m in sm.members] == [
        (4, 6 * BLOCK), (6, 6 * BLOCK), (7, 6 * BLOCK), (5, 6 * BLOCK),
    ]  # fmt: skip
    assert sm.members[-1].role.kind is RoleKind.P
    assert lay.member_at(6, 6 * BLOCK + 5)[0] == sm
    # volumes are linear: logical byte of volume 4 (h=0, ρ=1, d=1) at x
    s, d, o = lay.locate(4 * 4 * BLOCK + BLOCK + 7)
    assert (s, d, o) == (1 * 4 + 1, 1, 7)
    assert lay.capacity(usable + 100) == 2 * 3 * usable


def test_unraid_placement_and_options() -> None:
    lay = layout("unraid", 5, BLOCK, parity=2, data_sizes=[3 * MiB, 5 * MiB, 2 * MiB + 100])
    assert isinstance(lay, VolumeLayout)
    usable = 4 * MiB
    assert [(v.device, v.offset, v.length) for v in lay.volumes(usable)] == [
        (0, 0, 3 * MiB), (1, 0, 4 * MiB), (2, 0, 2 * MiB),
    ]  # fmt: skip
    (g,) = lay.parity_groups(usable)
    assert g.codec is Codec.PQ_MD and [(p.device, p.length) for p in g.parity] == [
        (3, 4 * MiB),
        (4, 4 * MiB),
    ]
    assert lay.capacity(usable) == 9 * MiB
    assert (lay.min_devices, lay.fault_tolerance) == (3, 2)
    assert layout("UNRAID", 2, BLOCK).fault_tolerance == 1
    assert layout(**lay.params) == lay
    for bad, match in (
        ({"parity": 3}, "parity must be 1 or 2"),
        ({"fill": "random"}, "fill must be one of"),
        ({"data_sizes": [MiB]}, "lists 1 sizes for 3 data disks"),
        ({"write_mode": "delta"}, "write_mode must be one of rmw, reconstruct"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            layout("UNRAID", 5, BLOCK, **{"parity": 2, **bad})
    for n, opts, match in (
        (7, {}, "multiple of group\\+1=4"),
        (4, {"group": 16}, "group must be in 2..15"),
        (4, {"hyper_size": 6000}, "multiple of chunk_size"),
        (2, {"group": 2}, "at least 3 devices"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            layout("S", n, BLOCK, **opts)
    with pytest.raises(InvalidArgumentError, match="at least 2 devices"):
        layout("UNRAID", 1, BLOCK)


_VERDICTS: dict[tuple[Any, ...], bool] = {}


def codec_decodes(sm: Any, failed: frozenset[int]) -> bool:
    """Erase the failed devices' members of a random stripe and decode with dwcore.ec."""
    lost = tuple(i for i, m in enumerate(sm.members) if m.device in failed)
    key = (sm.codec, sm.k, lost)
    if key not in _VERDICTS:
        _VERDICTS[key] = _decode(sm, failed)
    return _VERDICTS[key]


def _decode(sm: Any, failed: frozenset[int]) -> bool:
    rng = np.random.default_rng(len(sm.members))
    data = [rng.integers(0, 256, 16, dtype=np.uint8) for _ in range(sm.k)]
    if sm.codec is Codec.XOR:
        full = [*data, ec.xor_parity(data)]

        def recover(shards: list[Any]) -> list[np.ndarray]:
            return ec.xor_recover(shards)
    else:
        full = [*data, *ec.pq_parity(data, order="md")]

        def recover(shards: list[Any]) -> list[np.ndarray]:
            return ec.pq_recover(shards, order="md")

    shards = [None if m.device in failed else s for m, s in zip(sm.members, full, strict=True)]
    try:
        out = recover(shards)
    except DataLossError:
        return False
    return all((a == b).all() for a, b in zip(out, full, strict=True))


@pytest.mark.parametrize("cfg", CONFIGS, ids=cid)
def test_survives_matches_codec_oracle(cfg: tuple[str, int, dict[str, Any]]) -> None:
    level, n, opts = cfg
    lay = layout(level, n, BLOCK, **opts)
    assert isinstance(lay, VolumeLayout)
    usable = lay.usable_device_size(6 * MiB)
    period = [lay.stripe(s) for s in range(0, lay.stripe_count(usable), 1 if n <= 4 else 7)]
    vols = lay.volumes(usable)
    for r in range(n + 1):
        for f in itertools.combinations(range(n), r):
            fs = frozenset(f)
            verdict = all(codec_decodes(sm, fs) for sm in period)
            assert lay.survives(fs) == verdict, sorted(fs)
            lost = lay.lost_volumes(sorted(fs), usable)
            assert (not lost) == verdict
            # beyond tolerance only volumes on failed devices are lost
            assert all(vols[v].device in fs for v in lost)


# --------------------------------------------------------------------------
# the pool template (§0.5), per volume
# --------------------------------------------------------------------------


def engine(pool: Pool) -> VolumeEngine:
    """The pool's volume engine (for the few things only it knows)."""
    eng = pool._engine
    assert isinstance(eng, VolumeEngine)
    return eng


def keep_first(cut: int) -> Any:
    """A power-cut filter keeping the first ``cut`` unsynced writes."""

    def keep(index: int, _offset: int, _length: int) -> bool:
        return index < cut

    return keep


class Built:
    """A filled pool of a volume level on RAM devices behind fault-injecting wrappers."""

    def __init__(
        self, tmp: Any, level: str, n: int, opts: dict[str, Any], count: int = 40, name: str = "v"
    ) -> None:
        self.path = str(tmp / name)
        os.makedirs(self.path, exist_ok=True)
        self.n = n
        self.rig = Rig.ram(self.path, n, DEV)
        self.pool = Pool.create(
            self.path, level, self.rig.wrappers, DEV, chunk_size=16 * KiB, block_size=BLOCK, **opts
        )
        lay = self.pool.layout
        assert isinstance(lay, VolumeLayout)
        self.layout: VolumeLayout = lay
        self.usable = self.pool.checksum_table_offset
        self.vols = self.layout.volumes(self.usable)
        self.rng = np.random.default_rng(n * 7 + len(opts))
        self.ref = fill(self.pool, self.rng, sizes_for(self.rng, count, 16 * KiB, (200 * KiB,)))
        self.pool.sync()

    def reopen(self, devices: list[Any] | None = None) -> Pool:
        self.pool = Pool.open(self.path, devices=devices or self.rig.rewrap())
        return self.pool

    def in_volume(self, device: int, offset: int) -> bool:
        """True when device offset ``offset`` lies in a data volume (not in parity)."""
        off = offset - BASE
        return any(s.device == device and s.offset <= off < s.offset + s.length for s in self.vols)

    def homes(self) -> dict[bytes, int]:
        """Extent -> volume, found by content on the raw device images."""
        loc = Locator(self.rig.images(), BLOCK)
        out: dict[bytes, int] = {}
        for ext, data in self.ref:
            devs = set()
            where = None
            found = loc.pieces(data) if len(data) >= 32 else [loc.index.get(data.ljust(32, b"\0"))]
            for occ in found:
                # a parity block equals the data where the group's other volumes are zero
                occ = [blk for blk in occ or () if self.in_volume(blk.device, blk.offset)]
                if occ:
                    devs |= {blk.device for blk in occ}
                    where = where or occ[0]
            if where is None or (len(data) < 32 and len(devs) != 1):
                # a tiny extent whose padded bytes are not unique: ask the engine
                v = engine(self.pool).volume_of(ext)
                out[bytes(ext)] = v
                continue
            assert len(devs) == 1, f"extent spread over devices {devs}"
            off = where.offset - BASE
            (v,) = [
                i
                for i, s in enumerate(self.vols)
                if s.device == where.device and s.offset <= off < s.offset + s.length
            ]
            out[bytes(ext)] = v
        return out


def run_matrix(tmp: Any, cfg: tuple[str, int, dict[str, Any]]) -> None:
    level, n, opts = cfg
    b = Built(tmp, level, n, opts)
    homes = b.homes()
    used = set(homes.values())
    if opts.get("fill") == "fill-up":
        assert used == {0}, "fill-up fills the lowest slot first"
    elif "data_sizes" not in opts:
        assert len({b.vols[v].device for v in used}) >= min(2, len(b.vols)), "most-free spreads"
    b.pool.close()
    image = Image.save(b.rig)
    rng = np.random.default_rng(n)
    problems: list[str] = []
    fmax = n if n <= 6 or (SLOW and n <= 8) else 3
    sets = [frozenset(f) for r in range(fmax + 1) for f in itertools.combinations(range(n), r)]
    for F in sets:
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(F)
        lost = b.layout.lost_volumes(sorted(F), b.usable)
        try:
            for ext, data in b.ref:
                expect_lost = homes[bytes(ext)] in lost
                try:
                    got = pool.read(ext)
                except DataLossError as exc:
                    if not expect_lost:
                        problems.append(f"F={sorted(F)}: {ext!r} raised, volume readable")
                    if not exc.failed or not set(exc.failed) <= F:
                        problems.append(f"F={sorted(F)}: error names {exc.failed}")
                    continue
                if got != data:
                    problems.append(f"F={sorted(F)}: {ext!r} WRONG BYTES")
                elif expect_lost:
                    problems.append(f"F={sorted(F)}: {ext!r} read though its volume is lost")
            if b.layout.survives(F):
                check_all(pool, b.ref, rng, subs=1000 if SLOW else 100)
        finally:
            quiet_close(pool)
            b.rig.heal()
        if len(problems) > 20:
            break
    assert not problems, problems[:10]


@pytest.mark.parametrize("cfg", CONFIGS, ids=cid)
def test_failure_matrix(tmp_path: Any, cfg: tuple[str, int, dict[str, Any]]) -> None:
    """Every F ⊆ devices for N ≤ 6 (N ≤ 8 in slow mode), else |F| ≤ 3: per-volume
    expectations."""
    run_matrix(tmp_path, cfg)


@pytest.mark.slow
@pytest.mark.parametrize(
    "cfg",
    [("S", 12, {"group": 3, "hyper_size": MiB}), ("UNRAID", 10, {"parity": 2})],
    ids=cid,
)
def test_failure_matrix_wide(tmp_path: Any, cfg: tuple[str, int, dict[str, Any]]) -> None:
    """Three ranks of RAID S and an 8+2 Unraid (DWCORE_SLOW_TESTS=1): every F, |F| ≤ 3."""
    run_matrix(tmp_path, cfg)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[5]], ids=cid)
def test_single_extent_read_touches_one_device(
    tmp_path: Any, cfg: tuple[str, int, dict[str, Any]]
) -> None:
    level, n, opts = cfg
    b = Built(tmp_path, level, n, opts, count=12)
    homes = b.homes()
    for ext, data in b.ref:
        before = [w.stats.reads for w in b.rig.wrappers]
        assert b.pool.read(ext) == data
        touched = [i for i, w in enumerate(b.rig.wrappers) if w.stats.reads != before[i]]
        assert touched == [b.vols[homes[bytes(ext)]].device]
    quiet_close(b.pool)


def overwrite_some(pool: Pool, ref: Ref, rng: np.random.Generator) -> None:
    items = list(ref)
    for i in rng.choice(len(items), size=max(1, len(items) // 10), replace=False):
        old, _data = items[int(i)]
        new = rng.bytes(int(rng.integers(1, 60 * KiB)))
        ref.add(pool.write(new), new)
        pool.free(old)
        ref.remove(old)


@pytest.mark.parametrize(
    "cfg", [CONFIGS[1], CONFIGS[3], CONFIGS[4], CONFIGS[6], CONFIGS[8]], ids=cid
)
def test_degraded_write_and_rebuild(tmp_path: Any, cfg: tuple[str, int, dict[str, Any]]) -> None:
    level, n, opts = cfg
    b = Built(tmp_path, level, n, opts)
    tol = b.layout.fault_tolerance
    cands = [
        frozenset(c)
        for r in range(1, n)
        for c in itertools.combinations(range(n), r)
        if b.layout.survives(c) and len(c) >= tol
    ]
    F = cands[len(cands) // 2]
    b.rig.fail(F)
    check_all(b.pool, b.ref)
    for i in F:
        b.pool.fail_device(i)
    overwrite_some(b.pool, b.ref, b.rng)
    fill(b.pool, b.rng, sizes_for(b.rng, 10, 16 * KiB, (100 * KiB,)), b.ref)
    b.pool.sync()
    check_all(b.pool, b.ref, b.rng, subs=100)
    assert b.pool.status().degraded
    for i in sorted(F):
        b.pool.replace_device(i, b.rig.replace_inner(i))
    seen: list[tuple[int, int]] = []
    b.pool.rebuild(progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] > 0
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    check_all(b.pool, b.ref, b.rng, subs=100)
    assert b.pool.scrub(repair=False).mismatches == []
    st = b.pool.status()
    assert not st.degraded and all(d[2] is DeviceState.ONLINE for d in st.devices)
    # redundancy restored: a different survivable set
    G = next(c for c in cands if c != F and c - F)
    b.rig.fail(G)
    check_all(b.pool, b.ref, b.rng, subs=50)
    quiet_close(b.pool)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[6]], ids=cid)
def test_rebuild_equals_twin(tmp_path: Any, cfg: tuple[str, int, dict[str, Any]]) -> None:
    level, n, opts = cfg
    b = Built(tmp_path, level, n, opts)
    twin = b.rig.images()
    for F in ([0], [n - 1]):
        b.rig.fail(F)
        for i in F:
            b.pool.fail_device(i)
            b.pool.replace_device(i, b.rig.replace_inner(i))
        b.pool.rebuild()
        for i in F:
            now = b.rig.inners[i].pread(BASE, b.usable)
            assert now == twin[i][BASE : BASE + b.usable], f"device {i} data area differs"
        assert b.pool.scrub(repair=False).mismatches == []
        check_all(b.pool, b.ref)
    quiet_close(b.pool)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[4], CONFIGS[6]], ids=cid)
def test_scrub_and_read_repair(tmp_path: Any, cfg: tuple[str, int, dict[str, Any]]) -> None:
    level, n, opts = cfg
    b = Built(tmp_path, level, n, opts)
    homes = b.homes()
    big = [(e, d) for e, d in b.ref if len(d) > 2 * BLOCK]
    dev = b.vols[homes[bytes(big[0][0])]].device
    loc = Locator(b.rig.images(), BLOCK)
    targets = []
    for ext, data in big:
        if b.vols[homes[bytes(ext)]].device != dev:
            continue
        occ = loc.pieces(data)[1]
        assert occ
        targets.append(occ[0].offset)
    for off in targets:
        b.rig.wrappers[dev].corrupt(off + 100, 32, "random", persistent=True, seed=off)
    rep = b.pool.scrub(repair=True)
    assert rep.mismatches and {m.device for m in rep.mismatches} == {dev}
    assert rep.unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    check_all(b.pool, b.ref)
    # read repair, and a corrupted parity block found by scrub
    for off in targets[:2]:
        b.rig.wrappers[dev].corrupt(off + 7, 8, "flip", persistent=True)
    check_all(b.pool, b.ref)
    par = b.layout.parity_groups(b.usable)[0].parity[0]
    b.rig.wrappers[par.device].corrupt(
        BASE + par.offset + 5 * BLOCK + 3, 4, "flip", persistent=True
    )
    rep = b.pool.scrub(repair=True)
    assert {m.device for m in rep.mismatches} == {par.device} and rep.unrepaired == 0
    assert b.pool.scrub(repair=False).mismatches == []
    # a parity block that disagrees with the data but carries a valid checksum
    blk = b.rig.inners[par.device].pread(BASE + par.offset + 6 * BLOCK, BLOCK)
    from dwcore.checksum import crc32c

    bad = bytes(x ^ 0x55 for x in blk)
    b.rig.inners[par.device].pwrite(BASE + par.offset + 6 * BLOCK, bad)
    table = BASE + b.usable + 4 * ((par.offset + 6 * BLOCK) // BLOCK)
    b.rig.inners[par.device].pwrite(table, crc32c(bad).to_bytes(4, "little"))
    rep = b.pool.scrub(repair=True)
    assert [(m.device, m.kind, m.repaired) for m in rep.mismatches] == [
        (par.device, "parity", True)
    ]
    assert b.pool.scrub(repair=False).mismatches == []
    b.rig.fail([dev])
    check_all(b.pool, b.ref)
    quiet_close(b.pool)


def crash(b: Built) -> None:
    with contextlib.suppress(DWError, OSError):
        b.pool.close(sync=False)
    b.rig.heal()


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[5], CONFIGS[6]], ids=cid)
@pytest.mark.parametrize("seed", [1, 2])
def test_power_cut(tmp_path: Any, cfg: tuple[str, int, dict[str, Any]], seed: int) -> None:
    level, n, opts = cfg
    b = Built(tmp_path, level, n, opts, count=20, name=f"v{seed}")
    rng = np.random.default_rng(seed)
    acked = Ref(dict(b.ref.items))
    for _ in range(20):
        b.pool.write(rng.bytes(int(rng.integers(1, 40 * KiB))))
    for w in b.rig.wrappers:
        w.fail_now("any")
    for w in b.rig.wrappers:
        cut = int(rng.integers(0, w.unsynced_writes + 1))
        w.power_cut(keep=keep_first(cut))
    crash(b)
    pool = b.reopen()
    try:
        check_all(pool, acked, rng, subs=30)
        assert pool.scrub(repair=False).mismatches == []  # the log resynced parity
        more = fill(pool, rng, sizes_for(rng, 10, 16 * KiB, ()))
        pool.sync()
        for dev in range(n):
            if not b.layout.survives([dev]):
                continue
            b.rig.fail([dev])
            check_all(pool, acked)
            check_all(pool, more)
            b.rig.heal()
    finally:
        quiet_close(pool)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[3], CONFIGS[5], CONFIGS[8]], ids=cid)
def test_write_hole_closed_by_intent_log(
    tmp_path: Any, cfg: tuple[str, int, dict[str, Any]]
) -> None:
    """A write whose data reached the disk but whose parity update did not: after the
    restart the log's resync makes parity right, so an acknowledged extent on another
    disk of the group is still rebuilt correctly when its disk then fails (Unraid 3+1
    loses acknowledged data here without the log's replay)."""
    level, n, opts = cfg
    b = Built(tmp_path, level, n, opts, count=16)
    homes = b.homes()
    parity_devs = {p.device for g in b.layout.parity_groups(b.usable) for p in g.parity}
    for _ in range(12):
        b.pool.write(b.rng.bytes(int(b.rng.integers(BLOCK, 64 * KiB))))
    for w in b.rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(b.rig.wrappers):
        w.power_cut(keep="none" if i in parity_devs else "all")
    crash(b)
    pool = b.reopen()
    try:
        for dev in sorted({b.vols[v].device for v in homes.values()}):
            b.rig.fail([dev])
            check_all(pool, b.ref)
            b.rig.heal()
    finally:
        quiet_close(pool)


def test_unraid_disk_alone_and_zero_disk(tmp_path: Any) -> None:
    b = Built(tmp_path, "UNRAID", 5, {"parity": 2, "fill": "fill-up"}, count=30)
    homes = b.homes()
    # P and Q on the devices are the Linux-order syndromes of the data disks ...
    k = 3
    data = [np.frombuffer(b.rig.inners[i].pread(BASE, b.usable), dtype=np.uint8) for i in range(k)]
    p, q = ec.pq_parity(data, order="md")
    assert b.rig.inners[3].pread(BASE, b.usable) == p.tobytes()
    assert b.rig.inners[4].pread(BASE, b.usable) == q.tobytes()
    # ... and a zeroed disk in a new slot changes neither
    p2, q2 = ec.pq_parity([*data, np.zeros_like(data[0])], order="md")
    assert (p2 == p).all() and (q2 == q).all()
    b.pool.close()
    # every other device missing: the data disk still reads alone
    for disk in sorted({b.vols[v].device for v in homes.values()}):
        wrappers = b.rig.rewrap()
        devices = [w if i == disk else None for i, w in enumerate(wrappers)]
        pool = Pool.open(b.path, devices=devices)
        try:
            st = pool.status()
            assert st.degraded and set(st.failed) == set(range(5)) - {disk}
            for ext, data_ in b.ref:
                if b.vols[homes[bytes(ext)]].device == disk:
                    assert pool.read(ext) == data_
                else:
                    with pytest.raises(DataLossError):
                        pool.read(ext)
        finally:
            quiet_close(pool)


def test_raid_s_two_failures_in_a_rank(tmp_path: Any) -> None:
    """Two failed disks of one rank: exactly the hypers on those disks are lost."""
    b = Built(tmp_path, "S", 8, {"group": 3, "hyper_size": 1 * MiB}, count=60)
    homes = b.homes()
    b.rig.fail([1, 2])
    lost = {v for v, s in enumerate(b.vols) if s.device in (1, 2)}
    seen_lost = 0
    for ext, data in b.ref:
        if homes[bytes(ext)] in lost:
            with pytest.raises(DataLossError) as info:
                b.pool.read(ext)
            assert set(info.value.failed) <= {1, 2}
            seen_lost += 1
        else:
            assert b.pool.read(ext) == data
    assert seen_lost
    # new writes go to the volumes that remain
    more = fill(b.pool, b.rng, sizes_for(b.rng, 10, 16 * KiB, ()))
    check_all(b.pool, more)
    quiet_close(b.pool)


@pytest.mark.parametrize("down", [3, 4])
def test_unraid_one_parity_down_updates_the_other(tmp_path: Any, down: int) -> None:
    """With P (or Q) failed, writes keep the other syndrome right: a data disk that then
    fails too is rebuilt from it alone."""
    b = Built(tmp_path, "UNRAID", 5, {"parity": 2}, count=10)
    b.rig.fail([down])
    b.pool.fail_device(down)
    fill(b.pool, b.rng, sizes_for(b.rng, 20, 16 * KiB, (100 * KiB,)), b.ref)
    homes = b.homes()
    for disk in sorted({b.vols[v].device for v in homes.values()}):
        b.rig.fail([disk])
        check_all(b.pool, b.ref)
        b.rig.heal()
        b.rig.fail([down])
    quiet_close(b.pool)


def test_cli_level_options(tmp_path: Any) -> None:
    """``dwcore pool create -o KEY=VALUE`` passes level options (ints, sizes, lists)."""
    from typer.testing import CliRunner

    from dwcore.cli import app
    from dwcore.pool.cli import parse_option

    assert parse_option("parity=2") == ("parity", 2)
    assert parse_option("hyper-size=1M") == ("hyper_size", MiB)
    assert parse_option("data_sizes=3M,4096") == ("data_sizes", [3 * MiB, 4096])
    assert parse_option("fill=fill-up") == ("fill", "fill-up")
    with pytest.raises(InvalidArgumentError):
        parse_option("parity")
    run = CliRunner()
    root = str(tmp_path / "u")
    args = ["pool", "create", root, "-l", "unraid", "-n", "5", "-s", "8M", "--chunk-size", "64K"]
    res = run.invoke(app, [*args, "-o", "parity=2", "-o", "data_sizes=3M,4M,2M"])
    assert res.exit_code == 0, res.output
    with Pool.open(root) as pool:
        assert pool.layout.options == {
            "parity": 2,
            "fill": "most-free",
            "data_sizes": [3 * MiB, 4 * MiB, 2 * MiB],
        }
    res = run.invoke(app, [*args[:2], str(tmp_path / "v"), *args[3:], "-o", "colour=red"])
    assert res.exit_code == 1 and not (tmp_path / "v").exists()


def test_physical_runs(tmp_path: Any) -> None:
    """``physical(ext)`` (for benchmark anchors): the data run holds the extent's bytes,
    then one run per parity device at the same offset."""
    b = Built(tmp_path, "UNRAID", 6, {"parity": 2}, count=8)
    images = b.rig.images()
    for ext, data in b.ref:
        runs = engine(b.pool).physical(ext)
        assert len(runs) == 3 and [d for d, _o, _n in runs[1:]] == [4, 5]
        dev, off, n = runs[0]
        assert n == ext.rows * BLOCK and {o for _d, o, _n in runs} == {off}
        assert images[dev][BASE + off : BASE + off + len(data)] == data
    quiet_close(b.pool)


@pytest.mark.parametrize(
    ("level", "opts"), [("UNRAID", {"parity": 2}), ("S", {"hyper_size": 1 * MiB})]
)
def test_devices_holding_old_data_are_cleared_at_creation(
    tmp_path: Any, level: str, opts: dict[str, Any]
) -> None:
    """Parity is updated by delta, so it must start consistent with the devices: a
    device given with old bytes on it is cleared first (as Unraid clears a disk), and
    every extent then reads back with its own device failed."""
    from dwcore.devices import RamDevice
    from dwcore.pool import Pool

    rng = np.random.default_rng(3)
    n = 4
    devs = []
    for _ in range(n):
        dev = RamDevice(DEV)
        dev.pwrite(0, rng.bytes(DEV))  # a disk that held something before
        devs.append(dev)
    pool = Pool.create(tmp_path / "p", level, devs, DEV, chunk_size=16 * KiB, **opts)
    ref = fill(pool, rng, sizes_for(rng, 12, 16 * KiB, (100 * KiB,)))
    pool.sync()
    for i in range(n):
        pool.fail_device(i)
        check_all(pool, ref)
        pool.replace_device(i, RamDevice(DEV), force=True)
        pool.rebuild()
    check_all(pool, ref)
    pool.close()
