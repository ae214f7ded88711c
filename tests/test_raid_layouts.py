"""dwcore.raid: placement, failure predicates and the level registry.

* golden RAID 5/6 placement from a port of md's ``raid5_compute_sector``
  (``raid_golden.py``), frozen tables plus the live port for more N;
* the generic oracle: one layout period enumerated from the placement
  function, each stripe decided by the real ``dwcore.ec`` codec with the
  failed devices' members erased, compared with ``survives(F)`` for every F;
* byte-level bijection: logical bytes written through the layout into
  device images read back identically, never two members on one device byte;
* registry names, aliases, unavailable levels and option validation.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator

import numpy as np
import pytest
from raid_golden import GOLDEN, MD_ALGORITHMS, SECTOR, md_table, raid5_compute_sector

from dwcore import ec
from dwcore.errors import DataLossError, DWError, InvalidArgumentError
from dwcore.raid import (
    AVAILABLE,
    LEVELS,
    RAID5_ALGORITHMS,
    Codec,
    Layout,
    LevelUnavailableError,
    Role,
    RoleKind,
    StripeMap,
    canonical,
    is_available,
    layout,
    level_options,
)

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")
C = 4096  # smallest chunk: many periods fit in little memory
# raid-levels.md §7, verbatim: "Canonical names (`dwcore.raid.LEVELS`, in this order)".
SPEC_SECTION_7 = (
    "0 1 2 3 4 5 6 10 01 03 50 60 100 1E 5E 5EE 6E Z1 Z2 Z3 DP S 7 FR MD10 ADAPTIVE BEYOND "
    "UNRAID DECLUSTERED"
)
SPEC_LEVELS = SPEC_SECTION_7.split()


def configs(max_n: int) -> Iterator[tuple[str, int, dict[str, object]]]:
    """Every buildable (level, N, options) with N ≤ max_n."""
    for n in range(2, max_n + 1):
        yield "0", n, {}
        yield "1", n, {}
    for n in range(3, max_n + 1):
        for alg in RAID5_ALGORITHMS:
            yield "5", n, {"algorithm": alg}
    for n in range(4, max_n + 1):
        yield "6", n, {}
    for copies in (2, 3, 4):
        for n in range(2 * copies, max_n + 1, copies):
            yield "10", n, {"copies": copies}


def ids(cfg: tuple[str, int, dict[str, object]]) -> str:
    name, n, opts = cfg
    return f"raid{name}-n{n}" + "".join(f"-{v}" for v in opts.values())


SMALL = list(configs(8))
LARGE = [c for c in configs(12) if c[1] > 8]


# --------------------------------------------------------------------------
# golden placement (md's raid5_compute_sector)
# --------------------------------------------------------------------------


def layout_table(lay: Layout, stripes: int) -> list[tuple[int, ...]]:
    """Rows ``(data devices in logical order..., P[, Q])`` from the implementation."""
    rows = []
    for s in range(stripes):
        sm = lay.stripe(s)
        data = [sm.data_members(d)[0].device for d in range(sm.k)]
        rows.append((*data, *(m.device for m in sm.parity_members)))
    return rows


def test_port_matches_md_documented_picture() -> None:
    # md's left-symmetric RAID 5 on 4 disks, chunk numbers per device row:
    #   0  1  2  P / 4  5  P  3 / 8  P  6  7 / P  9 10 11
    picture = [
        ["0", "1", "2", "P"],
        ["4", "5", "P", "3"],
        ["8", "P", "6", "7"],
        ["P", "9", "10", "11"],
    ]
    for s, row in enumerate(md_table(5, 4, "left-symmetric", 4)):
        *data, pd = row
        assert picture[s][pd] == "P"
        for d, dev in enumerate(data):
            assert picture[s][dev] == str(3 * s + d)


@pytest.mark.parametrize("key", sorted(GOLDEN), ids=lambda k: f"raid{k[0]}-n{k[1]}-{k[2]}")
def test_golden_tables(key: tuple[str, int, str]) -> None:
    level, n, alg = key
    table = GOLDEN[key]
    assert len(table) == 2 * n  # two rotation periods
    assert md_table(int(level), n, alg, 2 * n) == table  # the port is frozen
    opts = {"algorithm": alg} if level == "5" else {}
    lay = layout(level, n, C, **opts)
    assert lay.period == n
    assert layout_table(lay, 2 * n) == table


def md_configs(max_n: int) -> list[tuple[int, int, str]]:
    out = [(5, n, alg) for n in range(3, max_n + 1) for alg in RAID5_ALGORITHMS]
    return out + [(6, n, "left-symmetric") for n in range(4, max_n + 1)]


def check_against_port(level: int, n: int, alg: str, chunk: int, seed: int) -> None:
    opts = {"algorithm": alg} if level == 5 else {}
    lay = layout(str(level), n, chunk, **opts)
    spc = chunk // SECTOR
    stripes = 2 * n
    rnd = random.Random(seed)
    assert layout_table(lay, stripes) == md_table(level, n, alg, stripes)
    for _ in range(200):
        sector = rnd.randrange(stripes * lay.k * spc)
        new_sector, dd, pd, qd = raid5_compute_sector(sector, level, n, MD_ALGORITHMS[alg], spc)
        logical = sector * SECTOR + rnd.randrange(SECTOR)
        s, d, o = lay.locate(logical)
        sm = lay.stripe(s)
        (member,) = sm.data_members(d)
        assert member.device == dd
        assert member.device_offset + o == new_sector * SECTOR + logical % SECTOR
        assert sm.parity_members[0].device == pd
        if level == 6:
            assert sm.parity_members[1].device == qd


@pytest.mark.parametrize("level,n,alg", md_configs(16), ids=str)
def test_placement_matches_md_port(level: int, n: int, alg: str) -> None:
    check_against_port(level, n, alg, 64 * 1024, seed=n * 10 + level)


@pytest.mark.slow
def test_placement_matches_md_port_large() -> None:
    for level, n, alg in md_configs(64):
        if n > 16:
            check_against_port(level, n, alg, 512 * 1024, seed=n * 10 + level)


@pytest.mark.parametrize(
    "name,n", [("5", n) for n in range(3, 10)] + [("6", n) for n in range(4, 10)]
)
def test_parity_rotation(name: str, n: int) -> None:
    lay = layout(name, n, C)
    for start in (0, n, 3 * n + 1):
        window = [lay.stripe(s) for s in range(start, start + n)]
        for kind in (RoleKind.P, RoleKind.Q)[: lay.m]:
            devs = sorted(m.device for sm in window for m in sm.members if m.role.kind is kind)
            assert devs == list(range(n)), f"{kind} must visit every device once per period"


# --------------------------------------------------------------------------
# the generic oracle: the codec decides each stripe of one period
# --------------------------------------------------------------------------

_DECODE_CACHE: dict[tuple[object, ...], bool] = {}


def codec_decodes(sm: StripeMap, failed: frozenset[int]) -> bool:
    """Ask the codec whether stripe ``sm`` gives back its data with ``failed`` erased."""
    lost = tuple(i for i, m in enumerate(sm.members) if m.device in failed)
    key = (sm.codec, sm.k, tuple(m.role for m in sm.members), lost)
    if key not in _DECODE_CACHE:
        _DECODE_CACHE[key] = _decode(sm, set(lost))
    return _DECODE_CACHE[key]


def _decode(sm: StripeMap, lost: set[int]) -> bool:
    members = sm.members
    data_lost = any(members[i].role.kind in (RoleKind.DATA, RoleKind.COPY) for i in lost)
    if sm.codec is Codec.NONE:
        return not data_lost
    if sm.codec is Codec.MIRROR:
        copies: dict[int, list[int]] = {}
        for i, m in enumerate(members):
            assert m.role.kind is RoleKind.COPY
            copies.setdefault(m.role.of, []).append(i)  # type: ignore[arg-type]
        assert sorted(copies) == list(range(sm.k))
        return all(any(i not in lost for i in idx) for idx in copies.values())
    rng = np.random.default_rng(len(members) * 1000 + len(lost))
    data = [rng.integers(0, 256, 16, dtype=np.uint8) for _ in range(sm.k)]
    assert [m.role for m in members[: sm.k]] == [Role.data(d) for d in range(sm.k)]
    if sm.codec is Codec.XOR:
        assert [m.role.kind for m in members[sm.k :]] == [RoleKind.P]
        full = [*data, ec.xor_parity(data)]
        recover = ec.xor_recover
    elif sm.codec is Codec.PQ_MD:
        assert [m.role.kind for m in members[sm.k :]] == [RoleKind.P, RoleKind.Q]
        full = [*data, *ec.pq_parity(data, order="md")]

        def recover(shards: list[object]) -> list[np.ndarray]:
            return ec.pq_recover(shards, order="md")
    else:
        raise AssertionError(f"no oracle for codec {sm.codec}")
    shards = [None if i in lost else s for i, s in enumerate(full)]
    try:
        out = recover(shards)
    except DataLossError:
        return not data_lost
    for a, b in zip(out, full, strict=True):
        np.testing.assert_array_equal(a, b)
    return True


def check_failure_sets(lay: Layout, sets: Iterator[frozenset[int]]) -> None:
    """``survives(F)`` == the codec's verdict on every stripe of one period, for each F."""
    period = [lay.stripe(s) for s in range(lay.period)]
    for f in sets:
        verdicts = [codec_decodes(sm, f) for sm in period]
        expected = all(verdicts)
        assert lay.survives(f) == expected, f"F={sorted(f)}"
        assert [sm.recoverable(f) for sm in period] == verdicts
        if len(f) <= lay.fault_tolerance:
            assert expected, f"guaranteed tolerance {lay.fault_tolerance} broken by F={sorted(f)}"


