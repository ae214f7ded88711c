"""Nested levels built from the standard ones (``raid-levels.md`` §2): 01, 03, 50, 60, 100.

* **RAID 01** (0+1): ``copies`` replicas, each a RAID 0 of W = N/copies
  devices; chunk c is column ``j = c mod W`` at ``(c div W)·C`` on device
  ``r·W + j`` of every replica r.  A stripe is one row of W chunks, data
  index j with one ``copy(r)`` per replica.
* **RAID 03** (0+3): a RAID 3 over M members, each a RAID 0 of W devices
  (member m = devices ``m·W …``): logical byte L is byte ``a = L div (M-1)``
  of member ``L mod (M-1)``, parity member M-1 at the same a; member address
  a is column ``j = (a div C) mod W`` at ``(a div (C·W))·C + a mod C``.  A
  stripe is member chunk ``q = a div C``: column ``q mod W`` of every member,
  bytes interleaved as in RAID 3 (``interleave = "byte"``).
* **RAID 50 / 60**: G groups of n devices (group g = devices ``g·n …``);
  chunk c goes to group ``c mod G`` as chunk ``c div G`` of a RAID 5 (6)
  left-symmetric array over the group.  A stripe is inner stripe s of every
  group side by side: data index d lies in group ``d mod G`` as the group's
  data index ``d div G``, so the G·(n-1) (G·(n-2)) chunks of stripe s are
  logically consecutive; each group keeps its own P (and Q) and the stripe's
  codec is the grouped ``xor-groups`` / ``pq-md-groups``.
* **RAID 100** (plaid): T RAID-10 arrays of G mirror groups with ``copies``
  devices each; top chunk ``c2 = L div C2`` goes to array ``c2 mod T`` at
  address ``(c2 div T)·C2 + L mod C2``, then RAID 10 with chunk C inside the
  array.  A stripe is one top chunk: its ``C2/C`` chunks are the data indices,
  each with a copy on every device of its mirror group.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Layout,
    Location,
    Member,
    P,
    Piece,
    Role,
    RoleKind,
    StripeMap,
    check_int,
)
from dwcore.raid.parity import Raid5, Raid6


class PeriodicLayout(Layout):
    """A layout whose stripes do not each cover one ``device_bytes_per_stripe`` slice.

    Subclasses give :attr:`period_bytes` (device bytes per rotation period,
    on every device) and :attr:`period` (stripes per period); stripe
    ``s + period`` is stripe s with every device offset moved by
    ``period_bytes``.  Every member is one chunk long.
    """

    _owners: dict[tuple[int, int], int] | None = None

    @property
    def device_bytes_per_stripe(self) -> int:
        return self.chunk_size

    @property
    @abstractmethod
    def period_bytes(self) -> int:
        """Device bytes of one rotation period (the same on every device)."""

    def stripe_count(self, device_size: int | Sequence[int]) -> int:
        return self.usable_device_size(device_size) // self.period_bytes * self.period

    def _chunk_owners(self) -> dict[tuple[int, int], int]:
        cache = self._owners
        if cache is None:
            cache = {}
            for s in range(self.period):
                for mem in self.stripe(s).members:
                    cache[(mem.device, mem.device_offset // self.chunk_size)] = s
            self._owners = cache
        return cache

    def member_at(self, device: int, device_offset: int) -> tuple[StripeMap, Member]:
        dev = check_int("device", device, 0)
        if dev >= self.n_devices:
            raise InvalidArgumentError(f"device must be in 0..{self.n_devices - 1}, got {dev}")
        off = check_int("device_offset", device_offset, 0)
        turn, rel = divmod(off, self.period_bytes)
        s0 = self._chunk_owners().get((dev, rel // self.chunk_size))
        if s0 is None:
            raise InvalidArgumentError(f"no member owns byte {off} of device {dev}")
        sm = self.stripe(s0 + turn * self.period)
        for mem in sm.on_device(dev):
            if mem.device_offset <= off < mem.device_offset + mem.length:
                return sm, mem
        raise InvalidArgumentError(f"no member owns byte {off} of device {dev}")


def _check_multiple(level: str, n: int, unit: int, what: str) -> None:
    if n % unit:
        raise InvalidArgumentError(
            f"RAID {level} needs n_devices to be a multiple of {what}={unit}, got n_devices={n}"
        )


class Raid01(Layout):
    """RAID 01: ``copies`` ≥ 2 replicas, each a RAID 0 over W = N/copies ≥ 2 devices."""

    level = "01"
    OPTIONS = ("copies",)

    def __init__(
        self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE, *, copies: int = 2
    ) -> None:
        self.copies = check_int("copies", copies, 2)
        super().__init__(n_devices, chunk_size)
        _check_multiple(self.level, self.n_devices, self.copies, "copies")

    @property
    def options(self) -> dict[str, int]:
        return {"copies": self.copies}

    @property
    def width(self) -> int:
        """Devices per replica W = N / copies."""
        return self.n_devices // self.copies

    @property
    def min_devices(self) -> int:
        return 2 * self.copies

    @property
    def fault_tolerance(self) -> int:
        return self.copies - 1

    @property
    def codec(self) -> Codec:
        return Codec.MIRROR

    @property
    def k(self) -> int:
        return self.width

    @property
    def m(self) -> int:
        return self.copies - 1

    @property
    def period(self) -> int:
        return 1

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c, w = self.chunk_size, self.width
        members = tuple(
            Member(r * w + j, s * c, c, Role.copy(r, j))
            for j in range(w)
            for r in range(self.copies)
        )
        return StripeMap(s, Codec.MIRROR, w, members)

    def _survives(self, failed: frozenset[int]) -> bool:
        w = self.width
        return all(any(r * w + j not in failed for r in range(self.copies)) for j in range(w))


class Raid03(PeriodicLayout):
    """RAID 03: a RAID 3 over M ≥ 3 members, each a RAID 0 of ``width`` W ≥ 2 devices.

    Survives exactly when no column j has failed devices in two members.
    """

    level = "03"
    OPTIONS = ("width",)
    #: Tells the pool to interleave bytes over the data members.
    interleave = "byte"

    def __init__(
        self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE, *, width: int = 2
    ) -> None:
        self.width = check_int("width", width, 2)
        super().__init__(n_devices, chunk_size)
        _check_multiple(self.level, self.n_devices, self.width, "width")

    @property
    def options(self) -> dict[str, int]:
        return {"width": self.width}

    @property
    def members_count(self) -> int:
        """RAID-3 members M = N / W (the last holds parity)."""
        return self.n_devices // self.width

    @property
    def min_devices(self) -> int:
        return 3 * self.width

    @property
    def fault_tolerance(self) -> int:
        return 1

    @property
    def codec(self) -> Codec:
        return Codec.XOR

    @property
    def k(self) -> int:
        return self.members_count - 1

    @property
    def m(self) -> int:
        return 1

    @property
    def period(self) -> int:
        return self.width

    @property
    def period_bytes(self) -> int:
        return self.chunk_size

    def locate(self, logical_offset: int) -> Location:
        lo = check_int("logical_offset", logical_offset, 0)
        a, member = divmod(lo, self.k)
        q, o = divmod(a, self.chunk_size)
        return Location(q, member, o)

    def pieces(self, logical_offset: int, length: int) -> Iterator[Piece]:
        """One piece per byte: consecutive bytes lie on consecutive members."""
        pos = check_int("logical_offset", logical_offset, 0)
        for lo in range(pos, pos + check_int("length", length, 0)):
            s, d, o = self.locate(lo)
            yield Piece(lo, s, d, o, 1)

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c, w = self.chunk_size, self.width
        j, off = s % w, (s // w) * c
        members = [Member(m * w + j, off, c, Role.data(m)) for m in range(self.k)]
        members.append(Member(self.k * w + j, off, c, P))
        return StripeMap(s, Codec.XOR, self.k, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        w = self.width
        return all(sum(1 for f in failed if f % w == j) <= 1 for j in range(w))


class _GroupedParity(Layout):
    """RAID 50 / 60: inner stripe s of every group side by side (module docstring)."""

    OPTIONS = ("groups",)
    #: Smallest group (3 for RAID 5 inside, 4 for RAID 6).
    MIN_GROUP: int
    #: Parity members per group.
    PARITY: int

    def __init__(
        self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE, *, groups: int = 2
    ) -> None:
        self.groups = check_int("groups", groups, 2)
        super().__init__(n_devices, chunk_size)
        _check_multiple(self.level, self.n_devices, self.groups, "groups")
        self.inner: Raid5 | Raid6 = self._inner(self.group_size, self.chunk_size)

    @abstractmethod
    def _inner(self, n: int, chunk_size: int) -> Raid5 | Raid6:
        """The RAID 5 / RAID 6 layout of one group of ``n`` devices."""

    @property
    def options(self) -> dict[str, int]:
        return {"groups": self.groups}

    @property
    def group_size(self) -> int:
        """Devices per group n = N / groups."""
        return self.n_devices // self.groups

    def group_devices(self, g: int) -> range:
        """The devices of group ``g``."""
        n = self.group_size
        return range(g * n, (g + 1) * n)

    @property
    def min_devices(self) -> int:
        return self.MIN_GROUP * self.groups

    @property
    def fault_tolerance(self) -> int:
        return self.PARITY

    @property
    def codec(self) -> Codec:
        return Codec.XOR_GROUPS if self.PARITY == 1 else Codec.PQ_MD_GROUPS

    @property
    def k(self) -> int:
        return self.groups * (self.group_size - self.PARITY)

    @property
    def m(self) -> int:
        return self.PARITY * self.groups

    @property
    def period(self) -> int:
        return self.group_size

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        inner = self.inner.stripe(s)
        n, g_count, ki = self.group_size, self.groups, self.inner.k
        data: list[Member] = [Member(0, 0, 0, Role.data(0))] * (g_count * ki)
        parity: list[Member] = []
        groups: list[tuple[int, ...]] = []
        k = g_count * ki
        for g in range(g_count):
            shift = g * n
            idx: list[int] = []
            for mem in inner.members:
                dev = mem.device + shift
                if mem.role.kind is RoleKind.DATA:
                    d = mem.role.index * g_count + g
                    data[d] = Member(dev, mem.device_offset, mem.length, Role.data(d))
                    idx.append(d)
                else:
                    idx.append(k + len(parity))
                    role = Role(mem.role.kind, g)
                    parity.append(Member(dev, mem.device_offset, mem.length, role))
            groups.append(tuple(idx))
        return StripeMap(s, self.codec, k, tuple(data + parity), tuple(groups))

    def _survives(self, failed: frozenset[int]) -> bool:
        return all(
            sum(1 for d in self.group_devices(g) if d in failed) <= self.PARITY
            for g in range(self.groups)
        )


class Raid50(_GroupedParity):
    """RAID 50: G ≥ 2 RAID-5 groups of n ≥ 3 devices; one failure per group survives."""

    level = "50"
    MIN_GROUP = 3
    PARITY = 1

    def _inner(self, n: int, chunk_size: int) -> Raid5:
        return Raid5(n, chunk_size)


class Raid60(_GroupedParity):
    """RAID 60: G ≥ 2 RAID-6 groups of n ≥ 4 devices; two failures per group survive."""

    level = "60"
    MIN_GROUP = 4
    PARITY = 2

    def _inner(self, n: int, chunk_size: int) -> Raid6:
        return Raid6(n, chunk_size)


class Raid100(PeriodicLayout):
    """RAID 100: T ≥ 2 RAID-10 arrays of G ≥ 2 mirror groups of ``copies`` devices.

    N = T·G·copies; top chunk C2 = ``top_chunk_size`` (a multiple of C,
    default 16·C).
    """

    level = "100"
    OPTIONS = ("arrays", "copies", "top_chunk_size")

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        arrays: int = 2,
        copies: int = 2,
        top_chunk_size: int | None = None,
    ) -> None:
        self.arrays = check_int("arrays", arrays, 2)
        self.copies = check_int("copies", copies, 2)
        c2 = 16 * chunk_size if top_chunk_size is None else top_chunk_size
        self.top_chunk_size = check_int("top_chunk_size", c2, 1)
        super().__init__(n_devices, chunk_size)
        _check_multiple(self.level, self.n_devices, self.arrays * self.copies, "arrays·copies")
        if self.top_chunk_size % self.chunk_size:
            raise InvalidArgumentError(
                f"top_chunk_size must be a multiple of chunk_size={self.chunk_size}, "
                f"got {self.top_chunk_size}"
            )

    @property
    def options(self) -> dict[str, Any]:
        return {
            "arrays": self.arrays,
            "copies": self.copies,
            "top_chunk_size": self.top_chunk_size,
        }

    @property
    def groups(self) -> int:
        """Mirror groups per array G = N / (arrays·copies)."""
        return self.n_devices // (self.arrays * self.copies)

    @property
    def chunks_per_top(self) -> int:
        """q = C2 / C: chunks in one top chunk (the data indices of a stripe)."""
        return self.top_chunk_size // self.chunk_size

    def group_devices(self, t: int, g: int) -> range:
        """The devices of mirror group ``g`` of array ``t``."""
        first = (t * self.groups + g) * self.copies
        return range(first, first + self.copies)

    @property
    def min_devices(self) -> int:
        return 2 * self.arrays * self.copies

    @property
    def fault_tolerance(self) -> int:
        return self.copies - 1

    @property
    def codec(self) -> Codec:
        return Codec.MIRROR

    @property
    def k(self) -> int:
        return self.chunks_per_top

    @property
    def m(self) -> int:
        return self.copies - 1

    @property
    def period(self) -> int:
        q, g = self.chunks_per_top, self.groups
        return self.arrays * math.lcm(q, g) // q

    @property
    def period_bytes(self) -> int:
        q, g = self.chunks_per_top, self.groups
        return math.lcm(q, g) // g * self.chunk_size

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c, q, g_count = self.chunk_size, self.chunks_per_top, self.groups
        t, u = s % self.arrays, s // self.arrays
        members: list[Member] = []
        for r in range(q):
            inner = u * q + r  # chunk number inside array t (RAID 10 with chunk C)
            g, row = inner % g_count, inner // g_count
            for i, dev in enumerate(self.group_devices(t, g)):
                members.append(Member(dev, row * c, c, Role.copy(i, r)))
        return StripeMap(s, Codec.MIRROR, q, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        return all(
            any(d not in failed for d in self.group_devices(t, g))
            for t in range(self.arrays)
            for g in range(self.groups)
        )
