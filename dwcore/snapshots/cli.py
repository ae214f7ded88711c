"""``dwcore snapshot create|list|diff|browse|search|cat|rollback|delete``.

Snapshots are named by their id (``dwcore snapshot list`` shows them).
Targets are ``instance``, ``pool:<name>``, ``compartment:<name>`` or
``object:<compartment>/<key>``.  Times are ISO 8601 (UTC when no zone is
given); sizes take units (``10MiB``).  Every command takes ``--root`` and
acts as the local owner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dwcore.config import parse_size
from dwcore.errors import InvalidArgumentError
from dwcore.store.cli import JsonOpt, RootOpt, _copy_out, _human, fail, opened, when

__all__ = ["snapshot_app"]

snapshot_app = typer.Typer(
    help="Copy-on-write snapshots: create, list, diff, browse, search, cat, rollback, delete.",
    no_args_is_help=True,
)

IdArg = Annotated[int, typer.Argument(help="Snapshot id.")]
CompArg = Annotated[
    str | None,
    typer.Argument(help="Compartment (implied by a compartment or object snapshot)."),
]


def _size(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        fail(InvalidArgumentError(f"{what}: {exc}"))


@snapshot_app.command("create")
def create(
    target: Annotated[
        str,
        typer.Argument(help="instance, pool:<name>, compartment:<name> or object:<c>/<key>."),
    ] = "instance",
    message: Annotated[str, typer.Option("--message", "-m", help="Description.")] = "",
    root: RootOpt = None,
) -> None:
    """Take a snapshot (instant: records the catalog generation)."""
    with opened(root) as inst:
        info = inst.snapshots.create(target, message)
    typer.echo(f"snapshot {info.id} of {info.target} at generation {info.generation}")


@snapshot_app.command("list")
def list_(
    target: Annotated[str | None, typer.Option("--target", "-t", help="Only this target.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Taken at or after.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Taken before.")] = None,
    space: Annotated[
        bool, typer.Option("--space", help="Also compute the bytes only each snapshot holds.")
    ] = False,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """List snapshots, oldest first."""
    with opened(root) as inst:
        snaps = inst.snapshots.list(target, when(since, "--since"), when(until, "--until"))
        sizes = {s.id: inst.snapshots.space(s.id) for s in snaps} if space else {}
    if as_json:
        rows = [
            {**s.to_dict(), **({"exclusive_bytes": sizes[s.id]} if space else {})} for s in snaps
        ]
        typer.echo(json.dumps(rows))
        return
    for s in snaps:
        extra = f"\t{_human(sizes[s.id])}" if space else ""
        typer.echo(
            f"{s.id}\t{s.created_at:%Y-%m-%d %H:%M:%S}\t{s.target}\tgen {s.generation}"
            f"{extra}\t{s.description}"
        )


@snapshot_app.command("diff")
def diff(
    a: IdArg,
    b: Annotated[int | None, typer.Argument(help="Second snapshot (default: now).")] = None,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """What was added, removed and modified from snapshot A to B (or now)."""
    with opened(root) as inst:
        d = inst.snapshots.diff(a, b)
    if as_json:
        typer.echo(json.dumps(d.to_dict()))
        return
    marks = {"added": "+", "removed": "-", "modified": "M"}
    for e in d.entries:
        sizes = f"{_human(e.old_size)} -> {_human(e.new_size)}"
        typer.echo(f"{marks[e.change]} {e.compartment}/{e.key}\t{sizes}")
    typer.echo(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.modified)} modified")


@snapshot_app.command("browse")
def browse(
    snapshot: IdArg,
    compartment: CompArg = None,
    prefix: Annotated[str, typer.Argument(help="Key prefix (a 'directory', ending in /).")] = "",
    root: RootOpt = None,
) -> None:
    """List one level of keys below a prefix as of a snapshot."""
    with opened(root) as inst:
        entries = inst.snapshots.browse(snapshot, compartment, prefix)
    for e in entries:
        typer.echo(f"{'dir' if e.is_dir else _human(e.size):>10}  {e.name}")


@snapshot_app.command("search")
def search(
    snapshot: IdArg,
    pattern: Annotated[str, typer.Argument(help="Glob on keys ('*' also matches '/').")] = "*",
    compartment: Annotated[
        str | None, typer.Option("--compartment", "-c", help="Only this compartment.")
    ] = None,
    min_size: Annotated[
        str | None, typer.Option("--min-size", help="At least (e.g. 1MiB).")
    ] = None,
    max_size: Annotated[str | None, typer.Option("--max-size", help="At most.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Written at or after.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Written before.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 1000,
    root: RootOpt = None,
) -> None:
    """Find objects in a snapshot by key glob, size and time."""
    with opened(root) as inst:
        found = inst.snapshots.search(
            snapshot,
            pattern,
            compartment,
            min_size=_size(min_size, "--min-size"),
            max_size=_size(max_size, "--max-size"),
            since=when(since, "--since"),
            until=when(until, "--until"),
            limit=limit,
        )
    for o in found:
        typer.echo(f"{o.size:>12}  {o.created_at:%Y-%m-%d %H:%M:%S}  {o.compartment}/{o.key}")


@snapshot_app.command("cat")
def cat(
    snapshot: IdArg,
    compartment: CompArg = None,
    key: Annotated[
        str | None, typer.Argument(help="Object key (implied by an object snapshot).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    root: RootOpt = None,
) -> None:
    """Write an object as of a snapshot to stdout or a file."""
    with opened(root) as inst, inst.snapshots.read_stream(snapshot, compartment, key) as stream:
        _copy_out(stream, output)


@snapshot_app.command("rollback")
def rollback(
    snapshot: IdArg,
    compartment: CompArg = None,
    key: Annotated[str | None, typer.Argument(help="Only this object.")] = None,
    root: RootOpt = None,
) -> None:
    """Roll a compartment (or one object) back to a snapshot; undo with a later snapshot."""
    with opened(root) as inst:
        res = inst.snapshots.rollback(snapshot, compartment, key)
    typer.echo(
        f"rolled back to snapshot {res.snapshot}: {res.restored} restored, {res.removed} removed"
    )


@snapshot_app.command("delete")
def delete(snapshot: IdArg, root: RootOpt = None) -> None:
    """Delete a snapshot; frees what only it held."""
    with opened(root) as inst:
        freed = inst.snapshots.delete(snapshot)
    typer.echo(f"deleted snapshot {snapshot}; freed {_human(freed)}")
