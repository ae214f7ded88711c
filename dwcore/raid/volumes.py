"""Layouts of independent volumes under dedicated parity (RAID S, Unraid).

These levels do not stripe: each data *volume* is one linear span of one
device, and parity groups tie volumes on different devices together byte
for byte — byte x of every volume of a group and byte x of the group's
parity span(s) form one codeword (``xor``: P; ``pq-md``: P and
``Q = sum g^j D_j`` with j the volume's slot in the group).  A volume shorter
than its group counts as zeros past its end.

The pool keeps every extent inside one volume (``placement = "volumes"``),
so reading it touches one device, and losing more devices than a group
tolerates loses exactly the volumes on those devices.

:meth:`VolumeLayout.stripe` still describes the level in the generic
vocabulary (chunk t of every member of a group is one stripe), so the
failure predicate can be checked against the codec like every other level.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from dwcore.raid.base import Codec, Layout


@dataclass(frozen=True)
class Span:
    """``length`` bytes at ``offset`` of ``device``'s data area."""

    device: int
    offset: int
    length: int


@dataclass(frozen=True)
class ParityGroup:
    """Volumes protected together: ``volumes`` in slot order, ``parity`` = P[, Q] spans.

    ``length`` is the group's extent in bytes (the longest volume); the parity
    spans have that length.
    """

    volumes: tuple[int, ...]
    parity: tuple[Span, ...]
    length: int
    codec: Codec


class VolumeLayout(Layout):
    """A level whose data lives in unstriped volumes with dedicated parity groups."""

    #: Tells the pool to keep each extent inside one volume.
    placement: ClassVar[str] = "volumes"

    @abstractmethod
    def volumes(self, usable: int) -> list[Span]:
        """The data volumes for per-device data areas of ``usable`` bytes, in number order."""

    @abstractmethod
    def parity_groups(self, usable: int) -> list[ParityGroup]:
        """The parity groups (every volume is in exactly one)."""

    def volume_devices(self, usable: int) -> list[int]:
        """The device of each volume."""
        return [v.device for v in self.volumes(usable)]

    def lost_volumes(self, failed: Sequence[int], usable: int) -> set[int]:
        """The volumes whose bytes cannot all be read with ``failed`` devices lost:
        a volume is lost iff its own device failed and its group lost more members
        (data and parity spans) than it has parity spans."""
        bad = set(failed)
        vols = self.volumes(usable)
        out: set[int] = set()
        for g in self.parity_groups(usable):
            down = sum(1 for v in g.volumes if vols[v].device in bad)
            down += sum(1 for p in g.parity if p.device in bad)
            if down > len(g.parity):
                out |= {v for v in g.volumes if vols[v].device in bad}
        return out
