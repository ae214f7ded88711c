"""The ``dwcore`` command line.

``dwcore --version`` prints the version and the instruction set the kernels
use; ``dwcore bench`` (alone, or as ``dwcore bench kernels``) races dwcore's
kernels against ISA-L and memcpy, prints the tables and ends with the targets
judged from them.  ``dwcore pool create|status|scrub|rebuild|replace|fail``
manages pools (:mod:`dwcore.pool.cli`); ``dwcore plugins list|validate``
shows and checks the installed plugins (:mod:`dwcore.plugins.cli`);
``dwcore memory status`` shows the memory-pressure level (:mod:`dwcore.memory.cli`);
``dwcore config validate|show FILE`` checks a ``dwcore.toml`` (:mod:`dwcore.config.cli`);
``dwcore put|get|ls|rm|fsck`` work on objects (:mod:`dwcore.store.cli`) and
``dwcore snapshot ...`` on snapshots (:mod:`dwcore.snapshots.cli`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import dwcore
from dwcore import native
from dwcore.audit.cli import audit_app
from dwcore.auth.cli import key_app, role_app, user_app
from dwcore.bench.kernels import VerificationError
from dwcore.bench.options import GROUPS, BenchOptions, parse_groups, parse_sizes
from dwcore.bench.report import render, write_json
from dwcore.bench.runner import Progress as ProgressCallback
from dwcore.bench.runner import run_benchmarks
from dwcore.config.cli import config_app
from dwcore.errors import InvalidArgumentError
from dwcore.memory.cli import memory_app
from dwcore.plugins.cli import plugins_app
from dwcore.pool.cli import pool_app
from dwcore.snapshots.cli import snapshot_app
from dwcore.store import cli as store_cli
from dwcore.store.cli import bench_store as bench_store_cmd

__all__ = ["app", "main"]

app = typer.Typer(
    name="dwcore",
    help="dwcore: RAID layouts, erasure coding and checksums with SIMD C kernels.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(
    help="Benchmarks. Without a subcommand, runs the kernel benchmark (`kernels`).",
)
app.add_typer(bench_app, name="bench")
app.add_typer(pool_app, name="pool")
app.add_typer(user_app, name="user")
app.add_typer(role_app, name="role")
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")
app.add_typer(plugins_app, name="plugins")
app.add_typer(memory_app, name="memory")
app.add_typer(config_app, name="config")
app.add_typer(snapshot_app, name="snapshot")
app.command("put")(store_cli.put)
app.command("get")(store_cli.get)
app.command("ls")(store_cli.ls)
app.command("rm")(store_cli.rm)
app.command("fsck")(store_cli.fsck)
bench_app.command("store")(bench_store_cmd)

#: Width of tables when stdout is not a terminal (files, CI logs).
_PLAIN_WIDTH = 160


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(
            f"dwcore {dwcore.__version__} "
            f"(isa: detected {native.detected_isa()}, active {native.active_isa()})"
        )
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and the detected and active instruction sets.",
        ),
    ] = False,
) -> None:
    """dwcore: RAID layouts, erasure coding and checksums with SIMD C kernels."""


QuickOpt = Annotated[
    bool,
    typer.Option(
        "--quick", help="Smoke run (about 30 s): two RS shapes, 8 disks, 64 KiB and 1 MiB."
    ),
]
OnlyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        help=f"Run only these groups: {', '.join(GROUPS)} (comma-separated or repeated).",
        show_default=False,
    ),
]
SizesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sizes",
        help="Fragment sizes, e.g. 4K,64K,1M (multiples of 64 bytes). Default: 4K,64K,1M. "
        "The isa group always runs at 64 KiB.",
        show_default=False,
    ),
]
NoColdOpt = Annotated[
    bool,
    typer.Option("--no-out-of-cache", help="Skip the runs that rotate through 256 MiB."),
]
RepeatsOpt = Annotated[
    int | None,
    typer.Option(
        "--repeats",
        min=5,
        help="Timed samples per figure (the median is shown). Default: 7, 5 with --quick.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help="Also write the results, with run metadata, to this JSON file.",
        dir_okay=False,
        writable=True,
        show_default=False,
    ),
]


def _options(
    quick: bool, only: list[str] | None, sizes: list[str] | None, no_cold: bool, repeats: int | None
) -> BenchOptions:
    options = BenchOptions.quick() if quick else BenchOptions()
    changes: dict[str, object] = {"out_of_cache": not no_cold}
    try:
        if only:
            changes["groups"] = parse_groups(only)
        if sizes:
            changes["sizes"] = parse_sizes(sizes)
    except InvalidArgumentError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if repeats is not None:
        changes["repeats"] = repeats
    return options.replace(**changes)


@contextmanager
def _progress(console: Console) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on a terminal; nothing when output is redirected."""
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("[progress.description]{task.description:<36}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("bench", total=None)

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label)

        yield update


