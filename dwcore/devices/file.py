"""File-backed devices: a (sparse) regular file used as a disk.

:meth:`FileDevice.create` makes a sparse file of the requested size with
``ftruncate`` (no space is used until written); :meth:`FileDevice.open`
opens an existing one.  I/O is ``os.preadv``/``os.pwrite`` on one file
descriptor, so reads land directly in the caller's buffer and any number of
threads can do positional I/O at once (the GIL is released during each
system call).  :meth:`~dwcore.devices.base.Device.sync` is ``fdatasync``.

The file is locked (``flock``, exclusive, non-blocking) while open, so two
pools cannot use one file at once; ``lock=False`` skips this (read-only
inspection).
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Callable

from dwcore.devices.base import Device
from dwcore.devices.errors import DeviceInUseError, DeviceIOError
from dwcore.errors import InvalidArgumentError

__all__ = ["MAX_FILE_SIZE", "FileDevice"]

#: Largest size a file offset can express (the file system may allow less).
MAX_FILE_SIZE = (1 << 63) - 1
#: Buffers per vectored system call (the kernel's UIO_MAXIOV).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 1024


class FdDevice(Device):
    """A device over an open file descriptor (shared by files and block devices)."""

    def __init__(self, path: str, fd: int, size: int, *, readonly: bool = False) -> None:
        super().__init__(path, size)
        self._fd = fd
        self._readonly = readonly

    @property
    def fileno(self) -> int:
        """The underlying file descriptor (owned by the device)."""
        return self._fd

    @property
    def readonly(self) -> bool:
        """True when opened without write access."""
        return self._readonly

    def _raw_fd(self, write: bool) -> int | None:
        return None if write and self._readonly else self._fd

    def _read(self, offset: int, length: int) -> bytes:
        try:
            data = os.pread(self._fd, length, offset)
        except OSError as exc:
            raise self._io_error("read", exc, offset, length) from exc
        if len(data) == length:
            return data
        buf = bytearray(length)
        buf[: len(data)] = data
        self._read_into(offset + len(data), memoryview(buf)[len(data) :])
        return bytes(buf)

    def _read_into(self, offset: int, view: memoryview) -> None:
        self._pread_fully(self._fd, offset, view, "read")

    def _write(self, offset: int, view: memoryview) -> None:
        if self._readonly:
            raise InvalidArgumentError(f"{self._path}: device is open read-only")
        self._pwrite_fully(self._fd, offset, view, "write")

    def _writev(self, offset: int, views: list[memoryview]) -> None:
        if self._readonly:
            raise InvalidArgumentError(f"{self._path}: device is open read-only")
        total = sum(v.nbytes for v in views)
        _vectored(
            views,
            lambda iov, at: os.pwritev(self._fd, iov, offset + at),
            lambda exc: self._io_error("write", exc, offset, total),
        )

    def _writev_batch(self, batch: list[tuple[int, list[memoryview]]]) -> None:
        if self._readonly:
            raise InvalidArgumentError(f"{self._path}: device is open read-only")
        fd = self._fd
        for offset, views in batch:
            if len(views) <= _IOV_MAX:
                try:
                    done = os.pwritev(fd, views, offset)  # the usual case: all of it
                except OSError as exc:
                    total = sum(v.nbytes for v in views)
                    raise self._io_error("write", exc, offset, total) from exc
                if done == sum(v.nbytes for v in views):
                    continue
            self._writev(offset, views)  # IOV_MAX or a short write: the careful path

    def _readv_into(self, offset: int, views: list[memoryview]) -> None:
        total = sum(v.nbytes for v in views)

        def once(iov: list[memoryview], at: int) -> int:
            n = os.preadv(self._fd, iov, offset + at)
            if n == 0:
                raise DeviceIOError(
                    f"{self._path}: read of {total} bytes at offset {offset} hit the end after "
                    f"{at} bytes (was the device shrunk or the file truncated?)",
                    self._path,
                    offset=offset,
                    length=total,
                )
            return n

        _vectored(views, once, lambda exc: self._io_error("read", exc, offset, total))

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            raise self._io_error("sync", exc) from exc

    def _close(self) -> None:
        os.close(self._fd)


def _vectored(
    views: list[memoryview],
    call: Callable[[list[memoryview], int], int],
    error: Callable[[OSError], DeviceIOError],
) -> None:
    """Run ``call(iovecs, done)`` until every byte of ``views`` is transferred.

    At most ``IOV_MAX`` buffers per call; a short transfer resumes inside the
    buffer where it stopped.
    """
    total = sum(v.nbytes for v in views)
    if len(views) <= _IOV_MAX:
        try:
            done = call(views, 0)  # the usual case: everything in one call
        except OSError as exc:
            raise error(exc) from exc
        if done == total:
            return
    else:
        done = 0
    pending = [v for v in views if v.nbytes]
    skip = done
    while pending and skip >= pending[0].nbytes:
        skip -= pending[0].nbytes
        pending.pop(0)
    if skip:
        pending[0] = pending[0][skip:]
    while pending:
        iov = pending[:_IOV_MAX]
        try:
            n = call(iov, done)
        except OSError as exc:
            raise error(exc) from exc
        done += n
        while pending and n >= pending[0].nbytes:
            n -= pending[0].nbytes
            pending.pop(0)
        if n:
            pending[0] = pending[0][n:]


def _open_fd(path: str, flags: int, lock: bool) -> int:
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        raise DeviceIOError(
            f"{path}: cannot open: {exc.strerror}", path, errno=exc.errno or 5
        ) from exc
    if lock:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise DeviceInUseError(
                f"{path}: is already open by another device or process (locked)", path
            ) from exc
    return fd


class FileDevice(FdDevice):
    """A regular file used as a device; build one with :meth:`create` or :meth:`open`."""

    def __init__(self, path: str, fd: int, size: int, *, readonly: bool = False) -> None:
        super().__init__(path, fd, size, readonly=readonly)
        self._in_memory = ram_backed(path)

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], size: int, *, overwrite: bool = False
    ) -> FileDevice:
        """Create a sparse file of ``size`` bytes and open it.

        Refuses an existing file unless ``overwrite`` (then it is truncated to
        zero first, so its old contents are gone).  A size the file system
        cannot hold raises :class:`~dwcore.devices.errors.DeviceIOError`
        (``EFBIG``) and leaves no file behind.
        """
        p = os.fspath(path)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_FILE_SIZE:
            raise InvalidArgumentError(
                f"size must be an int in 1..{MAX_FILE_SIZE} (bytes), got {size!r}"
            )
        flags = os.O_RDWR | os.O_CREAT | (0 if overwrite else os.O_EXCL)
        fd = _open_fd(p, flags, lock=True)  # locked before truncating: never clobber a user
        try:
            if overwrite:
                os.ftruncate(fd, 0)
            os.ftruncate(fd, size)
        except OSError as exc:
            os.close(fd)
            if not overwrite:
                os.unlink(p)
            raise DeviceIOError(
                f"{p}: cannot size the file to {size} bytes: {exc.strerror}",
                p,
                errno=exc.errno or 5,
            ) from exc
        return cls(p, fd, size)

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, readonly: bool = False, lock: bool = True
    ) -> FileDevice:
        """Open an existing file as a device; its size is the file's size."""
        p = os.fspath(path)
        fd = _open_fd(p, os.O_RDONLY if readonly else os.O_RDWR, lock=lock and not readonly)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise InvalidArgumentError(
                f"{p}: is not a regular file; use BlockDevice.open for block devices"
            )
        return cls(p, fd, st.st_size, readonly=readonly)


def ram_backed(path: str) -> bool:
    """True when ``path`` lies on a tmpfs or ramfs mount (per ``/proc/mounts``)."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return False
    real = os.path.realpath(path)
    best, kind = "", ""
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fstype
    return kind in ("tmpfs", "ramfs")
