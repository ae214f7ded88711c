"""Byte identity with Intel ISA-L (Debian's libisal2, through ctypes).

ISA-L is an independent implementation: its Cauchy matrix, encode tables,
``ec_encode_data``, ``gf_invert_matrix``, ``pq_gen`` and ``xor_gen`` must give
exactly the bytes dwcore gives.  The md ``gen_syndrome`` port in the
reference is checked against ``pq_gen`` too, so md, ISA-L, the reference and
dwcore all agree.  Skipped (with the reason) where libisal2 is missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import reference as ref

from dwcore import ec
from dwcore.bench.isal import aligned_empty

U8 = np.uint8


def random_shape(rng: np.random.Generator, max_total: int = 256) -> tuple[int, int]:
    k = int(rng.integers(1, max_total))
    m = int(rng.integers(1, max_total - k + 1))
    return k, m


def isal_encode(isal: Any, k: int, m: int, data: np.ndarray) -> np.ndarray:
    matrix = isal.gf_gen_cauchy1_matrix(k, m)
    tables = isal.ec_init_tables(k, m, matrix[k:])
    out = np.zeros((m, data.shape[1]), dtype=U8)
    isal.ec_encode_data(tables, data, out)
    return out


def test_cauchy_matrix_and_tables_match_isal(isal: Any, rng: np.random.Generator) -> None:
    shapes = [(1, 1), (4, 2), (10, 4), (1, 255), (255, 1), (128, 128)]
    shapes += [random_shape(rng) for _ in range(10)]
    for k, m in shapes:
        expected = isal.gf_gen_cauchy1_matrix(k, m)
        np.testing.assert_array_equal(ec.cauchy_matrix(k, m), expected, err_msg=f"k={k} m={m}")
        rs = ec.ReedSolomon(k, m)
        np.testing.assert_array_equal(rs.matrix, expected)
        tables = isal.ec_init_tables(k, m, expected[k:])
        assert bytes(rs.encode_tables) == tables.tobytes(), f"tables differ k={k} m={m}"


@pytest.mark.parametrize("length", [1, 15, 31, 32, 33, 63, 64, 65, 127, 4097])
def test_encode_matches_isal(isal: Any, isa: str, length: int, rng: np.random.Generator) -> None:
    shapes = [(1, 1), (3, 2), (4, 4), (6, 5), (10, 4), (17, 8)]
    shapes += [random_shape(rng, 40) for _ in range(4)]
    for k, m in shapes:
        data = rng.integers(0, 256, (k, length), dtype=U8)
        np.testing.assert_array_equal(
            ec.ReedSolomon(k, m).encode(data),
            isal_encode(isal, k, m, data),
            err_msg=f"{isa} k={k} m={m} n={length}",
        )


def test_encode_wide_codes_match_isal(isal: Any, rng: np.random.Generator) -> None:
    """Random k, m up to 256 shards in all."""
    for _ in range(12):
        k, m = random_shape(rng)
        length = int(rng.choice([1, 33, 100, 1000]))
        data = rng.integers(0, 256, (k, length), dtype=U8)
        np.testing.assert_array_equal(
            ec.ReedSolomon(k, m).encode(data),
            isal_encode(isal, k, m, data),
            err_msg=f"k={k} m={m} n={length}",
        )


def test_isal_encode_with_dwcore_tables(isal: Any, rng: np.random.Generator) -> None:
    """dwcore's encode_tables drive ISA-L's ec_encode_data to the same parity."""
    for k, m in [(5, 3), (12, 4), (30, 10)]:
        rs = ec.ReedSolomon(k, m)
        data = rng.integers(0, 256, (k, 333), dtype=U8)
        out = np.zeros((m, 333), dtype=U8)
        isal.ec_encode_data(np.frombuffer(bytes(rs.encode_tables), dtype=U8), data, out)
        np.testing.assert_array_equal(out, rs.encode(data))


def test_decode_matches_isal(isal: Any, isa: str, rng: np.random.Generator) -> None:
    """ISA-L's decode (invert the survivors' rows, ec_encode_data) vs reconstruct."""
    for k, m, length in [(4, 2, 64), (10, 4, 4097), (6, 6, 33), (20, 11, 100)]:
        matrix = isal.gf_gen_cauchy1_matrix(k, m)
        data = rng.integers(0, 256, (k, length), dtype=U8)
        shards = [*data, *isal_encode(isal, k, m, data)]
        for _ in range(5):
            missing = sorted(int(x) for x in rng.choice(k + m, m, replace=False))
            survivors = [i for i in range(k + m) if i not in missing][:k]
            inverse = isal.gf_invert_matrix(matrix[survivors])
            np.testing.assert_array_equal(inverse, ref.mat_inv(matrix[survivors]))
            decode = ref.mat_mul(matrix[missing], inverse)
            tables = isal.ec_init_tables(k, len(missing), decode)
            isal_out = np.zeros((len(missing), length), dtype=U8)
            isal.ec_encode_data(tables, [shards[i] for i in survivors], isal_out)
            got = ec.ReedSolomon(k, m).reconstruct(
                [None if i in missing else s for i, s in enumerate(shards)]
            )
            for row, i in enumerate(missing):
                np.testing.assert_array_equal(got[i], isal_out[row], err_msg=f"missing={missing}")
                np.testing.assert_array_equal(got[i], shards[i])


def aligned_stripe(rng: np.random.Generator, k: int, length: int) -> np.ndarray:
    data = aligned_empty((k, length), align=64)
    data[:] = rng.integers(0, 256, (k, length), dtype=U8)
    return data


@pytest.mark.parametrize("length", [32, 64, 96, 4096, 4096 + 32, 65536])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 8, 13, 32, 100, 254])
def test_pq_matches_isal_pq_gen(
    isal: Any, isa: str, k: int, length: int, rng: np.random.Generator
) -> None:
    data = aligned_stripe(rng, k, length)
    ip, iq = aligned_empty(length), aligned_empty(length)
    isal.pq_gen(data, ip, iq)
    p, q = ec.pq_parity(data, order="md")
    np.testing.assert_array_equal(p, ip)
    np.testing.assert_array_equal(q, iq)
    # ZFS order is ISA-L's pq_gen over the reversed data list
    rev = aligned_empty((k, length))
    rev[:] = data[::-1]
    isal.pq_gen(rev, ip, iq)
    np.testing.assert_array_equal(ec.pq_parity(data, order="zfs")[1], iq)


@pytest.mark.parametrize("k", [2, 3, 7, 60, 255])
def test_md_port_matches_isal_pq_gen(isal: Any, k: int, rng: np.random.Generator) -> None:
    """The reference's Linux md gen_syndrome port is byte-identical to ISA-L."""
    length = 96
    data = aligned_stripe(rng, k, length)
    ip, iq = aligned_empty(length), aligned_empty(length)
    isal.pq_gen(data, ip, iq)
    mp, mq = ref.md_gen_syndrome(data)
    np.testing.assert_array_equal(mp, ip)
    np.testing.assert_array_equal(mq, iq)


