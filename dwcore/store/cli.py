"""``dwcore put|get|ls|rm|fsck``: objects of an instance from the command line.

Every command takes ``--root DIR`` (default ``$DWCORE_ROOT``, else
``./dwcore-data``) and acts as the local owner, which the audit log records.
``put`` creates the instance (the embedded default) and the compartment when
they do not exist yet; the other commands refuse a root without an instance,
so a mistyped ``--root`` is not taken for an empty one.  Errors print one
line and exit with status 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from dwcore.errors import DWError, InvalidArgumentError, NotFoundError
from dwcore.paths import CONFIG_FILE, resolve_root

__all__ = ["RootOpt", "bench_store", "fail", "fsck", "get", "ls", "opened", "put", "rm", "when"]

RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Instance root (default: $DWCORE_ROOT, else ./dwcore-data).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(exc: BaseException) -> NoReturn:
    """Print one error line and exit with status 1."""
    Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(1) from exc


@contextmanager
def opened(root: Path | None, *, create: bool = False) -> Iterator[Any]:
    """The instance at ``root`` (created with the defaults when ``create`` and absent)."""
    from dwcore.store import Instance

    where = resolve_root(root)
    try:
        if create and not (where / CONFIG_FILE).exists():
            Console(stderr=True).print(f"creating a new instance in {where}", highlight=False)
            inst = Instance.create(where)
        else:
            inst = Instance.open(where)
    except DWError as exc:
        fail(exc)
    try:
        yield inst
    except DWError as exc:
        fail(exc)
    finally:
        inst.close()


def when(text: str | None, what: str) -> datetime | None:
    """An ISO 8601 time (UTC when no zone is given) from the command line."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(InvalidArgumentError(f"{what} {text!r} is not an ISO 8601 time (2024-05-01T12:00)"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def put(
    compartment: Annotated[str, typer.Argument(help="Compartment (created when absent).")],
    key: Annotated[str, typer.Argument(help="Object key.")],
    source: Annotated[
        str, typer.Argument(help="File to store, or '-' for stdin (streamed).")
    ] = "-",
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", "-m", help="User metadata NAME=VALUE (repeat)."),
    ] = None,
    root: RootOpt = None,
) -> None:
    """Store a file (or stdin) as an object; prints its size and blake3 hash."""
    metadata: dict[str, str] = {}
    for item in meta or []:
        name, eq, value = item.partition("=")
        if not eq:
            fail(InvalidArgumentError(f"--meta {item!r}: use NAME=VALUE"))
        metadata[name] = value
    with opened(root, create=True) as inst:
        try:
            inst.compartment(compartment)
        except NotFoundError:
            inst.create_compartment(compartment)
        try:
            if source == "-":
                info = inst.put(compartment, key, sys.stdin.buffer, metadata)
            else:
                with open(source, "rb") as fh:
                    info = inst.put(compartment, key, fh, metadata)
        except OSError as exc:
            fail(InvalidArgumentError(f"cannot read {source}: {exc.strerror or exc}"))
        typer.echo(f"{compartment}/{key}: {info.size} bytes, blake3 {info.content_hash}")


