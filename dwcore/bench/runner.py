"""The engine behind ``dwcore bench``: plan the configurations, run them, collect rows.

For every kernel configuration the runner verifies dwcore's output against
ISA-L (or a reference) once, then times dwcore, ISA-L and a memcpy of the
same data bytes interleaved on the same buffers (see :mod:`dwcore.bench.timing`),
in cache or rotating through ≥ 256 MiB of buffers.  It then times every
instruction set dwcore runs here against ISA-L's matching entry points
(:mod:`dwcore.bench.isa`), the checksum kernels (:mod:`dwcore.bench.checksum`),
the block allocator (:mod:`dwcore.bench.alloc`),
the Python call overhead and the two-thread scaling.  Without ISA-L it still
measures dwcore and the memcpy anchor.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

import dwcore
from dwcore import native
from dwcore.bench.alloc import alloc_tasks
from dwcore.bench.arena import Arena, hot_set
from dwcore.bench.buffers import aligned_empty
from dwcore.bench.checksum import BLOCKS_BUFFER, checksum_tasks
from dwcore.bench.isa import isa_configs, measure_isas
from dwcore.bench.isal import Isal, IsalUnavailableError, load_isal
from dwcore.bench.kernels import KernelConfig, contenders, format_size, verify
from dwcore.bench.options import BenchOptions
from dwcore.bench.overhead import measure_overhead
from dwcore.bench.results import BenchResult, KernelRow, Row
from dwcore.bench.threads import measure_threads
from dwcore.bench.timing import measure_interleaved

__all__ = ["Progress", "Task", "plan", "run_benchmarks"]

#: ``progress(done, total, label)``: called before each task and once at the end.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Task:
    """One unit of work that yields result rows."""

    label: str
    run: Callable[[], list[Row]]


class _Context:
    """State shared by the tasks of one run: options, ISA-L, the lazily built arena."""

    def __init__(self, options: BenchOptions, isal: Isal | None, max_set_bytes: int) -> None:
        self.options = options
        self.isal = isal
        self._max_set_bytes = max_set_bytes
        self._arena: Arena | None = None

    @property
    def arena(self) -> Arena:
        if self._arena is None:
            self._arena = Arena(self.options.cold_bytes, self._max_set_bytes)
        return self._arena

    def kernel(self, config: KernelConfig) -> list[Row]:
        check = verify(config, self.isal)
        if config.cold:
            sets = self.arena.sets(config.rows, config.fragment)
            targets = self.arena.copy_targets(config.k, config.fragment, len(sets))
        else:
            sets = [hot_set(config.rows, config.fragment)]
            targets = [aligned_empty((config.k, config.fragment))]
        result = measure_interleaved(
            contenders(config, sets, targets, self.isal),
            self.options.repeats,
            self.options.target_ns,
        )
        return [
            KernelRow(
                op=config.op,
                k=config.k,
                m=config.m,
                fragment=config.fragment,
                cache="out" if config.cold else "in",
                sets=len(sets),
                check=check,
                dwcore=result["dwcore"],
                memcpy=result["memcpy"],
                isal=result.get("isal"),
            )
        ]

    def isas(self, config: KernelConfig) -> list[Row]:
        options = self.options
        return list(measure_isas(config, self.isal, options.repeats, options.isa_target_ns))

    def overhead(self, config: KernelConfig) -> list[Row]:
        return [measure_overhead(config, self.options.repeats, self.options.target_ns)]

    def threads(self, k: int, m: int, fragment: int) -> list[Row]:
        return list(
            measure_threads(k, m, fragment, self.isal, self.options.repeats, self.options.target_ns)
        )


def _kernel_configs(options: BenchOptions) -> list[KernelConfig]:
    colds = (False, True) if options.out_of_cache else (False,)
    shapes: list[tuple[str, int, int]] = []
    if "ec" in options.groups:
        shapes += [(op, k, m) for k, m in options.ec_shapes for op in ("encode", "decode")]
    if "pq" in options.groups:
        shapes += [("pq", k, 2) for k in options.disks]
    if "xor" in options.groups:
        shapes += [("xor", k, 1) for k in options.disks]
    return [
        KernelConfig(op, k, m, size, cold)
        for op, k, m in shapes
        for size in options.sizes
        for cold in colds
    ]


def _overhead_configs(options: BenchOptions) -> list[KernelConfig]:
    if "overhead" not in options.groups:
        return []
    shapes = [(op, k, m) for k, m in options.ec_shapes for op in ("encode", "decode")]
    shapes += [("pq", k, 2) for k in options.disks] + [("xor", k, 1) for k in options.disks]
    return [
        KernelConfig(op, k, m, size, cold=False)
        for op, k, m in shapes
        for size in options.overhead_sizes
    ]


def plan(options: BenchOptions, isal: Isal | None) -> list[Task]:
    """Every task of a run, in execution order (kernels, instruction sets, overhead,
    checksums, threads)."""
    kernels = _kernel_configs(options)
    max_set = max((c.rows * c.fragment for c in kernels if c.cold), default=0)
    checksums = "checksum" in options.groups
    if checksums and options.out_of_cache:
        max_set = max(max_set, BLOCKS_BUFFER)
    ctx = _Context(options, isal, max_set)
    tasks = [Task(c.label, functools.partial(ctx.kernel, c)) for c in kernels]
    if "isa" in options.groups:
        tasks += [
            Task(
                f"isa {c.op} {c.k}+{c.m} {format_size(c.fragment)}",
                functools.partial(ctx.isas, c),
            )
            for c in isa_configs()
        ]
    tasks += [
        Task(
            f"overhead {c.op} {c.k}+{c.m} {format_size(c.fragment)}",
            functools.partial(ctx.overhead, c),
        )
        for c in _overhead_configs(options)
    ]
    if checksums:
        tasks += [
            Task(label, run)
            for label, run in checksum_tasks(
                isal,
                lambda: ctx.arena,
                options.repeats,
                options.target_ns,
                options.out_of_cache,
            )
        ]
    if "alloc" in options.groups:
        tasks += [Task(label, run) for label, run in alloc_tasks()]  # type: ignore[arg-type]
    if "threads" in options.groups:
        tasks += [
            Task(
                f"threads encode {k}+{m} {format_size(size)}",
                functools.partial(ctx.threads, k, m, size),
            )
            for k, m in options.ec_shapes
            for size in options.sizes
        ]
    return tasks


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _meta(options: BenchOptions, isal: Isal | None, isal_error: str | None) -> dict[str, object]:
    opts = asdict(options)
    opts["groups"] = sorted(options.groups)
    return {
        "dwcore_version": dwcore.__version__,
        "detected_isa": native.detected_isa(),
        "active_isa": native.active_isa(),
        "available_isas": native.available_isas(),
        "isal": isal.path if isal is not None else None,
        "isal_error": isal_error,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "units": "GB/s = 10^9 data bytes (k x fragment) per second",
        "options": opts,
    }


def run_benchmarks(options: BenchOptions, progress: Progress | None = None) -> BenchResult:
    """Run every task of ``options`` and return the rows with run metadata.

    ISA-L columns are empty when ``libisal2`` is missing (``meta["isal_error"]``
    says how to install it).  Raises
    :class:`~dwcore.bench.kernels.VerificationError` if dwcore's output
    differs from ISA-L's for any configuration.
    """
    try:
        isal: Isal | None = load_isal()
        isal_error = None
    except IsalUnavailableError as exc:
        isal, isal_error = None, str(exc)
    result = BenchResult(meta=_meta(options, isal, isal_error))
    tasks = plan(options, isal)
    for i, task in enumerate(tasks):
        if progress is not None:
            progress(i, len(tasks), task.label)
        result.rows.extend(task.run())
    if progress is not None:
        progress(len(tasks), len(tasks), "done")
    return result
