"""Checksums and content hashes: one module for every digest dwcore computes.

* **CRC-32C** (Castagnoli; iSCSI, ext4, Btrfs) — the per-block checksum.
  :func:`crc32c` for one buffer (``crc32c(b"123456789") == 0xE3069283``;
  ``value=`` continues a running CRC like ``zlib.crc32``), and batch calls
  for many equal blocks in one buffer — :func:`crc32c_blocks`,
  :func:`verify_blocks` — because from Python per-block checksums are bound
  by call cost: one call covers thousands of 4 KiB blocks, with the GIL
  released.  Native kernels: the SSE4.2 ``crc32`` instruction in three
  streams fused with (V)PCLMULQDQ folding, a table-driven scalar fallback.
* **Fletcher-4** exactly as ZFS defines it (``fletcher_4_native``: four
  64-bit accumulators over native-endian 32-bit words), so blocks can carry
  ZFS-compatible checksums: :func:`fletcher4`, :func:`fletcher4_bytes`,
  :func:`fletcher4_blocks`.  AVX2 and scalar kernels.
* **BLAKE3** (the ``blake3`` package) — the content hash for deduplication
  and object identity: :func:`blake3`, :func:`blake3_hasher`.
* **CRC-32** (the gzip/zlib CRC) through ``isal.isal_zlib.crc32``, several
  times faster than ``zlib.crc32``: :func:`crc32`.

Every function takes any C-contiguous bytes-like object (bytes, bytearray,
memoryview, mmap, numpy arrays — read as raw bytes) without copying it, and
raises :class:`~dwcore.errors.InvalidArgumentError` naming the argument at
fault.  The native kernels follow :mod:`dwcore.native` (``DWCORE_FORCE_ISA``,
``force_isa``); :func:`implementations` says which variants run.
"""

from __future__ import annotations

import struct
from typing import Any

import blake3 as _blake3
from isal import isal_zlib as _isal_zlib

from dwcore._native import (
    crc32c,
    crc32c_blocks,
    crc32c_blocks_into,
    crc32c_combine,
    fletcher4,
    fletcher4_blocks,
    implementations,
    verify_blocks,
)
from dwcore.errors import InvalidArgumentError

__all__ = [
    "BLAKE3_THREADS_MIN",
    "CRC32C_CHECK",
    "blake3",
    "blake3_hasher",
    "crc32",
    "crc32c",
    "crc32c_blocks",
    "crc32c_blocks_into",
    "crc32c_combine",
    "fletcher4",
    "fletcher4_blocks",
    "fletcher4_bytes",
    "implementations",
    "verify_blocks",
]

#: CRC-32C of b"123456789", the catalogue check value.
CRC32C_CHECK = 0xE3069283

#: Inputs of this many bytes or more are hashed by BLAKE3 on several threads
#: when ``max_threads`` is left to choose (measured: on a 2-core machine
#: threads gain nothing below tens of MiB; on larger machines they pay from
#: a few MiB).
BLAKE3_THREADS_MIN = 16 << 20

_F4_LAYOUT = struct.Struct("<4Q")


def fletcher4_bytes(data: Any, value: tuple[int, int, int, int] | None = None) -> bytes:
    """ZFS Fletcher-4 of ``data`` as 32 bytes: a, b, c, d as little-endian uint64.

    The layout of ZFS's ``zio_cksum_t`` on a little-endian host.  ``value``
    continues a previous :func:`fletcher4` result.
    """
    return _F4_LAYOUT.pack(*fletcher4(data, value))


def _threads(nbytes: int, max_threads: int | None) -> int:
    if max_threads is None:
        return _blake3.blake3.AUTO if nbytes >= BLAKE3_THREADS_MIN else 1
    if max_threads == _blake3.blake3.AUTO or (
        isinstance(max_threads, int) and not isinstance(max_threads, bool) and max_threads >= 1
    ):
        return max_threads
    raise InvalidArgumentError(
        f"max_threads must be a positive int, blake3.AUTO ({_blake3.blake3.AUTO}) or None, "
        f"got {max_threads!r}"
    )


def _byte_view(data: Any, name: str) -> Any:
    """``data`` itself if it is bytes, else a zero-copy flat byte view of it."""
    if type(data) is bytes:
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise InvalidArgumentError(
            f"{name} must be a bytes-like object (bytes, bytearray, memoryview, mmap, numpy "
            f"array), got {type(data).__name__}"
        ) from None
    if view.format == "B" and view.ndim == 1 and view.c_contiguous:
        return view
    try:
        return view.cast("B")
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a C-contiguous buffer") from None


def _key(key: Any) -> bytes | None:
    if key is None:
        return None
    try:
        raw = bytes(memoryview(key))
    except TypeError:
        raise InvalidArgumentError(
            f"key must be 32 bytes (a bytes-like object), got {type(key).__name__}"
        ) from None
    if len(raw) != 32:
        raise InvalidArgumentError(f"key must be exactly 32 bytes, got {len(raw)}")
    return raw


def blake3(
    data: Any,
    *,
    key: Any = None,
    length: int = 32,
    max_threads: int | None = None,
) -> bytes:
    """BLAKE3 digest of ``data`` (``length`` bytes, 32 by default).

    ``key`` (32 bytes) selects keyed hashing, as deduplicating backups use to
    keep chunk identities private.  ``max_threads`` is passed to the
    ``blake3`` package: None picks one thread below
    :data:`BLAKE3_THREADS_MIN` bytes and ``blake3.AUTO`` (one per core) from
    there; pass 1 to stay on the calling thread.  The ``blake3`` package
    releases the GIL while hashing large inputs.
    """
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise InvalidArgumentError(f"length must be a positive int, got {length!r}")
    view = _byte_view(data, "data")
    threads = _threads(len(view), max_threads)
    return _blake3.blake3(view, key=_key(key), max_threads=threads).digest(length)


def blake3_hasher(
    data: Any = None,
    *,
    key: Any = None,
    max_threads: int | None = None,
) -> _blake3.blake3:
    """An incremental BLAKE3 hasher (``update``, ``digest``, ``hexdigest``, ``copy``).

    The ``blake3.blake3`` object itself, so it is as fast as the package;
    ``data`` is hashed first if given.  ``max_threads`` None means one
    thread (an incremental hasher rarely sees one update large enough for
    threads to pay); pass ``blake3.AUTO`` for large updates.
    """
    threads = 1 if max_threads is None else _threads(0, max_threads)
    hasher = _blake3.blake3(key=_key(key), max_threads=threads)
    if data is not None:
        hasher.update(_byte_view(data, "data"))
    return hasher


def crc32(data: Any, value: int = 0) -> int:
    """The gzip/zlib CRC-32 of ``data``, continuing ``value``, via ISA-L (``isal_zlib.crc32``).

    Identical to ``zlib.crc32(data, value)``, several times faster.  Use it
    where a format needs the zlib CRC (gzip members, zip entries); blocks
    use :func:`crc32c`.
    """
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise InvalidArgumentError(
            f"value must be an int in 0..0xFFFFFFFF (a previous CRC-32), got {value!r}"
        )
    return _isal_zlib.crc32(_byte_view(data, "data"), value)
