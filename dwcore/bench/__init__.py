"""Benchmarks of dwcore's kernels against Intel ISA-L and memcpy.

* :mod:`dwcore.bench.isal` — ctypes binding to ``libisal2`` (the reference);
* :mod:`dwcore.bench.runner` — the engine behind ``dwcore bench``;
* :mod:`dwcore.bench.isa` — every instruction set against ISA-L's matching functions;
* :mod:`dwcore.bench.targets` — the issue's targets judged from a run's rows;
* :mod:`dwcore.bench.report` — tables and JSON of its results.

The pytest-benchmark suites in the repository's ``bench/`` folder reuse the
same buffer sets and calls.
"""

from dwcore.bench.isal import Isal, IsalError, IsalUnavailableError, isal_available, load_isal
from dwcore.bench.options import BenchOptions
from dwcore.bench.results import BenchResult, IsaRow, KernelRow, OverheadRow, ThreadsRow
from dwcore.bench.runner import run_benchmarks
from dwcore.bench.targets import Target, evaluate

__all__ = [
    "BenchOptions",
    "BenchResult",
    "IsaRow",
    "Isal",
    "IsalError",
    "IsalUnavailableError",
    "KernelRow",
    "OverheadRow",
    "Target",
    "ThreadsRow",
    "evaluate",
    "isal_available",
    "load_isal",
    "run_benchmarks",
]
