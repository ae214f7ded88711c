"""Unraid: dedicated parity over independent data disks (``raid-levels.md`` §6).

``k`` data devices (0..k-1) and ``parity`` p ∈ {1, 2} parity devices (k, k+1).
No striping: data device i is volume i, byte x at device offset x; an extent
lives wholly on one data disk, so each disk stays readable on its own.
``P[x] = ⊕_i D_i[x]`` and, with dual parity, ``Q[x] = ⊕_i g^i·D_i[x]``
(Linux md order with i the slot: our choice, Unraid's Q is undocumented).
A data disk shorter than the others counts as zeros past its end
(``data_sizes``: the bytes each data disk contributes, default all of it), so
adding a zeroed disk in a new slot changes neither P nor Q.

Writes update parity in place by delta (``P ^= Δ``, ``Q ^= g^i·Δ`` with
``Δ = old ⊕ new``, ``write_mode="rmw"``, the default) or by recomputing them
from every data disk (``"reconstruct"``: reads the other disks instead of the
old data and parity), protected by the pool's write-intent log.  ``fill`` is
the placement policy for new extents: ``"most-free"`` (default: the data
disk with the most free space, ties to the lowest slot) or ``"fill-up"``
(the lowest slot with room) — Unraid's "most free" and "fill-up" allocation
methods.

Tolerance: any p devices; beyond that exactly the failed data disks' extents
are lost and every other extent reads back.
"""

from __future__ import annotations

from collections.abc import Sequence

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Member,
    P,
    Q,
    Role,
    StripeMap,
    check_int,
)
from dwcore.raid.volumes import ParityGroup, Span, VolumeLayout

__all__ = ["FILL_POLICIES", "WRITE_MODES", "Unraid"]

#: Placement policies for new extents.
FILL_POLICIES = ("most-free", "fill-up")
#: Parity update methods: read-modify-write, or recompute from every data disk.
WRITE_MODES = ("rmw", "reconstruct")


class Unraid(VolumeLayout):
    """Unraid over N = k + parity devices (k ≥ 1 data disks, 1 or 2 parity disks)."""

    level = "UNRAID"
    OPTIONS = ("parity", "data_sizes", "fill", "write_mode")

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        parity: int = 1,
        data_sizes: Sequence[int] | None = None,
        fill: str = "most-free",
        write_mode: str = "rmw",
    ) -> None:
        self.parity = check_int("parity", parity, 1)
        if self.parity > 2:
            raise InvalidArgumentError(f"parity must be 1 or 2, got {parity}")
        if fill not in FILL_POLICIES:
            raise InvalidArgumentError(
                f"fill must be one of {', '.join(FILL_POLICIES)}, got {fill!r}"
            )
        self.fill = fill
        if write_mode not in WRITE_MODES:
            raise InvalidArgumentError(
                f"write_mode must be one of {', '.join(WRITE_MODES)}, got {write_mode!r}"
            )
        self.write_mode = write_mode
        self.data_sizes: tuple[int, ...] | None = None
        super().__init__(n_devices, chunk_size)
        if self.n_data > 255:
            raise InvalidArgumentError(
                f"Unraid supports at most 255 data disks, got n_devices={self.n_devices}"
            )
        if data_sizes is not None:
            if isinstance(data_sizes, (str, bytes)) or not isinstance(data_sizes, Sequence):
                raise InvalidArgumentError("data_sizes must be a list of byte counts")
            sizes = tuple(check_int("data_sizes[]", s, self.chunk_size) for s in data_sizes)
            if len(sizes) != self.n_data:
                raise InvalidArgumentError(
                    f"data_sizes lists {len(sizes)} sizes for {self.n_data} data disks"
                )
            self.data_sizes = tuple(s - s % self.chunk_size for s in sizes)

    @property
    def options(self) -> dict[str, object]:
        out: dict[str, object] = {"parity": self.parity, "fill": self.fill}
        if self.write_mode != "rmw":
            out["write_mode"] = self.write_mode
        if self.data_sizes is not None:
            out["data_sizes"] = list(self.data_sizes)
        return out

    @property
    def n_data(self) -> int:
        """Data disks k = N - parity."""
        return self.n_devices - self.parity

    @property
    def min_devices(self) -> int:
        return 1 + self.parity

    @property
    def fault_tolerance(self) -> int:
        return self.parity

    @property
    def codec(self) -> Codec:
        return Codec.XOR if self.parity == 1 else Codec.PQ_MD

    @property
    def k(self) -> int:
        return self.n_data

    @property
    def m(self) -> int:
        return self.parity

    @property
    def period(self) -> int:
        return 1

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c, k = self.chunk_size, self.n_data
        members = [Member(d, s * c, c, Role.data(d)) for d in range(k)]
        members.append(Member(k, s * c, c, P))
        if self.parity == 2:
            members.append(Member(k + 1, s * c, c, Q))
        return StripeMap(s, self.codec, k, tuple(members))

    def volume_size(self, i: int, usable: int) -> int:
        """Bytes data disk ``i`` contributes for data areas of ``usable`` bytes."""
        if self.data_sizes is None:
            return usable
        return min(self.data_sizes[i], usable)

    def capacity(self, device_size: int | Sequence[int]) -> int:
        usable = self.usable_device_size(device_size)
        return sum(self.volume_size(i, usable) for i in range(self.n_data))

    def volumes(self, usable: int) -> list[Span]:
        return [Span(i, 0, self.volume_size(i, usable)) for i in range(self.n_data)]

    def parity_groups(self, usable: int) -> list[ParityGroup]:
        length = max(self.volume_size(i, usable) for i in range(self.n_data))
        spans = tuple(Span(self.n_data + j, 0, length) for j in range(self.parity))
        return [ParityGroup(tuple(range(self.n_data)), spans, length, self.codec)]

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= self.parity
