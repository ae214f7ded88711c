"""Dedicated parity (``raid-levels.md`` §1): RAID 3 (bytes) and RAID 4 (blocks).

Both keep data on devices 0..N-2 and the XOR parity of every stripe on
device N-1, at the same offset ``s·C`` on every member (k = N-1).

* RAID 4 is md's level 4 (``raid5_compute_sector`` with ``pd_idx =
  data_disks``): chunk c is data index ``d = c mod k`` of stripe
  ``s = c div k``, on device d.
* RAID 3 interleaves bytes: logical byte L is on data device ``L mod k`` at
  byte ``L div k`` of the data devices' common span, so every I/O touches
  every device.  A stripe's k·C logical bytes are byte ``x`` → data index
  ``x mod k``, chunk offset ``x div k``; a pool stores it through
  :class:`dwcore.pool.interleave.InterleavedPool` (``interleave = "byte"``).
"""

from __future__ import annotations

from collections.abc import Iterator

from dwcore.ec.parity import MAX_XOR_DATA
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
    StripeMap,
    check_int,
)


class Raid4(Layout):
    """RAID 4: N ≥ 3 devices, data on devices 0..N-2, XOR parity on device N-1."""

    level = "4"

    def __init__(self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(n_devices, chunk_size)
        if self.k > MAX_XOR_DATA:
            raise InvalidArgumentError(
                f"RAID {self.level} supports at most {MAX_XOR_DATA} data devices "
                f"(n_devices ≤ {MAX_XOR_DATA + 1}), got n_devices={self.n_devices}"
            )

    @property
    def min_devices(self) -> int:
        return 3

    @property
    def fault_tolerance(self) -> int:
        return 1

    @property
    def codec(self) -> Codec:
        return Codec.XOR

    @property
    def k(self) -> int:
        return self.n_devices - 1

    @property
    def m(self) -> int:
        return 1

    @property
    def period(self) -> int:
        return 1

    @property
    def parity_device(self) -> int:
        """The dedicated parity device (md: ``pd_idx = data_disks``)."""
        return self.n_devices - 1

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        off = s * c
        members = [Member(d, off, c, Role.data(d)) for d in range(self.k)]
        members.append(Member(self.parity_device, off, c, P))
        return StripeMap(s, Codec.XOR, self.k, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= 1


class Raid3(Raid4):
    """RAID 3: N ≥ 3 devices, bytes interleaved over devices 0..N-2, XOR parity on N-1."""

    level = "3"
    #: Tells the pool to interleave bytes over the data members.
    interleave = "byte"

    def locate(self, logical_offset: int) -> Location:
        lo = check_int("logical_offset", logical_offset, 0)
        s, x = divmod(lo, self.k * self.chunk_size)
        return Location(s, x % self.k, x // self.k)

    def pieces(self, logical_offset: int, length: int) -> Iterator[Piece]:
        """One piece per byte: consecutive bytes lie on consecutive data devices."""
        pos = check_int("logical_offset", logical_offset, 0)
        for lo in range(pos, pos + check_int("length", length, 0)):
            s, d, o = self.locate(lo)
            yield Piece(lo, s, d, o, 1)
