"""RAID parity kernels: XOR (RAID 5) and P+Q (RAID 6, md order) against ISA-L,
and P+Q+R (RAID-Z3 triple parity; dwcore only, ISA-L has no such kernel)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest

from dwcore.bench.isa import ISA_OPS
from dwcore.bench.options import DISKS
from dwcore.ec import pqr_parity_into


@pytest.mark.kernel_cases([(k, 1) for k in DISKS])
def test_xor(run_kernel: Callable[..., None], impl: str, k: int, m: int, size: str) -> None:
    """P = xor of k data fragments."""
    run_kernel("xor", impl, k, m, size)


@pytest.mark.kernel_cases([(k, 2) for k in DISKS])
def test_pq(run_kernel: Callable[..., None], impl: str, k: int, m: int, size: str) -> None:
    """P and Q = sum 2^j * D_j of k data fragments."""
    run_kernel("pq", impl, k, m, size)


@pytest.mark.kernel_cases([(k, 3) for k in DISKS], isal=False)
def test_pqr(
    run_calls: Callable[..., None],
    buffer_sets: Callable[[int, str], list[np.ndarray]],
    impl: str,
    k: int,
    m: int,
    size: str,
) -> None:
    """P, Q and R = sum 4^j * D_j (ZFS order) of k data fragments."""
    sets = buffer_sets(k + m, size)
    calls = [functools.partial(pqr_parity_into, s[:k], s[k], s[k + 1], s[k + 2]) for s in sets]
    run_calls("pqr", impl, k, m, size, calls, k * sets[0].shape[1])


def _isa_shapes(op: str) -> list[tuple[int, int]]:
    return [(k, m) for o, k, m in ISA_OPS if o == op]


@pytest.mark.isal_levels("xor", _isa_shapes("xor"), ["64K"])
def test_xor_isal_levels(
    run_isal_variant: Callable[..., None], symbol: str, k: int, m: int, size: str
) -> None:
    """ISA-L's xor_gen at one instruction-set level (no AVX2 one: ``xor_gen_avx``)."""
    run_isal_variant("xor", symbol, k, m, size)


@pytest.mark.isal_levels("pq", _isa_shapes("pq"), ["64K"])
def test_pq_isal_levels(
    run_isal_variant: Callable[..., None], symbol: str, k: int, m: int, size: str
) -> None:
    """ISA-L's pq_gen at one instruction-set level."""
    run_isal_variant("pq", symbol, k, m, size)
