"""Adaptive — AutoRAID-style mirror/parity migration by write heat (``raid-levels.md`` §6).

Devices are cut into physical extents (PEX, ``pex_size`` bytes, default
1 MiB).  The unit of mapping and migration is the relocation block (RB): the
layout's ``chunk_size``, default 64 KiB (:data:`RB_SIZE`, also the
``DEFAULT_CHUNK`` that ``dwcore.raid.layout`` and ``Pool.create`` use when no
``chunk_size`` is given).  A mirror PEG is 2 PEXes on 2 devices (an RB slot
holds the RB on both); a parity PEG is ``width`` PEXes (default
``min(N, 8)``) on distinct devices holding RAID 5 left-symmetric stripes with
chunk = RB, filled by full-stripe appends.  Capacity is fixed at creation:
``L_cap = (R − spare − M)·(w−1)/w + M/2`` PEXes of user data, R raw PEXes,
``spare`` one largest device's worth (the rebuild reserve), M the mirror
budget (``mirror_fraction`` of R, default 10%).  Tolerance: one device
concurrently (every PEG spans distinct devices), two sequentially when the
reserve absorbed the first rebuild (or a replacement did: with ``width`` = N a
nearly full pool cannot re-protect into the reserve, see
:mod:`dwcore.pool.migration`).

Mixed sizes: ``sizes`` lists the data-area bytes of each device (a pool made
with ``device_size=None`` sets it from each device's own size), and each
device is cut into its own number of PEXes; the spare is the largest device's.

Map log: the last ``map_log`` PEXes of every device stay out of PEGs; they
hold two record areas for the map (the pool writes each new map record to
three devices, :mod:`dwcore.pool.migration`), and R counts the PEXes left.
``map_log=None`` sizes it when the pool is created, for the largest map the
pool can hold (:func:`map_log_bound`: 20 bytes per raw PEX and 52 per user
RB, so two records of about 0.06% of the pool's raw bytes at the default
PEX and RB: 8 devices give up about 1% of each).  ``map_log=0`` is a pool
made before the log, whose map is a file in the pool directory.

The map, the heat policy and the data path are in
:mod:`dwcore.pool.migration`; this class carries the parameters, the
capacity rule and a reference stripe shape (a parity PEG's stripe on
devices 0..w-1), since placement is decided per RB at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import Codec, Layout, StripeMap, check_int, check_sizes
from dwcore.raid.parity import Raid5

__all__ = ["PEX_SIZE", "RB_SIZE", "Adaptive", "map_log_bound"]

#: Default relocation block (the layout's chunk): 64 KiB (raid-levels.md, Adaptive).
RB_SIZE = 64 * 1024
#: Default physical extent: 1 MiB.
PEX_SIZE = 1 << 20


#: Bytes the map log's record can take, at most: per raw PEX (its PEG entry and
#: member), per user RB (an extent entry and a location with heat), and fixed.
MAP_LOG_PER_PEX = 20
MAP_LOG_PER_RB = 52
MAP_LOG_FIXED = 8192


def map_log_bound(raw_pexes: int, capacity_rbs: int) -> int:
    """Largest map record (uncompressed) of a pool with these raw PEXes and user RBs."""
    return MAP_LOG_FIXED + raw_pexes * MAP_LOG_PER_PEX + capacity_rbs * MAP_LOG_PER_RB


class Adaptive(Layout):
    """AutoRAID-style adaptive mirror/parity placement (module documentation)."""

    level = "ADAPTIVE"
    OPTIONS = (
        "pex_size",
        "width",
        "mirror_fraction",
        "heat_half_life",
        "low_watermark",
        "sizes",
        "map_log",
    )
    #: The pool maps every RB itself (dwcore.pool.migration).
    adaptive = True
    #: The chunk (RB) ``dwcore.raid.layout`` and ``Pool.create`` use when given none.
    DEFAULT_CHUNK: ClassVar[int] = RB_SIZE

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = RB_SIZE,
        *,
        pex_size: int = PEX_SIZE,
        width: int | None = None,
        mirror_fraction: float = 0.1,
        heat_half_life: float = 3600.0,
        low_watermark: float = 0.1,
        sizes: Sequence[int] | None = None,
        map_log: int | None = None,
    ) -> None:
        n = check_int("n_devices", n_devices, 1)
        if n < 3:
            raise InvalidArgumentError(
                f"RAID {self.level} needs at least 3 devices, got n_devices={n}"
            )
        self.pex_size = check_int("pex_size", pex_size, 1)
        self.width = check_int("width", min(n, 8) if width is None else width, 3)
        if self.width > n:
            raise InvalidArgumentError(f"width must be ≤ n_devices ({n}), got {self.width}")
        for name, v, lo, hi in (
            ("mirror_fraction", mirror_fraction, 0.01, 0.9),
            ("low_watermark", low_watermark, 0.0, 0.9),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise InvalidArgumentError(f"{name} must be in [{lo}, {hi}], got {v!r}")
        if (
            isinstance(heat_half_life, bool)
            or not isinstance(heat_half_life, (int, float))
            or heat_half_life <= 0
        ):
            raise InvalidArgumentError(f"heat_half_life must be > 0, got {heat_half_life!r}")
        self.sizes: tuple[int, ...] | None = check_sizes(sizes, n)
        self.map_log = None if map_log is None else check_int("map_log", map_log, 0)
        self.mirror_fraction = float(mirror_fraction)
        self.low_watermark = float(low_watermark)
        self.heat_half_life = float(heat_half_life)
        super().__init__(n_devices, chunk_size)
        if self.pex_size < self.chunk_size or self.pex_size % self.chunk_size:
            raise InvalidArgumentError(
                f"pex_size must be a multiple of chunk_size (the RB, {self.chunk_size}), "
                f"got {self.pex_size}"
            )

    @property
    def options(self) -> dict[str, Any]:
        return {
            "pex_size": self.pex_size,
            "width": self.width,
            "mirror_fraction": self.mirror_fraction,
            "heat_half_life": self.heat_half_life,
            "low_watermark": self.low_watermark,
            "sizes": None if self.sizes is None else list(self.sizes),
            "map_log": self.map_log,
        }

    def with_sizes(self, sizes: Sequence[int]) -> Adaptive:
        """This layout over devices whose data areas hold ``sizes`` bytes each."""
        opts = {**self.options, "sizes": list(sizes)}
        return Adaptive(self.n_devices, self.chunk_size, **opts)

    def with_map_log(self, pexes: int | None) -> Adaptive:
        """This layout with ``pexes`` PEXes per device kept for the map log (None: sized
        for the largest map by :meth:`map_log_pexes`)."""
        return Adaptive(self.n_devices, self.chunk_size, **{**self.options, "map_log": pexes})

    def total_pexes(self, usable: int) -> list[int]:
        """Whole PEXes in each device's data area: its ``sizes`` entry (at most
        ``usable``, the largest data area) or, without ``sizes``, ``usable``."""
        sizes = self.sizes if self.sizes is not None else (usable,) * self.n_devices
        return [min(v, usable) // self.pex_size for v in sizes]

    def map_log_pexes(self, totals: Sequence[int]) -> int:
        """PEXes at the end of every device kept for the map log: ``map_log`` when set
        (0 for pools made before the log: their map is a file), else enough for two
        records of the largest map ``totals`` PEXes per device can hold."""
        if self.map_log is not None:
            return self.map_log
        rbs = self.pex_size // self.chunk_size
        most = map_log_bound(sum(totals), self.capacity_rbs(totals) if totals else 0)
        area = -(-most // 4096) * 4096
        return -(-2 * area // self.pex_size) if rbs else 0

    def map_log_area(self) -> int:
        """Bytes of each of the map log's two record areas on a device."""
        return (self.map_log or 0) * self.pex_size // 2 // 4096 * 4096

    def pexes(self, usable: int) -> list[int]:
        """PEXes of each device that PEGs may use: :meth:`total_pexes` less the map
        log's (:meth:`map_log_pexes`)."""
        totals = self.total_pexes(usable)
        log = self.map_log_pexes(totals)
        return [max(0, t - log) for t in totals]

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
        return self.width - 1

    @property
    def m(self) -> int:
        return 1

    @property
    def period(self) -> int:
        return 1

    @property
    def device_bytes_per_stripe(self) -> int:
        """A PEX: device areas are rounded down to whole PEXes."""
        return self.pex_size

    def stripe(self, s: int) -> StripeMap:
        """Reference shape only: stripe ``s`` of a parity PEG on devices 0..w-1."""
        return Raid5(self.width, self.chunk_size).stripe(self._check_stripe(s))

    def budget(self, pexes: Sequence[int]) -> tuple[int, int, int]:
        """``(R raw PEXes, spare reserve, mirror budget M)`` for PEXes per device."""
        raw = sum(pexes)
        spare = max(pexes) if pexes else 0
        mirror = max(2, int(raw * self.mirror_fraction) // 2 * 2)
        return raw, spare, mirror

    def capacity_rbs(self, pexes: Sequence[int]) -> int:
        """User RBs: ``(R − spare − M)·(w−1)/w + M/2`` PEXes' worth (parity part rounded
        down to whole stripes)."""
        raw, spare, mirror = self.budget(pexes)
        rbs = self.pex_size // self.chunk_size
        parity = max(0, raw - spare - mirror) // self.width * (self.width - 1) * rbs
        return parity + mirror // 2 * rbs

    def capacity(self, device_size: int | Sequence[int]) -> int:
        usable = self.usable_device_size(device_size)
        return self.capacity_rbs(self.pexes(usable)) * self.chunk_size

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= 1
