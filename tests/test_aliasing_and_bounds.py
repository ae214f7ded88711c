"""Buffers that share memory, out-of-range dimensions and non-sequence shard lists.

Kernels read inputs while writing outputs, so an output that aliases an
input (or another output) would silently produce wrong bytes: the bindings
refuse it.  Dimensions are bounded before any size arithmetic, so huge values
cannot wrap a C int into an accepted size.
"""

from __future__ import annotations

import numpy as np
import pytest

from dwcore import _native, ec
from dwcore.errors import InvalidArgumentError


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (6, 4096), dtype=np.uint8)


def test_encode_output_aliasing_an_input_is_refused(data: np.ndarray) -> None:
    rs = ec.ReedSolomon(6, 5)
    outs = [data[0], *[np.empty(4096, np.uint8) for _ in range(4)]]
    with pytest.raises(InvalidArgumentError, match=r"parity_out\[0\] overlaps data\[0\]"):
        rs.encode_into(data, outs)


def test_encode_partial_overlap_is_refused(data: np.ndarray) -> None:
    rs = ec.ReedSolomon(4, 2)
    big = np.zeros(4096 * 2, np.uint8)
    inputs = [big[:4096], data[1], data[2], data[3]]
    with pytest.raises(InvalidArgumentError, match="overlaps"):
        rs.encode_into(inputs, [big[100 : 100 + 4096], np.empty(4096, np.uint8)])


def test_two_outputs_sharing_memory_are_refused(data: np.ndarray) -> None:
    p = np.empty(4096, np.uint8)
    with pytest.raises(InvalidArgumentError, match="q overlaps p"):
        ec.pq_parity_into(data, p, p)


@pytest.mark.parametrize("order", ["md", "zfs"])
def test_pq_output_aliasing_data_is_refused(data: np.ndarray, order: str) -> None:
    q = np.empty(4096, np.uint8)
    with pytest.raises(InvalidArgumentError, match=r"p overlaps data\[0\]"):
        ec.pq_parity_into(data, data[0], q, order=order)
    with pytest.raises(InvalidArgumentError, match=r"r overlaps data\[5\]"):
        ec.pqr_parity_into(data, np.empty(4096, np.uint8), q, data[5], order=order)


def test_xor_in_place_accumulate_is_allowed(data: np.ndarray) -> None:
    acc = data[0].copy()
    ec.xor_parity_into([acc, data[1]], acc)
    assert np.array_equal(acc, data[0] ^ data[1])
    with pytest.raises(InvalidArgumentError, match="overlaps"):
        ec.xor_parity_into([data[1], acc], acc)


def test_reconstruct_into_with_a_shard_listed_twice_is_refused(data: np.ndarray) -> None:
    rs = ec.ReedSolomon(4, 2)
    shards = [*data[:4], *rs.encode(data[:4])]
    shards[5] = shards[0]  # the same buffer as a survivor and as the lost shard
    with pytest.raises(InvalidArgumentError, match=r"shards\[5\] overlaps shards\[0\]"):
        rs.reconstruct_into(shards, [5])


def test_raid6_recovery_refuses_shared_members(data: np.ndarray) -> None:
    p, q = ec.pq_parity(data)
    shards = [*data.copy(), p, q]
    shards[3] = shards[2]
    with pytest.raises(InvalidArgumentError, match="share memory"):
        ec.pq_recover_into(shards, [0, 1])


@pytest.mark.parametrize(
    "call",
    [
        lambda: _native.init_tables(b"", 65536, 65536),
        lambda: _native.matrix_mul(b"", b"", 65536, 65536, 65536),
        lambda: _native.ec_encode_rows(
            b"\0" * (400 * 32), 400, 1, np.zeros((401, 64), np.uint8), tuple(range(400)), (400,)
        ),
    ],
    ids=["init_tables", "matrix_mul", "ec_encode_rows"],
)
def test_huge_dimensions_are_refused_before_size_arithmetic(call: object) -> None:
    with pytest.raises(InvalidArgumentError):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    "call",
    [
        lambda: ec.ReedSolomon(2, 1).reconstruct(None),  # type: ignore[arg-type]
        lambda: ec.pq_recover(5),  # type: ignore[arg-type]
        lambda: ec.xor_recover(None),  # type: ignore[arg-type]
        lambda: ec.pqr_recover(object()),  # type: ignore[arg-type]
    ],
    ids=["rs", "pq", "xor", "pqr"],
)
def test_non_sequence_shards_are_an_invalid_argument(call: object) -> None:
    with pytest.raises(InvalidArgumentError, match="shards"):
        call()  # type: ignore[operator]