def all_subsets(n: int) -> Iterator[frozenset[int]]:
    for r in range(n + 1):
        for f in itertools.combinations(range(n), r):
            yield frozenset(f)


@pytest.mark.parametrize("cfg", SMALL, ids=ids)
def test_survives_matches_codec_oracle(cfg: tuple[str, int, dict[str, object]]) -> None:
    name, n, opts = cfg
    lay = layout(name, n, C, **opts)
    check_failure_sets(lay, all_subsets(n))
    # The guaranteed figure is tight: some set one larger loses data.
    worse = [f for f in all_subsets(n) if len(f) == lay.fault_tolerance + 1]
    assert not worse or not all(lay.survives(f) for f in worse)


@pytest.mark.slow
def test_survives_matches_codec_oracle_large() -> None:
    for name, n, opts in LARGE:
        check_failure_sets(layout(name, n, C, **opts), all_subsets(n))


def sampled_subsets(n: int, tolerance: int, seed: int) -> Iterator[frozenset[int]]:
    """Beyond the exhaustive range (§0.5): every |F| ≤ tolerance+1, then 2 000 random sets."""
    for r in range(min(n, tolerance + 1) + 1):
        for f in itertools.combinations(range(n), r):
            yield frozenset(f)
    rnd = random.Random(seed)
    for _ in range(2000 if tolerance + 2 <= n else 0):
        yield frozenset(rnd.sample(range(n), rnd.randrange(tolerance + 2, n + 1)))


