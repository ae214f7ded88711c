"""``dwcore audit verify|query``: check the audit chain and search the log.

Both take ``--root DIR`` (default ``$DWCORE_ROOT``, else ``./dwcore-data``)
and are themselves audited as the local owner.  ``verify`` exits with status
2 when the chain is broken (and opens a security incident); ``query``
streams matching records, one per line (JSON with ``--json``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from dwcore.audit.log import AuditLog
from dwcore.audit.query import query as run_query
from dwcore.audit.records import Category, Outcome, canonical_json
from dwcore.auth.principal import Principal
from dwcore.errors import DWError, InvalidArgumentError
from dwcore.paths import AUDIT_DIR, resolve_root

__all__ = ["audit_app", "parse_when"]

audit_app = typer.Typer(
    help="The audit log: verify the chain, query records.", no_args_is_help=True
)

RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Instance root (default: $DWCORE_ROOT, else ./dwcore-data).",
        show_default=False,
    ),
]


def _fail(exc: BaseException) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(str(exc))}", highlight=False
    )
    raise typer.Exit(1) from exc


def parse_when(text: str, name: str) -> datetime:
    """``2026-11-29``, ``2026-11-29T15:00``, ``...Z`` or with an offset; naive means UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgumentError(
            f"{name} {text!r} is not a date or time; use e.g. 2026-11-29 or 2026-11-29T15:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _open(root: Path | None) -> AuditLog:
    directory = resolve_root(root) / AUDIT_DIR
    if not directory.is_dir():
        _fail(InvalidArgumentError(f"no audit log at {directory}; check --root or $DWCORE_ROOT"))
    try:
        return AuditLog(directory)
    except (DWError, OSError) as exc:
        _fail(exc)


@audit_app.command("verify")
def verify(root: RootOpt = None) -> None:
    """Check the hash chain of every day file; say where it is broken."""
    me = Principal.local_owner()
    log = _open(root)
    try:
        report = log.verify(me.name)
        log.record(
            Category.ADMINISTRATION,
            "audit.verify",
            me.name,
            "audit",
            Outcome.SUCCESS if report.ok else Outcome.FAILURE,
            {"records": report.records, "problems": len(report.problems), "via": "local"},
            durable=True,
        )
    except (DWError, OSError) as exc:
        log.close()
        _fail(exc)
    log.close()
    out = Console(highlight=False)
    out.print(str(report))
    if not report.ok:
        raise typer.Exit(2)


@audit_app.command("query")
def query(
    since: Annotated[
        str | None, typer.Option("--since", help="From this UTC time on (inclusive).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this UTC time (exclusive).")
    ] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", help=f"One of: {', '.join(c.value for c in Category)}."),
    ] = None,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Who (a trailing * matches a prefix).")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="What, e.g. login or user.* .")
    ] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="On what, e.g. pool:tank or pool:* .")
    ] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="success, failure or denied.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per line.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Stop after N records.")
    ] = None,
    root: RootOpt = None,
) -> None:
    """Stream the records that match every filter, oldest first."""
    me = Principal.local_owner()
    filters = {
        "category": category,
        "principal": principal,
        "action": action,
        "resource": resource,
        "outcome": outcome,
    }
    try:
        start = parse_when(since, "--since") if since else None
        end = parse_when(until, "--until") if until else None
        log = _open(root)
        try:
            log.record(
                Category.DATA_ACCESS,
                "audit.read",
                me.name,
                "audit",
                Outcome.SUCCESS,
                {"via": "local", **{k: v for k, v in filters.items() if v}},
            )
        finally:
            log.close()
        records = run_query(
            log.directory,
            since=start,
            until=end,
            category=category,
            principal=principal,
            action=action,
            resource=resource,
            outcome=outcome,
        )
        for count, rec in enumerate(records, start=1):
            if as_json:
                typer.echo(canonical_json(rec.fields()).decode())
            else:
                details = json.dumps(rec.details, sort_keys=True) if rec.details else ""
                typer.echo(
                    f"{rec.ts.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} #{rec.seq} "
                    f"{rec.category.value} {rec.outcome.value} {rec.principal} {rec.action} "
                    f"{rec.resource} {details}".rstrip()
                )
            if limit is not None and count >= limit:
                break
    except (DWError, OSError) as exc:
        _fail(exc)
