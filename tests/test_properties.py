"""Hypothesis round trips beyond the exhaustive range (k + m up to 256).

Example counts come from the profile in conftest.py (modest by default,
deeper with DWCORE_SLOW_TESTS=1).
"""

from __future__ import annotations

import numpy as np
import reference as ref
from hypothesis import given
from hypothesis import strategies as st

import dwcore.native
from dwcore import ec

U8 = np.uint8
ISAS = st.sampled_from(dwcore.native.available_isas())


def make_data(k: int, length: int, seed: int) -> np.ndarray:
    """Random stripe from a seed (so a falsifying example prints compactly)."""
    return np.random.default_rng(seed).integers(0, 256, (k, length), dtype=U8)


RSCase = tuple[int, int, int, int, list[int]]  # k, m, length, seed, missing


@st.composite
def rs_case(draw: st.DrawFn, max_total: int = 256) -> RSCase:
    k = draw(st.integers(1, max_total - 1))
    m = draw(st.integers(1, max_total - k))
    length = draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2**32 - 1))
    e = draw(st.integers(0, m))
    missing = draw(st.lists(st.integers(0, k + m - 1), min_size=e, max_size=e, unique=True))
    return k, m, length, seed, sorted(missing)


@given(case=rs_case(), isa=ISAS)
def test_rs_round_trip(case: RSCase, isa: str) -> None:
    k, m, length, seed, missing = case
    data = make_data(k, length, seed)
    rs = ec.ReedSolomon(k, m)
    with dwcore.native.force_isa(isa):
        parity = rs.encode(data)
        shards = [*data, *parity]
        got = rs.reconstruct([None if i in missing else s for i, s in enumerate(shards)])
    for i in missing:
        np.testing.assert_array_equal(got[i], shards[i], err_msg=f"k={k} m={m} missing={missing}")
    assert rs.verify(got)


@given(case=rs_case(max_total=48), isa=ISAS)
def test_rs_encode_matches_reference(case: RSCase, isa: str) -> None:
    k, m, length, seed, _ = case
    data = make_data(k, length, seed)
    with dwcore.native.force_isa(isa):
        parity = ec.ReedSolomon(k, m).encode(data)
    np.testing.assert_array_equal(parity, ref.rs_encode(k, m, data))


@given(case=rs_case(max_total=40), isa=ISAS)
def test_rs_reconstruct_matches_reference_decoder(case: RSCase, isa: str) -> None:
    """dwcore vs the reference's own matrix-inversion decoder on the same survivors."""
    k, m, length, seed, missing = case
    data = make_data(k, length, seed)
    shards = [*data, *ref.rs_encode(k, m, data)]
    erased = [None if i in missing else s for i, s in enumerate(shards)]
    with dwcore.native.force_isa(isa):
        got = ec.ReedSolomon(k, m).reconstruct(erased)
    expected = ref.rs_decode(k, m, erased)
    for i in range(k + m):
        np.testing.assert_array_equal(got[i], expected[i])


ParityCase = tuple[int, int, int, list[int], str]  # k, length, seed, missing, order


@st.composite
def parity_case(draw: st.DrawFn, tolerated: int) -> ParityCase:
    k = draw(st.integers(1, 255))
    length = draw(st.integers(1, 100))
    seed = draw(st.integers(0, 2**32 - 1))
    e = draw(st.integers(0, tolerated))
    missing = draw(st.lists(st.integers(0, k + tolerated - 1), min_size=e, max_size=e, unique=True))
    order = draw(st.sampled_from(ref.ORDERS))
    return k, length, seed, sorted(missing), order


@given(case=parity_case(2), isa=ISAS)
def test_pq_round_trip(case: ParityCase, isa: str) -> None:
    k, length, seed, missing, order = case
    data = make_data(k, length, seed)
    with dwcore.native.force_isa(isa):
        p, q = ec.pq_parity(data, order=order)
        shards = [*data, p, q]
        got = ec.pq_recover(
            [None if i in missing else s for i, s in enumerate(shards)], order=order
        )
    ep, eq = ref.pq_parity(data, order)
    np.testing.assert_array_equal(p, ep)
    np.testing.assert_array_equal(q, eq)
    for i in range(k + 2):
        np.testing.assert_array_equal(got[i], shards[i], err_msg=f"k={k} {order} missing={missing}")


@given(case=parity_case(3), isa=ISAS)
def test_pqr_round_trip(case: ParityCase, isa: str) -> None:
    k, length, seed, missing, order = case
    data = make_data(k, length, seed)
    with dwcore.native.force_isa(isa):
        p, q, r = ec.pqr_parity(data, order=order)
        shards = [*data, p, q, r]
        got = ec.pqr_recover(
            [None if i in missing else s for i, s in enumerate(shards)], order=order
        )
    for g, e in zip((p, q, r), ref.pqr_parity(data, order), strict=True):
        np.testing.assert_array_equal(g, e)
    for i in range(k + 3):
        np.testing.assert_array_equal(got[i], shards[i], err_msg=f"k={k} {order} missing={missing}")


@given(case=parity_case(1), isa=ISAS)
def test_xor_round_trip(case: ParityCase, isa: str) -> None:
    k, length, seed, missing, _ = case
    data = make_data(k, length, seed)
    with dwcore.native.force_isa(isa):
        p = ec.xor_parity(data)
        shards = [*data, p]
        got = ec.xor_recover([None if i in missing else s for i, s in enumerate(shards)])
    np.testing.assert_array_equal(p, ref.xor_parity(data))
    for i in range(len(shards)):
        np.testing.assert_array_equal(got[i], shards[i])


@given(a=st.integers(0, 255), b=st.integers(0, 255), c=st.integers(0, 255))
def test_gf_field_laws(a: int, b: int, c: int) -> None:
    mul = ec.gf_mul
    assert mul(a, b) == ref.gf_mul_bitwise(a, b)
    assert mul(a, mul(b, c)) == mul(mul(a, b), c)
    assert mul(a, b ^ c) == mul(a, b) ^ mul(a, c)
    if a:
        assert mul(ec.gf_inv(a), mul(a, b)) == b
