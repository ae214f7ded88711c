"""The data path of RAID-Z (Z1, Z2, Z3) inside a :class:`Pool`: one stripe per extent.

Space is the *parent* address space of ZFS: parent sector x (a block of the
pool's ``block_size``, the sector ``2^ashift``) is sector ``x div N`` of
device ``x mod N``.  The pool's allocator hands out parent sectors; an
extent of ``s`` data sectors takes ``asize = roundup(tot, p+1)`` of them at
parent sector b, laid out by :func:`dwcore.raid.raidz.raidz_map` (the port
of ``vdev_raidz_map_alloc``): parity columns P, Q, R then the data columns,
each a run of sectors on one device, then the skip sectors, written as
zeros.  The :class:`Extent` names b, asize and the byte length.

Writes are copy-on-write full stripes (extents are immutable and never share
sectors), so there is no write hole and no log.  Every sector of every
column has its CRC-32C in the device's checksum table, so a silently
corrupted column is located directly (no combinatorial search is needed:
that is ZFS's way when only a block checksum exists) and rebuilt from the
others; more bad or missing columns in a sector row than the parity count
raise :class:`~dwcore.errors.DataLossError`, never wrong bytes.

The block map (``blockmap.bin`` in the pool directory) records, for the
first parent sector of every live extent, its size in sectors, so rebuild
("resilver") and scrub can walk the allocated extents; it is flushed with
every ``sync``.  Format: magic ``b"DWZBMAP1"``, version (u32 1), padding
(u32), entry count (u64), then one little-endian u32 per parent sector
(0 = no extent starts here).  An entry is only believed inside an
allocated run and when its size fits the run.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from dwcore import ec
from dwcore._native import new_bytes_to_fill
from dwcore.checksum import verify_blocks
from dwcore.devices.base import byte_view
from dwcore.errors import (
    CorruptionError,
    DataLossError,
    InvalidArgumentError,
    UnsupportedFormatError,
)
from dwcore.pool.extent import Extent
from dwcore.pool.placement import bitmap_diff
from dwcore.pool.status import DeviceState, Mismatch, ScrubReport
from dwcore.raid.raidz import RaidZ, RaidzMap, raidz_asize, raidz_map

__all__ = ["BLOCKMAP_NAME", "RaidzEngine", "raidz_alloc_blocks"]

BLOCKMAP_NAME = "blockmap.bin"
_HEADER = struct.Struct("<8sIIQ")
_MAGIC = b"DWZBMAP1"
#: Parent sectors between two rebuild checkpoints (64 MiB of 4 KiB sectors).
CHECKPOINT_SECTORS = 1 << 14


def raidz_alloc_blocks(layout: Any, usable: int, block: int) -> int:
    """Allocator blocks of a RAID-Z pool: every parent sector."""
    return int(layout.n_devices) * (usable // block)


class _Decoded:
    """One block's columns after decoding."""

    def __init__(self, rm: RaidzMap, block: int, bufs: np.ndarray | None = None) -> None:
        #: (columns × rows·B): each column's sectors, zero past its end; ``bufs`` (any
        #: content) is filled in place of a new zeroed array
        if bufs is None:
            bufs = np.zeros((len(rm.columns), rm.rows * block), dtype=np.uint8)
        self.bufs = bufs
        #: column -> sector rows that could not be recovered
        self.lost: dict[int, set[int]] = {}
        self.bad: dict[int, set[int]] = {}
        self.erased: set[int] = set()
        self.events: list[tuple[int, str, bool, str]] = []


