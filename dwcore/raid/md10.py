"""MD10: Linux md raid10 with near, far and offset copies (``raid-levels.md`` §6).

Placement is md's ``__raid10_find_phys`` (``drivers/md/raid10.c``), in
chunks: logical chunk x gives ``chunk = x·nc``, near row
``stripe = chunk div N`` and first device ``dev = chunk mod N`` (offset
layouts multiply the row by fc); near copy n sits on the next device (wrapping
to the next row), and far copy f of each near copy on device ``d + f·nc``
(mod N, or mod the far set) at ``f·stride`` further, where the stride is C
for offset layouts and ``(used div fc)·C`` otherwise (md's ``calc_sectors``:
it depends on the device size, so a far layout is bound to its data-area
size ``size``; a pool binds it through :meth:`Layout.fit`).

A stripe is the L = lcm(N, nc)/nc logical chunks whose near copies fill
R = lcm(N, nc)/N whole near rows; its data indices are those chunks in
logical order, each with its nc·fc copies in md's order (near copy n, then
its far copies).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Layout,
    Member,
    Role,
    StripeMap,
    check_int,
)

#: md's far-set variants (layout bits 17-18): 0 = original, 2 = improved (1 is refused).
FAR_SETS = ("original", "improved")
_MDADM_NAME = re.compile(r"(?:n(\d+))?(?:([fo])(\d+))?")


def parse_md_layout(name: str) -> tuple[int, int, bool]:
    """mdadm layout names ``n2`` / ``f2`` / ``o2``, or a near and a far part (``n2f2``).

    Returns ``(near, far, offset)``.
    """
    m = _MDADM_NAME.fullmatch(name.lower()) if isinstance(name, str) and name else None
    if m is None or not (m.group(1) or m.group(2)):
        raise InvalidArgumentError(
            f"layout must be an mdadm name such as 'n2', 'f2', 'o2' or 'n2f2', got {name!r}"
        )
    near = int(m.group(1)) if m.group(1) else 1
    far = int(m.group(3)) if m.group(2) else 1
    return near, far, m.group(2) == "o"


class Md10(Layout):
    """md raid10: ``near`` (nc) × ``far`` (fc) copies, optionally ``offset`` (mdadm o<fc>).

    ``layout`` takes mdadm's names instead (``"n2"``, ``"f2"``, ``"o2"``,
    ``"n2f2"``); ``far_sets="improved"`` selects md's far sets of fc·nc
    devices.  Every chunk is stored on nc·fc distinct devices; the array
    survives exactly the failure sets that leave every chunk a copy.
    """

    level = "MD10"
    OPTIONS = ("layout", "near", "far", "offset", "far_sets", "size")

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        layout: str | None = None,
        near: int | None = None,
        far: int | None = None,
        offset: bool | None = None,
        far_sets: str = "original",
        size: int | None = None,
    ) -> None:
        if layout is not None:
            if near is not None or far is not None or offset is not None:
                raise InvalidArgumentError(
                    "give either layout (an mdadm name) or near/far/offset, not both"
                )
            near, far, offset = parse_md_layout(layout)
        if near is None:
            near = 2 if far is None else 1
        self.near = check_int("near", near, 1)
        self.far = check_int("far", 1 if far is None else far, 1)
        if offset is not None and not isinstance(offset, bool):
            raise InvalidArgumentError(f"offset must be True or False, got {offset!r}")
        self.offset = bool(offset)
        if far_sets not in FAR_SETS:
            raise InvalidArgumentError(
                f"far_sets must be one of {', '.join(FAR_SETS)} (md's buggy variant 1 is "
                f"refused), got {far_sets!r}"
            )
        self.far_sets = far_sets
        if self.copies < 2:
            raise InvalidArgumentError(
                f"MD10 needs at least 2 copies (near·far), got near={self.near} far={self.far}"
            )
        if self.offset and self.far < 2:
            raise InvalidArgumentError("an offset layout needs far ≥ 2 (mdadm o2, o3, ...)")
        self.size: int | None = None
        super().__init__(n_devices, chunk_size)
        n, nc = self.n_devices, self.near
        self._rows = math.lcm(n, nc) // n
        self._chunks = math.lcm(n, nc) // nc
        if self.offset and self.near > 1 and self.n_devices % self.near:
            raise InvalidArgumentError(
                f"MD10 offset layouts with near={self.near} need n_devices to be a multiple "
                f"of near (md would place two copies on one chunk), got {self.n_devices}"
            )
        if size is not None:
            size = check_int("size", size, 0)
            if not self.is_far:
                raise InvalidArgumentError("size only applies to far (non-offset) layouts")
            if size % self.period_bytes or size == 0:
                raise InvalidArgumentError(
                    f"size must be a positive multiple of {self.period_bytes} bytes "
                    f"(far · rows per stripe · chunk), got {size}"
                )
            self.size = size
        self._pattern = [self._devices(x) for x in range(self._chunks)]

    # -- options and geometry --------------------------------------------

    @property
    def copies(self) -> int:
        """Copies of every chunk: near · far."""
        return self.near * self.far

    @property
    def is_far(self) -> bool:
        """True for far copies at a device-size dependent stride (not offset)."""
        return self.far > 1 and not self.offset

    @property
    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"near": self.near, "far": self.far, "offset": self.offset}
        out["far_sets"] = self.far_sets
        if self.size is not None:
            out["size"] = self.size
        return out

    @property
    def min_devices(self) -> int:
        return max(2, self.copies)

    @property
    def fault_tolerance(self) -> int:
        return self.copies - 1

    @property
    def codec(self) -> Codec:
        return Codec.MIRROR

    @property
    def k(self) -> int:
        return self._chunks

    @property
    def m(self) -> int:
        return self.copies - 1

    @property
    def period(self) -> int:
        return 1

    @property
    def device_bytes_per_stripe(self) -> int:
        return self._rows * self.far * self.chunk_size

    @property
    def stride(self) -> int:
        """md's ``geo->stride`` in bytes (C for offset layouts, 0 without far copies)."""
        if self.far == 1:
            return 0
        if self.offset:
            return self.chunk_size
        if self.size is None:
            raise InvalidArgumentError(
                "an MD10 far layout is placed relative to the device size: build it with "
                "size=<data-area bytes> (a pool does this itself)"
            )
        return self.md_stride(self.size)

    def md_stride(self, size: int) -> int:
        """md's ``calc_sectors`` stride for a data area of ``size`` bytes (far layouts)."""
        c, n, nc, fc = self.chunk_size, self.n_devices, self.near, self.far
        chunks = (size // c) // fc * n // nc
        used = -(-(chunks * self.copies) // n)
        return used // fc * c

    def usable_device_size(self, device_size: int | Sequence[int]) -> int:
        usable = super().usable_device_size(device_size)
        if self.size is not None:
            return self.size if usable >= self.size else 0
        return usable

    def fit(self, usable: int) -> Md10:
        """A far layout bound to a data area of ``usable`` bytes (others: unchanged)."""
        if not self.is_far or self.size is not None:
            return self
        size = usable - usable % self.period_bytes
        opts = {**self.options, "size": size}
        return Md10(self.n_devices, self.chunk_size, **opts)

    # -- placement -----------------------------------------------------------

    def _next_far(self, d: int) -> int:
        n, nc = self.n_devices, self.near
        if self.far_sets == "original":
            return (d + nc) % n
        fss = self.copies
        last_start = (n // fss - 1) * fss
        last_size = fss + n % fss
        group = d // fss
        d += nc
        if n % fss and d > last_start:
            return (d - last_start) % last_size + last_start
        return d % fss + fss * group

    def find_phys(self, x: int, stride: int) -> list[tuple[int, int]]:
        """``(device, device offset)`` of every copy of logical chunk ``x``, in md's order."""
        c, n = self.chunk_size, self.n_devices
        chunk = x * self.near
        row, dev = divmod(chunk, n)
        if self.offset:
            row *= self.far
        base = row * c
        out: list[tuple[int, int]] = []
        for _ in range(self.near):
            d, s = dev, base
            out.append((d, s))
            for _f in range(1, self.far):
                d = self._next_far(d)
                s += stride
                out.append((d, s))
            dev += 1
            if dev == n:
                dev = 0
                base += c
        return out

    def _devices(self, x: int) -> tuple[int, ...]:
        return tuple(d for d, _ in self.find_phys(x, 0))

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        stride = self.stride
        members = tuple(
            Member(dev, off, c, Role.copy(i, d))
            for d in range(self._chunks)
            for i, (dev, off) in enumerate(self.find_phys(s * self._chunks + d, stride))
        )
        return StripeMap(s, Codec.MIRROR, self._chunks, members)

    def member_at(self, device: int, device_offset: int) -> tuple[StripeMap, Member]:
        if not self.is_far:
            return super().member_at(device, device_offset)
        dev = check_int("device", device, 0)
        if dev >= self.n_devices:
            raise InvalidArgumentError(f"device must be in 0..{self.n_devices - 1}, got {dev}")
        off = check_int("device_offset", device_offset, 0)
        stride = self.stride
        if off >= self.far * stride:
            raise InvalidArgumentError(f"no member owns byte {off} of device {dev}")
        sm = self.stripe((off % stride) // (self._rows * self.chunk_size))
        for mem in sm.on_device(dev):
            if mem.device_offset <= off < mem.device_offset + mem.length:
                return sm, mem
        raise InvalidArgumentError(f"no member owns byte {off} of device {dev}")

    def _survives(self, failed: frozenset[int]) -> bool:
        return all(any(d not in failed for d in devs) for devs in self._pattern)
