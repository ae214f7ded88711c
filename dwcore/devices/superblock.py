"""Device superblocks: who a device is, in which pool, under which layout.

Every pool member starts with a 1 MiB metadata area and has a copy of it in
its last 1 MiB (``raid-levels.md`` §0.1); the data area lies between them
(:func:`data_area`).  The superblock is the first 4 KiB of each metadata
area.  :func:`write_superblock` writes the primary copy, syncs, then the
backup copy and syncs again; :func:`read_superblock` reads both, and uses the
valid copy with the highest generation, so a write torn by a crash (or one
rotten copy) is survived.  Bump the generation (:meth:`Superblock.bumped`)
on every change so the pool can tell which of its members' copies is newest.

On-disk format (version 1), all integers little-endian, 4096 bytes:

====== ===== ==========================================================
offset bytes field
====== ===== ==========================================================
0      8     magic ``b"DWCORESB"``
8      4     format version (u32, 1)
12     4     encoded size (u32, 4096)
16     16    pool id (UUID, RFC 4122 bytes)
32     16    device id (UUID of this member, new for a replacement)
48     4     device index (u32, < device count)
52     4     device count (u32)
56     8     chunk size in bytes (u64; 0 or a power of two)
64     8     data area offset (u64)
72     8     data area size (u64)
80     8     device size when written (u64; a smaller device is truncated)
88     8     generation (u64, >= 1)
96     8     state flags (u64, :class:`SuperblockFlags`; unknown bits kept)
104    8     created, ns since the Unix epoch (u64)
112    8     updated, ns since the Unix epoch (u64)
120    8     rebuild checkpoint: bytes of the data area rebuilt (u64)
128    32    layout name (UTF-8, NUL-padded)
160    4     length of the layout parameters (u32, <= 3928)
164    ...   layout parameters: compact JSON object, UTF-8, sorted keys
...    ...   zeros
4092   4     CRC-32C of bytes 0..4091
====== ===== ==========================================================

The envelope — magic, version at 8, 4096 bytes, CRC at 4092 — never changes,
so a newer format is recognised (:class:`~dwcore.errors.UnsupportedFormatError`)
rather than reported as corruption.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from dwcore.checksum import crc32c
from dwcore.devices.base import Device
from dwcore.devices.errors import ForeignDeviceError
from dwcore.errors import CorruptionError, DWError, InvalidArgumentError, UnsupportedFormatError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "METADATA_SIZE",
    "MIN_DEVICE_SIZE",
    "SUPERBLOCK_SIZE",
    "DataArea",
    "MissingSuperblockError",
    "Superblock",
    "SuperblockCopies",
    "SuperblockFlags",
    "check_member",
    "data_area",
    "read_superblock",
    "read_superblock_copies",
    "superblock_offsets",
    "write_superblock",
]

MAGIC = b"DWCORESB"
FORMAT_VERSION = 1
SUPERBLOCK_SIZE = 4096
#: Size of each of the two metadata areas (start and end of a device).
METADATA_SIZE = 1 << 20
#: Smallest device: two metadata areas and 1 MiB of data.
MIN_DEVICE_SIZE = 3 * METADATA_SIZE

_HEADER = struct.Struct("<8sII16s16sIIQQQQQQQQQ32sI")
_CRC_AT = SUPERBLOCK_SIZE - 4
_MAX_PARAMS = _CRC_AT - _HEADER.size
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


class MissingSuperblockError(CorruptionError):
    """The place of a superblock holds none (no magic): a blank or foreign device."""


class SuperblockFlags(enum.IntFlag):
    """State bits of a member; the pool engine gives them meaning."""

    NONE = 0
    #: The pool was closed cleanly (no resync of dirty stripes needed).
    CLEAN = 1
    #: The member is being rebuilt; ``rebuild_offset`` says how far.
    REBUILDING = 2
    #: A hot spare, not yet holding data.
    SPARE = 4
    #: The pool marked this member failed.
    FAILED = 8


class DataArea(NamedTuple):
    """The bytes of a device between its two metadata areas."""

    offset: int
    size: int


def _size_of(device: Device | int) -> tuple[int, str]:
    if isinstance(device, Device):
        return device.size, device.path
    return device, "device"


def superblock_offsets(device: Device | int) -> tuple[int, int]:
    """Offsets of the primary and the backup superblock on a device of this size.

    The backup is at the start of the last whole MiB-aligned 1 MiB of the
    device (bytes past the last MiB boundary are unused).
    """
    size, name = _size_of(device)
    if size < MIN_DEVICE_SIZE:
        raise InvalidArgumentError(
            f"{name}: {size} bytes is too small for a pool member; the minimum is "
            f"{MIN_DEVICE_SIZE} bytes (two 1 MiB metadata areas and 1 MiB of data)"
        )
    end = size - size % METADATA_SIZE
    return 0, end - METADATA_SIZE


def data_area(device: Device | int) -> DataArea:
    """Offset and size of the data area of ``device`` (a device or a size in bytes)."""
    _, backup = superblock_offsets(device)
    return DataArea(METADATA_SIZE, backup - METADATA_SIZE)


def _check_u(value: Any, name: str, limit: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise InvalidArgumentError(f"superblock {name} must be an int in 0..{limit}, got {value!r}")


def _now() -> int:
    return time.time_ns()


@dataclass(frozen=True)
class Superblock:
    """One member's superblock; see the module documentation for the format.

    Build one with :meth:`for_device` (fills the data area and device size),
    change it with :meth:`bumped`, store it with :func:`write_superblock`.
    """

    pool_id: uuid.UUID
    device_index: int
    device_count: int
    layout: str
    layout_params: dict[str, Any]
    chunk_size: int
    data_offset: int
    data_size: int
    device_size: int
    generation: int = 1
    flags: SuperblockFlags = SuperblockFlags.NONE
    device_id: uuid.UUID = field(default_factory=uuid.uuid4)
    created_ns: int = field(default_factory=_now)
    updated_ns: int = field(default_factory=_now)
    rebuild_offset: int = 0
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.pool_id, uuid.UUID) or not isinstance(self.device_id, uuid.UUID):
            raise InvalidArgumentError("superblock pool_id and device_id must be uuid.UUID")
        for name in ("device_index", "device_count"):
            _check_u(getattr(self, name), name, _U32)
        for name in (
            "chunk_size",
            "data_offset",
            "data_size",
            "device_size",
            "generation",
            "created_ns",
            "updated_ns",
            "rebuild_offset",
        ):
            _check_u(getattr(self, name), name, _U64)
        _check_u(int(self.flags), "flags", _U64)
        if self.device_count < 1 or self.device_index >= self.device_count:
            raise InvalidArgumentError(
                f"superblock device_index {self.device_index} must be below device_count "
                f"{self.device_count} (and device_count >= 1)"
            )
        if self.generation < 1:
            raise InvalidArgumentError("superblock generation must be >= 1")
        if self.chunk_size & (self.chunk_size - 1):
            raise InvalidArgumentError(
                f"superblock chunk_size must be 0 or a power of two, got {self.chunk_size}"
            )
        if self.data_offset + self.data_size > self.device_size:
            raise InvalidArgumentError(
                f"superblock data area {self.data_offset}+{self.data_size} ends past the device "
                f"size {self.device_size}"
            )
        if self.rebuild_offset > self.data_size:
            raise InvalidArgumentError("superblock rebuild_offset is past the data area")
        encoded = self.layout.encode() if isinstance(self.layout, str) else None
        if encoded is None or not 0 < len(encoded) <= 32 or b"\0" in encoded:
            raise InvalidArgumentError(
                f"superblock layout must be a name of 1..32 UTF-8 bytes without NUL, got "
                f"{self.layout!r}"
            )
        if not isinstance(self.layout_params, dict):
            raise InvalidArgumentError("superblock layout_params must be a dict")
        if len(self._params_json()) > _MAX_PARAMS:
            raise InvalidArgumentError(
                f"superblock layout_params encode to more than {_MAX_PARAMS} bytes of JSON"
            )
        if self.version != FORMAT_VERSION:
            raise InvalidArgumentError(f"superblock version must be {FORMAT_VERSION}")

    def _params_json(self) -> bytes:
        try:
            text = json.dumps(self.layout_params, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"superblock layout_params must be JSON-able: {exc}"
            ) from None
        return text.encode()

    @classmethod
    def for_device(
        cls,
        device: Device | int,
        *,
        pool_id: uuid.UUID,
        device_index: int,
        device_count: int,
        layout: str,
        layout_params: dict[str, Any] | None = None,
        chunk_size: int = 0,
        **extra: Any,
    ) -> Superblock:
        """A generation-1 superblock for ``device`` (or a size), data area filled in."""
        size, _ = _size_of(device)
        area = data_area(size)
        return cls(
            pool_id=pool_id,
            device_index=device_index,
            device_count=device_count,
            layout=layout,
            layout_params=dict(layout_params or {}),
            chunk_size=chunk_size,
            data_offset=area.offset,
            data_size=area.size,
            device_size=size,
            **extra,
        )

    def bumped(self, **changes: Any) -> Superblock:
        """A copy with ``changes``, the generation plus one and ``updated_ns`` now."""
        changes.setdefault("generation", self.generation + 1)
        changes.setdefault("updated_ns", max(_now(), self.updated_ns))
        return dataclasses.replace(self, **changes)

    def belongs_to(self, pool_id: uuid.UUID, device_index: int | None = None) -> bool:
        """True when this is a member of ``pool_id`` (at ``device_index`` if given)."""
        return self.pool_id == pool_id and device_index in (None, self.device_index)

    def encode(self) -> bytes:
        """The 4096-byte on-disk form, checksum included."""
        params = self._params_json()
        head = _HEADER.pack(
            MAGIC,
            self.version,
            SUPERBLOCK_SIZE,
            self.pool_id.bytes,
            self.device_id.bytes,
            self.device_index,
            self.device_count,
            self.chunk_size,
            self.data_offset,
            self.data_size,
            self.device_size,
            self.generation,
            int(self.flags),
            self.created_ns,
            self.updated_ns,
            self.rebuild_offset,
            self.layout.encode().ljust(32, b"\0"),
            len(params),
        )
        body = (head + params).ljust(_CRC_AT, b"\0")
        return body + struct.pack("<I", crc32c(body))

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, where: str = "superblock") -> Superblock:
        """Parse and verify an encoded superblock (``where`` names it in errors).

        Raises :class:`MissingSuperblockError` without the magic,
        :class:`~dwcore.errors.CorruptionError` when truncated, failing its
        checksum or holding impossible values, and
        :class:`~dwcore.errors.UnsupportedFormatError` for a newer version.
        """
        raw = bytes(data)
        if len(raw) < SUPERBLOCK_SIZE:
            raise CorruptionError(f"{where}: truncated: {len(raw)} of {SUPERBLOCK_SIZE} bytes")
        raw = raw[:SUPERBLOCK_SIZE]
        if raw[:8] != MAGIC:
            blank = " (the area is blank)" if not any(raw) else ""
            raise MissingSuperblockError(f"{where}: no dwcore superblock (bad magic){blank}")
        (stored,) = struct.unpack_from("<I", raw, _CRC_AT)
        actual = crc32c(raw[:_CRC_AT])
        if stored != actual:
            raise CorruptionError(
                f"{where}: checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
            )
        f = _HEADER.unpack_from(raw)
        version, size = f[1], f[2]
        if version > FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"{where}: format version {version} is newer than this dwcore reads "
                f"({FORMAT_VERSION}); upgrade dwcore"
            )
        if version < 1 or size != SUPERBLOCK_SIZE or f[17] > _MAX_PARAMS:
            raise CorruptionError(f"{where}: impossible header (version {version}, size {size})")
        try:
            layout = f[16].rstrip(b"\0").decode()
            params = json.loads(raw[_HEADER.size : _HEADER.size + f[17]])
            if not isinstance(params, dict):
                raise ValueError("layout parameters are not a JSON object")
            return cls(
                pool_id=uuid.UUID(bytes=f[3]),
                device_id=uuid.UUID(bytes=f[4]),
                device_index=f[5],
                device_count=f[6],
                chunk_size=f[7],
                data_offset=f[8],
                data_size=f[9],
                device_size=f[10],
                generation=f[11],
                flags=SuperblockFlags(f[12]),
                created_ns=f[13],
                updated_ns=f[14],
                rebuild_offset=f[15],
                layout=layout,
                layout_params=params,
            )
        except (ValueError, InvalidArgumentError) as exc:
            raise CorruptionError(f"{where}: invalid contents: {exc}") from None


@dataclass(frozen=True)
class SuperblockCopies:
    """Both copies of a device's superblock as read, with why a copy is unusable."""

    primary: Superblock | None
    backup: Superblock | None
    primary_error: DWError | None = None
    backup_error: DWError | None = None

    @property
    def best(self) -> Superblock | None:
        """The valid copy with the highest generation (the primary on a tie)."""
        valid = [sb for sb in (self.primary, self.backup) if sb is not None]
        return max(valid, key=lambda sb: sb.generation) if valid else None

    @property
    def needs_repair(self) -> bool:
        """True when a copy is unusable or the copies differ (rewrite both copies)."""
        return self.primary is None or self.backup is None or self.primary != self.backup


