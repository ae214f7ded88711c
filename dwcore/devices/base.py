"""The :class:`Device` interface: a fixed-size array of bytes with positional I/O.

Every device (file, block device, RAM, the fault-injecting wrapper) offers
the same small surface: :attr:`Device.size` in bytes, :meth:`Device.pread`,
:meth:`Device.preadinto` (zero-copy into a caller's buffer),
:meth:`Device.pwrite`, the vectored :meth:`Device.pwritev` and
:meth:`Device.preadvinto`, :meth:`Device.sync` and :meth:`Device.close`.  Requests
are checked against the device's bounds (:class:`DeviceBoundsError`), a
closed device raises :class:`DeviceClosedError`, and I/O failures raise
:class:`DeviceIOError` naming the device and the request.

Positional I/O is thread-safe: any number of threads may read and write
concurrently (requests on overlapping ranges are not ordered against each
other, as on a disk).  :meth:`Device.close` waits for requests in flight.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

from dwcore.devices.errors import DeviceBoundsError, DeviceClosedError, DeviceIOError
from dwcore.errors import InvalidArgumentError

__all__ = ["Device", "byte_view", "writable_view"]

_D = TypeVar("_D", bound="Device")


def byte_view(data: Any, name: str = "data") -> memoryview:
    """A flat, C-contiguous ``memoryview`` of unsigned bytes over ``data`` (no copy)."""
    try:
        view = memoryview(data)
    except TypeError:
        raise InvalidArgumentError(
            f"{name} must be a bytes-like object (bytes, bytearray, memoryview, mmap, numpy "
            f"array), got {type(data).__name__}"
        ) from None
    if view.format == "B" and view.ndim == 1 and view.c_contiguous:
        return view
    if not view.c_contiguous:
        raise InvalidArgumentError(f"{name} must be a C-contiguous buffer")
    return view.cast("B")


def writable_view(buf: Any, name: str = "buf") -> memoryview:
    """Like :func:`byte_view`, and the buffer must be writable."""
    view = byte_view(buf, name)
    if view.readonly:
        raise InvalidArgumentError(
            f"{name} must be a writable buffer (bytearray, mmap, numpy array), got a read-only "
            f"{type(buf).__name__}"
        )
    return view


def _check_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an int, got {type(value).__name__}")
    return value


class Device(ABC):
    """A fixed-size byte-addressed device.

    Subclasses implement the ``_read_into``, ``_write``, ``_sync`` and
    ``_close`` primitives; this class does argument and bounds checks,
    in-flight tracking for a safe :meth:`close`, and the context manager.
    """

    def __init__(self, path: str, size: int) -> None:
        self._path = path
        self._size = size
        self._closed = False
        self._inflight = 0
        self._unsynced = False  # a write completed since the last sync began
        self._in_memory = False
        self._mutex = threading.Lock()  # entered directly on the hot path (C-level)
        self._cond = threading.Condition(self._mutex)

    # -- properties ---------------------------------------------------------

    @property
    def size(self) -> int:
        """Size of the device in bytes."""
        return self._size

    @property
    def path(self) -> str:
        """Where the device lives (a file path, ``/dev/...``, ``ram:NAME``, ...)."""
        return self._path

    @property
    def in_memory(self) -> bool:
        """True when the device's bytes live in RAM (a RAM device, a file on tmpfs): no
        request waits for a disk, so spreading requests over threads gains nothing."""
        return self._in_memory

    @property
    def unsynced(self) -> bool:
        """True when a write through this object completed (or failed part-way) after
        the last :meth:`sync` began: a sync now has something to make durable."""
        return self._unsynced

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def describe(self) -> str:
        """A one-line human description: kind, path and size."""
        return f"{type(self).__name__}({self._path}, {self._size} bytes)"

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{self.describe()}{state}>"

    # -- public I/O ---------------------------------------------------------

    def pread(self, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset``; the whole range must lie on the device."""
        self._check_range(offset, _check_int(length, "length"))
        self._enter()
        if length == 0:
            self._leave()
            return b""
        try:
            return self._read(offset, length)
        finally:
            self._leave()

    def preadinto(self, offset: int, buf: Any) -> int:
        """Read ``len(buf)`` bytes at ``offset`` into the writable buffer ``buf``.

        No intermediate copy where the device allows it; returns the byte count.
        """
        view = writable_view(buf)
        self._check_range(offset, view.nbytes)
        self._enter()
        try:
            if view.nbytes:
                self._read_into(offset, view)
        finally:
            self._leave()
        return view.nbytes

    def pwrite(self, offset: int, data: Any) -> int:
        """Write all of ``data`` at ``offset``; returns the byte count.

        Durable only after :meth:`sync` returns.
        """
        view = byte_view(data)
        self._check_range(offset, view.nbytes)
        self._enter()
        try:
            if view.nbytes:
                self._write(offset, view)
        finally:
            self._unsynced = True  # set after the write: a sync begun earlier missed it
            self._leave()
        return view.nbytes

    def pwritev(self, offset: int, buffers: Sequence[Any]) -> int:
        """Write ``buffers`` back to back from ``offset`` (one request, gathered).

        The same as writing their concatenation, without building it: file
        devices hand the whole list to one ``pwritev`` system call.
        """
        views = [byte_view(b, "buffers[i]") for b in buffers]
        total = sum(v.nbytes for v in views)
        self._check_range(offset, total)
        self._enter()
        try:
            if total:
                self._writev(offset, views)
        finally:
            self._unsynced = True
            self._leave()
        return total

    def pwritev_batch(self, requests: Sequence[tuple[int, Sequence[Any]]]) -> int:
        """Several gathered writes, ``(offset, buffers)`` each, as one request of this
        device (one admission, one retry unit on a resilient device); returns the byte
        count.  The same as :meth:`pwritev` for each, in order."""
        batch: list[tuple[int, list[memoryview]]] = []
        total = 0
        for offset, buffers in requests:
            views = [byte_view(b, "buffers[i]") for b in buffers]
            n = sum(v.nbytes for v in views)
            self._check_range(offset, n)
            if n:
                batch.append((offset, views))
                total += n
        self._enter()
        try:
            if batch:
                self._writev_batch(batch)
        finally:
            self._unsynced = True
            self._leave()
        return total

    def preadvinto(self, offset: int, buffers: Sequence[Any]) -> int:
        """Fill the writable ``buffers`` back to back from ``offset`` (scattered read)."""
        views = [writable_view(b, "buffers[i]") for b in buffers]
        total = sum(v.nbytes for v in views)
        self._check_range(offset, total)
        self._enter()
        try:
            if total:
                self._readv_into(offset, views)
        finally:
            self._leave()
        return total

    def enter_raw(self, write: bool) -> int | None:
        """A file descriptor on which the caller may ``pwritev``/``preadv`` this device's
        bytes directly (a plain buffered file, for batched system calls), entered as a
        request in flight; or None (nothing entered) where the device has no such
        descriptor or must see every request itself.  Pair with :meth:`leave_raw`.
        The caller checks ranges itself and, on a failure, repeats the request through
        the normal methods (which retry and report)."""
        fd = self._raw_fd(write)
        if fd is not None:
            self._enter()
        return fd

    def leave_raw(self, wrote: bool) -> None:
        """End what :meth:`enter_raw` began; ``wrote``: bytes may have changed."""
        if wrote:
            self._unsynced = True
        self._leave()

    def enter_raw_sync(self) -> int | None:
        """A file descriptor the caller may flush (``fdatasync``) itself in place of
        :meth:`sync`, entered as a request in flight, the device counting as synced
        from here on; or None (nothing entered) where :meth:`sync` must run.  Pair
        with :meth:`leave_raw_sync`.  Lets a pool flush all its members in one native
        call (:func:`dwcore._native.fdatasync_many`)."""
        fd = self._raw_fd(False)
        if fd is not None:
            self._enter()
            self._unsynced = False  # writes completing from here on need the next sync
        return fd

    def leave_raw_sync(self, error: int) -> DeviceIOError | None:
        """End what :meth:`enter_raw_sync` began; ``error`` is the flush's errno (0: it
        succeeded).  Returns the error to report for a failed flush, which must not be
        retried: the kernel may have dropped the pages it could not write, so a second
        flush can succeed without them."""
        try:
            if not error:
                return None
            self._unsynced = True
            return self._io_error("sync", OSError(error, os.strerror(error)))
        finally:
            self._leave()

    def sync(self) -> None:
        """Make every completed write durable (what that means depends on the device)."""
        self._enter()
        try:
            self._unsynced = False  # writes completing from here on need the next sync
            try:
                self._sync()
            except BaseException:
                self._unsynced = True
                raise
        finally:
            self._leave()

    def close(self) -> None:
        """Close the device after requests in flight finish; closing twice is a no-op."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._inflight:
                self._cond.wait()
        self._close()

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers for subclasses --------------------------------------------

    def _check_range(self, offset: int, length: int) -> None:
        _check_int(offset, "offset")
        if offset < 0 or length < 0 or offset + length > self._size:
            raise DeviceBoundsError(
                f"{self._path}: request of {length} bytes at offset {offset} is outside the "
                f"device (size {self._size} bytes)",
                self._path,
            )

    def _enter(self) -> None:
        with self._mutex:
            if self._closed:
                raise DeviceClosedError(f"{self._path}: device is closed", self._path)
            self._inflight += 1

    def _leave(self) -> None:
        with self._mutex:
            self._inflight -= 1
            if self._inflight == 0 and self._closed:
                self._cond.notify_all()

    def _io_error(
        self, what: str, exc: OSError, offset: int | None = None, length: int | None = None
    ) -> DeviceIOError:
        where = "" if offset is None else f" of {length} bytes at offset {offset}"
        return DeviceIOError(
            f"{self._path}: {what}{where} failed: {exc.strerror or exc}",
            self._path,
            errno=exc.errno or 5,
            offset=offset,
            length=length,
        )

    def _pread_fully(self, fd: int, offset: int, view: memoryview, what: str) -> None:
        """Fill ``view`` from ``fd`` at ``offset``, retrying short reads; EOF is an error."""
        done, total = 0, view.nbytes
        while done < total:
            try:
                n = os.preadv(fd, [view[done:]], offset + done)
            except OSError as exc:
                raise self._io_error(what, exc, offset, total) from exc
            if n == 0:
                raise DeviceIOError(
                    f"{self._path}: {what} of {total} bytes at offset {offset} hit the end "
                    f"after {done} bytes (was the device shrunk or the file truncated?)",
                    self._path,
                    offset=offset,
                    length=total,
                )
            done += n

    def _pwrite_fully(self, fd: int, offset: int, view: memoryview, what: str) -> None:
        """Write all of ``view`` to ``fd`` at ``offset``, retrying short writes."""
        done, total = 0, view.nbytes
        while done < total:
            try:
                done += os.pwritev(fd, [view[done:]], offset + done)
            except OSError as exc:
                raise self._io_error(what, exc, offset, total) from exc

    def _read(self, offset: int, length: int) -> bytes:
        """Read into a new buffer; subclasses may override to save a copy."""
        buf = bytearray(length)
        self._read_into(offset, memoryview(buf))
        return bytes(buf)

    def _writev(self, offset: int, views: list[memoryview]) -> None:
        """Gathered write; by default one :meth:`_write` per buffer."""
        for v in views:
            if v.nbytes:
                self._write(offset, v)
                offset += v.nbytes

    def _raw_fd(self, write: bool) -> int | None:
        """The descriptor :meth:`enter_raw` hands out, or None (the default)."""
        return None

    def _writev_batch(self, batch: list[tuple[int, list[memoryview]]]) -> None:
        """Several gathered writes; by default one :meth:`_writev` each."""
        for offset, views in batch:
            self._writev(offset, views)

    def _readv_into(self, offset: int, views: list[memoryview]) -> None:
        """Scattered read; by default one :meth:`_read_into` per buffer."""
        for v in views:
            if v.nbytes:
                self._read_into(offset, v)
                offset += v.nbytes

    # -- primitives ---------------------------------------------------------

    @abstractmethod
    def _read_into(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` (a writable byte view) from ``offset``; the range is checked."""

    @abstractmethod
    def _write(self, offset: int, view: memoryview) -> None:
        """Write all of ``view`` at ``offset``; the range is checked."""

    @abstractmethod
    def _sync(self) -> None:
        """Make completed writes durable."""

    @abstractmethod
    def _close(self) -> None:
        """Release resources; called once, with no request in flight."""
