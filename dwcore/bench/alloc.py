"""Block allocator benchmarks: the issue's C-level targets and the Python call costs.

C-level figures come from loops that call the C API without Python in
between (:mod:`dwcore._alloc`'s ``_bench_*`` functions) or from the batch
API (one Python call per 65536 blocks), on a map of ``2**log2_blocks``
blocks (2**28 by default: a 1 TiB device of 4 KiB blocks):

* single-block alloc+free pairs per second (each call takes the allocator's
  mutex) — target ≥ 10 M;
* sequential fill of the whole map — alloc(256) calls, and the batch API
  (alloc_batch of 65536 single blocks) — target ≥ 50 M blocks/s;
* 90% full and fragmented (fill with random 1–256-block allocations, free a
  random half, refill to 90%): p99 latency of alloc(256) — target ≤ 5 µs;
  probes freed right after (the map stays put) and, as a second row, kept
  while a random extent is freed (churn);
* RAM per block (the allocator's heap) — target ≤ 1.1 bit;
* open of the map with a warm page cache, median of 5 — target ≤ 50 ms.

Python figures: ns per call of ``alloc()``/``free()``, ``alloc(256)`` and per
block of ``alloc_batch(1000)``/``free_batch``.  Every figure is wall time on
the calling thread; on a busy machine they are pessimistic.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dwcore import _alloc
from dwcore.alloc import BlockAllocator
from dwcore.bench.targets import Target, _judge

__all__ = [
    "FRAG_P99_TARGET_US",
    "OPEN_TARGET_MS",
    "PAIRS_TARGET_M",
    "RAM_TARGET_BITS",
    "SEQ_FILL_TARGET_M",
    "AllocRow",
    "alloc_table",
    "alloc_targets",
    "alloc_tasks",
    "run_alloc_bench",
]

PAIRS_TARGET_M = 10.0  # single-block alloc+free, M pairs/s
SEQ_FILL_TARGET_M = 50.0  # sequential fill, M blocks/s
FRAG_P99_TARGET_US = 5.0  # alloc(256) at 90% fragmented, p99
RAM_TARGET_BITS = 1.1  # per block
OPEN_TARGET_MS = 50.0  # warm page cache

#: ``(label, run)`` as the runner schedules it.
Task = tuple[str, Callable[[], list["AllocRow"]]]


@dataclass(frozen=True)
class AllocRow:
    """One allocator figure.

    ``level`` is ``"C"`` (C loops or the batch API) or ``"Python"`` (one
    Python call per operation).  ``target`` is the issue's bar (None: shown
    for context), met when ``value`` is at least it (``higher_is_better``)
    or at most it.
    """

    metric: str
    level: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""
    kind: str = field(default="alloc", init=False)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def measurements(self) -> list[Any]:
        """No interleaved Measurement objects: the busy-machine check skips these rows."""
        return []

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the row."""
        return {
            "kind": self.kind,
            "metric": self.metric,
            "level": self.level,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "higher_is_better": self.higher_is_better,
            "met": self.met,
            "note": self.note,
        }


