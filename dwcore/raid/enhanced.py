"""Enhanced levels with mirroring or integrated spare space (``raid-levels.md`` §3).

* **RAID 1E** (IBM "Enhanced RAID level-1", md raid10 *offset* o2): chunk c
  is column ``j = c mod N`` of row ``s = c div N``; its primary copy is on
  device j at ``2s·C``, its mirror on device ``(j+1) mod N`` at
  ``(2s+1)·C`` — the data row, then the same row shifted one device.  A
  stripe is one such pair of device rows (N data indices, two copies each).
* **RAID 5EE** (Adaptec's distributed spare, md RAID-6 left-symmetric
  rotation with Q replaced by a spare chunk): stripe s has P on
  ``pd = N-1 - s mod N``, the spare chunk on ``sd = (pd+1) mod N`` and data d
  on ``(pd+2+d) mod N``, all at ``s·C``.  After device f fails the array is
  *compacted*: in every stripe where f held data or P, that chunk is
  rebuilt into the stripe's spare chunk (``compacted=f``: "the role of f in
  stripe s now lives on sd(s)"), leaving a RAID 5 over the other N-1
  devices that survives one more failure.  Spare chunks are not stripe
  members (nothing is stored there until a compaction);
  :func:`dwcore.pool.spare.compact` and :func:`~dwcore.pool.spare.expand`
  move a pool between the two placements.
"""

from __future__ import annotations

from dwcore.ec.parity import MAX_XOR_DATA
from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import DEFAULT_CHUNK_SIZE, Codec, Layout, Member, P, Role, StripeMap


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


class Raid5EE(Layout):
    """RAID 5EE: N ≥ 4 devices, rotating P and spare chunk; ``compacted`` = the failed
    device whose chunks now live in the spare chunks (None: not compacted)."""

    level = "5EE"
    OPTIONS = ("compacted",)

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        compacted: int | None = None,
    ) -> None:
        self.compacted: int | None = None
        super().__init__(n_devices, chunk_size)
        if self.k > MAX_XOR_DATA:
            raise InvalidArgumentError(
                f"RAID 5EE supports at most {MAX_XOR_DATA} data devices, "
                f"got n_devices={self.n_devices}"
            )
        if compacted is not None and (
            isinstance(compacted, bool)
            or not isinstance(compacted, int)
            or not 0 <= compacted < self.n_devices
        ):
            raise InvalidArgumentError(
                f"compacted must be a device index in 0..{self.n_devices - 1} or None, "
                f"got {compacted!r}"
            )
        self.compacted = compacted

    @property
    def options(self) -> dict[str, int | None]:
        return {"compacted": self.compacted}

    @property
    def min_devices(self) -> int:
        return 4

    @property
    def fault_tolerance(self) -> int:
        return 1

    @property
    def codec(self) -> Codec:
        return Codec.XOR

    @property
    def k(self) -> int:
        return self.n_devices - 2

    @property
    def m(self) -> int:
        return 1

    @property
    def period(self) -> int:
        return self.n_devices

    def parity_device(self, s: int) -> int:
        """The device of P in stripe ``s`` (before any compaction)."""
        return self.n_devices - 1 - s % self.n_devices

    def spare_device(self, s: int) -> int:
        """The device of stripe ``s``'s spare chunk (at ``s·C``)."""
        return (self.parity_device(s) + 1) % self.n_devices

    def data_device(self, s: int, d: int) -> int:
        """The device of data index ``d`` of stripe ``s`` (before any compaction)."""
        return (self.parity_device(s) + 2 + d) % self.n_devices

    def compacted_on(self, failed: int) -> Raid5EE:
        """This layout after compacting device ``failed`` into the spare chunks."""
        if self.compacted is not None:
            raise InvalidArgumentError(
                f"RAID 5EE is already compacted (device {self.compacted}); replace and expand "
                "it before compacting another device"
            )
        return Raid5EE(self.n_devices, self.chunk_size, compacted=failed)

    def expanded(self) -> Raid5EE:
        """This layout with the spare chunks free again (after expansion)."""
        return Raid5EE(self.n_devices, self.chunk_size)

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        off = s * c
        moved = {self.compacted: self.spare_device(s)} if self.compacted is not None else {}
        members = [
            Member(moved.get(dev, dev), off, c, Role.data(d))
            for d, dev in ((d, self.data_device(s, d)) for d in range(self.k))
        ]
        pd = self.parity_device(s)
        members.append(Member(moved.get(pd, pd), off, c, P))
        return StripeMap(s, Codec.XOR, self.k, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed - {self.compacted}) <= 1
