"""Render a :class:`~dwcore.bench.results.BenchResult` as rich tables or JSON.

Every figure is shown twice, ``cpu / wall``: throughput on the calling
thread's CPU time, then on wall time, so both can be checked.  The run ends
with the issue's targets judged from the rows (:mod:`dwcore.bench.targets`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from dwcore.bench.alloc import AllocRow, alloc_table
from dwcore.bench.checksum import ChecksumRow, checksum_table
from dwcore.bench.isa import RS_SIMD_TARGET
from dwcore.bench.isal import INSTALL_HINT
from dwcore.bench.kernels import format_size
from dwcore.bench.results import BenchResult, IsaRow, KernelRow, OverheadRow, ThreadsRow
from dwcore.bench.targets import Target, evaluate
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


def _speedup_cell(row: IsaRow) -> Text:
    """dwcore on ``row.isa`` ÷ scalar; judged against the bar on AVX2 Reed-Solomon rows."""
    cpu, wall = row.vs_scalar("cpu"), row.vs_scalar("wall")
    text = _pair(cpu, wall, 1)
    if not math.isfinite(cpu):
        return Text(text, style="dim")
    if row.op == "encode" and row.isa == "avx2":
        return Text(text, style="bold green" if cpu >= RS_SIMD_TARGET else "bold red")
    return Text(text)


def _isa_table(rows: list[IsaRow]) -> Table:
    table = Table(
        title="Instruction sets: dwcore on each path vs ISA-L's matching function, in cache",
        title_justify="left",
    )
    for name in ("op", "k+m", "fragment", "ISA"):
        table.add_column(name, no_wrap=True)
    table.add_column("dwcore GB/s", justify="right", no_wrap=True)
    table.add_column("× scalar", justify="right", no_wrap=True)
    table.add_column("ISA-L function", no_wrap=True)
    for name in ("ISA-L GB/s", "ISA-L × base", "÷ ISA-L"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("ok", justify="center", no_wrap=True)
    for r in rows:
        table.add_row(
            r.op,
            _shape(r.k, r.m),
            format_size(r.fragment),
            r.isa,
            _gbps(r.dwcore),
            _speedup_cell(r),
            Text(r.isal_symbol or _NONE, style="" if r.isal_symbol else "dim"),
            _gbps(r.isal),
            Text(_pair(r.isal_vs_base("cpu"), r.isal_vs_base("wall"), 1)),
            _ratio_cell(r.vs_isal("cpu"), r.vs_isal("wall")),
            Text(f"✓ {r.check}", style="green"),
        )
    return table


def _isa_summary(rows: list[IsaRow]) -> RenderableType:
    """The AVX2 ÷ scalar Reed-Solomon ratio against its bar, with ISA-L's own for reference."""
    avx2 = [r for r in rows if r.op == "encode" and r.isa == "avx2"]
    notes = Text(
        "× scalar: dwcore on that ISA ÷ dwcore scalar · ISA-L × base: that ISA-L function "
        "÷ ISA-L's own scalar *_base · ÷ ISA-L: dwcore ÷ ISA-L at the same level",
        style="dim",
    )
    if not avx2:
        return notes
    ours = ", ".join(f"{_shape(r.k, r.m)} {r.vs_scalar('cpu'):.1f}×" for r in avx2)
    theirs = ", ".join(
        f"{_shape(r.k, r.m)} {r.isal_vs_base('cpu'):.1f}×" for r in avx2 if r.isal_base
    )
    met = all(r.vs_scalar("cpu") >= RS_SIMD_TARGET for r in avx2)
    line = Text.assemble(
        ("AVX2 ÷ scalar, Reed-Solomon encode (cpu): ", "bold"),
        (ours, "bold"),
        f" — target ≥ {RS_SIMD_TARGET:.0f}× on every shape: ",
        ("met", "bold green") if met else ("not met", "bold red"),
        f" · reference ISA-L avx2 ÷ base: {theirs or _NONE}",
    )
    return Group(line, notes)


def _result_cell(t: Target) -> Text:
    if t.met is None:
        return Text("not measured", style="dim")
    out = Text("met", style="green") if t.met else Text("not met", style="bold red")
    if t.goal is not None:
        out.append(f"; goal {t.goal}: ")
        out.append("met" if t.goal_met else "not met", style="green" if t.goal_met else "red")
    return out