def get(
    compartment: Annotated[str, typer.Argument(help="Compartment.")],
    key: Annotated[str, typer.Argument(help="Object key.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    offset: Annotated[int, typer.Option("--offset", help="First byte.")] = 0,
    length: Annotated[int | None, typer.Option("--length", help="Bytes to read.")] = None,
    root: RootOpt = None,
) -> None:
    """Write an object (or a byte range of it) to stdout or a file, streamed."""
    with opened(root) as inst, inst.get_stream(compartment, key, offset, length) as stream:
        _copy_out(stream, output)


def _copy_out(stream: Iterator[bytes], output: Path | None) -> None:
    try:
        if output is None:
            out = sys.stdout.buffer
            for piece in stream:
                out.write(piece)
            out.flush()
        else:
            with open(output, "wb") as fh:
                for piece in stream:
                    fh.write(piece)
    except OSError as exc:
        fail(InvalidArgumentError(f"cannot write {output or 'stdout'}: {exc.strerror or exc}"))


def ls(
    compartment: Annotated[
        str | None, typer.Argument(help="Compartment (omit to list compartments).")
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="Only keys starting so.")] = "",
    start_after: Annotated[
        str | None, typer.Option("--start-after", help="Continue after this key.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many keys.")] = 1000,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """List compartments, or the objects of a compartment (one page; see --start-after)."""
    with opened(root) as inst:
        if compartment is None:
            comps = inst.list_compartments()
            if as_json:
                typer.echo(
                    json.dumps(
                        [
                            {
                                "name": c.name,
                                "owner": c.owner,
                                "tier": c.tier,
                                "partitions": c.partitions,
                            }
                            for c in comps
                        ]
                    )
                )
            for c in [] if as_json else comps:
                typer.echo(f"{c.name}\t{c.owner}\t{c.tier}\t{c.created_at:%Y-%m-%d %H:%M:%S}")
            return
        page = inst.list(compartment, prefix, start_after, limit)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "objects": [o.to_dict() for o in page.objects],
                        "next_start_after": page.next_start_after,
                    }
                )
            )
            return
        for o in page.objects:
            typer.echo(f"{o.size:>12}  {o.created_at:%Y-%m-%d %H:%M:%S}  {o.key}")
        if page.next_start_after is not None:
            Console(stderr=True).print(
                f"(more: --start-after {json.dumps(page.next_start_after)})", highlight=False
            )


def rm(
    compartment: Annotated[str, typer.Argument(help="Compartment.")],
    key: Annotated[
        str | None, typer.Argument(help="Object key (omit to delete the empty compartment).")
    ] = None,
    root: RootOpt = None,
) -> None:
    """Delete an object, or an empty compartment."""
    with opened(root) as inst:
        if key is None:
            inst.delete_compartment(compartment)
            typer.echo(f"deleted compartment {compartment}")
        else:
            info = inst.delete(compartment, key)
            typer.echo(f"deleted {compartment}/{key} ({info.size} bytes)")


def fsck(
    deep: Annotated[
        bool, typer.Option("--deep", help="Also read every version and check its blake3 hash.")
    ] = False,
    no_repair: Annotated[
        bool, typer.Option("--no-repair", help="Only report; free nothing.")
    ] = False,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Check catalog and pools; free rows a crash leaked.  Exit status 1 on problems left."""
    with opened(root) as inst:
        report = inst.fsck(repair=not no_repair, deep=deep)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        typer.echo(
            f"{report.objects} objects, {report.versions} versions kept"
            + (f", {report.verified} verified" if deep else "")
        )
        for line in report.repaired:
            typer.echo(f"repaired: {line}")
        for line in report.warnings:
            typer.echo(f"warning: {line}")
        for line in report.problems:
            typer.echo(f"PROBLEM: {line}")
        typer.echo("ok" if report.ok else f"{len(report.problems)} problem(s) left")
    if not report.ok:
        raise typer.Exit(1)


def bench_store(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Where to put the instance (default: the system's temporary dir)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer operations, 2*10^4 objects (about a minute).")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to this file.")
    ] = None,
) -> None:
    """The object store: 4 KiB put/get latency, 8 writers vs 1, 1 MiB put/get vs raw pool
    extents, snapshot creation at 10^3 and 10^5 objects, diff and listing times."""
    from dwcore.bench.store import render, run_store_bench

    err = Console(stderr=True)
    try:
        res = run_store_bench(
            str(directory) if directory is not None else None,
            quick=quick,
            progress=lambda what: err.print(f"[dim]… {what}[/]"),
        )
    except (DWError, OSError) as exc:
        fail(exc)
    for line in render(res):
        typer.echo(line)
    if json_path is not None:
        json_path.write_text(json.dumps(res.to_dict(), indent=2))
        err.print(f"wrote {json_path}")
