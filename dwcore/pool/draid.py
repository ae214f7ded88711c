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
  checkpoint by the row engine before it is ONLINE.
* A plain replacement of a device that was never spared is rebuilt onto the
  replacement by the row engine, as for every other level.

Both moves are *transitions* of the layout (``target``, ``moved``): stripes
are handled in order, in batches of allocated rows — when two or more devices
of a P ≥ 2 layout move at once, first the groups that lost all their
redundancy (boundary ``critical``), then all the others; after each batch the
written devices are synced and the boundary ``moved`` is saved in the
manifest, and only then are vacated blocks zeroed.  A move never writes a
place the old placement uses (checked per slice before a batch is written),
so a crash leaves every stripe readable by the saved boundary and
``rebuild()`` resumes there.  Reads and writes go on between batches: below
the boundary the new placement is used, above it the old one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from dwcore._native import new_bytes_to_fill
from dwcore.alloc import BlockAllocator
from dwcore.checksum import crc32c_blocks
from dwcore.devices import DeviceError
from dwcore.errors import DataLossError, InvalidArgumentError
from dwcore.pool import codec
from dwcore.pool.extent import Extent
from dwcore.pool.manifest import Manifest
from dwcore.pool.pool import DeviceSpec, Pool, PoolDegradedWarning, _Member, _Segment
from dwcore.pool.status import DeviceState
from dwcore.raid import Layout, StripeMap
from dwcore.raid.declustered import Declustered

__all__ = ["BATCH_STRIPES", "DeclusteredPool"]

#: Stripes (groups) one transition step moves at most.
BATCH_STRIPES = 64


