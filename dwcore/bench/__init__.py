"""Benchmarks of dwcore's kernels against Intel ISA-L and memcpy.

* :mod:`dwcore.bench.isal` — ctypes binding to ``libisal2`` (the reference);
* :mod:`dwcore.bench.runner` — the engine behind ``dwcore bench``;
* :mod:`dwcore.bench.report` — tables and JSON of its results.

The pytest-benchmark suites in the repository's ``bench/`` folder reuse the
same buffer sets and calls.
"""

from dwcore.bench.isal import Isal, IsalError, IsalUnavailableError, isal_available, load_isal
from dwcore.bench.options import BenchOptions
from dwcore.bench.results import BenchResult, KernelRow, OverheadRow, ThreadsRow
from dwcore.bench.runner import run_benchmarks

__all__ = [
    "BenchOptions",
    "BenchResult",
    "Isal",
    "IsalError",
    "IsalUnavailableError",
    "KernelRow",
    "OverheadRow",
    "ThreadsRow",
    "isal_available",
    "load_isal",
    "run_benchmarks",
]
