"""RAID 2: bit-interleaved Hamming code (``raid-levels.md`` §1).

N = 2^r − 1 devices at 1-based positions 1..N: check devices at the powers
of two (1, 2, 4, …), data devices at the other positions in increasing
order (Hamming(7,4): d1@3, d2@5, d3@6, d4@7).  The check at position 2^i is
the XOR of every data position with bit i set.  With ``secded`` an overall
parity device (position 2^r, the last device) makes the extended code
(N = 2^r, minimum distance 4).

Logical bit b (bit ``b mod 8`` of byte ``b div 8``) is bit ``b div k`` of
data device ``b mod k``: k logical bytes become one byte of every data
device (a k-way bit transpose), so the checks are plain XORs of whole data
bytes.  A pool stores this through
:class:`dwcore.pool.interleave.InterleavedPool` (``interleave = "bit"``).

Erasures are decoded by GF(2) elimination over the check equations
(:func:`solve`): peeling one equation at a time gets stuck on survivable
triples such as positions {3, 5, 7}.  ``survives(F)`` holds exactly when no
nonzero codeword is supported inside F (its positions' parity-check
columns are independent): any 2 devices, 28 of the 35 triples for (7,4);
any 3 with ``secded``.
"""

from __future__ import annotations

import functools

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Layout,
    Location,
    Member,
    Role,
    StripeMap,
    check_int,
)

#: Check-device counts r supported (N = 7, 15, 31; with secded 8, 16, 32).
CHECK_COUNTS = (3, 4, 5)


def code_shape(k: int, m: int) -> tuple[int, bool]:
    """``(r, secded)`` of a Hamming stripe with k data and m check members."""
    for r in CHECK_COUNTS:
        if k + m == (1 << r) - 1 and m == r:
            return r, False
        if k + m == 1 << r and m == r + 1:
            return r, True
    raise InvalidArgumentError(f"no Hamming code has {k} data and {m} check members")