@pytest.mark.parametrize("length", [32, 96, 4096 + 32])
@pytest.mark.parametrize("k", [2, 3, 5, 16, 255])
def test_xor_matches_isal_xor_gen(
    isal: Any, isa: str, k: int, length: int, rng: np.random.Generator
) -> None:
    data = aligned_stripe(rng, k, length)
    out = aligned_empty(length)
    isal.xor_gen(data, out)
    np.testing.assert_array_equal(ec.xor_parity(data), out)


def test_recovered_pq_stripe_matches_isal(isal: Any, rng: np.random.Generator) -> None:
    """Recover two data blocks with dwcore, re-run ISA-L's pq_gen: same P and Q."""
    k, length = 9, 4096
    data = aligned_stripe(rng, k, length)
    ip, iq = aligned_empty(length), aligned_empty(length)
    isal.pq_gen(data, ip, iq)
    got = ec.pq_recover([None, *data[1:7], None, data[8], ip, iq])
    rebuilt = aligned_empty((k, length))
    rebuilt[:] = np.stack(got[:k])
    p2, q2 = aligned_empty(length), aligned_empty(length)
    isal.pq_gen(rebuilt, p2, q2)
    np.testing.assert_array_equal(rebuilt, data)
    np.testing.assert_array_equal(p2, ip)
    np.testing.assert_array_equal(q2, iq)
