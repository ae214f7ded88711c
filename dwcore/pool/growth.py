"""Beyond pools: zones over mixed-size devices, growth by adding devices, re-layout.

:class:`BeyondPool` is the pool of a :class:`~dwcore.raid.beyond.Beyond`
layout; its data path is :class:`ZoneEngine` (the pool's per-extent engine
hook).

Zone table and extent map
-------------------------
Every device's data area is cut into zone slots of Z bytes (its checksum
table follows the slots, as in the row engine: one CRC-32C per block).  A
zone (:class:`Zone`) names its scheme and one ``(device, slot)`` per member.
An extent is written copy-on-write into free *rows* of zones (a row is one
block of every member: ``k·B`` user bytes, with its parity or copies) —
pieces ``(zone, first row, rows)`` — never sharing a row with another
extent, so there is no write hole.  Inside the rows of one zone stripe the
extent's bytes fill data member 0's blocks, then member 1's, ... (the row
engine's mapping).  The :class:`~dwcore.pool.extent.Extent` handle carries
the extent's number (``first_row``).  ``sync``, after every device was
synced, saves the state in two steps, so what an acknowledged-and-synced
extent points at is always on the devices:

1. the zone table, when it changed, as a new generation of a record in the
   metadata areas of **every** writable device (:mod:`dwcore.pool.devstate`:
   checksummed, compressed, written into the area not holding the device's
   current record, then synced), as §6 asks;
2. the extent map in ``zones.json`` (checksummed, written to a temporary
   file, fsynced and renamed), which names the table's generation and CRC.

A crash between the two leaves zones.json naming the previous generation,
still whole in each device's other area; :meth:`ZoneEngine._load` takes the
record zones.json names from any readable member (a DataLossError names the
generation when no member holds it), and devices that lack it (a
replacement, an added device, a damaged copy) get it at the next sync.  The
table is bounded: ``zone_table_bound`` bytes for the pool's zone slots must
fit the ~1 MiB area, checked at creation and by ``add_device`` (about
100 000 slots: 25 TiB of devices at the default 256 MiB zones).  zones.json
formats 1 and 2, which held the table in the file, are read and rewritten
as 3 when the pool opens; newer formats are refused.

Allocation follows §6: free rows of existing zones first (zone order), then
new zones by the layered rule (one slot on each of the ``min(w_max, devices
with a free slot)`` writable devices with the most free slots), and only
when no zone can be built, zones with lost members within their tolerance
(a degraded write; :meth:`ZoneEngine.rebuild` restores those rows too).

Devices of mixed sizes
----------------------
``Pool.create(path, "beyond", devices, None, ...)`` (no ``device_size``)
uses each device whole: its superblock copies sit at its own ends, its data
area holds as many zone slots as fit with their checksum table, which
follows the slots (so each member's table offset follows from the device
size its superblock records), and the layout's ``sizes`` records what each
contributes.  ``sizes=`` may ask for less; a device holding less than asked
is refused, as is a replacement holding less than the device it replaces
contributed, or a device given to :meth:`BeyondPool.add_device` holding
less than ``size``.  New files (a count of devices, ``replace_device(i)``,
``add_device(size=...)``) are created just large enough.  With
``device_size`` every device uses that many bytes (as at the other levels)
and ``sizes`` only lowers what each contributes.

Growth and re-layout
--------------------
:meth:`BeyondPool.add_device` adds a device (its slots join the free pool)
and starts the background re-layout: zones narrower than the layered rule
would now build (over the ONLINE devices: a replacement still rebuilding
takes no new zone, so nothing moves until it is rebuilt) are *evacuated* one
at a time — each live extent in them is
copied into other rows (new, wider zones), the devices are synced, the map
switches atomically (saved), the old rows are freed, and an emptied zone's
slots return to the free pool — until the capacity reaches the bound or no
free space is left to evacuate into (a full pool whose only free slots lie on
fewer devices than the narrowest zone needs stays at its old capacity).
Reads and writes go on meanwhile: the re-layout takes the pool lock for one
extent at a time, and no new extent goes into the zone being emptied.  A
power cut leaves either the old or the new copy referenced, never a mix.

Failures
--------
Reads decode around FAILED/MISSING devices and blocks that fail their
checksum (never wrong bytes; :class:`~dwcore.errors.DataLossError` beyond a
zone's tolerance).  :meth:`ZoneEngine.rebuild` restores redundancy: every
zone with a member on a lost device gets that member reconstructed into a
free slot of a device not in the zone (onto the same slot of a replacement
device when the slot was replaced); when no such slot exists the zone's
extents are evacuated into other zones (a narrower scheme) if space allows,
otherwise the zone stays degraded and ``status().reasons`` reports
``DEGRADED_NO_SPACE`` (the data still reads).  It works on the zones and
replacements it found at its start, one zone per hold of the pool lock: a
zone the re-layout released meanwhile is skipped, and a device replaced
meanwhile stays REBUILDING for the next rebuild.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dwcore._native import new_bytes_to_fill
from dwcore.checksum import crc32c, crc32c_blocks, verify_blocks
from dwcore.devices import (
    METADATA_SIZE,
    MIN_DEVICE_SIZE,
    DeviceError,
    Superblock,
)
from dwcore.devices.base import byte_view
from dwcore.errors import DataLossError, InvalidArgumentError, NoSpaceError
from dwcore.pool import codec, devstate
from dwcore.pool.extent import Extent
from dwcore.pool.pool import (
    MAX_DEVICE_SIZE,
    DeviceSpec,
    Pool,
    PoolDegradedWarning,
    _check_size,
    _existing_size,
    _Geometry,
    _install_superblock,
    _Member,
)
from dwcore.pool.statefile import read_state, write_state
from dwcore.pool.status import DeviceState, Mismatch, ScrubReport
from dwcore.raid import Member, StripeMap
from dwcore.raid.beyond import (
    Beyond,
    scheme_for,
    zone_data_members,
    zone_layout,
    zone_plan,
    zone_tolerance,
)

__all__ = ["STATE_NAME", "BeyondPool", "Zone", "ZoneEngine", "device_size_for", "member_usable"]

STATE_NAME = "zones.json"
#: zones.json format: 1 (every member the pool's device size, one checksum-table
#: offset) and 2 (members of different sizes, each table after its own slots) keep the
#: zone table in the file; 3 keeps it on the devices (``zone_gen``, ``zone_crc`` name
#: the record) and only the extent map in the file.  All three are read; 3 is written.
_VERSION = 3
_VERSION_EQUAL = 1
_SCHEMES = ("mirror", "mirror3", "raid5", "raid6")


def zone_table_bound(n_devices: int, total_slots: int) -> int:
    """Most bytes a zone table over ``total_slots`` slots can take on the devices
    (uncompressed; every zone has at least two members)."""
    per_member = (1 if n_devices <= 256 else 2) + 4
    per_zone = 8 + 1 + 1
    return 1024 + total_slots * per_member + total_slots // 2 * per_zone


def check_zone_table_fits(layout: Beyond, slots: list[int]) -> None:
    """Refuse a pool whose zone table could outgrow a device's metadata area."""
    need = zone_table_bound(len(slots), sum(slots))
    room = devstate.metadata_areas(MIN_DEVICE_SIZE)[0].size - devstate.HEADER_SIZE
    if need > room:
        most = (room - 1024) // (5 + 5)
        raise InvalidArgumentError(
            f"RAID BEYOND: {sum(slots)} zone slots of {layout.zone_size} bytes: the zone table "
            f"(up to {need} bytes) would not fit the {room} bytes each device keeps for it in "
            f"its metadata area; use a larger zone_size (at most about {most} slots in all)"
        )


