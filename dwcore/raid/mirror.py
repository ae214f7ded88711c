"""RAID 1: N-way mirroring (``raid-levels.md`` §1).

Every device holds logical byte L at device offset L.  A stripe is one chunk
of C bytes with N members ``copy(0..N-1) of data 0``, copy i on device i.
"""

from __future__ import annotations

from dwcore.raid.base import Codec, Layout, Member, Role, StripeMap


class Raid1(Layout):
    """RAID 1 over N ≥ 2 devices: capacity S, survives any N-1 failures."""

    level = "1"

    @property
    def min_devices(self) -> int:
        return 2

    @property
    def fault_tolerance(self) -> int:
        return self.n_devices - 1

    @property
    def codec(self) -> Codec:
        return Codec.MIRROR

    @property
    def k(self) -> int:
        return 1

    @property
    def m(self) -> int:
        return self.n_devices - 1

    @property
    def period(self) -> int:
        return 1

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        members = tuple(Member(i, s * c, c, Role.copy(i, 0)) for i in range(self.n_devices))
        return StripeMap(s, Codec.MIRROR, 1, members)

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= self.n_devices - 1