class _Move:
    """One segment of one stripe in a transition: where its members are, before and after."""

    __slots__ = ("bufs", "erased", "movers", "new", "old", "seg", "whole")

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
        if "unit" not in manifest.layout:
            # saved before the U-interleaved mapping: the engine's column order (unit 0)
            layout = type(layout)(
                layout.n_devices, layout.chunk_size, **{**layout.options, "unit": 0}
            )
            manifest.layout = layout.params
        unit = layout.unit
        if unit and manifest.block_size % unit:
            raise InvalidArgumentError(
                f"RAID {layout.level}: block_size {manifest.block_size} is not a multiple of "
                f"the mapping unit {unit}; use block_size >= unit or a smaller unit"
            )
        super().__init__(path, manifest, layout, members, alloc)

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
        (nothing is moved: replace them), and :class:`~dwcore.errors.DataLossError`
        for groups beyond the tolerance.
        """
        with self._lock:
            self._check_open()
            pending = self.layout.target is not None
        if pending:
            self._run(progress)
        with self._lock:
            lay = self.layout
            back = [
                m.index
                for m in self._members
                if m.state is DeviceState.REBUILDING and m.index in lay.spared_devices
            ]
            if back:
                state = [-1 if f in back else f for f in lay.spared]
                self._start(state)
        if back:
            self._run(progress)
        with self._lock:
            plain = any(m.state is DeviceState.REBUILDING for m in self._members)
        if plain:
            super().rebuild(progress)
        with self._lock:
            lay = self.layout
            failed = [
                m.index
                for m in self._members
                if m.state in (DeviceState.FAILED, DeviceState.MISSING)
                and m.index not in lay.spared_devices
            ]
            if not failed:
                return
            free = lay.free_slots()
            if not free:
                raise InvalidArgumentError(
                    f"pool {self._path}: devices {failed} are failed and no distributed spare "
                    f"slot is free; replace them (replace_device, then rebuild)"
                )
            state = list(lay.spared) + [-1] * (lay.spares - len(lay.spared))
            for slot, f in zip(free, failed, strict=False):
                state[slot] = f
            self._start(state)
        self._run(progress)
        if len(failed) > len(free):
            warnings.warn(
                f"pool {self._path}: devices {failed[len(free) :]} stay failed: no distributed "
                f"spare slot is left for them; replace them",
                PoolDegradedWarning,
                stacklevel=2,
            )

    def replace_device(
        self, i: int, path_or_device: DeviceSpec | None = None, *, force: bool = False
    ) -> None:
        """Put a blank device in slot ``i`` (see :meth:`Pool.replace_device`); for RAID
        FR a spared slot's copy-back runs at once."""
        super().replace_device(i, path_or_device, force=force)
        if getattr(self.layout, "copyback_on_replace", False) and i in self.layout.spared_devices:
            self.rebuild()

    # ------------------------------------------------------------------
    # transitions
    # ------------------------------------------------------------------

    def _start(self, state: list[int]) -> None:
        """Save a transition to spare state ``state`` (under the lock)."""
        lay = self.layout
        self._replace_layout(lay.with_state(lay.spared, state, 0))

    def _run(self, progress: Callable[[int, int], Any] | None) -> None:
        """Move every allocated stripe from the ``moved`` boundary on, batch by batch."""
        b, rpc = self._block, self._rpc
        with self._lock:
            self._check_open()
            lay = self.layout
            assert lay.target is not None
            total = sum(n for _, n in self._allocated_runs(lay.moved * rpc)) * b
            if lay.critical_pass and lay.critical < self._geo.stripes:
                runs = self._allocated_runs(lay.critical * rpc)
                total += (
                    sum(
                        seg.n
                        for first, rows in runs
                        for seg in self._segments(first, rows)
                        if lay.is_critical(seg.stripe)
                    )
                    * b
                )
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
                    # first pass: the groups that lost all their redundancy (critical)
                    first_pass = lay.critical_pass and lay.critical < self._geo.stripes
                    start = lay.critical if first_pass else lay.moved
                    runs = self._allocated_runs(start * rpc)
                    if not runs:
                        if first_pass:
                            self._replace_layout(
                                lay.with_state(lay.spared, lay.target, 0, self._geo.stripes)
                            )
                            continue
                        self._replace_layout(lay.with_state(lay.target))
                        break
                    s0 = runs[0][0] // rpc
                    s1 = min(s0 + BATCH_STRIPES, self._geo.stripes)
                    segs: list[_Segment] = []
                    for first, rows in runs:
                        if first >= s1 * rpc:
                            break
                        segs += self._segments(first, min(rows, s1 * rpc - first))
                    if first_pass:
                        segs = [seg for seg in segs if lay.is_critical(seg.stripe)]
                    moves = self._plan(lay, segs)
                    self._move(moves, workers)
                    if first_pass:
                        nxt = lay.with_state(lay.spared, lay.target, 0, s1)
                    else:
                        for m in whole:
                            m.rebuilt_rows = s1 * rpc
                        nxt = lay.with_state(lay.spared, lay.target, s1, lay.critical)
                    self._replace_layout(nxt)
                    self._vacate(moves)
                    step = sum(seg.n for seg in segs) * b
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

    def _move(self, moves: list[_Move], workers: ThreadPoolExecutor) -> None:
        """Read (in parallel, one thread per device), reconstruct and write the movers."""
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
            if id(mv) in failed_moves:
                # a read failed or a block is bad: the careful path reconstructs and repairs
                out = self._rows(seg, {}, need_all=True)
                lost = {j for j in mv.movers if out.lost.get(j)}
                if lost:
                    raise self._lost(mv, out.bad_devices)
                mv.bufs = list(out.bufs)
                continue
            if mv.whole:
                full = [x for x in mv.bufs if x is not None]
                if len(full) != len(mv.old.members) or codec.reconstruct(mv.old, full, mv.erased):
                    raise self._lost(mv, {mv.old.members[j].device for j in mv.erased})
        writes: dict[int, list[tuple[_Move, int]]] = {}
        for mv in moves:
            for j in mv.movers:
                writes.setdefault(mv.new.members[j].device, []).append((mv, j))

        def store(dv: int) -> None:
            mem = self._members[dv]
            if mem.device is None or not mem.writable:
                raise DataLossError(
                    f"pool {self._path}: device {dv} is not writable, cannot move columns onto it",
                    failed=[dv],
                )
            for mv, j in writes[dv]:
                buf = mv.bufs[j]
                assert buf is not None
                off, coff = self._addr(mem, mv.new.members[j], mv.seg.row)
                mem.device.pwrite(off, buf)
                mem.device.pwrite(coff, crc32c_blocks(buf, b))
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

    def _lost(self, mv: _Move, devices: set[int]) -> DataLossError:
        failed = sorted(devices)
        return DataLossError(
            f"pool {self._path}: cannot move group {mv.seg.stripe}: devices {failed} are failed "
            f"or corrupt beyond what RAID {self.layout.level} tolerates",
            failed=failed,
        )


def _catch(call: Callable[[], None]) -> BaseException | None:
    try:
        call()
    except BaseException as exc:
        return exc
    return None