class RaidzEngine:
    """Block allocation, the block map, reads with repair, resilver and scrub."""

    def __init__(self, pool: Any) -> None:
        lay = pool.layout
        assert isinstance(lay, RaidZ)
        self.pool = pool
        self.layout = lay
        self.n = lay.n_devices
        self.p = lay.nparity
        self.b = pool._block
        self.ashift = self.b.bit_length() - 1
        self.total = self.n * (pool._geo.usable // self.b)
        path = os.path.join(pool._path, BLOCKMAP_NAME)
        size = _HEADER.size + 4 * self.total
        if not os.path.exists(path):
            st = pool._alloc.stats_dict(False)
            if int(st["nblocks"]) != int(st["free_blocks"]):
                raise CorruptionError(
                    f"{path}: the block map of this RAID-Z pool is missing while the allocator "
                    f"holds extents; restore it from a backup (rebuild and scrub need it)"
                )
            with open(path, "wb") as f:
                f.write(_HEADER.pack(_MAGIC, 1, 0, self.total))
                f.truncate(size)
                f.flush()
                os.fsync(f.fileno())
        with open(path, "rb") as f:
            magic, version, _pad, count = _HEADER.unpack(f.read(_HEADER.size))
        if magic == _MAGIC and version > 1:
            raise UnsupportedFormatError(
                f"{path}: block map version {version} is newer than this dwcore reads (1)"
            )
        if magic != _MAGIC or version != 1 or count != self.total:
            raise CorruptionError(
                f"{path}: not the block map of this pool (magic {magic!r}, version {version}, "
                f"{count} entries for {self.total} parent sectors)"
            )
        if os.path.getsize(path) < size:
            raise CorruptionError(f"{path}: truncated block map")
        self.map = np.memmap(path, dtype="<u4", mode="r+", offset=_HEADER.size, shape=(self.total,))

    # ------------------------------------------------------------------
    # sectors
    # ------------------------------------------------------------------

    def _member(self, dev: int) -> Any:
        return self.pool._members[dev]

    def _read(self, dev: int, sector: int, n: int) -> tuple[np.ndarray, set[int]] | None:
        buf = np.empty(n * self.b, dtype=np.uint8)
        bad = self._read_into(dev, sector, buf)
        return None if bad is None else (buf, bad)

    def _read_into(self, dev: int, sector: int, buf: np.ndarray) -> set[int] | None:
        """Read ``len(buf) // B`` sectors into ``buf``; the sectors failing their checksum,
        or None when the device cannot be read there."""
        mem = self._member(dev)
        if mem.device is None or mem.sb is None or not mem.readable(sector + len(buf) // self.b):
            return None
        crcs = self.pool._read_blocks(dev, sector, buf)
        if crcs is None:
            return None
        return {int(i) for i in verify_blocks(buf, self.b, crcs)}

    def _write(self, dev: int, sector: int, buf: np.ndarray) -> bool:
        return bool(self.pool._write_blocks(dev, sector, buf))

    def _encode(self, rm: RaidzMap, bufs: np.ndarray) -> None:
        p = self.p
        data = list(bufs[p:])
        if p == 1:
            ec.xor_parity_into(data, bufs[0])
        elif p == 2:
            ec.pq_parity_into(data, bufs[0], bufs[1], order="zfs")
        else:
            ec.pqr_parity_into(data, bufs[0], bufs[1], bufs[2], order="zfs")

    def _recover(self, views: list[np.ndarray], erased: set[int]) -> None:
        """Rebuild the erased columns of one row run (columns: parity first)."""
        p = self.p
        shards = views[p:] + views[:p]
        nd = len(views) - p
        lost = sorted(c - p if c >= p else nd + c for c in erased)
        if p == 1:
            ec.xor_recover_into(shards, lost)
        elif p == 2:
            ec.pq_recover_into(shards, lost, order="zfs")
        else:
            ec.pqr_recover_into(shards, lost, order="zfs")

    # ------------------------------------------------------------------
    # blocks
    # ------------------------------------------------------------------

    def _map_of(self, ext: Extent) -> RaidzMap:
        s = -(-ext.length // self.b)
        return raidz_map(ext.first_row, s, self.n, self.p, self.ashift)

    def check_extent(self, ext: Extent) -> None:
        if ext.rows == 0 and ext.length == 0:
            return
        s = -(-ext.length // self.b)
        if s < 1 or ext.rows != raidz_asize(s, self.n, self.p):
            raise InvalidArgumentError(f"extent {ext!r} is not a RAID-Z block of this pool")
        if ext.first_row + ext.rows > self.total:
            raise InvalidArgumentError(f"extent {ext!r} does not fit this pool")

    def write(self, data: Any) -> Extent:
        view = byte_view(data)
        length = view.nbytes
        pool = self.pool
        if length == 0:
            return Extent(pool._tag, 0, 0, 0)
        s = -(-length // self.b)
        asize = raidz_asize(s, self.n, self.p)
        first = int(pool._alloc.alloc(asize))
        try:
            self._store(raidz_map(first, s, self.n, self.p, self.ashift), view)
        except BaseException:
            pool._alloc.free(first, asize)
            raise
        self.map[first : first + asize] = 0
        self.map[first] = s
        return Extent(pool._tag, first, asize, length)

    def _store(self, rm: RaidzMap, view: memoryview) -> None:
        b, p = self.b, self.p
        src = np.frombuffer(view, dtype=np.uint8)
        bufs = np.zeros((len(rm.columns), rm.rows * b), dtype=np.uint8)
        pos = 0
        for j, col in enumerate(rm.data_columns):
            part = src[pos : pos + col.size * b]
            bufs[p + j, : len(part)] = part
            pos += col.size * b
        self._encode(rm, bufs)
        failed = []
        for c, col in enumerate(rm.columns):
            if not self._write(col.device, col.sector, bufs[c, : col.size * b]):
                failed.append(col.device)
        zero = np.zeros(b, dtype=np.uint8)
        for dev, sector in rm.skips:
            self._write(dev, sector, zero)
        if len(failed) > p:
            raise DataLossError(
                f"pool {self.pool._path}: cannot write: devices {sorted(failed)} are "
                f"unavailable, more than RAID {self.layout.level} tolerates",
                failed=sorted(failed),
            )

    def _decode(
        self,
        rm: RaidzMap,
        *,
        skip: frozenset[int] = frozenset(),
        repair: bool = True,
        scratch: np.ndarray | None = None,
    ) -> _Decoded:
        """Read and verify every column of ``rm``, rebuild what the others allow and
        (``repair``) rewrite bad sectors.  ``scratch``: a (columns × rows·B) buffer
        to decode in, for a caller that is done with the result before reusing it."""
        b = self.b
        out = _Decoded(rm, b, scratch)
        rows = rm.rows
        erased_at: list[set[int]] = [set() for _ in range(rows)]
        # every readable column in one batched read; each verified after
        reads: list[tuple[int, int, np.ndarray]] = []
        at: dict[int, int] = {}  # column -> its place in reads
        for c, col in enumerate(rm.columns):
            if scratch is not None:
                out.bufs[c, col.size * b :] = 0  # a short column reads as zeros past its end
            mem = self._member(col.device)
            if col.device in skip or mem.device is None or mem.sb is None:
                continue
            if not mem.readable(col.sector + col.size):
                continue
            at[c] = len(reads)
            reads.append((col.device, col.sector, out.bufs[c, : col.size * b]))
        tables = self.pool._read_blocks_many(reads)
        for c, col in enumerate(rm.columns):
            got: set[int] | None = None
            if c in at:
                table = tables[at[c]]
                if table is not None:
                    got = {int(i) for i in verify_blocks(reads[at[c]][2], b, table)}
            if got is None:
                out.erased.add(c)
                for i in range(col.size):
                    erased_at[i].add(c)
                continue
            bad = got
            if bad:
                out.bad[c] = bad
                for i in bad:
                    erased_at[i].add(c)
        saved = {
            c: {i: bytes(out.bufs[c, i * b : (i + 1) * b]) for i in r} for c, r in out.bad.items()
        }
        i = 0
        while i < rows:
            e = erased_at[i]
            stop = i + 1
            while stop < rows and erased_at[stop] == e:
                stop += 1
            if e:
                if len(e) > self.p:
                    for c in e:
                        out.lost.setdefault(c, set()).update(range(i, stop))
                else:
                    self._recover(
                        [out.bufs[c, i * b : stop * b] for c in range(len(rm.columns))], e
                    )
            i = stop
        for c, bad in out.bad.items():
            col = rm.columns[c]
            for i in sorted(bad):
                if i in out.lost.get(c, ()):
                    out.events.append((c, "checksum", False, "cannot reconstruct: too many bad"))
                    continue
                if not repair:
                    out.events.append((c, "checksum", False, "not repaired (repair=False)"))
                    continue
                block = out.bufs[c, i * b : (i + 1) * b]
                if self._write(col.device, col.sector + i, block):
                    how = (
                        "rewrote sector from redundancy"
                        if bytes(block) != saved[c][i]
                        else "rewrote checksum entry"
                    )
                    out.events.append((c, "checksum", True, how))
                else:
                    out.events.append((c, "checksum", False, "rewrite failed"))
        return out

    def _blame(self, rm: RaidzMap, dec: _Decoded) -> list[int]:
        hit = {rm.columns[c].device for c in dec.erased | set(dec.bad)}
        return sorted(hit)

    def _read_direct(
        self, rm: RaidzMap, pieces: list[tuple[int, int, int, int]], offset: int, end: int
    ) -> bytes | None:
        """The data columns read straight into the result (a column's sectors that lie
        wholly in the range; a partial first or last sector through a scratch buffer);
        None when any sector is unreadable or fails its checksum (then decode)."""
        b = self.b
        out, outview = new_bytes_to_fill(end - offset)
        native = self._read_native(rm, pieces, offset, end, outview)
        if native is not None:
            if native:
                return None
            del outview
            return out
        dst = np.frombuffer(outview, dtype=np.uint8)
        for c, s0, ns, at in pieces:
            col = rm.columns[c]
            if at >= offset and at + ns * b <= end:
                whole = dst[at - offset : at - offset + ns * b]
                if self._read_into(col.device, col.sector + s0, whole) != set():
                    return None
                continue
            r = self._read(col.device, col.sector + s0, ns)
            if r is None or r[1]:
                return None
            lo, hi = max(at, offset), min(at + ns * b, end)
            dst[lo - offset : hi - offset] = r[0][lo - at : hi - at]
        del dst, outview
        return out

    def _read_native(
        self,
        rm: RaidzMap,
        pieces: list[tuple[int, int, int, int]],
        offset: int,
        end: int,
        outview: memoryview,
    ) -> int | None:
        """The data columns of ``pieces`` read and verified in one native call (each
        column a segment of one member); its result (0, or an errno: decode), or None
        (nothing read) where a column's device is not fully online or not a plain file."""
        rows = []
        for c, s0, ns, _ in pieces:
            col = rm.columns[c]
            mem = self._member(col.device)
            if mem.state is not DeviceState.ONLINE:
                return None
            rows.append((ns, col.device, col.sector + s0))
        if not rows:
            return None
        skip = pieces[0][3]  # data position of the first sector read
        segments = np.array(rows, dtype=np.int64)
        return self.pool._read_segments(outview, offset - skip, end - skip, segments, 1)

    def read(self, ext: Extent, offset: int, length: int) -> bytes:
        b, p = self.b, self.p
        rm = self._map_of(ext)
        end = offset + length
        pos = 0
        pieces: list[tuple[int, int, int, int]] = []  # (column, first sector, sectors, data pos)
        for j, col in enumerate(rm.data_columns):
            lo, hi = pos, pos + col.size * b
            if lo < end and hi > offset:
                s0 = (max(lo, offset) - lo) // b
                s1 = -(-(min(hi, end) - lo) // b)
                pieces.append((p + j, s0, s1 - s0, lo + s0 * b))
            pos = hi
        fast = self._read_direct(rm, pieces, offset, end)
        if fast is not None:
            return fast
        out, outview = new_bytes_to_fill(length)
        outv = np.frombuffer(outview, dtype=np.uint8)
        ncols = len(rm.columns)
        scratch = self.pool._scratch("raidz", ncols * rm.rows * b, "u1").reshape(ncols, -1)
        dec = self._decode(rm, scratch=scratch)
        lost_at: list[tuple[int, int]] = []
        for c, s0, ns, at in pieces:
            rows = dec.lost.get(c, set())
            for i in sorted(rows):
                if s0 <= i < s0 + ns:
                    lo = max(offset, at + (i - s0) * b)
                    hi = min(end, at + (i - s0 + 1) * b)
                    lost_at.append((lo, hi))
            buf = dec.bufs[c, s0 * b : (s0 + ns) * b]
            lo, hi = max(at, offset), min(at + len(buf), end)
            outv[lo - offset : hi - offset] = buf[lo - at : hi - at]
        if lost_at:
            lo, hi = min(a for a, _ in lost_at), max(z for _, z in lost_at)
            failed = self._blame(rm, dec)
            err = DataLossError(
                f"pool {self.pool._path}: extent {ext!r}: bytes [{lo}, {hi}) are lost: devices "
                f"{failed} are failed, missing or corrupt beyond what RAID {self.layout.level} "
                f"tolerates",
                failed=failed,
            )
            err.lost_range = (lo, hi)  # type: ignore[attr-defined]
            raise err
        del outv, outview
        return out

    def physical(self, ext: Extent) -> list[tuple[int, int, int]]:
        """Columns and skip sectors of ``ext``'s block as ``(device, offset, length)``."""
        if not ext.rows:
            return []
        rm = self._map_of(ext)
        b = self.b
        out = [(c.device, c.sector * b, c.size * b) for c in rm.columns]
        return out + [(dev, sector * b, b) for dev, sector in rm.skips]

    def free(self, ext: Extent) -> None:
        if ext.rows:
            self.pool._alloc.free(ext.first_row, ext.rows)
            self.map[ext.first_row : ext.first_row + ext.rows] = 0

    def reconcile(self, used: list[tuple[int, int]]) -> int:
        freed = self.pool._alloc.reconcile(used)
        for start, n in freed:
            self.map[start : start + n] = 0
        return sum(n for _, n in freed)

    def check(self, used: list[tuple[int, int]]) -> tuple[int, int]:
        alloc = self.pool._alloc
        return bitmap_diff(alloc.bitmap(), alloc.nblocks, used)

    def after_sync(self) -> None:
        self.map.flush()

    # ------------------------------------------------------------------
    # the block map walk
    # ------------------------------------------------------------------

    def _runs(self) -> list[tuple[int, int]]:
        raw = np.frombuffer(self.pool._alloc.bitmap(), dtype=np.uint8)
        bits = np.unpackbits(raw, bitorder="little")[: self.total].astype(np.int8)
        edges = np.diff(np.concatenate(([0], bits, [0])))
        starts = np.nonzero(edges == 1)[0]
        stops = np.nonzero(edges == -1)[0]
        return [(int(a), int(z)) for a, z in zip(starts, stops, strict=True)]

    def blocks(self) -> list[tuple[int, int]]:
        """``(parent sector, data sectors)`` of every extent the block map and the
        allocator agree on, in parent-sector order."""
        out = []
        with self.pool._lock:
            runs = self._runs()
            entries = np.asarray(self.map)
            for a, z in runs:
                x = a
                while x < z:
                    s = int(entries[x])
                    asize = raidz_asize(s, self.n, self.p) if s else 0
                    if not s or x + asize > z:
                        x += 1
                        continue
                    out.append((x, s))
                    x += asize
        return out

    def rebuild(self, progress: Callable[[int, int], Any] | None) -> None:
        pool = self.pool
        b = self.b
        with pool._lock:
            pool._check_open()
            targets = [m for m in pool._members if m.state is DeviceState.REBUILDING]
            if not targets:
                return
        tdev = frozenset(m.index for m in targets)
        start = min(m.rebuilt_rows for m in targets) * self.n
        work = [(x, s) for x, s in self.blocks() if x >= start]
        sizes = [raidz_asize(s, self.n, self.p) for _x, s in work]
        total = sum(sizes) * b
        done = since = 0
        if progress is not None:
            progress(0, total)
        for (x, s), asize in zip(work, sizes, strict=True):
            with pool._lock:
                pool._check_open()
                if any(m.state is not DeviceState.REBUILDING for m in targets):
                    raise InvalidArgumentError("device states changed during rebuild")
                if self.map[x] == s and pool._alloc.is_allocated(x, asize):
                    self._rebuild_block(raidz_map(x, s, self.n, self.p, self.ashift), tdev)
                for m in targets:
                    m.rebuilt_rows = max(m.rebuilt_rows, (x + asize) // self.n)
                done += asize * b
                since += asize
                if since >= CHECKPOINT_SECTORS:
                    since = 0
                    pool._checkpoint(targets)
            if progress is not None:
                progress(done, total)
        if progress is not None and done != total:
            progress(total, total)
        with pool._lock:
            for m in targets:
                m.state, m.reason, m.rebuilt_rows = DeviceState.ONLINE, "", 0
                if m.device is not None:
                    m.device.sync()
            pool._commit_membership()

    def _rebuild_block(self, rm: RaidzMap, tdev: frozenset[int]) -> None:
        b = self.b
        dec = self._decode(rm, skip=tdev)
        for c, col in enumerate(rm.columns):
            if col.device not in tdev:
                continue
            if dec.lost.get(c):
                failed = sorted(set(self._blame(rm, dec)) - tdev)
                raise DataLossError(
                    f"pool {self.pool._path}: rebuild of device {col.device} cannot "
                    f"reconstruct the block at parent sector {rm.columns[0].sector}: devices "
                    f"{failed} are failed or corrupt beyond what RAID {self.layout.level} "
                    f"tolerates",
                    failed=failed,
                )
            if not self._write(col.device, col.sector, dec.bufs[c, : col.size * b]):
                raise DataLossError(
                    f"pool {self.pool._path}: write to device {col.device} failed during rebuild",
                    failed=[col.device],
                )
        zero = np.zeros(b, dtype=np.uint8)
        for dev, sector in rm.skips:
            if dev in tdev:
                self._write(dev, sector, zero)

    def scrub(self, repair: bool, progress: Callable[[int, int], Any] | None) -> ScrubReport:
        pool = self.pool
        b, p = self.b, self.p
        report = ScrubReport()
        found: dict[tuple[int, int, str], list[tuple[bool, str]]] = {}
        work = self.blocks()
        total = sum(s for _x, s in work) * b
        done = 0
        for x, s in work:
            with pool._lock:
                pool._check_open()
                if self.map[x] != s:
                    continue
                rm = raidz_map(x, s, self.n, self.p, self.ashift)
                dec = self._decode(rm, repair=repair)
                events = list(dec.events)
                dirty = set(dec.bad) | dec.erased | set(dec.lost)
                if not dec.lost:
                    fresh = dec.bufs.copy()
                    self._encode(rm, fresh)
                    for c in range(p):
                        if c in dirty:
                            continue
                        col = rm.columns[c]
                        a = dec.bufs[c, : col.size * b].reshape(col.size, b)
                        f = fresh[c, : col.size * b].reshape(col.size, b)
                        bad = np.nonzero((a != f).any(axis=1))[0]
                        if not len(bad):
                            continue
                        if not repair:
                            events.append((c, "parity", False, "not repaired (repair=False)"))
                            continue
                        for i in bad:
                            self._write(col.device, col.sector + int(i), f[int(i)].copy())
                        events.append((c, "parity", True, "rewrote parity"))
                for c in sorted(dec.erased):
                    events.append((c, "io", False, "device unreadable"))
            for c, kind, ok, how in events:
                found.setdefault((x, rm.columns[c].device, kind), []).append((ok, how))
            report.rows_checked += rm.rows
            report.bytes_checked += rm.tot * b
            done += s * b
            if progress is not None:
                progress(done, total)
        report.stripes_checked = len(work)
        for (s, dev, kind), outcomes in sorted(found.items()):
            ok = all(o for o, _ in outcomes)
            hows = sorted({h for _, h in outcomes})
            report.mismatches.append(Mismatch(s, dev, kind, ok, "; ".join(hows)))
        return report

    def capacity(self) -> tuple[int, int]:
        st = self.pool._alloc.stats_dict(False)
        used = int(st["nblocks"]) - int(st["free_blocks"])
        frac = (self.n - self.p) / self.n
        return int(self.total * self.b * frac), int(used * self.b * frac)

    def rebuild_progress(self) -> float | None:
        targets = [m for m in self.pool._members if m.state is DeviceState.REBUILDING]
        if not targets:
            return None
        st = self.pool._alloc.stats_dict(False)
        used = int(st["nblocks"]) - int(st["free_blocks"])
        pos = min(min(m.rebuilt_rows for m in targets) * self.n, self.total)
        done = self.pool._alloc.count_allocated(0, pos) if pos else 0
        return min(1.0, done / used) if used else 1.0

    def close(self) -> None:
        self.map.flush()
        del self.map
