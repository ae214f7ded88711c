"""What :meth:`dwcore.Instance.fsck` found and repaired."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FsckReport"]


@dataclass
class FsckReport:
    """Problems left (``problems``), things repaired, warnings, and what was checked.

    ``leaked_rows`` is, per pool, the rows freed because no catalog entry
    referenced them (what a crash between a data write and its commit
    leaves); ``verified`` counts versions whose content hash was checked.
    """

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    leaked_rows: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    versions: int = 0
    verified: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem is left."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "ok": self.ok,
            "problems": self.problems,
            "repaired": self.repaired,
            "warnings": self.warnings,
            "leaked_rows": self.leaked_rows,
            "objects": self.objects,
            "versions": self.versions,
            "verified": self.verified,
        }
