"""Per-extent placement engines: the pool's hook for levels that are not stripe maps.

Most levels place an extent in *rows* of fixed stripes, which the row engine
of :mod:`dwcore.pool.pool` handles for every level alike.  Two families
decide placement per extent instead and bring their own data path:

* ``placement = "volumes"`` (RAID S, Unraid: :class:`dwcore.raid.volumes.VolumeLayout`)
  — :class:`dwcore.pool.volume_engine.VolumeEngine`: each extent inside one
  unstriped volume, parity updated in place under a write-intent log;
* ``placement = "blocks"`` (RAID-Z) — :class:`dwcore.pool.raidz_engine.RaidzEngine`:
  each extent its own variable-width stripe, written copy-on-write.

The pool asks :func:`engine_for` once when it is built and, when it gets an
engine, hands it ``write``/``read``/``free``/``reconcile``/``sync``/
``rebuild``/``scrub``/``status``; membership, superblocks, the manifest and
the allocator file stay the pool's.  :func:`alloc_blocks` sizes the
allocator for such a level at creation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from dwcore.pool.extent import Extent
    from dwcore.pool.status import ScrubReport
    from dwcore.raid import Layout

__all__ = ["Engine", "alloc_blocks", "bitmap_diff", "engine_for", "placement_of"]


class Engine(Protocol):
    """The data path of a per-extent placement level (see the module documentation)."""

    def write(self, data: Any) -> Extent:
        """Store ``data`` in a new extent."""

    def read(self, ext: Extent, offset: int, length: int) -> bytes:
        """``length`` bytes of ``ext`` from ``offset`` (range already validated)."""

    def check_extent(self, ext: Extent) -> None:
        """Raise InvalidArgumentError when ``ext`` cannot be an extent of this pool."""

    def free(self, ext: Extent) -> None:
        """Release the space of ``ext``."""

    def physical(self, ext: Extent) -> list[tuple[int, int, int]]:
        """``(device, data-area offset, length)`` of every byte ``ext`` stores (data,
        parity, skip sectors): what a raw-I/O benchmark anchor must write and read."""

    def reconcile(self, used: list[tuple[int, int]]) -> int:
        """Free allocator blocks no live extent uses; returns blocks freed."""

    def check(self, used: list[tuple[int, int]]) -> tuple[int, int]:
        """What :meth:`reconcile` would find, changing nothing: ``(leaked, missing)``
        blocks (allocated but unused; used but not allocated or unknown)."""

    def after_sync(self) -> None:
        """Called under the pool lock after every device and the allocator synced."""

    def rebuild(self, progress: Any) -> None:
        """Reconstruct every REBUILDING device."""

    def scrub(self, repair: bool, progress: Any) -> ScrubReport:
        """Verify (and repair) everything the level stores."""

    def capacity(self) -> tuple[int, int]:
        """``(capacity, used)`` in user bytes."""

    def rebuild_progress(self) -> float | None:
        """Fraction of the current rebuild done (None when nothing rebuilds)."""

    def close(self) -> None:
        """Release the engine's files."""


def placement_of(layout: Layout) -> str:
    """``"stripes"`` for the row engine, else the level's per-extent placement."""
    return str(getattr(layout, "placement", "stripes"))


def bitmap_diff(bitmap: bytes, nblocks: int, used: list[tuple[int, int]]) -> tuple[int, int]:
    """``(leaked, missing)`` blocks of an allocation bitmap (bit i of byte j is block
    8j+i, 1 = allocated) against the ``(start, length)`` runs in use (overlaps allowed):
    allocated blocks no run covers, and covered blocks not allocated."""
    allocated = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    allocated = allocated[:nblocks].astype(bool)
    edges = np.zeros(nblocks + 1, dtype=np.int64)
    if used:
        runs = np.asarray(used, dtype=np.int64).reshape(-1, 2)
        np.add.at(edges, np.minimum(runs[:, 0], nblocks), 1)
        np.add.at(edges, np.minimum(runs[:, 0] + runs[:, 1], nblocks), -1)
    covered = np.cumsum(edges[:-1]) > 0
    return int(np.count_nonzero(allocated & ~covered)), int(np.count_nonzero(covered & ~allocated))


def alloc_blocks(layout: Layout, usable: int, block_size: int) -> int | None:
    """Allocator blocks for a per-extent level (None: the row engine's rows)."""
    kind = placement_of(layout)
    if kind == "volumes":
        from dwcore.pool.volume_engine import volume_alloc_blocks

        return volume_alloc_blocks(layout, usable, block_size)
    if kind == "blocks":
        from dwcore.pool.raidz_engine import raidz_alloc_blocks

        return raidz_alloc_blocks(layout, usable, block_size)
    return None


def engine_for(pool: Any) -> Engine | None:
    """The engine for ``pool``'s layout, or None for the row engine."""
    kind = placement_of(pool.layout)
    if kind == "volumes":
        from dwcore.pool.volume_engine import VolumeEngine

        return VolumeEngine(pool)
    if kind == "blocks":
        from dwcore.pool.raidz_engine import RaidzEngine

        return RaidzEngine(pool)
    return None
