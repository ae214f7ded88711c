"""Write-intent log: the dirty regions of in-place parity updates (md's bitmap).

Levels that update parity in place (RAID S, Unraid) mark a region dirty —
durably — before they touch its data or parity, and clear the marks after
the devices have been synced.  After an unclean stop every region still
marked is resynced: its parity is recomputed from the data, so a torn
read-modify-write never leaves parity that disagrees with the data an
acknowledged extent will later be reconstructed from.

One bit per region of one *volume* (regions of ``region_size`` bytes of the
volume's offsets).  On disk (``intent.bin`` in the pool directory): magic
``b"DWINTENT"``, version (u32, 1), region size (u32 log2), bit count (u64),
then the bitmap.  Setting a bit is one byte ``pwrite`` plus ``fdatasync``;
clearing them all is one write and sync.
"""

from __future__ import annotations

import os
import struct
import threading

from dwcore.errors import CorruptionError, UnsupportedFormatError

__all__ = ["INTENT_NAME", "IntentLog"]

INTENT_NAME = "intent.bin"
_HEADER = struct.Struct("<8sIIQ")
_MAGIC = b"DWINTENT"
_VERSION = 1


class IntentLog:
    """A persistent bitmap of dirty regions; thread-safe."""

    def __init__(self, path: str, bits: int, region_size: int) -> None:
        self.path = path
        self.bits = bits
        self.region_size = region_size
        self._lock = threading.Lock()
        shift = region_size.bit_length() - 1
        header = _HEADER.pack(_MAGIC, _VERSION, shift, bits)
        nbytes = -(-bits // 8)
        if not os.path.exists(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.write(fd, header + bytes(nbytes))
            os.fsync(fd)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            raw = os.pread(fd, _HEADER.size, 0)
            if len(raw) != _HEADER.size:
                os.close(fd)
                raise CorruptionError(f"{path}: truncated write-intent log")
            magic, version, got_shift, got_bits = _HEADER.unpack(raw)
            if magic != _MAGIC:
                os.close(fd)
                raise CorruptionError(f"{path}: not a dwcore write-intent log")
            if version > _VERSION:
                os.close(fd)
                raise UnsupportedFormatError(
                    f"{path}: write-intent log version {version} is newer than this dwcore"
                )
            if (got_shift, got_bits) != (shift, bits):
                os.close(fd)
                raise CorruptionError(
                    f"{path}: write-intent log geometry ({got_bits} bits of "
                    f"{1 << got_shift} bytes) does not match the pool ({bits} of {region_size})"
                )
        self._fd = fd
        self._map = bytearray(os.pread(fd, nbytes, _HEADER.size).ljust(nbytes, b"\0"))

    def dirty(self) -> list[int]:
        """The bits set (regions to resync)."""
        out: list[int] = []
        for i, byte in enumerate(self._map):
            if byte:
                out.extend(i * 8 + b for b in range(8) if byte >> b & 1)
        return [b for b in out if b < self.bits]

    def mark(self, bits: list[int]) -> None:
        """Set ``bits`` durably (returns after the log is synced)."""
        with self._lock:
            touched = set()
            for b in bits:
                i, m = divmod(b, 8)
                if not self._map[i] >> m & 1:
                    self._map[i] |= 1 << m
                    touched.add(i)
            if not touched:
                return
            lo, hi = min(touched), max(touched) + 1
            os.pwrite(self._fd, bytes(self._map[lo:hi]), _HEADER.size + lo)
            os.fdatasync(self._fd)

    def clear(self, bits: list[int] | None = None) -> None:
        """Clear ``bits`` (all when None) durably; call only after the devices are synced."""
        with self._lock:
            if bits is None:
                if not any(self._map):
                    return
                self._map[:] = bytes(len(self._map))
            else:
                for b in bits:
                    i, m = divmod(b, 8)
                    self._map[i] &= ~(1 << m) & 0xFF
            os.pwrite(self._fd, bytes(self._map), _HEADER.size)
            os.fdatasync(self._fd)

    def close(self) -> None:
        """Close the file (the bits stay as they are on disk)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