@functools.lru_cache(maxsize=16)
def positions(r: int, secded: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """1-based positions of the data devices and of the check devices (in member order)."""
    n = (1 << r) - 1
    checks = tuple(1 << i for i in range(r))
    data = tuple(p for p in range(1, n + 1) if p & (p - 1))
    return data, checks + ((1 << r,) if secded else ())


@functools.lru_cache(maxsize=16)
def check_masks(k: int, m: int) -> tuple[int, ...]:
    """Per check member: the bitmask of the data indices it XORs."""
    r, secded = code_shape(k, m)
    data, _ = positions(r, secded)
    masks = [sum(1 << d for d, p in enumerate(data) if p >> i & 1) for i in range(r)]
    if secded:  # overall parity of data and checks: data d counted 1 + popcount(pos) times
        masks.append(sum(1 << d for d, p in enumerate(data) if (1 + p.bit_count()) & 1))
    return tuple(masks)


@functools.lru_cache(maxsize=4096)
def solve(
    k: int, m: int, erased: frozenset[int]
) -> tuple[tuple[tuple[int, tuple[int, ...]], ...], frozenset[int]]:
    """GF(2) elimination for erased members (data 0..k-1, then checks k..k+m-1).

    Returns ``(steps, lost)``: each step ``(member, sources)`` rebuilds an
    erased member as the XOR of surviving members; ``lost`` are the erased
    members the equations do not determine.
    """
    masks = check_masks(k, m)
    unknown = sorted(erased)
    col = {u: i for i, u in enumerate(unknown)}
    rows: list[tuple[int, int]] = []  # (unknown bits, known-member bits)
    for j, mask in enumerate(masks):
        eq = mask | 1 << (k + j)
        ubits = sum(1 << col[x] for x in unknown if eq >> x & 1)
        kbits = eq & ~sum(1 << x for x in unknown)
        rows.append((ubits, kbits))
    pivots: dict[int, int] = {}  # unknown column -> row index
    for c in range(len(unknown)):
        piv = next(
            (i for i, (u, _) in enumerate(rows) if u >> c & 1 and i not in pivots.values()), None
        )
        if piv is None:
            continue
        pu, pk = rows[piv]
        for i, (u, kb) in enumerate(rows):
            if i != piv and u >> c & 1:
                rows[i] = (u ^ pu, kb ^ pk)
        pivots[c] = piv
    steps = []
    lost = set()
    for c, u in enumerate(unknown):
        piv = pivots.get(c)
        if piv is None or rows[piv][0] != 1 << c:
            lost.add(u)
            continue
        kb = rows[piv][1]
        steps.append((u, tuple(x for x in range(k + m) if kb >> x & 1)))
    return tuple(steps), frozenset(lost)


def _rank(columns: list[int]) -> int:
    basis: list[int] = []
    for v in columns:
        for b in basis:
            v = min(v, v ^ b)
        if v:
            basis.append(v)
    return len(basis)


class Raid2(Layout):
    """RAID 2: Hamming(2^r − 1, 2^r − 1 − r) over N = 7, 15 or 31 devices (8, 16, 32 secded)."""

    level = "2"
    OPTIONS = ("secded",)
    #: Tells the pool to interleave bits over the data members.
    interleave = "bit"

    def __init__(
        self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE, *, secded: bool = False
    ) -> None:
        if not isinstance(secded, bool):
            raise InvalidArgumentError(f"secded must be True or False, got {secded!r}")
        self.secded = secded
        super().__init__(n_devices, chunk_size)
        sizes = [(1 << r) - (0 if secded else 1) for r in CHECK_COUNTS]
        if self.n_devices not in sizes:
            raise InvalidArgumentError(
                f"RAID 2{' (secded)' if secded else ''} needs n_devices in "
                f"{', '.join(map(str, sizes))} (2^r{'' if secded else ' − 1'}), "
                f"got n_devices={self.n_devices}"
            )
        self.r = (self.n_devices + (0 if secded else 1)).bit_length() - 1
        data, checks = positions(self.r, secded)
        #: Device of each data index and of each check member (position p -> device p-1).
        self.data_devices = tuple(p - 1 for p in data)
        self.check_devices = tuple(p - 1 for p in checks)

    @property
    def options(self) -> dict[str, bool]:
        return {"secded": self.secded}

    @property
    def min_devices(self) -> int:
        return 8 if self.secded else 7

    @property
    def fault_tolerance(self) -> int:
        return 3 if self.secded else 2

    @property
    def codec(self) -> Codec:
        return Codec.HAMMING

    @property
    def k(self) -> int:
        return len(self.data_devices)

    @property
    def m(self) -> int:
        return len(self.check_devices)

    @property
    def period(self) -> int:
        return 1

    def locate(self, logical_offset: int) -> Location:
        """Where bit 0 of logical byte ``logical_offset`` lives (its other bits follow
        on the next data indices: see :meth:`locate_bit`)."""
        s, d, byte, _bit = self.locate_bit(8 * check_int("logical_offset", logical_offset, 0))
        return Location(s, d, byte)

    def locate_bit(self, bit: int) -> tuple[int, int, int, int]:
        """``(stripe, data index, byte in the chunk, bit in that byte)`` of logical bit ``bit``."""
        b = check_int("bit", bit, 0)
        per_stripe = 8 * self.k * self.chunk_size
        s, x = divmod(b, per_stripe)
        byte, bit_in = divmod(x // self.k, 8)
        return s, x % self.k, byte, bit_in

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        off = s * c
        members = [Member(dev, off, c, Role.data(d)) for d, dev in enumerate(self.data_devices)]
        members += [Member(dev, off, c, Role.parity(j)) for j, dev in enumerate(self.check_devices)]
        return StripeMap(s, Codec.HAMMING, self.k, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        # parity-check column of position p: its binary digits (and 1 for the overall row)
        extra = 1 << self.r if self.secded else 0
        cols = [(f + 1) % (1 << self.r) | extra for f in failed]
        return _rank(cols) == len(failed)
