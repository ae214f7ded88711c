"""``dwcore config validate FILE`` and ``dwcore config show FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dwcore.config.loader import validate_file
from dwcore.config.report import ValidationReport

__all__ = ["config_app"]

config_app = typer.Typer(
    help="The instance configuration file (dwcore.toml).", no_args_is_help=True
)

FileArg = Annotated[Path, typer.Argument(help="The configuration file (dwcore.toml).")]
NoResources = Annotated[
    bool,
    typer.Option(
        "--no-resources", help="Check the file only: skip the disk, memory and open-file checks."
    ),
]


def _print(report: ValidationReport) -> None:
    err = Console(stderr=True)
    for issue in report.errors:
        err.print(
            f"error: {issue}", style="bold red", markup=False, highlight=False, soft_wrap=True
        )
    for issue in report.warnings:
        err.print(
            f"warning: {issue}", style="yellow", markup=False, highlight=False, soft_wrap=True
        )


@config_app.command("validate")
def validate(path: FileArg, no_resources: NoResources = False) -> None:
    """Check FILE before start-up: every error and warning names the key, the value and
    what is allowed.  Exits 1 when there is an error (warnings alone exit 0)."""
    report = validate_file(path, resources=not no_resources)
    _print(report)
    out = Console()
    if report.config is not None and report.ok:
        config = report.config
        out.print(
            f"{path}: valid (instance {config.instance.name!r}, {len(config.pools)} pool(s), "
            f"{len(report.warnings)} warning(s))",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(
            f"{path}: {len(report.errors)} error(s)", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(1)


@config_app.command("show")
def show(path: FileArg) -> None:
    """Print FILE's effective configuration (defaults filled in, sizes in bytes) as JSON."""
    report = validate_file(path, resources=False)
    _print(report)
    if report.config is None or not report.ok:
        raise typer.Exit(1)
    typer.echo(json.dumps(report.config.model_dump(mode="json"), indent=2))