def _zone_payload(zones: dict[int, Zone], next_zone: int, n_devices: int) -> bytes:
    zs = list(zones.values())
    return devstate.pack(
        {"next_zone": next_zone},
        {
            "id": np.array([z.id for z in zs], dtype="<u8"),
            "scheme": np.array([_SCHEMES.index(z.scheme) for z in zs], dtype=np.uint8),
            "width": np.array([z.width for z in zs], dtype=np.uint8),
            "device": np.array(
                [d for z in zs for d, _ in z.members],
                dtype=np.uint8 if n_devices <= 256 else "<u2",
            ),
            "slot": np.array([x for z in zs for _, x in z.members], dtype="<u4"),
        },
    )


def _zones_of(payload: bytes) -> tuple[list[Zone], int]:
    meta, a = devstate.unpack(payload)
    zones: list[Zone] = []
    at = 0
    for zid, scheme, width in zip(a["id"], a["scheme"], a["width"], strict=True):
        w = int(width)
        devs, slots = a["device"][at : at + w].tolist(), a["slot"][at : at + w].tolist()
        members = list(zip(devs, slots, strict=True))
        zones.append(Zone(int(zid), _SCHEMES[int(scheme)], members))
        at += w
    return zones, int(meta["next_zone"])


def member_usable(layout: Beyond, block_size: int, device_size: int) -> int:
    """Bytes of zone slots a member of ``device_size`` bytes holds (its checksum table
    follows them in its data area)."""
    return _Geometry(layout, block_size, device_size).usable


