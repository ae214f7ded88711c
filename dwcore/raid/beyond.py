"""Beyond — Drobo BeyondRAID-style zones over mixed-size devices (``raid-levels.md`` §6).

The devices are cut into zone slots of ``zone_size`` Z bytes.  A *zone* is a
micro-array on w distinct devices (one slot each) whose scheme follows from w
and the mode:

* ``mode="single"``: w = 2 → mirror, w ≥ 3 → RAID 5 (w-1 data), tolerance 1;
* ``mode="dual"``:   w = 3 → 3-way mirror, w ≥ 4 → RAID 6 (w-2 data), tolerance 2.

Inside a zone the members follow RAID 1 / RAID 5 / RAID 6 left-symmetric
(§1) over the zone's members in zone-table order, chunk C.  Zones are
allocated by the *layered* rule: the next zone takes one slot on each of the
``min(w_max, #devices with a free slot)`` devices with the most free slots.
Capacity (no width cap hit) is then the optimum: single ``Σc − max c``, dual
``Σc − two largest`` (:func:`zone_plan`, :meth:`Beyond.bound`).

Device sizes: ``sizes`` lists the bytes each device contributes, rounded
down to whole zones.  A pool created without ``device_size`` fills it in from
the real devices (each contributes what its own data area holds); without
``sizes`` every device contributes the pool's data area.  A pool refuses a
device whose data area is smaller than what it is asked to contribute
(:mod:`dwcore.pool.growth`).  The zone table, the extents' placement
and the data path live in :mod:`dwcore.pool.growth`; this class carries the
parameters, the capacity rule and a reference stripe shape (stripe s of a
zone of the widest scheme on devices 0..w-1), since no fixed placement
exists before zones are allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Layout,
    StripeMap,
    check_int,
    check_sizes,
)
from dwcore.raid.mirror import Raid1
from dwcore.raid.parity import Raid5, Raid6

__all__ = ["Beyond", "scheme_for", "zone_layout", "zone_plan"]

#: Default zone size (§6: 256 MiB; tests use 64 KiB).
DEFAULT_ZONE_SIZE = 256 << 20
MODES = ("single", "dual")


def scheme_for(mode: str, width: int) -> str:
    """The scheme of a zone of ``width`` members: mirror, mirror3, raid5 or raid6."""
    if mode == "single":
        return "mirror" if width == 2 else "raid5"
    return "mirror3" if width == 3 else "raid6"


def zone_layout(scheme: str, width: int, chunk_size: int) -> Layout:
    """The layout of a zone's members (members are the layout's devices 0..w-1)."""
    if scheme in ("mirror", "mirror3"):
        return Raid1(width, chunk_size)
    if scheme == "raid5":
        return Raid5(width, chunk_size)
    return Raid6(width, chunk_size)


def zone_data_members(scheme: str, width: int) -> int:
    """Data chunks per zone stripe (k)."""
    return {"mirror": 1, "mirror3": 1, "raid5": width - 1, "raid6": width - 2}[scheme]


def zone_tolerance(scheme: str, width: int) -> int:
    """Members a zone may lose."""
    return {"mirror": width - 1, "mirror3": width - 1, "raid5": 1, "raid6": 2}[scheme]


def min_width(mode: str) -> int:
    """Narrowest zone of a mode (2 single, 3 dual)."""
    return 2 if mode == "single" else 3


def zone_plan(free: Sequence[int], mode: str, w_max: int) -> list[int]:
    """Widths of the zones the layered rule allocates from ``free`` slots per device."""
    left = list(free)
    out: list[int] = []
    lo = min_width(mode)
    while True:
        have = [i for i, n in enumerate(left) if n > 0]
        w = min(w_max, len(have))
        if w < lo:
            return out
        pick = sorted(have, key=lambda i: (-left[i], i))[:w]
        for i in pick:
            left[i] -= 1
        out.append(w)


def plan_units(widths: Sequence[int], mode: str) -> int:
    """Data units (zones' worth of data) of zones of ``widths``."""
    return sum(zone_data_members(scheme_for(mode, w), w) for w in widths)


class Beyond(Layout):
    """BeyondRAID-style zones (module documentation)."""

    level = "BEYOND"
    OPTIONS = ("mode", "zone_size", "w_max", "sizes")
    #: The pool keeps a zone table and places every extent itself.
    zoned = True

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        mode: str = "single",
        zone_size: int = DEFAULT_ZONE_SIZE,
        w_max: int = 16,
        sizes: Sequence[int] | None = None,
    ) -> None:
        m = mode.lower() if isinstance(mode, str) else ""
        if m not in MODES:
            raise InvalidArgumentError(f"mode must be 'single' or 'dual', got {mode!r}")
        self.mode = m
        self.zone_size = check_int("zone_size", zone_size, 1)
        self.w_max = check_int("w_max", w_max, min_width(m))
        if self.w_max > 255:
            raise InvalidArgumentError(f"w_max must be ≤ 255, got {w_max}")
        n = check_int("n_devices", n_devices, 1)
        self.sizes: tuple[int, ...] | None = check_sizes(sizes, n)
        super().__init__(n_devices, chunk_size)
        c = self.chunk_size
        if self.zone_size < c or self.zone_size % c:
            raise InvalidArgumentError(
                f"zone_size must be a multiple of chunk_size ({c}), got {self.zone_size}"
            )

    @property
    def options(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "zone_size": self.zone_size,
            "w_max": self.w_max,
            "sizes": None if self.sizes is None else list(self.sizes),
        }

    @property
    def min_devices(self) -> int:
        return min_width(self.mode)

    @property
    def fault_tolerance(self) -> int:
        return 1 if self.mode == "single" else 2

    @property
    def codec(self) -> Codec:
        return Codec.XOR if self.mode == "single" else Codec.PQ_MD

    @property
    def _shape(self) -> Layout:
        w = min(self.w_max, self.n_devices)
        return zone_layout(scheme_for(self.mode, w), w, self.chunk_size)

    @property
    def k(self) -> int:
        return self._shape.k

    @property
    def m(self) -> int:
        return self._shape.m

    @property
    def period(self) -> int:
        return 1

    @property
    def device_bytes_per_stripe(self) -> int:
        """A zone slot: device areas are rounded down to whole zones."""
        return self.zone_size

    def stripe(self, s: int) -> StripeMap:
        """Reference shape only (module documentation): zone stripe ``s`` of the widest
        scheme on devices 0..w-1; real placement comes from the pool's zone table."""
        return self._shape.stripe(self._check_stripe(s))

    def with_device(self, size: int) -> Beyond:
        """This layout with one more device contributing ``size`` bytes."""
        if self.sizes is None:
            raise InvalidArgumentError("a layout without explicit sizes cannot grow")
        return Beyond(
            self.n_devices + 1,
            self.chunk_size,
            mode=self.mode,
            zone_size=self.zone_size,
            w_max=self.w_max,
            sizes=[*self.sizes, size],
        )

    def with_sizes(self, sizes: Sequence[int]) -> Beyond:
        """This layout with the devices contributing ``sizes`` bytes."""
        return Beyond(
            self.n_devices,
            self.chunk_size,
            mode=self.mode,
            zone_size=self.zone_size,
            w_max=self.w_max,
            sizes=sizes,
        )

    def slots(self, usable: int) -> list[int]:
        """Zone slots per device for data areas of ``usable`` bytes."""
        sizes = self.sizes if self.sizes is not None else (usable,) * self.n_devices
        return [min(s, usable) // self.zone_size for s in sizes]

    def bound(self, usable: int) -> int:
        """The capacity bound in bytes: Σc − max c (single), Σc − two largest (dual)."""
        caps = sorted(self.slots(usable), reverse=True)
        drop = 1 if self.mode == "single" else 2
        return max(0, sum(caps) - sum(caps[:drop])) * self.zone_size

    def capacity(self, device_size: int | Sequence[int]) -> int:
        """User bytes of the layered allocation over every slot (= :meth:`bound`
        unless the width cap is hit)."""
        usable = self.usable_device_size(device_size)
        return plan_units(zone_plan(self.slots(usable), self.mode, self.w_max), self.mode) * (
            self.zone_size
        )

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= self.fault_tolerance
