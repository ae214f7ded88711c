"""RAID 10 (1+0): striping over mirror groups (``raid-levels.md`` §2).

With ``copies`` m and G = N/m groups, chunk c goes to group ``g = c mod G``
(devices ``g·m … g·m+m-1``) at offset ``(c div G)·C``.  A stripe is one row of
G chunks: data index d = g, with members ``copy(i) of d`` on device ``g·m + i``.
"""

from __future__ import annotations

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import DEFAULT_CHUNK_SIZE, Codec, Layout, Member, Role, StripeMap, check_int


class Raid10(Layout):
    """RAID 10: G ≥ 2 mirror groups of ``copies`` ≥ 2 devices each (N = G·copies)."""

    level = "10"
    OPTIONS = ("copies",)

    def __init__(
        self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE, *, copies: int = 2
    ) -> None:
        self.copies = check_int("copies", copies, 2)
        super().__init__(n_devices, chunk_size)
        if self.n_devices % self.copies:
            raise InvalidArgumentError(
                f"RAID 10 needs n_devices to be a multiple of copies={self.copies}, "
                f"got n_devices={self.n_devices}"
            )

    @property
    def options(self) -> dict[str, int]:
        return {"copies": self.copies}

    @property
    def groups(self) -> int:
        """Number of mirror groups G = N / copies."""
        return self.n_devices // self.copies

    def group_devices(self, g: int) -> range:
        """The devices of mirror group ``g``."""
        return range(g * self.copies, (g + 1) * self.copies)

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
        return self.groups

    @property
    def m(self) -> int:
        return self.copies - 1

    @property
    def period(self) -> int:
        return 1

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        members = tuple(
            Member(dev, s * c, c, Role.copy(i, g))
            for g in range(self.groups)
            for i, dev in enumerate(self.group_devices(g))
        )
        return StripeMap(s, Codec.MIRROR, self.groups, members)

    def _survives(self, failed: frozenset[int]) -> bool:
        return all(any(d not in failed for d in self.group_devices(g)) for g in range(self.groups))
