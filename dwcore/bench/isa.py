"""What each instruction set buys: dwcore's kernels on every path this CPU runs, and ISA-L's.

For each operation of :data:`ISA_OPS` at :data:`ISA_FRAGMENT`, in cache,
dwcore's public call is timed under every instruction set of
:func:`dwcore.native.available_isas` (each batch runs inside
:func:`~dwcore.native.force_isa`, which restores the previous set), next to
ISA-L's entry point for the same level: ``*_base`` (ISA-L's scalar C) for
scalar, ``*_sse`` for SSSE3 and ``*_avx2`` for AVX2 (``xor_gen_avx`` for
XOR: ISA-L has no AVX2 ``xor_gen``).  All of them are timed round-robin in
the same repetitions, so dwcore's SIMD ÷ scalar speedup can be read against
ISA-L's own ``avx2 ÷ base``.  The bar the issue sets: the AVX2 Reed-Solomon
path at least :data:`RS_SIMD_TARGET` times the scalar one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from dwcore.bench.arena import Rotation, hot_set
from dwcore.bench.isal import Isal
from dwcore.bench.kernels import (
    ISAL_FUNCTIONS,
    KernelConfig,
    VerificationError,
    dwcore_calls,
    isal_calls,
    rotating_batch,
    verify,
)
from dwcore.bench.results import IsaRow
from dwcore.bench.timing import Batch, Contender, measure_interleaved
from dwcore.native import available_isas, force_isa

__all__ = [
    "ISA_FRAGMENT",
    "ISA_OPS",
    "RS_SIMD_TARGET",
    "isa_configs",
    "isal_symbol",
    "measure_isas",
]

#: (op, k, m) measured per instruction set: RS encode 10+4 and 4+2, P+Q and XOR on 8 disks.
ISA_OPS: tuple[tuple[str, int, int], ...] = (
    ("encode", 10, 4),
    ("encode", 4, 2),
    ("pq", 8, 2),
    ("xor", 8, 1),
)
#: Fragment size of the per-ISA runs (in cache).
ISA_FRAGMENT = 64 << 10
#: The issue's bar for the AVX2 Reed-Solomon path over the scalar one (ISA-L's is ~90×).
RS_SIMD_TARGET = 20.0

#: ISA-L's suffix for each dwcore instruction set, and the /proc/cpuinfo flags that
#: ISA-L's variant needs beyond what dwcore's own detection of that set guarantees.
_ISAL_LEVELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "scalar": ("base", ()),
    "ssse3": ("sse", ("sse4_1",)),
    "avx2": ("avx2", ()),
}
#: ISA-L has no AVX2 xor_gen; its AVX one is what it dispatches to on AVX2 CPUs.
_XOR_AVX2_SUFFIX = "avx"


def isa_configs(fragment: int = ISA_FRAGMENT) -> list[KernelConfig]:
    """The in-cache configurations of :data:`ISA_OPS`."""
    return [KernelConfig(op, k, m, fragment, cold=False) for op, k, m in ISA_OPS]


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU flags Linux reports (empty where /proc/cpuinfo cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def isal_symbol(isal: Isal, op: str, isa: str) -> str | None:
    """ISA-L's entry point for ``op`` at dwcore's level ``isa``, if exported and runnable here.

    ``isa`` must be one this CPU runs (from :func:`~dwcore.native.available_isas`).

    >>> isal_symbol(load_isal(), "encode", "scalar")       # doctest: +SKIP
    'ec_encode_data_base'
    """
    level = _ISAL_LEVELS.get(isa)
    if level is None:
        return None
    suffix, flags = level
    if op == "xor" and suffix == "avx2":
        suffix = _XOR_AVX2_SUFFIX
    name = f"{ISAL_FUNCTIONS[op]}_{suffix}"
    if not isal.has_symbol(name) or not set(flags) <= _cpu_flags():
        return None
    return name


def _verify_isal_variant(config: KernelConfig, isal: Isal, symbol: str) -> None:
    """ISA-L's ``symbol`` must write the bytes dwcore writes, on the same input."""
    ours = hot_set(config.rows, config.fragment, seed=11)
    theirs = hot_set(config.rows, config.fragment, seed=11)
    dwcore_calls(config, [ours])[0]()
    isal_calls(isal, config, [theirs], symbol)[0]()
    if not np.array_equal(ours, theirs):
        row, col = (int(i) for i in np.argwhere(ours != theirs)[0])
        raise VerificationError(
            f"{config.label}: ISA-L {symbol} differs from dwcore at row {row}, byte {col}; "
            "the benchmark refuses to time wrong output"
        )


def _forced(isa: str, batch: Batch) -> Batch:
    """``batch`` run with dwcore's kernels switched to ``isa`` (restored afterwards)."""

    def run(count: int) -> None:
        with force_isa(isa):
            batch(count)

    return run


def measure_isas(
    config: KernelConfig,
    isal: Isal | None,
    repeats: int,
    target_ns: int,
    isas: Sequence[str] | None = None,
) -> list[IsaRow]:
    """One row per instruction set for ``config`` (in cache), all timed interleaved.

    Every path is verified first: dwcore against ISA-L (or the reference)
    under each forced set, and each ISA-L variant against dwcore.  Raises
    :class:`~dwcore.bench.kernels.VerificationError` on any mismatch.
    """
    isas = list(available_isas() if isas is None else isas)
    checks: dict[str, str] = {}
    for isa in isas:
        with force_isa(isa):
            checks[isa] = verify(config, isal)
    symbols: dict[str, str] = {}
    if isal is not None:
        for isa in isas:
            symbol = isal_symbol(isal, config.op, isa)
            if symbol is not None:
                _verify_isal_variant(config, isal, symbol)
                symbols[isa] = symbol
    sets = [hot_set(config.rows, config.fragment)]
    nbytes = config.data_bytes
    rotation = Rotation()
    contenders: list[Contender] = []
    for isa in isas:
        batch = rotating_batch(dwcore_calls(config, sets), rotation)
        contenders.append(Contender.of_batch(f"dwcore/{isa}", _forced(isa, batch), nbytes))
        if isal is not None and isa in symbols:
            batch = rotating_batch(isal_calls(isal, config, sets, symbols[isa]), rotation)
            contenders.append(Contender.of_batch(f"isal/{isa}", batch, nbytes))
    result = measure_interleaved(contenders, repeats, target_ns)
    return [
        IsaRow(
            op=config.op,
            k=config.k,
            m=config.m,
            fragment=config.fragment,
            isa=isa,
            check=checks[isa],
            dwcore=result[f"dwcore/{isa}"],
            scalar=result.get("dwcore/scalar"),
            isal_symbol=symbols.get(isa),
            isal=result.get(f"isal/{isa}"),
            isal_base=result.get("isal/scalar"),
        )
        for isa in isas
    ]
