"""dwcore.checksum: CRC-32C, ZFS Fletcher-4, batch calls, BLAKE3 and CRC-32 wrappers.

Every native path (each instruction set this CPU runs, via the ``isa``
fixture) is checked against the scalar kernel and against the pure-Python
references of checksum_reference.py on odd lengths (around every vector,
step, threshold and chunk boundary of the kernels), random misalignment and
running values split at random points; against the RFC 3720 vectors;
against ISA-L's ``crc32_iscsi`` and ``google_crc32c`` where installed; and
batch calls against per-block calls.
"""

from __future__ import annotations

import array
import json
import os
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import blake3 as blake3_pkg
import checksum_reference as ref
import numpy as np
import pytest
from buffers import misaligned
from hypothesis import given
from hypothesis import strategies as st

import dwcore.native
from dwcore import checksum
from dwcore._native import bench_loop
from dwcore.bench.checksum import isal_crc32_iscsi_address
from dwcore.errors import InvalidArgumentError

# Lengths around the kernels' edges: 8-byte words, the short path's bit
# runs, the 3-stream path (200+), tails after fused chunks (72+), a fused
# step (104 B with VPCLMULQDQ, 128 B with PCLMULQDQ), the fused threshold
# (1100), a full chunk (227 steps of 104 B, 170 of 128 B) and beyond.
LENGTHS = (
    0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 63, 64, 65, 71, 72,
    73, 95, 96, 103, 104, 105, 127, 128, 129, 159, 160, 161, 199, 200, 201, 255, 256, 257,
    383, 384, 511, 1023, 1024, 1099, 1100, 1101, 1280, 2047, 2048, 4095, 4096, 4097, 8191,
    21759, 21760, 21761, 23607, 23608, 23609, 47291, 54475, 65536, 65537,
)  # fmt: skip
BIG = (1 << 20) + 3
RFC3720 = [  # RFC 3720 appendix B.4
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
]
TESTS = Path(__file__).parent


