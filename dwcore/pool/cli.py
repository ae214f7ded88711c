"""``dwcore pool ...``: create, inspect, scrub, rebuild, replace and fail pool devices;
compact a RAID 5EE / 5E / 6E pool into its spare space and expand it back.

Every command takes the pool directory as its first argument.  Long work
(scrub, rebuild) shows a progress bar on stderr; errors print one line and
exit with status 1.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dwcore.errors import DWError, InvalidArgumentError
from dwcore.pool.pool import Pool, PoolDegradedWarning

__all__ = ["parse_size", "pool_app"]

pool_app = typer.Typer(help="Pools: devices combined by a RAID layout.", no_args_is_help=True)

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``"64M"``, ``"1G"``, ``"4096"``, ``"512KiB"`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise InvalidArgumentError(f"not a size: {text!r} (use e.g. 4096, 64K, 256M, 1G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def parse_option(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> a level option: VALUE as an int, a size (``64K``), a
    comma-separated list of those, or else the string itself."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InvalidArgumentError(f"an option is KEY=VALUE (e.g. parity=2), got {text!r}")

    def one(v: str) -> Any:
        v = v.strip()
        if re.fullmatch(r"\d+", v):
            return int(v)
        if re.fullmatch(r"\d+\s*[KMGT](?:i?B)?", v, re.IGNORECASE):
            return parse_size(v)
        return v

    value: Any = [one(v) for v in raw.split(",")] if "," in raw else one(raw)
    return key.strip().replace("-", "_"), value


PathArg = Annotated[Path, typer.Argument(help="The pool directory.")]
IndexArg = Annotated[int, typer.Argument(help="Device index (0-based).")]
ReplacementOpt = Annotated[
    str | None,
    typer.Option("--device", "-d", help="Replacement device (default: a new file in PATH)."),
]


def _fail(exc: Exception) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1) from exc


@contextmanager
def _opened(path: Path) -> Iterator[Pool]:
    err = Console(stderr=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", PoolDegradedWarning)
        try:
            pool = Pool.open(path)
        except (DWError, OSError) as exc:
            _fail(exc)
    for w in seen:
        err.print(f"[yellow]warning:[/] {w.message}")
    try:
        yield pool
    except (DWError, OSError) as exc:
        pool.close()
        _fail(exc)
    else:
        pool.close()


@contextmanager
def _bar(what: str, unit: str = "") -> Iterator[Callable[[int, int], Any]]:
    """A progress bar of bytes, or with ``unit`` of that many things (``"stripes"``)."""
    with Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn() if unit else DownloadColumn(binary_units=True),
        *([TextColumn(unit)] if unit else []),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _print_status(pool: Pool) -> None:
    st = pool.status()
    out = Console()
    state = "[yellow]DEGRADED[/]" if st.degraded else "[green]healthy[/]"
    out.print(
        f"pool {pool.path}  RAID {st.level}  {pool.layout.n_devices} devices  "
        f"chunk {pool.layout.chunk_size}  {state}"
    )
    pct = 100 * st.used / st.capacity if st.capacity else 0.0
    out.print(f"capacity {st.capacity} bytes, used {st.used} bytes ({pct:.1f}%)")
    if st.rebuild_progress is not None:
        out.print(f"rebuild progress {100 * st.rebuild_progress:.1f}%")
    table = Table("index", "state", "device", "note")
    for info in st.devices:
        note = st.reasons.get(info.device, "")
        table.add_row(str(info.device), info.state.value, info.path, note)
    out.print(table)


@pool_app.command("create")
def create(
    path: PathArg,
    level: Annotated[
        str,
        typer.Option(
            "--level",
            "-l",
            help="RAID level: 5, 6, 10, Z2, DP, S, UNRAID ... (dwcore.raid.LEVELS).",
        ),
    ],
    devices: Annotated[
        int | None, typer.Option("--devices", "-n", help="Create N sparse files in PATH.")
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option("--device", "-d", help="A device file or block device (repeat)."),
    ] = None,
    device_size: Annotated[
        str, typer.Option("--device-size", "-s", help="Bytes used per device (64M, 1G...).")
    ] = "64M",
    chunk_size: Annotated[
        str | None,
        typer.Option("--chunk-size", help="Stripe unit (default: the level's, most 512K)."),
    ] = None,
    copies: Annotated[
        int | None, typer.Option("--copies", help="RAID 10: devices per mirror group.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="A level option KEY=VALUE (repeat): parity=2, group=7, hyper_size=1M, "
            "data_sizes=3G,4G, fill=fill-up ...",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite devices that hold data.")
    ] = False,
) -> None:
    """Create a pool in the new directory PATH."""
    try:
        if (devices is None) == (not device):
            raise InvalidArgumentError("give either --devices N or one --device per device")
        opts: dict[str, Any] = {} if copies is None else {"copies": copies}
        opts.update(parse_option(o) for o in option or [])
        spec: Any = devices if devices is not None else list(device or [])
        pool = Pool.create(
            path,
            level,
            spec,
            parse_size(device_size),
            chunk_size=None if chunk_size is None else parse_size(chunk_size),
            force=force,
            **opts,
        )
    except (DWError, OSError) as exc:
        _fail(exc)
    with pool:
        _print_status(pool)


@pool_app.command("status")
def status(path: PathArg) -> None:
    """Show device states, capacity, use and rebuild progress."""
    with _opened(path) as pool:
        _print_status(pool)


@pool_app.command("scrub")
def scrub(
    path: PathArg,
    no_repair: Annotated[
        bool, typer.Option("--no-repair", help="Report only; change nothing.")
    ] = False,
) -> None:
    """Verify every block and the redundancy of every allocated row; repair what is wrong."""
    with _opened(path) as pool:
        with _bar("scrub") as update:
            rep = pool.scrub(repair=not no_repair, progress=update)
        out = Console()
        out.print(
            f"checked {rep.stripes_checked} stripes ({rep.rows_checked} rows): "
            f"{len(rep.mismatches)} problems, {rep.repaired} repaired, "
            f"{rep.unrepaired} not repaired"
        )
        if rep.mismatches:
            table = Table("stripe", "device", "kind", "repaired", "how")
            for m in rep.mismatches:
                table.add_row(str(m.stripe), str(m.device), m.kind, str(m.repaired), m.how)
            out.print(table)
    if rep.unrepaired:
        raise typer.Exit(2)


@pool_app.command("rebuild")
def rebuild(path: PathArg) -> None:
    """Rebuild replaced devices (resumes an interrupted rebuild)."""
    with _opened(path) as pool:
        with _bar("rebuild") as update:
            pool.rebuild(progress=update)
        _print_status(pool)


@pool_app.command("replace")
def replace(
    path: PathArg,
    index: IndexArg,
    device: ReplacementOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a device that holds data.")
    ] = False,
    no_rebuild: Annotated[
        bool, typer.Option("--no-rebuild", help="Only attach it; rebuild later.")
    ] = False,
) -> None:
    """Put a blank device in the failed slot INDEX and rebuild onto it."""
    with _opened(path) as pool:
        pool.replace_device(index, device, force=force)
        if not no_rebuild:
            with _bar("rebuild") as update:
                pool.rebuild(progress=update)
        _print_status(pool)


@pool_app.command("fail")
def fail(path: PathArg, index: IndexArg) -> None:
    """Mark device INDEX failed (no more I/O goes to it)."""
    with _opened(path) as pool:
        pool.fail_device(index)
        _print_status(pool)


@pool_app.command("compact")
def compact(path: PathArg, index: IndexArg) -> None:
    """Move failed device INDEX's share into the pool's spare space (RAID 5EE compaction,
    RAID 5E / 6E compression): the pool then survives one more failure.  Resumes an
    interrupted 5E / 6E compression."""
    from dwcore.pool import spare
    from dwcore.raid.enhanced import Raid5EE

    with _opened(path) as pool:
        with _bar("compact", "rows" if isinstance(pool.layout, Raid5EE) else "stripes") as update:
            if isinstance(pool.layout, Raid5EE):
                spare.compact(pool, index, progress=update)
            else:
                spare.compress(pool, index, progress=update)
        _print_status(pool)


@pool_app.command("expand")
def expand(
    path: PathArg,
    index: IndexArg,
    device: ReplacementOpt = None,
) -> None:
    """Put a replacement in the slot of the device a RAID 5EE / 5E / 6E pool compacted
    away and move its share back: the spare space returns.  Resumes an interrupted
    5E / 6E expansion."""
    from dwcore.pool import spare
    from dwcore.raid.enhanced import Raid5EE

    with _opened(path) as pool:
        with _bar("expand", "rows" if isinstance(pool.layout, Raid5EE) else "stripes") as update:
            spare.expand(pool, index, device, progress=update)
        _print_status(pool)
