"""Block devices (``/dev/...``) with ``O_DIRECT`` I/O where the request allows it.

:meth:`BlockDevice.open` sizes the device with the ``BLKGETSIZE64`` ioctl
(seek to the end for a regular file) and learns the logical block size with
``BLKSSZGET`` (4096 for a regular file).  It opens the device twice: with
``O_DIRECT`` (when the kernel and file system allow it) and buffered.

* A request whose offset, length *and* buffer address are multiples of the
  logical block size goes straight to the device with ``O_DIRECT``.
* Otherwise the covering aligned range goes through an aligned bounce buffer
  (``mmap``-allocated, so page-aligned): reads copy out the requested part;
  writes read-modify-write the partial edge blocks under a lock, so
  concurrent unaligned writes of disjoint ranges sharing a block are safe.

With ``direct=False``, or where ``O_DIRECT`` is refused (tmpfs), everything
uses the buffered descriptor; :attr:`BlockDevice.direct` says which.
:meth:`~dwcore.devices.base.Device.sync` is ``fsync`` (flushes the drive's
write cache too).  Regular files go through the same code path, which is
how the tests exercise it where no loop device can be made.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import stat
import struct
import threading

from dwcore.devices.base import Device
from dwcore.devices.file import FdDevice, _open_fd
from dwcore.errors import InvalidArgumentError

__all__ = ["BLKGETSIZE64", "BLKSSZGET", "BlockDevice"]

#: ``_IOR(0x12, 114, size_t)``: device size in bytes.
BLKGETSIZE64 = 0x80081272
#: ``_IO(0x12, 104)``: logical sector size.
BLKSSZGET = 0x1268

_FILE_BLOCK = 4096


def _address(view: memoryview) -> int:
    """Address of a writable buffer's first byte."""
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


class BlockDevice(FdDevice):
    """A block device (or, for tests, a regular file) with aligned ``O_DIRECT`` I/O."""

    def __init__(self, path: str, fd: int, size: int, *, dfd: int | None, block_size: int) -> None:
        super().__init__(path, fd, size)
        self._dfd = dfd
        self._bs = block_size
        self._rmw = threading.Lock()

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, direct: bool = True, lock: bool = True
    ) -> BlockDevice:
        """Open a block device read-write (locked against other openers with ``flock``)."""
        p = os.fspath(path)
        fd = _open_fd(p, os.O_RDWR, lock=lock)
        try:
            st = os.fstat(fd)
            if stat.S_ISBLK(st.st_mode):
                size = struct.unpack("Q", fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8))[0]
                bs = struct.unpack("i", fcntl.ioctl(fd, BLKSSZGET, b"\0" * 4))[0]
            elif stat.S_ISREG(st.st_mode):
                size = os.lseek(fd, 0, os.SEEK_END)
                bs = _FILE_BLOCK
            else:
                raise InvalidArgumentError(f"{p}: is neither a block device nor a regular file")
            dfd = None
            if direct:
                try:
                    dfd = os.open(p, os.O_RDWR | os.O_DIRECT | os.O_CLOEXEC)
                except OSError:
                    dfd = None  # the file system refuses O_DIRECT: buffered I/O only
        except BaseException:
            os.close(fd)
            raise
        return cls(p, fd, size, dfd=dfd, block_size=bs)

    @property
    def direct(self) -> bool:
        """True when aligned requests use ``O_DIRECT``."""
        return self._dfd is not None

    @property
    def block_size(self) -> int:
        """Logical block size: the alignment ``O_DIRECT`` requests need."""
        return self._bs

    def describe(self) -> str:
        mode = "O_DIRECT" if self.direct else "buffered"
        return f"BlockDevice({self._path}, {self._size} bytes, {self._bs}-byte blocks, {mode})"

    # -- I/O ---------------------------------------------------------------

    # O_DIRECT decides per buffer (alignment): one request per buffer of a vector
    _writev = Device._writev
    _readv_into = Device._readv_into

    def _raw_fd(self, write: bool) -> int | None:
        return None  # O_DIRECT needs aligned requests: every request goes through _write

    def _aligned(self, offset: int, view: memoryview) -> bool:
        bs = self._bs
        return offset % bs == 0 and view.nbytes % bs == 0

    def _read(self, offset: int, length: int) -> bytes:
        if self._buffered(offset, length):
            return super()._read(offset, length)
        buf = bytearray(length)
        self._read_into(offset, memoryview(buf))
        return bytes(buf)

    def _buffered(self, offset: int, length: int) -> bool:
        """True for requests that cannot use O_DIRECT: no direct descriptor, or the
        request touches the partial last block of a regular file whose size is
        not a multiple of the block size."""
        return self._dfd is None or self._cover(offset, length)[1] > self._size

    def _read_into(self, offset: int, view: memoryview) -> None:
        if self._buffered(offset, view.nbytes):
            super()._read_into(offset, view)
            return
        if self._aligned(offset, view) and _address(view) % self._bs == 0:
            self._direct_read(offset, view)
            return
        start, end = self._cover(offset, view.nbytes)
        with mmap.mmap(-1, end - start) as bounce:
            bview = memoryview(bounce)
            try:
                self._direct_read(start, bview)
                view[:] = bview[offset - start : offset - start + view.nbytes]
            finally:
                bview.release()

    def _write(self, offset: int, view: memoryview) -> None:
        if self._buffered(offset, view.nbytes):
            super()._write(offset, view)
            return
        if self._aligned(offset, view):
            if not view.readonly and _address(view) % self._bs == 0:
                self._direct_write(offset, view)
                return
            with mmap.mmap(-1, view.nbytes) as bounce:
                bview = memoryview(bounce)
                try:
                    bview[:] = view
                    self._direct_write(offset, bview)
                finally:
                    bview.release()
            return
        start, end = self._cover(offset, view.nbytes)
        with mmap.mmap(-1, end - start) as bounce, self._rmw:
            bview = memoryview(bounce)
            try:
                bs = self._bs
                self._direct_read(start, bview[:bs])
                if end - start > bs:
                    self._direct_read(end - bs, bview[end - start - bs :])
                bview[offset - start : offset - start + view.nbytes] = view
                self._direct_write(start, bview)
            finally:
                bview.release()

    def _cover(self, offset: int, length: int) -> tuple[int, int]:
        """The block-aligned range covering a request."""
        bs = self._bs
        start = offset - offset % bs
        end = -(-(offset + length) // bs) * bs
        return start, end

    def _direct_read(self, offset: int, view: memoryview) -> None:
        assert self._dfd is not None
        self._pread_fully(self._dfd, offset, view, "direct read")

    def _direct_write(self, offset: int, view: memoryview) -> None:
        assert self._dfd is not None
        self._pwrite_fully(self._dfd, offset, view, "direct write")

    def _sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise self._io_error("sync", exc) from exc

    def _close(self) -> None:
        if self._dfd is not None:
            os.close(self._dfd)
        super()._close()
