"""Distributed spares for Declustered and RAID FR pools: rebuild into spare, copy-back.

:class:`DeclusteredPool` is the :class:`~dwcore.pool.pool.Pool` of a
:class:`~dwcore.raid.declustered.Declustered` layout (FR included).  Parity,
checksums, degraded reads, repair and scrub are the row engine's (a group is
a stripe).  It adds:

* **The U-interleaved data mapping** of §6.  The engine fills a segment's
  rows data column by data column; here every row of B bytes holds D·B
  consecutive bytes of the extent, unit ``ui`` (U bytes) of a row on data
  column ``ui mod D`` at ``(ui div D)·U`` inside the row.  A write permutes
  the extent into the engine's column order, a read asks the engine for the
  rows (and only the columns) holding the wanted bytes and permutes them
  back; the extent's zero padding stays known to the reader (a column of a
  row holds data iff its first unit starts below the extent's length), so a
  partly filled row reads from fewer columns.  Pools saved without ``unit``
  (made before this mapping) open with ``unit = 0``: the engine's own order.

* **Rebuild into spare space.**  With devices FAILED or MISSING and free
  spare slots, ``rebuild()`` moves the pool to a layout whose ``spared``
  lists them: every group column they held is reconstructed from the other
  columns of its group — read from *all* survivors, one reader thread per
  device — and written into the slice's spare position at the same device
  offset.  The pool then has its full redundancy again without any new
  device, and a further P failures are survived (P + Sp sequential).
* **Copy-back.**  ``replace_device(f)`` of a spared device puts a blank
  device in the slot; ``rebuild()`` then copies every relocated column from
  the spare space back to it (straight copies, verified; reconstructed only
  where a copy fails its checksum), switches the layout back and zeroes the
  vacated spare blocks and their checksum entries, so every device equals a
  never-failed twin's in its allocated blocks.  RAID FR starts the copy-back
  inside ``replace_device`` (mandatory); Declustered does it at the next
  ``rebuild()``.  A copy-back resumed (after a crash, or onto a second
  replacement when the first one failed during it) onto a device not known
  to hold the groups below the boundary — its checkpoint is below it — goes
  on from the boundary, and the device is then rebuilt in place from its
  checkpoint by the row engine before it is ONLINE.  The replacement's checkpoint
  (``rebuild_offset``) is saved in its superblock with every batch, before the
  boundary, so after a crash the rows below the boundary (whose spare copies are
  zeroed) are read from it.
* A plain replacement of a device that was never spared is rebuilt onto the
  replacement by the row engine, as for every other level.

Both moves are *transitions* of the layout (``target``, ``moved``, ``passes``):
stripes are handled in batches of allocated rows.  A rebuild into spare space
first moves the groups that have lost the most redundancy — ranked by their
columns on every device lost now (FAILED or MISSING, the ones being moved
included, a device lost during the move too) — rank by rank down to 2, then
all the others in stripe order (copy-back moves columns that have all their
redundancy, in stripe order).  A destination lost during a rebuild into spare
space is skipped: the columns meant for it are lost with it, and the next
round moves them into spare space with it.  After each batch the written devices are
synced and the boundary is saved in the manifest and in every member's
superblock (layout parameters plus the checkpoint number ``draid_seq``; open
takes the superblocks' state when it is newer than ``pool.json``'s or
``pool.json`` has none, and ``pool.json``'s otherwise — the manifest is written
first, so a crash between the two leaves it the newer), and only then are
vacated blocks zeroed.  A move never writes a place the old placement uses
(checked per slice before a batch is written), so a crash leaves every stripe
readable by the saved boundary and ``rebuild()`` resumes there.  Reads and
writes go on between batches: stripes already moved use the new placement,
the others the old one.

A group that cannot be reconstructed (more devices lost than the code
tolerates) does not stop the move: its rows on the new place are written
with checksum entries that cannot match (reads of them raise
:class:`~dwcore.errors.DataLossError`, never wrong bytes), every other group
is moved, the lost rows and devices are recorded in the manifest
(``status().reasons[-1]`` lists those still allocated; a record goes when its
rows are freed), and ``rebuild()`` raises DataLossError at the end naming them
(``failed``, ``lost_rows``).  Rows recorded lost stay lost through later moves
under their first record (devices and rows named once), and reads of them name
the devices that lost them.

:meth:`DeclusteredPool.status` reports the spare space: a device rebuilt into
it stays FAILED (its slot is empty; ``degraded`` stays True until it is
replaced) with ``reasons`` saying its redundancy is restored and in which
slot; during a move ``rebuild_progress`` is the share of allocated rows moved.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from dwcore._native import new_bytes_to_fill
from dwcore.alloc import BlockAllocator
from dwcore.checksum import crc32c, crc32c_blocks
from dwcore.devices import DeviceError
from dwcore.devices.superblock import write_superblock
from dwcore.errors import DataLossError, InvalidArgumentError
from dwcore.pool import codec
from dwcore.pool.extent import Extent
from dwcore.pool.manifest import Manifest
from dwcore.pool.pool import DeviceSpec, Pool, PoolDegradedWarning, _Member, _Segment
from dwcore.pool.status import DeviceState, PoolStatus
from dwcore.raid import Layout, StripeMap
from dwcore.raid.declustered import LEGACY_SPARE_RULE, Declustered, Pass

__all__ = ["BATCH_STRIPES", "DeclusteredPool"]

#: Stripes (groups) one transition step moves at most.
BATCH_STRIPES = 64
#: The spare-state checkpoint number (``manifest.extra`` and superblock layout params).
SEQ_KEY = "draid_seq"
#: Rows a move could not reconstruct: ``[[first_row, rows, [devices]], ...]`` (manifest).
LOST_KEY = "draid_lost"
#: States of a device whose columns cannot be read.
_LOST_STATES = (DeviceState.FAILED, DeviceState.MISSING)
#: The layout options that make up the spare state (the rest is geometry).
_STATE_KEYS = ("spared", "target", "moved", "passes", "critical")


class _Move:
    """One segment of one stripe in a transition: where its members are, before and after."""

    __slots__ = ("bad", "bufs", "erased", "lost_rows", "movers", "new", "old", "seg", "whole")

    def __init__(self, seg: _Segment, old: StripeMap, new: StripeMap) -> None:
        self.seg = seg
        self.old = old
        self.new = new
        self.movers = [
            j
            for j, (a, z) in enumerate(zip(old.members, new.members, strict=True))
            if a.device != z.device
        ]
        self.erased: set[int] = set()
        self.whole = False
        self.bufs: list[np.ndarray | None] = [None] * len(old.members)
        self.lost_rows: set[int] = set()  # rows of the movers that cannot be reconstructed
        self.bad: set[int] = set()  # the devices that made them lost


def _words(a: np.ndarray, u: int) -> tuple[np.ndarray, int]:
    """``a`` as 8-byte words where a unit holds whole words (numpy moves far fewer
    elements then), with the unit's length in those elements."""
    return (a.view(np.uint64), u // 8) if u % 8 == 0 else (a, u)


def _to_columns(rows: np.ndarray, out: np.ndarray, n: int, k: int, upr: int, u: int) -> None:
    """Logical bytes of ``n`` rows -> the column order: (row, unit of the column,
    column, byte) -> (column, row, unit, byte).  Without the unit axis when a column
    holds one unit per row: a copy with a length-1 axis ran 40x slower in numpy."""
    src, w = _words(rows, u)
    dst, _ = _words(out, u)
    if upr == 1:
        np.copyto(dst.reshape(k, n, w), src.reshape(n, k, w).transpose(1, 0, 2))
    else:
        np.copyto(dst.reshape(k, n, upr, w), src.reshape(n, upr, k, w).transpose(2, 0, 1, 3))


def _to_logical(
    cols: np.ndarray, n: int, k: int, upr: int, u: int, out: np.ndarray | None = None
) -> np.ndarray:
    """The inverse of :func:`_to_columns`, into ``out`` (default: a new array of bytes)."""
    if out is None:
        out = np.empty(cols.size, dtype=np.uint8)
    src, w = _words(cols.reshape(-1), u)
    dst, _ = _words(out, u)
    if upr == 1:
        np.copyto(dst.reshape(n, k, w), src.reshape(k, n, w).transpose(1, 0, 2))
    else:
        np.copyto(dst.reshape(n, upr, k, w), src.reshape(k, n, upr, w).transpose(1, 2, 0, 3))
    return out


def _place(
    cols: np.ndarray,
    n: int,
    k: int,
    upr: int,
    u: int,
    outv: np.ndarray,
    a: int,
    z: int,
    skip: int,
) -> None:
    """Logical bytes ``skip .. skip + z - a`` of ``n`` rows held as columns ``cols``
    into ``outv[a:z]``: straight in when that is every byte of the rows, else through
    a scratch copy."""
    if skip == 0 and z - a == cols.size:
        _to_logical(cols, n, k, upr, u, outv[a:z])
    else:
        outv[a:z] = _to_logical(cols, n, k, upr, u)[skip : skip + z - a]


class _Slot(_Member):
    """A pool slot that also knows the stripes a priority pass rebuilt onto it (while
    REBUILDING) ahead of its checkpoint: those are readable too.  Kept in memory only —
    after a crash they are simply rebuilt again in order."""

    early: set[int]
    rpc: int

    @classmethod
    def adopt(cls, mem: _Member, rpc: int) -> _Slot:
        out = cls.__new__(cls)
        out.__dict__.update(mem.__dict__)
        out.early, out.rpc = set(), rpc
        return out

    def readable(self, row_end: int) -> bool:
        if super().readable(row_end):
            return True
        return (
            self.state is DeviceState.REBUILDING
            and self.device is not None
            and row_end > 0
            and (row_end - 1) // self.rpc in self.early
        )


class DeclusteredPool(Pool):
    """A pool over a declustered layout: distributed spares (module documentation)."""

    _SHARED_IO = False  # its own data path: every request holds the pool lock

    layout: Declustered

    def __init__(
        self,
        path: str,
        manifest: Manifest,
        layout: Layout,
        members: list[_Member],
        alloc: BlockAllocator,
    ) -> None:
        assert isinstance(layout, Declustered)
        legacy: dict[str, Any] = {}
        if "unit" not in manifest.layout:
            # saved before the U-interleaved mapping: the engine's column order (unit 0)
            legacy["unit"] = 0
        if "spare_rule" not in manifest.layout:
            # saved before spare_rule: its spare positions keep their older rule
            legacy["spare_rule"] = LEGACY_SPARE_RULE
        if legacy:
            # from the saved parameters themselves: read with the newer defaults, the
            # spare state would already be normalised for the other rule
            saved = {
                k: v
                for k, v in manifest.layout.items()
                if k not in ("name", "n_devices", "chunk_size")
            }
            layout = type(layout)(layout.n_devices, layout.chunk_size, **{**saved, **legacy})
            manifest.layout = layout.params
        newer = _superblock_state(manifest, layout, members)
        if newer is not None:
            layout = newer
        unit = layout.unit
        if unit and manifest.block_size % unit:
            raise InvalidArgumentError(
                f"RAID {layout.level}: block_size {manifest.block_size} is not a multiple of "
                f"the mapping unit {unit}; use block_size >= unit or a smaller unit"
            )
        rpc = layout.chunk_size // manifest.block_size
        members = [_Slot.adopt(m, rpc) for m in members]
        super().__init__(path, manifest, layout, members, alloc)
        if newer is not None:
            manifest.save(path)

    @classmethod
    def _device_sizes(
        cls,
        layout: Layout,
        specs: Sequence[DeviceSpec],
        device_size: int | None,
        block_size: int,
    ) -> tuple[Layout, list[int]]:
        # refused here, before Pool.create writes anything, not only when it opens
        unit = getattr(layout, "unit", 0)
        if unit and block_size % unit:
            raise InvalidArgumentError(
                f"RAID {layout.level}: block_size {block_size} is not a multiple of "
                f"the mapping unit {unit}; use block_size >= unit or a smaller unit"
            )
        return super()._device_sizes(layout, specs, device_size, block_size)

    # ------------------------------------------------------------------
    # the U-interleaved data mapping
    # ------------------------------------------------------------------

    def _to_engine(self, view: memoryview, first: int, rows: int) -> memoryview:
        """An extent's logical bytes in the engine's column-by-column order."""
        u = self.layout.unit
        if not u:
            return view
        k, b = self.layout.k, self._block
        rb, upr = k * b, b // u
        src = np.frombuffer(view, dtype=np.uint8)
        whole = view.nbytes // rb  # rows the extent fills; the last one is padded here
        tail = np.zeros(rb, dtype=np.uint8)
        tail[: view.nbytes - whole * rb] = src[whole * rb :]
        out = np.empty(rows * rb, dtype=np.uint8)
        for seg in self._segments(first, rows):
            r0 = seg.offset // rb
            lo, hi = seg.offset, seg.offset + seg.n * rb
            full = max(0, min(seg.n, whole - r0))  # rows of this segment taken from src
            if full == seg.n:
                _to_columns(src[lo:hi], out[lo:hi], seg.n, k, upr, u)
                continue
            rows_in = np.empty(seg.n * rb, dtype=np.uint8)  # the extent's last segment
            rows_in[: full * rb] = src[lo : lo + full * rb]
            rows_in[full * rb :] = 0
            if r0 <= whole < r0 + seg.n:  # the row the extent ends inside
                rows_in[full * rb : (full + 1) * rb] = tail
            _to_columns(rows_in, out[lo:hi], seg.n, k, upr, u)
        return out.data

    def _write_rows(self, first: int, rows: int, view: memoryview) -> None:
        super()._write_rows(first, rows, self._to_engine(view, first, rows))

    def _write_flat(self, first: int, rows: int, view: memoryview) -> None:
        super()._write_flat(first, rows, self._to_engine(view, first, rows))

    def read(self, ext: Extent, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes of ``ext`` from ``offset`` (see :meth:`Pool.read`)."""
        u = self.layout.unit
        if not u:
            return super().read(ext, offset, length)
        length = self._read_range(ext, offset, length)
        if length == 0:
            return b""
        end = offset + length
        if self._direct:
            with self._admitted(), self._lock:
                self._check_open()
                # degraded: the careful path (a failed column is in most rows' way)
                fast = None
                if all(m.state is DeviceState.ONLINE for m in self._members):
                    fast = self._read_fast(ext, offset, end)
                    self._reap_dead()
            if fast is not None:
                return fast
        k, b = self.layout.k, self._block
        rb, upr = k * b, b // u  # logical bytes per row, units per column per row
        out, outview = new_bytes_to_fill(length)
        outv = np.frombuffer(outview, dtype=np.uint8)
        lost_ranges: list[tuple[int, int]] = []
        lost_devices: set[int] = set()
        with self._admitted(), self._lock:
            self._check_open()
            for seg in self._segments(ext.first_row, ext.rows):
                r0 = max(0, (offset - seg.offset) // rb)
                r1 = min(seg.n, -(-(end - seg.offset) // rb))
                if r0 >= r1:
                    continue
                nr, base = r1 - r0, seg.offset + r0 * rb
                lo, hi = max(offset, base), min(end, base + nr * rb)
                units = range((lo - base) // u, -(-(hi - base) // u))
                need = sorted({ui % k for ui in units[:k]})
                cols = np.empty((k, nr * b), dtype=np.uint8)
                # rows (from r0) where column d holds extent bytes; the rest is padding
                pad = {d: min(max(-(-(ext.length - base - d * u) // rb), 0), nr) for d in range(k)}
                sub = _Segment(seg.stripe, seg.row + r0, nr, seg.first + r0, base)
                res = self._rows(sub, {d: cols[d] for d in need}, pad_from=pad)
                dmi = self._stripe_entry(seg.stripe)[1]
                for d in need:
                    rows_lost: set[int] = set()
                    for j in dmi[d]:
                        rows_lost |= res.lost.get(j, set())
                    for i in sorted(rows_lost):
                        for q in range(upr):
                            at = base + i * rb + (q * k + d) * u
                            if at < hi and at + u > lo:
                                lost_ranges.append((max(lo, at), min(hi, at + u)))
                    if rows_lost:
                        lost_devices |= res.bad_devices
                _place(cols, nr, k, upr, u, outv, lo - offset, hi - offset, lo - base)
            self._reap_dead()
        if lost_ranges:
            raise self._lost_range_error(ext, lost_ranges, lost_devices)
        del outv, outview
        return out

    def _read_fast(self, ext: Extent, offset: int, end: int) -> bytes | None:
        """A healthy read of logical bytes ``[offset, end)`` of ``ext`` through the engine's
        direct (native) path: the wanted rows of each data column, contiguous engine
        ranges merged, then permuted back; None where the engine's careful path must read
        (a device unusable, a block failing its checksum)."""
        k, b, u = self.layout.k, self._block, self.layout.unit
        if u == b:
            out, outview = new_bytes_to_fill(end - offset)
            return out if self._read_units(ext, offset, end, outview) == 0 else None
        rb, upr = k * b, b // u
        whole = Extent(ext.pool_tag, ext.first_row, ext.rows, ext.rows * rb)  # engine order
        ranges: list[list[int]] = []  # [start, stop) in the engine's order, merged
        pieces: list[tuple[int, int, list[tuple[int, int]]]] = []  # base, rows, column places
        for seg in self._segments(ext.first_row, ext.rows):
            r0 = max(0, (offset - seg.offset) // rb)
            r1 = min(seg.n, -(-(end - seg.offset) // rb))
            if r0 >= r1:
                continue
            places = []
            for d in range(k):
                a = seg.offset + d * seg.n * b + r0 * b
                if ranges and ranges[-1][1] == a:
                    ranges[-1][1] = a + (r1 - r0) * b
                else:
                    ranges.append([a, a + (r1 - r0) * b])
                places.append((len(ranges) - 1, a - ranges[-1][0]))
            pieces.append((seg.offset + r0 * rb, r1 - r0, places))
        got = []
        for a, z in ranges:
            raw = self._read_direct(whole, a, z)
            if raw is None:
                return None
            got.append(np.frombuffer(raw, dtype=np.uint8))
        out, outview = new_bytes_to_fill(end - offset)
        outv = np.frombuffer(outview, dtype=np.uint8)
        for base, nr, places in pieces:
            cols = np.stack([got[i][at : at + nr * b] for i, at in places])
            lo, hi = max(offset, base), min(end, base + nr * rb)
            _place(cols, nr, k, upr, u, outv, lo - offset, hi - offset, lo - base)
        del outv, outview
        return out

    def _read_units(self, ext: Extent, offset: int, end: int, outview: memoryview) -> int | None:
        """A healthy read with U = block: row r of a group holds units r*D .. r*D+D-1,
        one block on each data column in order, which is what :func:`read_segments`
        lays out for a segment of one row, so every row is such a segment and the
        bytes land in logical order with no copy.  Returns its result (0, or an errno
        after which the careful path must read), or None where it cannot serve."""
        k, b = self.layout.k, self._block
        rb = k * b
        parts: list[np.ndarray] = []
        skip = -1  # logical byte at which the first table row starts
        for seg in self._segments(ext.first_row, ext.rows):
            r0 = max(0, (offset - seg.offset) // rb)
            r1 = min(seg.n, -(-(end - seg.offset) // rb))
            if r0 >= r1:
                if seg.offset >= end:
                    break
                continue
            if skip < 0:
                skip = seg.offset + r0 * rb
            sm, dmi, whole = self._stripe_entry(seg.stripe)
            if not whole:
                return None
            first = np.empty(2 * k, dtype=np.int64)  # (device, block of row 0) per column
            for d in range(k):
                m = sm.members[dmi[d][0]]
                first[2 * d] = m.device
                first[2 * d + 1] = m.device_offset // b + seg.row
            rows = np.empty((r1 - r0, 1 + 2 * k), dtype=np.int64)
            rows[:, 0] = 1
            rows[:, 1:] = first
            rows[:, 2::2] += np.arange(r0, r1, dtype=np.int64)[:, None]
            parts.append(rows)
        if not parts:
            return None
        segments = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return self._read_segments(outview, offset - skip, end - skip, segments, k)

    # ------------------------------------------------------------------
    # public
    # ------------------------------------------------------------------

    def rebuild(self, progress: Callable[[int, int], Any] | None = None) -> None:
        """Finish a pending transition, copy back onto replacements of spared devices,
        rebuild other replacements in place, then rebuild FAILED or MISSING devices
        into the distributed spare space (module documentation).

        Devices beyond the free spare slots stay FAILED (a
        :class:`~dwcore.pool.PoolDegradedWarning` says so); raises
        :class:`~dwcore.errors.InvalidArgumentError` when no slot is free at all
        (nothing is moved: replace them).  Groups beyond the tolerance do not stop a
        move: every other group is moved, then :class:`~dwcore.errors.DataLossError`
        names the lost devices (``failed``) and pool rows (``lost_rows``: ``(first row,
        rows)`` runs; an extent is hit when its rows overlap one).
        """
        lost: list[list[Any]] = []
        with self._lock:
            self._check_open()
            pending = self.layout.target is not None
        if pending:
            lost += self._run(progress)
        with self._lock:
            copy_back = any(
                m.state is DeviceState.REBUILDING and m.index in self.layout.spared_devices
                for m in self._members
            )
        if copy_back:
            # devices failed since go into free spare slots before a copy-back moves
            # columns: the copy-back (or the tidying after it) may slide columns onto
            # their places, which a failed device cannot take
            self._spare_failed(progress, lost, refuse=False)
        with self._lock:
            lay = self.layout
            back = [
                m.index
                for m in self._members
                if m.state is DeviceState.REBUILDING and m.index in lay.spared_devices
            ]
            if back:
                self._start(lay.spare_removed(back))
        if back:
            lost += self._run(progress)
        while True:
            with self._lock:
                lay = self.layout
                tidy = lay.tidied() if lay.ghosts else lay.spared
                if tidy == lay.spared:
                    break
                # the ghosts a copy-back left: the columns they kept in place move now,
                # step by step, until their slots are free (or no step can be made)
                self._start(tidy)
            lost += self._run(progress)
        with self._lock:
            plain = any(m.state is DeviceState.REBUILDING for m in self._members)
        if plain:
            self._rebuild_critical_in_place()
            super().rebuild(progress)
        left = self._spare_failed(progress, lost, refuse=True)
        if left:
            warnings.warn(
                f"pool {self._path}: devices {left} stay failed: no distributed spare slot is "
                f"left for them; replace them",
                PoolDegradedWarning,
                stacklevel=2,
            )
        if lost:
            raise self._lost_error(lost)

    def _spare_failed(
        self,
        progress: Callable[[int, int], Any] | None,
        lost: list[list[Any]],
        refuse: bool,
    ) -> list[int]:
        """Move the failed devices not in spare space into free spare slots (rounds:
        again for a device failing during the move); returns those no slot was left
        for.  With none placed at all, ``refuse`` raises InvalidArgumentError."""
        left: list[int] = []
        rounds = 0
        while True:
            # into spare space; again when a device failed during the move
            with self._lock:
                lay = self.layout
                failed = [
                    m.index
                    for m in self._members
                    if m.state in (DeviceState.FAILED, DeviceState.MISSING)
                    and m.index not in lay.spared_devices
                ]
                if not failed:
                    left = []
                    break
                state, left = lay.spare_added(failed)
                if len(left) == len(failed):
                    if rounds or lost or not refuse:
                        break  # those that fitted moved; the rest stay failed (warning)
                    raise InvalidArgumentError(
                        f"pool {self._path}: devices {failed} are failed and no distributed "
                        f"spare slot is free; replace them (replace_device, then rebuild)"
                    )
                self._start(state)
            rounds += 1
            lost += self._run(progress)
        return left

    def replace_device(
        self, i: int, path_or_device: DeviceSpec | None = None, *, force: bool = False
    ) -> None:
        """Put a blank device in slot ``i`` (see :meth:`Pool.replace_device`); for RAID
        FR a spared slot's copy-back runs at once."""
        super().replace_device(i, path_or_device, force=force)
        with self._lock:
            mem = self._members[i]
            if isinstance(mem, _Slot):
                mem.early.clear()  # a blank device: nothing on it is rebuilt yet
        if getattr(self.layout, "copyback_on_replace", False) and i in self.layout.spared_devices:
            self.rebuild()

    def status(self) -> PoolStatus:
        """:meth:`Pool.status` plus the distributed spare space: a device rebuilt into it
        is FAILED (its slot is empty, so ``degraded`` stays True) with ``reasons`` saying
        its redundancy is restored and in which slot; during a move (into spare space or
        copy-back) ``rebuild_progress`` is the share of allocated rows moved and
        ``reasons`` names the devices moving; ``reasons[-1]`` lists rows a move could not
        reconstruct that are still allocated."""
        st = super().status()
        with self._lock:
            lay = self.layout
            reasons = dict(st.reasons)
            progress = st.rebuild_progress

            def note(f: int, text: str) -> None:
                old = reasons.get(f, "")
                reasons[f] = f"{old}; {text}" if old else text

            moving = set(lay.newly_spared)
            back: set[int] = set()
            if lay.target is not None:
                back = {f for f in lay.spared if f >= 0} - {f for f in lay.target if f >= 0}
                rows = moved = 0
                for first, n in self._allocated_runs():
                    for seg in self._segments(first, n):
                        rows += seg.n
                        if lay.in_target(seg.stripe):
                            moved += seg.n
                progress = moved / rows if rows else 1.0
                pct = f"{100 * progress:.0f}% of allocated rows moved"
                for f in sorted(moving):
                    note(f, f"being rebuilt into distributed spare space ({pct})")
                for f in sorted(back):
                    note(f, f"copy-back from distributed spare space in progress ({pct})")
            for j, f in enumerate(lay.spared):
                if f >= 0 and f not in back:
                    note(
                        f,
                        f"rebuilt into distributed spare slot {lay.slot_of(j)} (redundancy "
                        f"restored; "
                        f"replace it to copy back)",
                    )
            lost = self._lost_records()
            if lost:
                runs = ", ".join(f"[{a}, {a + n})" for a, n, _ in lost)
                devs = sorted({d for _, _, ds in lost for d in ds})
                reasons[-1] = (
                    f"data lost: pool rows {runs} could not be reconstructed (devices {devs}); "
                    f"reads of the extents holding them raise DataLossError"
                )
        return dataclasses.replace(st, reasons=reasons, rebuild_progress=progress)

    def _rebuild_critical_in_place(self) -> None:
        """Before the row engine rebuilds the replacements (REBUILDING) in order: the
        groups that have lost the most redundancy — ranked by their columns on every lost
        device, the replacements and the FAILED or MISSING ones — rank by rank down to 2,
        are rebuilt onto the replacements first (§6 rebuild-critical first) and are
        readable there at once; the ordered pass then skips them."""
        with self._lock:
            self._check_open()
            targets = [m for m in self._members if m.state is DeviceState.REBUILDING]
            tdev = {m.index for m in targets}
            gone = {m.index for m in self._members if m.state in _LOST_STATES}
            lost = tdev | gone
            if self._flat or len(lost) < 2 or not targets:
                return
            lay = self.layout
            start = min(m.rebuilt_rows for m in targets)
            rank: dict[int, int] = {}
            for first, rows in self._allocated_runs(start):
                for seg in self._segments(first, rows):
                    if seg.stripe not in rank:
                        devs = set(lay.stripe(seg.stripe).devices)
                        # only groups with a column on a replacement, and decodable
                        r = len(devs & lost) if devs & tdev else 0
                        rank[seg.stripe] = r if r <= lay.parity else 0
        for level in sorted({r for r in rank.values() if r >= 2}, reverse=True):
            stripes = sorted(s for s, r in rank.items() if r == level)
            for i in range(0, len(stripes), BATCH_STRIPES):
                part = stripes[i : i + BATCH_STRIPES]
                with self._admitted(), self._lock:
                    self._check_open()
                    if any(m.state is not DeviceState.REBUILDING for m in targets):
                        raise InvalidArgumentError("device states changed during rebuild")
                    for s in part:
                        lo = max(start, s * self._rpc)
                        for first, rows in self._allocated_runs(lo):
                            if first >= (s + 1) * self._rpc:
                                break
                            n = min(rows, (s + 1) * self._rpc - first)
                            for seg in self._segments(first, n):
                                Pool._rebuild_segment(self, seg, tdev)
                    for m in targets:
                        if m.device is not None:
                            m.device.sync()
                        if isinstance(m, _Slot):
                            m.early.update(part)

    def _rebuild_segment(self, seg: _Segment, tdev: set[int]) -> None:
        """The row engine's step (see :meth:`Pool._rebuild_segment`), skipping the stripes a
        priority pass already rebuilt onto every replacement."""
        mems = [self._members[d] for d in tdev]
        if all(isinstance(m, _Slot) and seg.stripe in m.early for m in mems):
            return
        super()._rebuild_segment(seg, tdev)

    # ------------------------------------------------------------------
    # the spare state: manifest and superblocks
    # ------------------------------------------------------------------

    def _replace_layout(self, layout: Layout) -> None:
        """Switch the layout (see :meth:`Pool._replace_layout`): saved in the manifest,
        then, with the next checkpoint number, in every member's superblock."""
        seq = int(self._manifest.extra.get(SEQ_KEY, 0)) + 1
        self._manifest.extra[SEQ_KEY] = seq
        super()._replace_layout(layout)
        params = {**self.layout.params, "block_size": self._block, SEQ_KEY: seq}
        mems = [
            m for m in self._members if m.writable and m.sb is not None and m.device is not None
        ]
        try:
            news = [dataclasses.replace(m.sb, layout_params=params) for m in mems if m.sb]
        except InvalidArgumentError as exc:
            # more state than a superblock holds (many lost devices on a wide pool): the
            # manifest alone has this checkpoint (it stays the newer one on open)
            warnings.warn(
                f"pool {self._path}: spare state not written to the superblocks: {exc}",
                PoolDegradedWarning,
                stacklevel=3,
            )
            return

        def put(i: int) -> None:
            dev = mems[i].device
            assert dev is not None
            write_superblock(dev, news[i])

        # one thread per device: the superblock writes (two synced copies) overlap
        with ThreadPoolExecutor(max(1, len(mems)), thread_name_prefix="dwcore-sb") as ex:
            errors = list(ex.map(_catch, [functools.partial(put, i) for i in range(len(mems))]))
        for mem, sb, err in zip(mems, news, errors, strict=True):
            if err is None:
                mem.sb = sb
            elif isinstance(err, DeviceError):
                self._mark_failed(mem.index, f"superblock write failed: {err}")
            else:
                raise err

    def _lost_records(self) -> list[tuple[int, int, list[int]]]:
        """The recorded lost row runs still allocated (under the lock)."""
        out = []
        for first, n, devs in self._manifest.extra.get(LOST_KEY, []):
            if self._alloc.count_allocated(first, n):
                out.append((int(first), int(n), list(devs)))
        return out

    def _lost_range_error(
        self, ext: Extent, ranges: list[tuple[int, int]], devices: set[int]
    ) -> DataLossError:
        """:meth:`Pool._lost_range_error`, naming for rows a move recorded lost the
        devices that lost them (not the healthy ones now holding their zero-filled stand-ins)."""
        with self._lock:
            known = {
                d
                for a, n, ds in self._lost_records()
                if a < ext.first_row + ext.rows and ext.first_row < a + n
                for d in ds
            }
            if known:
                gone = {d for d in devices if self._members[d].state in _LOST_STATES}
                devices = known | gone
        return super()._lost_range_error(ext, ranges, devices)

    def free(self, ext: Extent) -> None:
        """Release the rows of ``ext`` (see :meth:`Pool.free`); rows recorded lost by a move
        are no longer reported once freed (they may be written again)."""
        super().free(ext)
        with self._lock:
            recs = self._manifest.extra.get(LOST_KEY, [])
            lo, hi = ext.first_row, ext.first_row + ext.rows
            if not recs or not any(a < hi and lo < a + n for a, n, _ in recs):
                return
            keep: list[list[Any]] = []
            for a, n, ds in recs:
                if a < lo:
                    keep.append([a, min(n, lo - a), ds])
                if a + n > hi:
                    b0 = max(a, hi)
                    keep.append([b0, a + n - b0, ds])
            self._manifest.extra[LOST_KEY] = keep
            self._manifest.save(self._path)

    def _lost_error(self, lost: list[list[Any]]) -> DataLossError:
        """The DataLossError of a move that could not reconstruct the rows ``lost``."""
        devs = sorted({d for _, _, ds in lost for d in ds})
        runs = _merged((int(a), int(n)) for a, n, _ in lost)
        text = ", ".join(f"[{a}, {a + n})" for a, n in runs)
        err = DataLossError(
            f"pool {self._path}: rows {text} could not be reconstructed: devices {devs} are "
            f"failed or corrupt beyond what RAID {self.layout.level} tolerates; every other "
            f"group was moved",
            failed=devs,
        )
        err.lost_rows = tuple(runs)  # type: ignore[attr-defined]
        return err

    # ------------------------------------------------------------------
    # transitions
    # ------------------------------------------------------------------

    def _start(self, state: Sequence[int]) -> None:
        """Save a transition to spare state ``state`` (under the lock)."""
        lay = self.layout
        self._replace_layout(lay.with_state(lay.spared, state, 0))

    def _lost_now(self, lay: Declustered) -> frozenset[int]:
        """The devices whose columns (placed by ``lay.spared``) are lost now."""
        gone = {
            m.index for m in self._members if m.state in (DeviceState.FAILED, DeviceState.MISSING)
        }
        return frozenset((gone | lay.newly_spared) - {f for f in lay.spared if f >= 0})

    def _replan(self, lay: Declustered) -> Declustered:
        """A rebuild into spare space whose lost devices grew (two at once, or one more
        during the move) gets a priority pass entry over all of them (under the lock)."""
        if not lay.newly_spared:
            return lay  # a copy-back restores no lost redundancy
        lost = self._lost_now(lay)
        last = lay.passes[-1][0] if lay.passes else frozenset()
        if len(lost) < 2 or lost <= last:
            return lay
        entry: Pass = (lost, min(lay.width, len(lost)), 0)
        nxt = lay.with_state(lay.spared, lay.target, lay.moved, [*lay.passes, entry])
        self._replace_layout(nxt)
        return nxt

    def _batch(
        self, lay: Declustered, start: int, want: Callable[[int], bool] | None
    ) -> tuple[list[_Segment], int]:
        """The allocated segments of the next batch from stripe ``start`` (those ``want``
        accepts, from the first one on, over at most BATCH_STRIPES stripes) and the stripe
        after the batch; ``([], start)`` when there is none."""
        rpc = self._rpc
        segs: list[_Segment] = []
        s1 = start
        for first, rows in self._allocated_runs(start * rpc):
            for seg in self._segments(first, rows):
                if segs and seg.stripe >= s1:
                    return segs, s1
                if want is not None and not want(seg.stripe):
                    continue
                if not segs:
                    s1 = min(seg.stripe + BATCH_STRIPES, self._geo.stripes)
                segs.append(seg)
        return segs, (s1 if segs else start)

    def _run(self, progress: Callable[[int, int], Any] | None) -> list[list[Any]]:
        """Move every allocated stripe of the pending transition: priority passes, then
        the rest in stripe order from the ``moved`` boundary, batch by batch.  Returns the
        lost row runs ``[first_row, rows, devices]`` (recorded in the manifest too)."""
        b, rpc = self._block, self._rpc
        with self._lock:
            self._check_open()
            lay = self.layout
            assert lay.target is not None
            total = 0
            for first, rows in self._allocated_runs():
                for seg in self._segments(first, rows):
                    if not lay.in_target(seg.stripe):
                        total += seg.n * b
            back = [
                m
                for m in self._members
                if m.state is DeviceState.REBUILDING
                and m.index in {f for f in lay.spared if f >= 0}
                and m.index not in {f for f in lay.target if f >= 0}
            ]
            # a copy-back resumed onto a device that does not hold the groups below the
            # boundary (a fresh replacement of one that failed, or a checkpoint lost in a
            # crash) is copied from the boundary on, then rebuilt in place from its
            # checkpoint by the row engine (rebuild() does it next)
            start_row = lay.moved * rpc
            whole = [m for m in back if m.rebuilt_rows >= start_row]
        done = 0
        lost: list[list[Any]] = []
        if progress is not None:
            progress(0, total)
        workers = ThreadPoolExecutor(max(1, lay.n_devices), thread_name_prefix="dwcore-draid")
        try:
            while True:
                with self._lock:
                    self._check_open()
                    lay = self.layout
                    if lay.target is None:
                        break
                    lay = self._replan(lay)
                    assert lay.target is not None
                    cur = lay.passes[-1] if lay.passes and lay.passes[-1][1] >= 2 else None
                    if cur is not None:
                        # a priority pass: the groups of rank `level` not moved yet
                        lost_devs, level, bound = cur
                        want = functools.partial(_in_pass, lay, lost_devs, level)
                        segs, s1 = self._batch(lay, bound, want)
                        if not segs:
                            # this rank is done: the next one (saved, reported as a step)
                            rest = [*lay.passes[:-1], (lost_devs, level - 1, 0)]
                            self._replace_layout(
                                lay.with_state(lay.spared, lay.target, lay.moved, rest)
                            )
                    else:
                        segs, s1 = self._batch(lay, lay.moved, None)
                        if not segs:
                            self._replace_layout(lay.with_state(lay.target))
                            break
                    step = self._step(lay, cur, segs, s1, whole, lost, workers) if segs else 0
                done += step
                if progress is not None:
                    progress(min(done, total), total)
        finally:
            workers.shutdown(wait=True)
        with self._lock:
            if back:
                for m in whole:
                    m.state, m.reason, m.rebuilt_rows = DeviceState.ONLINE, "", 0
                    if m.device is not None:
                        m.device.sync()
            self._commit_membership()
        if progress is not None and done != total:
            progress(total, total)
        return lost

    def _step(
        self,
        lay: Declustered,
        cur: Pass | None,
        segs: list[_Segment],
        s1: int,
        whole: list[_Member],
        lost: list[list[Any]],
        workers: ThreadPoolExecutor,
    ) -> int:
        """Move one batch ``segs`` (up to stripe ``s1``) of the priority pass ``cur`` (None:
        the stripe-order pass), save the new boundary, zero what the movers left; returns
        the bytes moved (under the lock)."""
        moves = self._plan(lay, segs)
        self._move(moves, workers, spare=bool(lay.newly_spared))
        found = _lost_runs(moves)
        if found:
            # rows already recorded lost (moved again) keep their record and the devices
            # that lost them; only the others are new
            kept = [list(r) for r in self._lost_records()]
            carried, new = _split_known(found, kept)
            lost += carried + new
            if new or len(kept) != len(self._manifest.extra.get(LOST_KEY, [])):
                self._manifest.extra[LOST_KEY] = [*kept, *new]
        if cur is not None:
            rest = [*lay.passes[:-1], (cur[0], cur[1], s1)]
            nxt = lay.with_state(lay.spared, lay.target, lay.moved, rest)
        else:
            for m in whole:
                m.rebuilt_rows = s1 * self._rpc
            # the copies are synced: the replacements' checkpoints go with the boundary
            # (before the manifest, which holds it first): below it the spare copies are
            # zeroed next, so after a crash the replacement is where those rows are read
            self._save_checkpoints(whole)
            nxt = lay.with_state(lay.spared, lay.target, s1, lay.passes)
        self._replace_layout(nxt)
        self._vacate(moves)
        return sum(seg.n for seg in segs) * self._block

    def _save_checkpoints(self, mems: list[_Member]) -> None:
        """Save the checkpoints (``rebuilt_rows``) of the replacements ``mems`` in their
        superblocks (synced first); one whose write fails is marked FAILED."""
        for m in mems:
            if m.device is None or m.sb is None or not m.writable:
                continue
            try:
                self._checkpoint([m])
            except DeviceError as exc:
                self._mark_failed(m.index, f"checkpoint write failed during copy-back: {exc}")

    def _plan(self, lay: Declustered, segs: list[_Segment]) -> list[_Move]:
        """The moves of ``segs`` from ``lay.spared`` to ``lay.target``; refuses a move onto
        a place the old placement still uses."""
        assert lay.target is not None
        new_l = lay.with_state(lay.target)
        moves = []
        occupied: dict[int, set[int]] = {}
        for seg in segs:
            # from where the stripe is now (a critical group may have moved already)
            mv = _Move(seg, lay.stripe(seg.stripe), new_l.stripe(seg.stripe))
            if not mv.movers:
                continue
            t = seg.stripe // lay.groups_per_slice
            occ = occupied.get(t)
            if occ is None:
                perm = lay.permutation(t)
                red = lay.redirect(t, lay.spared)
                occ = occupied[t] = {red.get(int(d), int(d)) for d in perm[: lay.active]}
            for j in mv.movers:
                dest = mv.new.members[j].device
                if dest in occ:
                    raise InvalidArgumentError(
                        f"pool {self._path}: moving group {seg.stripe} to device {dest} would "
                        f"overwrite a column still in use; copy back the other spared devices "
                        f"first"
                    )
            moves.append(mv)
        return moves

    def _readable(self, dev: int, row_end: int) -> bool:
        mem = self._members[dev]
        return mem.sb is not None and mem.readable(row_end)

    def _move(self, moves: list[_Move], workers: ThreadPoolExecutor, spare: bool = False) -> None:
        """Read (in parallel, one thread per device), reconstruct and write the movers.

        In a rebuild into spare space (``spare``) a destination lost during the move
        (FAILED or MISSING) is skipped: its columns are erased like every other column
        it held, and the next round moves them into spare space too.  A copy-back
        refuses it (the replacement must be replaced again)."""
        b = self._block
        reads: dict[int, list[tuple[_Move, int]]] = {}
        for mv in moves:
            seg = mv.seg
            end = seg.first + seg.n
            mv.erased = {
                j for j, m in enumerate(mv.old.members) if not self._readable(m.device, end)
            }
            mv.whole = bool(mv.erased & set(mv.movers))
            want = range(len(mv.old.members)) if mv.whole else mv.movers
            for j in want:
                if j in mv.erased:
                    mv.bufs[j] = np.empty(seg.n * b, dtype=np.uint8)
                    continue
                reads.setdefault(mv.old.members[j].device, []).append((mv, j))
        failed_moves: set[int] = set()

        def load(dv: int) -> list[int]:
            mem = self._members[dv]
            assert mem.device is not None
            bad = []
            for mv, j in reads[dv]:
                seg = mv.seg
                off, coff = self._addr(mem, mv.old.members[j], seg.row)
                buf = self._read_checked(dv, off, coff, seg.n)
                if buf is None:
                    bad.append(id(mv))
                    continue
                mv.bufs[j] = buf
            return bad

        for res in workers.map(load, list(reads)):
            failed_moves.update(res)
        for mv in moves:
            seg = mv.seg
            if id(mv) not in failed_moves and mv.whole:
                full = [x for x in mv.bufs if x is not None]
                if len(full) == len(mv.old.members) and not codec.reconstruct(
                    mv.old, full, mv.erased
                ):
                    continue
            elif id(mv) not in failed_moves:
                continue
            # a read failed, a block is bad or too much is erased: the careful path
            # reconstructs (and repairs) what it can, row by row; the rest is lost
            out = self._rows(seg, {}, need_all=True)
            for j in mv.movers:
                mv.lost_rows |= set(out.lost.get(j, ()))
            if mv.lost_rows:
                mv.bad = set(out.bad_devices) | {mv.old.members[j].device for j in mv.erased}
            mv.bufs = list(out.bufs)
        writes: dict[int, list[tuple[_Move, int]]] = {}
        for mv in moves:
            for j in mv.movers:
                writes.setdefault(mv.new.members[j].device, []).append((mv, j))

        def store(dv: int) -> None:
            mem = self._members[dv]
            if spare and mem.state in _LOST_STATES:
                return  # lost during the move: its columns are moved with it later
            if mem.device is None or not mem.writable:
                raise DataLossError(
                    f"pool {self._path}: device {dv} is not writable, cannot move columns onto it",
                    failed=[dv],
                )
            for mv, j in writes[dv]:
                buf = mv.bufs[j]
                assert buf is not None
                crcs = crc32c_blocks(buf, b)
                if mv.lost_rows:
                    # lost rows: zeros under checksum entries that cannot match them, so
                    # a read raises DataLossError instead of returning wrong bytes
                    buf, crcs = buf.copy(), np.array(crcs, dtype="<u4")
                    for r in mv.lost_rows:
                        buf[r * b : (r + 1) * b] = 0
                        crcs[r] = _never_matches(b)
                off, coff = self._addr(mem, mv.new.members[j], mv.seg.row)
                mem.device.pwrite(off, buf)
                mem.device.pwrite(coff, crcs)
            mem.device.sync()

        devs = list(writes)
        errors = list(workers.map(_catch, [functools.partial(store, dv) for dv in devs]))
        for dv, exc in zip(devs, errors, strict=True):
            if exc is None:
                continue
            if isinstance(exc, DeviceError):
                self._mark_failed(dv, f"write failed while moving columns: {exc}")
                raise DataLossError(
                    f"pool {self._path}: device {dv} failed while moving columns ({exc}); "
                    f"the move stopped at group {moves[0].seg.stripe}, rebuild() resumes it",
                    failed=[dv],
                ) from exc
            raise exc

    def _vacate(self, moves: list[_Move]) -> None:
        """Zero the blocks and checksum entries the movers left (no longer in use)."""
        b = self._block
        for mv in moves:
            for j in mv.movers:
                m = mv.old.members[j]
                mem = self._members[m.device]
                if not mem.writable or mem.device is None:
                    continue
                off, coff = self._addr(mem, m, mv.seg.row)
                try:
                    mem.device.pwrite(off, bytes(mv.seg.n * b))
                    mem.device.pwrite(coff, bytes(4 * mv.seg.n))
                except DeviceError as exc:
                    self._mark_failed(m.device, f"write failed while zeroing spare: {exc}")


def _in_pass(lay: Declustered, lost: frozenset[int], level: int, s: int) -> bool:
    """Group ``s`` belongs to the priority pass ``(lost, level)`` and is not moved yet."""
    return lay.rank(s, lost) == level and not lay.in_target(s)


@functools.lru_cache(maxsize=8)
def _never_matches(block: int) -> int:
    """A checksum entry no zero block of ``block`` bytes matches."""
    return crc32c(bytes(block)) ^ 0xFFFFFFFF


def _lost_runs(moves: list[_Move]) -> list[list[Any]]:
    """``[first_row, rows, devices]`` for each run of lost rows of ``moves``."""
    out: list[list[Any]] = []
    for mv in moves:
        rows = sorted(mv.lost_rows)
        devs = sorted(mv.bad)
        i = 0
        while i < len(rows):
            k = i
            while k + 1 < len(rows) and rows[k + 1] == rows[k] + 1:
                k += 1
            a, n = mv.seg.first + rows[i], rows[k] - rows[i] + 1
            if out and out[-1][0] + out[-1][1] == a and out[-1][2] == devs:
                out[-1][1] += n  # the same run going on in the next segment
            else:
                out.append([a, n, devs])
            i = k + 1
    return out


def _split_known(
    found: list[list[Any]], known: list[list[Any]]
) -> tuple[list[list[Any]], list[list[Any]]]:
    """``found`` lost runs split into the pieces inside ``known`` runs (with the known
    runs' devices) and the new pieces (with their own)."""
    carried: list[list[Any]] = []
    new: list[list[Any]] = []
    spans = sorted((int(a), int(a) + int(n), list(ds)) for a, n, ds in known)
    for a, n, devs in found:
        pos, end = int(a), int(a) + int(n)
        for ka, kz, kd in spans:
            if kz <= pos or ka >= end:
                continue
            if ka > pos:
                new.append([pos, ka - pos, devs])
            top = min(kz, end)
            carried.append([max(pos, ka), top - max(pos, ka), kd])
            pos = top
            if pos >= end:
                break
        if pos < end:
            new.append([pos, end - pos, devs])
    return carried, new


def _merged(runs: Any) -> list[tuple[int, int]]:
    """``(first, rows)`` runs sorted, overlapping or touching ones merged."""
    out: list[list[int]] = []
    for a, n in sorted(runs):
        if out and a <= out[-1][0] + out[-1][1]:
            out[-1][1] = max(out[-1][1], a + n - out[-1][0])
        else:
            out.append([a, n])
    return [(a, n) for a, n in out]


def _superblock_state(
    manifest: Manifest, layout: Declustered, members: list[_Member]
) -> Declustered | None:
    """The layout with the spare state of the newest superblock, when it is newer than
    the manifest's (checkpoint number ``draid_seq``) or the manifest has none; None when
    the manifest's state stands.  Superblocks of another geometry are ignored."""
    mseq = int(manifest.extra.get(SEQ_KEY, 0))
    has_state = "spared" in manifest.layout
    best: tuple[int, dict[str, Any]] | None = None
    for mem in members:
        if mem.sb is None:
            continue
        params = mem.sb.layout_params
        if "spared" not in params or params.get("name") != layout.level:
            continue
        seq = int(params.get(SEQ_KEY, 0))
        if best is None or seq > best[0]:
            best = (seq, params)
    if best is None or (has_state and best[0] <= mseq):
        return None
    seq, params = best
    geometry = {k: v for k, v in layout.params.items() if k not in _STATE_KEYS}
    theirs = {k: v for k, v in params.items() if k in geometry}
    if any(theirs[k] != geometry[k] for k in theirs if k not in ("unit", "spare_rule")):
        return None
    opts = {k: v for k, v in layout.options.items() if k not in _STATE_KEYS}
    opts.update({k: params[k] for k in _STATE_KEYS if k in params})
    newer = type(layout)(layout.n_devices, layout.chunk_size, **opts)
    manifest.layout = newer.params
    manifest.extra[SEQ_KEY] = seq
    return newer


def _catch(call: Callable[[], None]) -> BaseException | None:
    try:
        call()
    except BaseException as exc:
        return exc
    return None
