"""Engine state kept on the pool's own devices: numbered, checksummed records in two areas.

Beyond keeps its zone table on every device and Adaptive its map on three
(``raid-levels.md``); both use this module.  A *record* is a 64-byte header
and a payload, padded to 4 KiB::

    magic   b"DWSTATE1"     8 bytes
    pool id                 16 bytes (the superblock's)
    kind                    u32 (which engine's state)
    flags                   u32 (bit 0: payload zlib-compressed)
    generation              u64 (grows by one per record written)
    payload length          u64
    payload CRC-32C         u32
    header CRC-32C          u32 (of the 60 bytes before it)
    (zero padding to 64)

Each device offers two *areas* for records of one kind.  A new record goes
into the area not holding the device's newest record, so a write torn by a
crash leaves the previous record whole; the caller syncs the device before
it counts the record as written.  :meth:`RecordStore.load` reads both areas
of every device, drops what belongs to another pool or kind, is torn or
fails its checksum, and keeps the highest generation.

Payloads are built by :func:`pack` from a small JSON header and numpy
arrays (little-endian, back to back), compressed when that makes them
smaller; :func:`unpack` reverses it.
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dwcore.checksum import crc32c
from dwcore.devices import METADATA_SIZE, SUPERBLOCK_SIZE, Device, DeviceError
from dwcore.devices.superblock import superblock_offsets
from dwcore.errors import InvalidArgumentError

__all__ = [
    "HEADER_SIZE",
    "KIND_ADAPTIVE_MAP",
    "KIND_ZONE_TABLE",
    "Area",
    "Record",
    "RecordStore",
    "metadata_areas",
    "pack",
    "unpack",
]

MAGIC = b"DWSTATE1"
KIND_ZONE_TABLE = 1
KIND_ADAPTIVE_MAP = 2
_HEADER = struct.Struct("<8s16sIIQQII")
HEADER_SIZE = 64
_ALIGN = 4096
_COMPRESSED = 1


@dataclass(frozen=True)
class Area:
    """A byte range of a device that holds one record (absolute device offsets)."""

    offset: int
    size: int


@dataclass(frozen=True)
class Record:
    """A record read back: its generation, payload, and the device and area it came from."""

    generation: int
    payload: bytes
    device: int
    area: int


def metadata_areas(device_size: int) -> tuple[Area, Area]:
    """The free part of a device's two 1 MiB metadata areas (after each superblock copy)."""
    _, backup = superblock_offsets(device_size)
    size = METADATA_SIZE - SUPERBLOCK_SIZE
    return Area(SUPERBLOCK_SIZE, size), Area(backup + SUPERBLOCK_SIZE, size)


