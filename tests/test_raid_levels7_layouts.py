"""Issue 7 layouts (2, 3, 4, 01, 03, 50, 60, 100, 1E, 5E, 5EE, 6E, MD10): placement, predicates.

* golden placement: RAID 4 from the level-4 branch of md's
  ``raid5_compute_sector`` (``raid_golden7.py``); MD10 near/far/offset and
  RAID 1E (= md raid10 o2) from a port of md's ``__raid10_find_phys``
  (``md10_reference.py``), frozen tables plus the live port for more N;
* the spec's address formulas for 50, 60 and 100 (two-level arithmetic with
  C2 ≠ C·G) checked byte by byte against ``locate`` + ``stripe``;
* the codec oracle: every stripe of one period decided by ``dwcore.ec`` with
  the failed devices' members erased, against ``survives(F)`` for every F
  (N ≤ 8; larger N with ``DWCORE_SLOW_TESTS=1``);
* byte-level bijection, capacity, ``member_at``, options and the registry.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from levels7_pool import hamming_codewords as codewords
from md10_reference import GOLDEN, md10_table
from raid_golden7 import GOLDEN4, SECTOR, md4_table, raid4_compute_sector

from dwcore import ec
from dwcore.errors import DataLossError, InvalidArgumentError
from dwcore.raid import (
    AVAILABLE,
    Codec,
    Layout,
    RoleKind,
    StripeMap,
    canonical,
    is_available,
    layout,
    level_options,
)
from dwcore.raid.md10 import parse_md_layout

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")
C = 4096
MD10_KINDS: list[dict[str, Any]] = [
    {"layout": "n2"},
    {"layout": "n3"},
    {"layout": "f2"},
    {"layout": "f3"},
    {"layout": "o2"},
    {"layout": "o3"},
    {"layout": "n2f2"},
    {"layout": "f2", "far_sets": "improved"},
    {"layout": "n2f2", "far_sets": "improved"},
]

Cfg = tuple[str, int, dict[str, Any]]


def md10_ok(n: int, opts: dict[str, Any]) -> bool:
    near, far, offset = parse_md_layout(opts["layout"])
    return 2 <= near * far <= n and not (offset and near > 1 and n % near)


def configs(max_n: int) -> Iterator[Cfg]:
    """Every buildable issue-7 (level, N, options) with N ≤ max_n (far MD10 bound to a size)."""
    yield "2", 7, {}
    if max_n >= 8:
        yield "2", 8, {"secded": True}
    for n in range(3, max_n + 1):
        yield "3", n, {}
        yield "4", n, {}
    for copies in (2, 3):
        for n in range(2 * copies, max_n + 1, copies):
            yield "01", n, {"copies": copies}
    for width in (2, 3):
        for n in range(3 * width, max(max_n, 9) + 1, width):
            yield "03", n, {"width": width}  # M=3, W=3 (N=9) always: the spec's case
    for groups in (2, 3):
        for n in range(3 * groups, max_n + 1, groups):
            yield "50", n, {"groups": groups}
        for n in range(4 * groups, max_n + 1, groups):
            yield "60", n, {"groups": groups}
    for arrays, copies in ((2, 2), (3, 2), (2, 3)):
        for n in range(2 * arrays * copies, max_n + 1, arrays * copies):
            for q in (1, 3, 16):
                yield "100", n, {"arrays": arrays, "copies": copies, "top_chunk_size": q * C}
    for n in range(2, max_n + 1):
        yield "1E", n, {}
    for n in range(4, max_n + 1):
        yield "5EE", n, {}
        yield "5EE", n, {"compacted": n // 2}
        yield "5E", n, {}
        yield "5E", n, {"absent": n // 2}
    for n in range(5, max_n + 1):
        yield "6E", n, {}
        yield "6E", n, {"absent": 0}
    for n in range(2, max_n + 1):
        for kind in MD10_KINDS:
            if md10_ok(n, kind):
                yield "MD10", n, kind


def build(cfg: Cfg, chunk: int = C, periods: int = 3) -> Layout:
    """The layout of ``cfg``; far MD10 layouts are bound to ``periods`` stripes per device."""
    name, n, opts = cfg
    lay = layout(name, n, chunk, **opts)
    return lay.fit(periods * lay.period_bytes)


def ids(cfg: Cfg) -> str:
    name, n, opts = cfg
    return f"raid{name}-n{n}" + "".join(f"-{v}" for v in opts.values())


SMALL = list(configs(8))
LARGE = [c for c in configs(12) if c[1] > 8]


# --------------------------------------------------------------------------
# golden placement
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", sorted(GOLDEN4))
def test_raid4_golden(n: int) -> None:
    assert md4_table(n, 2) == GOLDEN4[n]
    lay = layout("4", n, C)
    for s, row in enumerate(GOLDEN4[n]):
        sm = lay.stripe(s)
        got = [sm.data_members(d)[0].device for d in range(sm.k)]
        assert (*got, sm.parity_members[0].device) == row


@pytest.mark.parametrize("n", range(3, 17))
def test_raid4_matches_md_port(n: int) -> None:
    chunk = 64 * 1024
    lay = layout("4", n, chunk)
    spc = chunk // SECTOR
    rnd = random.Random(n)
    for _ in range(200):
        sector = rnd.randrange(50 * lay.k * spc)
        new_sector, dd, pd = raid4_compute_sector(sector, n, spc)
        logical = sector * SECTOR + rnd.randrange(SECTOR)
        s, d, o = lay.locate(logical)
        sm = lay.stripe(s)
        (member,) = sm.data_members(d)
        assert member.device == dd
        assert member.device_offset + o == new_sector * SECTOR + logical % SECTOR
        assert [m.device for m in sm.parity_members] == [pd]
        assert sm.parity_members[0].device_offset == new_sector * SECTOR // (spc * SECTOR) * chunk


@pytest.mark.parametrize("n", range(3, 10))
def test_raid3_byte_placement(n: int) -> None:
    lay = layout("3", n, C)
    k = n - 1
    rnd = random.Random(n)
    for logical in [0, 1, k - 1, k, k * C - 1, k * C] + [rnd.randrange(10**7) for _ in range(300)]:
        s, d, o = lay.locate(logical)
        (mem,) = lay.stripe(s).data_members(d)
        assert (mem.device, mem.device_offset + o) == (logical % k, logical // k)
        assert lay.stripe(s).parity_members[0].device == n - 1
    pieces = list(lay.pieces(5, 3 * k))
    assert [p.data_index for p in pieces] == [(5 + i) % k for i in range(3 * k)]
    assert all(p.length == 1 for p in pieces)


def test_raid2_the_28_triples() -> None:
    lay = layout("2", 7, C)
    # positions (1-based) of the weight-3 codewords (raid-levels.md §1)
    bad = {(1, 2, 3), (1, 4, 5), (1, 6, 7), (2, 4, 6), (2, 5, 7), (3, 4, 7), (3, 5, 6)}
    triples = list(itertools.combinations(range(1, 8), 3))
    assert {t for t in triples if not lay.survives(p - 1 for p in t)} == bad
    assert sum(lay.survives(p - 1 for p in t) for t in triples) == 28
    assert all(lay.survives(f) for r in range(3) for f in itertools.combinations(range(7), r))
    assert not any(lay.survives(f) for f in itertools.combinations(range(7), 4))
    # the triples plain peeling cannot do, but elimination can
    for t in ((3, 5, 7), (3, 6, 7), (5, 6, 7)):
        assert lay.stripe(0).recoverable(p - 1 for p in t)
    secded = layout("2", 8, C, secded=True)
    assert all(secded.survives(f) for f in itertools.combinations(range(8), 3))
    sm = lay.stripe(4)
    assert [m.device for m in sm.members] == [2, 4, 5, 6, 0, 1, 3]  # d1@3 … d4@7, p1 p2 p4


@pytest.mark.parametrize("n,opts", [(15, {}), (16, {"secded": True}), (31, {})])
def test_raid2_larger_codes(n: int, opts: dict[str, Any]) -> None:
    """N = 15, 16 (secded), 31: survives() (rank of parity-check columns) against the
    stripe's GF(2) elimination, on every |F| ≤ tolerance+1 and random larger sets."""
    lay = layout("2", n, C, **opts)
    sm = lay.stripe(0)
    tol = lay.fault_tolerance
    assert lay.k == {15: 11, 16: 11, 31: 26}[n]
    rnd = random.Random(n)
    sets = [frozenset(c) for r in range(tol + 2) for c in itertools.combinations(range(n), r)]
    sets += [frozenset(rnd.sample(range(n), rnd.randrange(tol + 2, n))) for _ in range(500)]
    for f in sets:
        assert lay.survives(f) == sm.recoverable(f), sorted(f)
        if len(f) <= tol:
            assert lay.survives(f)
    assert not all(lay.survives(f) for f in sets if len(f) == tol + 1)


