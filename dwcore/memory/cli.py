"""``dwcore memory status``: this process's memory level and what would be shrunk."""

from __future__ import annotations

import typer
from rich.console import Console

from dwcore.memory.caches import CACHES
from dwcore.memory.levels import Thresholds
from dwcore.memory.reading import read_memory

__all__ = ["memory_app"]

memory_app = typer.Typer(help="Memory pressure.", no_args_is_help=True)


@memory_app.command("status")
def status() -> None:
    """RSS against the cgroup or physical limit, the level, and the registered caches."""
    reading = read_memory()
    thresholds = Thresholds()
    level = thresholds.level(reading.ratio)
    out = Console()
    out.print(
        f"used {reading.used} bytes of {reading.limit} ({100 * reading.ratio:.1f}%, "
        f"limit from {reading.source})",
        highlight=False,
    )
    out.print(
        f"level {level.label} (thresholds: elevated {thresholds.elevated:.0%}, "
        f"high {thresholds.high:.0%}, critical {thresholds.critical:.0%})",
        highlight=False,
    )
    out.print(f"caches: {', '.join(CACHES.names()) or 'none'}", highlight=False)