def _targets_section(targets: list[Target], busy: bool) -> RenderableType:
    """A table of the measured targets; the ones this run did not measure, listed below it.

    ``busy`` adds a note that other processes competed for the CPU during the run.
    """
    table = Table(
        title="Targets (worst case over the measured shapes; ratios on CPU time, "
        "thread speedup on wall time)",
        title_justify="left",
    )
    table.add_column("target", no_wrap=True)
    table.add_column("measured")
    table.add_column("bar", no_wrap=True)
    table.add_column("result", no_wrap=True)
    missing: dict[str, list[str]] = {}
    for t in targets:
        if t.met is None:
            missing.setdefault(t.measured, []).append(t.name)
            continue
        table.add_row(t.name, t.measured, t.target, _result_cell(t))
    notes = [
        Text(f"{why} — {len(names)} target(s): {'; '.join(names)}", style="dim")
        for why, names in missing.items()
    ]
    if busy:
        notes.append(
            Text(
                "other processes competed for the CPU during this run (* above): wall-time "
                "figures, the thread speedup and the overhead are the least reliable; rerun on "
                "an idle machine",
                style="yellow",
            )
        )
    return Group(table, *notes)


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
        ms: list[Measurement]
        if isinstance(r, KernelRow):
            ms = [r.dwcore, r.memcpy, *([r.isal] if r.isal is not None else [])]
        elif isinstance(r, IsaRow):
            ms = [r.dwcore, *([r.isal] if r.isal is not None else [])]
        elif isinstance(r, OverheadRow):
            ms = [r.api, r.raw]
        elif isinstance(r, (ChecksumRow, AllocRow)):
            ms = r.measurements()
        else:
            ms = [r.one]
        if any(_busy(m) for m in ms):
            return True
    return False


def render(result: BenchResult, console: Console) -> None:
    """Print the run's header, one table per group of rows that it has, then the targets.

    The targets table is left out when the run measured none of them.
    """
    console.print(_header(result))
    kernels = [r for r in result.rows if isinstance(r, KernelRow)]
    ec = [r for r in kernels if r.op in ("encode", "decode")]
    raid = [r for r in kernels if r.op in ("pq", "xor")]
    isas = [r for r in result.rows if isinstance(r, IsaRow)]
    overhead = [r for r in result.rows if isinstance(r, OverheadRow)]
    threads = [r for r in result.rows if isinstance(r, ThreadsRow)]
    checksums = [r for r in result.rows if isinstance(r, ChecksumRow)]
    allocs = [r for r in result.rows if isinstance(r, AllocRow)]
    if ec:
        title = "Reed-Solomon encode, and decode with the first m data shards lost"
        console.print(_kernel_table(title, ec))
    if raid:
        console.print(_kernel_table("RAID parity: P+Q (md order) and XOR", raid))
    if isas:
        console.print(_isa_table(isas))
        console.print(_isa_summary(isas))
    if overhead:
        console.print(_overhead_table(overhead))
    if checksums:
        console.print(checksum_table(checksums))
    if allocs:
        console.print(alloc_table(allocs))
    if threads:
        console.print(_threads_table(threads))
        console.print(
            Text(
                "2-thread cpu GB/s is per core (CPU time summed over both threads); "
                "the speedup is on wall time",
                style="dim",
            )
        )
    busy = _any_busy(result)
    if busy:
        console.print(
            Text(
                f"* wall time exceeded CPU time by over {round((_BUSY - 1) * 100)}%: the thread "
                "was descheduled (another process was busy); trust the cpu figure there",
                style="yellow",
            )
        )
    targets = evaluate(result)
    if any(t.met is not None for t in targets):
        console.print(_targets_section(targets, busy))


def write_json(result: BenchResult, path: Path) -> None:
    """Write the result (metadata, rows, derived GB/s and ratios, judged targets) as JSON."""
    data = result.to_json()
    data["targets"] = [t.to_json() for t in evaluate(result)]
    path.write_text(json.dumps(data, indent=2, default=_json_scalar) + "\n", encoding="utf-8")


def _json_scalar(value: object) -> object:
    """numpy scalars (np.float64, np.bool_, ...) as the Python values they hold."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