def write_superblock(
    device: Device,
    sb: Superblock,
    *,
    which: Literal["both", "primary", "backup"] = "both",
    sync: bool = True,
) -> None:
    """Write ``sb`` as the primary copy, sync, then as the backup copy, and sync.

    The sync between the copies is what makes a crash survivable: at any
    instant at least one copy is complete.  ``which`` writes one copy only
    and ``sync=False`` skips the syncs, for a pool that updates many devices
    in phases (all primaries, sync all, all backups, sync all); never leave
    both copies of one device unsynced at once.
    """
    if which not in ("both", "primary", "backup"):
        raise InvalidArgumentError(f"which must be 'both', 'primary' or 'backup', got {which!r}")
    if sb.device_size > device.size:
        raise InvalidArgumentError(
            f"{device.path}: superblock is for a {sb.device_size}-byte device but the device has "
            f"{device.size} bytes"
        )
    primary, backup = superblock_offsets(device)
    raw = sb.encode()
    for name, offset in (("primary", primary), ("backup", backup)):
        if which in ("both", name):
            device.pwrite(offset, raw)
            if sync:
                device.sync()


def read_superblock_copies(device: Device) -> SuperblockCopies:
    """Read and verify both copies; content errors are reported, I/O errors raise."""
    found: list[Superblock | None] = []
    errors: list[DWError | None] = []
    size = device.size
    offsets = superblock_offsets(size) if size >= MIN_DEVICE_SIZE else (0, None)
    for name, offset in zip(("primary", "backup"), offsets, strict=True):
        if offset is None or offset + SUPERBLOCK_SIZE > size:
            found.append(None)
            errors.append(
                CorruptionError(
                    f"{device.path}: {size} bytes is too small to hold a {name} superblock "
                    f"(a pool member has at least {MIN_DEVICE_SIZE}); truncated?"
                )
            )
            continue
        try:
            found.append(
                Superblock.decode(
                    device.pread(offset, SUPERBLOCK_SIZE),
                    f"{device.path}: {name} superblock at offset {offset}",
                )
            )
            errors.append(None)
        except (CorruptionError, UnsupportedFormatError) as exc:
            found.append(None)
            errors.append(exc)
    return SuperblockCopies(found[0], found[1], errors[0], errors[1])


