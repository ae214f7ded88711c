"""The records the object store hands out: compartments, object versions, snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dwcore.pool import Extent

__all__ = [
    "CompartmentInfo",
    "ExtentRef",
    "ListPage",
    "ObjectInfo",
    "SnapshotInfo",
    "utc",
]


def utc(ts: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, timezone.utc)


@dataclass(frozen=True)
class CompartmentInfo:
    """A compartment: a named namespace of objects with an owner and an ACL.

    ``acl`` maps a principal name to the permissions the compartment grants
    it on itself and its objects (actions such as ``object.read`` or
    wildcards such as ``object.*``), on top of its roles.
    """

    id: int
    name: str
    owner: str
    acl: dict[str, tuple[str, ...]]
    partitions: int
    tier: str
    created: float
    generation: int

    @property
    def created_at(self) -> datetime:
        """Creation time (UTC)."""
        return utc(self.created)


@dataclass(frozen=True)
class ExtentRef:
    """One extent of a version: where the bytes ``[offset, offset + length)`` of the object live."""

    id: int
    pool: str
    extent: Extent
    offset: int

    @property
    def length(self) -> int:
        """Bytes of the object held by this extent."""
        return self.extent.length


@dataclass(frozen=True)
class ObjectInfo:
    """One version of an object: its size, blake3 content hash, owner, metadata and extents.

    ``generation`` is the catalog generation that created the version;
    ``version_id`` identifies it for good (a roll-back makes a new one).
    """

    compartment: str
    key: str
    version_id: int
    size: int
    content_hash: str
    owner: str
    metadata: dict[str, str]
    created: float
    generation: int
    pool: str
    partition: int
    extents: tuple[ExtentRef, ...] = field(default=(), repr=False)

    @property
    def created_at(self) -> datetime:
        """When this version was written (UTC)."""
        return utc(self.created)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (no extents)."""
        return {
            "compartment": self.compartment,
            "key": self.key,
            "version_id": self.version_id,
            "size": self.size,
            "content_hash": self.content_hash,
            "owner": self.owner,
            "metadata": dict(self.metadata),
            "created": self.created_at.isoformat(),
            "generation": self.generation,
            "pool": self.pool,
            "partition": self.partition,
        }


@dataclass(frozen=True)
class ListPage:
    """One page of a listing; pass ``next_start_after`` back to get the next (None: done)."""

    objects: tuple[ObjectInfo, ...]
    next_start_after: str | None

    @property
    def keys(self) -> list[str]:
        """The keys on this page."""
        return [o.key for o in self.objects]


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot: a catalog generation over a target, with a description.

    ``kind`` is ``instance``, ``pool``, ``compartment`` or ``object``;
    ``target`` is its textual resource form (``compartment:photos``).
    """

    id: int
    kind: str
    target: str
    compartment_id: int | None
    compartment: str | None
    key: str | None
    pool: str | None
    generation: int
    description: str
    owner: str
    created: float

    @property
    def created_at(self) -> datetime:
        """When the snapshot was taken (UTC)."""
        return utc(self.created)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "generation": self.generation,
            "description": self.description,
            "owner": self.owner,
            "created": self.created_at.isoformat(),
        }
