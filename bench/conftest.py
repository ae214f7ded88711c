"""Shared machinery of the pytest-benchmark suites (``pytest bench``).

Benchmarks are named ``{op}[{impl}-{k}x{m}-{size}]``: ``impl`` is a dwcore
instruction set (scalar, ssse3, avx2: whichever run here), ``isal`` (ISA-L's
dispatching function) or ``isal_{level}`` (one of ISA-L's per-instruction-set
functions: ``isal_base`` is its scalar C, then ``isal_sse``, ``isal_avx2``);
``size`` is the fragment size, in cache (one buffer set reused) or, with a
``-cold`` suffix, rotating through 256 MiB of buffer sets so every call
meets memory beyond the last-level cache.  ``extra_info["bytes"]`` holds
the data bytes per call (k x fragment) so GB/s = bytes / mean time.

CI runs them as a correctness smoke test: ``pytest bench --benchmark-disable -q``;
measure with ``pytest bench --benchmark-enable`` (add ``-k`` to pick cases).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import pytest

from dwcore.bench.arena import Arena, hot_set
from dwcore.bench.isa import isal_symbol
from dwcore.bench.isal import INSTALL_HINT, Isal, isal_available, load_isal
from dwcore.bench.kernels import KernelConfig, dwcore_calls, isal_calls
from dwcore.bench.options import COLD_BYTES
from dwcore.native import available_isas, force_isa

#: Fragment sizes by id: (bytes, rotate through 256 MiB of buffers).
SIZES: dict[str, tuple[int, bool]] = {
    "4K": (4 << 10, False),
    "64K": (64 << 10, False),
    "1M": (1 << 20, False),
    "1M-cold": (1 << 20, True),
}
#: Largest buffer set any suite carves from the arena (17+3 rows of 1 MiB, rounded up).
_MAX_SET_BYTES = 32 << 20

_ISAL_MARK = pytest.mark.skipif(
    not isal_available(), reason=f"ISA-L (libisal.so.2) is not installed: {INSTALL_HINT}"
)

Call = Callable[[], object]


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that declares a benchmark's shapes."""
    config.addinivalue_line(
        "markers",
        "kernel_cases(shapes, isal=True): parametrize impl, k, m, size over every dwcore "
        "ISA that runs here (plus ISA-L when isal is true), the (k, m) shapes and SIZES",
    )
    config.addinivalue_line(
        "markers",
        "isal_levels(op, shapes, sizes): parametrize symbol, k, m, size over ISA-L's "
        "per-instruction-set functions for op that run here (ec_encode_data_base, ...)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Expand ``@pytest.mark.kernel_cases`` into ``{impl}-{k}x{m}-{size}`` parameters,
    and ``@pytest.mark.isal_levels`` into ``isal_{level}-{k}x{m}-{size}`` ones."""
    levels = metafunc.definition.get_closest_marker("isal_levels")
    if levels is not None:
        metafunc.parametrize(("symbol", "k", "m", "size"), _isal_level_params(*levels.args))
    marker = metafunc.definition.get_closest_marker("kernel_cases")
    if marker is None:
        return
    shapes: Sequence[tuple[int, int]] = marker.args[0]
    impls = [*available_isas(), *(["isal"] if marker.kwargs.get("isal", True) else [])]
    params = [
        pytest.param(
            impl,
            k,
            m,
            size,
            id=f"{impl}-{k}x{m}-{size}",
            marks=[_ISAL_MARK] if impl == "isal" else [],
        )
        for impl in impls
        for k, m in shapes
        for size in SIZES
    ]
    metafunc.parametrize(("impl", "k", "m", "size"), params)


@pytest.fixture(scope="session")
def arena() -> Iterator[Arena]:
    """256 MiB (and more) of random buffer sets for the ``-cold`` sizes, built once."""
    yield Arena(COLD_BYTES, _MAX_SET_BYTES)


@functools.cache
def _hot_set(rows: int, fragment: int) -> np.ndarray:
    return hot_set(rows, fragment)


@pytest.fixture
def buffer_sets(request: pytest.FixtureRequest) -> Callable[[int, str], list[np.ndarray]]:
    """``buffer_sets(rows, size_id)``: one cached set in cache, or every set of the arena."""

    def get(rows: int, size_id: str) -> list[np.ndarray]:
        fragment, cold = SIZES[size_id]
        if cold:
            return request.getfixturevalue("arena").sets(rows, fragment)
        return [_hot_set(rows, fragment)]

    return get


@pytest.fixture(scope="session")
def isal() -> Isal:
    """The ISA-L binding (tests that need it are skipped where it is missing)."""
    return load_isal()


def _isa_context(impl: str) -> AbstractContextManager[object]:
    return nullcontext() if impl.startswith("isal") else force_isa(impl)


def _isal_level_params(
    op: str, shapes: Sequence[tuple[int, int]], sizes: Sequence[str]
) -> list[Any]:
    """``pytest.param(symbol, k, m, size, id="isal_{level}-{k}x{m}-{size}")`` for ``op``.

    One per ISA-L per-instruction-set function that the library exports and
    this CPU runs (matched to dwcore's levels: ``*_base`` for scalar, ...);
    one skipped case (saying how to install it) where ISA-L is missing.
    """
    if not isal_available():
        return [pytest.param("", 0, 0, "", id="isal-missing", marks=[_ISAL_MARK])]
    isal = load_isal()
    symbols = [isal_symbol(isal, op, isa) for isa in available_isas()]
    return [
        pytest.param(symbol, k, m, size, id=f"isal_{symbol.rsplit('_', 1)[1]}-{k}x{m}-{size}")
        for symbol in symbols
        if symbol is not None
        for k, m in shapes
        for size in sizes
    ]


@pytest.fixture
def run_calls(benchmark: Any) -> Callable[..., None]:
    """``run_calls(op, impl, k, m, size_id, calls, nbytes)``: benchmark ``calls`` in rotation.

    Each benchmarked call runs the next of ``calls`` (one per buffer set)
    under the forced dwcore ISA (nothing is forced for ``isal``); the
    benchmark is named ``{op}[{impl}-{k}x{m}-{size}]`` and records the data
    bytes per call in ``extra_info["bytes"]``.
    """

    def run(
        op: str, impl: str, k: int, m: int, size_id: str, calls: Sequence[Call], nbytes: int
    ) -> None:
        benchmark.name = f"{op}[{impl}-{k}x{m}-{size_id}]"
        benchmark.group = f"{op} {k}x{m} {size_id}"
        benchmark.extra_info.update(bytes=nbytes, op=op, impl=impl, k=k, m=m, size=size_id)
        rotation = itertools.cycle(calls)

        def step() -> None:
            next(rotation)()

        with _isa_context(impl):
            benchmark(step)

    return run


@pytest.fixture
def run_kernel(
    run_calls: Callable[..., None],
    buffer_sets: Callable[[int, str], list[np.ndarray]],
    request: pytest.FixtureRequest,
) -> Callable[..., None]:
    """``run_kernel(op, impl, k, m, size_id)``: benchmark encode, decode, pq or xor.

    dwcore goes through its public API (``encode_into``, ``reconstruct_into``,
    ``pq_parity_into``, ``xor_parity_into``); ISA-L through prepared calls
    whose tables and pointer arrays are built before timing.
    """

    def run(op: str, impl: str, k: int, m: int, size_id: str) -> None:
        fragment, cold = SIZES[size_id]
        config = KernelConfig(op, k, m, fragment, cold)
        sets = buffer_sets(config.rows, size_id)
        if impl == "isal":
            calls = isal_calls(request.getfixturevalue("isal"), config, sets)
        else:
            calls = dwcore_calls(config, sets)
        run_calls(op, impl, k, m, size_id, calls, config.data_bytes)

    return run


@pytest.fixture
def run_isal_variant(
    run_calls: Callable[..., None],
    buffer_sets: Callable[[int, str], list[np.ndarray]],
    isal: Isal,
) -> Callable[..., None]:
    """``run_isal_variant(op, symbol, k, m, size_id)``: benchmark one ISA-L entry point.

    Named ``{op}[isal_{level}-{k}x{m}-{size}]``, e.g. ``encode[isal_base-10x4-64K]``.
    """

    def run(op: str, symbol: str, k: int, m: int, size_id: str) -> None:
        fragment, cold = SIZES[size_id]
        config = KernelConfig(op, k, m, fragment, cold)
        calls = isal_calls(isal, config, buffer_sets(config.rows, size_id), symbol)
        impl = f"isal_{symbol.rsplit('_', 1)[1]}"
        run_calls(op, impl, k, m, size_id, calls, config.data_bytes)

    return run
