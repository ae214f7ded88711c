"""Render a :class:`~dwcore.bench.results.BenchResult` as rich tables or JSON.

Every figure is shown twice, ``cpu / wall``: throughput on the calling
thread's CPU time, then on wall time, so both can be checked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from dwcore.bench.isal import INSTALL_HINT
from dwcore.bench.kernels import format_size
from dwcore.bench.results import BenchResult, KernelRow, OverheadRow, ThreadsRow
from dwcore.bench.timing import Measurement

__all__ = ["render", "write_json"]

_NONE = "—"


def _num(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else _NONE


def _pair(cpu: float, wall: float, digits: int = 2) -> str:
    return f"{_num(cpu, digits)} / {_num(wall, digits)}"


#: Wall time this much above CPU time means the thread was descheduled (busy machine).
_BUSY = 1.1


def _busy(m: Measurement) -> bool:
    return m.wall_ns_per_call > _BUSY * m.cpu_ns_per_call


def _gbps(m: Measurement | None, single_thread: bool = True) -> Text:
    """``cpu / wall`` GB/s, starred in yellow when wall time shows the thread was preempted."""
    if m is None:
        return Text(_NONE, style="dim")
    text = _pair(m.cpu_gbps, m.wall_gbps)
    if single_thread and _busy(m):
        return Text(text + "*", style="yellow")
    return Text(text + " ")


def _ratio_cell(cpu: float, wall: float) -> Text:
    text = _pair(cpu, wall)
    if not math.isfinite(cpu):
        return Text(text, style="dim")
    return Text(text, style="green" if cpu >= 1.0 else "red")


def _shape(k: int, m: int) -> str:
    return f"{k}+{m}"


def _kernel_table(title: str, rows: list[KernelRow]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for name in ("op", "k+m", "fragment", "cache"):
        table.add_column(name, no_wrap=True)
    for name in ("dwcore GB/s", "ISA-L GB/s", "memcpy GB/s", "÷ ISA-L", "÷ memcpy"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("ok", justify="center", no_wrap=True)
    for r in rows:
        table.add_row(
            r.op,
            _shape(r.k, r.m),
            format_size(r.fragment),
            "in" if r.cache == "in" else f"out ({r.sets} sets)",
            _gbps(r.dwcore),
            _gbps(r.isal),
            _gbps(r.memcpy),
            _ratio_cell(r.vs_isal("cpu"), r.vs_isal("wall")),
            _ratio_cell(r.vs_memcpy("cpu"), r.vs_memcpy("wall")),
            Text(f"✓ {r.check}", style="green"),
        )
    return table


def _overhead_table(rows: list[OverheadRow]) -> Table:
    table = Table(
        title="Python call overhead: public API vs raw C kernel loop (in cache)",
        title_justify="left",
    )
    for name in ("op", "k+m", "fragment"):
        table.add_column(name, no_wrap=True)
    for name in ("API GB/s", "raw C GB/s", "overhead µs/call", "overhead %"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            r.op,
            _shape(r.k, r.m),
            format_size(r.fragment),
            _gbps(r.api),
            _gbps(r.raw),
            _pair(r.overhead_ns("cpu") / 1e3, r.overhead_ns("wall") / 1e3),
            _pair(r.overhead_pct("cpu"), r.overhead_pct("wall"), 1),
        )
    return table


def _threads_table(rows: list[ThreadsRow]) -> Table:
    table = Table(
        title="Two threads encoding distinct in-cache buffers vs one thread doing both",
        title_justify="left",
    )
    for name in ("impl", "k+m", "fragment"):
        table.add_column(name, no_wrap=True)
    for name in ("1 thread GB/s", "2 threads GB/s", "speedup (ideal 2)"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            "dwcore" if r.impl == "dwcore" else "ISA-L",
            _shape(r.k, r.m),
            format_size(r.fragment),
            _gbps(r.one),
            _gbps(r.two, single_thread=False),
            _num(r.speedup),
        )
    return table


def _header(result: BenchResult) -> RenderableType:
    meta = result.meta
    lines = [
        Text.assemble(
            ("dwcore ", "bold"),
            f"{meta['dwcore_version']} · ISA {meta['active_isa']} "
            f"(detected {meta['detected_isa']}) · {meta['cpu']} × {meta['cpu_count']} · "
            f"ISA-L {meta['isal'] or 'missing'}",
        ),
        Text(
            "GB/s = 10^9 data bytes (k × fragment) per second; each cell is "
            "cpu / wall (thread CPU time / elapsed), median of "
            f"{meta['options']['repeats']} interleaved samples",
            style="dim",
        ),
    ]
    if meta["isal"] is None:
        lines.append(
            Text(
                f"ISA-L (libisal.so.2) is not installed, so its columns are empty: "
                f"install it with `{INSTALL_HINT}` to compare.",
                style="yellow",
            )
        )
    return Group(*lines)


def _any_busy(result: BenchResult) -> bool:
    for r in result.rows:
        if isinstance(r, KernelRow):
            ms = [r.dwcore, r.memcpy, *([r.isal] if r.isal is not None else [])]
        elif isinstance(r, OverheadRow):
            ms = [r.api, r.raw]
        else:
            ms = [r.one]
        if any(_busy(m) for m in ms):
            return True
    return False


def render(result: BenchResult, console: Console) -> None:
    """Print the run's header and one table per group of rows that it has."""
    console.print(_header(result))
    kernels = [r for r in result.rows if isinstance(r, KernelRow)]
    ec = [r for r in kernels if r.op in ("encode", "decode")]
    raid = [r for r in kernels if r.op in ("pq", "xor")]
    overhead = [r for r in result.rows if isinstance(r, OverheadRow)]
    threads = [r for r in result.rows if isinstance(r, ThreadsRow)]
    if ec:
        title = "Reed-Solomon encode, and decode with the first m data shards lost"
        console.print(_kernel_table(title, ec))
    if raid:
        console.print(_kernel_table("RAID parity: P+Q (md order) and XOR", raid))
    if overhead:
        console.print(_overhead_table(overhead))
    if threads:
        console.print(_threads_table(threads))
        console.print(
            Text(
                "2-thread cpu GB/s is per core (CPU time summed over both threads); "
                "the speedup is on wall time",
                style="dim",
            )
        )
    if _any_busy(result):
        console.print(
            Text(
                f"* wall time exceeded CPU time by over {round((_BUSY - 1) * 100)}%: the thread "
                "was descheduled (another process was busy); trust the cpu figure there",
                style="yellow",
            )
        )


def write_json(result: BenchResult, path: Path) -> None:
    """Write the result (metadata, rows, derived GB/s and ratios) as JSON."""
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
