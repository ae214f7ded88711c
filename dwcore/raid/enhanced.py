"""Enhanced levels with mirroring or integrated spare space (``raid-levels.md`` §3).

* **RAID 1E** (IBM "Enhanced RAID level-1", md raid10 *offset* o2): chunk c
  is column ``j = c mod N`` of row ``s = c div N``; its primary copy is on
  device j at ``2s·C``, its mirror on device ``(j+1) mod N`` at
  ``(2s+1)·C`` — the data row, then the same row shifted one device.  A
  stripe is one such pair of device rows (N data indices, two copies each).
"""

from __future__ import annotations

from dwcore.raid.base import Codec, Layout, Member, Role, StripeMap


class Raid1E(Layout):
    """RAID 1E: striped mirroring over N ≥ 2 devices (N = 2 behaves as RAID 1).

    Survives exactly the failure sets with no two cyclically adjacent
    devices (i and i+1 mod N): guaranteed 1, best ⌊N/2⌋.
    """

    level = "1E"

    @property
    def min_devices(self) -> int:
        return 2

    @property
    def fault_tolerance(self) -> int:
        return 1

    @property
    def codec(self) -> Codec:
        return Codec.MIRROR

    @property
    def k(self) -> int:
        return self.n_devices

    @property
    def m(self) -> int:
        return 1

    @property
    def period(self) -> int:
        return 1

    @property
    def device_bytes_per_stripe(self) -> int:
        return 2 * self.chunk_size

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c, n = self.chunk_size, self.n_devices
        members: list[Member] = []
        for j in range(n):
            members.append(Member(j, 2 * s * c, c, Role.copy(0, j)))
            members.append(Member((j + 1) % n, (2 * s + 1) * c, c, Role.copy(1, j)))
        return StripeMap(s, Codec.MIRROR, n, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        n = self.n_devices
        return not any((i + 1) % n in failed for i in failed)
