"""Every bad input raises a dwcore error whose message names the argument."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

import dwcore.native
from dwcore import ec
from dwcore.errors import (
    DataLossError,
    DWError,
    InvalidArgumentError,
    TooFewShardsError,
    UnsupportedISAError,
)

U8 = np.uint8


def read_only(shape: tuple[int, ...]) -> np.ndarray:
    a = np.zeros(shape, dtype=U8)
    a.flags.writeable = False
    return a


def test_hierarchy() -> None:
    assert issubclass(InvalidArgumentError, DWError)
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(DataLossError, DWError)
    assert issubclass(TooFewShardsError, DataLossError)
    assert issubclass(UnsupportedISAError, DWError)
    assert not issubclass(DataLossError, ValueError)
    assert ec.TooFewShardsError is TooFewShardsError


def raises_naming(call: Callable[[], object], name: str) -> str:
    """``call`` raises InvalidArgumentError whose message names ``name``."""
    with pytest.raises(InvalidArgumentError) as info:
        call()
    msg = str(info.value)
    assert re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", msg), (
        f"message does not name {name!r}: {msg!r}"
    )
    return msg


# --------------------------------------------------------------------------
# Code shape
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "m", "name"),
    [
        (0, 2, "k"),
        (-1, 2, "k"),
        (2, 0, "m"),
        (2, -3, "m"),
        (200, 57, "256"),
        (256, 1, "256"),
        (1, 256, "256"),
        (True, 2, "k"),
        (2.0, 2, "k"),
        ("4", 2, "k"),
        (4, None, "m"),
    ],
)
def test_reed_solomon_shape(k: object, m: object, name: str) -> None:
    raises_naming(lambda: ec.ReedSolomon(k, m), name)  # type: ignore[arg-type]


def test_cauchy_matrix_shape() -> None:
    raises_naming(lambda: ec.cauchy_matrix(0, 1), "k")
    raises_naming(lambda: ec.cauchy_matrix(250, 7), "256")


# --------------------------------------------------------------------------
# Data buffers
# --------------------------------------------------------------------------

rs32 = ec.ReedSolomon(3, 2)
GOOD = np.zeros((3, 8), dtype=U8)


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("unequal lengths", [b"a" * 8, b"b" * 8, b"c" * 7]),
        ("too few buffers", [b"a" * 8, b"b" * 8]),
        ("too many buffers", [b"a" * 8] * 4),
        ("float64 array", np.zeros((3, 8))),
        ("int8 array", np.zeros((3, 8), dtype=np.int8)),
        ("uint16 rows", [np.zeros(8, dtype=np.uint16)] * 3),
        ("1-D array", np.zeros(8, dtype=U8)),
        ("3-D array", np.zeros((3, 8, 1), dtype=U8)),
        ("2-D array with 4 rows", np.zeros((4, 8), dtype=U8)),
        ("str items", ["abcdefgh"] * 3),
        ("None item", [b"a" * 8, None, b"c" * 8]),
        ("int items", [1, 2, 3]),
        ("single bytes object", b"a" * 24),
        ("non-contiguous rows", [np.zeros(16, dtype=U8)[::2]] * 3),
        ("Fortran-order array", np.asfortranarray(np.zeros((3, 8), dtype=U8))),
    ],
)
def test_encode_bad_data(label: str, data: object) -> None:
    raises_naming(lambda: rs32.encode(data), "data")  # type: ignore[arg-type]
    raises_naming(lambda: rs32.encode_into(data, np.zeros((2, 8), U8)), "data")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "out"),
    [
        ("bytes", [b"x" * 8, b"y" * 8]),
        ("read-only memoryview", [bytearray(8), memoryview(b"y" * 8)]),
        ("read-only 2-D array", read_only((2, 8))),
        ("read-only rows", [np.zeros(8, U8), read_only((8,))]),
        ("wrong length", [bytearray(7), bytearray(7)]),
        ("wrong count", [bytearray(8)]),
        ("wrong count 2-D", np.zeros((3, 8), U8)),
        ("non-contiguous", [np.zeros(16, U8)[::2], bytearray(8)]),
        ("float output", np.zeros((2, 8), np.float32)),
    ],
)
def test_encode_into_bad_output(label: str, out: object) -> None:
    raises_naming(lambda: rs32.encode_into(GOOD, out), "parity_out")


def test_read_only_output_is_invalid_argument_not_bare_value_error() -> None:
    """A read-only numpy output must raise InvalidArgumentError, like bytes does."""
    with pytest.raises(InvalidArgumentError):
        rs32.encode_into(GOOD, read_only((2, 8)))
    with pytest.raises(InvalidArgumentError):
        ec.xor_parity_into([b"ab", b"cd"], read_only((2,)))
    with pytest.raises(InvalidArgumentError):
        ec.pq_parity_into([b"ab", b"cd"], np.zeros(2, U8), read_only((2,)))


# --------------------------------------------------------------------------
# Reconstruct
# --------------------------------------------------------------------------


def stripe() -> list[np.ndarray]:
    data = np.arange(24, dtype=U8).reshape(3, 8)
    return [*data, *rs32.encode(data)]


def test_reconstruct_bad_shards() -> None:
    s = stripe()
    raises_naming(lambda: rs32.reconstruct(s[:4]), "shards")
    raises_naming(lambda: rs32.reconstruct([*s, s[0]]), "shards")
    raises_naming(lambda: rs32.reconstruct([s[0], None, s[2][:7], s[3], s[4]]), "shards")
    raises_naming(
        lambda: rs32.reconstruct([s[0], None, s[2].astype(np.uint16), s[3], s[4]]), "shards"
    )
    raises_naming(lambda: rs32.reconstruct(b"".join(x.tobytes() for x in s)), "shards")  # type: ignore[arg-type]


def test_reconstruct_too_few_shards() -> None:
    s = stripe()
    with pytest.raises(TooFewShardsError) as info:
        rs32.reconstruct([None, s[1], None, s[3], None])
    err = info.value
    assert isinstance(err, DataLossError)
    assert err.failed == (0, 2, 4)
    msg = str(err)
    assert "3" in msg and "2" in msg, msg  # how many are missing and how many are tolerated


def test_reconstruct_into_bad_arguments() -> None:
    s = stripe()
    work = [x.copy() for x in s]
    raises_naming(lambda: rs32.reconstruct_into(work[:4], [1]), "shards")
    raises_naming(lambda: rs32.reconstruct_into(work, [5]), "missing")
    raises_naming(lambda: rs32.reconstruct_into(work, [-1]), "missing")
    raises_naming(lambda: rs32.reconstruct_into(work, ["1"]), "missing")  # type: ignore[list-item]
    # the buffer to overwrite is read-only: the message names it by its shard index
    ro = [*work[:1], read_only((8,)), *work[2:]]
    raises_naming(lambda: rs32.reconstruct_into(ro, [1]), "shards[1]")
    as_bytes = [x.tobytes() for x in s]
    raises_naming(lambda: rs32.reconstruct_into(as_bytes, [4]), "shards[4]")
    # a None that is not listed as missing
    raises_naming(lambda: rs32.reconstruct_into([None, *work[1:]], [1]), "shards[0]")
    with pytest.raises(TooFewShardsError):
        rs32.reconstruct_into(work, [0, 1, 2])


def test_verify_bad_shards() -> None:
    s = stripe()
    raises_naming(lambda: rs32.verify(s[:4]), "shards")
    raises_naming(lambda: rs32.verify([s[0], s[1], s[2][:7], s[3], s[4]]), "shards")


# --------------------------------------------------------------------------
# RAID parity
# --------------------------------------------------------------------------


def test_parity_bad_data() -> None:
    for fn in (ec.xor_parity, ec.pq_parity, ec.pqr_parity):
        raises_naming(lambda fn=fn: fn([]), "data")  # type: ignore[misc]
        raises_naming(lambda fn=fn: fn([b"ab", b"a"]), "data")  # type: ignore[misc]
        raises_naming(lambda fn=fn: fn(np.zeros((2, 4), np.float64)), "data")  # type: ignore[misc]
        raises_naming(lambda fn=fn: fn([b"ab", None]), "data")  # type: ignore[misc]
    # 255 data blocks is the P+Q(+R) limit (2^255 = 1)
    raises_naming(lambda: ec.pq_parity(np.zeros((256, 4), U8)), "data")
    raises_naming(lambda: ec.pqr_parity(np.zeros((256, 4), U8)), "data")


def test_parity_into_bad_outputs() -> None:
    data = [b"ab", b"cd"]
    raises_naming(lambda: ec.xor_parity_into(data, b"xx"), "out")
    raises_naming(lambda: ec.xor_parity_into(data, bytearray(3)), "out")
    raises_naming(lambda: ec.pq_parity_into(data, b"xx", bytearray(2)), "p")
    raises_naming(lambda: ec.pq_parity_into(data, bytearray(2), b"xx"), "q")
    raises_naming(lambda: ec.pq_parity_into(data, bytearray(2), bytearray(3)), "q")
    raises_naming(lambda: ec.pqr_parity_into(data, bytearray(2), bytearray(2), b"xx"), "r")
    raises_naming(lambda: ec.pqr_parity_into(data, bytearray(1), bytearray(2), bytearray(2)), "p")


@pytest.mark.parametrize("bad", ["raid", "MD", "", None, 1])
def test_unknown_order(bad: object) -> None:
    data = [b"ab", b"cd"]
    raises_naming(lambda: ec.pq_parity(data, order=bad), "order")  # type: ignore[arg-type]
    raises_naming(lambda: ec.pqr_parity(data, order=bad), "order")  # type: ignore[arg-type]
    p, q, r = (bytearray(2) for _ in range(3))
    raises_naming(lambda: ec.pq_parity_into(data, p, q, order=bad), "order")  # type: ignore[arg-type]
    raises_naming(lambda: ec.pqr_parity_into(data, p, q, r, order=bad), "order")  # type: ignore[arg-type]
    raises_naming(lambda: ec.pq_recover([b"ab", None, b"cd", b"ef"], order=bad), "order")  # type: ignore[arg-type]
    raises_naming(lambda: ec.pqr_recover([b"ab", None, b"cd", b"ef", b"gh"], order=bad), "order")  # type: ignore[arg-type]


def test_recover_shard_counts() -> None:
    raises_naming(lambda: ec.xor_recover([b"a"]), "shards")
    raises_naming(lambda: ec.pq_recover([b"a", b"b"]), "shards")
    raises_naming(lambda: ec.pqr_recover([b"a", b"b", b"c"]), "shards")
    raises_naming(lambda: ec.pq_recover([b"a", None, b"bb", b"c"]), "shards")


@pytest.mark.parametrize(
    ("fn", "shards"),
    [
        (ec.xor_recover, [None, None, b"a"]),
        (ec.pq_recover, [None, None, None, b"a"]),
        (ec.pq_recover, [b"a", None, None, None, b"a"]),
        (ec.pqr_recover, [None, None, None, None, b"a"]),
        (ec.pqr_recover, [b"a", b"a", None, None, None, None]),
    ],
)
def test_recover_too_many_missing(
    fn: Callable[[list[object]], object], shards: list[object]
) -> None:
    with pytest.raises(TooFewShardsError) as info:
        fn(shards)
    assert info.value.failed == tuple(i for i, s in enumerate(shards) if s is None)


def test_recover_into_bad_arguments() -> None:
    shards = [bytearray(b"ab"), bytearray(b"cd"), bytearray(2), bytearray(2)]
    raises_naming(lambda: ec.pq_recover_into(shards, [4]), "missing")
    raises_naming(lambda: ec.xor_recover_into(shards[:3], [3]), "missing")
    ro = [b"ab", b"cd", bytearray(2), bytearray(2)]
    raises_naming(lambda: ec.pq_recover_into(ro, [0, 1]), "shards[0]")
    raises_naming(lambda: ec.pq_recover_into(ro, [1, 2]), "shards[1]")
    raises_naming(lambda: ec.xor_recover_into(ro[:3], [0]), "shards[0]")
    ro_q = [bytearray(b"ab"), bytearray(b"cd"), bytearray(2), b"xx"]
    raises_naming(lambda: ec.pq_recover_into(ro_q, [2, 3]), "shards[3]")
    ro5 = [bytearray(2), bytearray(2), b"xx", bytearray(2), bytearray(2)]
    raises_naming(lambda: ec.pqr_recover_into(ro5, [2]), "shards[2]")


# --------------------------------------------------------------------------
# Instruction-set selection
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["bogus", "avx512", "sse2", ""])
def test_set_isa_unknown_name(bad: str) -> None:
    before = dwcore.native.active_isa()
    raises_naming(lambda: dwcore.native.set_isa(bad), "isa")
    with pytest.raises(InvalidArgumentError), dwcore.native.force_isa(bad):
        pass
    assert dwcore.native.active_isa() == before


@pytest.mark.parametrize("bad", [None, 2, b"avx2"])
def test_set_isa_wrong_type(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        dwcore.native.set_isa(bad)  # type: ignore[arg-type]


def test_set_isa_unsupported_here() -> None:
    available = dwcore.native.available_isas()
    missing = [i for i in dwcore.native.isa_names() if i not in available]
    if not missing:
        pytest.skip("this CPU runs every instruction set dwcore knows")
    before = dwcore.native.active_isa()
    with pytest.raises(UnsupportedISAError, match=missing[-1]):
        dwcore.native.set_isa(missing[-1])
    assert dwcore.native.active_isa() == before


@pytest.mark.parametrize("odd", [(True,), (1.0,), (np.int64(1),)])
def test_missing_validation_does_not_depend_on_history(odd: tuple[object, ...]) -> None:
    """An index spelling is accepted or rejected the same before and after a cached decode."""
    s = stripe()

    def attempt(rs: ec.ReedSolomon) -> str:
        work = [x.copy() for x in s]
        work[1][:] = 0
        try:
            rs.reconstruct_into(work, odd)  # type: ignore[arg-type]
        except InvalidArgumentError:
            return "rejected"
        assert all(np.array_equal(w, x) for w, x in zip(work, s, strict=True))
        return "accepted"

    fresh = attempt(ec.ReedSolomon(3, 2))
    warm = ec.ReedSolomon(3, 2)
    work = [x.copy() for x in s]
    warm.reconstruct_into(work, (1,))  # caches the decode plan for shard 1
    assert attempt(warm) == fresh, f"{odd!r}: {fresh} on a fresh code, not after a cached decode"


def test_unequal_lengths_rejected_wherever_they_are() -> None:
    """Any one shard of a different length is an error, even one the decode would not read."""
    k, m, n = 3, 2, 8
    rs = ec.ReedSolomon(k, m)
    data = np.arange(k * n, dtype=U8).reshape(k, n)
    good = [*data, *rs.encode(data)]
    for odd in range(k + m):
        for missing in ([0], [1], [k], [0, k + 1]):
            work = [bytearray(x.tobytes()) for x in good]
            work[odd] = bytearray(n + 1)
            raises_naming(lambda w=work, mi=missing: rs.reconstruct_into(w, mi), f"shards[{odd}]")
            if odd not in missing:
                erased = [None if i in missing else w for i, w in enumerate(work)]
                raises_naming(lambda e=erased: rs.reconstruct(e), f"shards[{odd}]")


@pytest.mark.parametrize("kind", ["xor", "pq", "pqr"])
def test_recover_into_unequal_lengths_name_the_shard(kind: str) -> None:
    k, n = 3, 8
    data = np.arange(k * n, dtype=U8).reshape(k, n)
    if kind == "xor":
        parity: list[np.ndarray] = [ec.xor_parity(data)]
        recover = ec.xor_recover_into
    elif kind == "pq":
        parity = list(ec.pq_parity(data))
        recover = ec.pq_recover_into
    else:
        parity = list(ec.pqr_parity(data))
        recover = ec.pqr_recover_into
    good = [*data, *parity]
    for odd in range(len(good)):
        for missing in ([0], [k], [0, 1][: len(parity)]):
            work = [bytearray(x.tobytes()) for x in good]
            work[odd] = bytearray(n - 1)
            raises_naming(lambda w=work, mi=missing: recover(w, mi), f"shards[{odd}]")
