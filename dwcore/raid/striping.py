"""RAID 0: plain striping, no redundancy (``raid-levels.md`` §1).

Chunk c goes to device ``c mod N`` at offset ``(c div N)·C``; a stripe is one
row of N chunks, so data index d of stripe s lives on device d at ``s·C``.
"""

from __future__ import annotations

from dwcore.raid.base import Codec, Layout, Member, Role, StripeMap


class Raid0(Layout):
    """RAID 0 over N ≥ 2 equal devices: capacity N·S, survives no failure."""

    level = "0"

    @property
    def min_devices(self) -> int:
        return 2

    @property
    def fault_tolerance(self) -> int:
        return 0

    @property
    def codec(self) -> Codec:
        return Codec.NONE

    @property
    def k(self) -> int:
        return self.n_devices

    @property
    def m(self) -> int:
        return 0

    @property
    def period(self) -> int:
        return 1

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        members = tuple(Member(d, s * c, c, Role.data(d)) for d in range(self.n_devices))
        return StripeMap(s, Codec.NONE, self.k, members)

    def _survives(self, failed: frozenset[int]) -> bool:
        return not failed
