"""Persistent block allocator: one per pool, its state in one file.

:class:`BlockAllocator` hands out extents of a pool's logical block space
(up to 2**32 blocks of a fixed size, 4 KiB by default) and keeps its state
in a file.  The hot paths are C (``csrc/alloc.c``): single-block allocation
is a bit scan at a next-fit cursor over a hierarchical has-free bitmap; a
contiguous extent goes where the cursor's hole continues, else into the
first region holding a free run of the smallest size class that fits (good
fit: small requests leave long runs alone), else to the first fitting run
found through a tree of per-region free runs in O(log n) — a 90%-full,
fragmented map still serves a 1 MiB extent in about a microsecond.

Durability is explicit: changes live in RAM until :meth:`BlockAllocator.sync`
writes them with shadow paging (two checksummed copies of every bitmap page,
a double-buffered superblock naming the committed copies, two ordered
flushes).  After a crash — a killed process or a power cut at any instant —
:meth:`BlockAllocator.open` yields the state of the last completed sync, or
of the one in flight: every allocation a sync acknowledged is still
allocated, nothing freed before it is handed out twice.  Allocations made
after the last sync may be lost, frees after it may come back as leaked
blocks; :meth:`BlockAllocator.reconcile` with the extents the catalog
references frees those.

Superblock fallback: the superblock is double-buffered, and when the newest
copy fails its checksum :meth:`BlockAllocator.open` uses the other one, the
previous generation.  A sync cut short by a crash (a torn superblock write)
looks exactly like media damage to the newest copy, and the format cannot
tell them apart; in the second case the last *acknowledged* sync is rolled
back.  So open never does it silently: it emits a ``RuntimeWarning`` naming
the file and both generations, and sets
:attr:`BlockAllocator.opened_from_fallback` (and
``stats().recovered_from_fallback``); the pool must then run
:meth:`BlockAllocator.reconcile` with its catalog, which restores every
referenced block.  Corruption that no copy can repair raises
:class:`~dwcore.errors.CorruptionError` naming the page; a file from a newer
format raises :class:`~dwcore.errors.UnsupportedFormatError`.

Every method may be called from any thread (the C side holds a mutex; long
calls release the GIL; sync() holds it only to copy the changed pages).
``close()`` while another thread is inside a call raises
InvalidArgumentError instead of freeing the allocator under it.  Block
numbers and counts may be Python or numpy integers (not bools).

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "pool0.alloc")
>>> with BlockAllocator.create(path, nblocks=1 << 20) as a:
...     start = a.alloc(256)               # one contiguous extent of 256 blocks
...     a.free(start, 256)
...     a.sync()
"""

from __future__ import annotations

from dataclasses import dataclass

from dwcore._alloc import FORMAT_VERSION, MAX_BLOCKS, Allocator

__all__ = ["FORMAT_VERSION", "MAX_BLOCKS", "AllocStats", "BlockAllocator", "Extent"]

#: ``(start, length)`` in blocks.
Extent = tuple[int, int]


@dataclass(frozen=True)
class AllocStats:
    """A snapshot of an allocator's figures (blocks unless said otherwise)."""

    nblocks: int
    block_size: int
    free_blocks: int
    largest_free: int
    #: Maximal runs of free blocks (``None`` when not counted: ``stats(full=False)``).
    free_extents: int | None
    #: Committed generation: how many syncs have changed the file (create is 1).
    generation: int
    #: Bitmap pages changed since the last sync.
    dirty_pages: int
    #: Heap the allocator holds (bitmap, summaries, buffers).
    memory_bytes: int
    file_bytes: int
    #: open() fell back to the previous superblock copy (see the module docstring):
    #: reconcile() with the catalog.
    recovered_from_fallback: bool = False

    @property
    def used_blocks(self) -> int:
        return self.nblocks - self.free_blocks

    @property
    def fragmentation(self) -> float:
        """``1 - largest_free / free_blocks``: 0 when free space is one extent, near 1
        when it is scattered in small pieces (0 when nothing is free)."""
        if self.free_blocks == 0:
            return 0.0
        return 1.0 - self.largest_free / self.free_blocks

    @property
    def bits_per_block(self) -> float:
        """RAM per managed block, in bits."""
        return self.memory_bytes * 8 / self.nblocks


class BlockAllocator(Allocator):
    """A persistent allocator of fixed-size blocks, one per pool.

    Build one with :meth:`create` or :meth:`open` (not the constructor);
    use it as a context manager or call :meth:`close`.  Changes are durable
    once :meth:`sync` returns (``close()`` syncs unless told not to; an
    allocator garbage-collected without ``close()`` drops its unsynced
    changes, as a crash would).  One allocator per file at a time, in any
    process (the file is locked).

    Methods (implemented in C through :mod:`dwcore._alloc`, so a call costs
    well under a microsecond; see their docstrings):

    * ``alloc(n=1, contiguous=True, hint=None)`` -> first block, or with
      ``contiguous=False`` a list of ``(start, length)`` extents;
      ``alloc_extents(n, hint=None, max_extents=None)``;
      ``alloc_batch(count, n=1, hint=None)`` -> uint64 array of starts;
    * ``free(start, n=1)``, ``free_batch(starts, n=1)`` (all or nothing);
    * ``is_allocated(start, n=1)``, ``is_free(start, n=1)``,
      ``count_allocated(start, n=1)``, ``bitmap()``;
    * ``mark_allocated(start, n=1)``, ``mark_allocated_batch(starts, n=1)``
      (rebuilding from a catalog), ``reconcile(used_extents)`` (returns the
      leaked extents it freed);
    * ``stats()``, ``sync()``, ``close(sync=True)``.

    Errors: :class:`~dwcore.errors.NoSpaceError` (with ``largest_free``),
    :class:`~dwcore.errors.InvalidArgumentError` for a double free, a free of
    an unallocated block or blocks out of range (nothing changes),
    :class:`~dwcore.errors.CorruptionError` and
    :class:`~dwcore.errors.UnsupportedFormatError` from :meth:`open`,
    ``OSError`` when the file system fails (after a failed sync the
    allocator refuses changes until reopened).
    """

    def stats(self, full: bool = True) -> AllocStats:
        """Current figures; ``full=False`` skips counting free extents (a bitmap scan)."""
        return AllocStats(**self.stats_dict(full))
