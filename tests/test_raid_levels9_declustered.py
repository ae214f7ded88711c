"""Declustered and RAID FR (``raid-levels.md`` §6 Declustered, §5 FR): layout and pool.

Layout: SplitMix64 and the chained permutations against an independent port
of the spec (``levels9_draid``) and a checked-in golden table; placement of
every group of several slices; parity/spare balance over C slices; the
failure predicate against an oracle that asks the codec about every group
of a full period (P = 1, 2, 3 and Reed-Solomon 4+3); capacity; the defaults
(H = 16 MiB, FR chunk 256 KiB, U = 4 KiB); the rebuild-spread metric over a
full period for 8, 16 and 32 devices.

Data mapping: every byte of several extents on the device and offset of the
spec's U-interleaved formula (``levels9_draid.locate``, plus a checked-in
table); a pool saved without ``unit`` (the older column-contiguous format)
still reads.

Pool (§0.5 template, RAM devices behind FaultyDevice): failure matrix
(every |F| ≤ P+1 by default, every subset with DWCORE_SLOW_TESTS=1), degraded
writes, rebuild onto a replacement equal to a never-failed twin, rebuild
into the distributed spare (read from every survivor sharing a group, then
P more failures survived, P+Sp sequential), copy-back equal to the twin
(automatic on replace for FR), scrub and read repair of silent corruption,
power cuts during writes, in the middle of a spare rebuild (between batches,
and mid-batch with the destination failing) and during copy-back (FR's inside
replace_device), extents written while devices sit in spare space, P + Sp
sequential failures, and rebuild time falling as the pool widens with
bandwidth-limited devices.  P = 3 and Reed-Solomon 4+3 run in the default
matrix; Reed-Solomon 8+3 (12 devices) only with DWCORE_SLOW_TESTS=1.

Rebuild order and spare state: groups that lost the most redundancy (every
lost device counted) move first — two failures with one spare, a device lost
during a spare rebuild, a rebuild onto replacements; status() during and
after spare rebuilds and copy-back; spare positions against an independent
"first free spare position" reference (Sp = 1, 2, 3), the older ``slot``
rule kept for pools saved without ``spare_rule``, out-of-order copy-back;
the spare state in the superblocks winning over an older pool.json (after
and in the middle of a move); unrecoverable groups skipped, the rest moved,
DataLossError naming devices and rows; the failure matrix's ``lost_range``
against the spec mapping; scrub/read repair and power cuts for P = 3 and
Reed-Solomon; an older ``critical`` transition still placed as before.

Regressions: a power cut during copy-back with another device failed (the
replacement's checkpoint saved with the boundary); a spare destination lost
during a spare rebuild (the move goes on); a ghost slot taken by a new failure
(its heir) and everything copied back equal to the twin; lost-row records (no
duplicates, failed devices named, cleared when the rows are freed).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

import levels9_draid as ref
import numpy as np
import pytest
from levels7_pool import (
    BLOCK,
    DATA_OFFSET,
    SLOW,
    Built,
    data_area_bytes,
    failure_sets,
    overwrite_some,
    seed_of,
)
from levels9_draid import check_set, extent_lost
from levels9_pool import crash
from pool_helpers import Image, KiB, MiB, Rig, check_all, fill, quiet_close

from dwcore import raid
from dwcore.devices import FaultyDevice, RamDevice
from dwcore.errors import DataLossError, InvalidArgumentError
from dwcore.pool import DeviceState, Pool, draid
from dwcore.raid.declustered import DEFAULT_SEED, Declustered, base_permutations, splitmix64

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

CHUNK = 16 * KiB
Cfg = tuple[str, int, dict[str, Any]]
CONFIGS: list[Cfg] = [
    ("DECLUSTERED", 8, {"data": 3, "parity": 1, "spares": 1}),
    ("DECLUSTERED", 8, {"data": 3, "parity": 2, "spares": 1}),
    ("DECLUSTERED", 6, {"data": 2, "parity": 1, "spares": 2}),
    ("FR", 4, {"raid": "raid5"}),
    ("FR", 8, {"raid": "raid6", "stripewidth": 5, "rebuildareas": 2}),
    ("DECLUSTERED", 6, {"data": 2, "parity": 3, "spares": 1}),
    ("DECLUSTERED", 7, {"data": 4, "parity": 2, "spares": 1, "code": "rs"}),
]
#: Reed-Solomon 4+3 and 8+3 (§6's largest code) matrices: only with DWCORE_SLOW_TESTS=1
SLOW_CONFIGS: list[Cfg] = [
    ("DECLUSTERED", 8, {"data": 4, "parity": 3, "spares": 1, "code": "rs"}),
    ("DECLUSTERED", 12, {"data": 8, "parity": 3, "spares": 1, "code": "rs"}),
]


def cid(c: Cfg) -> str:
    return f"{c[0]}-n{c[1]}-" + "-".join(f"{k}={v}" for k, v in c[2].items())


PARAMS = [pytest.param(*c, id=cid(c)) for c in CONFIGS]
SLOW_PARAMS = [
    pytest.param(*c, id=cid(c), marks=pytest.mark.skipif(not SLOW, reason="DWCORE_SLOW_TESTS"))
    for c in SLOW_CONFIGS
]


def dlay(name: str, n: int, chunk: int | None, **opts: Any) -> Declustered:
    """``raid.layout`` for a Declustered / FR layout, typed."""
    lay = raid.layout(name, n, chunk, **opts)
    assert isinstance(lay, Declustered)
    return lay


def layout_of(pool: Pool) -> Declustered:
    lay = pool.layout
    assert isinstance(lay, Declustered)
    return lay


def build(tmp_path: Any, level: str, n: int, opts: dict[str, Any], name: str = "pool") -> Built:
    return Built(tmp_path, level, n, opts, count=40, chunk=CHUNK, name=name)


# -- layout -----------------------------------------------------------------------------------


def test_splitmix64_known_vector() -> None:
    # the published first outputs of SplitMix64 from seed 0
    state, out = splitmix64(0)
    assert out == 0xE220A8397B1DCDAF
    state, out = splitmix64(state)
    assert out == 0x6E789E6AA1B965F4


#: perm base[0], base[1], base[2] and base[255] for C = 8 with the default seed, computed
#: once from the spec's text (levels9_draid) and checked in.
GOLDEN_C8 = {
    0: [2, 0, 4, 6, 1, 5, 3, 7],
    1: [5, 0, 3, 1, 2, 4, 6, 7],
    2: [2, 3, 7, 0, 1, 4, 6, 5],
    255: [6, 2, 0, 3, 4, 5, 1, 7],
}
#: groups 0..2 of C = 8, W = 4, Sp = 1, H = 16 KiB: (device, offset) per column
GOLDEN_GROUPS = [
    [(2, 0), (0, 0), (4, 0), (6, 0)],
    [(1, 0), (5, 0), (3, 0), (2, 16384)],
    [(0, 16384), (4, 16384), (6, 16384), (1, 16384)],
]


def test_permutations_golden() -> None:
    perms = base_permutations(8, 256, DEFAULT_SEED)
    for i, row in GOLDEN_C8.items():
        assert perms[i].tolist() == row
    for c in (4, 8, 16, 31, 32, 33):
        for seed in (0, 1, DEFAULT_SEED, (1 << 64) - 1):
            want = ref.base_perms(c, seed)
            got = base_permutations(c, ref.nperms_for(c), seed)
            assert got.tolist() == want, (c, seed)


def _columns(lay: Declustered, s: int) -> list[tuple[int, int]]:
    """(device, offset) of a group's columns in the spec's column order (parity first)."""
    sm = lay.stripe(s)
    p = lay.parity
    par, dat = sm.members[lay.k :], sm.members[: lay.k]
    assert [m.role.kind.value for m in par] == ["P", "Q"][:p]
    return [(m.device, m.device_offset) for m in (*par, *dat)]


@pytest.mark.parametrize(
    ("c", "d", "p", "sp"), [(8, 3, 1, 1), (8, 3, 2, 2), (7, 2, 1, 1), (12, 4, 2, 1), (33, 5, 1, 3)]
)
def test_placement_matches_reference(c: int, d: int, p: int, sp: int) -> None:
    lay = dlay("declustered", c, CHUNK, data=d, parity=p, spares=sp)
    base = ref.base_perms(c, DEFAULT_SEED)
    w = d + p
    _, gps, _ = ref.geometry(c, w, sp)
    slices = list(range(3)) + list(range(c - 1, c + 2)) + [ref.nperms_for(c) * c - 1]
    for t in slices:
        for s in range(t * gps, (t + 1) * gps):
            assert _columns(lay, s) == ref.group(base, c, w, sp, CHUNK, s), (t, s)
    if (c, d, p, sp) == (8, 3, 1, 1):
        assert [_columns(lay, s) for s in range(3)] == GOLDEN_GROUPS


@pytest.mark.parametrize(("c", "w", "sp"), [(8, 4, 1), (11, 5, 2), (16, 6, 1)])
def test_parity_and_spare_balance(c: int, w: int, sp: int) -> None:
    lay = dlay("declustered", c, CHUNK, data=w - 1, parity=1, spares=sp)
    gps = lay.groups_per_slice
    for start in (0, 5 * c):
        parity = np.zeros(c, dtype=int)
        spare = np.zeros(c, dtype=int)
        for t in range(start, start + c):
            for s in range(t * gps, (t + 1) * gps):
                parity[lay.stripe(s).parity_members[0].device] += 1
            for dv in lay.spare_devices(t):
                spare[dv] += 1
        assert len(set(parity.tolist())) == 1, parity
        assert len(set(spare.tolist())) == 1, spare


def _oracle_survives(lay: Declustered, failed: frozenset[int], shapes: list[Any]) -> bool:
    return all(sm.recoverable(failed) for sm in shapes)


@pytest.mark.parametrize(
    ("n", "opts"),
    [
        (6, {"data": 2, "parity": 1, "spares": 1}),
        (8, {"data": 3, "parity": 2, "spares": 1}),
        (7, {"data": 2, "parity": 1, "spares": 2, "spared": [4]}),
        (7, {"data": 2, "parity": 3, "spares": 1}),
        (8, {"data": 4, "parity": 3, "spares": 1, "code": "rs"}),
    ],
)
def test_survives_matches_codec_oracle(n: int, opts: dict[str, Any]) -> None:
    lay = dlay("declustered", n, CHUNK, **opts)
    assert isinstance(lay, Declustered)
    shapes: dict[tuple[int, ...], Any] = {}
    for s in range(lay.period):  # one full permutation period, from the placement function
        sm = lay.stripe(s)
        shapes.setdefault(sm.devices, sm)
    reps = list(shapes.values())
    for size in range(n + 1):
        for f in itertools.combinations(range(n), size):
            fs = frozenset(f)
            assert lay.survives(fs) == _oracle_survives(lay, fs, reps), fs
    assert lay.fault_tolerance == lay.parity
    assert all(lay.survives(f) for f in itertools.combinations(range(n), lay.parity))


def test_capacity_and_options() -> None:
    lay = dlay("declustered", 10, CHUNK, data=4, parity=2, spares=2)
    s = lay.usable_device_size(10 * MiB)
    assert s % lay.period_bytes == 0
    assert lay.capacity(10 * MiB) * lay.width == lay.data * (10 - 2) * s
    assert lay.min_devices == 8
    fr = dlay("FR", 20, CHUNK)
    assert (fr.width, fr.parity, fr.spares) == (9, 1, 1)
    fr6 = dlay("raid-fr", 20, CHUNK, raid="raid6")
    assert (fr6.width, fr6.parity) == (12, 2)
    assert dlay("FR", 4, CHUNK).min_devices == 4
    assert dlay("FR", 6, CHUNK, raid="raid6").min_devices == 6
    assert raid.canonical("dRAID") == "DECLUSTERED"
    bad: list[tuple[str, int, dict[str, Any], str]] = [
        ("declustered", 9, {"parity": 4}, "1, 2 or 3"),
        ("declustered", 12, {"data": 9, "parity": 2, "code": "rs"}, r"8\+3"),
        ("declustered", 8, {"code": "lrc"}, "'parity'"),
        ("declustered", 8, {"unit": 1000}, "power of two"),
        ("declustered", 8, {"unit": 2 * CHUNK}, "larger than the row height"),
        ("declustered", 5, {"data": 3, "parity": 1, "spares": 2}, "at least 6"),
        ("declustered", 8, {"spared": [9]}, "0..7"),
        ("declustered", 8, {"spared": [1, 2]}, "spare slots"),
        ("FR", 3, {}, "at least 4"),
        ("FR", 5, {"raid": "raid6"}, "at least 6"),
        ("FR", 10, {"stripewidth": 10}, r"stripewidth \+ rebuildareas"),
        ("FR", 20, {"rebuildareas": 5}, "1..4"),
        ("FR", 20, {"raid": "raid1"}, "raid5"),
        ("FR", 129, {}, "at most 128"),
    ]
    for name, n, opts, msg in bad:
        with pytest.raises(InvalidArgumentError, match=msg):
            dlay(name, n, CHUNK, **opts)
    params = {**fr6.params, "spared": [3]}
    again = dlay(params.pop("name"), params.pop("n_devices"), params.pop("chunk_size"), **params)
    assert again.spared == (3,) and again.width == 12


def test_rebuild_spread_metric() -> None:
    """§6's rebuild-spread metric over one full period: W = 4 (3+1), one spare.  Each
    survivor reads α = (W-1)/(C-1) of its columns (RAID 5 reads all of them) and the
    load is even (mean max/min ≤ 1.3)."""
    rows = []
    for c in (8, 16, 32):
        m = ref.rebuild_spread(c, 4, 1, DEFAULT_SEED)
        lay = dlay("declustered", c, CHUNK, data=3, parity=1, spares=1)
        assert m["share"] == pytest.approx(lay.alpha, rel=1e-9)
        assert m["spread"] <= 1.3
        # bytes read per surviving device for a rebuild of S = 1 GiB per device (used)
        rows.append((c, m["spread"], m["share"], m["share"] * (1 << 30) / MiB))
    print("\nC  spread  share-of-survivor-read  MiB read per survivor (1 GiB used per device)")
    for c, spread, share, mib in rows:
        print(f"{c:2d}  {spread:.3f}   {share:.4f}                  {mib:8.1f}")
    shares = [r[2] for r in rows]
    assert shares[0] > shares[1] > shares[2]
    assert shares == pytest.approx([3 / 7, 3 / 15, 3 / 31])


# -- the U-interleaved data mapping ---------------------------------------------------------

#: a 48 KiB extent at row 0 of C = 8, D = 3, P = 1, Sp = 1, H = 16 KiB, U = B = 4 KiB:
#: (device, data-area offset) of its 12 units, from the spec's formula (levels9_draid.locate)
#: — units 0, 3, 6, 9 on data column 0 (device 0), not units 0-3.
GOLDEN_UNITS = [
    (0, 0), (4, 0), (6, 0),
    (0, 4096), (4, 4096), (6, 4096),
    (0, 8192), (4, 8192), (6, 8192),
    (0, 12288), (4, 12288), (6, 12288),
]  # fmt: skip

MAPPING_CONFIGS: list[tuple[str, int, dict[str, Any]]] = [
    ("DECLUSTERED", 8, {"data": 3, "parity": 1, "spares": 1}),
    ("DECLUSTERED", 7, {"data": 2, "parity": 2, "spares": 1, "unit": 1024}),
    ("DECLUSTERED", 9, {"data": 4, "parity": 3, "spares": 2, "code": "rs", "unit": 2048}),
    ("FR", 8, {"raid": "raid6", "stripewidth": 5, "rebuildareas": 2}),
]


def _spec_params(lay: Declustered) -> tuple[int, int, int, int, int, int]:
    return lay.n_devices, lay.data, lay.parity, lay.spares, lay.chunk_size, lay.unit


@pytest.mark.parametrize(
    ("level", "n", "opts"), [pytest.param(*c, id=cid(c)) for c in MAPPING_CONFIGS]
)
def test_data_mapping_matches_the_spec_formula(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any]
) -> None:
    """Every byte of several extents lies on the device and offset the spec's formula gives
    (L = first_row·D·B + x, then γ, e, ui, column P + ui mod D, offset (ui div D)·U + e mod U),
    computed by the independent port ``levels9_draid.locate``; reads, degraded reads and a
    scrub agree."""
    rig = Rig.ram(str(tmp_path / "p"), n, 8 * MiB)
    os.makedirs(rig.path, exist_ok=True)
    pool = Pool.create(
        rig.path, level, rig.wrappers, 8 * MiB, chunk_size=CHUNK, block_size=BLOCK, **opts
    )
    lay = layout_of(pool)
    c, d, p, sp, h, u = _spec_params(lay)
    assert u == opts.get("unit", 4096)
    base = ref.base_perms(c, DEFAULT_SEED)
    rng = np.random.default_rng(seed_of("mapping9", level, n))
    r = fill(pool, rng, [48 * KiB, 1, 5000, 3 * CHUNK + 5, 100_000, d * BLOCK, 7 * CHUNK + 3])
    pool.sync()
    for ext, data in r:
        pos = 0
        while pos < len(data):
            addr = ext.first_row * d * BLOCK + pos
            take = min(u - addr % u, len(data) - pos)
            dev, off = ref.locate(base, c, d, p, sp, h, u, addr)
            raw = rig.inners[dev].pread(DATA_OFFSET + off, take)
            assert raw == data[pos : pos + take], (len(data), pos, dev, off)
            pos += take
    if (level, n, opts) == MAPPING_CONFIGS[0]:
        first = next(iter(r))[0]
        assert first.first_row == 0
        got = [ref.locate(base, c, d, p, sp, h, u, i * u) for i in range(12)]
        assert got == GOLDEN_UNITS
    check_all(pool, r, rng, 200)
    rig.fail(range(lay.parity))
    check_all(pool, r, rng, 200)
    rig.heal()
    assert pool.scrub(repair=False).mismatches == []
    quiet_close(pool)


def test_pool_saved_without_unit_still_reads(tmp_path: Any) -> None:
    """A pool whose saved layout has no ``unit`` (made before the U-interleaved mapping:
    column after column) opens with ``unit = 0`` and reads, writes, rebuilds as before."""
    rig = Rig.ram(str(tmp_path / "p"), 8, 8 * MiB)
    os.makedirs(rig.path, exist_ok=True)
    opts = {"data": 3, "parity": 1, "spares": 1}
    pool = Pool.create(
        rig.path, "declustered", rig.wrappers, 8 * MiB, chunk_size=CHUNK, unit=0, **opts
    )
    rng = np.random.default_rng(5)
    r = fill(pool, rng, [48 * KiB, 100_000, 7])
    pool.close()
    # column-contiguous: units 0-3 of the first extent on data column 0
    sm = layout_of(pool).stripe(0)
    col0 = sm.data_members(0)[0]
    _first, data = next(iter(r))
    assert (
        rig.inners[col0.device].pread(DATA_OFFSET + col0.device_offset, 4 * BLOCK)
        == data[: 4 * BLOCK]
    )
    # what an older version saved: the same parameters without "unit"
    manifest = os.path.join(rig.path, "pool.json")
    with open(manifest) as fh:
        saved = json.load(fh)
    del saved["layout"]["unit"]
    with open(manifest, "w") as fh:
        json.dump(saved, fh)
    pool = Pool.open(rig.path, devices=rig.rewrap())
    assert layout_of(pool).unit == 0
    check_all(pool, r)
    fill(pool, rng, [30 * KiB, 3], r)
    rig.fail([2])
    pool.fail_device(2)
    pool.rebuild()  # into the distributed spare; the manifest now says unit 0
    check_all(pool, r)
    pool.close()
    with open(manifest) as fh:
        assert json.load(fh)["layout"]["unit"] == 0
    pool = Pool.open(rig.path, devices=rig.rewrap())
    check_all(pool, r)
    quiet_close(pool)


def test_block_size_must_hold_whole_units(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="multiple of the mapping unit"):
        Pool.create(
            tmp_path / "p", "declustered", 8, 8 * MiB, chunk_size=CHUNK, block_size=2048,
            data=3, unit=4096,
        )  # fmt: skip
    assert not (tmp_path / "p").exists()  # refused before anything was written


# -- pool: §0.5 template --------------------------------------------------------------------


@pytest.mark.parametrize(("level", "n", "opts"), PARAMS + SLOW_PARAMS)
def test_failure_matrix(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    b = build(tmp_path, level, n, opts)
    lay = b.layout
    assert isinstance(lay, Declustered)
    slices = {s // lay.groups_per_slice for s in b.coverage()}
    assert len(slices) >= 4, f"fill covers only slices {sorted(slices)}"
    b.pool.close()
    image = Image.save(b.rig)
    rng = np.random.default_rng(seed_of("matrix9", level, n))
    problems: list[str] = []
    lost_some = False
    for failed in _matrix_sets(n, lay.parity, rng):
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(failed)
        try:
            problems += check_set(b, pool, failed, rng)
            lost_some |= any(extent_lost(lay, b.rpc, BLOCK, e, failed) for e, _ in b.ref)
        finally:
            quiet_close(pool)
            b.rig.heal()
        assert len(problems) < 20, "\n".join(problems)
    assert not problems, "\n".join(problems[:15])
    assert lost_some, "no failure set lost anything: the matrix did not test DataLossError"


#: |F| = P + 1 sets drawn (fixed seed) for P = 3 in the default run; all with SLOW
P3_SAMPLE = 12


def _matrix_sets(n: int, p: int, rng: np.random.Generator) -> list[frozenset[int]]:
    """The failure sets of the matrix (§0.5 test 2, f_max = P + 1).

    Default run: every |F| ≤ P, and every |F| = P + 1 up to P = 2 (for P = 3, whose
    C(n, 4) sets dominate the level's budget, ``P3_SAMPLE`` of them from a fixed seed).
    DWCORE_SLOW_TESTS=1: every subset for N ≤ 8; beyond, every |F| ≤ P + 1 plus 2 000
    random larger sets."""
    if SLOW and n <= 8:
        return failure_sets(n, n)
    sets = failure_sets(n, p)
    top = [frozenset(c) for c in itertools.combinations(range(n), p + 1)]
    if SLOW or p < 3:
        sets += top
    else:
        sets += [top[int(i)] for i in rng.choice(len(top), P3_SAMPLE, replace=False)]
    if SLOW:
        for _ in range(2000):
            size = int(rng.integers(p + 2, n + 1))
            sets.append(frozenset(int(x) for x in rng.choice(n, size, replace=False)))
    return sets


def _twin_pair(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> tuple[Built, Built]:
    a = build(tmp_path / "a", level, n, opts)
    t = build(tmp_path / "t", level, n, opts)
    assert [d for _, d in a.ref] == [d for _, d in t.ref]
    return a, t


def _assert_twin(a: Built, t: Built) -> None:
    ia, it = a.rig.images(), t.rig.images()
    for i, (x, y) in enumerate(zip(ia, it, strict=True)):
        assert data_area_bytes(x, a.pool) == data_area_bytes(y, t.pool), f"device {i} differs"


@pytest.mark.parametrize(("level", "n", "opts"), PARAMS)
def test_degraded_write_and_rebuild_onto_replacement(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any]
) -> None:
    b = build(tmp_path, level, n, opts)
    lay = b.layout
    rng = np.random.default_rng(seed_of("degraded9", level, n))
    failed = b.survivable_set(rng, lay.fault_tolerance)
    b.rig.fail(failed)
    for f in failed:
        b.pool.fail_device(f)
    overwrite_some(b.pool, b.ref, rng)
    check_all(b.pool, b.ref, rng, 50)
    for f in sorted(failed):
        b.pool.replace_device(f, b.rig.replace_inner(f))
    if level == "FR":  # a never-spared slot: the replacement is rebuilt in place
        assert all(b.pool.status().devices[f].state is DeviceState.REBUILDING for f in failed)
    b.pool.rebuild()
    st = b.pool.status()
    assert not st.degraded and layout_of(b.pool).spared == ()
    check_all(b.pool, b.ref)
    assert b.pool.scrub(repair=False).mismatches == []
    # redundancy restored: a different failure set reads back
    other = [f for f in range(n) if f not in failed][: lay.fault_tolerance]
    b.rig.fail(other)
    check_all(b.pool, b.ref, rng, 50)


@pytest.mark.parametrize(("level", "n", "opts"), PARAMS)
def test_spare_rebuild_then_copyback_equals_twin(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any]
) -> None:
    a, twin = _twin_pair(tmp_path, level, n, opts)
    lay = a.layout
    assert isinstance(lay, Declustered)
    p, sp = lay.parity, lay.spares
    first = list(range(1, 1 + min(p, sp)))
    a.rig.fail(first)
    for f in first:
        a.pool.fail_device(f)
    for w in a.rig.wrappers:
        w.stats.bytes_read = 0
    done: list[tuple[int, int]] = []
    a.pool.rebuild(progress=lambda x, y: done.append((x, y)))
    assert done and done[-1][0] == done[-1][1] > 0
    assert sorted(f for f in layout_of(a.pool).spared if f >= 0) == first
    assert layout_of(a.pool).target is None
    # every survivor sharing a group (of the used stripes) with a failed device was read
    sharing: set[int] = set()
    for s in a.coverage():
        devs = lay.stripe(s).devices
        if set(devs) & set(first):
            sharing |= set(devs) - set(first)
    read = {i for i, w in enumerate(a.rig.wrappers) if w.stats.bytes_read > 0}
    assert sharing <= read, f"survivors {sorted(sharing - read)} were not read"
    assert len(sharing) == n - len(first)
    check_all(a.pool, a.ref)
    assert a.pool.scrub(repair=False).mismatches == []
    new = a.pool.layout
    # P more failures, concurrently, are survived now (P + Sp sequential overall)
    rng = np.random.default_rng(seed_of("spare9", level, n))
    rest = [i for i in range(n) if i not in first]
    for more in list(itertools.combinations(rest, p))[:6]:
        assert new.survives(set(first) | set(more))
        a.rig.fail(more)
        check_all(a.pool, a.ref, rng, 30)
        a.rig.heal()
        a.rig.fail(first)
    if sp > len(first):  # a second spare rebuild uses the next slot
        a.rig.fail([rest[0]])
        a.pool.fail_device(rest[0])
        a.pool.rebuild()
        assert rest[0] in layout_of(a.pool).spared
        check_all(a.pool, a.ref)
        a.rig.heal()
        a.rig.fail(first)
        a.pool.replace_device(rest[0], a.rig.replace_inner(rest[0]))
        a.pool.rebuild()
        assert rest[0] not in layout_of(a.pool).spared_devices
    # no spare left for one more device: refused, nothing moved
    if sp == len(first):
        extra = rest[-1]
        a.rig.fail([extra])
        a.pool.fail_device(extra)
        with pytest.raises(InvalidArgumentError, match="spare slot"):
            a.pool.rebuild()
        check_all(a.pool, a.ref)
        a.rig.heal()
        a.rig.fail(first)
        a.pool.replace_device(extra, a.rig.replace_inner(extra))
        a.pool.rebuild()
    # copy-back onto replacements
    for f in first:
        a.pool.replace_device(f, a.rig.replace_inner(f))
        if level == "FR":  # mandatory: done by replace_device itself
            assert f not in layout_of(a.pool).spared_devices
            assert a.pool.status().devices[f].state is DeviceState.ONLINE
    a.pool.rebuild()
    assert layout_of(a.pool).spared == () and not a.pool.status().degraded
    check_all(a.pool, a.ref)
    assert a.pool.scrub(repair=False).mismatches == []
    a.pool.sync()
    twin.pool.sync()
    _assert_twin(a, twin)


#: P = 3 and Reed-Solomon 4+2 (default run) and 4+3 (DWCORE_SLOW_TESTS=1) for the scrub and
#: power-cut tests
HIGH_PARAMS = [PARAMS[5], PARAMS[6], SLOW_PARAMS[0]]


@pytest.mark.parametrize(("level", "n", "opts"), [PARAMS[0], PARAMS[4], *HIGH_PARAMS])
def test_scrub_and_read_repair_silent_corruption(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any]
) -> None:
    b = build(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("scrub9", level, n))
    items = [(e, d) for e, d in b.ref if len(d) > 3 * BLOCK]
    ext, data = items[0]
    _d, where = next(iter(b.blocks(ext)))
    dev, off = where[0]
    b.rig.inners[dev].pwrite(off + 100, bytes(rng.integers(0, 256, 64, dtype=np.uint8)))
    stripe = b.layout.member_at(dev, off - DATA_OFFSET)[0].index
    report = b.pool.scrub(repair=True)
    assert [(m.stripe, m.device) for m in report.mismatches] == [(stripe, dev)]
    assert all(m.repaired for m in report.mismatches)
    assert b.pool.scrub(repair=False).mismatches == []
    # parity: corrupt a P block of the same stripe, then found by scrub
    sm = b.layout.stripe(stripe)
    pm = sm.parity_members[0]
    row = ext.first_row % b.rpc
    at = DATA_OFFSET + pm.device_offset + row * BLOCK
    b.rig.inners[pm.device].pwrite(at + 7, b"\xff" * 16)
    report = b.pool.scrub(repair=True)
    assert [(m.stripe, m.device) for m in report.mismatches] == [(stripe, pm.device)]
    assert b.pool.scrub(repair=False).mismatches == []
    # by read: corrupt a data block again, the read returns the right bytes and repairs
    b.rig.inners[dev].pwrite(off + 5, b"\x00\x01" * 20)
    assert b.pool.read(ext) == data
    assert b.pool.scrub(repair=False).mismatches == []
    check_all(b.pool, b.ref)


@pytest.mark.parametrize(("level", "n", "opts"), [PARAMS[1], PARAMS[3], *HIGH_PARAMS])
def test_power_cut_during_writes(tmp_path: Any, level: str, n: int, opts: dict[str, Any]) -> None:
    b = build(tmp_path, level, n, opts)
    rng = np.random.default_rng(seed_of("cut9", level, n))
    for seed in range(3):
        # acknowledged and synced, then more writes that a power cut tears
        fill(b.pool, rng, [int(x) for x in rng.integers(1, 40 * KiB, 12)], b.ref)
        b.pool.sync()
        torn = fill(b.pool, rng, [int(x) for x in rng.integers(1, 40 * KiB, 12)])
        assert torn.items
        crash(b, seed)
        pool = b.reopen()
        check_all(pool, b.ref)
        assert pool.scrub(repair=False).mismatches == []
        b.rig.fail([seed % n])
        check_all(pool, b.ref)
        b.rig.heal()


@pytest.mark.parametrize(("level", "n", "opts"), [PARAMS[0], PARAMS[4]])
def test_power_cut_in_the_middle_of_a_spare_rebuild(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(draid, "BATCH_STRIPES", 3)
    b = build(tmp_path, level, n, opts)
    f = 2
    b.rig.fail([f])
    b.pool.fail_device(f)
    b.pool.sync()
    calls = 0

    class Cut(Exception):
        pass

    def boom(_done: int, _total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise Cut

    with pytest.raises(Cut):
        b.pool.rebuild(progress=boom)
    crash(b, 7)
    pool = b.reopen()
    lay = pool.layout
    assert isinstance(lay, Declustered)
    assert lay.target is not None and lay.moved > 0, "the cut should leave a move in progress"
    check_all(pool, b.ref)  # half moved: every extent reads, below and above the boundary
    pool.rebuild()
    assert layout_of(pool).spared == (f,) and layout_of(pool).target is None
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    other = [i for i in range(n) if i != f][: lay.parity]
    b.rig.fail(other)
    check_all(pool, b.ref)


def test_rebuild_time_falls_as_the_pool_widens(tmp_path: Any) -> None:
    """Same user data on 8, 16 and 32 bandwidth-limited devices (W = 4, one spare): the
    rebuild of one device into spare reads from every survivor at once, each reads
    about α of its data, and the time falls as C grows."""
    rows = []
    for c in (8, 16, 32):
        rig = Rig.ram(str(tmp_path / f"c{c}"), c, 4 * MiB)
        os.makedirs(rig.path, exist_ok=True)
        pool = Pool.create(
            rig.path, "declustered", rig.wrappers, 4 * MiB, chunk_size=4 * KiB,
            data=3, parity=1, spares=1,
        )  # fmt: skip
        rng = np.random.default_rng(c)
        r = fill(pool, rng, [96 * KiB] * 16)  # 1.5 MiB of user data
        pool.sync()
        rig.fail([0])
        pool.fail_device(0)
        for w in rig.wrappers:
            w.bandwidth = 0.25 * MiB
            w.stats.bytes_read = 0
        stamps: list[float] = []

        def stamp(_done: int, _total: int, st: list[float] = stamps) -> None:
            st.append(time.perf_counter())

        pool.rebuild(progress=stamp)
        elapsed = stamps[-1] - stamps[0]  # the data move (not the superblock updates)
        per = [w.stats.bytes_read for w in rig.wrappers[1:]]
        rows.append((c, elapsed, float(np.mean(per)), max(per)))
        for w in rig.wrappers:
            w.bandwidth = None
        check_all(pool, r)
        quiet_close(pool)
        rig.close()
    print("\nC   rebuild s   mean KiB read per survivor   max KiB")
    for c, el, mean, mx in rows:
        print(f"{c:2d}  {el:8.3f}   {mean / KiB:10.1f}                 {mx / KiB:8.1f}")
    times = [r[1] for r in rows]
    reads = [r[2] for r in rows]
    assert times[0] > times[1] > times[2], times
    assert reads[0] > reads[1] > reads[2], reads


def test_bad_input_is_refused_without_changes(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="at least"):
        Pool.create(tmp_path / "p", "declustered", 4, 8 * MiB, chunk_size=CHUNK, data=3)
    assert not (tmp_path / "p").exists()
    devs = [FaultyDevice(RamDevice(8 * MiB)) for _ in range(6)]
    pool = Pool.create(tmp_path / "q", "FR", devs, 8 * MiB, chunk_size=CHUNK, raid="raid6")
    with pytest.raises(InvalidArgumentError, match="fail it before"):
        pool.replace_device(0)
    pool.rebuild()  # nothing failed: nothing to do
    assert layout_of(pool).spared == ()
    pool.close()


def test_two_failures_rebuild_critical_groups_first(tmp_path: Any) -> None:
    """P = 2, two devices fail, two spares: the groups that lost both redundancies move
    into spare space before any other (§6 rebuild-critical first); a cut right after that
    pass leaves every such group whole again, and rebuild() then finishes."""
    b = build(tmp_path, "DECLUSTERED", 8, {"data": 3, "parity": 2, "spares": 2})
    lay = layout_of(b.pool)
    failed = [1, 4]
    b.rig.fail(failed)
    for f in failed:
        b.pool.fail_device(f)
    crit = {s for s in b.coverage() if sum(1 for d in lay.stripe(s).devices if d in failed) == 2}
    assert crit, "the fill has no group with both failed devices"

    class Stop(Exception):
        pass

    def stop_after_critical(_done: int, _total: int) -> None:
        now = layout_of(b.pool)
        # the rank-2 pass over both failed devices is done (its level went down to 1)
        if now.target is not None and now.passes and now.passes[-1][1] < 2:
            raise Stop

    with pytest.raises(Stop):
        b.pool.rebuild(progress=stop_after_critical)
    crash(b, 21)  # the power goes right after the critical pass
    pool = b.reopen()
    now = layout_of(pool)
    assert now.moved == 0  # nothing else moved yet
    for s in crit:
        assert not set(now.stripe(s).devices) & set(failed), f"critical group {s} not moved"
    for s in b.coverage() - crit:
        if set(lay.stripe(s).devices) & set(failed):
            assert set(now.stripe(s).devices) & set(failed), f"group {s} moved too early"
    check_all(pool, b.ref)
    pool.rebuild()
    final = layout_of(pool)
    assert final.target is None and sorted(final.spared) == failed
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    other = [0, 2]  # P more failures: the redundancy is back
    b.rig.fail(other)
    check_all(pool, b.ref)


def _moved_columns(lay: Declustered, stripes: set[int], new: Declustered) -> list[tuple[int, int]]:
    """``(stripe, device)`` of every group column that moves from ``lay`` to ``new``, in
    stripe order, with the device it moves to."""
    out = []
    for s in sorted(stripes):
        for a, z in zip(lay.stripe(s).members, new.stripe(s).members, strict=True):
            if a.device != z.device:
                out.append((s, z.device))
    return out


def _fail_writes_at(w: FaultyDevice, lay: Declustered, s: int, dev: int) -> None:
    """Writes to the column group ``s`` has on ``dev`` fail (a destination failing mid-move)."""
    (m,) = [m for m in lay.stripe(s).members if m.device == dev]
    w.fail_range(DATA_OFFSET + m.device_offset, lay.chunk_size, kind="write")


@pytest.mark.parametrize(("level", "n", "opts"), [PARAMS[1], PARAMS[4]])
def test_power_cut_mid_batch_of_a_spare_rebuild(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The destination of a spare rebuild fails in the middle of a batch (its write error
    stops the move with the batch half written), then the power goes (unsynced writes kept
    at random).  Reopened: every byte reads, scrub is clean; with the failed destination
    replaced, rebuild() resumes the move and completes, and the redundancy is back."""
    monkeypatch.setattr(draid, "BATCH_STRIPES", 3)
    b = build(tmp_path, level, n, opts)
    lay = layout_of(b.pool)
    f = 2
    b.rig.fail([f])
    b.pool.fail_device(f)
    b.pool.sync()
    moves = _moved_columns(lay, b.coverage(), lay.with_state([f]))
    s_mid, dest = moves[len(moves) // 2]
    assert s_mid // draid.BATCH_STRIPES > min(b.coverage()) // draid.BATCH_STRIPES
    _fail_writes_at(b.rig.wrappers[dest], lay.with_state([f]), s_mid, dest)
    with pytest.raises(DataLossError, match="moving columns"):
        b.pool.rebuild()
    crash(b, 11)
    pool = b.reopen()
    now = layout_of(pool)
    assert now.target is not None and 0 < now.moved <= s_mid, "the move should be half done"
    st = pool.status().devices
    assert st[f].state is DeviceState.FAILED and st[dest].state is DeviceState.FAILED
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    pool.replace_device(dest, b.rig.replace_inner(dest))
    pool.rebuild()
    final = layout_of(pool)
    assert final.spared == (f,) and final.target is None
    assert pool.status().devices[dest].state is DeviceState.ONLINE
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    other = [i for i in range(n) if i != f][: lay.parity]
    b.rig.fail(other)
    check_all(pool, b.ref)


@pytest.mark.parametrize(("level", "n", "opts"), [PARAMS[3], PARAMS[4], PARAMS[1]])
def test_power_cut_during_copy_back_and_writes_in_spare_space(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Devices sit in spare space while new extents are written; then the copy-back onto
    the replacement (for FR inside replace_device itself) fails half way on the replacement
    and the power goes.  Reopened: every byte reads, scrub is clean; a second replacement
    resumes the copy-back, rebuilds what the first one had taken, and every extent — the
    ones written in spare space included — reads back with the redundancy restored."""
    monkeypatch.setattr(draid, "BATCH_STRIPES", 3)
    b = build(tmp_path, level, n, opts)
    lay = layout_of(b.pool)
    f = 1
    b.rig.fail([f])
    b.pool.fail_device(f)
    b.pool.rebuild()
    assert layout_of(b.pool).spared == (f,)
    rng = np.random.default_rng(seed_of("copyback9", level, n))
    fresh = fill(b.pool, rng, [int(x) for x in rng.integers(1, 3 * CHUNK, 12)], b.ref)
    assert len(fresh) == len(b.ref)
    b.pool.sync()
    check_all(b.pool, b.ref)
    moves = _moved_columns(layout_of(b.pool), b.coverage(), lay)
    assert all(dv == f for _, dv in moves)
    s_mid = moves[len(moves) // 2][0]
    w = b.rig.replace_inner(f)
    _fail_writes_at(w, lay, s_mid, f)
    if level == "FR":
        with pytest.raises(DataLossError, match="moving columns"):
            b.pool.replace_device(f, w)  # the copy-back starts at once
    else:
        b.pool.replace_device(f, w)
        with pytest.raises(DataLossError, match="moving columns"):
            b.pool.rebuild()
    crash(b, 12)
    pool = b.reopen()
    now = layout_of(pool)
    assert now.target == () and 0 < now.moved <= s_mid, "the copy-back should be half done"
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    pool.replace_device(f, b.rig.replace_inner(f))
    if level != "FR":
        pool.rebuild()
    final = layout_of(pool)
    assert final.spared == () and final.target is None and not pool.status().degraded
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    b.rig.fail([*[i for i in range(n) if i != f][: lay.parity - 1], f])
    check_all(pool, b.ref)


def test_p_plus_sp_sequential_failures(tmp_path: Any) -> None:
    """P = 1, Sp = 2: fail, rebuild into spare, fail another, rebuild into spare, then a
    third fails — every byte still reads (P + Sp sequential failures)."""
    b = build(tmp_path, "DECLUSTERED", 7, {"data": 2, "parity": 1, "spares": 2})
    rng = np.random.default_rng(seed_of("seq9", 7))
    gone: list[int] = []
    for f in (3, 0, 5):
        b.rig.fail([f])
        b.pool.fail_device(f)
        gone.append(f)
        assert layout_of(b.pool).survives(gone)
        check_all(b.pool, b.ref, rng, 50)
        if len(gone) <= 2:
            b.pool.rebuild()
            assert sorted(layout_of(b.pool).spared) == sorted(gone)
            assert b.pool.scrub(repair=False).mismatches == []
    with pytest.raises(InvalidArgumentError, match="no distributed spare slot"):
        b.pool.rebuild()
    b.pool.close()
    pool = b.reopen()
    check_all(pool, b.ref)


def test_defaults_follow_the_spec(tmp_path: Any) -> None:
    """§6: row height H = 16 MiB and U = 4 KiB; §5: FR chunk 256 KiB — through
    ``raid.layout`` and ``Pool.create`` when no chunk_size is given (other levels keep
    md's 512 KiB); an explicit chunk_size still wins."""
    assert dlay("declustered", 8, None).chunk_size == 16 * MiB
    assert dlay("declustered", 8, None).unit == 4 * KiB
    assert dlay("FR", 8, None).chunk_size == 256 * KiB
    assert raid.layout("5", 4).chunk_size == raid.DEFAULT_CHUNK_SIZE
    assert dlay("declustered", 8, CHUNK).chunk_size == CHUNK
    pool = Pool.create(tmp_path / "d", "declustered", 6, 52 * MiB, data=2)
    assert pool.layout.chunk_size == 16 * MiB and layout_of(pool).rows_per_slice == 3
    ext = pool.write(b"declustered" * 5000)
    assert pool.read(ext) == b"declustered" * 5000
    pool.close()
    pool = Pool.open(tmp_path / "d")
    assert pool.layout.chunk_size == 16 * MiB and pool.read(ext) == b"declustered" * 5000
    pool.close()
    fr = Pool.create(tmp_path / "f", "FR", 4, 8 * MiB)
    assert fr.layout.chunk_size == 256 * KiB
    fr.close()


# -- rebuild order, status, spare placement, superblock state, partial loss -------------------


def _ranks(lay: Declustered, stripes: set[int], lost: set[int]) -> dict[int, int]:
    """Columns of each group on the ``lost`` devices (placement of ``lay``)."""
    return {s: sum(1 for d in lay.stripe(s).devices if d in lost) for s in stripes}


def _moved_order_ok(pool: Pool, f: int, ranks: dict[int, int], seen: list[set[int]]) -> list[str]:
    """Record which groups of ``f`` have left ``f`` (by the pool's placement now), and
    say so where one of a lower rank moved while one of a higher rank still waits."""
    lay = layout_of(pool)
    moved = {s for s in ranks if f not in lay.stripe(s).devices}
    seen.append(moved)
    waiting = [ranks[s] for s in ranks if s not in moved]
    if not waiting:
        return []
    top = max(waiting)
    return [f"group {s} (rank {ranks[s]}) moved before rank {top}" for s in moved if ranks[s] < top]


def test_most_lost_redundancy_first_with_one_spare(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P = 2 and one spare, two devices fail at once: only one fits in spare space, and
    its groups that also hold the other failed device (no redundancy left) move before
    any other (§6 "rows whose groups have lost the most redundancy first", counting every
    lost device, not only the ones being moved); then P more failures are survived."""
    monkeypatch.setattr(draid, "BATCH_STRIPES", 2)
    b = build(tmp_path, "DECLUSTERED", 8, {"data": 3, "parity": 2, "spares": 1})
    lay = layout_of(b.pool)
    failed = [1, 4]
    b.rig.fail(failed)
    for f in failed:
        b.pool.fail_device(f)
    ours = {s for s in b.coverage() if 1 in lay.stripe(s).devices}
    ranks = _ranks(lay, ours, set(failed))
    assert {1, 2} <= set(ranks.values()), "the fill needs groups of both ranks"
    seen: list[set[int]] = []
    problems: list[str] = []

    def watch(_done: int, _total: int) -> None:
        problems.extend(_moved_order_ok(b.pool, 1, ranks, seen))

    b.pool.rebuild(progress=watch)
    assert not problems, problems[:5]
    assert len(seen) > 3, "the move should take several batches"
    now = layout_of(b.pool)
    assert now.spared == (1,) and now.target is None
    assert b.pool.status().devices[4].state is DeviceState.FAILED
    check_all(b.pool, b.ref)
    b.rig.fail([0])  # with device 1 in spare space one more failure is survived
    check_all(b.pool, b.ref)


def test_device_lost_during_a_spare_rebuild_reorders_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P = 2, two spares: device 1 is being rebuilt into spare space when device 4 fails.
    From then on the groups holding both move first (before the rest of the pending move
    in stripe order), then device 4 goes to spare space too; both redundancies are back."""
    monkeypatch.setattr(draid, "BATCH_STRIPES", 2)
    b = build(tmp_path, "DECLUSTERED", 8, {"data": 3, "parity": 2, "spares": 2})
    lay = layout_of(b.pool)
    b.rig.fail([1])
    b.pool.fail_device(1)
    ours = {s for s in b.coverage() if 1 in lay.stripe(s).devices}
    ranks = _ranks(lay, ours, {1, 4})
    calls = 0
    problems: list[str] = []
    seen: list[set[int]] = []

    def watch(_done: int, _total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            b.rig.fail([4])
            b.pool.fail_device(4)
        elif calls > 2 and layout_of(b.pool).target == (1,):
            problems.extend(_moved_order_ok(b.pool, 1, ranks, seen))

    b.pool.rebuild(progress=watch)
    assert not problems, problems[:5]
    assert any(ranks[s] == 2 for s in ours - seen[0]), "nothing of rank 2 was left to reorder"
    now = layout_of(b.pool)
    assert sorted(now.spared) == [1, 4] and now.target is None
    check_all(b.pool, b.ref)
    assert b.pool.scrub(repair=False).mismatches == []
    b.rig.fail([0, 2])
    check_all(b.pool, b.ref)


@pytest.mark.parametrize(("level", "n", "opts"), [PARAMS[0], PARAMS[4]])
def test_status_reports_spare_space(
    tmp_path: Any, level: str, n: int, opts: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """status() during and after a rebuild into spare space and a copy-back: progress of
    the move, the device's redundancy restored and its slot, ``degraded`` until replaced."""
    monkeypatch.setattr(draid, "BATCH_STRIPES", 3)
    b = build(tmp_path, level, n, opts)
    f = 2
    b.rig.fail([f])
    b.pool.fail_device(f)
    during: list[tuple[float | None, str]] = []

    def watch(done: int, total: int) -> None:
        if 0 < done < total:
            st = b.pool.status()
            during.append((st.rebuild_progress, st.reasons.get(f, "")))

    b.pool.rebuild(progress=watch)
    assert during, "no status taken during the move"
    for prog, why in during:
        assert prog is not None and 0 < prog < 1 and "spare" in why
    assert [p for p, _ in during] == sorted(p for p, _ in during if p is not None)
    st = b.pool.status()
    assert st.degraded and st.failed == (f,) and st.rebuild_progress is None
    why = st.reasons[f]
    assert "distributed spare slot 0" in why and "redundancy restored" in why
    b.pool.close()
    pool = b.reopen()  # the report survives a reopen
    assert "redundancy restored" in pool.status().reasons[f]
    during.clear()
    w = b.rig.replace_inner(f)
    if level == "FR":
        pool.replace_device(f, w)  # FR copies back at once; status after it
    else:
        pool.replace_device(f, w)
        st = pool.status()
        assert st.devices[f].state is DeviceState.REBUILDING
        pool.rebuild(progress=watch)
        assert during and all(p is not None and 0 < p < 1 for p, _ in during)
        assert all("copy-back" in why for _, why in during)
    st = pool.status()
    assert not st.degraded and st.reasons == {} and st.rebuild_progress is None
    check_all(pool, b.ref)


@pytest.mark.parametrize(("c", "d", "p", "sp"), [(8, 3, 1, 1), (9, 3, 2, 2), (12, 4, 2, 3)])
def test_spare_placement_matches_reference(c: int, d: int, p: int, sp: int) -> None:
    """The spare position of every rebuilt column, for every sequence of up to Sp failures
    rebuilt one after the other, against ``levels9_draid.spare_moves`` (the spec's
    "first free spare position", written independently), over several slices."""
    lay = dlay("declustered", c, CHUNK, data=d, parity=p, spares=sp)
    base = ref.base_perms(c, DEFAULT_SEED)
    seqs = [list(x) for k in range(1, sp + 1) for x in itertools.permutations(range(c), k)]
    cap = 400 if SLOW else 120  # sequences drawn from a fixed seed
    if len(seqs) > cap:
        seqs = [seqs[int(i)] for i in np.random.default_rng(c).choice(len(seqs), cap, False)]
    slices = range(0, 3 * c, 2)
    bad = 0
    for seq in seqs:
        state = lay
        for f in seq:  # rebuilt one after the other, as rebuild() does
            st, left = state.spare_added([f])
            assert not left
            state = state.with_state(st)
        assert sorted(state.spared_devices) == sorted(seq)
        for t in slices:
            want = ref.spare_moves(base, c, sp, t, seq)
            for gi in range(lay.groups_per_slice):
                s = t * lay.groups_per_slice + gi
                for a, z in zip(lay.stripe(s).members, state.stripe(s).members, strict=True):
                    expect = want.get(a.device, a.device)
                    if z.device != expect or z.device_offset != a.device_offset:
                        bad += 1
    assert bad == 0


def test_pool_saved_with_the_older_spare_rule_still_reads(tmp_path: Any) -> None:
    """A pool whose pool.json has no ``spare_rule`` (made before it existed) keeps the
    older rule (own slot's position first) and reads exactly as before; new pools follow
    §6's first free position, and with three spares the two differ."""
    opts = {"data": 3, "parity": 2, "spares": 3}
    b = build(tmp_path, "DECLUSTERED", 12, {**opts, "spare_rule": "slot"})
    new = dlay("declustered", 12, CHUNK, **opts)
    assert new.spare_rule == "first-free"
    old = layout_of(b.pool)
    cover = b.coverage()

    def differ(pair: tuple[int, int]) -> bool:
        a, z = old.with_state(pair), new.with_state(pair)
        return any(a.stripe(s).devices != z.stripe(s).devices for s in cover)

    pair = next(p for p in itertools.permutations(range(12), 2) if differ(p))
    for f in pair:
        b.rig.fail([f])
        b.pool.fail_device(f)
        b.pool.rebuild()
    lay = layout_of(b.pool)
    assert lay.spared == pair and lay.spare_rule == "slot"
    b.pool.replace_device(pair[0], b.rig.replace_inner(pair[0]))
    b.pool.rebuild()  # copy-back: slot 0 free, slot 1 still used
    assert layout_of(b.pool).spared == (-1, pair[1])
    b.pool.close()
    path = os.path.join(b.path, "pool.json")
    with open(path) as fh:
        man = json.load(fh)
    del man["layout"]["spare_rule"]
    with open(path, "w") as fh:
        json.dump(man, fh)
    pool = b.reopen()
    assert layout_of(pool).spare_rule == "slot" and layout_of(pool).spared == (-1, pair[1])
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    others = [i for i in range(12) if i not in pair][:2]
    b.rig.fail(others)  # P more: the columns are where the older rule put them
    check_all(pool, b.ref)


def test_superblocks_carry_the_spare_state(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spare state is checkpointed in every member's superblock too (§0.4): with
    pool.json put back to a copy from before a spare rebuild (older), open takes the
    superblocks' newer state — both after the rebuild and in the middle of one (the move
    then resumes there)."""
    from dwcore.devices.superblock import read_superblock

    monkeypatch.setattr(draid, "BATCH_STRIPES", 3)
    b = build(tmp_path, "DECLUSTERED", 6, {"data": 2, "parity": 1, "spares": 2})
    n = 6
    path = os.path.join(b.path, "pool.json")

    def saved() -> str:
        with open(path) as fh:
            return fh.read()

    def put_back(text: str) -> None:
        with open(path, "w") as fh:
            fh.write(text)

    f = 2
    b.rig.fail([f])
    b.pool.fail_device(f)
    failed_only = saved()  # the device failed, nothing moved yet
    b.pool.rebuild()
    for i in range(n):
        if i != f:
            assert read_superblock(b.rig.inners[i]).layout_params["spared"] == [f]
    b.pool.close()
    put_back(failed_only)
    pool = b.reopen()
    assert layout_of(pool).spared == (f,) and layout_of(pool).target is None
    check_all(pool, b.ref)
    b.rig.fail([0])  # the redundancy is there: one more failure is survived
    check_all(pool, b.ref)
    b.rig.heal()
    # in the middle of a move: cut after a few batches, pool.json older than the cut
    g = 4
    b.rig.fail([g])
    pool.fail_device(g)
    older = saved()
    calls = 0

    class Cut(Exception):
        pass

    def boom(_done: int, _total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise Cut

    with pytest.raises(Cut):
        pool.rebuild(progress=boom)
    mid = layout_of(pool)
    assert mid.target is not None and mid.moved > 0
    crash(b, 31)
    put_back(older)
    pool = b.reopen()
    now = layout_of(pool)
    assert (now.spared, now.target, now.moved) == (mid.spared, mid.target, mid.moved)
    check_all(pool, b.ref)
    pool.rebuild()
    assert sorted(layout_of(pool).spared) == [f, g] and layout_of(pool).target is None
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []
    b.rig.fail([0])
    check_all(pool, b.ref)


def test_unrecoverable_groups_do_not_stop_the_spare_rebuild(tmp_path: Any) -> None:
    """P = 1, two spares, two devices fail at once (beyond the tolerance): every group that
    can be reconstructed moves into spare space (the redundancy of the surviving extents
    is back), then rebuild() raises DataLossError naming the failed devices and the lost
    pool rows — exactly the rows of the extents the spec's predicate says are lost, whose
    reads raise while every other extent reads; status() lists the lost rows."""
    b = build(tmp_path, "DECLUSTERED", 6, {"data": 2, "parity": 1, "spares": 2})
    lay = layout_of(b.pool)
    failed = frozenset({0, 3})
    b.rig.fail(failed)
    for f in sorted(failed):
        b.pool.fail_device(f)
    lost = [e for e, _ in b.ref if extent_lost(lay, b.rpc, BLOCK, e, failed)]
    assert lost and len(lost) < len(b.ref)
    with pytest.raises(DataLossError) as info:
        b.pool.rebuild()
    exc = info.value
    assert set(exc.failed) == failed
    rows = {r for a, n in exc.lost_rows for r in range(a, a + n)}  # type: ignore[attr-defined]
    hit = {e for e, _ in b.ref if rows & set(range(e.first_row, e.first_row + e.rows))}
    assert hit == set(lost)
    now = layout_of(b.pool)
    assert sorted(now.spared) == sorted(failed) and now.target is None
    st = b.pool.status()
    assert "data lost" in st.reasons[-1] and f"[{min(rows)}, " in st.reasons[-1]
    for f in failed:
        assert "redundancy restored" in st.reasons[f]
    for ext, data in b.ref:
        if ext in hit:
            with pytest.raises(DataLossError):
                b.pool.read(ext)
        else:
            assert b.pool.read(ext) == data
    b.rig.fail([1])  # the others have their redundancy back: one more failure
    for ext, data in b.ref:
        if ext not in hit:
            assert b.pool.read(ext) == data
    b.rig.heal()
    for ext in hit:
        b.pool.free(ext)
    assert -1 not in b.pool.status().reasons  # nothing lost is allocated any more


def test_failure_matrix_names_the_lost_range(tmp_path: Any) -> None:
    """§0.3: a read of a lost extent raises DataLossError whose ``lost_range`` spans exactly
    the units the spec's mapping puts on erased columns of rows beyond the tolerance
    (``levels9_draid.lost_span``) and whose ``failed`` lists failed devices only; the
    bytes before and after that range still read (every |F| = 2, P = 1)."""
    level, n, opts = CONFIGS[0]
    b = build(tmp_path, level, n, opts)
    lay = layout_of(b.pool)
    b.pool.close()
    image = Image.save(b.rig)
    checked = 0
    for failed in itertools.combinations(range(n), 2):
        fs = frozenset(failed)
        image.restore(b.rig)
        pool = b.reopen()
        b.rig.fail(fs)
        try:
            for ext, data in b.ref:
                span = ref.lost_span(lay, b.rpc, BLOCK, ext, fs)
                if span is None:
                    assert pool.read(ext) == data
                    continue
                with pytest.raises(DataLossError) as info:
                    pool.read(ext)
                assert info.value.lost_range == span, (sorted(fs), ext)  # type: ignore[attr-defined]
                assert info.value.failed and set(info.value.failed) <= fs
                lo, hi = span
                assert pool.read(ext, 0, lo) == data[:lo]
                assert pool.read(ext, hi) == data[hi:]
                checked += 1
        finally:
            quiet_close(pool)
            b.rig.heal()
    assert checked > 20


def test_rebuild_onto_replacements_does_critical_groups_first(tmp_path: Any) -> None:
    """P = 2, no spare slot free: two devices fail and are replaced.  The groups holding
    both (no redundancy left) are rebuilt onto the replacements before the ordered pass
    starts, so a third device failing right then loses nothing; the rebuild completes
    with it failed and every extent reads."""
    b = build(tmp_path, "DECLUSTERED", 8, {"data": 3, "parity": 2, "spares": 0})
    lay = layout_of(b.pool)
    failed = [1, 4]
    b.rig.fail(failed)
    for f in failed:
        b.pool.fail_device(f)
    for f in failed:
        b.pool.replace_device(f, b.rig.replace_inner(f))
    x = 6
    crit = {s for s in b.coverage() if {1, 4, x} <= set(lay.stripe(s).devices)}
    assert crit, "the fill has no group holding all three devices"
    first = True
    problems: list[str] = []

    def third_fails(_done: int, _total: int) -> None:
        nonlocal first
        if not first:
            return
        first = False  # the ordered pass starts: device x goes now
        b.rig.fail([x])
        for ext, data in b.ref:
            try:
                if b.pool.read(ext) != data:
                    problems.append(f"{ext!r} wrong")
            except DataLossError as exc:
                problems.append(f"{ext!r}: {exc}")

    with pytest.raises(InvalidArgumentError, match="no distributed spare slot"):
        b.pool.rebuild(progress=third_fails)  # x: no spare space to rebuild it into
    assert not problems, problems[:3]
    st = b.pool.status()
    assert st.devices[1].state is DeviceState.ONLINE and st.devices[4].state is DeviceState.ONLINE
    assert st.failed == (x,)
    check_all(b.pool, b.ref)
    b.rig.heal()


def test_copy_back_out_of_order_then_more_failures(tmp_path: Any) -> None:
    """Two devices in spare space (first free positions), the first one replaced and copied
    back: the second one's columns end where §6's rule puts them without the first (moved
    only onto free places, crash-safe), a third failure goes to spare space after it, P
    more failures are then survived, and copying everything back leaves devices equal to
    a never-failed twin's."""
    opts = {"data": 2, "parity": 1, "spares": 2}
    a, twin = _twin_pair(tmp_path, "DECLUSTERED", 6, opts)
    home = layout_of(twin.pool)
    for f in (1, 4):
        a.rig.fail([f])
        a.pool.fail_device(f)
        a.pool.rebuild()
    assert layout_of(a.pool).spared == (1, 4)
    a.pool.replace_device(1, a.rig.replace_inner(1))
    a.pool.rebuild()
    now = layout_of(a.pool)
    assert now.spared == (4,) and now.target is None
    base = ref.base_perms(6, DEFAULT_SEED)
    for s in a.coverage():
        t = s // now.groups_per_slice
        want = ref.spare_moves(base, 6, 2, t, [4])
        assert list(now.stripe(s).devices) == [want.get(d, d) for d in home.stripe(s).devices]
    check_all(a.pool, a.ref)
    assert a.pool.scrub(repair=False).mismatches == []
    a.rig.fail([2])
    a.pool.fail_device(2)
    a.pool.rebuild()
    assert layout_of(a.pool).spared == (4, 2)
    check_all(a.pool, a.ref)
    a.rig.fail([0])  # P = 1 more
    check_all(a.pool, a.ref)
    a.rig.heal()
    for f in (4, 2):
        a.pool.replace_device(f, a.rig.replace_inner(f))
        a.pool.rebuild()
    assert layout_of(a.pool).spared == () and not a.pool.status().degraded
    check_all(a.pool, a.ref)
    assert a.pool.scrub(repair=False).mismatches == []
    a.pool.sync()
    twin.pool.sync()
    _assert_twin(a, twin)


def test_transition_saved_with_the_older_critical_boundary() -> None:
    """A transition saved by the older format (``critical``: the groups with all P of
    their redundancy on the devices being moved, below that boundary, are moved) opens
    as one priority pass and places every decodable group as the older rule did."""
    opts = {"data": 3, "parity": 2, "spares": 2, "spare_rule": "slot"}
    for moved, critical in [(0, 0), (0, 40), (17, 90)]:
        lay = dlay("declustered", 8, CHUNK, **opts, target=[1, 4], moved=moved, critical=critical)
        assert lay.passes == ((frozenset({1, 4}), 2, critical),)
        assert "critical" not in lay.options and lay.options["passes"] == [[[1, 4], 2, critical]]
        plain = lay.with_state(())
        for s in range(200):
            n_lost = sum(1 for d in plain.stripe(s).devices if d in (1, 4))
            older = s < moved or (s < critical and n_lost >= 2)
            assert lay.in_target(s) == older, (moved, critical, s)
    one = dlay("declustered", 8, CHUNK, **opts, spared=[1], target=[1, 4], moved=5)
    assert one.passes == ()  # one device moved: the older format had no critical pass


# -- regressions: crash-safe copy-back, devices lost mid-move, ghost slots, lost rows ----------


@pytest.mark.parametrize("cut", [2, 7])
def test_power_cut_during_copy_back_with_another_device_failed(
    tmp_path: Any, cut: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P = 1, one spare: device 1 sits in spare space, device 2 fails (no spare slot is
    free for it), device 1 is replaced and the power goes in the middle of the copy-back.
    The replacement's checkpoint is saved with the boundary (the spare copies below it are
    already zeroed), so after the reopen every extent reads and rebuild() completes the
    copy-back, then moves device 2 into the freed slot."""
    monkeypatch.setattr(draid, "BATCH_STRIPES", 3)
    b = build(tmp_path, "DECLUSTERED", 6, {"data": 2, "parity": 1, "spares": 1})
    b.rig.fail([1])
    b.pool.fail_device(1)
    b.pool.rebuild()
    b.rig.fail([2])
    b.pool.fail_device(2)
    b.pool.replace_device(1, b.rig.replace_inner(1))
    check_all(b.pool, b.ref)
    calls = 0

    class Cut(Exception):
        pass

    def boom(_done: int, _total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == cut:
            raise Cut

    with pytest.raises(Cut):
        b.pool.rebuild(progress=boom)
    crash(b, 41 + cut)
    pool = b.reopen()
    now = layout_of(pool)
    assert now.target == () and now.moved > 0, "the cut should leave the copy-back half done"
    check_all(pool, b.ref)
    pool.rebuild()
    now = layout_of(pool)
    assert now.spared == (2,) and now.target is None
    st = pool.status().devices
    assert st[1].state is DeviceState.ONLINE and st[2].state is DeviceState.FAILED
    check_all(pool, b.ref)
    assert pool.scrub(repair=False).mismatches == []


@pytest.mark.parametrize(("n", "g"), [(9, 2), (9, 5), (8, 0), (8, 7)])
def test_spare_destination_lost_during_a_spare_rebuild(
    tmp_path: Any, n: int, g: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P = 2, two spares: device 1 is being rebuilt into spare space when device ``g``
    fails — a device the pending move puts some of 1's columns on.  The move is re-planned
    without ``g`` as a destination (its columns go to spare space with it): the running
    rebuild() completes, both devices end in spare space and every extent reads with P
    more failures."""
    monkeypatch.setattr(draid, "BATCH_STRIPES", 2)
    b = build(tmp_path, "DECLUSTERED", n, {"data": 3, "parity": 2, "spares": 2})
    lay = layout_of(b.pool)
    assert any(dv == g for _, dv in _moved_columns(lay, b.coverage(), lay.with_state([1])))
    b.rig.fail([1])
    b.pool.fail_device(1)
    calls = 0

    def watch(_done: int, _total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            b.rig.fail([g])
            b.pool.fail_device(g)

    b.pool.rebuild(progress=watch)
    assert calls > 2, "the move should go on after the failure"
    now = layout_of(b.pool)
    assert sorted(now.spared) == sorted([1, g]) and now.target is None
    check_all(b.pool, b.ref)
    assert b.pool.scrub(repair=False).mismatches == []
    b.rig.fail([x for x in range(n) if x not in (1, g)][:2])
    check_all(b.pool, b.ref)


def test_failure_before_a_copy_back_goes_into_spare_first(tmp_path: Any) -> None:
    """P = 1, three spares: devices 2 and 3 are in spare space, device 1 fails, and 2 is
    replaced.  The copy-back would slide columns onto device 1's places, which a failed
    device cannot take: rebuild() first moves 1 into the free slot, then copies 2 back
    (it used to raise "device 1 is not writable"), and everything reads and survives
    one more failure."""
    b = build(tmp_path, "DECLUSTERED", 8, {"data": 2, "parity": 1, "spares": 3})
    for f in (2, 3):
        b.rig.fail([f])
        b.pool.fail_device(f)
        b.pool.rebuild()
    b.rig.fail([1])
    b.pool.fail_device(1)
    b.pool.replace_device(2, b.rig.replace_inner(2))
    b.pool.rebuild()
    now = layout_of(b.pool)
    assert now.target is None and now.spared_devices == {1, 3}
    assert b.pool.status().devices[2].state is DeviceState.ONLINE
    check_all(b.pool, b.ref)
    assert b.pool.scrub(repair=False).mismatches == []
    b.rig.fail([0])
    check_all(b.pool, b.ref)


def test_copy_back_out_of_order_then_a_failure_with_no_free_slot(tmp_path: Any) -> None:
    """P = 1, three spares, all taken (devices 2, 7, 3); the first one is replaced and
    copied back.  Its slot cannot simply be freed (the others' columns would slide onto
    places still in use: a ghost stays), so when device 4 fails no spare place is left:
    rebuild() says so and names the remedy, nothing moves, everything still reads; the
    replacement of 4 is rebuilt in place, and copying everything back leaves devices
    equal to a never-failed twin's.  (Making the new failure inherit the ghost's places
    was tried and lost data after a longer sequence; a clear refusal loses nothing.)"""
    a, twin = _twin_pair(tmp_path, "DECLUSTERED", 8, {"data": 2, "parity": 1, "spares": 3})
    for f in (2, 7, 3):
        a.rig.fail([f])
        a.pool.fail_device(f)
        a.pool.rebuild()
    assert layout_of(a.pool).spared == (2, 7, 3)
    a.pool.replace_device(2, a.rig.replace_inner(2))
    a.pool.rebuild()
    now = layout_of(a.pool)
    assert now.target is None and 2 not in now.spared_devices
    a.rig.fail([4])
    a.pool.fail_device(4)
    with pytest.raises(InvalidArgumentError, match="no distributed spare slot is free"):
        a.pool.rebuild()
    assert layout_of(a.pool).spared_devices == {3, 7}
    assert a.pool.status().degraded
    check_all(a.pool, a.ref)
    assert a.pool.scrub(repair=False).mismatches == []
    a.pool.replace_device(4, a.rig.replace_inner(4))
    a.pool.rebuild()
    check_all(a.pool, a.ref)
    for f in (7, 3):
        a.pool.replace_device(f, a.rig.replace_inner(f))
        a.pool.rebuild()
        check_all(a.pool, a.ref)
    assert layout_of(a.pool).spared == () and not a.pool.status().degraded
    assert a.pool.scrub(repair=False).mismatches == []
    a.pool.sync()
    twin.pool.sync()
    _assert_twin(a, twin)


def test_lost_rows_bookkeeping_after_an_unrecoverable_spare_rebuild(tmp_path: Any) -> None:
    """P = 1, two spares, devices 0 and 3 fail at once; the spare rebuild skips the groups
    it cannot reconstruct.  Reads of the lost extents name the failed devices (not the
    healthy ones holding the placeholder columns); the copy-back onto a replacement keeps
    them lost and names the same devices and rows, each once; the record does not grow
    at every move; once the lost extents are freed and their rows written again, status()
    no longer reports data lost."""
    b = build(tmp_path, "DECLUSTERED", 6, {"data": 2, "parity": 1, "spares": 2})
    lay = layout_of(b.pool)
    failed = frozenset({0, 3})
    b.rig.fail(failed)
    for f in sorted(failed):
        b.pool.fail_device(f)
    with pytest.raises(DataLossError) as info:
        b.pool.rebuild()
    runs = sorted(info.value.lost_rows)  # type: ignore[attr-defined]
    rows = {r for a, n in runs for r in range(a, a + n)}
    hit = [(e, d) for e, d in b.ref if rows & set(range(e.first_row, e.first_row + e.rows))]
    assert hit and all(extent_lost(lay, b.rpc, BLOCK, e, failed) for e, _ in hit)

    def reads_name_failed() -> None:
        for ext, data in b.ref:
            if any(ext is e for e, _ in hit):
                with pytest.raises(DataLossError) as got:
                    b.pool.read(ext)
                assert got.value.failed and set(got.value.failed) <= failed, got.value.failed
            else:
                assert b.pool.read(ext) == data

    reads_name_failed()
    b.pool.replace_device(0, b.rig.replace_inner(0))
    with pytest.raises(DataLossError) as info:
        b.pool.rebuild()
    assert set(info.value.failed) <= failed
    again = list(info.value.lost_rows)  # type: ignore[attr-defined]
    assert len(again) == len(set(again)) and sorted(again) == runs
    assert layout_of(b.pool).spared == (3,)
    reads_name_failed()
    with open(os.path.join(b.path, "pool.json")) as fh:
        records = json.load(fh)["extra"][draid.LOST_KEY]
    assert sorted((a, n) for a, n, _ in records) == runs
    reason = b.pool.status().reasons[-1]
    assert reason.count(f"[{runs[0][0]}, ") == 1
    for ext, _ in hit:
        b.pool.free(ext)
        b.ref.remove(ext)
    b.pool.sync()
    rng = np.random.default_rng(7)
    reused: list[Any] = []
    for _ in range(100):  # until the allocator hands the freed rows out again
        fill(b.pool, rng, [e.length for e, _ in hit], b.ref)
        reused = [e for e, _ in b.ref if rows & set(range(e.first_row, e.first_row + e.rows))]
        if reused:
            break
    assert reused, "the new extents should take the freed rows"
    assert -1 not in b.pool.status().reasons
    check_all(b.pool, b.ref)
