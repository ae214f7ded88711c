"""Pool state reported to callers: device states, :class:`PoolStatus`, :class:`ScrubReport`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["DeviceInfo", "DeviceState", "Mismatch", "PoolStatus", "ScrubReport"]


class DeviceState(str, enum.Enum):
    """State of one pool member (``raid-levels.md`` §0.3)."""

    #: In use, every block trusted (subject to its checksum).
    ONLINE = "online"
    #: Marked failed: no I/O goes to it; its members are reconstructed on read.
    FAILED = "failed"
    #: A replacement being rebuilt: written by new writes, read only below the checkpoint.
    REBUILDING = "rebuilding"
    #: Absent, unreadable, foreign or stale when the pool was opened.
    MISSING = "missing"
    #: A hot spare (not used by this version).
    SPARE = "spare"


class DeviceInfo(NamedTuple):
    """One row of :attr:`PoolStatus.devices`: ``(device index, path, state)``."""

    device: int
    path: str
    state: DeviceState


@dataclass(frozen=True)
class PoolStatus:
    """A snapshot of a pool's health and space (bytes of user data)."""

    level: str
    devices: list[DeviceInfo]
    capacity: int
    used: int
    degraded: bool
    rebuild_progress: float | None
    failed: tuple[int, ...]
    #: Why a device is not ONLINE (missing file, foreign, stale...), by index.
    reasons: dict[int, str] = field(default_factory=dict)


class Mismatch(NamedTuple):
    """One problem scrub found: on ``device`` in ``stripe``.

    ``kind``: ``"checksum"`` (a block failed its CRC-32C), ``"io"`` (the read
    failed), ``"parity"`` / ``"copy"`` (redundancy disagrees with
    checksum-valid data), ``"lost"`` (cannot be reconstructed).
    ``how`` says what repair did (or why not).
    """

    stripe: int
    device: int
    kind: str
    repaired: bool
    how: str


@dataclass
class ScrubReport:
    """What :meth:`dwcore.pool.Pool.scrub` checked and found."""

    stripes_checked: int = 0
    rows_checked: int = 0
    bytes_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        """Mismatches that were repaired."""
        return sum(1 for m in self.mismatches if m.repaired)

    @property
    def unrepaired(self) -> int:
        """Mismatches left as found."""
        return sum(1 for m in self.mismatches if not m.repaired)

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.mismatches