def read_superblock(device: Device) -> Superblock:
    """The newest valid superblock of ``device``.

    Raises :class:`~dwcore.errors.UnsupportedFormatError` if either copy is
    of a newer format (never silently downgrade), :class:`MissingSuperblockError`
    when neither copy has the magic (a blank or foreign device),
    :class:`~dwcore.errors.CorruptionError` when no copy is valid or the
    device is smaller than the superblock records (a truncated file).
    """
    copies = read_superblock_copies(device)
    for err in (copies.primary_error, copies.backup_error):
        if isinstance(err, UnsupportedFormatError):
            raise err
    best = copies.best
    if best is None:
        errs = [copies.primary_error, copies.backup_error]
        if all(isinstance(e, MissingSuperblockError) for e in errs):
            raise MissingSuperblockError(f"{device.path}: holds no dwcore superblock")
        raise CorruptionError(f"{device.path}: no valid superblock copy: {errs[0]}; {errs[1]}")
    if best.device_size > device.size:
        raise CorruptionError(
            f"{device.path}: device has {device.size} bytes but its superblock records "
            f"{best.device_size}: the device (file) was truncated"
        )
    return best


def check_member(
    sb: Superblock, pool_id: uuid.UUID, device_index: int | None = None, device: str = "device"
) -> None:
    """Raise :class:`~dwcore.devices.errors.ForeignDeviceError` unless ``sb`` is a member
    of ``pool_id`` (at ``device_index`` when given)."""
    if sb.pool_id != pool_id:
        raise ForeignDeviceError(
            f"{device}: belongs to pool {sb.pool_id} (as device {sb.device_index} of "
            f"{sb.device_count}), not to pool {pool_id}",
            device,
        )
    if device_index is not None and sb.device_index != device_index:
        raise ForeignDeviceError(
            f"{device}: is device {sb.device_index} of pool {pool_id}, expected device "
            f"{device_index}",
            device,
        )
