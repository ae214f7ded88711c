"""The extent handle: an immutable, serializable reference to data in a pool.

An :class:`Extent` names ``rows`` consecutive *rows* of one pool starting at
``first_row`` and the ``length`` bytes of user data they hold.  It carries no
checksums of the data (those live on the devices, one CRC-32C per block of
every member); it does carry a short tag of the pool id, so a handle from
another pool is refused, and a CRC-32C of its own bytes, so a damaged handle
is refused rather than read.

Encoding (36 bytes, little-endian): magic ``b"DX"``, version (u8, 1), flags
(u8, 0), pool tag (8 bytes: the first 8 bytes of the pool UUID), first row
(u64), row count (u32), byte length (u64), CRC-32C of the 32 bytes before it
(u32).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from dwcore.checksum import crc32c
from dwcore.errors import InvalidArgumentError

__all__ = ["EXTENT_SIZE", "Extent"]

_FMT = struct.Struct("<2sBB8sQIQ")
_MAGIC = b"DX"
_VERSION = 1
#: Bytes of an encoded extent.
EXTENT_SIZE = _FMT.size + 4


@dataclass(frozen=True)
class Extent:
    """``rows`` rows of a pool from ``first_row``, holding ``length`` bytes of data."""

    pool_tag: bytes
    first_row: int
    rows: int
    length: int

    def __post_init__(self) -> None:
        if not isinstance(self.pool_tag, bytes) or len(self.pool_tag) != 8:
            raise InvalidArgumentError("extent pool_tag must be 8 bytes")
        for name in ("first_row", "rows", "length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidArgumentError(f"extent {name} must be an int >= 0, got {v!r}")
        if self.rows >= 1 << 32 or self.first_row >= 1 << 64 or self.length >= 1 << 64:
            raise InvalidArgumentError("extent fields out of range")

    def __bytes__(self) -> bytes:
        body = _FMT.pack(_MAGIC, _VERSION, 0, self.pool_tag, self.first_row, self.rows, self.length)
        return body + struct.pack("<I", crc32c(body))

    def to_bytes(self) -> bytes:
        """The encoded handle (same as ``bytes(ext)``)."""
        return bytes(self)

    @classmethod
    def from_bytes(cls, data: Any) -> Extent:
        """Decode a handle made by ``bytes(ext)``; InvalidArgumentError if it is damaged."""
        try:
            raw = bytes(memoryview(data))
        except TypeError:
            raise InvalidArgumentError(
                f"an extent is decoded from bytes, got {type(data).__name__}"
            ) from None
        if len(raw) != EXTENT_SIZE:
            raise InvalidArgumentError(
                f"an encoded extent has {EXTENT_SIZE} bytes, got {len(raw)} (truncated?)"
            )
        (stored,) = struct.unpack_from("<I", raw, _FMT.size)
        if crc32c(raw[: _FMT.size]) != stored:
            raise InvalidArgumentError("extent handle is damaged (checksum mismatch)")
        magic, version, _flags, tag, first, rows, length = _FMT.unpack_from(raw)
        if magic != _MAGIC:
            raise InvalidArgumentError("bytes are not a dwcore extent handle (bad magic)")
        if version != _VERSION:
            raise InvalidArgumentError(f"extent handle version {version} is not supported")
        return cls(tag, first, rows, length)

    def __repr__(self) -> str:
        return (
            f"Extent(pool={self.pool_tag.hex()}, first_row={self.first_row}, rows={self.rows}, "
            f"length={self.length})"
        )
