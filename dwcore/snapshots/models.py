"""What snapshot queries return: diffs, browse entries, roll-back outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dwcore.store.models import ObjectInfo

__all__ = ["BrowseEntry", "DiffEntry", "RollbackResult", "SnapshotDiff"]


@dataclass(frozen=True)
class DiffEntry:
    """One key that differs: ``change`` is added, removed or modified; sizes before/after."""

    compartment: str
    key: str
    change: str
    old_size: int | None
    new_size: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "compartment": self.compartment,
            "key": self.key,
            "change": self.change,
            "old_size": self.old_size,
            "new_size": self.new_size,
        }


@dataclass
class SnapshotDiff:
    """Changes from snapshot ``a`` to ``b`` (None: now), at generations ``g_a`` and ``g_b``."""

    a: int
    b: int | None
    g_a: int
    g_b: int
    added: list[DiffEntry] = field(default_factory=list)
    removed: list[DiffEntry] = field(default_factory=list)
    modified: list[DiffEntry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.added) + len(self.removed) + len(self.modified)

    @property
    def entries(self) -> list[DiffEntry]:
        """Every change, by compartment and key."""
        return sorted(
            self.added + self.removed + self.modified, key=lambda e: (e.compartment, e.key)
        )

    @property
    def bytes_added(self) -> int:
        """Bytes of added objects."""
        return sum(e.new_size or 0 for e in self.added)

    @property
    def bytes_removed(self) -> int:
        """Bytes of removed objects."""
        return sum(e.old_size or 0 for e in self.removed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "a": self.a,
            "b": self.b,
            "added": [e.to_dict() for e in self.added],
            "removed": [e.to_dict() for e in self.removed],
            "modified": [e.to_dict() for e in self.modified],
        }


@dataclass(frozen=True)
class BrowseEntry:
    """One entry below a prefix: a sub-prefix (``is_dir``, ``name`` ends in ``/``) or an
    object (with its size and version)."""

    name: str
    path: str
    is_dir: bool
    size: int | None
    info: ObjectInfo | None


@dataclass(frozen=True)
class RollbackResult:
    """A roll-back to snapshot ``snapshot``: objects restored (new versions sharing the old
    extents) and removed (not in the snapshot)."""

    snapshot: int
    restored: int
    removed: int
