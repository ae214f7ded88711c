"""RAID-DP: NetApp row-diagonal parity (``raid-levels.md`` §5, Corbett et al., FAST'04).

``n`` data devices, a row-parity device (index ``n``) and a diagonal-parity
device (index ``n+1``); XOR only.  With ``p`` the smallest prime ≥ max(3, n+1),
a stripe is ``p-1`` rows of chunks over the columns ``0..p-1``: columns
``0..n-1`` are the data devices, ``n..p-2`` are virtual disks holding zeros
(never stored) and column ``p-1`` is the row parity.

* Placement: ``i = c mod (n·(p-1))``, ``s = c div (n·(p-1))``, row
  ``r = i div n``, data column ``j = i mod n`` at device offset
  ``(s·(p-1) + r)·C`` on device ``j``.  Row parity of row r on device n at
  the same offset; diagonal d (0..p-2) on device n+1 in row d of the stripe.
* Parity: row parity = XOR of the row's data; block (r, col), col ∈ 0..p-1
  (data and row parity), belongs to diagonal ``(r + col) mod p``; the
  diagonal device stores the XOR of diagonals 0..p-2; diagonal p-1 is never
  stored.
* Recovery is iterative: repeatedly find a row or stored diagonal with
  exactly one unknown block and solve it by XOR (Corbett §4); any two lost
  devices are recovered.  :func:`rdp_schedule` computes that chain for any
  erasure pattern (also the scattered ones a checksum failure makes), so
  encoding, degraded reads and rebuild all run the same XOR steps.

Members of a stripe, in codec order: ``data(r·n + j)`` for every row r and
column j, then ``parity(r)`` (row parity of row r), then ``parity(p-1+d)``
(diagonal d).  Every member is one chunk.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import DEFAULT_CHUNK_SIZE, Codec, Layout, Member, Role, StripeMap

__all__ = ["Dp", "rdp_equations", "rdp_geometry", "rdp_prime", "rdp_schedule", "rdp_stripe_lost"]

#: Most data devices (keeps the prime, and the members of a stripe, reasonable).
MAX_DP_DATA = 250


def _is_prime(x: int) -> bool:
    if x < 2:
        return False
    f = 2
    while f * f <= x:
        if x % f == 0:
            return False
        f += 1
    return True


def rdp_prime(n: int) -> int:
    """The prime p of RAID-DP over ``n`` data devices: the smallest prime ≥ max(3, n+1)."""
    p = max(3, n + 1)
    while not _is_prime(p):
        p += 1
    return p


@functools.lru_cache(maxsize=64)
def rdp_equations(n: int, p: int) -> tuple[tuple[int, ...], ...]:
    """The parity equations of one stripe as tuples of member indices (XOR = 0).

    Member indices follow the codec order of :class:`Dp` stripes: data
    ``r·n + j``, row parity ``k + r``, diagonal ``k + (p-1) + d`` with
    ``k = n·(p-1)``.  Rows come first (r = 0..p-2), then the stored
    diagonals (d = 0..p-2).  Virtual zero columns contribute nothing.
    """
    rows = p - 1
    k = n * rows
    eqs: list[tuple[int, ...]] = []
    for r in range(rows):
        eqs.append((*(r * n + j for j in range(n)), k + r))
    for d in range(rows):
        members: list[int] = []
        for r in range(rows):
            col = (d - r) % p
            if col < n:
                members.append(r * n + col)
            elif col == p - 1:
                members.append(k + r)
        members.append(k + rows + d)
        eqs.append(tuple(members))
    return tuple(eqs)


@functools.lru_cache(maxsize=4096)
def rdp_schedule(
    n: int, p: int, erased: frozenset[int]
) -> tuple[tuple[tuple[int, tuple[int, ...]], ...], frozenset[int]]:
    """The iterative (chain) decode of the ``erased`` members of one stripe.

    Returns ``(steps, unsolved)``: each step ``(target, sources)`` sets member
    ``target`` to the XOR of ``sources`` (all known by then), in order; the
    members left in ``unsolved`` cannot be found by the chain.  Encoding is
    the schedule with every parity member erased.
    """
    eqs = rdp_equations(n, p)
    unknown = set(erased)
    steps: list[tuple[int, tuple[int, ...]]] = []
    progress = True
    while unknown and progress:
        progress = False
        for eq in eqs:
            missing = [x for x in eq if x in unknown]
            if len(missing) == 1:
                (t,) = missing
                steps.append((t, tuple(x for x in eq if x != t)))
                unknown.discard(t)
                progress = True
    return tuple(steps), frozenset(unknown)


def rdp_geometry(sm: StripeMap) -> tuple[int, int]:
    """``(n, p)`` of an ``rdp`` stripe map, from its member counts."""
    rows = (len(sm.members) - sm.k) // 2
    if rows < 2 or sm.k % rows:
        raise InvalidArgumentError(f"stripe {sm.index} is not a row-diagonal parity stripe")
    return sm.k // rows, rows + 1


def rdp_stripe_lost(sm: StripeMap, erased: Iterable[int]) -> frozenset[int]:
    """The members of ``erased`` (member indices of ``sm``) the chain cannot recover."""
    n, p = rdp_geometry(sm)
    return rdp_schedule(n, p, frozenset(erased))[1]


class Dp(Layout):
    """RAID-DP over N = n + 2 ≥ 3 devices (n data, row parity, diagonal parity)."""

    level = "DP"

    def __init__(self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(n_devices, chunk_size)
        if self.n_data > MAX_DP_DATA:
            raise InvalidArgumentError(
                f"RAID DP supports at most {MAX_DP_DATA} data devices "
                f"(n_devices ≤ {MAX_DP_DATA + 2}), got n_devices={self.n_devices}"
            )
        self.prime = rdp_prime(self.n_data)

    @property
    def n_data(self) -> int:
        """Data devices n = N - 2."""
        return self.n_devices - 2

    @property
    def rows(self) -> int:
        """Chunk rows per stripe, p - 1."""
        return self.prime - 1

    @property
    def row_parity_device(self) -> int:
        """Device index of the row parity (n)."""
        return self.n_data

    @property
    def diagonal_device(self) -> int:
        """Device index of the diagonal parity (n + 1)."""
        return self.n_data + 1

    @property
    def min_devices(self) -> int:
        return 3

    @property
    def fault_tolerance(self) -> int:
        return 2

    @property
    def codec(self) -> Codec:
        return Codec.RDP

    @property
    def k(self) -> int:
        return self.n_data * self.rows

    @property
    def m(self) -> int:
        return 2 * self.rows

    @property
    def period(self) -> int:
        return 1

    @property
    def device_bytes_per_stripe(self) -> int:
        return self.rows * self.chunk_size

    def diagonal_of(self, row: int, column: int) -> int:
        """The diagonal ``(row + column) mod p`` of block (row, column), column ≤ p-1."""
        return (row + column) % self.prime

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c, n, rows = self.chunk_size, self.n_data, self.rows
        base = s * rows * c
        members = [
            Member(j, base + r * c, c, Role.data(r * n + j)) for r in range(rows) for j in range(n)
        ]
        members += [Member(n, base + r * c, c, Role.parity(r)) for r in range(rows)]
        members += [Member(n + 1, base + d * c, c, Role.parity(rows + d)) for d in range(rows)]
        return StripeMap(s, Codec.RDP, self.k, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= 2