@pytest.mark.slow
def test_survives_matches_codec_oracle_sampled() -> None:
    cases = [("0", 16, {}), ("1", 16, {}), ("5", 16, {}), ("5", 24, {"algorithm": "ra"})]
    cases += [("6", 16, {}), ("6", 24, {}), ("10", 16, {}), ("10", 24, {"copies": 3})]
    for name, n, opts in cases:
        lay = layout(name, n, C, **opts)
        check_failure_sets(lay, sampled_subsets(n, lay.fault_tolerance, seed=n))


@pytest.mark.parametrize("n", [4, 6, 8])
def test_raid10_predicate_examples(n: int) -> None:
    lay = layout("10", n, C)
    assert lay.fault_tolerance == 1
    assert lay.survives(range(0, n, 2))  # one of every pair: best case N/2
    assert not lay.survives({2, 3})  # a whole pair


def test_survives_rejects_bad_indices() -> None:
    lay = layout("5", 4, C)
    for bad in ([4], [-1], ["0"], [True]):
        with pytest.raises(InvalidArgumentError, match="failed device indices"):
            lay.survives(bad)


# --------------------------------------------------------------------------
# byte-level bijection and capacity
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [c for c in SMALL if c[1] <= 6], ids=ids)
def test_every_byte_has_one_home(cfg: tuple[str, int, dict[str, object]]) -> None:
    name, n, opts = cfg
    lay = layout(name, n, C, **opts)
    size = 2 * lay.period_bytes + C // 2  # a ragged tail that must be dropped
    usable = lay.usable_device_size(size)
    assert usable == 2 * lay.period_bytes
    stripes = lay.stripe_count(size)
    cap = lay.capacity(size)
    assert cap == stripes * lay.k * C

    # owner[device][byte] = id of the member occupying it (-1 = free)
    owner = np.full((n, usable), -1, dtype=np.int64)
    member_id = 0
    for s in range(stripes):
        sm = lay.stripe(s)
        assert sm.index == s and sm.codec is lay.codec and sm.k == lay.k
        assert len(sm.members) == lay.k * (lay.m + 1 if lay.codec is Codec.MIRROR else 1) + (
            0 if lay.codec is Codec.MIRROR else lay.m
        )
        assert len(set(sm.devices)) == len(sm.devices), "two members of a stripe share a device"
        for mem in sm.members:
            assert mem.device_offset >= 0 and mem.device_offset + mem.length <= usable
            view = owner[mem.device, mem.device_offset : mem.device_offset + mem.length]
            assert (view == -1).all(), f"stripe {s} {mem.role} overlaps another member"
            view[:] = member_id
            member_id += 1
    assert (owner >= 0).all(), "these levels use every device byte"
    rnd = random.Random(n)
    for _ in range(50):
        dev, off = rnd.randrange(n), rnd.randrange(usable)
        sm, mem = lay.member_at(dev, off)
        assert mem in sm.members and mem.device == dev
        assert mem.device_offset <= off < mem.device_offset + mem.length

    # Write the logical image through the layout, read it back.
    rng = np.random.default_rng(n)
    image = rng.integers(0, 256, cap, dtype=np.uint8)
    devices = np.zeros((n, usable), dtype=np.uint8)
    written = np.zeros((n, usable), dtype=bool)
    pos = 0
    while pos < cap:
        length = int(rng.integers(1, 3 * C))
        for piece in lay.pieces(pos, min(length, cap - pos)):
            assert piece.offset + piece.length <= C
            for mem in lay.stripe(piece.stripe).data_members(piece.data_index):
                at = mem.device_offset + piece.offset
                assert not written[mem.device, at : at + piece.length].any()
                src = image[piece.logical_offset : piece.logical_offset + piece.length]
                devices[mem.device, at : at + piece.length] = src
                written[mem.device, at : at + piece.length] = True
        pos += length
    copies = lay.m + 1 if lay.codec is Codec.MIRROR else 1
    assert int(written.sum()) == cap * copies  # every logical byte landed once per copy
    back = np.empty_like(image)
    for s in range(stripes):
        sm = lay.stripe(s)
        for d in range(sm.k):
            for mem in sm.data_members(d):
                chunk = devices[mem.device, mem.device_offset : mem.device_offset + C]
                start = (s * sm.k + d) * C
                back[start : start + C] = chunk
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("cfg", SMALL, ids=ids)
def test_locate_and_pieces(cfg: tuple[str, int, dict[str, object]]) -> None:
    name, n, opts = cfg
    lay = layout(name, n, 8192, **opts)
    rnd = random.Random(n)
    for _ in range(100):
        x = rnd.randrange(10**9)
        s, d, o = lay.locate(x)
        assert x == (s * lay.k + d) * 8192 + o
        assert 0 <= d < lay.k and 0 <= o < 8192
        length = rnd.randrange(1, 5 * 8192)
        pieces = list(lay.pieces(x, length))
        assert sum(p.length for p in pieces) == length
        assert pieces[0].logical_offset == x
        for a, b in itertools.pairwise(pieces):
            assert a.logical_offset + a.length == b.logical_offset
            assert b.offset == 0
    assert list(lay.pieces(5, 0)) == []