def _run_kernels(options: BenchOptions, json_path: Path | None) -> None:
    out = Console()
    if not out.is_terminal:
        out = Console(width=_PLAIN_WIDTH)
    err = Console(stderr=True)
    try:
        with _progress(err) as progress:
            result = run_benchmarks(options, progress)
    except VerificationError as exc:
        err.print(f"[bold red]✗ verification failed:[/] {exc}")
        raise typer.Exit(1) from exc
    render(result, out)
    if json_path is not None:
        write_json(result, json_path)
        err.print(f"wrote {json_path}")


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    quick: QuickOpt = False,
    only: OnlyOpt = None,
    sizes: SizesOpt = None,
    no_out_of_cache: NoColdOpt = False,
    repeats: RepeatsOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Benchmarks. Without a subcommand, runs the kernel benchmark (`dwcore bench kernels`)."""
    if ctx.invoked_subcommand is None:
        _run_kernels(_options(quick, only, sizes, no_out_of_cache, repeats), json_path)


@bench_app.command("kernels")
def kernels(
    quick: QuickOpt = False,
    only: OnlyOpt = None,
    sizes: SizesOpt = None,
    no_out_of_cache: NoColdOpt = False,
    repeats: RepeatsOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Race dwcore's kernels against ISA-L and memcpy: encode, decode, P+Q, XOR.

    Interleaved in one process, medians on thread CPU time and wall time,
    in cache and rotating through 256 MiB of buffers; then every instruction
    set against ISA-L's matching functions, the Python call overhead and
    two-thread scaling; last, the targets judged from those figures.  GB/s
    counts data bytes (k × fragment).
    """
    _run_kernels(_options(quick, only, sizes, no_out_of_cache, repeats), json_path)


@bench_app.command("pool")
def bench_pool(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Directory for the device files (default: a temporary one in /dev/shm)."
        ),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option("--device", "-d", help="Benchmark on these devices instead (repeat)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Use devices that hold a file system or a pool.")
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer extents, three passes (about 20 s).")
    ] = False,
    wall_clock: Annotated[
        bool,
        typer.Option(
            "--wall-clock",
            help="Time passes by the wall clock even on RAM-backed files (default there: "
            "process CPU time, which other load on a shared machine does not inflate).",
        ),
    ] = False,
) -> None:
    """The pool engine (RAID 5 ×6; 6, 10, 50, 60, MD10, Z2, Z3, Unraid, dRAID, FR, 7, Beyond
    and Adaptive ×8) against plain pwrite/pread.

    1 MiB extents: sequential write and read against the same physical bytes
    written and read with os.pwrite/os.pread to the same files; degraded read
    at the maximum tolerated failures; rebuild against raw writes to the
    replacement; 4 KiB extent read latency.  Ends with the issue's targets.
    """
    from rich.table import Table

    from dwcore.bench.pool import judge, run_pool_bench

    out = Console()
    if not out.is_terminal:
        out = Console(width=_PLAIN_WIDTH)
    err = Console(stderr=True)
    target = str(directory) if directory is not None else None
    try:
        rows = run_pool_bench(
            target,
            list(device or []),
            extents=32 if quick else 128,
            repeats=3 if quick else 5,
            cpu_time=False if wall_clock else None,
            force=force,
            progress=lambda what: err.print(f"[dim]… {what}[/]"),
        )
    except (dwcore.DWError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    table = Table(
        "level",
        "N",
        "write MiB/s",
        "raw",
        "×",
        "read MiB/s",
        "raw",
        "×",
        "degraded (F)",
        "×",
        "rebuild MiB/s",
        "raw",
        "×",
        "4K p50 µs",
        "4K p99 µs",
    )
    for r in rows:
        table.add_row(
            r.level,
            str(r.devices),
            f"{r.write:.0f}",
            f"{r.raw_write:.0f}",
            f"{r.write_ratio:.2f}",
            f"{r.read:.0f}",
            f"{r.raw_read:.0f}",
            f"{r.read_ratio:.2f}",
            f"{r.degraded_read:.0f} ({r.failed})",
            f"{r.degraded_ratio:.2f}",
            f"{r.rebuild:.0f}",
            f"{r.raw_rebuild:.0f}",
            f"{r.rebuild_ratio:.2f}",
            f"{r.p50_4k_us:.0f}",
            f"{r.p99_4k_us:.0f}",
        )
    out.print(table)
    ram = bool(rows) and rows[0].ram
    if rows and rows[0].cpu_time:
        out.print("[dim]RAM-backed files: passes timed by process CPU time (user + system)[/]")
    for name, value, bar, met in judge(rows, ram):
        mark = "[green]✓[/]" if met else ("[red]✗[/]" if met is False else "[dim]–[/]")
        out.print(f"{mark} {name}: {value:.2f} (target {bar})")


def main() -> None:
    """Entry point of the ``dwcore`` console script."""
    app()