def device_size_for(layout: Beyond, block_size: int, contribution: int) -> int:
    """The smallest device size (whole MiB) whose data area holds ``contribution`` bytes
    of zone slots: what a new file gets."""
    want = contribution - contribution % layout.zone_size
    table = -(-(want // block_size * 4) // block_size) * block_size
    size = max(
        MIN_DEVICE_SIZE, -(-(2 * METADATA_SIZE + want + table) // METADATA_SIZE) * (METADATA_SIZE)
    )
    while member_usable(layout, block_size, size) < want:
        size += METADATA_SIZE
    return size


@dataclass
class Zone:
    """A micro-array: scheme and one ``(device, slot)`` per member."""

    id: int
    scheme: str
    members: list[tuple[int, int]]

    @property
    def width(self) -> int:
        return len(self.members)

    @property
    def k(self) -> int:
        return zone_data_members(self.scheme, self.width)

    @property
    def tolerance(self) -> int:
        return zone_tolerance(self.scheme, self.width)


@dataclass
class _Seg:
    """Rows ``row .. row+n`` of one zone stripe, at byte ``offset`` of an extent."""

    zone: Zone
    stripe: int
    row: int  # row inside the chunk
    n: int
    offset: int
    sm: StripeMap = field(repr=False)


class ZoneEngine:
    """The data path of a Beyond pool (module documentation)."""

    def __init__(self, pool: BeyondPool) -> None:
        self.pool = pool
        self.b = pool._block
        self.rows_per_zone = pool.layout.zone_size // self.b
        self.rpc = pool.layout.chunk_size // self.b
        self.zones: dict[int, Zone] = {}
        self.extents: dict[int, list[tuple[int, int, int]]] = {}
        self.lengths: dict[int, int] = {}
        self.next_id = 1
        self.next_zone = 0
        self.no_space: set[int] = set()
        self._used: dict[int, np.ndarray] = {}
        #: zones emptied by re-layout, released at the next sync
        self.pending_release: set[int] = set()
        #: zones the re-layout is emptying: no new extent goes there
        self.draining: set[int] = set()
        #: rows of extents freed since the zone table was last saved: the saved table
        #: still names those extents, so the rows stay taken until the next sync
        self.freed: list[tuple[int, int, int]] = []
        # (zone id, scheme, members, stripe) -> its map: keyed by everything it depends
        # on, so a zone changed by re-layout never meets a stale map
        self._maps: dict[tuple[int, str, tuple[tuple[int, int], ...], int], StripeMap] = {}
        #: the format of the zone table last read or written (0: none yet)
        self.version = 0
        #: the zone table's records on the devices (both metadata areas of each)
        self.records = devstate.RecordStore(
            pool.pool_id, devstate.KIND_ZONE_TABLE, self._metadata_areas
        )
        #: (generation, CRC-32C) of the zone table record last committed, its payload,
        #: and the devices known to hold it
        self.zone_gen = (0, 0)
        self._zone_payload = b""
        self._holders: set[int] = set()
        self._load()
        if self.version < _VERSION:
            self.save()  # the zone table onto the devices before any data lands

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------

    @property
    def path(self) -> str:
        return os.path.join(self.pool._path, STATE_NAME)

    def _metadata_areas(self, d: int) -> tuple[devstate.Area, devstate.Area]:
        mem = self.pool._members[d]
        size = mem.sb.device_size if mem.sb is not None else self.pool._manifest.device_size
        return devstate.metadata_areas(size)

    def _member_devices(self) -> list[tuple[int, Any]]:
        """(index, device) of the members that can be read (ONLINE or REBUILDING)."""
        return [
            (m.index, m.device)
            for m in self.pool._members
            if m.device is not None and m.sb is not None and m.state is not DeviceState.MISSING
        ]

    def _load_zones(self, gen: int, crc: int) -> list[Zone]:
        """The zone table record ``gen`` (CRC ``crc``) from the devices."""
        found = self.records.scan(self._member_devices())
        match = [r for r in found if r.generation == gen and crc32c(r.payload) == crc]
        if not match:
            have = sorted({r.generation for r in found})
            raise DataLossError(
                f"pool {self.pool._path}: zone table generation {gen} is on no readable "
                f"device (generations found: {have or 'none'}); the devices that held it "
                f"are missing or damaged",
                failed=sorted(
                    m.index for m in self.pool._members if m.state is not DeviceState.ONLINE
                ),
            )
        self.records.settle(match[0], match)
        self.zone_gen = (gen, crc)
        self._zone_payload = match[0].payload
        self._holders = {r.device for r in match}
        zones, _ = _zones_of(match[0].payload)
        return zones

    def _load(self) -> None:
        state = read_state(self.path, "zone table", _VERSION)
        if state is None:
            return
        self.version = int(state.get("version", _VERSION_EQUAL))
        if self.version >= _VERSION:
            zones = self._load_zones(int(state["zone_gen"]), int(state["zone_crc"]))
        else:
            zones = [
                Zone(z["id"], z["scheme"], [(d, x) for d, x in z["members"]])
                for z in state["zones"]
            ]
        for zone in zones:
            self.zones[zone.id] = zone
            self._used[zone.id] = np.zeros(self.rows_per_zone, dtype=bool)
        for key, (length, pieces) in state["extents"].items():
            self.extents[int(key)] = [(z, r, n) for z, r, n in pieces]
            self.lengths[int(key)] = length
            for z, r, n in pieces:
                self._used[z][r : r + n] = True
        self.next_id = state["next_id"]
        self.next_zone = state["next_zone"]

    def _save_zones(self) -> None:
        """Put the zone table on every writable device (ONLINE or REBUILDING) and sync
        them: a new generation when it changed, else the current record onto devices
        that lack it (a replacement, an added device).  The previous record stays in
        each device's other area until zones.json names the new one."""
        pool = self.pool
        payload = _zone_payload(self.zones, self.next_zone, pool.layout.n_devices)
        writable = {
            m.index: m.device
            for m in pool._members
            if m.writable and m.device is not None and m.sb is not None
        }
        changed = payload != self._zone_payload
        targets = (
            writable if changed else {d: v for d, v in writable.items() if d not in self._holders}
        )
        if not targets:
            return
        gen, done, errors = self.records.write(
            targets.items(), payload, None if changed else self.zone_gen[0]
        )
        for d in done:
            try:
                targets[d].sync()
            except DeviceError as exc:
                errors[d] = exc
        for d, exc in errors.items():
            pool._mark_failed(d, f"zone table write failed: {exc}")
        ok = {d for d in done if d not in errors}
        if not ok and changed:
            raise DataLossError(
                f"pool {pool._path}: the zone table could not be written to any device",
                failed=sorted(errors),
            )
        if changed:
            self.zone_gen = (gen, crc32c(payload))
            self._zone_payload = payload
            self._holders = ok
        else:
            self._holders |= ok

    def forget_device(self, d: int) -> None:
        """Device ``d`` was replaced: it holds no copy of the zone table."""
        self._holders.discard(d)
        self.records.forget(d)

    def save(self) -> None:
        """Write the zone table (onto the devices) and the extent map (zones.json,
        naming the table's generation) atomically, after the devices synced.

        When zones.json cannot be written, the table it still names stays the
        committed one: the next record overwrites the one just written, never it."""
        committed = (self.zone_gen, self._zone_payload, set(self._holders))
        newest = self.records.snapshot()
        self._save_zones()
        state = {
            "version": _VERSION,
            "next_id": self.next_id,
            "next_zone": self.next_zone,
            "zone_gen": self.zone_gen[0],
            "zone_crc": self.zone_gen[1],
            "extents": {
                str(i): [self.lengths[i], [list(p) for p in pieces]]
                for i, pieces in self.extents.items()
            },
        }
        try:
            write_state(self.path, state)
        except BaseException:
            self.zone_gen, self._zone_payload, self._holders = committed
            self.records.restore(newest)
            raise
        self.version = _VERSION

    # ------------------------------------------------------------------
    # geometry
    # ------------------------------------------------------------------

    def slots(self) -> list[int]:
        """Zone slots of each device: what ``sizes`` says it contributes (checked against
        the device when it joined), else the pool's data area."""
        lay = self.pool.layout
        if lay.sizes is not None:
            return [s // lay.zone_size for s in lay.sizes]
        return lay.slots(self.pool._geo.usable)

    def free_slots(self, usable_only: bool = True) -> list[list[int]]:
        """Free slot numbers per device (none on devices that cannot be written)."""
        taken: list[set[int]] = [set() for _ in range(self.pool.layout.n_devices)]
        for z in self.zones.values():
            for d, s in z.members:
                taken[d].add(s)
        out: list[list[int]] = []
        for d, n in enumerate(self.slots()):
            mem = self.pool._members[d]
            if usable_only and not (mem.writable and mem.state is DeviceState.ONLINE):
                out.append([])
                continue
            out.append([s for s in range(n) if s not in taken[d]])
        return out

    def stripe_map(self, zone: Zone, s: int) -> StripeMap:
        """Zone stripe ``s`` with its members on the real devices and offsets (cached)."""
        key = (zone.id, zone.scheme, tuple(zone.members), s)
        hit = self._maps.get(key)
        if hit is not None:
            return hit
        lay = zone_layout(zone.scheme, zone.width, self.pool.layout.chunk_size)
        sm = lay.stripe(s)
        zs = self.pool.layout.zone_size
        members = tuple(
            Member(
                zone.members[m.device][0],
                zone.members[m.device][1] * zs + m.device_offset,
                m.length,
                m.role,
            )
            for m in sm.members
        )
        if len(self._maps) >= 4096:
            self._maps = {}
        self._maps[key] = hit = StripeMap(s, sm.codec, sm.k, members)
        return hit

    def segments(self, ext_id: int) -> Iterator[_Seg]:
        """The extent's rows cut at zone-stripe boundaries, with their byte offsets."""
        off = 0
        for z, r0, n in self.extents[ext_id]:
            zone = self.zones[z]
            g, end = r0, r0 + n
            while g < end:
                s, r = divmod(g, self.rpc)
                m = min(self.rpc - r, end - g)
                yield _Seg(zone, s, r, m, off, self.stripe_map(zone, s))
                off += m * zone.k * self.b
                g += m

    # ------------------------------------------------------------------
    # block I/O
    # ------------------------------------------------------------------

    def _addr(self, mem: _Member, m: Member, row: int) -> tuple[int, int]:
        return self.pool._addr(mem, m, row)

    def _read(self, m: Member, row: int, n: int) -> np.ndarray | None:
        """``n`` verified blocks of member ``m`` from chunk row ``row``; None when the device
        is unusable, fails or a block fails its checksum."""
        mem = self.pool._members[m.device]
        if mem.device is None or mem.sb is None or mem.state is not DeviceState.ONLINE:
            return None
        off, coff = self._addr(mem, m, row)
        return self.pool._read_checked(m.device, off, coff, n)

    def _corrupt(self, m: Member, row: int, n: int) -> bool:
        """Whether member ``m``'s ``n`` blocks from chunk row ``row`` read back but fail
        their checksums (False where the device is unusable or the read fails)."""
        mem = self.pool._members[m.device]
        if mem.device is None or mem.sb is None or mem.state is not DeviceState.ONLINE:
            return False
        off, coff = self._addr(mem, m, row)
        buf = np.empty(n * self.b, dtype=np.uint8)
        crcs = np.empty(n, dtype="<u4")
        if not self.pool._read_run(mem, off, buf, coff, crcs):
            return False
        return bool(len(verify_blocks(buf, self.b, crcs)))

    def _write(self, m: Member, row: int, buf: np.ndarray) -> bool:
        mem = self.pool._members[m.device]
        if mem.device is None or not mem.writable:
            return False
        off, coff = self._addr(mem, m, row)
        try:
            mem.device.pwrite(off, buf)
            mem.device.pwrite(coff, crc32c_blocks(buf, self.b))
        except DeviceError as exc:
            self.pool._mark_failed(m.device, f"write failed: {exc}")
            return False
        return True

    def _decode(
        self, seg: _Seg, length: int | None = None
    ) -> tuple[list[np.ndarray], set[int], set[int]]:
        """Every member of a segment, reconstructed: (buffers, erased, lost members).

        ``length`` (the extent's): data members wholly past it hold the zeros
        :meth:`_store` padded with, known without reading them."""
        b = self.b
        nb = seg.n * b
        bufs = [np.zeros(nb, dtype=np.uint8) for _ in seg.sm.members]
        erased: set[int] = set()
        # every online member in one batched, verified read
        reads: list[tuple[int, int, np.ndarray]] = []
        at: dict[int, int] = {}  # member -> its position in reads
        for j, m in enumerate(seg.sm.members):
            d = m.role.data_index
            if length is not None and d is not None and seg.offset + d * nb >= length:
                continue  # padding: zeros
            mem = self.pool._members[m.device]
            usable = mem.device is not None and mem.sb is not None
            if not usable or mem.state is not DeviceState.ONLINE or m.device_offset % b:
                erased.add(j)
                continue
            at[j] = len(reads)
            reads.append((m.device, m.device_offset // b + seg.row, bufs[j]))
        failed = self.pool._read_verified_many(reads)
        erased |= {j for j, i in at.items() if i in failed}
        lost = codec.reconstruct(seg.sm, bufs, erased) if erased else set()
        return bufs, erased, lost

    # ------------------------------------------------------------------
    # allocation
    # ------------------------------------------------------------------

    def _new_zone(self, avoid: set[int] | None = None) -> Zone | None:
        lay = self.pool.layout
        free = self.free_slots()
        if avoid:
            for z in avoid:
                free[z] = []
        have = [d for d, f in enumerate(free) if f]
        w = min(lay.w_max, len(have))
        if w < lay.min_devices:
            return None
        pick = sorted(have, key=lambda d: (-len(free[d]), d))[:w]
        zone = Zone(self.next_zone, scheme_for(lay.mode, w), [(d, free[d][0]) for d in pick])
        self.next_zone += 1
        self.zones[zone.id] = zone
        self._used[zone.id] = np.zeros(self.rows_per_zone, dtype=bool)
        return zone

    def _allocate(self, length: int, avoid_zone: int | None = None) -> list[tuple[int, int, int]]:
        """Free rows holding ``length`` bytes: pieces ``(zone, first row, rows)``.

        Zones whose members can all be written first, then new zones; when no zone
        can be built, zones with lost members (no more than they tolerate: a
        degraded write, restored by :meth:`rebuild`)."""
        pieces: list[tuple[int, int, int]] = []
        need = length
        zones = [
            z
            for z in self.zones.values()
            if z.id != avoid_zone and z.id not in self.no_space and z.id not in self.draining
        ]
        fresh: list[Zone] = []
        degraded = False
        while need > 0:
            for zone in zones:
                if need <= 0:
                    break
                used = self._used[zone.id]
                per = zone.k * self.b
                free = np.flatnonzero(~used)
                if not len(free) or not (degraded or self._zone_writable(zone)):
                    continue
                # runs of free rows
                breaks = np.flatnonzero(np.diff(free) != 1)
                starts = np.concatenate(([free[0]], free[breaks + 1]))
                stops = np.concatenate((free[breaks] + 1, [free[-1] + 1]))
                for a, z in zip(starts.tolist(), stops.tolist(), strict=True):
                    if need <= 0:
                        break
                    n = min(z - a, -(-need // per))
                    pieces.append((zone.id, a, n))
                    used[a : a + n] = True
                    need -= n * per
            if need <= 0:
                break
            new = self._new_zone()
            if new is None and not degraded:
                degraded = True
                zones = [
                    z
                    for z in self.zones.values()
                    if z.id != avoid_zone
                    and z.id not in self.draining
                    and not self._zone_writable(z)
                    and sum(not self.pool._members[d].writable for d, _ in z.members) <= z.tolerance
                ]
                continue
            if new is None:
                for z, a, n in pieces:
                    self._used[z][a : a + n] = False
                for zn in fresh:
                    del self.zones[zn.id]
                    del self._used[zn.id]
                raise NoSpaceError(
                    f"pool {self.pool._path}: no room for {length} bytes (no zone can be built "
                    f"from the free slots)"
                )
            fresh.append(new)
            zones = [new]
        return pieces

    def _zone_writable(self, zone: Zone) -> bool:
        return all(self.pool._members[d].writable for d, _ in zone.members)

    # ------------------------------------------------------------------
    # Engine protocol
    # ------------------------------------------------------------------

    def check_extent(self, ext: Extent) -> None:
        if ext.rows and (ext.first_row not in self.extents):
            raise InvalidArgumentError(f"extent {ext!r} is not an extent of this pool")

    def write(self, data: Any) -> Extent:
        view = byte_view(data)
        src = np.frombuffer(view, dtype=np.uint8)
        length = len(src)
        if length == 0:
            return Extent(self.pool._tag, 0, 0, 0)
        pieces = self._allocate(length)
        ext_id = self.next_id
        self.next_id += 1
        self.extents[ext_id] = pieces
        self.lengths[ext_id] = length
        try:
            self._store(ext_id, src)
        except BaseException:
            self._drop(ext_id)
            raise
        return Extent(self.pool._tag, ext_id, sum(n for _, _, n in pieces), length)

    def _store(self, ext_id: int, src: np.ndarray) -> None:
        b = self.b
        length = len(src)
        for seg in self.segments(ext_id):
            sm, nb = seg.sm, seg.n * b
            data = []
            for d in range(sm.k):
                lo = seg.offset + d * nb
                part = src[lo : lo + nb] if lo < length else src[:0]
                if len(part) < nb:
                    pad = np.zeros(nb, dtype=np.uint8)
                    pad[: len(part)] = part
                    part = pad
                data.append(part)
            bufs = [
                data[m.role.data_index]
                if m.role.data_index is not None
                else np.empty(nb, dtype=np.uint8)
                for m in sm.members
            ]
            codec.encode(sm, bufs)
            missing = {j for j, m in enumerate(sm.members) if not self._write(m, seg.row, bufs[j])}
            if codec.lost_members(sm, missing) & {
                j for j, m in enumerate(sm.members) if m.role.data_index is not None
            }:
                bad = sorted({sm.members[j].device for j in missing})
                raise DataLossError(
                    f"pool {self.pool._path}: cannot write: devices {bad} are unavailable, "
                    f"more than zone {seg.zone.id} ({seg.zone.scheme}) tolerates",
                    failed=bad,
                )

    def _drop(self, ext_id: int) -> None:
        """Forget an extent; its rows are written again only after the next sync."""
        self.freed += self.extents.pop(ext_id, [])
        self.lengths.pop(ext_id, None)

    def _read_native(
        self, ext: Extent, offset: int, end: int, outview: memoryview
    ) -> set[int] | None:
        """Bytes ``offset:end`` of ``ext`` into ``outview``: each data chunk with an online
        copy read in one native call (a one-member segment per chunk: zones differ in
        width).  Returns the extent offsets of the chunks it left for the caller (no
        online copy); None where it read nothing usable (a bad block, a device that is
        not a plain file): the caller reads every chunk."""
        b = self.b
        members = self.pool._members
        online = DeviceState.ONLINE
        rows: list[tuple[int, int, int]] = []
        starts: list[int] = []  # the extent offset of each chunk in rows
        holes: set[int] = set()
        skip = -1
        for seg in self.segments(ext.first_row):
            sm, nb = seg.sm, seg.n * b
            if seg.offset + sm.k * nb <= offset:
                continue
            if seg.offset >= end:
                break
            for d in range(sm.k):
                a = seg.offset + d * nb
                if a + nb <= offset or a >= end:
                    continue
                skip = a if skip < 0 else skip
                m = next((m for m in sm.data_members(d) if members[m.device].state is online), None)
                starts.append(a)
                if m is None:
                    holes.add(a)
                    rows.append((seg.n, -1, 0))
                    continue
                if m.device_offset % b:
                    return None
                rows.append((seg.n, m.device, m.device_offset // b + seg.row))
        # members of different sizes keep their checksum tables at different offsets: one
        # native call per table offset, the other groups' chunks left out as holes
        table_of = self.pool._table_off
        groups: dict[int, set[int]] = {}
        for _n, dev, _blk in rows:
            if dev >= 0:
                groups.setdefault(table_of(dev), set()).add(dev)
        if len(groups) <= 1:
            return self.pool._read_chunks(outview, offset - skip, end - skip, rows, holes)
        for devs in groups.values():
            part = [r if r[1] in devs else (r[0], -1, 0) for r in rows]
            out = {a for a, r in zip(starts, part, strict=True) if r[1] < 0}
            if self.pool._read_chunks(outview, offset - skip, end - skip, part, out) is None:
                return None
        return holes

    def read(self, ext: Extent, offset: int, length: int) -> bytes:
        end = offset + length
        out, outview = new_bytes_to_fill(length)
        dst = np.frombuffer(outview, dtype=np.uint8)
        todo = self._read_native(ext, offset, end, outview)
        b = self.b
        lost_devices: set[int] = set()
        lost_at: list[int] = []
        for seg in self.segments(ext.first_row):
            sm, nb = seg.sm, seg.n * b
            lo_seg, hi_seg = seg.offset, seg.offset + sm.k * nb
            if hi_seg <= offset or lo_seg >= end:
                continue
            bufs: list[np.ndarray | None] | None = None
            for d in range(sm.k):
                if todo is not None and lo_seg + d * nb not in todo:
                    continue  # read already
                a = max(offset, lo_seg + d * nb)
                z = min(end, lo_seg + (d + 1) * nb, ext.length)
                if a >= z:
                    continue
                got = None
                unread: list[Member] = []  # copies that did not read back right
                for m in sm.data_members(d):
                    got = self._read(m, seg.row, seg.n)
                    if got is not None:
                        break
                    unread.append(m)
                if got is None:
                    if bufs is None:
                        full, erased, lost = self._decode(seg, ext.length)
                        bufs = list(full)
                        if lost:
                            lost_devices |= {sm.members[j].device for j in erased}
                            bufs = [None if j in lost else x for j, x in enumerate(full)]
                    j = next(j for j, m in enumerate(sm.members) if m.role.data_index == d)
                    got = bufs[j]
                    if got is None:
                        lost_at.append(a)
                        continue
                for m in unread:  # rewrite what read back corrupt (not what failed to read)
                    if self._corrupt(m, seg.row, seg.n):
                        self._write(m, seg.row, got)
                rel = a - lo_seg - d * nb
                dst[a - offset : z - offset] = got[rel : rel + z - a]
        if lost_at:
            failed = sorted(lost_devices)
            raise DataLossError(
                f"pool {self.pool._path}: extent {ext!r}: bytes from {min(lost_at)} are lost: "
                f"devices {failed} are failed, missing or corrupt beyond what the zones tolerate",
                failed=failed,
            )
        del dst, outview
        return out

    def physical(self, ext: Extent) -> list[tuple[int, int, int]]:
        """``(device, data-area offset, length)`` of every block ``ext`` stores (its data,
        parity and copies): what a raw-I/O benchmark anchor writes and reads."""
        out: list[tuple[int, int, int]] = []
        if not ext.rows:
            return out
        for seg in self.segments(ext.first_row):
            for m in seg.sm.members:
                out.append((m.device, m.device_offset + seg.row * self.b, seg.n * self.b))
        return out

    def free(self, ext: Extent) -> None:
        if ext.rows:
            self._drop(ext.first_row)

    def check(self, used: list[tuple[int, int]]) -> tuple[int, int]:
        live = {first for first, _ in used}
        leaked = sum(
            sum(n for _, _, n in runs) for i, runs in self.extents.items() if i not in live
        )
        missing = sum(n for first, n in used if first not in self.extents)
        return leaked, missing

    def reconcile(self, used: list[tuple[int, int]]) -> int:
        live = {first for first, _ in used}
        gone = [i for i in self.extents if i not in live]
        rows = sum(sum(n for _, _, n in self.extents[i]) for i in gone)
        for i in gone:
            self._drop(i)
        return rows

    def after_sync(self) -> None:
        self._release_empty()
        self.save()
        for z, a, n in self.freed:  # the saved table no longer names them
            if z in self._used:
                self._used[z][a : a + n] = False
        self.freed.clear()

    def _release_empty(self) -> None:
        """Give the slots of zones no extent uses back (only emptied by re-layout)."""
        for zid in list(self.pending_release):
            if not self._used[zid].any():
                del self.zones[zid]
                del self._used[zid]
                self.no_space.discard(zid)
            self.pending_release.discard(zid)

    def capacity(self) -> tuple[int, int]:
        """``(capacity, used)``: existing zones plus the layered plan over the free slots."""
        zs = self.pool.layout.zone_size
        have = sum(z.k for z in self.zones.values()) * zs
        free = [len(f) for f in self.free_slots()]
        lay = self.pool.layout
        widths = zone_plan(free, lay.mode, lay.w_max)
        more = sum(zone_data_members(scheme_for(lay.mode, w), w) for w in widths) * zs
        used = sum(self.lengths.values())
        return have + more, used

    def rebuild_progress(self) -> float | None:
        return None

    def close(self) -> None:
        return None

    def survives(self, failed: set[int] | frozenset[int]) -> bool:
        """True when every zone holding data keeps within its tolerance with ``failed`` lost."""
        return all(
            sum(1 for d, _ in z.members if d in failed) <= z.tolerance
            for z in self.zones.values()
            if self._used[z.id].any()
        )

    # ------------------------------------------------------------------
    # rebuild, re-layout, scrub
    # ------------------------------------------------------------------

    def lost_devices(self) -> set[int]:
        return {
            m.index
            for m in self.pool._members
            if m.state in (DeviceState.FAILED, DeviceState.MISSING, DeviceState.REBUILDING)
        }

    def rebuild(self, progress: Callable[[int, int], Any] | None) -> None:
        """Restore every zone with a member on a device lost when it starts, one zone per
        hold of the pool lock, then bring those replacements ONLINE.

        Between zones the re-layout may empty and release zones (they are skipped) and
        devices may fail or be replaced: only a replacement that was REBUILDING at the
        start and is still the same device comes ONLINE; one put in meanwhile stays
        REBUILDING for the next rebuild."""
        pool = self.pool
        with pool._lock:
            gone = self.lost_devices()
            todo = [z.id for z in self.zones.values() if any(d in gone for d, _ in z.members)]
            targets = {
                m.index: m.device for m in pool._members if m.state is DeviceState.REBUILDING
            }
        total = len(todo)
        for i, zid in enumerate(todo):
            with pool._lock:
                pool._check_open()
                zone = self.zones.get(zid)  # the re-layout may have released it meanwhile
                if zone is not None:
                    self._rebuild_zone(zone, gone)
                    pool.sync()
            if progress is not None:
                progress(i + 1, total)
        with pool._lock:
            for m in pool._members:
                if (
                    m.state is DeviceState.REBUILDING
                    and m.index in targets
                    and m.device is targets[m.index]
                ):
                    m.state, m.reason, m.rebuilt_rows = DeviceState.ONLINE, "", 0
            pool._commit_membership()
            if self.no_space:
                warnings.warn(
                    f"pool {pool._path}: DEGRADED_NO_SPACE: zones {sorted(self.no_space)} stay "
                    f"degraded (no free slot or space to restore their redundancy)",
                    PoolDegradedWarning,
                    stacklevel=3,
                )

    def _rebuild_zone(self, zone: Zone, gone: set[int]) -> None:
        pool = self.pool
        in_zone = {d for d, _ in zone.members}
        for idx, (d, slot) in enumerate(list(zone.members)):
            if d not in gone:
                continue
            mem = pool._members[d]
            if mem.state is DeviceState.REBUILDING and mem.writable:
                target = (d, slot)  # the replacement takes the same slot
            else:
                free = self.free_slots()
                cands = [e for e, f in enumerate(free) if f and e not in in_zone]
                if not cands:
                    if not self._evacuate(zone):
                        self.no_space.add(zone.id)
                    return
                e = max(cands, key=lambda c: (len(free[c]), -c))
                target = (e, free[e][0])
            self._reconstruct_member(zone, idx, target)
            zone.members[idx] = target
            in_zone = {dd for dd, _ in zone.members}
        self.no_space.discard(zone.id)

    def _reconstruct_member(self, zone: Zone, idx: int, target: tuple[int, int]) -> None:
        """Write member ``idx`` of every used row of ``zone`` onto ``target`` (another
        device's free slot, or the same slot of a replacement device)."""
        used = self._used[zone.id]
        moved = Zone(zone.id, zone.scheme, list(zone.members))
        moved.members[idx] = target
        rows = np.flatnonzero(used)
        if not len(rows):
            return
        # runs of used rows, cut at zone-stripe boundaries (rows never written have no
        # valid checksums: they are neither read nor rebuilt)
        cuts = np.flatnonzero(
            (np.diff(rows) != 1) | (rows[1:] // self.rpc != rows[:-1] // self.rpc)
        )
        starts = np.concatenate(([rows[0]], rows[cuts + 1]))
        stops = np.concatenate((rows[cuts] + 1, [rows[-1] + 1]))
        for a, z in zip(starts.tolist(), stops.tolist(), strict=True):
            s, r = divmod(a, self.rpc)
            seg = _Seg(zone, s, r, z - a, 0, self.stripe_map(zone, s))
            bufs, erased, lost = self._decode(seg)
            dst = self.stripe_map(moved, s)
            for j, m in enumerate(dst.members):
                if m.device != target[0]:
                    continue
                if j in lost:
                    failed = sorted({seg.sm.members[i].device for i in erased})
                    raise DataLossError(
                        f"pool {self.pool._path}: zone {zone.id} cannot be rebuilt: "
                        f"devices {failed} lost",
                        failed=failed,
                    )
                if not self._write(m, r, bufs[j]):
                    raise DataLossError(
                        f"pool {self.pool._path}: cannot write device {m.device} "
                        f"while rebuilding zone {zone.id}",
                        failed=[m.device],
                    )

    def users(self, zone_id: int) -> list[int]:
        """The extents with rows in zone ``zone_id``."""
        return [i for i, pieces in self.extents.items() if any(z == zone_id for z, _, _ in pieces)]

    def move_out(self, zone_id: int, ext_id: int) -> None:
        """Copy extent ``ext_id`` into rows outside zone ``zone_id``, sync the devices and
        switch its map (saved by that sync; the old rows are free after it).  Nothing
        changes when the extent is gone or has no rows there any more; NoSpaceError or
        DataLossError leave it where it was."""
        pool = self.pool
        old = self.extents.get(ext_id)
        if old is None or not any(z == zone_id for z, _, _ in old):
            return
        data = pool.read(Extent(pool._tag, ext_id, 1, self.lengths[ext_id]))
        pieces = self._allocate(len(data), avoid_zone=zone_id)
        self.extents[ext_id] = pieces
        try:
            self._store(ext_id, np.frombuffer(data, dtype=np.uint8))
        except BaseException:
            for z, a, n in pieces:
                self._used[z][a : a + n] = False
            self.extents[ext_id] = old
            raise
        self.freed += old  # taken until the sync below saved the switched map
        pool.sync()  # devices first, then the switched map

    def _evacuate(self, zone: Zone) -> bool:
        """Copy every extent with rows in ``zone`` elsewhere, switch the map, free the
        zone; False when there is no room (the extents not moved stay there)."""
        try:
            for ext_id in self.users(zone.id):
                self.move_out(zone.id, ext_id)
        except (NoSpaceError, DataLossError):
            return False
        self.pending_release.add(zone.id)
        self.pool.sync()
        return True

    def relayout_candidate(self, skip: set[int] | frozenset[int] = frozenset()) -> Zone | None:
        """The next zone the re-layout empties: one narrower than the layered rule would
        build now whose slots, with the free ones, build wider zones; None when none is
        left (``skip``: zones it could not empty)."""
        lay = self.pool.layout
        free = [len(f) for f in self.free_slots()]
        # the devices a new zone may use (as _new_zone): not a replacement still rebuilding
        online = sum(1 for m in self.pool._members if m.writable and m.state is DeviceState.ONLINE)
        best = min(lay.w_max, online)
        cands = sorted(
            (
                z
                for z in self.zones.values()
                if z.width < best and z.id not in self.no_space and z.id not in skip
            ),
            key=lambda z: (z.width, z.id),
        )
        for zone in cands:
            # evacuating pays only if the freed slots plus the free ones build wider zones
            trial = list(free)
            for d, _ in zone.members:
                trial[d] += 1
            widths = zone_plan(trial, lay.mode, lay.w_max)
            if widths and max(widths) > zone.width:
                return zone
        return None

    def scrub(self, repair: bool, progress: Callable[[int, int], Any] | None) -> ScrubReport:
        pool = self.pool
        report = ScrubReport()
        with pool._lock:
            ids = list(self.extents)
        found: dict[tuple[int, int, str], list[tuple[bool, str]]] = {}
        stripes: set[tuple[int, int]] = set()
        for n, ext_id in enumerate(ids):
            with pool._lock:
                if ext_id not in self.extents:
                    continue
                for seg in self.segments(ext_id):
                    bufs, erased, lost = self._decode(seg)
                    stripes.add((seg.zone.id, seg.stripe))
                    report.rows_checked += seg.n
                    report.bytes_checked += seg.n * self.b * len(seg.sm.members)
                    sid = seg.zone.id * 1_000_000 + seg.stripe
                    for j in sorted(erased):
                        m = seg.sm.members[j]
                        ok = False
                        how = "cannot reconstruct"
                        if j not in lost and repair and self._write(m, seg.row, bufs[j]):
                            ok, how = True, "rewrote block from redundancy"
                        elif j not in lost and not repair:
                            how = "not repaired (repair=False)"
                        found.setdefault((sid, m.device, "checksum"), []).append((ok, how))
                    if not erased:
                        for j in codec.mismatched_rows(seg.sm, bufs, self.b):
                            m = seg.sm.members[j]
                            fresh = [x.copy() for x in bufs]
                            codec.encode(seg.sm, fresh)
                            ok = repair and self._write(m, seg.row, fresh[j])
                            how = "rewrote redundancy" if ok else "not repaired"
                            found.setdefault((sid, m.device, "parity"), []).append((ok, how))
            if progress is not None:
                progress(n + 1, len(ids))
        report.stripes_checked = len(stripes)
        for (s, dev, kind), outcomes in sorted(found.items()):
            ok = all(o for o, _ in outcomes)
            hows = sorted({h for _, h in outcomes})
            report.mismatches.append(Mismatch(s, dev, kind, ok, "; ".join(hows)))
        return report


class BeyondPool(Pool):
    """A Beyond pool: zones, growth by :meth:`add_device`, background re-layout."""

    _SHARED_IO = False  # its own data path: every request holds the pool lock

    layout: Beyond

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._zones = ZoneEngine(self)
        self._engine = self._zones  # type: ignore[assignment]
        self._relayout: threading.Thread | None = None
        self._relayout_stop = threading.Event()

    @property
    def zones(self) -> ZoneEngine:
        """The zone table and extent map (read-only use)."""
        return self._zones

    # ------------------------------------------------------------------
    # devices of mixed sizes
    # ------------------------------------------------------------------

    @classmethod
    def _device_sizes(
        cls,
        layout: Any,
        specs: Any,
        device_size: int | None,
        block_size: int,
    ) -> tuple[Any, list[int]]:
        """Bytes used on each device: ``device_size`` on every one, or (``None``) each
        device's own size (a path not created yet: what its ``sizes`` entry needs).
        Without ``device_size`` the devices contribute what their data areas hold
        unless ``sizes`` says less; a device smaller than its ``sizes`` entry is
        refused."""
        assert isinstance(layout, Beyond)
        if device_size is not None:
            _check_size("device_size", device_size, MIN_DEVICE_SIZE, MAX_DEVICE_SIZE)
            dev_sizes = [device_size] * len(specs)
        else:
            dev_sizes = []
            for i, spec in enumerate(specs):
                real = _existing_size(spec, i)
                if real is None:
                    if layout.sizes is None:
                        raise InvalidArgumentError(
                            f"device {i} ({spec}) does not exist yet: give device_size, or "
                            f"sizes= for the bytes each device contributes"
                        )
                    real = device_size_for(layout, block_size, layout.sizes[i])
                if not MIN_DEVICE_SIZE <= real <= MAX_DEVICE_SIZE:
                    raise InvalidArgumentError(
                        f"device {i} ({spec}) has {real} bytes; a member has "
                        f"{MIN_DEVICE_SIZE}..{MAX_DEVICE_SIZE}"
                    )
                dev_sizes.append(real)
        usable = [member_usable(layout, block_size, d) for d in dev_sizes]
        given = layout.sizes if layout.sizes is not None else usable
        check_zone_table_fits(
            layout, [min(g, u) // layout.zone_size for g, u in zip(given, usable, strict=True)]
        )
        if layout.sizes is None:
            if device_size is None:
                layout = layout.with_sizes(usable)
            return layout, dev_sizes
        z = layout.zone_size
        for i, (want, have) in enumerate(zip(layout.sizes, usable, strict=True)):
            if want - want % z > have:
                raise InvalidArgumentError(
                    f"device {i} ({specs[i]}) holds {have} bytes of zones ({dev_sizes[i]}-byte "
                    f"device), less than the {want} bytes sizes= asks it to contribute"
                )
        return layout, dev_sizes

    _table_off = Pool._sized_table_off

    def _contribution(self, i: int) -> int:
        """Bytes of zone slots device ``i`` contributes."""
        return self._zones.slots()[i] * self.layout.zone_size

    def _replacement_size(self, i: int, spec: DeviceSpec) -> int:
        """A replacement holds at least what device ``i`` contributed; a new file gets
        just that (or the pool's device size in a pool of equal devices)."""
        want = self._contribution(i)
        real = _existing_size(spec, i)
        if real is None:
            if self.layout.sizes is None:
                return self._manifest.device_size
            return device_size_for(self.layout, self._block, want)
        have = member_usable(self.layout, self._block, real) if real >= MIN_DEVICE_SIZE else 0
        if have < want:
            raise InvalidArgumentError(
                f"device {i}: the replacement ({spec}) holds {have} bytes of zones, less than "
                f"the {want} bytes device {i} contributes"
            )
        return real

    def replace_device(
        self, i: int, path_or_device: DeviceSpec | None = None, *, force: bool = False
    ) -> None:
        """:meth:`Pool.replace_device`; the zone table goes onto the replacement at the
        next :meth:`sync`."""
        with self._lock:
            super().replace_device(i, path_or_device, force=force)
            self._zones.forget_device(i)

    def free(self, ext: Extent) -> None:
        """Release ``ext`` (its space is reused once the next :meth:`sync` saved the map)."""
        self._check_extent(ext)
        with self._lock:
            self._check_open()
            self._zones.free(ext)

    def survives(self, failed: set[int] | frozenset[int]) -> bool:
        """The exact predicate for this pool's zone table (``layout.survives`` is the
        guarantee: any 1 in single mode, any 2 in dual)."""
        with self._lock:
            return self._zones.survives(set(failed))

    def status(self) -> Any:
        st = super().status()
        if self._zones.no_space:
            why = f"DEGRADED_NO_SPACE: zones {sorted(self._zones.no_space)} keep lost members"
            st = dataclasses.replace(st, degraded=True, reasons={**st.reasons, -1: why})
        return st

    def add_device(
        self,
        path: DeviceSpec | None = None,
        size: int | None = None,
        *,
        wait: bool = False,
        force: bool = False,
    ) -> int:
        """Add a device contributing ``size`` bytes (rounded down to whole zones); its
        slots join the free pool and the background re-layout moves narrower zones
        until the capacity reaches the new bound (``wait=True`` waits for it).

        ``path=None`` creates a sparse file in the pool directory holding ``size``
        (default: the pool's device size).  An existing device contributes all of
        its data area unless ``size`` says less; one smaller than ``size`` is
        refused.  Returns the new device's index."""
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise InvalidArgumentError(f"size must be a positive number of bytes, got {size!r}")
        self.wait_relayout()
        with self._lock:
            self._check_open()
            lay = self.layout
            i = lay.n_devices
            spec: DeviceSpec
            if path is None:
                spec = os.path.join(self._path, f"dev-{i:02d}")
                gen = 1
                while os.path.exists(spec):
                    spec = os.path.join(self._path, f"dev-{i:02d}.a{gen}")
                    gen += 1
            else:
                spec = path
            real = _existing_size(spec, i)
            if real is not None:
                dsize = real
            elif size is None:
                dsize = self._manifest.device_size
            else:
                dsize = device_size_for(lay, self._block, size)
            if not MIN_DEVICE_SIZE <= dsize <= MAX_DEVICE_SIZE:
                raise InvalidArgumentError(
                    f"device {i} ({spec}) has {dsize} bytes; a member has "
                    f"{MIN_DEVICE_SIZE}..{MAX_DEVICE_SIZE}"
                )
            have = member_usable(lay, self._block, dsize)
            give = have if size is None else size
            if give - give % lay.zone_size > have:
                raise InvalidArgumentError(
                    f"device {i} ({spec}) holds {have} bytes of zones ({dsize}-byte device), "
                    f"less than the {give} bytes it is asked to contribute"
                )
            sized = lay
            if sized.sizes is None:  # a pool of equal devices: make their share explicit
                sized = lay.with_sizes([self._geo.usable] * lay.n_devices)
            new = sized.with_device(give)
            check_zone_table_fits(new, [*self._zones.slots(), give // lay.zone_size])
            self._check_new_device(spec, dsize, force, i)
            dev, owned = self._open_new_device(spec, dsize)
            sb = Superblock.for_device(
                dsize,
                pool_id=self._pool_id,
                device_index=i,
                device_count=i + 1,
                layout=new.level,
                layout_params={**new.params, "block_size": self._block},
                chunk_size=new.chunk_size,
                generation=self._generation,
            )
            _install_superblock(dev, owned, sb)
            mem = _Member(i, dev.path)
            mem.device, mem.owned, mem.sb, mem.state = dev, owned, sb, DeviceState.ONLINE
            self._members.append(mem)
            self.layout = new
            self._manifest.layout = new.params
            self._commit_membership()
        self.relayout(wait=wait)
        return i

    def rebuild(self, progress: Callable[[int, int], Any] | None = None) -> None:
        """:meth:`Pool.rebuild`; then, once no replacement is pending, the background
        re-layout resumes where zones are still narrower than the devices allow (it
        waits while a replacement is pending, so an :meth:`add_device` made meanwhile
        widens the zones now)."""
        super().rebuild(progress)
        with self._lock:
            idle = self._relayout is None or not self._relayout.is_alive()
            resume = (
                idle
                and not self._closed
                and not any(m.state is DeviceState.REBUILDING for m in self._members)
                and self._zones.relayout_candidate() is not None
            )
        if resume:
            self.relayout()

    def _resume_background(self) -> None:
        """A re-layout a close or a crash interrupted resumes when the pool opens whole
        (with a device lost or rebuilding it waits for :meth:`rebuild`, which resumes it)."""
        with self._lock:
            if any(m.state is not DeviceState.ONLINE for m in self._members):
                return
            if self._zones.relayout_candidate() is None:
                return
        self.relayout()

    def relayout(self, wait: bool = False) -> None:
        """Start the background re-layout (after :meth:`add_device` and when the pool
        opens whole it starts by itself; after a rebuild too); ``wait`` waits for it."""
        self.wait_relayout()
        with self._lock:
            self._check_open()
            self._relayout_stop.clear()
            self._relayout = threading.Thread(
                target=self._relayout_loop, name="dwcore-beyond-relayout", daemon=True
            )
            self._relayout.start()
        if wait:
            self.wait_relayout()

    def _relayout_loop(self) -> None:
        """Empty narrow zones one extent per hold of the pool lock (reads and writes go
        on between; new extents avoid the zone being emptied), then release them."""
        eng = self._zones
        skip: set[int] = set()  # zones it could not empty
        try:
            while True:
                with self._lock:
                    if self._closed or self._relayout_stop.is_set():
                        return
                    zone = eng.relayout_candidate(skip)
                    if zone is None:
                        return
                    eng.draining.add(zone.id)
                    users = eng.users(zone.id)
                try:
                    for ext_id in users:
                        with self._lock:
                            if self._closed or self._relayout_stop.is_set():
                                return
                            eng.move_out(zone.id, ext_id)
                        time.sleep(0)  # let waiting requests take the lock
                    with self._lock:
                        if self._closed:
                            return
                        # twice at most: rows freed meanwhile are free after one sync
                        for _ in range(2):
                            if zone.id not in eng.zones or eng.users(zone.id):
                                break
                            eng.pending_release.add(zone.id)
                            self.sync()
                        if zone.id in eng.zones:
                            skip.add(zone.id)
                except (NoSpaceError, DataLossError):
                    skip.add(zone.id)
                finally:
                    with self._lock:
                        eng.draining.discard(zone.id)
        except Exception as exc:  # the pool stays valid; report and stop
            warnings.warn(
                f"pool {self._path}: re-layout stopped: {exc}", RuntimeWarning, stacklevel=1
            )

    def wait_relayout(self) -> None:
        """Wait until the background re-layout has finished."""
        t = self._relayout
        if t is not None and t is not threading.current_thread():
            t.join()

    def close(self, sync: bool = True) -> None:
        self._relayout_stop.set()
        self.wait_relayout()
        super().close(sync)