def test_capacity_formulas() -> None:
    s = 10 * 1024 * 1024 + 123
    cases = {
        ("0", 4): 4 * (s - s % C),
        ("1", 3): s - s % C,
        ("5", 4): 3 * (s - s % (4 * C)),
        ("6", 6): 4 * (s - s % (6 * C)),
        ("10", 6): 3 * (s - s % C),
    }
    for (name, n), cap in cases.items():
        assert layout(name, n, C).capacity(s) == cap
    lay = layout("5", 4, C)
    assert lay.capacity([s, s + 9 * C, s, 2 * s]) == lay.capacity(s)  # min of mixed sizes
    with pytest.raises(InvalidArgumentError, match="3 sizes for 4 devices"):
        lay.capacity([s, s, s])
    with pytest.raises(InvalidArgumentError, match="device_size"):
        lay.capacity(-1)


def test_geometry_and_roles() -> None:
    r6 = layout("raid6", 6, C)
    assert (r6.k, r6.m, r6.min_devices, r6.fault_tolerance, r6.codec) == (4, 2, 4, 2, Codec.PQ_MD)
    assert r6.data_bytes_per_stripe == 4 * C and r6.period_bytes == 6 * C
    r10 = layout("1+0", 9, C, copies=3)
    assert (r10.k, r10.m, r10.min_devices, r10.fault_tolerance) == (3, 2, 6, 2)
    sm = r10.stripe(5)
    assert [m.device for m in sm.data_members(1)] == [3, 4, 5]
    assert {m.device_offset for m in sm.members} == {5 * C}
    assert str(sm.members[4].role) == "copy(1 of 1)"
    assert str(Role.data(2)) == "data(2)" and str(r6.stripe(0).parity_members[1].role) == "Q"
    assert str(Role.parity(1)) == "parity(1)" and str(Role.spare()) == "spare(0)"
    assert r6.stripe(3).on_device(r6.stripe(3).parity_members[0].device)[0].role.kind is RoleKind.P
    assert layout("1", 3, C).stripe(0).recoverable({0, 1})
    assert not layout("1", 3, C).stripe(0).recoverable({0, 1, 2})
    with pytest.raises(InvalidArgumentError, match="stripe"):
        r6.stripe(-1)
    with pytest.raises(InvalidArgumentError, match="data index"):
        sm.data_members(3)
    with pytest.raises(InvalidArgumentError, match=r"device must be in 0\.\.5"):
        r6.member_at(6, 0)
    with pytest.raises(InvalidArgumentError, match="device_offset"):
        r6.member_at(0, -1)


