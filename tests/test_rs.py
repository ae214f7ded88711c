"""Reed-Solomon: every ISA path against the pure-Python reference and scalar."""

from __future__ import annotations

import mmap
from itertools import combinations

import numpy as np
import pytest
import reference as ref
from buffers import LENGTHS, misaligned, misaligned_rows

import dwcore.native
from dwcore.ec import ReedSolomon
from dwcore.errors import DataLossError, TooFewShardsError

U8 = np.uint8


def random_data(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    return rng.integers(0, 256, (k, n), dtype=U8)


def scalar_encode(rs: ReedSolomon, data: np.ndarray) -> np.ndarray:
    with dwcore.native.force_isa("scalar"):
        return rs.encode(data)


# --------------------------------------------------------------------------
# Encode
# --------------------------------------------------------------------------

# (k, m): every group size of the SIMD kernels (1..4 outputs per pass, then
# blocks of 4), a single data shard, and wide codes.
SHAPES = [
    (1, 1),
    (1, 5),
    (2, 1),
    (3, 2),
    (4, 3),
    (4, 4),
    (5, 5),
    (6, 3),
    (7, 6),
    (10, 4),
    (12, 9),
    (17, 3),
    (20, 8),
    (32, 32),
]


@pytest.mark.parametrize("length", LENGTHS)
def test_encode_matches_reference(isa: str, length: int, rng: np.random.Generator) -> None:
    for k, m in SHAPES:
        data = random_data(rng, k, length)
        rs = ReedSolomon(k, m)
        parity = rs.encode(data)
        assert parity.dtype == U8
        assert parity.shape == (m, length)
        expected = ref.rs_encode(k, m, data)
        np.testing.assert_array_equal(parity, expected, err_msg=f"{isa} k={k} m={m} n={length}")


@pytest.mark.parametrize(
    "length", [8191, 8192, 8193, 8225, 16384 + 95, 3 * 8192 + 1, 65536 + 33, 2 * 65536 + 1]
)
@pytest.mark.parametrize(("k", "m"), [(3, 4), (5, 5), (9, 7), (4, 9)])
def test_encode_long_blocks_match_reference(
    isa: str, k: int, m: int, length: int, rng: np.random.Generator
) -> None:
    """Lengths around the cache block the kernels walk for more than 4 outputs."""
    data = random_data(rng, k, length)
    parity = ReedSolomon(k, m).encode(data)
    np.testing.assert_array_equal(parity, ref.rs_encode(k, m, data))


def test_encode_random_shapes_match_scalar(isa: str, rng: np.random.Generator) -> None:
    for _ in range(40):
        k = int(rng.integers(1, 60))
        m = int(rng.integers(1, 20))
        length = int(rng.choice([int(rng.integers(1, 300)), int(rng.integers(300, 70000))]))
        rs = ReedSolomon(k, m)
        data = random_data(rng, k, length)
        parity = rs.encode(data)
        np.testing.assert_array_equal(
            parity, scalar_encode(rs, data), err_msg=f"k={k} m={m} n={length}"
        )


@pytest.mark.parametrize("length", [1, 31, 33, 65, 127, 4097])
def test_encode_misaligned(isa: str, length: int, rng: np.random.Generator) -> None:
    """Data and parity at every address offset 1..63, never the same for two shards."""
    k, m = 5, 6
    rs = ReedSolomon(k, m)
    data = random_data(rng, k, length)
    expected = ref.rs_encode(k, m, data)
    for offset in range(1, 64):
        din = misaligned_rows(data, [(offset + 7 * j) % 64 for j in range(k)])
        out = [misaligned(length, (offset + 13 * i + 3) % 64) for i in range(m)]
        np.testing.assert_array_equal(rs.encode(din), expected, err_msg=f"offset {offset}")
        rs.encode_into(din, out)
        np.testing.assert_array_equal(np.stack(out), expected, err_msg=f"offset {offset}")


def test_encode_does_not_write_outside_outputs(isa: str, rng: np.random.Generator) -> None:
    """Bytes just before and after each output buffer, and the inputs, are untouched."""
    k, m = 6, 6
    rs = ReedSolomon(k, m)
    for length in (1, 15, 33, 65, 4097, 8193):
        data = random_data(rng, k, length)
        data_copy = data.copy()
        canvas = rng.integers(0, 256, (m, length + 128), dtype=U8)
        before = canvas.copy()
        outs = [canvas[i, 64 : 64 + length] for i in range(m)]
        rs.encode_into(data, outs)
        np.testing.assert_array_equal(canvas[:, :64], before[:, :64])
        np.testing.assert_array_equal(canvas[:, 64 + length :], before[:, 64 + length :])
        np.testing.assert_array_equal(np.stack(outs), ref.rs_encode(k, m, data))
        np.testing.assert_array_equal(data, data_copy)


def test_encode_accepts_every_buffer_kind(rng: np.random.Generator) -> None:
    k, m, n = 4, 3, 100
    rs = ReedSolomon(k, m)
    data = random_data(rng, k, n)
    expected = ref.rs_encode(k, m, data)
    mm = mmap.mmap(-1, n)
    mm[:] = data[3].tobytes()
    kinds: list[object] = [
        data,  # (k, n) array
        list(data),  # list of 1-D arrays
        tuple(bytes(r) for r in data),
        [bytearray(r) for r in data],
        [memoryview(bytes(r)) for r in data],
        [bytes(data[0]), bytearray(data[1]), memoryview(data[2]), mm],
        memoryview(data),  # 2-D memoryview
    ]
    for d in kinds:
        np.testing.assert_array_equal(rs.encode(d), expected, err_msg=type(d).__name__)
    # Non-contiguous rows of a bigger 2-D array (row stride > length).
    wide = np.zeros((k, n + 40), dtype=U8)
    wide[:, 7 : 7 + n] = data
    np.testing.assert_array_equal(rs.encode(wide[:, 7 : 7 + n]), expected)
    # Output: a list of bytearrays, a (m, n) array, memoryviews, an mmap.
    outs_ba = [bytearray(n) for _ in range(m)]
    rs.encode_into(data, outs_ba)
    np.testing.assert_array_equal(np.array([list(b) for b in outs_ba], dtype=U8), expected)
    out2d = np.zeros((m, n), dtype=U8)
    rs.encode_into(list(data), out2d)
    np.testing.assert_array_equal(out2d, expected)
    mm_out = mmap.mmap(-1, n)
    outs_mixed = [memoryview(bytearray(n)), np.zeros(n, dtype=U8), mm_out]
    rs.encode_into(data, outs_mixed)
    np.testing.assert_array_equal(np.frombuffer(mm_out, dtype=U8), expected[2])
    np.testing.assert_array_equal(np.frombuffer(outs_mixed[0], dtype=U8), expected[0])


def test_encode_max_shards(rng: np.random.Generator) -> None:
    """k + m = 256, the GF(2^8) limit, in both directions."""
    for k, m in ((255, 1), (1, 255), (128, 128), (200, 56)):
        rs = ReedSolomon(k, m)
        data = random_data(rng, k, 9)
        parity = rs.encode(data)
        np.testing.assert_array_equal(parity, ref.rs_encode(k, m, data))


def test_encode_zero_length() -> None:
    rs = ReedSolomon(3, 2)
    parity = rs.encode([b"", b"", b""])
    assert parity.shape == (2, 0)
    shards = [b"", None, b"", None, b""]
    out = rs.reconstruct(shards)
    assert [len(s) for s in out] == [0] * 5


def test_single_data_shard_parity_is_scaled_copy(rng: np.random.Generator) -> None:
    """k = 1: parity row i is inv(1 ^ i) times the data (a known closed form)."""
    data = random_data(rng, 1, 77)
    parity = ReedSolomon(1, 4).encode(data)
    for i in range(4):
        np.testing.assert_array_equal(parity[i], ref.MUL[ref.INV[(1 + i) ^ 0]][data[0]])


# --------------------------------------------------------------------------
# Reconstruct
# --------------------------------------------------------------------------


def shards_of(rs: ReedSolomon, data: np.ndarray) -> list[np.ndarray]:
    return [*data, *ref.rs_encode(rs.k, rs.m, data)]


def erase(shards: list[np.ndarray], missing: tuple[int, ...]) -> list[np.ndarray | None]:
    return [None if i in missing else s for i, s in enumerate(shards)]


def assert_shards_equal(got: list[np.ndarray], expected: list[np.ndarray], what: str) -> None:
    assert len(got) == len(expected), what
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_array_equal(np.asarray(g), e, err_msg=f"{what}: shard {i}")


@pytest.mark.parametrize("length", [1, 15, 33, 64, 65, 129, 4097, 8193])
def test_reconstruct_random_patterns(isa: str, length: int, rng: np.random.Generator) -> None:
    for k, m in [(1, 1), (2, 2), (4, 2), (6, 3), (10, 4), (8, 8), (20, 6)]:
        rs = ReedSolomon(k, m)
        data = random_data(rng, k, length)
        shards = shards_of(rs, data)
        for _ in range(4):
            e = int(rng.integers(1, m + 1))
            missing = tuple(sorted(int(x) for x in rng.choice(k + m, e, replace=False)))
            got = rs.reconstruct(erase(shards, missing))
            assert_shards_equal(got, shards, f"{isa} k={k} m={m} n={length} missing={missing}")
            for i in missing:
                assert isinstance(got[i], np.ndarray)
                assert got[i].dtype == U8


def test_reconstruct_misaligned(isa: str, rng: np.random.Generator) -> None:
    k, m, n = 6, 4, 97
    rs = ReedSolomon(k, m)
    data = random_data(rng, k, n)
    shards = shards_of(rs, data)
    for offset in range(1, 64):
        placed = misaligned_rows(np.stack(shards), [(offset + 5 * i) % 64 for i in range(k + m)])
        missing = (offset % k, k + offset % m, (offset + 3) % (k + m))
        got = rs.reconstruct(erase(placed, missing))
        assert_shards_equal(got, shards, f"offset {offset} missing {missing}")
        # in place, into misaligned outputs filled with junk
        for i in missing:
            placed[i][:] = 0xA5
        rs.reconstruct_into(placed, missing)
        assert_shards_equal(placed, shards, f"into, offset {offset} missing {missing}")


def test_reconstruct_returns_present_shards_unchanged(rng: np.random.Generator) -> None:
    rs = ReedSolomon(3, 2)
    data = random_data(rng, 3, 50)
    shards = shards_of(rs, data)
    got = rs.reconstruct(list(shards))
    assert_shards_equal(got, shards, "nothing missing")
    inputs = [bytes(s) for s in shards]
    got = rs.reconstruct([inputs[0], None, inputs[2], inputs[3], None])
    assert_shards_equal(got, shards, "bytes in")
    # the recovered shards are fresh arrays, not aliases of each other
    got[1][:] ^= 0xFF
    np.testing.assert_array_equal(got[4], shards[4])


def test_reconstruct_into_2d_array(isa: str, rng: np.random.Generator) -> None:
    k, m, n = 5, 3, 2049
    rs = ReedSolomon(k, m)
    data = random_data(rng, k, n)
    full = np.stack(shards_of(rs, data))
    for missing in [(0,), (4, 7), (0, 1, 2), (5, 6, 7), (2, 6)]:
        work = full.copy()
        work[list(missing)] = 0x5A
        rs.reconstruct_into(work, missing)
        np.testing.assert_array_equal(work, full, err_msg=f"missing={missing}")


def test_reconstruct_into_leaves_survivors_untouched(rng: np.random.Generator) -> None:
    k, m, n = 4, 3, 300
    rs = ReedSolomon(k, m)
    shards = shards_of(rs, random_data(rng, k, n))
    work = [bytearray(s.tobytes()) for s in shards]
    work[1] = bytearray(n)
    work[5] = bytearray(n)
    rs.reconstruct_into(work, [5, 1])  # unsorted is fine
    assert [bytes(w) for w in work] == [s.tobytes() for s in shards]
    # an empty erasure list is a no-op
    rs.reconstruct_into(work, [])
    assert [bytes(w) for w in work] == [s.tobytes() for s in shards]


def test_reconstruct_large_code(rng: np.random.Generator) -> None:
    """k + m = 256 with m erasures spread over data and parity."""
    for k, m in ((128, 128), (250, 6), (10, 246)):
        rs = ReedSolomon(k, m)
        data = random_data(rng, k, 40)
        shards = [*data, *rs.encode(data)]
        missing = tuple(sorted(int(x) for x in rng.choice(k + m, m, replace=False)))
        got = rs.reconstruct(erase(shards, missing))
        assert_shards_equal(got, shards, f"k={k} m={m}")


# --------------------------------------------------------------------------
# Exhaustive erasure patterns for every (k, m) with k + m <= 12
# --------------------------------------------------------------------------


def km_pairs(max_total: int, min_total: int = 2) -> list[tuple[int, int]]:
    return [(k, n - k) for n in range(min_total, max_total + 1) for k in range(1, n)]


EXHAUSTIVE_LENGTH = 67  # one 64-byte AVX2 step + tail, four SSSE3 vectors + tail


def check_all_patterns(rs: ReedSolomon, data: np.ndarray, into: bool) -> None:
    k, m = rs.k, rs.m
    shards = [*data, *rs.encode(data)]
    np.testing.assert_array_equal(np.stack(shards[k:]), ref.rs_encode(k, m, data))
    full = np.stack(shards)
    for missing in ref.erasure_patterns(k + m, m):
        got = rs.reconstruct(erase(shards, missing))
        for i in missing:
            if not np.array_equal(got[i], shards[i]):
                pytest.fail(f"k={k} m={m} missing={missing}: shard {i} wrong")
        if into and missing:
            work = full.copy()
            work[list(missing)] = 0
            rs.reconstruct_into(work, missing)
            if not np.array_equal(work, full):
                pytest.fail(f"reconstruct_into k={k} m={m} missing={missing} wrong")


@pytest.mark.parametrize(("k", "m"), km_pairs(12))
def test_exhaustive_erasures(isa: str, k: int, m: int, rng: np.random.Generator) -> None:
    rs = ReedSolomon(k, m)
    check_all_patterns(rs, random_data(rng, k, EXHAUSTIVE_LENGTH), into=k + m <= 8)


@pytest.mark.parametrize(("k", "m"), km_pairs(12))
def test_one_more_than_tolerated_raises(k: int, m: int, rng: np.random.Generator) -> None:
    rs = ReedSolomon(k, m)
    data = random_data(rng, k, 16)
    shards = [*data, *rs.encode(data)]
    n = k + m
    for e in range(m + 1, n + 1):
        patterns = list(combinations(range(n), e))
        if e > m + 1:
            patterns = patterns[:: max(1, len(patterns) // 8)]  # a sample beyond m + 1
        for missing in patterns:
            if e == n:
                continue  # all of them: test_all_shards_missing
            with pytest.raises(TooFewShardsError) as info:
                rs.reconstruct(erase(shards, missing))
            assert isinstance(info.value, DataLossError)
            msg = str(info.value)
            assert str(e) in msg and str(m) in msg, msg
            work = np.stack(shards)
            with pytest.raises(TooFewShardsError):
                rs.reconstruct_into(work, missing)
            # nothing was overwritten on the way to the error
            np.testing.assert_array_equal(work, np.stack(shards))


@pytest.mark.parametrize(("k", "m"), [(1, 1), (1, 3), (3, 2)])
def test_all_shards_missing(k: int, m: int) -> None:
    """Every shard None is the extreme of too many missing, not a malformed call."""
    rs = ReedSolomon(k, m)
    with pytest.raises(TooFewShardsError):
        rs.reconstruct([None] * (k + m))
    work = np.zeros((k + m, 8), dtype=U8)
    with pytest.raises(TooFewShardsError):
        rs.reconstruct_into(work, range(k + m))


@pytest.mark.slow
@pytest.mark.parametrize(("k", "m"), km_pairs(16, 13))
def test_exhaustive_erasures_slow(isa: str, k: int, m: int, rng: np.random.Generator) -> None:
    rs = ReedSolomon(k, m)
    check_all_patterns(rs, random_data(rng, k, 33), into=False)


# --------------------------------------------------------------------------
# Verify
# --------------------------------------------------------------------------


def test_verify(isa: str, rng: np.random.Generator) -> None:
    for k, m, n in ((1, 1, 1), (4, 2, 33), (6, 5, 4097)):
        rs = ReedSolomon(k, m)
        shards = shards_of(rs, random_data(rng, k, n))
        assert rs.verify(shards) is True
        assert rs.verify(np.stack(shards)) is True
        for i in range(k + m):
            for pos in {0, n // 2, n - 1}:
                bad = [s.copy() for s in shards]
                bad[i][pos] ^= 1 << int(rng.integers(0, 8))
                assert rs.verify(bad) is False, (k, m, n, i, pos)
