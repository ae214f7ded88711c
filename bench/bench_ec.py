"""Reed-Solomon encode and decode: dwcore per instruction set against ISA-L.

Decode loses the first m data shards: dwcore rebuilds them with
``ReedSolomon.reconstruct_into``; ISA-L runs ``ec_encode_data`` over the k
survivors with the inverted survivor matrix's tables built once.
``test_encode_isal_levels`` times ISA-L's per-instruction-set functions
(``ec_encode_data_base`` ...) on the shapes of ``dwcore bench --only isa``,
so dwcore's SIMD ÷ scalar speedup can be read against ISA-L's own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dwcore.bench.isa import ISA_OPS
from dwcore.bench.options import EC_SHAPES

_ISA_EC_SHAPES = [(k, m) for op, k, m in ISA_OPS if op == "encode"]


@pytest.mark.kernel_cases(EC_SHAPES)
def test_encode(run_kernel: Callable[..., None], impl: str, k: int, m: int, size: str) -> None:
    """Parity of k data fragments."""
    run_kernel("encode", impl, k, m, size)


@pytest.mark.kernel_cases(EC_SHAPES)
def test_decode(run_kernel: Callable[..., None], impl: str, k: int, m: int, size: str) -> None:
    """The first m data fragments rebuilt from the k survivors."""
    run_kernel("decode", impl, k, m, size)


@pytest.mark.isal_levels("encode", _ISA_EC_SHAPES, ["64K"])
def test_encode_isal_levels(
    run_isal_variant: Callable[..., None], symbol: str, k: int, m: int, size: str
) -> None:
    """ISA-L's encode at one instruction-set level (``*_base`` is its scalar C)."""
    run_isal_variant("encode", symbol, k, m, size)