def test_params_round_trip() -> None:
    for name, n, opts in SMALL:
        lay = layout(name, n, C, **opts)
        again = layout(**lay.params)
        assert again == lay and hash(again) == hash(lay)
        assert repr(lay).startswith(type(lay).__name__ + "(")
    assert layout("5", 4, C) != layout("5", 4, C, algorithm="ra")
    assert layout("5", 4).chunk_size == 512 * 1024


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------


def test_levels_are_the_29_canonical_names() -> None:
    assert tuple(SPEC_LEVELS) == LEVELS
    assert len(LEVELS) == 29
    assert {"0", "1", "5", "6", "10"} <= set(AVAILABLE)
    assert tuple(n for n in LEVELS if n in AVAILABLE) == AVAILABLE  # in LEVELS order
    for name in LEVELS:
        assert canonical(name) == name
        assert canonical(name.lower()) == name
        assert canonical("raid" + name.lower()) == name
        assert canonical("RAID-" + name) == name


@pytest.mark.parametrize(
    "alias,name",
    [
        ("raid5", "5"), ("RAID-6", "6"), ("Raid 6", "6"), ("1+0", "10"), ("raid1+0", "10"),
        ("RAID_10", "10"), ("0+1", "01"), ("raid01", "01"), ("raidz2", "Z2"), ("z2", "Z2"),
        ("RAID-Z", "Z1"), ("raidz", "Z1"), ("RAIDZ3", "Z3"), ("md10", "MD10"), ("mdraid10", "MD10"),
        ("rdp", "DP"), ("raid-dp", "DP"), ("drobo", "BEYOND"), ("BeyondRAID", "BEYOND"),
        ("dRAID", "DECLUSTERED"), ("declustered", "DECLUSTERED"), ("autoraid", "ADAPTIVE"),
        ("unraid", "UNRAID"), ("raid1e", "1E"), ("5ee", "5EE"), ("raid-fr", "FR"), ("raid s", "S"),
        ("mirror", "1"), ("stripe", "0"), ("5+0", "50"), ("6+0", "60"), ("1+0+0", "100"),
        (5, "5"), (10, "10"), (0, "0"),
    ],
)  # fmt: skip
def test_aliases(alias: str | int, name: str) -> None:
    assert canonical(alias) == name


