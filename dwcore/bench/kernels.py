"""One kernel configuration: its contenders (dwcore, ISA-L, memcpy) and its cross-check.

Operations, all on the same buffer sets (data rows, then parity rows):

* ``encode`` — Reed-Solomon parity: dwcore ``ReedSolomon.encode_into``,
  ISA-L ``ec_encode_data`` with tables built once;
* ``decode`` — the first m data shards lost: dwcore
  ``ReedSolomon.reconstruct_into``, ISA-L ``ec_encode_data`` over the k
  survivors with the inverted survivor matrix's tables built once (as ISA-L's
  own ``erasure_code_perf`` does);
* ``pq`` — RAID-6 P+Q (md order): ``pq_parity_into`` vs ``pq_gen``;
* ``xor`` — RAID-5 parity: ``xor_parity_into`` vs ``xor_gen``.

The memcpy anchor copies the same k × fragment data bytes with ``memmove``.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dwcore.bench.arena import Rotation, hot_set
from dwcore.bench.isal import Isal
from dwcore.bench.timing import Batch, Contender
from dwcore.ec import ReedSolomon, pq_parity, pq_parity_into, xor_parity, xor_parity_into
from dwcore.errors import DWError, InvalidArgumentError

__all__ = [
    "ISAL_FUNCTIONS",
    "OPS",
    "KernelConfig",
    "VerificationError",
    "contenders",
    "decode_tables",
    "dwcore_calls",
    "encode_tables",
    "format_size",
    "isal_calls",
    "memcpy_calls",
    "rotating_batch",
    "verify",
]

OPS = ("encode", "decode", "pq", "xor")

Call = Callable[[], object]


class VerificationError(DWError):
    """dwcore's output differs from ISA-L's (or the reference's) for a configuration."""


def format_size(nbytes: int) -> str:
    """``4096`` -> ``"4 KiB"``, ``1048576`` -> ``"1 MiB"``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift} {unit}"
    return f"{nbytes} B"


@dataclass(frozen=True)
class KernelConfig:
    """An operation on k data and m parity fragments of ``fragment`` bytes each."""

    op: str
    k: int
    m: int
    fragment: int
    cold: bool

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise InvalidArgumentError(f"op must be one of {', '.join(OPS)}, got {self.op!r}")
        fixed = {"pq": 2, "xor": 1}.get(self.op)
        if fixed is not None and self.m != fixed:
            raise InvalidArgumentError(f"{self.op} has m = {fixed}, got {self.m}")
        if self.op == "decode" and self.m > self.k:
            raise InvalidArgumentError(f"decode loses m = {self.m} data shards; needs m <= k")

    @property
    def rows(self) -> int:
        """Rows of one buffer set (data, then parity)."""
        return self.k + self.m

    @property
    def data_bytes(self) -> int:
        """Payload counted per call: k × fragment."""
        return self.k * self.fragment

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``encode 10+4 64 KiB out-of-cache``."""
        where = "out-of-cache" if self.cold else "in-cache"
        return f"{self.op} {self.k}+{self.m} {format_size(self.fragment)} {where}"


def rotating_batch(calls: Sequence[Call], rotation: Rotation) -> Batch:
    """A batch that makes ``count`` calls, walking ``calls`` from the shared cursor."""
    n = len(calls)

    def run(count: int) -> None:
        pos = rotation.position
        for _ in range(count):
            calls[pos]()
            pos += 1
            if pos == n:
                pos = 0
        rotation.position = pos

    return run


def _missing(config: KernelConfig) -> tuple[int, ...]:
    return tuple(range(config.m))


def dwcore_calls(config: KernelConfig, sets: Sequence[np.ndarray]) -> list[Call]:
    """One zero-argument dwcore call per buffer set, through the public API."""
    k = config.k
    if config.op == "encode":
        rs = ReedSolomon(k, config.m)
        return [functools.partial(rs.encode_into, s[:k], s[k:]) for s in sets]
    if config.op == "decode":
        rs = ReedSolomon(k, config.m)
        missing = _missing(config)
        return [functools.partial(rs.reconstruct_into, s, missing) for s in sets]
    if config.op == "pq":
        return [functools.partial(pq_parity_into, s[:k], s[k], s[k + 1]) for s in sets]
    return [functools.partial(xor_parity_into, s[:k], s[k]) for s in sets]


def encode_tables(isal: Isal, k: int, m: int) -> np.ndarray:
    """ISA-L tables of the m parity rows of the (k+m) x k Cauchy matrix."""
    return isal.ec_init_tables(k, m, isal.gf_gen_cauchy1_matrix(k, m)[k:])


def decode_tables(isal: Isal, k: int, m: int) -> np.ndarray:
    """ISA-L tables that rebuild data shards 0..m-1 from shards m..k+m-1."""
    survivors = isal.gf_gen_cauchy1_matrix(k, m)[m : m + k]
    inverse = isal.gf_invert_matrix(survivors)
    return isal.ec_init_tables(k, m, inverse[:m])


#: ISA-L's dispatching function for each operation (decode is ``ec_encode_data`` too).
ISAL_FUNCTIONS = {
    "encode": "ec_encode_data",
    "decode": "ec_encode_data",
    "pq": "pq_gen",
    "xor": "xor_gen",
}


def isal_calls(
    isal: Isal, config: KernelConfig, sets: Sequence[np.ndarray], symbol: str | None = None
) -> list[Call]:
    """One prepared ISA-L call per buffer set (tables and pointer arrays built now).

    ``symbol`` calls one of ISA-L's per-instruction-set entry points (such as
    ``"ec_encode_data_base"``) instead of the dispatching function of
    :data:`ISAL_FUNCTIONS`; the caller makes sure the CPU can run it.
    """
    k, m = config.k, config.m
    fn = symbol or ISAL_FUNCTIONS[config.op]
    if config.op == "encode":
        tables = encode_tables(isal, k, m)
        return [isal.prepare_encode(tables, s[:k], s[k:], fn) for s in sets]
    if config.op == "decode":
        tables = decode_tables(isal, k, m)
        return [isal.prepare_encode(tables, s[m:], s[:m], fn) for s in sets]
    if config.op == "pq":
        return [isal.prepare_pq(s[:k], s[k], s[k + 1], fn) for s in sets]
    return [isal.prepare_xor(s[:k], s[k], fn) for s in sets]


def memcpy_calls(
    config: KernelConfig, sets: Sequence[np.ndarray], targets: Sequence[np.ndarray]
) -> list[Call]:
    """One ``memmove`` of the k data rows of each set into its target."""
    n = config.data_bytes
    return [
        functools.partial(ctypes.memmove, t.ctypes.data, s.ctypes.data, n)
        for s, t in zip(sets, targets, strict=True)
    ]


def contenders(
    config: KernelConfig,
    sets: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    isal: Isal | None,
) -> list[Contender]:
    """dwcore, then ISA-L (when loaded), then memcpy, sharing one rotation cursor."""
    rotation = Rotation()
    nbytes = config.data_bytes
    dwcore = rotating_batch(dwcore_calls(config, sets), rotation)
    out = [Contender.of_batch("dwcore", dwcore, nbytes)]
    if isal is not None:
        batch = rotating_batch(isal_calls(isal, config, sets), rotation)
        out.append(Contender.of_batch("isal", batch, nbytes))
    memcpy = rotating_batch(memcpy_calls(config, sets, targets), rotation)
    out.append(Contender.of_batch("memcpy", memcpy, nbytes))
    return out


# ----------------------------------------------------------------------
# Verification, once per configuration, outside any timing
# ----------------------------------------------------------------------


def _require_equal(got: np.ndarray, want: np.ndarray, config: KernelConfig, what: str) -> None:
    if np.array_equal(got, want):
        return
    diff = np.argwhere(got != want)[0]
    raise VerificationError(
        f"{config.label}: {what} mismatch at index {tuple(int(i) for i in diff)} "
        f"(got {int(got[tuple(diff)])}, expected "
        f"{int(want[tuple(diff)])}); the benchmark refuses to time wrong output"
    )


def _mul2(x: np.ndarray) -> np.ndarray:
    return (x << 1) ^ ((x >> 7) * np.uint8(0x1D))


def _reference_pq(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P and Q (md order) by Horner's rule in numpy: independent of both libraries."""
    q = np.zeros(data.shape[1], dtype=np.uint8)
    for row in data[::-1]:
        q = _mul2(q) ^ row
    return np.bitwise_xor.reduce(data, axis=0), q


def _verify_rs(config: KernelConfig, data: np.ndarray, isal: Isal | None) -> str:
    k, m = config.k, config.m
    rs = ReedSolomon(k, m)
    full = hot_set(k + m, config.fragment, seed=5)
    full[:k] = data
    rs.encode_into(full[:k], full[k:])
    if isal is not None:
        theirs = np.empty_like(full[k:])
        isal.ec_encode_data(encode_tables(isal, k, m), full[:k], theirs)
        _require_equal(full[k:], theirs, config, "dwcore parity vs ISA-L ec_encode_data")
    work = full.copy()
    work[:m] = 0
    rs.reconstruct_into(work, _missing(config))
    _require_equal(work[:m], data[:m], config, "dwcore reconstruct_into vs original data")
    if isal is not None:
        work[:m] = 0
        isal.ec_encode_data(decode_tables(isal, k, m), work[m:], work[:m])
        _require_equal(work[:m], data[:m], config, "ISA-L decode of dwcore parity vs original data")
        return "isal"
    return "roundtrip"


def _verify_raid(config: KernelConfig, data: np.ndarray, isal: Isal | None) -> str:
    ref = "numpy reference" if isal is None else f"ISA-L {config.op}_gen"
    theirs = hot_set(2, config.fragment, seed=6)
    if config.op == "pq":
        ours = pq_parity(data)
        if isal is None:
            want = _reference_pq(data)
        else:
            isal.pq_gen(data, theirs[0], theirs[1])
            want = (theirs[0], theirs[1])
        _require_equal(np.stack(ours), np.stack(want), config, f"dwcore P+Q vs {ref}")
    else:
        ours_x = xor_parity(data)
        if isal is None:
            want_x = np.bitwise_xor.reduce(data, axis=0)
        else:
            isal.xor_gen(data, theirs[0])
            want_x = theirs[0]
        _require_equal(ours_x, want_x, config, f"dwcore XOR vs {ref}")
    return "reference" if isal is None else "isal"


def verify(config: KernelConfig, isal: Isal | None) -> str:
    """Check dwcore's output for ``config`` on fresh random data; return how it was checked.

    Raises :class:`VerificationError` on any mismatch.
    """
    data = hot_set(config.k, config.fragment, seed=4)
    if config.op in ("encode", "decode"):
        return _verify_rs(config, data, isal)
    return _verify_raid(config, data, isal)
