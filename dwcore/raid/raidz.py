"""ZFS RAID-Z1, Z2 and Z3 (``raid-levels.md`` §4, ``vdev_raidz.c``).

RAID-Z has no fixed stripes: every allocation (one extent of ``s`` sectors
of ``2^ashift`` bytes at *parent sector* b) is its own stripe whose width
depends on its size.  Parent sector x is sector ``x div N`` of device
``x mod N``; a block owns parent sectors ``[b, b + asize)``.
:func:`raidz_map` computes its columns exactly as ``vdev_raidz_map_alloc``
does: column c (0..scols-1) on device ``(b + c) mod N`` at sector
``b div N`` (+1 when it wrapped), big columns (``q+1`` sectors) first,
columns 0..p-1 parity P, Q, R, then the data columns filled consecutively;
``roundup(tot, p+1) - tot`` skip sectors after them, and for p = 1 the
column-0/1 swap when bit 20 of the parent byte offset is set.

Parity is in ZFS order (§0.2): for the n data columns of a sector row,
``P = ⊕ D_i``, ``Q = ⊕ 2^(n-1-i)·D_i``, ``R = ⊕ 4^(n-1-i)·D_i``, short
columns counting as zero in the last row.  Writes are copy-on-write
(full-stripe, no write hole); the pool's block-placement engine
(:mod:`dwcore.pool.raidz_engine`) keeps the block map.

:meth:`RaidZ.stripe` describes a full-width block (``N-p`` data chunks at
parent chunk row s) in the generic vocabulary, for the failure predicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd
from typing import ClassVar

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Layout,
    Member,
    P,
    Q,
    R,
    Role,
    StripeMap,
)

__all__ = [
    "RaidZ",
    "RaidZ1",
    "RaidZ2",
    "RaidZ3",
    "RaidzColumn",
    "RaidzMap",
    "raidz_asize",
    "raidz_map",
]

#: Most data columns of a P/Q/R code (§0.2).
MAX_Z_DATA = 255
#: Bit of the parent byte offset that swaps RAID-Z1's first two columns.
Z1_SWAP_BIT = 1 << 20


@dataclass(frozen=True)
class RaidzColumn:
    """One column of a block: ``size`` sectors at ``sector`` of ``device``."""

    device: int
    sector: int
    size: int


@dataclass(frozen=True)
class RaidzMap:
    """The columns of one block (parity first), its skip sectors and sizes (in sectors)."""

    columns: tuple[RaidzColumn, ...]
    nparity: int
    bigcols: int
    #: (device, sector) of each skip sector
    skips: tuple[tuple[int, int], ...]
    #: data + parity sectors
    tot: int
    #: allocated sectors, ``roundup(tot, p+1)``
    asize: int

    @property
    def data_columns(self) -> tuple[RaidzColumn, ...]:
        """The data columns, in data order."""
        return self.columns[self.nparity :]

    @property
    def rows(self) -> int:
        """Sector rows: the size of the biggest column."""
        return max((c.size for c in self.columns), default=0)


def raidz_asize(s: int, n: int, p: int) -> int:
    """Allocated sectors of an ``s``-sector block on ``n`` children with ``p`` parity."""
    q, r = divmod(s, n - p)
    tot = s + p * (q + (1 if r else 0))
    return -(-tot // (p + 1)) * (p + 1)


def raidz_map(b: int, s: int, n: int, p: int, ashift: int) -> RaidzMap:
    """The map of an ``s``-sector block at parent sector ``b`` (``vdev_raidz_map_alloc``)."""
    if s < 1:
        raise InvalidArgumentError(f"a RAID-Z block has at least one sector, got {s}")
    f = b % n
    o = b // n
    q, r = divmod(s, n - p)
    bc = 0 if r == 0 else r + p
    tot = s + p * (q + (1 if r else 0))
    if q == 0:
        acols = bc
        scols = min(n, -(-bc // (p + 1)) * (p + 1))
    else:
        acols = scols = n
    cols: list[list[int]] = []
    for c in range(scols):
        col, coff = f + c, o
        if col >= n:
            col -= n
            coff += 1
        size = 0 if c >= acols else (q + 1 if c < bc else q)
        cols.append([col, coff, size])
    nskip = -(-tot // (p + 1)) * (p + 1) - tot
    skipstart = bc
    if p == 1 and (b << ashift) & Z1_SWAP_BIT:
        cols[0][0], cols[1][0] = cols[1][0], cols[0][0]
        cols[0][1], cols[1][1] = cols[1][1], cols[0][1]
        if skipstart == 0:
            skipstart = 1
    skips = []
    for i in range(nskip):
        c = (skipstart + i) % scols
        skips.append((cols[c][0], cols[c][1] + cols[c][2]))
    columns = tuple(RaidzColumn(d, sec, size) for d, sec, size in cols[:acols])
    return RaidzMap(columns, p, bc, tuple(skips), tot, tot + nskip)


class RaidZ(Layout):
    """RAID-Z with ``nparity`` parity columns over N ≥ nparity+1 devices."""

    nparity: ClassVar[int]
    #: Tells the pool that every extent is its own variable-width stripe.
    placement: ClassVar[str] = "blocks"

    def __init__(self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(n_devices, chunk_size)
        if self.n_devices - self.nparity > MAX_Z_DATA:
            raise InvalidArgumentError(
                f"RAID {self.level} supports at most {MAX_Z_DATA} data columns "
                f"(n_devices ≤ {MAX_Z_DATA + self.nparity}), got n_devices={self.n_devices}"
            )

    @property
    def min_devices(self) -> int:
        return self.nparity + 1

    @property
    def fault_tolerance(self) -> int:
        return self.nparity

    @property
    def codec(self) -> Codec:
        return (Codec.XOR, Codec.PQ_ZFS, Codec.PQR_ZFS)[self.nparity - 1]

    @property
    def k(self) -> int:
        return self.n_devices - self.nparity

    @property
    def m(self) -> int:
        return self.nparity

    @property
    def period(self) -> int:
        if self.nparity != 1:
            return 1
        row = self.n_devices * self.chunk_size
        return (2 * Z1_SWAP_BIT) // gcd(2 * Z1_SWAP_BIT, row)

    @property
    def period_bytes(self) -> int:
        return self.chunk_size

    def stripe(self, s: int) -> StripeMap:
        """A full-width block of N-p chunks at parent chunk row ``s`` (f = 0)."""
        s = self._check_stripe(s)
        c, n, p = self.chunk_size, self.n_devices, self.nparity
        devs = list(range(n))
        if p == 1 and (s * n * c) & Z1_SWAP_BIT:
            devs[0], devs[1] = devs[1], devs[0]
        members = [Member(devs[p + d], s * c, c, Role.data(d)) for d in range(n - p)]
        members += [Member(devs[j], s * c, c, role) for j, role in enumerate((P, Q, R)[:p])]
        return StripeMap(s, self.codec, n - p, tuple(members))

    def asize(self, psize: int, ashift: int = 12) -> int:
        """Allocated bytes of a block of ``psize`` bytes (``vdev_raidz_asize``)."""
        s = -(-psize >> ashift)
        return raidz_asize(s, self.n_devices, self.nparity) << ashift

    def efficiency(self, psize: int, ashift: int = 12) -> float:
        """User bytes over allocated bytes for blocks of ``psize`` bytes (e.g. 128 KiB)."""
        return psize / self.asize(psize, ashift)

    def capacity(self, device_size: int | Sequence[int]) -> int:
        """Raw data capacity ``(N-p)·S`` (before skip sectors; see :meth:`efficiency`)."""
        return self.usable_device_size(device_size) * (self.n_devices - self.nparity)

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= self.nparity


class RaidZ1(RaidZ):
    """RAID-Z1: single (XOR) parity, any 1 failure; min 2 devices."""

    level = "Z1"
    nparity = 1


class RaidZ2(RaidZ):
    """RAID-Z2: P+Q in ZFS order, any 2 failures; min 3 devices."""

    level = "Z2"
    nparity = 2


class RaidZ3(RaidZ):
    """RAID-Z3: P+Q+R (1, 2, 4) in ZFS order, any 3 failures; min 4 devices."""

    level = "Z3"
    nparity = 3