def pack(meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """A payload: ``meta`` (JSON) and ``arrays`` (any numeric dtypes, 1-D)."""
    arrays = arrays or {}
    spec = []
    blobs = []
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        le = a.dtype.newbyteorder("<") if a.dtype.byteorder not in "|<" else a.dtype
        a = a.astype(le, copy=False)
        spec.append([name, le.str, int(a.size)])
        blobs.append(a.tobytes())
    head = json.dumps({"meta": meta, "arrays": spec}, separators=(",", ":")).encode()
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def unpack(payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a payload built by :func:`pack`.

    Raises InvalidArgumentError when the payload does not parse (a record whose
    checksums matched but whose contents are not ours: a bug, never a torn write).
    """
    try:
        (n,) = struct.unpack_from("<I", payload, 0)
        head = json.loads(payload[4 : 4 + n])
        at = 4 + n
        arrays: dict[str, np.ndarray] = {}
        for name, dtype, count in head["arrays"]:
            dt = np.dtype(dtype)
            arrays[name] = np.frombuffer(payload, dtype=dt, count=count, offset=at).copy()
            at += dt.itemsize * count
        if at != len(payload):
            raise ValueError(f"{len(payload) - at} trailing bytes")
        return head["meta"], arrays
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise InvalidArgumentError(f"engine state record does not parse: {exc}") from exc


def _encode(pool_id: uuid.UUID, kind: int, generation: int, payload: bytes) -> bytes:
    flags = 0
    small = zlib.compress(payload, 1)
    if len(small) < len(payload):
        payload, flags = small, _COMPRESSED
    head = _HEADER.pack(
        MAGIC, pool_id.bytes, kind, flags, generation, len(payload), crc32c(payload), 0
    )
    head = head[:-4] + struct.pack("<I", crc32c(head[:-4]))
    raw = head.ljust(HEADER_SIZE, b"\0") + payload
    return raw + bytes(-len(raw) % _ALIGN)


def _decode_header(raw: bytes, pool_id: uuid.UUID, kind: int) -> tuple[int, int, int, int] | None:
    """``(generation, flags, length, crc)`` of a valid header for this pool and kind."""
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        return None
    _magic, pid, k, flags, gen, length, crc, hcrc = _HEADER.unpack_from(raw)
    if crc32c(raw[: _HEADER.size - 4]) != hcrc or pid != pool_id.bytes or k != kind:
        return None
    return gen, flags, length, crc


class RecordStore:
    """Records of one ``kind`` of one pool, two areas per device (module docs).

    ``areas(d)`` gives device ``d``'s two areas (both the same size).
    """

    def __init__(
        self, pool_id: uuid.UUID, kind: int, areas: Callable[[int], tuple[Area, Area]]
    ) -> None:
        self.pool_id = pool_id
        self.kind = kind
        self.areas = areas
        #: the highest generation seen or written (the next record gets one more)
        self.generation = 0
        #: per device, the area holding its newest record (the next goes to the other)
        self._newest: dict[int, tuple[int, int]] = {}  # device -> (generation, area)

    def capacity(self, device: int) -> int:
        """Largest payload (after compression) a record on ``device`` can hold."""
        return min(a.size for a in self.areas(device)) - HEADER_SIZE

    def _read_area(self, d: int, dev: Device, which: int) -> Record | None:
        area = self.areas(d)[which]
        try:
            head = dev.pread(area.offset, HEADER_SIZE)
            got = _decode_header(head, self.pool_id, self.kind)
            if got is None:
                return None
            gen, flags, length, crc = got
            if length > area.size - HEADER_SIZE:
                return None
            payload = dev.pread(area.offset + HEADER_SIZE, length)
        except DeviceError:
            return None
        if crc32c(payload) != crc:
            return None
        if flags & _COMPRESSED:
            try:
                payload = zlib.decompress(payload)
            except zlib.error:
                return None
        return Record(gen, payload, d, which)

    def scan(self, devices: Iterable[tuple[int, Device]]) -> list[Record]:
        """Every valid record on ``devices`` (both areas), newest first; remembers each
        device's newest area and the highest generation."""
        found: list[Record] = []
        for d, dev in devices:
            for which in (0, 1):
                rec = self._read_area(d, dev, which)
                if rec is None:
                    continue
                found.append(rec)
                if rec.generation >= self._newest.get(d, (-1, 0))[0]:
                    self._newest[d] = (rec.generation, which)
                self.generation = max(self.generation, rec.generation)
        found.sort(key=lambda r: (-r.generation, r.device, r.area))
        return found

    def load(self, devices: Iterable[tuple[int, Device]]) -> Record | None:
        """The newest valid record on ``devices`` (None when there is none)."""
        found = self.scan(devices)
        return found[0] if found else None

    def snapshot(self) -> dict[int, tuple[int, int]]:
        """Which area holds each device's newest record (for :meth:`restore`)."""
        return dict(self._newest)

    def restore(self, newest: dict[int, tuple[int, int]]) -> None:
        """Take back the areas :meth:`snapshot` saw as newest: the records written since
        were never committed, so the next ones overwrite them, not the committed ones.
        Generation numbers are not taken back (none is ever reused)."""
        self._newest = dict(newest)

    def forget(self, device: int) -> None:
        """Device ``device`` was replaced: its areas hold nothing of ours."""
        self._newest.pop(device, None)

    def settle(self, record: Record, holders: Iterable[Record]) -> None:
        """Make ``record``'s generation each holder's newest: records of later
        generations found beside it (written, never committed) are overwritten first."""
        for r in holders:
            if r.generation == record.generation and r.payload == record.payload:
                self._newest[r.device] = (r.generation, r.area)

    def write(
        self,
        devices: Iterable[tuple[int, Device]],
        payload: bytes,
        generation: int | None = None,
    ) -> tuple[int, list[int], dict[int, DeviceError]]:
        """Write ``payload`` as the next generation (or as ``generation``, to copy a
        record already written elsewhere) to ``devices``, not synced.

        Returns ``(generation, devices written, {device: error})``.  Raises
        InvalidArgumentError, writing nothing, when the record does not fit an area.
        """
        gen = self.generation + 1 if generation is None else generation
        raw = _encode(self.pool_id, self.kind, gen, payload)
        targets = list(devices)
        for d, _ in targets:
            if len(raw) > min(a.size for a in self.areas(d)):
                raise InvalidArgumentError(
                    f"engine state of {len(raw)} bytes does not fit device {d}'s state area "
                    f"of {min(a.size for a in self.areas(d))} bytes"
                )
        self.generation = max(self.generation, gen)
        done: list[int] = []
        errors: dict[int, DeviceError] = {}
        for d, dev in targets:
            held = self._newest.get(d)
            if held is not None and held[0] == gen:
                which = held[1]  # the same record again (a repair of this copy)
            else:
                which = 1 - held[1] if held is not None else 0
            try:
                dev.pwrite(self.areas(d)[which].offset, raw)
            except DeviceError as exc:
                errors[d] = exc
                continue
            self._newest[d] = (gen, which)
            done.append(d)
        return gen, done, errors
