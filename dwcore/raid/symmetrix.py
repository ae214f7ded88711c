"""RAID S: EMC Symmetrix parity RAID, unstriped (``raid-levels.md`` §5; interpretation).

Devices form ranks of G+1 (``group`` G ∈ 2..15, default 3: the 3+1 group;
7+1 is the other classic).  Each device is cut into hypervolumes ("hypers")
of ``hyper_size`` V bytes; hyper slot h of the G+1 devices of rank ρ is one
parity group: its parity hyper sits on rank member ``h mod (G+1)`` (parity
rotates by hyper, not by chunk) and the other G members hold data hypers.
A data hyper is a linear volume: byte x lives at device offset ``h·V + x``.
Parity is the XOR of the group's G data hypers at the same offset, updated
by XOR delta on every write (``P ^= old ⊕ new``, drive-side XOR in the
original; the pool runs it per parity device).

Interpretation choices (no primary RAID-S manual exists, §9): hypers are
given by size (H = S div V per device, S rounded down to a multiple of V);
volumes are numbered slot-major — ``v = (h·R + ρ)·G + d`` with d the data
member's rank in member order — so that the numbering does not depend on the
device size.  Tolerance: one failed device per rank; beyond that exactly the
volumes on the failed devices are lost.

As a stripe map (for the generic predicate oracle), chunk t of every member
of group (ρ, h) is stripe ``s = (h·R + ρ)·(V/C) + t``.
"""

from __future__ import annotations

from collections.abc import Sequence

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Location,
    Member,
    P,
    Role,
    StripeMap,
    check_int,
)
from dwcore.raid.volumes import ParityGroup, Span, VolumeLayout

__all__ = ["RaidS"]

#: Default hyper size: 1 MiB (small enough that test devices hold many hypers).
DEFAULT_HYPER_SIZE = 1 << 20


class RaidS(VolumeLayout):
    """RAID S over R ranks of G+1 devices (N = R·(G+1))."""

    level = "S"
    OPTIONS = ("group", "hyper_size")

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        group: int = 3,
        hyper_size: int = DEFAULT_HYPER_SIZE,
    ) -> None:
        self.group = check_int("group", group, 2)
        if self.group > 15:
            raise InvalidArgumentError(
                f"group must be in 2..15 (3+1 and 7+1 are usual), got {group}"
            )
        self.hyper_size = check_int("hyper_size", hyper_size, 1)
        super().__init__(n_devices, chunk_size)
        if self.hyper_size % self.chunk_size:
            raise InvalidArgumentError(
                f"hyper_size must be a multiple of chunk_size {self.chunk_size}, got {hyper_size}"
            )
        if self.n_devices % (self.group + 1):
            raise InvalidArgumentError(
                f"RAID S needs n_devices to be a multiple of group+1={self.group + 1} "
                f"(ranks of {self.group}+1), got n_devices={self.n_devices}"
            )

    @property
    def options(self) -> dict[str, int]:
        return {"group": self.group, "hyper_size": self.hyper_size}

    @property
    def ranks(self) -> int:
        """Ranks R = N / (G+1)."""
        return self.n_devices // (self.group + 1)

    @property
    def chunks_per_hyper(self) -> int:
        """Stripes per parity group, V / C."""
        return self.hyper_size // self.chunk_size

    @property
    def min_devices(self) -> int:
        return self.group + 1

    @property
    def fault_tolerance(self) -> int:
        return 1

    @property
    def codec(self) -> Codec:
        return Codec.XOR

    @property
    def k(self) -> int:
        return self.group

    @property
    def m(self) -> int:
        return 1

    @property
    def period(self) -> int:
        return (self.group + 1) * self.ranks * self.chunks_per_hyper

    @property
    def period_bytes(self) -> int:
        return self.hyper_size

    def stripe_count(self, device_size: int | Sequence[int]) -> int:
        """Stripes of whole hypers (S is rounded down to a multiple of V)."""
        hypers = self.usable_device_size(device_size) // self.hyper_size
        return hypers * self.ranks * self.chunks_per_hyper

    def parity_member(self, h: int) -> int:
        """Rank member holding the parity hyper of slot ``h``."""
        return h % (self.group + 1)

    def data_members(self, h: int) -> list[int]:
        """Rank members holding the data hypers of slot ``h``, in data order."""
        pm = self.parity_member(h)
        return [i for i in range(self.group + 1) if i != pm]

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        q, t = divmod(s, self.chunks_per_hyper)
        h, rho = divmod(q, self.ranks)
        base = rho * (self.group + 1)
        off = h * self.hyper_size + t * self.chunk_size
        c = self.chunk_size
        members = [
            Member(base + i, off, c, Role.data(d)) for d, i in enumerate(self.data_members(h))
        ]
        members.append(Member(base + self.parity_member(h), off, c, P))
        return StripeMap(s, Codec.XOR, self.group, tuple(members))

    def member_at(self, device: int, device_offset: int) -> tuple[StripeMap, Member]:
        dev = check_int("device", device, 0)
        if dev >= self.n_devices:
            raise InvalidArgumentError(f"device must be in 0..{self.n_devices - 1}, got {dev}")
        off = check_int("device_offset", device_offset, 0)
        h, x = divmod(off, self.hyper_size)
        rho = dev // (self.group + 1)
        sm = self.stripe((h * self.ranks + rho) * self.chunks_per_hyper + x // self.chunk_size)
        (mem,) = sm.on_device(dev)
        return sm, mem

    def locate(self, logical_offset: int) -> Location:
        """Volumes are linear: logical byte L is byte ``L mod V`` of volume ``L div V``."""
        lo = check_int("logical_offset", logical_offset, 0)
        v, x = divmod(lo, self.hyper_size)
        q, d = divmod(v, self.group)
        t, o = divmod(x, self.chunk_size)
        return Location(q * self.chunks_per_hyper + t, d, o)

    def volumes(self, usable: int) -> list[Span]:
        hypers = usable // self.hyper_size
        out = []
        for h in range(hypers):
            for rho in range(self.ranks):
                base = rho * (self.group + 1)
                for i in self.data_members(h):
                    out.append(Span(base + i, h * self.hyper_size, self.hyper_size))
        return out

    def parity_groups(self, usable: int) -> list[ParityGroup]:
        hypers = usable // self.hyper_size
        out = []
        g = self.group
        for h in range(hypers):
            for rho in range(self.ranks):
                first = (h * self.ranks + rho) * g
                par = Span(
                    rho * (g + 1) + self.parity_member(h), h * self.hyper_size, self.hyper_size
                )
                out.append(
                    ParityGroup(tuple(range(first, first + g)), (par,), self.hyper_size, Codec.XOR)
                )
        return out

    def _survives(self, failed: frozenset[int]) -> bool:
        per_rank: dict[int, int] = {}
        for f in failed:
            r = f // (self.group + 1)
            per_rank[r] = per_rank.get(r, 0) + 1
        return all(v <= 1 for v in per_rank.values())
