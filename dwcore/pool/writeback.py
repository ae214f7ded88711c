"""RAID 7's write-back cache with its own journal, in front of the row engine.

:class:`Raid7Pool` is the :class:`~dwcore.pool.pool.Pool` of a
:class:`~dwcore.raid.raid7.Raid7` layout (RAID 4 placement: data devices
0..N-2, dedicated XOR parity on device N-1).

Write path
----------
``write(data)`` allocates the extent's rows, then — in ``journaled`` mode —
appends one record (header with the rows, the length and a CRC-32C of the
data, then the data) to ``cache.journal`` in the pool directory and fsyncs
it, puts the data in the cache (dirty) and returns the :class:`Extent`: the
write is acknowledged and durable before any device was touched.  In
``volatile`` mode nothing is journaled; the pool warns with
:class:`VolatileCacheWarning` when it is built, and :meth:`Raid7Pool.cache_status`
reports the mode: an acknowledged write still in the cache is lost by a
power cut (the loss is bounded by the dirty set; such an extent then raises
:class:`~dwcore.errors.DataLossError` — its rows were never written — unless
its rows held an older extent, which is why a caller commits an extent only
after :meth:`~Raid7Pool.sync`, as for every pool).

Destaging
---------
Dirty extents go to the devices oldest first: by the background destager
once they are ``max_dirty_s`` old, by a writer that finds more than
``cache_bytes`` dirty (it destages down to half before returning), and by
:meth:`Raid7Pool.flush` / ``sync`` / ``close``.  Every extent is written as
whole rows — parity computed in the cache from the cached data, one request
per device fanned out over the engine's I/O helpers — so a destage never
reads anything from the devices (no read-modify-write, no pre-reads; the
partial-stripe RMW of §5 never arises because rows are never shared).
Devices that are FAILED are skipped: destaging continues degraded with no
loss up to the level's tolerance.  After a flush has synced the devices and
the allocator, the journal is emptied.

Reads hit the cache first, then the devices (degraded decode as usual).

Recovery
--------
On open, every complete journal record (a torn last record is an
unacknowledged write) is replayed in order: its rows are marked allocated
and written through the row engine; then the devices and the allocator are
synced and the journal emptied.  Replaying an extent that was freed after
its write leaves its rows allocated (a leak that
:meth:`~dwcore.pool.pool.Pool.reconcile` frees).
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from dwcore.checksum import crc32c
from dwcore.devices.base import byte_view
from dwcore.errors import CorruptionError, InvalidArgumentError, UnsupportedFormatError
from dwcore.pool.extent import Extent
from dwcore.pool.pool import Pool
from dwcore.pool.status import ScrubReport

__all__ = ["JOURNAL_NAME", "CacheStats", "Journal", "Raid7Pool", "VolatileCacheWarning"]

JOURNAL_NAME = "cache.journal"
_HEAD = struct.Struct("<8sI")
_MAGIC = b"DWRAID7J"
_VERSION = 1
_REC = struct.Struct("<4sQQQII")  # magic, sequence, first row, rows, length, data crc
_REC_MAGIC = b"J7RC"


class VolatileCacheWarning(UserWarning):
    """A RAID 7 pool runs its write-back cache in ``volatile`` mode: acknowledged
    writes not yet destaged are lost on a power cut."""


@dataclass
class CacheStats:
    """Counters of the write-back cache."""

    writes: int = 0
    journal_appends: int = 0
    read_hits: int = 0
    destaged_extents: int = 0
    destaged_bytes: int = 0
    replayed_extents: int = 0


class Journal:
    """The write-ahead journal of a RAID 7 cache (module documentation); not thread-safe
    (the pool lock serialises it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.write(fd, _HEAD.pack(_MAGIC, _VERSION))
            os.fsync(fd)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            raw = os.pread(fd, _HEAD.size, 0)
            magic, version = _HEAD.unpack(raw) if len(raw) == _HEAD.size else (b"", 0)
            if magic != _MAGIC:
                os.close(fd)
                raise CorruptionError(f"{path}: not a dwcore RAID 7 journal")
            if version > _VERSION:
                os.close(fd)
                raise UnsupportedFormatError(
                    f"{path}: RAID 7 journal version {version} is newer than this dwcore"
                )
        self._fd = fd
        self._end = os.fstat(fd).st_size
        self._seq = 0

    def append(self, first_row: int, rows: int, data: bytes) -> None:
        """Append one record and fsync (the write is then acknowledged)."""
        self._seq += 1
        head = _REC.pack(_REC_MAGIC, self._seq, first_row, rows, len(data), crc32c(data))
        head += crc32c(head).to_bytes(4, "little")
        # gathered: the data is not copied into one record first
        at, left = self._end, [memoryview(head), memoryview(data)]
        while left:
            done = os.pwritev(self._fd, left, at)
            if done <= 0:
                raise OSError(errno.EIO, "the RAID 7 journal write made no progress")
            at += done
            while left and done >= len(left[0]):
                done -= len(left[0])
                left.pop(0)
            if left and done:
                left[0] = left[0][done:]
        os.fdatasync(self._fd)
        self._end = at

    def records(self) -> Iterator[tuple[int, int, bytes]]:
        """``(first_row, rows, data)`` of every complete record, in order; stops at the
        first torn or corrupt one."""
        pos = _HEAD.size
        size = os.fstat(self._fd).st_size
        while pos + _REC.size + 4 <= size:
            head = os.pread(self._fd, _REC.size, pos)
            hcrc = int.from_bytes(os.pread(self._fd, 4, pos + _REC.size), "little")
            if crc32c(head) != hcrc:
                return
            magic, seq, first, rows, length, dcrc = _REC.unpack(head)
            if magic != _REC_MAGIC:
                return
            data = os.pread(self._fd, length, pos + _REC.size + 4)
            if len(data) != length or crc32c(data) != dcrc:
                return
            self._seq = max(self._seq, seq)
            yield first, rows, data
            pos += _REC.size + 4 + length

    def clear(self) -> None:
        """Empty the journal durably (after the devices hold everything it held)."""
        if self._end == _HEAD.size:
            return
        os.ftruncate(self._fd, _HEAD.size)
        os.fsync(self._fd)
        self._end = _HEAD.size

    @property
    def size(self) -> int:
        """Bytes of records in the journal."""
        return self._end - _HEAD.size

    def close(self) -> None:
        """Close the file (its records stay for the next open)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Raid7Pool(Pool):
    """A RAID 7 pool: RAID 4 rows behind a journaled write-back cache (module docs)."""

    _SHARED_IO = False  # its own data path: every request holds the pool lock

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lay: Any = self.layout
        self._volatile = lay.cache_mode == "volatile"
        self._cache_bytes: int = lay.cache_bytes
        self._max_age: float = lay.max_dirty_s
        self._dirty: OrderedDict[int, tuple[Extent, bytes, float]] = OrderedDict()
        self._dirty_bytes = 0
        self.cache_stats = CacheStats()
        self._journal: Journal | None = None
        if self._volatile:
            warnings.warn(
                f"pool {self._path}: RAID 7 cache_mode='volatile': acknowledged writes not yet "
                f"destaged are lost on a power cut",
                VolatileCacheWarning,
                stacklevel=3,
            )
        else:
            self._journal = Journal(os.path.join(self._path, JOURNAL_NAME))
            try:
                self._replay()
            except BaseException:
                self._journal.close()
                raise
        self._stop = threading.Event()
        self._destager = threading.Thread(
            target=self._destage_loop, name="dwcore-raid7-destage", daemon=True
        )
        self._destager.start()

    # ------------------------------------------------------------------
    # data path
    # ------------------------------------------------------------------

    def write(self, data: Any) -> Extent:
        """Acknowledge ``data`` from the cache (journaled first unless volatile)."""
        view = byte_view(data)
        length = view.nbytes
        k, b = self.layout.k, self._block
        rows = -(-length // (k * b))
        with self._lock:
            self._check_open()
            if rows == 0:
                return Extent(self._tag, 0, 0, 0)
            first = self._alloc.alloc(rows)
            buf = bytes(view)
            try:
                if self._journal is not None:
                    self._journal.append(first, rows, buf)
                    self.cache_stats.journal_appends += 1
            except BaseException:
                self._alloc.free(first, rows)
                raise
            ext = Extent(self._tag, first, rows, length)
            self._dirty[first] = (ext, buf, time.monotonic())
            self._dirty_bytes += length
            self.cache_stats.writes += 1
            if self._dirty_bytes > self._cache_bytes:
                self._destage_until(self._cache_bytes // 2)
        return ext

    def read(self, ext: Extent, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of ``ext`` from the cache when it is dirty there, else from the devices."""
        with self._lock:
            hit = self._dirty.get(ext.first_row) if isinstance(ext, Extent) else None
            if hit is not None and hit[0] == ext:
                buf = hit[1]
                if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                    raise InvalidArgumentError(f"offset must be an int >= 0, got {offset!r}")
                if offset > ext.length:
                    raise InvalidArgumentError(
                        f"offset {offset} is past the extent ({ext.length} bytes)"
                    )
                if length is None:
                    length = ext.length - offset
                if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                    raise InvalidArgumentError(f"length must be an int >= 0, got {length!r}")
                if offset + length > ext.length:
                    raise InvalidArgumentError(
                        f"range {offset}+{length} is past the end of the extent "
                        f"({ext.length} bytes)"
                    )
                self.cache_stats.read_hits += 1
                return buf[offset : offset + length]
        return super().read(ext, offset, length)

    def free(self, ext: Extent) -> None:
        """Drop ``ext`` from the cache (if dirty) and release its rows."""
        self._check_extent(ext)
        with self._lock:
            hit = self._dirty.get(ext.first_row)
            if hit is not None and hit[0] == ext:
                del self._dirty[ext.first_row]
                self._dirty_bytes -= ext.length
            super().free(ext)

    def flush(self) -> None:
        """Destage every dirty extent, sync the devices and the allocator, empty the
        journal."""
        self.sync()

    def sync(self) -> None:
        """:meth:`flush`: everything written so far is on the devices and durable."""
        with self._lock:
            self._check_open()
            self._destage_until(0)
            super().sync()
            if self._journal is not None:
                self._journal.clear()

    def rebuild(self, progress: Callable[[int, int], Any] | None = None) -> None:
        """Destage, then rebuild as every pool does."""
        self.flush()
        super().rebuild(progress)

    def scrub(
        self, repair: bool = True, progress: Callable[[int, int], Any] | None = None
    ) -> ScrubReport:
        """Destage, then scrub as every pool does."""
        self.flush()
        return super().scrub(repair, progress)

    def close(self, sync: bool = True) -> None:
        """Stop the destager; destage and sync (``sync=False``: drop the cache as a
        power cut would — journaled writes come back at the next open)."""
        if self._closed:
            return
        self._stop.set()
        if self._destager is not threading.current_thread():
            self._destager.join()
        with self._lock:
            if not sync:
                self._dirty.clear()
                self._dirty_bytes = 0
            try:
                super().close(sync)  # sync=True: self.sync() destages and empties the journal
            finally:
                if self._journal is not None:
                    self._journal.close()

    def cache_status(self) -> dict[str, Any]:
        """Mode (``volatile`` says acknowledged writes can be lost), dirty set, counters."""
        with self._lock:
            return {
                "cache_mode": "volatile" if self._volatile else "journaled",
                "volatile": self._volatile,
                "cache_bytes": self._cache_bytes,
                "max_dirty_s": self._max_age,
                "dirty_extents": len(self._dirty),
                "dirty_bytes": self._dirty_bytes,
                "journal_bytes": 0 if self._journal is None else self._journal.size,
                **asdict(self.cache_stats),
            }

    # ------------------------------------------------------------------
    # destaging and recovery
    # ------------------------------------------------------------------

    def _store(self, first: int, rows: int, data: bytes) -> None:
        view = memoryview(data)
        try:
            if self._flat:
                self._write_flat(first, rows, view)
            else:
                self._write_rows(first, rows, view)
        finally:
            self._reap_dead()

    def _destage_one(self) -> None:
        first, (ext, buf, _t) = next(iter(self._dirty.items()))
        self._store(first, ext.rows, buf)
        del self._dirty[first]
        self._dirty_bytes -= ext.length
        self.cache_stats.destaged_extents += 1
        self.cache_stats.destaged_bytes += ext.length

    def _destage_until(self, limit: int) -> None:
        """Destage oldest first until at most ``limit`` dirty bytes remain (lock held)."""
        while self._dirty and (self._dirty_bytes > limit or limit == 0):
            self._destage_one()

    def _destage_loop(self) -> None:
        interval = min(0.5, self._max_age / 2)
        while not self._stop.wait(interval):
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                try:
                    while self._dirty:
                        _first, (_e, _b, born) = next(iter(self._dirty.items()))
                        if now - born < self._max_age:
                            break
                        self._destage_one()
                except Exception as exc:  # a failed destage stays dirty; flush raises it
                    warnings.warn(
                        f"pool {self._path}: RAID 7 destage failed: {exc}",
                        RuntimeWarning,
                        stacklevel=1,
                    )

    def _replay(self) -> None:
        """Write every journaled record back through the row engine, sync, empty."""
        assert self._journal is not None
        count = 0
        for first, rows, data in self._journal.records():
            self._alloc.mark_allocated(first, rows)
            self._store(first, rows, data)
            count += 1
        if count:
            Pool.sync(self)
            self._journal.clear()
            self.cache_stats.replayed_extents = count
