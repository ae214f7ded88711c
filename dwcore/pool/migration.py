"""Adaptive pools: hot RBs mirrored, cold RBs in RAID 5, migrated by write heat.

:class:`AdaptivePool` is the pool of an :class:`~dwcore.raid.adaptive.Adaptive`
layout; :class:`HeatEngine` is its data path (the pool's per-extent engine
hook).

Map
---
The logical space is ``capacity_rbs`` relocation blocks (RB = the layout's
chunk).  An extent owns a run of logical RBs (first-fit); every live RB has a
location ``(PEG, slot)``: slot i of a mirror PEG is RB i of both its PEXes;
slot ``s·(w-1)+d`` of a parity PEG is data chunk d of RAID 5 left-symmetric
stripe s over its w PEXes.  Every block keeps its CRC-32C in the device's
checksum table.  The PEGs, the map, the extents and the heat (of live RBs,
and of freed addresses still warmer than ``_HEAT_FLOOR``) are saved by
``sync`` after the devices synced, atomically, in the map log (§6: "a
checksummed metadata log replicated on 3 devices"):

* the last ``map_log`` PEXes of every device (sized at creation for the
  largest map, :func:`dwcore.raid.adaptive.map_log_bound`) hold two record
  areas, outside every PEG;
* each save writes the whole map as the next record
  (:mod:`dwcore.pool.devstate`: generation-numbered, CRC-32C, compressed) to
  the first :data:`LOG_COPIES` (3) online devices by index, into the area
  not holding that device's current record, and syncs each; a device whose
  write fails is marked failed and the next online one takes the copy;
* opening reads both areas of every online device and takes the highest
  generation that checks out, so a record torn by a power cut leaves the
  previous one; with none readable (the manifest says the log was started)
  the open raises DataLossError rather than show an empty pool.

The whole map is rewritten at each save (as the file was): its cost grows
with the map, about 50 bytes per live RB before compression.  Pools made
before the log (``map_log`` 0: no key in the manifest) keep ``adaptive.json``
(format 2; format 1, which kept no heat for freed addresses, is read as
well: them cold) — checksummed, temporary file, fsync, rename.

Policy
------
* Every write goes to the mirror class: the extent's RBs are written into
  free mirror slots (copy-on-write, never a read-modify-write of RAID 5);
  freeing an extent whose RBs are in the parity class leaves holes.
* Heat of an RB: exponentially decayed write count (half-life
  ``heat_half_life`` seconds of the pool's clock), ties by last write.
  Extents are immutable, so a pool never writes the same *extent* twice; what
  is written again is a logical RB *address*: first-fit allocation hands a
  freed run of logical RBs to the next write that fits, so a client that
  overwrites (frees and rewrites) a region writes the same addresses again,
  as an AutoRAID host rewrites an LBA.  Heat is therefore kept per logical RB
  address, across frees: every write adds 1 to the address's decayed heat
  (``h ← h·2^(−Δt/heat_half_life) + 1``) and stamps it.  An RB written 5 times
  two half-lives ago (heat 1.25) is hotter than one written once half a
  half-life ago (0.71); a pure recency policy would order them the other way.
  An unrelated extent that lands on a hot freed address inherits its heat;
  that only delays its demotion until the heat decays.  Reads do not count.
* Demotion: when free mirror slots fall below ``low_watermark`` of the mirror
  budget (checked on every write), or at an idle :meth:`HeatEngine.tick`
  (every RB colder than ½ — written once, more than a half-life ago), the
  coldest RBs are appended w-1 per stripe to the open parity PEG as
  full-stripe writes (a partial last stripe is zero-padded).
* Cleaning: a full parity PEG whose live fraction fell below ½ has its live
  RBs re-appended; an empty PEG returns its PEXes.
* Reserve: one largest device's worth of PEXes is never given to a PEG
  except by a rebuild.

Every move is copy → device sync → map commit (saved) → old slot freed: a
crash before the commit leaves the old copy referenced (still mirrored or
still in its stripe), after it the new one; redundancy is never lowered
while moving (the old copy stays intact until the new one is durable).

Rebuild: every PEG with a PEX on a lost device gets that PEX reconstructed
(live slots / written stripes).  When the lost device's slot holds a blank
replacement (``replace_device``) the PEX is rebuilt in place, so every RB is
again where a pool that never failed keeps it; otherwise into a free PEX (the
reserve included) on a device not already in the PEG.  A parity PEG that spans
every device (w = N, the default for N ≤ 8) has no such device: its live RBs
are re-appended to a narrower PEG instead, which takes more room than the
reserve holds once the pool is nearly full; that rebuild raises NoSpaceError
(nothing is lost, the pool stays degraded) until a replacement is given.
A rebuild brings online only the replacements it found REBUILDING when it
started, still holding the same device, with every PEX on them rebuilt; one
failed and replaced while it ran stays REBUILDING for the next.  Reads never
use a device that is not online, so a replacement's unrebuilt PEXes (blank, or
a stale image whose checksums match) are never taken as data.  In a pool of
mixed sizes a replacement needs only the PEXes of the device it replaces.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dwcore._native import new_bytes_to_fill
from dwcore.checksum import crc32c_blocks, verify_blocks
from dwcore.devices import METADATA_SIZE, Device, DeviceError
from dwcore.devices.base import byte_view
from dwcore.errors import DataLossError, InvalidArgumentError, NoSpaceError
from dwcore.pool import codec, devstate
from dwcore.pool.extent import Extent
from dwcore.pool.pool import (
    CHECKPOINT_BYTES,
    MAX_DEVICE_SIZE,
    MIN_DEVICE_SIZE,
    DeviceSpec,
    Pool,
    _existing_size,
    _Geometry,
)
from dwcore.pool.statefile import read_state, write_state
from dwcore.pool.status import DeviceState, Mismatch, ScrubReport
from dwcore.raid import Member, StripeMap
from dwcore.raid.adaptive import Adaptive
from dwcore.raid.parity import Raid5

__all__ = ["STATE_NAME", "AdaptivePool", "HeatEngine", "Peg"]

STATE_NAME = "adaptive.json"
#: 2: heat of freed logical RB addresses saved too ("heat"); 1 is still read
_VERSION = 2
#: devices each map log record is written to
LOG_COPIES = 3
#: manifest.extra key set once the map log holds a record (from then on, a pool
#: whose log cannot be read is refused instead of opened empty)
_LOG_MARK = "adaptive_map_log"
_KINDS = ("mirror", "parity")
#: freed addresses whose decayed heat fell below this are saved as cold
_HEAT_FLOOR = 1e-6


@dataclass
class Peg:
    """A PEG: ``mirror`` (2 PEXes) or ``parity`` (w PEXes); ``filled`` stripes written."""

    id: int
    kind: str
    members: list[tuple[int, int]]
    filled: int = 0


class HeatEngine:
    """The data path and the migration policy of an Adaptive pool (module docs)."""

    def __init__(self, pool: AdaptivePool) -> None:
        self.pool = pool
        self._maps: dict[tuple[tuple[int, ...], int], StripeMap] = {}  # see stripe_map
        lay: Adaptive = pool.layout
        self.lay = lay
        self.b = pool._block
        self.rb = lay.chunk_size
        self.per_pex = lay.pex_size // self.rb
        self.pexes = lay.pexes(pool._geo.usable)  # per device: mixed sizes differ
        self.raw, self.spare, self.mirror_budget = lay.budget(self.pexes)
        self.cap = lay.capacity_rbs(self.pexes)
        self.w = lay.width
        #: the policy's clock (seconds; wall time by default, so heat survives a restart)
        self.clock: Callable[[], float] = time.time
        self.pegs: dict[int, Peg] = {}
        self.next_peg = 0
        self.loc: dict[int, tuple[int, int]] = {}
        self.slot_rb: dict[int, dict[int, int]] = {}
        #: mirror slots freed since the map was last saved: the saved map still names
        #: them live, so they are not written again until the next sync saves it
        self.freed: dict[int, set[int]] = {}
        self._mirror_hint: int | None = None  # the mirror PEG that gave the last slot
        self.extents: dict[int, tuple[int, int, int]] = {}
        self.next_id = 1
        self.used = np.zeros(self.cap, dtype=bool)
        self.heat = np.zeros(self.cap, dtype=np.float64)
        self.stamp = np.zeros(self.cap, dtype=np.float64)
        self.moves = 0
        #: moves abandoned (nothing committed) because a device failed under them
        self.aborts = 0
        #: a rebuild may use the reserve
        self._rebuilding = False
        #: PEXes at the end of every device kept for the map log (0: adaptive.json)
        self.log_pexes = lay.map_log or 0
        self.records = devstate.RecordStore(
            pool.pool_id, devstate.KIND_ADAPTIVE_MAP, self._log_areas
        )
        #: devices holding the last map record written
        self.log_devices: list[int] = []
        self._load()
        if self.log_pexes and not pool._manifest.extra.get(_LOG_MARK):
            self.save()  # a new pool: its (empty) map on the devices before any data
            pool._manifest.extra[_LOG_MARK] = True
            pool._manifest.save(pool._path)

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------

    @property
    def path(self) -> str:
        return os.path.join(self.pool._path, STATE_NAME)

    def _log_areas(self, d: int) -> tuple[devstate.Area, devstate.Area]:
        sb = self.pool._members[d].sb
        assert sb is not None
        half = self.lay.map_log_area()
        at = sb.data_offset + self.pexes[d] * self.lay.pex_size
        return devstate.Area(at, half), devstate.Area(at + half, half)

    def forget_device(self, d: int) -> None:
        """Device ``d`` was replaced: whatever map records it holds (a former member's
        old ones) are erased, so no open can ever take them for the map."""
        self.records.forget(d)
        mem = self.pool._members[d]
        if not self.log_pexes or mem.device is None or mem.sb is None:
            return
        try:
            for area in self._log_areas(d):
                mem.device.pwrite(area.offset, bytes(devstate.HEADER_SIZE))
        except DeviceError as exc:
            self.pool._mark_failed(d, f"map log erase failed: {exc}")

    def _load(self) -> None:
        if self.log_pexes:
            self._load_log()
            return
        st = read_state(self.path, "adaptive map", _VERSION)
        if st is None:
            return
        self._apply(st)

    def _load_log(self) -> None:
        """The newest map record on the online devices (module docs)."""
        pool = self.pool
        online = [
            (m.index, m.device)
            for m in pool._members
            if m.device is not None and m.sb is not None and m.state is DeviceState.ONLINE
        ]
        found = self.records.scan(online)
        rec = found[0] if found else None
        if rec is None:
            if pool._manifest.extra.get(_LOG_MARK):
                raise DataLossError(
                    f"pool {pool._path}: the Adaptive map log is on none of the online devices "
                    f"{[d for d, _ in online]} (the devices that held it are missing or damaged)",
                    failed=[m.index for m in pool._members if m.state is not DeviceState.ONLINE],
                )
            return
        self.log_devices = sorted(r.device for r in found if r.generation == rec.generation)
        meta, a = devstate.unpack(rec.payload)
        at = 0
        pegs = []
        for pid, kind, filled, width in zip(
            a["peg_id"].tolist(),
            a["peg_kind"].tolist(),
            a["peg_filled"].tolist(),
            a["peg_width"].tolist(),
            strict=True,
        ):
            members = list(
                zip(
                    a["peg_dev"][at : at + width].tolist(),
                    a["peg_pex"][at : at + width].tolist(),
                    strict=True,
                )
            )
            pegs.append({"id": pid, "kind": _KINDS[kind], "members": members, "f": filled})
            at += width
        ids = a["peg_id"]
        st = {
            "next_peg": meta["next_peg"],
            "next_id": meta["next_id"],
            "pegs": pegs,
            "extents": {
                i: (rb0, n, length)
                for i, rb0, n, length in zip(
                    a["ext_id"].tolist(),
                    a["ext_rb"].tolist(),
                    a["ext_n"].tolist(),
                    a["ext_len"].tolist(),
                    strict=True,
                )
            },
            "loc": zip(
                a["loc_rb"].tolist(),
                ids[a["loc_peg"]].tolist(),
                a["loc_slot"].tolist(),
                a["loc_heat"].tolist(),
                a["loc_stamp"].tolist(),
                strict=True,
            ),
            "heat": zip(
                a["warm_rb"].tolist(),
                a["warm_heat"].tolist(),
                a["warm_stamp"].tolist(),
                strict=True,
            ),
        }
        self._apply(st)

    def _apply(self, st: dict[str, Any]) -> None:
        for p in st["pegs"]:
            self.pegs[p["id"]] = Peg(p["id"], p["kind"], [(d, x) for d, x in p["members"]], p["f"])
            self.slot_rb[p["id"]] = {}
        self.next_peg = st["next_peg"]
        self.next_id = st["next_id"]
        for key, (rb0, n, length) in st["extents"].items():
            self.extents[int(key)] = (rb0, n, length)
            self.used[rb0 : rb0 + n] = True
        for rb, peg, slot, heat, stamp in st["loc"]:
            if not self.used[rb]:
                continue  # an RB of a write in progress (saved by format 1): never acknowledged
            self.loc[rb] = (peg, slot)
            self.slot_rb[peg][slot] = rb
            self.heat[rb] = heat
            self.stamp[rb] = stamp
        for rb, heat, stamp in st.get("heat", []):  # format 2: freed addresses
            self.heat[rb] = heat
            self.stamp[rb] = stamp

    def _log_payload(self) -> bytes:
        pegs = list(self.pegs.values())
        index = {p.id: i for i, p in enumerate(pegs)}
        live = [(rb, pg, sl) for rb, (pg, sl) in self.loc.items() if self.used[rb]]
        rbs = np.array([rb for rb, _, _ in live], dtype=np.int64)
        warm = np.flatnonzero((self.decayed() >= _HEAT_FLOOR) & ~self.used)
        exts = list(self.extents.items())
        return devstate.pack(
            {"next_peg": self.next_peg, "next_id": self.next_id},
            {
                "peg_id": np.array([p.id for p in pegs], dtype="<u8"),
                "peg_kind": np.array([_KINDS.index(p.kind) for p in pegs], dtype=np.uint8),
                "peg_filled": np.array([p.filled for p in pegs], dtype="<u8"),
                "peg_width": np.array([len(p.members) for p in pegs], dtype="<u2"),
                "peg_dev": np.array([d for p in pegs for d, _ in p.members], dtype="<u2"),
                "peg_pex": np.array([x for p in pegs for _, x in p.members], dtype="<u4"),
                "ext_id": np.array([i for i, _ in exts], dtype="<u8"),
                "ext_rb": np.array([v[0] for _, v in exts], dtype="<u4"),
                "ext_n": np.array([v[1] for _, v in exts], dtype="<u4"),
                "ext_len": np.array([v[2] for _, v in exts], dtype="<u8"),
                "loc_rb": rbs.astype("<u4"),
                "loc_peg": np.array([index[pg] for _, pg, _ in live], dtype="<u4"),
                "loc_slot": np.array([sl for _, _, sl in live], dtype="<u4"),
                "loc_heat": self.heat[rbs].astype("<f8"),
                "loc_stamp": self.stamp[rbs].astype("<f8"),
                "warm_rb": warm.astype("<u4"),
                "warm_heat": self.heat[warm].astype("<f8"),
                "warm_stamp": self.stamp[warm].astype("<f8"),
            },
        )

    def _save_log(self) -> None:
        """Write the map as the next log record to the first :data:`LOG_COPIES` online
        devices (by index) that take it, each synced; a device whose write or sync fails
        is marked failed and the next one is tried."""
        pool = self.pool
        payload = self._log_payload()
        cands = [
            m
            for m in pool._members
            if m.writable
            and m.device is not None
            and m.sb is not None
            and m.state is DeviceState.ONLINE
        ]
        gen: int | None = None
        done: list[int] = []
        for mem in cands:
            if len(done) == LOG_COPIES:
                break
            dev = mem.device
            assert dev is not None
            gen, ok, errors = self.records.write([(mem.index, dev)], payload, gen)
            if ok:
                try:
                    dev.sync()
                except DeviceError as exc:
                    errors[mem.index] = exc
            if mem.index in errors:
                pool._mark_failed(mem.index, f"map log write failed: {errors[mem.index]}")
                continue
            done.append(mem.index)
        if not done:
            raise DataLossError(
                f"pool {pool._path}: the Adaptive map could not be written to any device",
                failed=[m.index for m in pool._members if m.state is not DeviceState.ONLINE],
            )
        self.log_devices = done

    def save(self) -> None:
        """Write PEGs, map, extents and heat atomically (after the devices synced): a map
        log record on three devices, or adaptive.json for a pool made before the log."""
        if self.log_pexes:
            self._save_log()
            return
        st = {
            "version": _VERSION,
            "next_peg": self.next_peg,
            "next_id": self.next_id,
            "pegs": [
                {"id": p.id, "kind": p.kind, "members": [list(m) for m in p.members], "f": p.filled}
                for p in self.pegs.values()
            ],
            "extents": {str(i): list(v) for i, v in self.extents.items()},
            # RBs of a write in progress (a demotion in the middle of it syncs) are not
            # saved: the write is not acknowledged, so after a crash their slots are free
            "loc": [
                [rb, peg, slot, float(self.heat[rb]), float(self.stamp[rb])]
                for rb, (peg, slot) in self.loc.items()
                if self.used[rb]
            ],
        }
        warm = np.flatnonzero((self.decayed() >= _HEAT_FLOOR) & ~self.used)
        st["heat"] = [[int(rb), float(self.heat[rb]), float(self.stamp[rb])] for rb in warm]
        write_state(self.path, st)

    # ------------------------------------------------------------------
    # PEX and PEG bookkeeping
    # ------------------------------------------------------------------

    def _online(self, d: int) -> bool:
        mem = self.pool._members[d]
        return mem.writable and mem.state is DeviceState.ONLINE

    def free_pexes(self) -> list[list[int]]:
        """Per device, the PEXes no PEG uses (none on a device that is not online)."""
        taken = [np.zeros(n, dtype=bool) for n in self.pexes]
        for p in self.pegs.values():
            for d, x in p.members:
                taken[d][x] = True
        return [np.flatnonzero(~t).tolist() if self._online(d) else [] for d, t in enumerate(taken)]

    def _new_peg(self, kind: str, *, reserve: bool = False) -> Peg | None:
        free = self.free_pexes()
        have = [d for d, f in enumerate(free) if f]
        width = 2 if kind == "mirror" else min(self.w, len(have))
        if width < (2 if kind == "mirror" else 3):
            return None
        left = sum(len(f) for f in free)
        if not reserve:
            if left - width < self.spare:
                return None
            if kind == "parity":
                mirror_pexes = 2 * sum(1 for p in self.pegs.values() if p.kind == "mirror")
                if left - width - self.spare < self.mirror_budget - mirror_pexes:
                    return None
        pick = sorted(have, key=lambda d: (-len(free[d]), d))[:width]
        peg = Peg(self.next_peg, kind, [(d, free[d][0]) for d in pick])
        self.next_peg += 1
        self.pegs[peg.id] = peg
        self.slot_rb[peg.id] = {}
        return peg

    def mirror_slots(self) -> tuple[int, int]:
        """(free mirror slots, mirror slots in the budget)."""
        total = self.mirror_budget // 2 * self.per_pex
        used = sum(
            len(self.slot_rb[p.id]) + len(self.freed.get(p.id, ()))
            for p in self.pegs.values()
            if p.kind == "mirror"
        )
        return total - used, total

    def _free_mirror_slot(self, p: Peg) -> int | None:
        """A slot of mirror PEG ``p`` neither live nor freed since the last save; None
        where ``p`` is not a writable mirror or is full."""
        if p.kind != "mirror":
            return None
        live, freed = self.slot_rb[p.id], self.freed.get(p.id, ())
        if len(live) + len(freed) >= self.per_pex:
            return None  # (checked before the devices: most PEGs scanned are full)
        if not all(self._online(d) for d, _ in p.members):
            return None
        return next(i for i in range(self.per_pex) if i not in live and i not in freed)

    def _free_mirror_run(self, p: Peg, want: int) -> tuple[int, int] | None:
        """``(first slot, count)``: the first run of at most ``want`` adjacent slots of
        mirror PEG ``p`` neither live nor freed since the last save; None as
        :meth:`_free_mirror_slot`."""
        first = self._free_mirror_slot(p)
        if first is None:
            return None
        live, freed = self.slot_rb[p.id], self.freed.get(p.id, ())
        end = first + 1
        while end < self.per_pex and end - first < want and end not in live and end not in freed:
            end += 1
        return first, end - first

    def _mirror_run(self, want: int) -> tuple[Peg, int, int] | None:
        """``(PEG, first slot, count)``: free adjacent mirror slots for up to ``want`` RBs
        (at least one), the PEG that gave the last ones first (:meth:`_mirror_slot`)."""
        got = self._mirror_slot()
        if got is None:
            return None
        peg, _slot = got
        run = self._free_mirror_run(peg, want)
        assert run is not None  # _mirror_slot found a free slot in it
        return peg, run[0], run[1]

    def _mirror_slot(self) -> tuple[Peg, int] | None:
        # the PEG that gave the last slot first: a write takes one slot per RB, and
        # scanning every PEG for each cost more than writing the RB
        hint = self.pegs.get(self._mirror_hint) if self._mirror_hint is not None else None
        if hint is not None:
            slot = self._free_mirror_slot(hint)
            if slot is not None:
                return hint, slot
        for p in self.pegs.values():
            slot = self._free_mirror_slot(p)
            if slot is not None:
                self._mirror_hint = p.id
                return p, slot
        mirrors = sum(1 for p in self.pegs.values() if p.kind == "mirror")
        if mirrors >= self.mirror_budget // 2:
            return None
        peg = self._new_peg("mirror")
        return None if peg is None else (peg, 0)

    # ------------------------------------------------------------------
    # block I/O
    # ------------------------------------------------------------------

    def _off(self, d: int, pex: int, rel: int) -> tuple[int, int]:
        sb = self.pool._members[d].sb
        assert sb is not None
        off = pex * self.lay.pex_size + rel
        table = self.pool._table_off(d)
        return sb.data_offset + off, sb.data_offset + table + 4 * (off // self.b)

    def _read(self, d: int, pex: int, rel: int, n: int) -> np.ndarray | None:
        """``n`` verified bytes; None where the device is unusable, fails or a block does
        not match its checksum."""
        got = self._read_raw(d, pex, rel, n)
        return got[0] if got is not None and got[1] else None

    def _read_raw(self, d: int, pex: int, rel: int, n: int) -> tuple[np.ndarray, bool] | None:
        """``n`` bytes and whether every block matches its checksum; None where the device
        is unusable or the read fails."""
        mem = self.pool._members[d]
        if mem.device is None or mem.sb is None or mem.state is not DeviceState.ONLINE:
            return None
        off, coff = self._off(d, pex, rel)
        buf = np.empty(n, dtype=np.uint8)
        try:
            mem.device.preadinto(off, buf)
            crcs = np.frombuffer(mem.device.pread(coff, 4 * (n // self.b)), dtype="<u4")
        except DeviceError:
            return None
        return buf, not len(verify_blocks(buf, self.b, crcs))

    def _write(self, d: int, pex: int, rel: int, buf: np.ndarray) -> bool:
        mem = self.pool._members[d]
        if mem.device is None or mem.sb is None or not mem.writable:
            return False
        off, coff = self._off(d, pex, rel)
        try:
            mem.device.pwrite(off, buf)
            mem.device.pwrite(coff, crc32c_blocks(buf, self.b))
        except DeviceError as exc:
            self.pool._mark_failed(d, f"write failed: {exc}")
            return False
        return True

    def stripe_map(self, peg: Peg, s: int) -> StripeMap:
        """Stripe ``s`` of a parity PEG on its real devices (offsets relative to a PEX);
        cached by the PEG's devices and ``s``, all the map depends on."""
        key = (tuple(d for d, _ in peg.members), s)
        hit = self._maps.get(key)
        if hit is not None:
            return hit
        sm = Raid5(len(peg.members), self.rb).stripe(s)
        members = tuple(
            Member(peg.members[m.device][0], m.device_offset, self.rb, m.role) for m in sm.members
        )
        if len(self._maps) >= 4096:
            self._maps = {}
        self._maps[key] = hit = StripeMap(s, sm.codec, sm.k, members)
        return hit

    def _stripe(self, peg: Peg, s: int) -> tuple[StripeMap, list[np.ndarray], set[int], set[int]]:
        """Every chunk of a stripe, reconstructed: (map, buffers, erased, lost)."""
        sm = self.stripe_map(peg, s)
        pex_of = dict(peg.members)
        bufs = [np.zeros(self.rb, dtype=np.uint8) for _ in sm.members]
        erased: set[int] = set()
        # every online member in one batched, verified read
        reads: list[tuple[int, int, np.ndarray]] = []
        at: dict[int, int] = {}  # member -> its position in reads
        for j, m in enumerate(sm.members):
            mem = self.pool._members[m.device]
            if mem.device is None or mem.sb is None or mem.state is not DeviceState.ONLINE:
                erased.add(j)
                continue
            at[j] = len(reads)
            block = (pex_of[m.device] * self.lay.pex_size + m.device_offset) // self.b
            reads.append((m.device, block, bufs[j]))
        failed = self.pool._read_verified_many(reads)
        erased |= {j for j, i in at.items() if i in failed}
        lost = codec.reconstruct(sm, bufs, erased) if erased else set()
        return sm, bufs, erased, lost

    def read_rb(self, rb: int) -> np.ndarray | None:
        """The RB's bytes (verified, decoded around failures), None when lost.  A copy or
        chunk that read back with a bad checksum is rewritten from the good bytes, as
        a pool read repairs what it reads."""
        peg_id, slot = self.loc[rb]
        peg = self.pegs[peg_id]
        if peg.kind == "mirror":
            bad: list[tuple[int, int]] = []
            for d, x in peg.members:
                got = self._read_raw(d, x, slot * self.rb, self.rb)
                if got is not None and got[1]:
                    for bd, bx in bad:
                        self._write(bd, bx, slot * self.rb, got[0])
                    return got[0]
                if got is not None:
                    bad.append((d, x))
            return None
        s, dix = divmod(slot, len(peg.members) - 1)
        sm = self.stripe_map(peg, s)
        m = sm.data_members(dix)[0]
        pex = dict(peg.members)[m.device]
        got = self._read_raw(m.device, pex, m.device_offset, self.rb)
        if got is not None and got[1]:
            return got[0]
        sm, bufs, _erased, lost = self._stripe(peg, s)
        j = next(j for j, mm in enumerate(sm.members) if mm.role.data_index == dix)
        if j in lost:
            return None
        if got is not None:  # read, but corrupt: rewrite it
            self._write(m.device, pex, m.device_offset, bufs[j])
        return bufs[j]

    def _peg_devices(self, rb: int) -> list[int]:
        return [d for d, _ in self.pegs[self.loc[rb][0]].members]

    # ------------------------------------------------------------------
    # Engine protocol
    # ------------------------------------------------------------------

    def check_extent(self, ext: Extent) -> None:
        if ext.rows and ext.first_row not in self.extents:
            raise InvalidArgumentError(f"extent {ext!r} is not an extent of this pool")

    def _alloc_logical(self, n: int) -> int:
        """The first run of ``n`` free logical RBs (first fit)."""
        # run starts and ends from the edges of the used map, all in numpy
        edges = np.diff(np.concatenate(([True], self.used, [True])).view(np.int8))
        starts = np.flatnonzero(edges == -1)
        fits = np.flatnonzero(np.flatnonzero(edges == 1) - starts >= n)
        if len(fits):
            return int(starts[fits[0]])
        raise NoSpaceError(
            f"pool {self.pool._path}: no run of {n} free RBs ({int((~self.used).sum())} free)"
        )

    def write(self, data: Any) -> Extent:
        src = np.frombuffer(byte_view(data), dtype=np.uint8)
        length = len(src)
        if length == 0:
            return Extent(self.pool._tag, 0, 0, 0)
        n = -(-length // self.rb)
        rb0 = self._alloc_logical(n)
        free, total = self.mirror_slots()
        if free - n < self.lay.low_watermark * total and any(self.freed.values()):
            # slots freed since the last save come back once the map without them is
            # saved: a sync is far cheaper than demoting live RBs to make room
            self.pool.sync()
            free, total = self.mirror_slots()
        if free - n < self.lay.low_watermark * total:
            self.demote(max(n, int(2 * self.lay.low_watermark * total) - free + n))
        now = self.clock()
        heat0 = self.heat[rb0 : rb0 + n].copy(), self.stamp[rb0 : rb0 + n].copy()
        done: list[int] = []  # RBs given a slot and written
        try:
            i = 0
            while i < n:
                got = self._mirror_run(n - i)
                if got is None:
                    self.demote(n - i)  # every RB given a slot so far is written already
                    got = self._mirror_run(n - i)
                if got is None:
                    raise NoSpaceError(f"pool {self.pool._path}: no free mirror slot")
                peg, slot0, count = got
                a, z = rb0 + i, rb0 + i + count
                for j, rb in enumerate(range(a, z)):
                    self.loc[rb] = (peg.id, slot0 + j)
                    self.slot_rb[peg.id][slot0 + j] = rb
                done.extend(range(a, z))
                # one more write to each address (module docs: heat per logical RB
                # address), counted now: a demotion later in this write sees them hot
                age = np.maximum(now - self.stamp[a:z], 0.0)
                self.heat[a:z] = self.heat[a:z] * np.exp2(-age / self.lay.heat_half_life) + 1.0
                self.stamp[a:z] = now
                # one write per copy for the run: its slots are adjacent on both devices
                part = src[i * self.rb : (i + count) * self.rb]
                if len(part) == count * self.rb:
                    buf = part
                else:  # the extent's last RB, zero-padded
                    buf = np.zeros(count * self.rb, dtype=np.uint8)
                    buf[: len(part)] = part
                ok = [self._write(d, x, slot0 * self.rb, buf) for d, x in peg.members]
                if not any(ok):
                    raise DataLossError(
                        f"pool {self.pool._path}: cannot write: both devices of mirror PEG "
                        f"{peg.id} are unavailable",
                        failed=[d for d, _ in peg.members],
                    )
                i += count
        except BaseException:
            for rb in done:
                self._unmap(rb)
            self.heat[rb0 : rb0 + n], self.stamp[rb0 : rb0 + n] = heat0
            raise
        self.used[rb0 : rb0 + n] = True
        ext_id = self.next_id
        self.next_id += 1
        self.extents[ext_id] = (rb0, n, length)
        return Extent(self.pool._tag, ext_id, n, length)

    def _unmap(self, rb: int) -> None:
        peg_id, slot = self.loc.pop(rb)
        self.slot_rb[peg_id].pop(slot, None)

    def _read_native(
        self, rb0: int, offset: int, end: int, outview: memoryview
    ) -> list[int] | None:
        """Bytes ``offset:end`` of the extent at RB ``rb0`` into ``outview``: each RB
        with an online place (a mirror copy, or its data chunk) read in one native call
        (a segment per RB).  Returns the RBs (indices in the extent) it left for the
        caller, those with no online place; None where it read nothing usable (a bad
        block, a device that is not a plain file): the caller reads every RB."""
        rb, b, pex = self.rb, self.b, self.lay.pex_size
        members = self.pool._members
        first = offset // rb
        rows: list[tuple[int, int, int]] = []
        holes: list[int] = []
        for i in range(first, -(-end // rb)):
            peg_id, slot = self.loc[rb0 + i]
            peg = self.pegs[peg_id]
            if peg.kind == "mirror":
                places = [(d, x * pex + slot * rb) for d, x in peg.members]
            else:
                s, dix = divmod(slot, len(peg.members) - 1)
                m = self.stripe_map(peg, s).data_members(dix)[0]
                places = [(m.device, dict(peg.members)[m.device] * pex + m.device_offset)]
            at = next((p for p in places if members[p[0]].state is DeviceState.ONLINE), None)
            if at is None:
                holes.append(i)
                rows.append((rb // b, -1, 0))
            else:
                rows.append((rb // b, at[0], at[1] // b))
        a, z = offset - first * rb, end - first * rb
        # devices of different sizes keep their checksum tables at different offsets: one
        # native read per table offset, the other devices' RBs left out as holes
        groups: dict[int, set[int]] = {}
        for _n, dev, _blk in rows:
            if dev >= 0:
                groups.setdefault(self.pool._table_off(dev), set()).add(dev)
        if len(groups) <= 1:
            return self.pool._read_chunks(outview, a, z, rows, holes)
        for devs in groups.values():
            part = [r if r[1] in devs else (r[0], -1, 0) for r in rows]
            out = [i for i, r in enumerate(part, first) if r[1] < 0]
            if self.pool._read_chunks(outview, a, z, part, out) is None:
                return None
        return holes

    def read(self, ext: Extent, offset: int, length: int) -> bytes:
        rb0, _n, _len = self.extents[ext.first_row]
        end = offset + length
        out, outview = new_bytes_to_fill(length)
        dst = np.frombuffer(outview, dtype=np.uint8)
        todo = self._read_native(rb0, offset, end, outview)
        lost: set[int] = set()
        at = None
        for i in range(offset // self.rb, -(-end // self.rb)) if todo is None else todo:
            got = self.read_rb(rb0 + i)
            if got is None:
                lost |= set(self._peg_devices(rb0 + i))
                at = i * self.rb if at is None else min(at, i * self.rb)
                continue
            a, z = max(offset, i * self.rb), min(end, (i + 1) * self.rb)
            dst[a - offset : z - offset] = got[a - i * self.rb : z - i * self.rb]
        if at is not None:
            failed = sorted(
                d for d in lost if self.pool._members[d].state is not DeviceState.ONLINE
            ) or sorted(lost)
            raise DataLossError(
                f"pool {self.pool._path}: extent {ext!r}: bytes from {max(at, offset)} are lost: "
                f"devices {failed} are failed or corrupt beyond what ADAPTIVE tolerates",
                failed=failed,
            )
        del dst, outview
        return out

    def physical(self, ext: Extent) -> list[tuple[int, int, int]]:
        """``(device, data-area offset, length)`` of what ``ext`` stores: both copies of a
        mirror-class RB; the data chunk of a parity-class RB and, once per stripe, the
        stripe's parity chunk."""
        out: list[tuple[int, int, int]] = []
        if not ext.rows:
            return out
        rb0, n, _ = self.extents[ext.first_row]
        pex = self.lay.pex_size
        stripes: set[tuple[int, int]] = set()
        for rb in range(rb0, rb0 + n):
            peg_id, slot = self.loc[rb]
            peg = self.pegs[peg_id]
            if peg.kind == "mirror":
                out += [(d, x * pex + slot * self.rb, self.rb) for d, x in peg.members]
                continue
            s, dix = divmod(slot, len(peg.members) - 1)
            sm = self.stripe_map(peg, s)
            pex_of = dict(peg.members)
            wanted = list(sm.data_members(dix))
            if (peg_id, s) not in stripes:
                stripes.add((peg_id, s))
                wanted += list(sm.parity_members)
            out += [(m.device, pex_of[m.device] * pex + m.device_offset, self.rb) for m in wanted]
        return out

    def free(self, ext: Extent) -> None:
        if not ext.rows:
            return
        rb0, n, _ = self.extents.pop(ext.first_row)
        for rb in range(rb0, rb0 + n):
            peg_id, slot = self.loc[rb]
            self._unmap(rb)
            if self.pegs[peg_id].kind == "mirror":
                self.freed.setdefault(peg_id, set()).add(slot)
        self.used[rb0 : rb0 + n] = False

    def check(self, used: list[tuple[int, int]]) -> tuple[int, int]:
        live = {first for first, _ in used}
        leaked = sum(k for i, (_rb0, k, _len) in self.extents.items() if i not in live)
        missing = sum(n for first, n in used if first not in self.extents)
        return leaked, missing

    def reconcile(self, used: list[tuple[int, int]]) -> int:
        live = {first for first, _ in used}
        gone = [i for i in self.extents if i not in live]
        n = 0
        for i in gone:
            _rb0, k, length = self.extents[i]
            self.free(Extent(self.pool._tag, i, k, length))
            n += k
        return n

    def after_sync(self) -> None:
        self.save()
        self.freed.clear()  # the saved map no longer names them

    def capacity(self) -> tuple[int, int]:
        return self.cap * self.rb, int(self.used.sum()) * self.rb

    def rebuild_progress(self) -> float | None:
        return None

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------
    # policy
    # ------------------------------------------------------------------

    def decayed(self, now: float | None = None) -> np.ndarray:
        """Every logical RB address's heat at ``now`` (default: the clock): its write
        count, each write weighted ``2^(−age/heat_half_life)`` (module docs)."""
        now = self.clock() if now is None else now
        age = np.maximum(now - self.stamp, 0.0)  # a clock set back does not heat
        return self.heat * np.exp2(-age / self.lay.heat_half_life)

    def classes(self) -> dict[int, str]:
        """Logical RB → ``mirror`` or ``parity`` for every live RB."""
        return {rb: self.pegs[p].kind for rb, (p, _s) in self.loc.items()}

    def demote(self, count: int, only: list[int] | None = None) -> int:
        """Move the ``count`` coldest mirror-class RBs (or ``only`` these) to parity PEGs
        by full-stripe appends; returns RBs moved."""
        if only is None:
            mirror = [rb for rb, (p, _s) in self.loc.items() if self.pegs[p].kind == "mirror"]
            heat = self.decayed()
            mirror.sort(key=lambda rb: (heat[rb], self.stamp[rb]))
            only = mirror[:count]
        return self._append(only)

    def _append(self, rbs: list[int]) -> int:
        """Copy ``rbs`` into new full stripes, sync, commit the map, free the old slots."""
        moves: list[tuple[int, int, int]] = []  # rb, peg, slot
        filled: dict[int, int] = {}  # PEG -> stripes filled before this move
        touched: set[int] = set()
        failed = False
        i = 0
        while i < len(rbs):
            peg = self._open_parity()
            if peg is None:
                break
            k = len(peg.members) - 1
            group = rbs[i : i + k]
            i += k
            s = peg.filled
            sm = self.stripe_map(peg, s)
            bufs: list[np.ndarray] = []
            data: list[np.ndarray] = []
            for dix in range(k):
                if dix < len(group):
                    got = self.read_rb(group[dix])
                    if got is None:
                        raise DataLossError(
                            f"pool {self.pool._path}: RB {group[dix]} cannot be read to move it",
                            failed=self._peg_devices(group[dix]),
                        )
                    data.append(got)
                else:
                    data.append(np.zeros(self.rb, dtype=np.uint8))
            for m in sm.members:
                d = m.role.data_index
                bufs.append(data[d] if d is not None else np.empty(self.rb, dtype=np.uint8))
            codec.encode(sm, bufs)
            pex_of = dict(peg.members)
            ok = [
                self._write(m.device, pex_of[m.device], m.device_offset, bufs[j])
                for j, m in enumerate(sm.members)
            ]
            filled.setdefault(peg.id, peg.filled)
            peg.filled += 1
            touched |= set(pex_of)
            if not all(ok):  # the new copy would have less redundancy than the old one
                failed = True
                break
            moves += [(rb, peg.id, s * k + dix) for dix, rb in enumerate(group)]
        for d in sorted(touched):
            mem = self.pool._members[d]
            try:
                if mem.device is not None and mem.writable:
                    mem.device.sync()
            except DeviceError as exc:
                self.pool._mark_failed(d, f"sync failed while moving RBs: {exc}")
            failed |= not mem.writable
        if failed:  # nothing is committed: every RB stays where it was
            for pid, f in filled.items():
                if pid in self.pegs:
                    self.pegs[pid].filled = f
            self.aborts += 1
            return 0
        if not moves:
            return 0
        old = [(rb, self.loc[rb]) for rb, _p, _s in moves]
        for rb, p, slot in moves:
            self.loc[rb] = (p, slot)
            self.slot_rb[p][slot] = rb
        self.pool.sync()  # devices, then the switched map: the commit point
        for rb, (p, slot) in old:
            if self.slot_rb[p].get(slot) == rb:
                del self.slot_rb[p][slot]
        self.moves += len(moves)
        return len(moves)

    def _open_parity(self) -> Peg | None:
        for p in self.pegs.values():
            if (
                p.kind == "parity"
                and p.filled < self.per_pex
                and all(self._online(d) for d, _ in p.members)
            ):
                return p
        return self._new_peg("parity", reserve=self._rebuilding)

    def tick(self, idle: bool = True) -> dict[str, int]:
        """One policy step: demote below the watermark (and, ``idle``, every RB colder than
        ½), clean parity PEGs under half live, release empty PEGs.  A move that a device
        failure abandoned ends the step (``aborted``: 1): nothing of it is committed and
        no further move is tried on a pool that just lost a device."""
        did = {"demoted": 0, "cleaned": 0, "released": 0, "aborted": 0}
        aborts = self.aborts
        free, total = self.mirror_slots()
        if free < self.lay.low_watermark * total:
            did["demoted"] += self.demote(int(2 * self.lay.low_watermark * total) - free)
        if idle and self.aborts == aborts:
            heat = self.decayed()
            cold = [
                rb
                for rb, (p, _s) in self.loc.items()
                if self.pegs[p].kind == "mirror" and heat[rb] < 0.5
            ]
            cold.sort(key=lambda rb: (heat[rb], self.stamp[rb]))
            did["demoted"] += self._append(cold)
        for p in list(self.pegs.values()):
            if self.aborts != aborts:
                did["aborted"] = 1
                return did
            if p.kind != "parity" or p.filled < self.per_pex:
                continue
            live = list(self.slot_rb[p.id].values())
            if len(live) < 0.5 * p.filled * (len(p.members) - 1):
                did["cleaned"] += self._append(sorted(live))
        if self.aborts != aborts:
            did["aborted"] = 1
            return did
        for p in list(self.pegs.values()):
            if not self.slot_rb[p.id] and (p.kind == "mirror" or p.filled == self.per_pex):
                del self.pegs[p.id]
                del self.slot_rb[p.id]
                did["released"] += 1
        if did["released"]:
            self.pool.sync()
        return did

    # ------------------------------------------------------------------
    # failures
    # ------------------------------------------------------------------

    def survives(self, failed: set[int]) -> bool:
        """True when no PEG holding live RBs loses more than it tolerates."""
        for p in self.pegs.values():
            if not self.slot_rb[p.id]:
                continue
            if sum(1 for d, _ in p.members if d in failed) > 1:
                return False
        return True

    def rebuild(self, progress: Callable[[int, int], Any] | None) -> None:
        """Re-protect every PEG with a PEX on a device that is not online (module docs).

        Only the replacements that were REBUILDING when it started become ONLINE, and
        only while they still hold the device they held then and every PEX a PEG keeps
        on them was rebuilt by this run: a device failed and replaced meanwhile (its
        PEXes never rebuilt) stays REBUILDING for the next rebuild."""
        pool = self.pool
        with pool._lock:
            gone = {m.index for m in pool._members if m.state is not DeviceState.ONLINE}
            todo = [p for p in self.pegs.values() if any(d in gone for d, _ in p.members)]
            targets = {
                m.index: m.device for m in pool._members if m.state is DeviceState.REBUILDING
            }
        rebuilt: set[tuple[int, int]] = set()  # (device, PEX) written by this run
        since = 0
        for i, peg in enumerate(todo):
            with pool._lock:
                pool._check_open()
                self._rebuilding = True
                try:
                    for idx, (d, _x) in enumerate(list(peg.members)):
                        if d in gone and peg.id in self.pegs:
                            self._rebuild_member(peg, idx, gone)
                            if peg.id in self.pegs:  # not re-appended to a narrower PEG
                                rebuilt.add(peg.members[idx])
                            since += self.lay.pex_size
                finally:
                    self._rebuilding = False
                # A checkpoint (devices, then the map) every CHECKPOINT_BYTES, not every
                # PEG: until it, the saved map still names the lost members, so a crash
                # only rebuilds those PEGs again (their new PEXes are free in it).
                if since >= CHECKPOINT_BYTES or i == len(todo) - 1:
                    pool.sync()
                    since = 0
            if progress is not None:
                progress(i + 1, len(todo))
        with pool._lock:
            for m in pool._members:
                if (
                    m.state is DeviceState.REBUILDING
                    and m.index in targets
                    and m.device is targets[m.index]
                    and all(
                        (d, x) in rebuilt
                        for p in self.pegs.values()
                        for d, x in p.members
                        if d == m.index
                    )
                ):
                    m.state, m.reason, m.rebuilt_rows = DeviceState.ONLINE, "", 0
            pool._commit_membership()

    def _rebuild_member(self, peg: Peg, idx: int, gone: set[int]) -> None:
        lost_dev, lost_pex = peg.members[idx]
        inside = {d for d, _ in peg.members}
        # a blank replacement in the slot: the PEX is rebuilt where it was, so the
        # layout is the one a pool that never failed has (no reserve used)
        if self.pool._members[lost_dev].state is DeviceState.REBUILDING and self._rebuild_into(
            peg, idx, (lost_dev, lost_pex), gone
        ):
            return
        while True:  # a target whose write fails is marked failed: try the next one
            free = self.free_pexes()
            cands = [d for d, f in enumerate(free) if f and d not in inside and d not in gone]
            if not cands and peg.kind == "parity":
                # no device outside a full-width PEG: re-append its live RBs to a narrower one
                live = sorted(self.slot_rb[peg.id].values())
                if self._append(live) < len(live):
                    raise NoSpaceError(
                        f"pool {self.pool._path}: no room to move PEG {peg.id} off a lost device"
                    )
                del self.pegs[peg.id]
                del self.slot_rb[peg.id]
                return
            if not cands:
                raise NoSpaceError(
                    f"pool {self.pool._path}: no free PEX outside PEG {peg.id} to rebuild into"
                )
            e = max(cands, key=lambda d: (len(free[d]), -d))
            if self._rebuild_into(peg, idx, (e, free[e][0]), gone):
                return

    def _rebuild_into(self, peg: Peg, idx: int, target: tuple[int, int], gone: set[int]) -> bool:
        """Reconstruct member ``idx`` of ``peg`` into PEX ``target`` and make it the member;
        False (the PEG unchanged) when a write to the target failed."""
        inside = {d for d, _ in peg.members}
        ok = True
        if peg.kind == "mirror":
            for slot in sorted(self.slot_rb[peg.id]):
                got = self.read_rb(self.slot_rb[peg.id][slot])
                if got is None:
                    raise DataLossError(
                        f"pool {self.pool._path}: mirror PEG {peg.id} lost both copies",
                        failed=sorted(gone & inside),
                    )
                ok = ok and self._write(target[0], target[1], slot * self.rb, got)
        else:
            lost_dev = peg.members[idx][0]
            for s in range(peg.filled):
                sm, bufs, _e, lost = self._stripe(peg, s)
                j = next(j for j, m in enumerate(sm.members) if m.device == lost_dev)
                if j in lost:
                    raise DataLossError(
                        f"pool {self.pool._path}: parity PEG {peg.id} stripe {s} is lost",
                        failed=sorted(gone & inside),
                    )
                ok = ok and self._write(target[0], target[1], sm.members[j].device_offset, bufs[j])
        if ok:
            peg.members[idx] = target
        return ok

    def scrub(self, repair: bool, progress: Callable[[int, int], Any] | None) -> ScrubReport:
        """Check every live mirror slot (both copies) and every written parity stripe;
        a mismatch names the PEG (as ``stripe``), the device, and in ``how`` the slots
        or stripes inside the PEG.  Members on devices that are not online (failed,
        missing, or a replacement still rebuilding) are not checked: they are the
        rebuild's to restore, not mismatches."""
        report = ScrubReport()
        members = self.pool._members

        def offline(d: int) -> bool:
            mem = members[d]
            return mem.device is None or mem.sb is None or mem.state is not DeviceState.ONLINE

        # (PEG, device, kind) -> (repaired, how, slot or stripe inside the PEG) per block
        found: dict[tuple[int, int, str], list[tuple[bool, str, str]]] = {}
        with self.pool._lock:
            pegs = list(self.pegs.values())
            for n, peg in enumerate(pegs):
                if peg.kind == "mirror":
                    for slot in sorted(self.slot_rb[peg.id]):
                        copies = [self._read(d, x, slot * self.rb, self.rb) for d, x in peg.members]
                        report.rows_checked += self.rb // self.b
                        report.bytes_checked += 2 * self.rb
                        good = next((c for c in copies if c is not None), None)
                        for (d, x), c in zip(peg.members, copies, strict=True):
                            if c is not None or offline(d):
                                continue
                            if good is None:  # no copy left to repair from: reported lost
                                found.setdefault((peg.id, d, "checksum"), []).append(
                                    (False, "not repaired (no good copy)", f"slot {slot}")
                                )
                                continue
                            ok = repair and self._write(d, x, slot * self.rb, good)
                            how = "rewrote copy" if ok else "not repaired"
                            found.setdefault((peg.id, d, "checksum"), []).append(
                                (ok, how, f"slot {slot}")
                            )
                else:
                    pex_of = dict(peg.members)
                    for s in range(peg.filled):
                        sm, bufs, erased, lost = self._stripe(peg, s)
                        report.rows_checked += self.rb // self.b
                        report.bytes_checked += len(peg.members) * self.rb
                        for j in sorted(erased):
                            m = sm.members[j]
                            if offline(m.device):
                                continue
                            ok = (
                                j not in lost
                                and repair
                                and self._write(
                                    m.device, pex_of[m.device], m.device_offset, bufs[j]
                                )
                            )
                            how = "rewrote block from redundancy" if ok else "not repaired"
                            found.setdefault((peg.id, m.device, "checksum"), []).append(
                                (ok, how, f"stripe {s}")
                            )
                        if not erased:
                            for j in codec.mismatched_rows(sm, bufs, self.b):
                                m = sm.members[j]
                                fresh = [x.copy() for x in bufs]
                                codec.encode(sm, fresh)
                                ok = repair and self._write(
                                    m.device, pex_of[m.device], m.device_offset, fresh[j]
                                )
                                found.setdefault((peg.id, m.device, "parity"), []).append(
                                    (
                                        bool(ok),
                                        "rewrote parity" if ok else "not repaired",
                                        f"stripe {s}",
                                    )
                                )
                if progress is not None:
                    progress(n + 1, len(pegs))
        report.stripes_checked = len(pegs)
        # one Mismatch per (PEG, device, kind): ``stripe`` is the PEG id, ``how`` ends with
        # the slots (mirror) or stripes (parity) inside the PEG
        for (peg_id, dev, kind), outcomes in sorted(found.items()):
            ok = all(o for o, _, _ in outcomes)
            how = "; ".join(sorted({h for _, h, _ in outcomes}))
            where = ", ".join(w for _, _, w in outcomes)
            report.mismatches.append(Mismatch(peg_id, dev, kind, ok, f"{how} at {where}"))
        return report


class AdaptivePool(Pool):
    """An Adaptive pool: RBs mirrored when hot, in RAID 5 when cold (module docs)."""

    _SHARED_IO = False  # its own data path: every request holds the pool lock

    layout: Adaptive

    def __init__(
        self,
        path: str,
        manifest: Any,
        layout: Any,
        members: list[Any],
        alloc: Any,
    ) -> None:
        assert isinstance(layout, Adaptive)
        if "map_log" not in manifest.layout:
            # made before the map log: its map is adaptive.json, every PEX for PEGs
            layout = layout.with_map_log(0)
            manifest.layout = layout.params
        super().__init__(path, manifest, layout, members, alloc)
        self._heat = HeatEngine(self)
        self._engine = self._heat  # type: ignore[assignment]

    @classmethod
    def _device_sizes(
        cls,
        layout: Any,
        specs: Sequence[DeviceSpec],
        device_size: int | None,
        block_size: int,
    ) -> tuple[Any, list[int]]:
        """``device_size`` on every device, or (``None``) each existing device's own size:
        the layout then lists every device's data area (``sizes``), cut into its own
        number of PEXes."""
        assert isinstance(layout, Adaptive)
        if device_size is not None:
            layout, sizes = super()._device_sizes(layout, specs, device_size, block_size)
            return cls._with_map_log(
                layout, _Geometry(layout, block_size, device_size).usable
            ), sizes
        sizes: list[int] = []
        for i, spec in enumerate(specs):
            size = _existing_size(spec, i)
            if size is None:
                raise InvalidArgumentError(
                    f"device {i} ({spec}) does not exist yet: give device_size, or devices "
                    f"that exist (their own sizes are used)"
                )
            if not MIN_DEVICE_SIZE <= size <= MAX_DEVICE_SIZE:
                raise InvalidArgumentError(
                    f"device {i} ({spec}) has {size} bytes; a member has "
                    f"{MIN_DEVICE_SIZE}..{MAX_DEVICE_SIZE}"
                )
            sizes.append(size)
        usable = [_Geometry(layout, block_size, size).usable for size in sizes]
        return cls._with_map_log(layout.with_sizes(usable), max(usable)), sizes

    @staticmethod
    def _with_map_log(layout: Adaptive, usable: int) -> Adaptive:
        """``layout`` with its map log sized for the largest map (module docs).

        A ``map_log`` given explicitly must hold two such records (0, the file of pools
        made before the log, is not made any more); refused too when a device would
        keep no PEX for data, or the map's 32-bit RB and PEX numbers would not do."""
        totals = layout.total_pexes(usable)
        need = layout.with_map_log(None).map_log_pexes(totals)
        log = layout.map_log_pexes(totals)
        if log < need:
            raise InvalidArgumentError(
                f"RAID ADAPTIVE: map_log={log} PEXes cannot hold two records of the largest "
                f"map these devices can hold; it needs {need} (leave map_log unset)"
            )
        if max(totals) >= 1 << 32 or layout.capacity_rbs(totals) >= 1 << 32:
            raise InvalidArgumentError(
                f"RAID ADAPTIVE: {max(totals)} PEXes per device, "
                f"{layout.capacity_rbs(totals)} RBs: more than the map numbers (2^32); use a "
                f"larger pex_size and chunk_size"
            )
        if min(totals) <= log:
            raise InvalidArgumentError(
                f"RAID ADAPTIVE: a device of {min(totals)} PEXes ({layout.pex_size} bytes) "
                f"cannot hold the map log's {log} PEXes and data; use larger devices or a "
                f"smaller pex_size"
            )
        return layout.with_map_log(log)

    _table_off = Pool._sized_table_off

    def _replacement_size(self, i: int, spec: DeviceSpec) -> int:
        """A replacement holds at least the PEXes device ``i`` contributed (mixed sizes: not
        necessarily the largest device's size); an existing device keeps its own size,
        a new file gets the pool's device size (equal devices) or the smallest size that
        holds those PEXes."""
        if self.layout.sizes is None or not isinstance(spec, (Device, str, os.PathLike)):
            return self._manifest.device_size  # equal devices (or a spec Pool refuses)
        want = (self._heat.pexes[i] + self._heat.log_pexes) * self.layout.pex_size
        real = _existing_size(spec, i)
        if real is None:
            size = max(MIN_DEVICE_SIZE, -(-want // METADATA_SIZE) * METADATA_SIZE)
            while _Geometry(self.layout, self._block, size).usable < want:
                size += METADATA_SIZE
            return size
        have = _Geometry(self.layout, self._block, real).usable if real >= MIN_DEVICE_SIZE else 0
        if have < want:
            raise InvalidArgumentError(
                f"device {i}: the replacement ({spec}) has {real} bytes, a data area of {have} "
                f"bytes, less than the {want} bytes ({self._heat.pexes[i]} PEXes) device {i} "
                f"contributes"
            )
        return real

    def replace_device(
        self, i: int, path_or_device: DeviceSpec | None = None, *, force: bool = False
    ) -> None:
        """:meth:`Pool.replace_device`; map records the device may hold are erased."""
        with self._lock:
            super().replace_device(i, path_or_device, force=force)
            self._heat.forget_device(i)

    @property
    def heat(self) -> HeatEngine:
        """The map and the policy (``classes()``, ``decayed()``, ``clock``)."""
        return self._heat

    def tick(self, idle: bool = True) -> dict[str, int]:
        """Run one migration policy step (demotion, cleaning); returns what it did."""
        with self._lock:
            self._check_open()
            return self._heat.tick(idle)

    def free(self, ext: Extent) -> None:
        """Release ``ext`` (its space is reused once the next :meth:`sync` saved the map)."""
        self._check_extent(ext)
        with self._lock:
            self._check_open()
            self._heat.free(ext)

    def survives(self, failed: set[int] | frozenset[int]) -> bool:
        """The exact predicate for the current map (``layout.survives``: any one device)."""
        with self._lock:
            return self._heat.survives(set(failed))
