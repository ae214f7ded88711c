"""Reed-Solomon encode and decode: dwcore per instruction set against ISA-L.

Decode loses the first m data shards: dwcore rebuilds them with
``ReedSolomon.reconstruct_into``; ISA-L runs ``ec_encode_data`` over the k
survivors with the inverted survivor matrix's tables built once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dwcore.bench.options import EC_SHAPES


@pytest.mark.kernel_cases(EC_SHAPES)
def test_encode(run_kernel: Callable[..., None], impl: str, k: int, m: int, size: str) -> None:
    """Parity of k data fragments."""
    run_kernel("encode", impl, k, m, size)


@pytest.mark.kernel_cases(EC_SHAPES)
def test_decode(run_kernel: Callable[..., None], impl: str, k: int, m: int, size: str) -> None:
    """The first m data fragments rebuilt from the k survivors."""
    run_kernel("decode", impl, k, m, size)
