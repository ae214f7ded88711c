"""Buffer sets for the benchmarks: one reused set in cache, or many rotated out of cache.

A *buffer set* is a ``(rows, fragment)`` uint8 array, 64-byte aligned, that
holds an operation's shards (data rows first, then parity).  Out-of-cache
runs carve as many sets as fit from one large arena (≥ 256 MiB, far beyond
any last-level cache) and walk through them in turn, so every call meets
memory that the previous few hundred MiB of traffic evicted.
"""

from __future__ import annotations

import numpy as np

from dwcore.bench.buffers import aligned_empty
from dwcore.errors import InvalidArgumentError

__all__ = ["ALIGN", "Arena", "Rotation", "fill_random", "hot_set"]

#: Alignment of every buffer set and, for fragments that are multiples of it, every row.
ALIGN = 64
_FILL_CHUNK = 16 << 20


def fill_random(arr: np.ndarray, seed: int) -> None:
    """Fill a uint8 array with reproducible random bytes.

    Beyond 16 MiB the same random block repeats: the kernels' speed does not
    depend on the bytes, and copying is far faster than generating.
    """
    flat = arr.reshape(-1)
    rng = np.random.default_rng(seed)
    block = np.frombuffer(rng.bytes(min(flat.size, _FILL_CHUNK)), dtype=np.uint8)
    for start in range(0, flat.size, _FILL_CHUNK):
        chunk = flat[start : start + _FILL_CHUNK]
        chunk[:] = block[: chunk.size]


def hot_set(rows: int, fragment: int, seed: int = 1) -> np.ndarray:
    """A fresh random ``(rows, fragment)`` buffer set."""
    out = aligned_empty((rows, fragment), ALIGN)
    fill_random(out, seed)
    return out


class Arena:
    """Two large random-filled regions that out-of-cache runs carve buffer sets from.

    ``sets(rows, fragment)`` returns as many ``(rows, fragment)`` sets as the
    main region holds (together at least ``min_bytes``); ``copy_targets``
    returns as many equally sized targets from the second region, for the
    memcpy anchor.  Allocated once and reused by every configuration.
    """

    def __init__(self, min_bytes: int, max_set_bytes: int) -> None:
        if min_bytes <= 0 or max_set_bytes <= 0:
            raise InvalidArgumentError("arena sizes must be positive")
        self.min_bytes = min_bytes
        self.nbytes = min_bytes + max_set_bytes
        self._main = aligned_empty(self.nbytes, ALIGN)
        self._copy = aligned_empty(self.nbytes, ALIGN)
        fill_random(self._main, seed=2)
        fill_random(self._copy, seed=3)

    def count(self, rows: int, fragment: int) -> int:
        """How many ``(rows, fragment)`` sets the arena holds."""
        return self.nbytes // (rows * fragment)

    def sets(self, rows: int, fragment: int) -> list[np.ndarray]:
        """Every ``(rows, fragment)`` set the main region holds, in address order."""
        return self._carve(self._main, rows, fragment)

    def copy_targets(self, rows: int, fragment: int, count: int) -> list[np.ndarray]:
        """``count`` distinct ``(rows, fragment)`` targets from the second region."""
        return self._carve(self._copy, rows, fragment)[:count]

    def _carve(self, region: np.ndarray, rows: int, fragment: int) -> list[np.ndarray]:
        size = rows * fragment
        n = self.count(rows, fragment)
        if n * size < self.min_bytes:
            raise InvalidArgumentError(
                f"a {rows}x{fragment} buffer set is too large for the {self.nbytes}-byte arena"
            )
        return [region[i * size : (i + 1) * size].reshape(rows, fragment) for i in range(n)]


class Rotation:
    """A cursor shared by the contenders of one configuration.

    Each contender continues where the previous one stopped, so every call
    touches the least recently used buffer set of the pool.
    """

    __slots__ = ("position",)

    def __init__(self) -> None:
        self.position = 0
