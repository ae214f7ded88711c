"""``dwcore plugins list|validate``: what is installed, and whether all of it loads."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from dwcore.plugins.manager import LoadReport, PluginManager

__all__ = ["plugins_app"]

plugins_app = typer.Typer(
    help="Plugins registered in the dwcore.plugins entry-point group.", no_args_is_help=True
)


def _print_rejections(report: LoadReport, err: Console) -> None:
    for rej in report.rejected:
        err.print(
            f"rejected: {rej}", style="bold red", markup=False, highlight=False, soft_wrap=True
        )


@plugins_app.command("list")
def list_plugins() -> None:
    """A table of the loaded plugins: id, name, version, category, capabilities, init time.

    Rejected plugins are listed after it, on stderr.
    """
    report = PluginManager().load_all()
    table = Table("id", "name", "version", "category", "capabilities", "init")
    for lp in report.loaded:
        hs = lp.handshake
        table.add_row(
            hs.plugin_id,
            hs.name,
            hs.version,
            hs.category.value,
            "\n".join(c.id for c in hs.capabilities) or "-",
            f"{hs.init_duration_s * 1e3:.2f} ms",
        )
    Console().print(table)
    _print_rejections(report, Console(stderr=True))


@plugins_app.command("validate")
def validate() -> None:
    """Run the validation suite on every plugin; exit 1 if any is rejected."""
    report = PluginManager().load_all()
    out = Console()
    for lp in report.loaded:
        out.print(f"[green]ok[/] {lp.handshake.plugin_id} {lp.handshake.version}", highlight=False)
    _print_rejections(report, Console(stderr=True))
    total = len(report.loaded) + len(report.rejected)
    out.print(f"{len(report.loaded)} of {total} plugins valid")
    if report.rejected:
        raise typer.Exit(1)