def test_raid2_bit_placement() -> None:
    from dwcore.pool.interleave import interleave

    lay: Any = layout("2", 15, C)
    k = lay.k
    assert k == 11
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, k * C, dtype=np.uint8)
    members = interleave(data, k, "bit")
    bits = np.unpackbits(data, bitorder="little")
    for b in list(range(0, 200)) + [int(x) for x in rng.integers(0, 8 * k * C, 300)]:
        s, d, byte, bit = lay.locate_bit(b)
        assert (s, d, byte * 8 + bit) == (0, b % k, b // k)  # the spec: device b mod k, bit b div k
        assert members[d][byte] >> bit & 1 == bits[b]
    assert lay.locate_bit(8 * k * C + 3)[:2] == (1, 3)


def layout_roles(sm: StripeMap) -> list[tuple[int, int, str]]:
    return [(m.device, m.device_offset, str(m.role)) for m in sm.members]


def md10_rows(lay: Layout, chunks: int) -> list[tuple[tuple[int, int], ...]]:
    """``(device, device chunk)`` of every copy of logical chunks 0..chunks-1, from the layout."""
    out = []
    for x in range(chunks):
        s, d, _o = lay.locate(x * lay.chunk_size)
        sm = lay.stripe(s)
        out.append(tuple((m.device, m.device_offset // C) for m in sm.data_members(d)))
    return out


@pytest.mark.parametrize("key", sorted(GOLDEN), ids=str)
def test_md10_golden(key: tuple[int, int, int, bool, int, int]) -> None:
    n, near, far, offset, variant, dev_chunks = key
    assert md10_table(*key, chunks=2 * n) == GOLDEN[key]
    opts: dict[str, Any] = {"near": near, "far": far, "offset": offset}
    opts["far_sets"] = "improved" if variant == 2 else "original"
    lay = layout("MD10", n, C, **opts)
    if lay.is_far:  # type: ignore[attr-defined]
        lay = layout("MD10", n, C, **opts, size=dev_chunks * C)
    assert md10_rows(lay, 2 * n) == GOLDEN[key]


def md10_port_configs(max_n: int) -> Iterator[tuple[int, int, int, bool, int]]:
    for n in range(2, max_n + 1):
        for near, far, offset in itertools.product((1, 2, 3), (1, 2, 3), (False, True)):
            if near * far < 2 or near * far > n or (offset and far < 2):
                continue
            if offset and near > 1 and n % near:
                continue
            for variant in (0, 2) if far > 1 else (0,):
                yield n, near, far, offset, variant


@pytest.mark.parametrize("n", range(2, 11))
def test_md10_matches_port(n: int) -> None:
    rnd = random.Random(n)
    for _n, near, far, offset, variant in (c for c in md10_port_configs(n) if c[0] == n):
        opts: dict[str, Any] = {"near": near, "far": far, "offset": offset}
        opts["far_sets"] = "improved" if variant == 2 else "original"
        lay = layout("MD10", n, C, **opts)
        stripes = rnd.randrange(2, 6)
        size = stripes * lay.period_bytes
        if lay.is_far:  # type: ignore[attr-defined]
            lay = lay.fit(size)
            assert lay.usable_device_size(size + 7 * C) == size
        cap = lay.capacity(size)
        chunks = cap // C
        assert chunks == (size // C) // far * n // near  # md's raid10_size
        want = md10_table(n, near, far, offset, variant, size // C, chunks)
        assert md10_rows(lay, chunks) == want, opts
        # every copy lies inside the data area
        assert all(off < size // C for row in want for _d, off in row)


@pytest.mark.parametrize("n", range(2, 11))
def test_raid1e_is_md_offset_o2(n: int) -> None:
    lay = layout("1E", n, C)
    want = md10_table(n, 1, 2, True, 0, 8, 4 * n)
    assert md10_rows(lay, 4 * n) == want
    for x in range(4 * n):
        s, j = divmod(x, n)
        assert want[x] == ((j, 2 * s), ((j + 1) % n, 2 * s + 1))  # the spec's formula


# --------------------------------------------------------------------------
# the spec's address formulas for the nested levels
# --------------------------------------------------------------------------


def spec_address(name: str, lay: Any, logical: int) -> tuple[int, int]:
    """``(device, device offset)`` of a logical byte by ``raid-levels.md`` §2, written out."""
    c = lay.chunk_size
    if name in ("50", "60"):
        big, o = divmod(logical, c)
        groups, n = lay.groups, lay.group_size
        g, inner = big % groups, big // groups
        k = n - (1 if name == "50" else 2)
        s, d = divmod(inner, k)
        if name == "50":
            pd = k - s % n
            dev = (pd + 1 + d) % n
        else:
            pd = n - 1 - s % n
            dev = (pd + 2 + d) % n
        return g * n + dev, s * c + o
    if name == "100":
        c2 = lay.top_chunk_size
        top, rest = divmod(logical, c2)
        t = top % lay.arrays
        a = (top // lay.arrays) * c2 + rest
        chunk, o = divmod(a, c)
        g = chunk % lay.groups
        first = (t * lay.groups + g) * lay.copies
        return first, (chunk // lay.groups) * c + o
    if name == "03":
        k, w = lay.k, lay.width
        member, a = logical % k, logical // k
        j = (a // c) % w
        return member * w + j, (a // (c * w)) * c + a % c
    if name == "01":
        chunk, o = divmod(logical, c)
        return chunk % lay.width, (chunk // lay.width) * c + o
    raise AssertionError(name)


@pytest.mark.parametrize(
    "cfg",
    [
        ("50", 6, {}),
        ("50", 9, {"groups": 3}),
        ("50", 8, {"groups": 2}),
        ("60", 8, {}),
        ("60", 12, {"groups": 3}),
        ("100", 8, {}),
        ("100", 8, {"top_chunk_size": 3 * C}),
        ("100", 12, {"arrays": 3, "top_chunk_size": 5 * C}),
        ("100", 12, {"arrays": 2, "copies": 3, "top_chunk_size": 2 * C}),
        ("01", 6, {"copies": 3}),
        ("03", 6, {}),
        ("03", 9, {"width": 3}),
        ("03", 8, {"width": 2}),
    ],
    ids=ids,
)
def test_nested_address_arithmetic(cfg: Cfg) -> None:
    name, n, opts = cfg
    lay: Any = layout(name, n, C, **opts)
    rnd = random.Random(n)
    span = 6 * lay.period * lay.data_bytes_per_stripe
    for logical in [0, C - 1, C, span - 1] + [rnd.randrange(span) for _ in range(400)]:
        s, d, o = lay.locate(logical)
        sm = lay.stripe(s)
        first = sm.data_members(d)[0]
        assert (first.device, first.device_offset + o) == spec_address(name, lay, logical)
        if name == "100":
            devs = [m.device for m in sm.data_members(d)]
            assert devs == list(range(first.device, first.device + lay.copies))


# --------------------------------------------------------------------------
# the codec oracle
# --------------------------------------------------------------------------

_CACHE: dict[tuple[object, ...], bool] = {}


def _decode_parity(codec: Codec, shards: list[np.ndarray], k: int, lost: set[int]) -> bool:
    data = shards[:k]
    if codec is Codec.XOR:
        full = [*data, ec.xor_parity(data)]
    else:
        full = [*data, *ec.pq_parity(data, order="md")]
    erased = [None if i in lost else s for i, s in enumerate(full)]
    try:
        out = ec.xor_recover(erased) if codec is Codec.XOR else ec.pq_recover(erased, order="md")
    except DataLossError:
        return not any(i < k for i in lost)
    for a, b in zip(out, full, strict=True):
        np.testing.assert_array_equal(a, b)
    return True


def codec_decodes(sm: StripeMap, failed: frozenset[int]) -> bool:
    """Ask ``dwcore.ec`` whether stripe ``sm`` gives back its data with ``failed`` erased."""
    lost = {i for i, m in enumerate(sm.members) if m.device in failed}
    key = (sm.codec, sm.k, tuple(m.role for m in sm.members), sm.groups, tuple(sorted(lost)))
    if key in _CACHE:
        return _CACHE[key]
    rng = np.random.default_rng(len(sm.members))
    if sm.codec is Codec.HAMMING:
        # a nonzero codeword supported on the lost members <=> the data is ambiguous
        m = len(sm.members) - sm.k
        ok = not any(
            any(w) and all(i in lost for i, x in enumerate(w) if x) for w in codewords(sm.k, m)
        )
        _CACHE[key] = ok
        return ok
    if sm.codec is Codec.MIRROR:
        copies: dict[int, list[int]] = {}
        for i, mem in enumerate(sm.members):
            assert mem.role.kind is RoleKind.COPY
            copies.setdefault(mem.role.of, []).append(i)  # type: ignore[arg-type]
        assert sorted(copies) == list(range(sm.k))
        ok = all(any(i not in lost for i in idx) for idx in copies.values())
    elif sm.codec in (Codec.XOR, Codec.PQ_MD):
        data = [rng.integers(0, 256, 16, dtype=np.uint8) for _ in range(sm.k)]
        ok = _decode_parity(sm.codec, data, sm.k, lost)
    else:
        base = sm.codec.group_codec
        assert base is not None
        covered: list[int] = []
        ok = True
        for idx in sm.groups:
            covered += idx
            roles = [sm.members[j].role for j in idx]
            kg = sum(1 for r in roles if r.kind is RoleKind.DATA)
            want = [RoleKind.P] if base is Codec.XOR else [RoleKind.P, RoleKind.Q]
            assert [r.kind for r in roles[kg:]] == want
            data = [rng.integers(0, 256, 16, dtype=np.uint8) for _ in range(kg)]
            local = {i for i, j in enumerate(idx) if j in lost}
            ok = _decode_parity(base, data, kg, local) and ok
        assert sorted(covered) == list(range(len(sm.members)))
    _CACHE[key] = ok
    return ok


def check_failure_sets(lay: Layout, sets: Iterator[frozenset[int]]) -> None:
    period = [lay.stripe(s) for s in range(lay.period)]
    for f in sets:
        verdicts = [codec_decodes(sm, f) for sm in period]
        assert lay.survives(f) == all(verdicts), f"F={sorted(f)}"
        assert [sm.recoverable(f) for sm in period] == verdicts, f"F={sorted(f)}"
        if len(f) <= lay.fault_tolerance:
            assert all(verdicts), f"guaranteed tolerance {lay.fault_tolerance} broken by {f}"


def all_subsets(n: int) -> Iterator[frozenset[int]]:
    for r in range(n + 1):
        for f in itertools.combinations(range(n), r):
            yield frozenset(f)


@pytest.mark.parametrize("cfg", SMALL, ids=ids)
def test_survives_matches_codec_oracle(cfg: Cfg) -> None:
    lay = build(cfg)
    check_failure_sets(lay, all_subsets(cfg[1]))
    worse = [f for f in all_subsets(cfg[1]) if len(f) == lay.fault_tolerance + 1]
    assert not worse or not all(lay.survives(f) for f in worse), "tolerance is not tight"


@pytest.mark.slow
def test_survives_matches_codec_oracle_large() -> None:
    for cfg in LARGE:
        check_failure_sets(build(cfg), all_subsets(cfg[1]))


def test_predicates_from_the_spec() -> None:
    # RAID 01: every F inside one replica survives; across replicas iff columns differ.
    lay = layout("01", 6, C)
    for f in all_subsets(6):
        cols = [d % 3 for d in f]
        assert lay.survives(f) == (len(cols) == len(set(cols)))
    assert lay.survives({0, 1, 2}) and lay.survives({3, 4, 5}) and not lay.survives({0, 3})
    # RAID 03: at most one member with a failed device per column; a whole member survives.
    for w in (2, 3):
        lay = layout("03", 3 * w, C, width=w)
        for f in all_subsets(3 * w):
            cols = [d % w for d in f]
            assert lay.survives(f) == (len(cols) == len(set(cols)))
        assert lay.survives(range(w, 2 * w)) and lay.fault_tolerance == 1
    # RAID 50/60: at most 1 (2) failed per group, best case G (2G).
    for name, n, per in (("50", 9, 1), ("60", 12, 2)):
        lay = layout(name, n, C, groups=3)
        for f in all_subsets(n):
            assert lay.survives(f) == all(
                sum(1 for d in f if d // (n // 3) == g) <= per for g in range(3)
            )
    # RAID 1E: survives iff no two failed devices are cyclically adjacent.
    for n in range(3, 9):
        lay = layout("1E", n, C)
        for f in all_subsets(n):
            assert lay.survives(f) == (not any((i + 1) % n in f for i in f))
        assert lay.survives(range(0, n - 1, 2))  # best case floor(N/2)
    assert layout("1E", 3, C).fault_tolerance == 1 and not layout("1E", 3, C).survives({0, 2})
    # MD10: n2 on even N is RAID 10 (pairs); n2 odd, f2 and o2 are "no two adjacent".
    for n in range(3, 9):
        for name in ("n2", "f2", "o2"):
            lay = layout("MD10", n, C, layout=name)
            for f in all_subsets(n):
                if name == "n2" and n % 2 == 0:
                    want = not any(f >= {2 * i, 2 * i + 1} for i in range(n // 2))
                else:
                    want = not any((i + 1) % n in f for i in f)
                assert lay.survives(f) == want, (n, name, sorted(f))
    # RAID 100: every mirror group keeps a device.
    lay = layout("100", 12, C, arrays=3)
    assert lay.survives(range(0, 12, 2)) and not lay.survives({4, 5})


def test_raid5ee_rotation_and_compaction() -> None:
    """RAID 5EE: md RAID-6 left-symmetric rotation with Q as the spare chunk; one failure,
    # or after compacting f one more."""
    for n in range(4, 9):
        lay: Any = layout("5EE", n, C)
        r6 = layout("6", n, C)
        for s in range(2 * n):
            assert lay.spare_device(s) == r6.stripe(s).parity_members[1].device  # type: ignore[attr-defined]
            assert layout_roles(lay.stripe(s)) == layout_roles(r6.stripe(s))[:-1]
        for f in range(n):
            comp = layout("5EE", n, C, compacted=f)
            for s in range(2 * n):
                sm, old = comp.stripe(s), lay.stripe(s)
                assert f not in sm.devices
                moved = [
                    (a.device, b.device)
                    for a, b in zip(old.members, sm.members, strict=True)
                    if a != b
                ]
                sd = lay.spare_device(s)  # type: ignore[attr-defined]
                assert moved == ([] if sd == f else [(f, sd)])
            assert all(comp.survives({f, g}) for g in range(n))
            assert not any(
                comp.survives({f, g, h})
                for g, h in itertools.combinations(range(n), 2)
                if f not in (g, h)
            )


def test_raid5e_6e_placement_and_compression() -> None:
    """RAID 5E / 6E: inside [0, A) exactly md's RAID 5 / RAID 6 left-symmetric; compression
    # keeps every chunk's address and moves it to an equal or higher device offset."""
    for name, p, n in (("5E", 1, 5), ("5E", 1, 7), ("6E", 2, 6), ("6E", 2, 8)):
        lay: Any = layout(name, n, C)
        md = layout("5" if p == 1 else "6", n, C)
        comp: Any = layout(name, n, C, absent=1)
        small = layout("5" if p == 1 else "6", n - 1, C)
        for x in range(0, 6 * lay.k * C, C):
            s, d, _o = lay.locate(x)
            (mem,) = lay.stripe(s).data_members(d)
            ms, md_d, _ = md.locate(x)
            (want,) = md.stripe(ms).data_members(md_d)
            assert (mem.device, mem.device_offset) == (want.device, want.device_offset)
            cs, cd, _ = comp.locate(x)
            (moved,) = comp.stripe(cs).data_members(cd)
            ss, sd, _ = small.locate(x)
            (want2,) = small.stripe(ss).data_members(sd)
            assert moved.device == [d for d in range(n) if d != 1][want2.device]
            assert moved.device_offset == want2.device_offset >= mem.device_offset
        assert lay.fault_tolerance == p and comp.survives(set(range(p + 1)))
        assert not comp.survives(set(range(p + 2)))
        assert not lay.survives(set(range(1, p + 2)))


# --------------------------------------------------------------------------
# byte-level bijection, capacity, member_at
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [c for c in SMALL if c[1] <= 6 and c[0] != "2"], ids=ids)
def test_every_byte_has_one_home(cfg: Cfg) -> None:
    lay = build(cfg, periods=2)
    n = cfg[1]
    size = 2 * lay.period_bytes + C // 2
    usable = lay.usable_device_size(size)
    assert usable == 2 * lay.period_bytes
    stripes = lay.stripe_count(size)
    cap = lay.capacity(size)
    assert cap == stripes * lay.k * C
    owner = np.full((n, usable), -1, dtype=np.int64)
    member_id = 0
    for s in range(stripes):
        sm = lay.stripe(s)
        assert sm.index == s and sm.codec is lay.codec and sm.k == lay.k
        for mem in sm.members:
            assert mem.length == C
            assert mem.device_offset >= 0 and mem.device_offset + mem.length <= usable
            view = owner[mem.device, mem.device_offset : mem.device_offset + mem.length]
            assert (view == -1).all(), f"stripe {s} {mem.role} overlaps another member"
            view[:] = member_id
            member_id += 1
        for d in range(sm.k):  # copies of one chunk on distinct devices
            devs = [m.device for m in sm.data_members(d)]
            assert len(devs) == len(set(devs))
    free = owner < 0
    if cfg[0] in ("5E", "6E"):  # unused: the spare space at the end, or the absent device
        lay_e: Any = lay
        want = np.zeros_like(free)
        if lay_e.absent is None:
            want[:, lay_e.spare_area(usable) :] = True
        else:
            want[lay_e.absent] = True
        assert (free == want).all()
    elif cfg[0] == "5EE":  # unused: the spare chunks, or all of the compacted device
        lay5: Any = lay
        want = np.zeros_like(free)
        if lay5.compacted is None:
            for s in range(stripes):
                want[lay5.spare_device(s), s * C : (s + 1) * C] = True
        else:
            want[lay5.compacted] = True
        assert (free == want).all()
    else:
        assert not free.any(), "these levels use every device byte"
    rnd = random.Random(n)
    for _ in range(50):
        dev, off = rnd.randrange(n), rnd.randrange(usable)
        if free[dev, off]:  # no member, or one of a stripe past the end of this size
            try:
                assert lay.member_at(dev, off)[0].index >= stripes
            except InvalidArgumentError as exc:
                assert "no member owns" in str(exc)
            continue
        sm, mem = lay.member_at(dev, off)
        assert mem in sm.members and mem.device == dev
        assert mem.device_offset <= off < mem.device_offset + mem.length
    # write the logical image through the layout, read it back
    rng = np.random.default_rng(n)
    image = rng.integers(0, 256, cap, dtype=np.uint8)
    devices = np.zeros((n, usable), dtype=np.uint8)
    pos = 0
    while pos < cap:
        length = min(int(rng.integers(1, 3 * C)), cap - pos)
        for piece in lay.pieces(pos, length):
            for mem in lay.stripe(piece.stripe).data_members(piece.data_index):
                at = mem.device_offset + piece.offset
                src = image[piece.logical_offset : piece.logical_offset + piece.length]
                devices[mem.device, at : at + piece.length] = src
        pos += length
    back = np.empty_like(image)
    byte_interleaved = getattr(lay, "interleave", None) == "byte"
    for s in range(stripes):
        sm = lay.stripe(s)
        chunks = []
        for d in range(sm.k):
            for mem in sm.data_members(d):
                chunk = devices[mem.device, mem.device_offset : mem.device_offset + C]
                chunks.append(chunk)
                start = (s * sm.k + d) * C
                if not byte_interleaved:
                    back[start : start + C] = chunk
                    assert (chunk == image[start : start + C]).all(), "a copy differs"
        if byte_interleaved:  # byte x of the stripe is byte x div k of data member x mod k
            back[s * sm.k * C : (s + 1) * sm.k * C] = np.stack(chunks).T.reshape(-1)
    np.testing.assert_array_equal(back, image)


def test_capacity_formulas() -> None:
    s = 10 * 1024 * 1024 + 123
    cases = {
        ("4", 5, ()): 4 * (s - s % C),
        ("01", 6, (("copies", 3),)): 2 * (s - s % C),
        ("50", 8, ()): 2 * 3 * (s - s % (4 * C)),
        ("60", 10, ()): 2 * 3 * (s - s % (5 * C)),
        ("100", 8, ()): 2 * 2 * (s - s % (8 * C)),
        ("1E", 5, ()): 5 * (s - s % (2 * C)) // 2,
        ("MD10", 3, (("layout", "n2"),)): 3 * (s - s % (2 * C)) // 2,
    }
    for (name, n, opts), cap in cases.items():
        assert layout(name, n, C, **dict(opts)).capacity(s) == cap, name
    far = layout("MD10", 4, C, layout="f2").fit(s)
    assert far.capacity(s) == (s // C) // 2 * 4 // 1 * C  # md: (S div C div fc)·N div nc


# --------------------------------------------------------------------------
# registry and options
# --------------------------------------------------------------------------


def test_levels_available() -> None:
    for name in ("2", "3", "4", "01", "03", "50", "60", "100", "1E", "5E", "5EE", "6E", "MD10"):
        assert name in AVAILABLE and is_available(name.lower())
    for alias, name in (("raid4", "4"), ("0+1", "01"), ("5+0", "50"), ("raid60", "60")):
        assert canonical(alias) == name
    assert canonical("1+0+0") == "100" and canonical("raid1e") == "1E"
    assert level_options("50") == {"groups": 2}
    assert level_options("100") == {"arrays": 2, "copies": 2, "top_chunk_size": None}
    assert level_options("MD10")["far_sets"] == "original"


def test_params_round_trip() -> None:
    for cfg in SMALL:
        lay = build(cfg)
        again = layout(**lay.params)
        assert again == lay and hash(again) == hash(lay)
        assert [again.stripe(s) for s in range(3)] == [lay.stripe(s) for s in range(3)]


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        (("4", 2), {}, "RAID 4 needs at least 3 devices"),
        (("3", 2), {}, "RAID 3 needs at least 3 devices"),
        (("2", 6), {}, r"RAID 2 \(secded=False\) needs at least 7 devices"),
        (("2", 9), {}, "n_devices in 7, 15, 31"),
        (("2", 7), {"secded": True}, "needs at least 8 devices"),
        (("2", 9), {"secded": True}, "n_devices in 8, 16, 32"),
        (("01", 5), {}, "multiple of copies=2"),
        (("03", 5), {}, "RAID 03 .* needs at least 6 devices"),
        (("03", 7), {}, "multiple of width=2"),
        (("03", 6), {"width": 3}, "needs at least 9 devices"),
        (("01", 3), {}, "needs at least 4 devices"),
        (("50", 5), {}, "needs at least 6 devices"),
        (("50", 7), {}, "multiple of groups=2"),
        (("50", 8), {"groups": 1}, "groups must be ≥ 2"),
        (("60", 6), {}, "needs at least 8 devices"),
        (("100", 6), {}, "needs at least 8 devices"),
        (("100", 10), {}, "multiple of arrays·copies=4"),
        (("100", 8), {"top_chunk_size": 6000}, "multiple of chunk_size"),
        (("1E", 1), {}, "needs at least 2 devices"),
        (("5EE", 3), {}, "needs at least 4 devices"),
        (("5E", 3), {}, "needs at least 4 devices"),
        (("6E", 4), {}, "needs at least 5 devices"),
        (("5E", 5), {"absent": 7}, "absent must be a device index"),
        (("5E", 5), {"position": 3}, "a reshape goes from"),
        (("5E", 5), {"reshape_from": 1}, "reshape_from needs a position"),
        (("5EE", 5), {"compacted": 5}, "compacted must be a device index"),
        (("MD10", 3), {"layout": "f4"}, "needs at least 4 devices"),
        (("MD10", 4), {"layout": "x2"}, "mdadm name"),
        (("MD10", 4), {"layout": "n1"}, "at least 2 copies"),
        (("MD10", 4), {"layout": "n2", "far": 2}, "not both"),
        (("MD10", 4), {"far_sets": "buggy"}, "buggy variant 1 is refused"),
        (("MD10", 5), {"layout": "n2o2"}, "multiple of near"),
        (("MD10", 4), {"layout": "n2", "size": 1 << 20}, "far"),
        (("MD10", 4), {"layout": "f2", "size": 5000}, "multiple"),
        (("MD10", 4), {"offset": 1, "far": 2}, "offset must be True or False"),
    ],
)  # fmt: skip
def test_bad_options(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        layout(*args, **kwargs)


def test_unbound_far_layout_says_what_to_do() -> None:
    lay = layout("MD10", 4, C, layout="f2")
    assert lay.survives({0, 2}) and not lay.survives({0, 1})
    with pytest.raises(InvalidArgumentError, match="size="):
        lay.stripe(0)
    assert layout("MD10", 4, C, layout="o2").fit(1 << 20) == layout("MD10", 4, C, layout="o2")
