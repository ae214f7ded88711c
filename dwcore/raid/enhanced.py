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

import math
from collections.abc import Sequence

from dwcore.ec.parity import MAX_XOR_DATA
from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Layout,
    Member,
    P,
    Role,
    RoleKind,
    StripeMap,
    check_int,
)
from dwcore.raid.parity import Raid5, Raid6


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


class _EndSpare(Layout):
    """RAID 5E / 6E: RAID 5 (6) left-symmetric with the spare space at the end of every member.

    Normal placement: RAID 5 (6) over all N devices inside the data area
    ``[0, A)``, ``A = (N-1-p)·S/(N-p)``.  After device f fails the array is
    *compressed* (``absent=f``): RAID 5 (6) over the N-1 survivors using
    their whole S; a replacement is *expanded* back.  Both keep every logical
    chunk's address, so a stripe here is a fixed run of
    K = (N-p)·(N-1-p) logical chunks — N-1-p inner stripes of the normal
    placement or N-p of the compressed one, each its own parity group
    (``xor-groups`` / ``pq-md-groups``) — and extents keep their rows.

    While a reshape runs, ``position`` is its progress: compression (from
    ``reshape_from=None`` to ``absent=f``) moves stripes from the end
    backwards, so stripes at or after ``position`` are in the new placement;
    expansion (from ``reshape_from=f`` to ``absent=None``) moves forwards, so
    stripes before ``position`` are.  :mod:`dwcore.pool.spare` runs both.
    """

    OPTIONS = ("absent", "reshape_from", "position")
    #: Parity members per inner stripe (1 for 5E, 2 for 6E).
    PARITY: int

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        absent: int | None = None,
        reshape_from: int | None = None,
        position: int | None = None,
    ) -> None:
        self.absent: int | None = None
        self.reshape_from: int | None = None
        self.position: int | None = None
        super().__init__(n_devices, chunk_size)
        n = self.n_devices
        for name, value in (("absent", absent), ("reshape_from", reshape_from)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n
            ):
                raise InvalidArgumentError(
                    f"{name} must be a device index in 0..{n - 1} or None, got {value!r}"
                )
        if position is not None:
            check_int("position", position, 0)
            if (absent is None) == (reshape_from is None):
                raise InvalidArgumentError(
                    "a reshape goes from all devices to absent=f (compression) or from "
                    "reshape_from=f back to all devices (expansion)"
                )
        elif reshape_from is not None:
            raise InvalidArgumentError("reshape_from needs a position")
        self.absent, self.reshape_from, self.position = absent, reshape_from, position
        self._inner = {
            None: self._inner_layout(n),
            "less": self._inner_layout(n - 1),
        }

    def _inner_layout(self, n: int) -> Raid5 | Raid6:
        return Raid5(n, self.chunk_size) if self.PARITY == 1 else Raid6(n, self.chunk_size)

    @property
    def options(self) -> dict[str, int | None]:
        return {"absent": self.absent, "reshape_from": self.reshape_from, "position": self.position}

    @property
    def fault_tolerance(self) -> int:
        return self.PARITY

    @property
    def codec(self) -> Codec:
        return Codec.XOR_GROUPS if self.PARITY == 1 else Codec.PQ_MD_GROUPS

    @property
    def k(self) -> int:
        n, p = self.n_devices, self.PARITY
        return (n - p) * (n - 1 - p)

    @property
    def m(self) -> int:
        return self.PARITY * (self.n_devices - self.PARITY)

    @property
    def period(self) -> int:
        n, p = self.n_devices, self.PARITY
        return math.lcm(n // math.gcd(n, n - 1 - p), (n - 1) // math.gcd(n - 1, n - p))

    @property
    def period_bytes(self) -> int:
        return (self.n_devices - self.PARITY) * self.chunk_size

    @property
    def device_bytes_per_stripe(self) -> int:
        return self.chunk_size

    def stripe_count(self, device_size: int | Sequence[int]) -> int:
        return self.usable_device_size(device_size) // self.period_bytes

    def spare_area(self, usable: int) -> int:
        """Where the spare space starts on every member (A) for a data area of ``usable``."""
        n, p = self.n_devices, self.PARITY
        return usable // self.period_bytes * (n - 1 - p) * self.chunk_size

    # -- placement ---------------------------------------------------------

    def placement_of(self, s: int) -> int | None:
        """The absent device of the placement stripe ``s`` is in (None: all devices)."""
        if self.position is None:
            return self.absent
        if self.reshape_from is None:  # compressing, backwards
            return self.absent if s >= self.position else None
        return None if s < self.position else self.reshape_from  # expanding, forwards

    def with_state(
        self, absent: int | None, reshape_from: int | None = None, position: int | None = None
    ) -> _EndSpare:
        """The same array in another placement state."""
        return type(self)(
            self.n_devices,
            self.chunk_size,
            absent=absent,
            reshape_from=reshape_from,
            position=position,
        )

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        absent = self.placement_of(s)
        devs = [d for d in range(self.n_devices) if d != absent]
        inner = self._inner[None if absent is None else "less"]
        kk = inner.k
        per = self.k // kk  # inner stripes in this stripe
        data: list[Member] = [Member(0, 0, 0, Role.data(0))] * self.k
        parity: list[Member] = []
        groups: list[tuple[int, ...]] = []
        for gi in range(per):
            i = s * per + gi
            idx: list[int] = []
            for mem in inner.stripe(i).members:
                dev = devs[mem.device]
                if mem.role.kind is RoleKind.DATA:
                    d = gi * kk + mem.role.index
                    data[d] = Member(dev, mem.device_offset, mem.length, Role.data(d))
                    idx.append(d)
                else:
                    idx.append(self.k + len(parity))
                    parity.append(
                        Member(dev, mem.device_offset, mem.length, Role(mem.role.kind, gi))
                    )
            groups.append(tuple(idx))
        return StripeMap(s, self.codec, self.k, tuple(data + parity), tuple(groups))

    def member_at(self, device: int, device_offset: int) -> tuple[StripeMap, Member]:
        dev = check_int("device", device, 0)
        off = check_int("device_offset", device_offset, 0)
        n, p, c = self.n_devices, self.PARITY, self.chunk_size
        for rows in (n - 1 - p, n - p):
            s = off // (rows * c)
            if s < 0:
                continue
            sm = self.stripe(s)
            for mem in sm.on_device(dev):
                if mem.device_offset <= off < mem.device_offset + mem.length:
                    return sm, mem
        raise InvalidArgumentError(f"no member owns byte {off} of device {dev}")

    def _survives(self, failed: frozenset[int]) -> bool:
        states = {self.absent} if self.position is None else {self.absent, self.reshape_from}
        return all(len(failed - {a}) <= self.PARITY for a in states)


class Raid5E(_EndSpare):
    """RAID 5E: N ≥ 4 devices, RAID 5 plus spare space at the end of every member;
    one failure, or two sequential ones once the first is compressed away."""

    level = "5E"
    PARITY = 1

    @property
    def min_devices(self) -> int:
        return 4


class Raid6E(_EndSpare):
    """RAID 6E: N ≥ 5 devices, RAID 6 plus spare space at the end of every member;
    two concurrent failures, three sequential once the first is compressed away."""

    level = "6E"
    PARITY = 2

    @property
    def min_devices(self) -> int:
        return 5
