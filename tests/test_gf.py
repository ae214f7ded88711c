"""GF(2^8)/0x11D: the reference from first principles, then dwcore against it."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref

from dwcore import ec
from dwcore.errors import InvalidArgumentError

# --------------------------------------------------------------------------
# The reference itself: field axioms and known values
# --------------------------------------------------------------------------


def test_reference_table_matches_bitwise_definition() -> None:
    for a in range(256):
        for b in range(0, 256, 7):
            assert ref.MUL[a, b] == ref.gf_mul_bitwise(a, b), (a, b)


@pytest.mark.parametrize(
    ("a", "b", "product"),
    [
        (2, 0x80, 0x1D),  # the reduction: x * x^7 = x^8 = x^4+x^3+x^2+1
        (2, 0x8E, 0x01),  # 0x8e is the inverse of 2 for 0x11D
        (0x02, 0x02, 0x04),
        (0x80, 0x80, 0x13),  # x^14 mod 0x11D
        (0x53, 0xCA, 0x8F),
        (0xFF, 0xFF, 0xE2),
        (0, 0x57, 0),
        (1, 0x57, 0x57),
    ],
)
def test_reference_known_products(a: int, b: int, product: int) -> None:
    assert ref.gf_mul_bitwise(a, b) == product
    assert ref.gf_mul_bitwise(b, a) == product


def test_reference_is_a_field() -> None:
    mul = ref.MUL.astype(np.int64)
    # commutative; 1 is the identity; 0 annihilates
    assert np.array_equal(mul, mul.T)
    assert np.array_equal(mul[1], np.arange(256))
    assert not mul[0].any()
    # every non-zero element has exactly one inverse, and no zero divisors
    nz = mul[1:, 1:]
    assert (nz != 0).all()
    assert all(np.count_nonzero(row == 1) == 1 for row in nz)
    # associativity and distributivity over all a, b for a sample of c
    a = np.arange(256)[:, None]
    b = np.arange(256)[None, :]
    for c in (0, 1, 2, 3, 0x1D, 0x80, 0x8E, 0xFF):
        assert np.array_equal(mul[mul[a, b], c], mul[a, mul[b, c]])
        assert np.array_equal(mul[a ^ b, c], mul[a, c] ^ mul[b, c])


def test_reference_generator_two_has_order_255() -> None:
    powers = [ref.gf_pow(2, e) for e in range(255)]
    assert len(set(powers)) == 255  # 2 generates the multiplicative group
    assert ref.gf_pow(2, 255) == 1
    assert ref.gf_pow(2, 8) == 0x1D
    # generator 4 also has order 255 (gcd(2, 255) = 1): R coefficients never repeat
    assert len({ref.gf_pow(4, e) for e in range(255)}) == 255


def test_reference_inverse_is_a_to_the_254() -> None:
    for a in range(1, 256):
        assert ref.INV[a] == ref.gf_pow(a, 254)
        assert ref.MUL[a, ref.INV[a]] == 1


def test_reference_matrix_inverse_round_trip(rng: np.random.Generator) -> None:
    for n in (1, 2, 5, 17):
        while True:
            m = rng.integers(0, 256, (n, n), dtype=np.uint8)
            try:
                inv = ref.mat_inv(m)
            except ref.SingularMatrixError:
                continue
            break
        assert np.array_equal(ref.mat_mul(m, inv), np.eye(n, dtype=np.uint8))
        assert np.array_equal(ref.mat_mul(inv, m), np.eye(n, dtype=np.uint8))
    with pytest.raises(ref.SingularMatrixError):
        ref.mat_inv(np.array([[1, 2], [2, 4]], dtype=np.uint8))  # row 2 = 2·row 1


# --------------------------------------------------------------------------
# dwcore scalar helpers
# --------------------------------------------------------------------------


def test_gf_mul_full_table() -> None:
    table = np.array([[ec.gf_mul(a, b) for b in range(256)] for a in range(256)], dtype=np.uint8)
    mismatches = np.argwhere(table != ref.MUL)
    assert mismatches.size == 0, f"gf_mul differs at (a, b) = {mismatches[:5].tolist()}"


def test_gf_inv_all() -> None:
    for a in range(1, 256):
        assert ec.gf_inv(a) == ref.INV[a], a
        assert ec.gf_mul(a, ec.gf_inv(a)) == 1


@pytest.mark.parametrize("bad", [-1, 256, 1.0, "2", None])
def test_gf_mul_rejects_non_bytes(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        ec.gf_mul(bad, 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        ec.gf_mul(3, bad)  # type: ignore[arg-type]


def test_gf_inv_of_zero_is_an_error() -> None:
    with pytest.raises(InvalidArgumentError, match="0"):
        ec.gf_inv(0)


# --------------------------------------------------------------------------
# Cauchy matrix
# --------------------------------------------------------------------------

CAUCHY_SHAPES = [
    (1, 1),
    (1, 255),
    (2, 1),
    (4, 2),
    (6, 3),
    (10, 4),
    (17, 3),
    (64, 64),
    (128, 128),
    (200, 56),
    (255, 1),
]


@pytest.mark.parametrize(("k", "m"), CAUCHY_SHAPES)
def test_cauchy_matrix_equals_reference(k: int, m: int) -> None:
    got = ec.cauchy_matrix(k, m)
    assert got.dtype == np.uint8
    assert got.shape == (k + m, k)
    np.testing.assert_array_equal(got, ref.cauchy_matrix(k, m))


def test_cauchy_matrix_small_golden() -> None:
    # k=2, m=2: rows [inv(2), inv(3)] and [inv(3), inv(2)] under 0x11D.
    expected = np.array([[1, 0], [0, 1], [0x8E, 0xF4], [0xF4, 0x8E]], dtype=np.uint8)
    np.testing.assert_array_equal(ec.cauchy_matrix(2, 2), expected)


@pytest.mark.parametrize(("k", "m"), [(3, 3), (5, 4), (6, 6)])
def test_cauchy_matrix_is_mds(k: int, m: int) -> None:
    """Every k x k sub-matrix of the generator is invertible (exhaustive)."""
    from itertools import combinations

    a = ec.cauchy_matrix(k, m)
    for rows in combinations(range(k + m), k):
        assert ref.matrix_rank(a[list(rows)]) == k, rows


@pytest.mark.parametrize(("k", "m"), CAUCHY_SHAPES)
def test_reed_solomon_matrix_and_tables(k: int, m: int) -> None:
    rs = ec.ReedSolomon(k, m)
    assert (rs.k, rs.m) == (k, m)
    np.testing.assert_array_equal(rs.matrix, ref.cauchy_matrix(k, m))
    # ISA-L ec_init_tables layout: 32 bytes per coefficient, c*x for the low
    # nibble x then c*(x<<4) for the high nibble, coefficient (i, j) at (i*k+j)*32.
    tables = np.frombuffer(bytes(rs.encode_tables), dtype=np.uint8)
    assert tables.size == m * k * 32
    nib = np.arange(16, dtype=np.uint8)
    for i in {0, m - 1}:
        for j in {0, k // 2, k - 1}:
            c = ref.cauchy_matrix(k, m)[k + i, j]
            t = tables[(i * k + j) * 32 : (i * k + j + 1) * 32]
            np.testing.assert_array_equal(t[:16], ref.MUL[c][nib])
            np.testing.assert_array_equal(t[16:], ref.MUL[c][nib << 4])