@pytest.mark.parametrize("bad", ["raid9", "", "raid", "z4", "00", "RAID-11", 7.0, None, True, 42])
def test_unknown_names(bad: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        canonical(bad)  # type: ignore[arg-type]
    if isinstance(bad, (str, int)) and not isinstance(bad, bool):
        assert "valid levels: 0, 1, 2, 3" in str(info.value) and "DECLUSTERED" in str(info.value)
    with pytest.raises(InvalidArgumentError):
        layout(bad, 4)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [n for n in SPEC_LEVELS if n not in AVAILABLE])
def test_unavailable_levels(name: str) -> None:
    assert not is_available(name)
    with pytest.raises(LevelUnavailableError) as info:
        layout(name.lower(), 8, C)
    assert str(info.value) == (
        f"level {name} is not available in this version (available: {', '.join(AVAILABLE)})"
    )
    assert isinstance(info.value, DWError) and not isinstance(info.value, InvalidArgumentError)
    assert info.value.level == name
    with pytest.raises(LevelUnavailableError):
        level_options(name)


def test_available_levels() -> None:
    for name in ("0", "raid1", "RAID-5", "6", "1+0"):
        assert is_available(name)
    assert level_options("5") == {"algorithm": "left-symmetric"}
    assert level_options("10") == {"copies": 2}
    assert level_options("6") == {}


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        (("0", 1), {}, "RAID 0 needs at least 2 devices, got n_devices=1"),
        (("1", 1), {}, "RAID 1 needs at least 2 devices"),
        (("5", 2), {}, "needs at least 3 devices"),
        (("6", 3), {}, "RAID 6 needs at least 4 devices"),
        (("10", 3), {}, "needs at least 4 devices"),
        (("10", 6), {"copies": 4}, "needs at least 8 devices"),
        (("10", 10), {"copies": 3}, "multiple of copies=3"),
        (("10", 4), {"copies": 1}, "copies must be ≥ 2"),
        (("6", 258), {}, "at most 255 data devices"),
        (("5", 259), {}, "at most 257 data devices"),
        (("5", 4.0), {}, "n_devices must be an integer"),
        (("5", True), {}, "n_devices must be an integer"),
        (("5", 4, 3000), {}, "chunk_size must be a power of two ≥ 4096"),
        (("5", 4, 2048), {}, "chunk_size must be a power of two"),
        (("5", 4, 8192 + 4096), {}, "chunk_size must be a power of two"),
        (("5", 4, "4096"), {}, "chunk_size must be an integer"),
        (("5", 4), {"algorithm": "diagonal"}, "algorithm must be one of left-symmetric"),
        (("5", 4), {"algorithm": 2}, "algorithm must be one of"),
        (("5", 4), {"copies": 2}, r"unknown option\(s\) for RAID 5: copies \(allowed: algorithm\)"),
        (("6", 4), {"algorithm": "ls"}, r"for RAID 6: algorithm \(allowed: none\)"),
        (("0", 4), {"width": 2, "bogus": 1}, "bogus, width"),
    ],
)  # fmt: skip
def test_bad_options(args: tuple[object, ...], kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        layout(*args, **kwargs)  # type: ignore[arg-type]


def test_raid5_algorithm_aliases() -> None:
    for short, long in (
        ("ls", "left-symmetric"),
        ("LA", "left-asymmetric"),
        ("rs", "right-symmetric"),
    ):
        assert layout("5", 5, C, algorithm=short).algorithm == long


def test_large_arrays_build() -> None:
    assert layout("6", 257, C).k == 255
    assert layout("5", 258, C).k == 257
    if SLOW:
        lay = layout("6", 257, C)
        assert len({m.device for m in lay.stripe(300).members}) == 257