class _Bench:
    """Owns the temporary directory and the allocator files of one run."""

    def __init__(self, log2_blocks: int, probes: int, directory: str | None) -> None:
        self.nblocks = 1 << log2_blocks
        self.log2 = log2_blocks
        self.probes = probes
        self.parent = directory
        self.dir: Path | None = None
        self.count = 0

    def fresh(self, nblocks: int | None = None) -> BlockAllocator:
        if self.dir is None:  # made when the first task runs, removed by the last
            self.dir = Path(tempfile.mkdtemp(prefix="dwcore-alloc-bench-", dir=self.parent))
        self.count += 1
        return BlockAllocator.create(self.dir / f"a{self.count}", nblocks or self.nblocks)

    def close(self) -> None:
        """Remove the files made so far (2**28 blocks is 65 MiB each) and their directory."""
        if self.dir is not None:
            for p in self.dir.iterdir():
                p.unlink()
            self.dir.rmdir()
            self.dir = None

    @property
    def size(self) -> str:
        return f"2^{self.log2} blocks"

    # -------------------------------------------------------------- C level

    def pairs(self) -> list[AllocRow]:
        with self.fresh() as a:
            iters = 4_000_000
            _alloc._bench_alloc_free(a, 200_000)  # warm up
            wall, _ = _alloc._bench_alloc_free(a, iters)
            a.close(sync=False)
        return [
            AllocRow(
                "single-block alloc+free",
                "C",
                iters / wall / 1e6,
                "M pairs/s",
                PAIRS_TARGET_M,
                note=f"{self.size}, empty map, one mutex per call",
            )
        ]

    def fills(self) -> list[AllocRow]:
        rows = []
        with self.fresh() as a:
            blocks, wall, _ = _alloc._bench_fill(a, 256)
            a.close(sync=False)
        rows.append(
            AllocRow(
                "sequential fill, alloc(256)",
                "C",
                blocks / wall / 1e6,
                "M blocks/s",
                SEQ_FILL_TARGET_M,
                note=self.size,
            )
        )
        with self.fresh() as a:
            batch = 65536
            t0 = time.perf_counter()
            for _ in range(self.nblocks // batch):
                a.alloc_batch(batch)
            wall = time.perf_counter() - t0
            a.close(sync=False)
        rows.append(
            AllocRow(
                "sequential fill, alloc_batch(65536 x 1)",
                "C",
                self.nblocks / wall / 1e6,
                "M blocks/s",
                SEQ_FILL_TARGET_M,
                note=f"{self.size}, single blocks",
            )
        )
        return rows

    def fragmented(self) -> list[AllocRow]:
        rows = []
        with self.fresh() as a:
            lat, used, setup = _alloc._bench_fragmented(a, probes=self.probes)
            p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
            stats = a.stats()
            note = (
                f"{self.size}, {used:.0%} used, {stats.free_extents} free extents; "
                f"p50 {p50:.0f} ns, p99.9 {p999:.0f} ns, setup {setup:.1f} s"
            )
            rows.append(
                AllocRow(
                    "alloc(256) p99, 90% fragmented",
                    "C",
                    p99 / 1000,
                    "µs",
                    FRAG_P99_TARGET_US,
                    higher_is_better=False,
                    note=note,
                )
            )
            a.close(sync=False)
        with self.fresh() as a:
            lat, used, _ = _alloc._bench_fragmented(a, probes=self.probes, keep=True)
            p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
            ran_out = "" if len(lat) == self.probes else " (then no 256-block run was left)"
            rows.append(
                AllocRow(
                    "alloc(256) p99, 90% fragmented, churn",
                    "C",
                    p99 / 1000,
                    "µs",
                    FRAG_P99_TARGET_US,
                    higher_is_better=False,
                    note=f"{len(lat)} probes kept, a random extent freed each{ran_out}; "
                    f"p50 {p50:.0f} ns, p99.9 {p999:.0f} ns",
                )
            )
            mem = a.stats()
            rows.append(
                AllocRow(
                    "RAM per block",
                    "C",
                    mem.bits_per_block,
                    "bits",
                    RAM_TARGET_BITS,
                    higher_is_better=False,
                    note=f"{mem.memory_bytes / 2**20:.1f} MiB heap for {self.size}",
                )
            )
            t0 = time.perf_counter()
            a.sync()
            sync_ms = (time.perf_counter() - t0) * 1e3
            dirty = mem.dirty_pages
            path = Path(a.path)
        rows.append(
            AllocRow(
                "sync of a fully dirty map",
                "C",
                sync_ms,
                "ms",
                note=f"{dirty} bitmap pages written, two fdatasync",
            )
        )
        opens = []
        for _ in range(5):
            t0 = time.perf_counter()
            b = BlockAllocator.open(path)
            opens.append((time.perf_counter() - t0) * 1e3)
            b.close(sync=False)
        rows.append(
            AllocRow(
                "open, warm page cache (median of 5)",
                "C",
                statistics.median(opens),
                "ms",
                OPEN_TARGET_MS,
                higher_is_better=False,
                note=f"{self.size} fragmented map, {os.path.getsize(path) >> 20} MiB "
                f"file; best {min(opens):.1f} ms",
            )
        )
        return rows

    # --------------------------------------------------------------- Python

    def python(self) -> list[AllocRow]:
        rows = []
        with self.fresh(1 << 20) as a:
            alloc, free = a.alloc, a.free
            n = 200_000
            t0 = time.perf_counter()
            for _ in range(n):
                free(alloc())
            wall = time.perf_counter() - t0
            rows.append(
                AllocRow(
                    "alloc() + free(s), per call",
                    "Python",
                    wall / n / 2 * 1e9,
                    "ns",
                    note=f"{n / wall / 1e6:.2f} M pairs/s",
                )
            )
            n = 100_000
            t0 = time.perf_counter()
            for _ in range(n):
                free(alloc(256), 256)
            wall = time.perf_counter() - t0
            rows.append(
                AllocRow("alloc(256) + free(s, 256), per call", "Python", wall / n / 2 * 1e9, "ns")
            )
            n, k = 200, 1000
            t0 = time.perf_counter()
            for _ in range(n):
                a.free_batch(a.alloc_batch(k))
            wall = time.perf_counter() - t0
            rows.append(
                AllocRow(
                    "alloc_batch(1000) + free_batch, per block",
                    "Python",
                    wall / (n * k) / 2 * 1e9,
                    "ns",
                    note=f"{wall / n * 1e6:.0f} µs per pair of calls",
                )
            )
            a.close(sync=False)
        return rows


def alloc_tasks(
    log2_blocks: int = 28, probes: int = 20000, directory: str | None = None
) -> list[Task]:
    """The group's tasks as (label, run) pairs; each removes the files it made."""
    bench = _Bench(log2_blocks, probes, directory)

    def task(run: Callable[[], list[AllocRow]]) -> Callable[[], list[AllocRow]]:
        def wrapped() -> list[AllocRow]:
            try:
                return run()
            finally:
                bench.close()  # each task's files and directory go with it

        return wrapped

    return [
        ("alloc single-block pairs", task(bench.pairs)),
        ("alloc sequential fill", task(bench.fills)),
        ("alloc 90% fragmented, RAM, sync, open", task(bench.fragmented)),
        ("alloc Python calls", task(bench.python)),
    ]


def run_alloc_bench(
    log2_blocks: int = 28, probes: int = 20000, directory: str | None = None
) -> list[AllocRow]:
    """Every allocator figure (about 5–10 s at 2**28 blocks; files under ``directory``)."""
    rows: list[AllocRow] = []
    for _, run in alloc_tasks(log2_blocks, probes, directory):
        rows += run()
    return rows


def alloc_targets(rows: Sequence[AllocRow]) -> list[Target]:
    """The issue's allocator targets judged from ``rows``."""
    why = "the alloc group was not run"
    out = []
    for name, metric_prefix, unit in (
        ("alloc: single-block alloc+free, M pairs/s", "single-block", ""),
        ("alloc: sequential fill, M blocks/s", "sequential fill", ""),
        ("alloc: alloc(256) p99 at 90% fragmented, µs", "alloc(256) p99", " µs"),
        ("alloc: RAM per block, bits", "RAM per block", ""),
        ("alloc: open of the map, warm page cache, ms", "open", " ms"),
    ):
        picked = [r for r in rows if r.metric.startswith(metric_prefix) and r.target is not None]
        first = picked[0] if picked else None
        out.append(
            _judge(
                name,
                [(r.metric, r.value) for r in picked],
                bar=first.target if first and first.target is not None else 0.0,
                higher_is_better=first.higher_is_better if first else True,
                unit=unit,
                why_missing=why,
            )
        )
    return out


def alloc_table(rows: Sequence[AllocRow]) -> Any:
    """The rows as a rich Table."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="Block allocator (dwcore.alloc): C level and Python calls", title_justify="left"
    )
    for name, justify in (
        ("figure", "left"),
        ("level", "left"),
        ("value", "right"),
        ("target", "right"),
        ("ok", "center"),
        ("note", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        target = "—" if r.target is None else f"{'≥' if r.higher_is_better else '≤'} {r.target:g}"
        ok = {True: Text("yes", style="green"), False: Text("NO", style="red"), None: Text("")}[
            r.met
        ]
        table.add_row(r.metric, r.level, f"{r.value:,.2f} {r.unit}", target, ok, r.note)
    return table