def random_bytes(rng: np.random.Generator, n: int) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def placed(data: bytes, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``data`` at a random address offset (mod 64)."""
    if not data:
        return np.zeros(0, dtype=np.uint8)
    return misaligned(len(data), int(rng.integers(0, 64)), np.frombuffer(data, dtype=np.uint8))


@pytest.fixture(scope="module")
def big() -> tuple[bytes, int, tuple[int, int, int, int]]:
    """One 1 MiB + 3 input with its reference CRC-32C and Fletcher-4 (of the first BIG-3 bytes)."""
    data = np.random.default_rng(20240611).integers(0, 256, BIG, dtype=np.uint8).tobytes()
    return data, ref.crc32c_table(data), ref.fletcher4_closed(data[: BIG - 3])


# --------------------------------------------------------------------------
# The references themselves
# --------------------------------------------------------------------------


def test_references_agree(rng: np.random.Generator) -> None:
    for n in (0, 1, 5, 64, 300):
        data = random_bytes(rng, n)
        init = int(rng.integers(0, 2**32))
        assert ref.crc32c_bitwise(data, init) == ref.crc32c_table(data, init)
    for n in (0, 4, 64, 1024):
        data = random_bytes(rng, n)
        assert ref.fletcher4_loop(data) == ref.fletcher4_closed(data)


# --------------------------------------------------------------------------
# CRC-32C
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), RFC3720, ids=[f"{c:#010x}" for _, c in RFC3720])
def test_crc32c_known_vectors(isa: str, data: bytes, expected: int) -> None:
    assert ref.crc32c_bitwise(data) == expected
    assert checksum.crc32c(data) == expected
    assert checksum.crc32c(bytearray(data)) == expected
    assert checksum.crc32c(np.frombuffer(data, dtype=np.uint8)) == expected
    assert checksum.CRC32C_CHECK == 0xE3069283


def test_crc32c_every_length_and_alignment(isa: str, rng: np.random.Generator) -> None:
    for n in LENGTHS:
        data = random_bytes(rng, n)
        init = int(rng.integers(0, 2**32))
        view = placed(data, rng)
        got = checksum.crc32c(view, init)
        assert got == ref.crc32c_ref(data, init), f"{isa} n={n}"
        with dwcore.native.force_isa("scalar"):
            assert checksum.crc32c(view, init) == got, f"{isa} vs scalar n={n}"
        if n:
            assert checksum.crc32c(view) == ref.crc32c_ref(data), f"{isa} n={n} from 0"


def test_crc32c_big_buffer(isa: str, big: tuple[bytes, int, Any], rng: np.random.Generator) -> None:
    data, expected, _ = big
    assert checksum.crc32c(data) == expected
    assert checksum.crc32c(placed(data, rng)) == expected


def test_crc32c_chaining(isa: str, rng: np.random.Generator) -> None:
    for n in (1, 9, 100, 1000, 5000, 30000, 70000):
        data = random_bytes(rng, n)
        whole = checksum.crc32c(data)
        for _ in range(4):
            cut = int(rng.integers(0, n + 1))
            assert checksum.crc32c(data[cut:], checksum.crc32c(data[:cut])) == whole
            assert checksum.crc32c(data[cut:], value=checksum.crc32c(data[:cut])) == whole
        # three pieces, through memoryviews (no copies)
        mv = memoryview(data)
        a, b = sorted(int(x) for x in rng.integers(0, n + 1, 2))
        crc = checksum.crc32c(mv[:a])
        crc = checksum.crc32c(mv[a:b], crc)
        assert checksum.crc32c(mv[b:], crc) == whole


def test_crc32c_combine(rng: np.random.Generator) -> None:
    for na, nb in ((0, 0), (0, 10), (10, 0), (3, 5), (1000, 4097), (70000, 12345)):
        a, b = random_bytes(rng, na), random_bytes(rng, nb)
        got = checksum.crc32c_combine(checksum.crc32c(a), checksum.crc32c(b), nb)
        assert got == checksum.crc32c(a + b)


def test_crc32c_matches_isal(isa: str, isal: Any, rng: np.random.Generator) -> None:
    for n in (*LENGTHS[::3], 300000):
        data = random_bytes(rng, n)
        init = int(rng.integers(0, 2**32))
        view = placed(data, rng)
        assert checksum.crc32c(view, init) == isal.crc32c(data, init), f"{isa} n={n}"


def test_crc32c_matches_google_crc32c(rng: np.random.Generator) -> None:
    google_crc32c = pytest.importorskip("google_crc32c")
    for n in (0, 1, 31, 4096, 65537):
        data = random_bytes(rng, n)
        assert checksum.crc32c(data) == google_crc32c.value(data)
        assert checksum.crc32c(data, 0x12345678) == google_crc32c.extend(0x12345678, data)


def test_crc32c_accepts_buffers_as_raw_bytes() -> None:
    words = np.arange(1000, dtype=np.uint32)
    raw = words.tobytes()
    expected = ref.crc32c_table(raw)
    for obj in (words, memoryview(words), words.view(np.float32), array.array("I", raw), raw):
        assert checksum.crc32c(obj) == expected
    assert checksum.crc32c(np.zeros((10, 100), dtype=np.uint8)) == ref.crc32c_table(bytes(1000))
    assert checksum.crc32c(b"") == 0
    assert checksum.crc32c(b"", 0xDEADBEEF) == 0xDEADBEEF


def test_bench_loop_runs_the_kernels(isal: Any) -> None:
    sets = [bytes([i]) * 1000 for i in range(3)]
    crcs = [checksum.crc32c(s) for s in sets]
    digest, nxt = bench_loop("crc32c", sets, 4, start=2)
    assert nxt == 0 and digest == crcs[2] ^ crcs[0] ^ crcs[1] ^ crcs[2]
    assert bench_loop("crc32c", sets, 3)[0] == crcs[0] ^ crcs[1] ^ crcs[2]
    f4 = bench_loop("fletcher4", sets[:1], 1)[0]
    assert f4 == checksum.fletcher4(sets[0])[3]
    raw = bench_loop("isal_crc32_iscsi", sets[:1], 1, fn=isal_crc32_iscsi_address(isal))[0]
    assert raw ^ 0xFFFFFFFF == crcs[0]
    with pytest.raises(InvalidArgumentError, match="op must be one of"):
        bench_loop("md5", sets, 1)
    with pytest.raises(InvalidArgumentError, match="fn must be"):
        bench_loop("isal_crc32_iscsi", sets, 1)


# --------------------------------------------------------------------------
# Batch calls
# --------------------------------------------------------------------------


@pytest.mark.parametrize("block_size", [1, 3, 64, 200, 512, 4096, 4100, 30000])
def test_crc32c_blocks_match_single_calls(
    isa: str, block_size: int, rng: np.random.Generator
) -> None:
    for count in (0, 1, 7, 40 if block_size <= 4100 else 3):
        n = count * block_size
        data = random_bytes(rng, n)
        view = placed(data, rng)
        crcs = checksum.crc32c_blocks(view, block_size)
        assert crcs.dtype == np.uint32 and crcs.shape == (count,)
        expected = [
            ref.crc32c_ref(data[i * block_size : (i + 1) * block_size]) for i in range(count)
        ]
        assert crcs.tolist() == expected, f"{isa} block_size={block_size} count={count}"
        out = np.full(count, 7, dtype=np.uint32)
        assert checksum.crc32c_blocks_into(view, block_size, out) is out
        assert out.tolist() == expected


def test_crc32c_blocks_many_4k_blocks(isa: str, rng: np.random.Generator) -> None:
    data = random_bytes(rng, 4096 * 1500)
    crcs = checksum.crc32c_blocks(data, 4096)
    mv = memoryview(data)
    assert crcs.tolist() == [checksum.crc32c(mv[i : i + 4096]) for i in range(0, len(data), 4096)]
    with dwcore.native.force_isa("scalar"):
        assert checksum.crc32c_blocks(data, 4096).tolist() == crcs.tolist()


def test_verify_blocks_finds_exactly_the_corrupt_blocks(isa: str, rng: np.random.Generator) -> None:
    for block_size, count in ((4096, 300), (512, 1000), (33, 50), (4096, 1)):
        buf = rng.integers(0, 256, block_size * count, dtype=np.uint8)
        expected = checksum.crc32c_blocks(buf, block_size)
        assert checksum.verify_blocks(buf, block_size, expected).tolist() == []
        bad = sorted({int(i) for i in rng.integers(0, count, max(1, count // 20))})
        for i in bad:  # flip one random bit in each chosen block
            pos = i * block_size + int(rng.integers(0, block_size))
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        found = checksum.verify_blocks(buf, block_size, expected)
        assert found.dtype == np.int64
        assert found.tolist() == bad
        # expected as other integer containers
        assert checksum.verify_blocks(buf, block_size, expected.tolist()).tolist() == bad
        assert checksum.verify_blocks(buf, block_size, expected.astype(np.int64)).tolist() == bad
        as_array = array.array("I", expected.tolist())
        assert checksum.verify_blocks(buf, block_size, as_array).tolist() == bad


def test_verify_blocks_empty_buffer() -> None:
    assert checksum.verify_blocks(b"", 4096, []).tolist() == []
    assert checksum.crc32c_blocks(b"", 4096).shape == (0,)


def test_batch_argument_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="multiple of block_size"):
        checksum.crc32c_blocks(bytes(4097), 4096)
    with pytest.raises(InvalidArgumentError, match="buf holds 10 bytes"):
        checksum.verify_blocks(bytes(10), 4, [0, 0])
    for bad_size in (0, -4, 1.5, True, None):
        with pytest.raises(InvalidArgumentError, match="block_size"):
            checksum.crc32c_blocks(bytes(8), bad_size)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"expected holds 3 values, .*per block: 2"):
        checksum.verify_blocks(bytes(8), 4, np.zeros(3, dtype=np.uint32))
    with pytest.raises(InvalidArgumentError, match="expected"):
        checksum.verify_blocks(bytes(8), 4, [0, -1])
    with pytest.raises(InvalidArgumentError, match="expected"):
        checksum.verify_blocks(bytes(8), 4, [0, 2**32])
    with pytest.raises(InvalidArgumentError, match="expected"):
        checksum.verify_blocks(bytes(8), 4, np.zeros(2, dtype=np.float64))
    with pytest.raises(InvalidArgumentError, match="expected"):
        checksum.verify_blocks(bytes(8), 4, [[0], [0]])
    with pytest.raises(InvalidArgumentError, match="out holds 1 values"):
        checksum.crc32c_blocks_into(bytes(8), 4, np.zeros(1, dtype=np.uint32))
    with pytest.raises(InvalidArgumentError, match="out must hold native uint32"):
        checksum.crc32c_blocks_into(bytes(8), 4, np.zeros(2, dtype=np.int64))
    with pytest.raises(InvalidArgumentError, match="out must be a writable"):
        checksum.crc32c_blocks_into(bytes(8), 4, bytes(8))
    readonly = np.zeros(2, dtype=np.uint32)
    readonly.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="out must be a writable"):
        checksum.crc32c_blocks_into(bytes(8), 4, readonly)
    with pytest.raises(InvalidArgumentError, match="buf must be a bytes-like"):
        checksum.crc32c_blocks("abcd", 4)  # type: ignore[arg-type]
    shared = np.zeros(4, dtype=np.uint32)
    with pytest.raises(InvalidArgumentError, match="out overlaps buf"):
        checksum.crc32c_blocks_into(shared, 4, shared)


# --------------------------------------------------------------------------
# Fletcher-4
# --------------------------------------------------------------------------


def test_fletcher4_hand_derived() -> None:
    # Words 1, 2, 3, 4: a = 1, 3, 6, 10; b = 1, 4, 10, 20; c = 1, 5, 15, 35;
    # d = 1, 6, 21, 56.
    data = np.array([1, 2, 3, 4], dtype=np.uint32).tobytes()
    assert checksum.fletcher4(data) == (10, 20, 35, 56)
    # Two words of 0xFFFFFFFF = W: a = W, 2W; b = W, 3W; c = W, 4W; d = W, 5W.
    w = 0xFFFFFFFF
    assert checksum.fletcher4(b"\xff" * 8) == (2 * w, 3 * w, 4 * w, 5 * w)
    assert checksum.fletcher4(b"") == (0, 0, 0, 0)
    assert checksum.fletcher4_bytes(data) == np.array([10, 20, 35, 56], "<u8").tobytes()


def test_fletcher4_every_length_and_alignment(isa: str, rng: np.random.Generator) -> None:
    for n in sorted({x & ~3 for x in LENGTHS} | {4 * k for k in range(40)}):
        data = random_bytes(rng, n)
        view = placed(data, rng)
        got = checksum.fletcher4(view)
        expected = ref.fletcher4_loop(data) if n <= 4096 else ref.fletcher4_closed(data)
        assert got == expected, f"{isa} n={n}"
        with dwcore.native.force_isa("scalar"):
            assert checksum.fletcher4(view) == got


def test_fletcher4_big_and_wrapping(isa: str, big: tuple[bytes, int, Any]) -> None:
    data, _, expected = big
    assert checksum.fletcher4(memoryview(data)[: BIG - 3]) == expected
    ones = b"\xff" * (1 << 20)  # every accumulator but a wraps modulo 2^64
    assert checksum.fletcher4(ones) == ref.fletcher4_closed(ones)
    assert max(ref.fletcher4_closed(ones)) < 2**64


def test_fletcher4_continues_a_previous_value(isa: str, rng: np.random.Generator) -> None:
    for n in (0, 4, 64, 1000, 8192, 40004):
        data = random_bytes(rng, n)
        whole = checksum.fletcher4(data)
        for _ in range(3):
            cut = 4 * int(rng.integers(0, n // 4 + 1))
            assert checksum.fletcher4(data[cut:], checksum.fletcher4(data[:cut])) == whole
    init = tuple(int(x) for x in rng.integers(0, 2**63, 4))
    data = random_bytes(rng, 400)
    assert checksum.fletcher4(data, init) == ref.fletcher4_loop(data, init)  # type: ignore[arg-type]
    top = (2**64 - 1,) * 4
    assert checksum.fletcher4(data, top) == ref.fletcher4_loop(data, top)


@pytest.mark.parametrize("block_size", [4, 64, 4096])
def test_fletcher4_blocks(isa: str, block_size: int, rng: np.random.Generator) -> None:
    count = 37
    data = random_bytes(rng, block_size * count)
    sums = checksum.fletcher4_blocks(data, block_size)
    assert sums.dtype == np.uint64 and sums.shape == (count, 4)
    for i in range(count):
        block = data[i * block_size : (i + 1) * block_size]
        assert tuple(int(x) for x in sums[i]) == checksum.fletcher4(block)


def test_fletcher4_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="multiple of 4"):
        checksum.fletcher4(b"abc")
    with pytest.raises(InvalidArgumentError, match="value must be a previous Fletcher-4"):
        checksum.fletcher4(b"abcd", (1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"value\[2\]"):
        checksum.fletcher4(b"abcd", (1, 2, -3, 4))
    with pytest.raises(InvalidArgumentError, match=r"value\[3\]"):
        checksum.fletcher4(b"abcd", (1, 2, 3, 2**64))
    with pytest.raises(InvalidArgumentError, match="block_size must be a multiple of 4"):
        checksum.fletcher4_blocks(bytes(12), 6)
    with pytest.raises(InvalidArgumentError, match="data must be a bytes-like"):
        checksum.fletcher4([1, 2, 3, 4])  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Argument errors, dispatch and threads
# --------------------------------------------------------------------------


def test_crc32c_argument_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="data must be a bytes-like object"):
        checksum.crc32c("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="data must be a bytes-like object"):
        checksum.crc32c(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="data must be a C-contiguous buffer"):
        checksum.crc32c(np.zeros(10, dtype=np.uint8)[::2])
    for value in (-1, 2**32, 1.0, "0", True, None):
        with pytest.raises(InvalidArgumentError, match=r"value must be an int in 0\.\.0xFFFFFFFF"):
            checksum.crc32c(b"x", value)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="crc_b"):
        checksum.crc32c_combine(0, -5, 3)
    with pytest.raises(InvalidArgumentError, match="length_b"):
        checksum.crc32c_combine(0, 0, -1)
    assert issubclass(InvalidArgumentError, ValueError)


def test_crc32c_value_accepts_int_subclasses_and_numpy_ints() -> None:
    expected = checksum.crc32c(b"abc", 12345)
    assert checksum.crc32c(b"abc", np.uint32(12345)) == expected  # via __index__
    assert checksum.crc32c(b"abc", 0xFFFFFFFF) == ref.crc32c_bitwise(b"abc", 0xFFFFFFFF)


def test_kernels_follow_force_isa() -> None:
    for isa in dwcore.native.available_isas():
        with dwcore.native.force_isa(isa):
            impl = checksum.implementations()
            if isa in ("scalar", "ssse3"):
                assert impl == {"crc32c": "scalar", "fletcher4": "scalar"}
            elif isa == "sse42":
                assert impl == {"crc32c": "sse42", "fletcher4": "scalar"}
            else:
                assert impl["crc32c"] in ("sse42", "vpclmul")
                assert impl["fletcher4"] == "avx2"


@pytest.mark.parametrize("force", ["scalar", "sse42"])
def test_dwcore_force_isa_environment(force: str) -> None:
    if force not in dwcore.native.available_isas():
        pytest.skip(f"{force} cannot run here")
    code = (
        "import json, dwcore.checksum as c, dwcore.native as n\n"
        "print(json.dumps([n.active_isa(), c.implementations(), c.crc32c(b'123456789')]))\n"
    )
    env = {**os.environ, "DWCORE_FORCE_ISA": force}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=TESTS, capture_output=True, text=True,
        timeout=120, check=True,
    ).stdout  # fmt: skip
    active, impl, check = json.loads(out)
    assert active == force
    assert impl["crc32c"] == ("scalar" if force == "scalar" else "sse42")
    assert impl["fletcher4"] == "scalar"
    assert check == 0xE3069283


def test_concurrent_calls_from_threads(rng: np.random.Generator) -> None:
    bufs = [random_bytes(rng, 1 << 18) for _ in range(8)]
    expected = [ref.crc32c_table(b[:4096]) for b in bufs]
    full = [checksum.crc32c(b) for b in bufs]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(checksum.crc32c, bufs)) == full
        heads = pool.map(lambda b: int(checksum.crc32c_blocks(b, 4096)[0]), bufs)
        assert list(heads) == expected


# --------------------------------------------------------------------------
# Guard pages: no kernel reads one byte outside its buffer
# --------------------------------------------------------------------------

_GUARD_CODE = """
import sys
import numpy as np
from buffers import GuardedArena
import checksum_reference as ref
import dwcore.native
from dwcore import checksum

lengths = [1, 3, 7, 8, 15, 16, 31, 63, 64, 65, 71, 72, 104, 127, 159, 160, 199, 200, 255,
           1100, 1280, 4095, 4096, 4097, 23609, 27201]
rng = np.random.default_rng(7)
arena = GuardedArena(2 * len(lengths), max(lengths))
for isa in dwcore.native.available_isas():
    with dwcore.native.force_isa(isa):
        arena.reset()
        for n in lengths:
            data = rng.integers(0, 256, n, dtype=np.uint8)
            crc = ref.crc32c_table(data.tobytes())
            for view in (arena.at_end(n, data), arena.at_start(n, data)):
                if checksum.crc32c(view) != crc:
                    sys.exit(f"{isa}: crc32c wrong at n={n}")
                if n % 4 == 0 and checksum.fletcher4(view) != ref.fletcher4_loop(data.tobytes()):
                    sys.exit(f"{isa}: fletcher4 wrong at n={n}")
                if checksum.crc32c_blocks(view, n).tolist() != [crc]:
                    sys.exit(f"{isa}: crc32c_blocks wrong at n={n}")
print("ok")
"""


def test_kernels_stay_inside_their_buffers() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _GUARD_CODE], cwd=TESTS, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"guard-page run failed with status {proc.returncode} (negative: killed by that "
        f"signal, i.e. a kernel touched a guard page)\n{proc.stderr[-2000:]}"
    )
    assert proc.stdout.strip() == "ok"


# --------------------------------------------------------------------------
# BLAKE3 and CRC-32 wrappers
# --------------------------------------------------------------------------


def test_blake3_matches_the_package(rng: np.random.Generator) -> None:
    for n in (0, 1, 1024, 1025, 100000):
        data = random_bytes(rng, n)
        assert checksum.blake3(data) == blake3_pkg.blake3(data).digest()
    data = random_bytes(rng, 5000)
    key = bytes(range(32))
    assert checksum.blake3(data, key=key) == blake3_pkg.blake3(data, key=key).digest()
    assert checksum.blake3(data, length=64) == blake3_pkg.blake3(data).digest(64)
    assert checksum.blake3(data, max_threads=blake3_pkg.blake3.AUTO) == checksum.blake3(data)
    words = np.frombuffer(data, dtype=np.uint32)  # any dtype is hashed as its raw bytes
    assert checksum.blake3(words) == checksum.blake3(data)
    assert checksum.blake3(bytearray(data)) == checksum.blake3(data)


def test_blake3_hasher_is_incremental(rng: np.random.Generator) -> None:
    data = random_bytes(rng, 10000)
    h = checksum.blake3_hasher(data[:3000])
    h.update(data[3000:])
    assert h.digest() == checksum.blake3(data)
    keyed = checksum.blake3_hasher(key=b"k" * 32)
    keyed.update(data)
    assert keyed.digest() == checksum.blake3(data, key=b"k" * 32)
    assert checksum.blake3_hasher(np.frombuffer(data, np.uint16)).digest() == h.digest()


def test_blake3_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="key must be exactly 32 bytes"):
        checksum.blake3(b"x", key=b"short")
    with pytest.raises(InvalidArgumentError, match="max_threads"):
        checksum.blake3(b"x", max_threads=0)
    with pytest.raises(InvalidArgumentError, match="length"):
        checksum.blake3(b"x", length=0)
    with pytest.raises(InvalidArgumentError, match="data must be a bytes-like"):
        checksum.blake3("text")
    with pytest.raises(InvalidArgumentError, match="C-contiguous"):
        checksum.blake3(np.zeros(8, np.uint32)[::2])


def test_crc32_is_zlibs(rng: np.random.Generator) -> None:
    for n in (0, 1, 100, 65537):
        data = random_bytes(rng, n)
        assert checksum.crc32(data) == zlib.crc32(data)
        assert checksum.crc32(data, 0xABCDEF) == zlib.crc32(data, 0xABCDEF)
    words = np.arange(100, dtype=np.uint32)
    assert checksum.crc32(words) == zlib.crc32(words.tobytes())
    with pytest.raises(InvalidArgumentError, match="value"):
        checksum.crc32(b"x", -1)
    with pytest.raises(InvalidArgumentError, match="data must be a bytes-like"):
        checksum.crc32("text")


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


@given(st.binary(max_size=3000), st.binary(max_size=3000), st.integers(0, 2**32 - 1))
def test_property_crc32c_chains_and_combines(a: bytes, b: bytes, init: int) -> None:
    whole = checksum.crc32c(a + b, init)
    assert checksum.crc32c(b, checksum.crc32c(a, init)) == whole
    assert whole == ref.crc32c_table(a + b, init)
    assert checksum.crc32c_combine(checksum.crc32c(a), checksum.crc32c(b), len(b)) == (
        checksum.crc32c(a + b)
    )


@given(st.binary(max_size=2000).map(lambda b: b[: len(b) & ~3]), st.integers(0, 500))
def test_property_fletcher4_concatenates(data: bytes, cut_words: int) -> None:
    cut = min(4 * cut_words, len(data))
    assert checksum.fletcher4(data[cut:], checksum.fletcher4(data[:cut])) == (
        ref.fletcher4_loop(data)
    )


@given(st.integers(1, 600), st.integers(0, 12), st.data())
def test_property_blocks_equal_single_calls(block_size: int, count: int, data: Any) -> None:
    buf = data.draw(st.binary(min_size=block_size * count, max_size=block_size * count))
    crcs = checksum.crc32c_blocks(buf, block_size)
    singles = [checksum.crc32c(buf[i : i + block_size]) for i in range(0, len(buf), block_size)]
    assert crcs.tolist() == singles
    corrupt = data.draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=count))
    expected = crcs.copy()
    for i in corrupt:
        expected[i] ^= 1
    assert checksum.verify_blocks(buf, block_size, expected).tolist() == sorted(corrupt)
