"""Copy-on-write snapshots: a catalog generation over an object, compartment, pool or instance.

``instance.snapshots`` is a :class:`Snapshots`: :meth:`~Snapshots.create`
(O(1)), :meth:`~Snapshots.list`, :meth:`~Snapshots.diff`,
:meth:`~Snapshots.browse`, :meth:`~Snapshots.search`,
:meth:`~Snapshots.read` / :meth:`~Snapshots.read_stream` / :meth:`~Snapshots.preview`,
:meth:`~Snapshots.rollback`, :meth:`~Snapshots.delete` and
:meth:`~Snapshots.space` (bytes only that snapshot holds).  Extents a live
snapshot references are never freed; deleting the last snapshot that holds
them frees them.
"""

from dwcore.snapshots.models import BrowseEntry, DiffEntry, RollbackResult, SnapshotDiff
from dwcore.snapshots.service import Snapshots, parse_target
from dwcore.store.models import SnapshotInfo

__all__ = [
    "BrowseEntry",
    "DiffEntry",
    "RollbackResult",
    "SnapshotDiff",
    "SnapshotInfo",
    "Snapshots",
    "parse_target",
]
