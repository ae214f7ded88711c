"""The data path of unstriped volume levels (RAID S, Unraid) inside a :class:`Pool`.

Geometry: the layout (:class:`dwcore.raid.volumes.VolumeLayout`) cuts the
devices' data areas into *volumes* (one linear span of one device each) and
*parity groups* (volumes whose byte x, with the group's parity span(s) at
byte x, form one ``xor`` or ``pq-md`` codeword; a volume shorter than its
group counts as zeros).  Every block of every device keeps its CRC-32C in the
device's checksum table, as in the row engine.

Allocation: one allocator block per volume block, volume after volume; the
last block of every volume is kept allocated as a guard, so no extent ever
crosses into the next volume.  A new extent goes to a volume on a writable
device chosen by the layout's ``fill`` policy (``most-free`` by default,
``fill-up``): the extent is wholly on one device.  The :class:`Extent`
names its first allocator block, its block count and its length.

Writes update parity in place by delta: read the old data (reconstructed
if unreadable), ``Δ = old ⊕ new``, write the new data, then ``P ^= Δ`` and
``Q ^= g^slot·Δ`` on the parity devices (the drive-side XOR of RAID S, the
read-modify-write of Unraid).  When the old data or a parity block cannot be
read, the group's rows are recomputed from every data member instead
("reconstruct write").  Before any of that the touched regions of the
volume are marked in the write-intent log (:mod:`dwcore.pool.intent_log`,
``intent.bin`` in the pool directory); the marks are cleared after the next
``sync``.  On open, every region still marked is resynced: parity
recomputed from the data, and the written volume's blocks given checksums
matching what a torn write left (no acknowledged extent lives there).  A
region whose group has a data device missing at that point cannot be
resynced (the classic write hole): it stays marked and the pool warns.

Reads touch only the extent's device when its blocks verify; otherwise the
rows are reconstructed from the group (and bad blocks rewritten).  Beyond
the group's tolerance only the extents on the failed devices raise
:class:`~dwcore.errors.DataLossError`; every other extent still reads from
its own device.  Rebuild writes every byte of the replacement's spans (the
parity covers unallocated bytes too), resumable from the checkpoint in the
replacement's superblock.

New devices must read as zeros, as Unraid clears a new disk: :meth:`Pool.create`
zeroes whatever is not zero on the disks and the devices it is given (files it
creates are sparse), and a rebuild writes every byte of the replacement.  A
block whose checksum entry is 0 and whose bytes are all zero is taken as never
written.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from dwcore import ec
from dwcore._native import ec_encode, gf_exp, init_tables
from dwcore.checksum import verify_blocks
from dwcore.devices import DeviceError
from dwcore.devices.base import byte_view
from dwcore.errors import DataLossError, InvalidArgumentError, NoSpaceError
from dwcore.pool.extent import Extent
from dwcore.pool.intent_log import INTENT_NAME, IntentLog
from dwcore.pool.placement import bitmap_diff
from dwcore.pool.status import DeviceState, Mismatch, ScrubReport
from dwcore.raid import Codec
from dwcore.raid.volumes import ParityGroup, Span, VolumeLayout

__all__ = ["VolumeEngine", "volume_alloc_blocks"]

#: Write-intent region (bytes of one volume per bit), at least.
MIN_REGION = 64 << 10
#: Blocks one rebuild / scrub / resync step handles.
STEP_BLOCKS = 256
#: Bytes of replacement written between two rebuild checkpoints.
CHECKPOINT_BYTES = 64 << 20


def volume_alloc_blocks(layout: Any, usable: int, block: int) -> int:
    """Allocator blocks of a volume layout: every block of every volume."""
    return sum(v.length // block for v in layout.volumes(usable))


@functools.lru_cache(maxsize=512)
def _delta_tables(slot: int, nparity: int) -> bytes:
    """Kernel tables turning ``[P, Q, old, new]`` into ``[P ^ old ^ new, Q ^ g^slot·(old ^ new)]``
    (or ``[P, old, new]`` into the new P): the whole read-modify-write in one pass."""
    if nparity == 1:
        return init_tables(bytes([1, 1, 1]), 3, 1)
    c = gf_exp(slot)
    return init_tables(bytes([1, 0, 1, 1, 0, 1, c, c]), 4, 2)


class _Rows:
    """One group's members over ``n`` blocks at group offset ``x``, after decoding."""

    def __init__(self, n: int) -> None:
        self.bufs: list[np.ndarray] = []
        #: member -> rows that could not be recovered
        self.lost: dict[int, set[int]] = {}
        #: member -> rows whose checksum failed (repaired unless lost)
        self.bad: dict[int, set[int]] = {}
        #: members whose device could not be read
        self.erased: set[int] = set()
        self.events: list[tuple[int, str, bool, str]] = []
        self.n = n


def _nonzero_rows(buf: np.ndarray, n: int, b: int, rows: np.ndarray) -> np.ndarray:
    """Whether each of ``rows`` (blocks of ``b`` bytes in ``buf``) holds a nonzero byte.
    A never-written span is all zeros and all "bad" (its checksum entries are 0):
    there the max of 64-bit words over every block, without copying, is 4x faster
    than gathering the rows (a rebuild reads whole devices like that)."""
    if len(rows) * 8 < n:
        return np.asarray(buf.reshape(n, b)[rows].any(axis=1))
    words = buf.view(np.uint64).reshape(n, b // 8)
    return np.asarray(words.max(axis=1)[rows] != 0)


class VolumeEngine:
    """Volumes, parity groups, allocation and repair for one pool (module documentation)."""

    def __init__(self, pool: Any) -> None:
        lay = pool.layout
        assert isinstance(lay, VolumeLayout)
        self.pool = pool
        self.layout = lay
        self.b = pool._block
        usable = pool._geo.usable
        self.vols: list[Span] = lay.volumes(usable)
        self.groups: list[ParityGroup] = lay.parity_groups(usable)
        self.where: dict[int, tuple[int, int]] = {}
        for gi, g in enumerate(self.groups):
            for slot, vi in enumerate(g.volumes):
                self.where[vi] = (gi, slot)
        self.starts: list[int] = []
        pos = 0
        for span in self.vols:
            self.starts.append(pos)
            pos += span.length // self.b
        self.total = pos
        longest = max((v.length for v in self.vols), default=0)
        region = MIN_REGION
        while longest // region > 1 << 16:
            region *= 2
        self.region = region
        self.bit0: list[int] = []
        bits = 0
        for span in self.vols:
            self.bit0.append(bits)
            bits += -(-span.length // region)
        self.intent = IntentLog(os.path.join(pool._path, INTENT_NAME), max(bits, 1), region)
        self.fill = getattr(lay, "fill", "most-free")
        self._cursor: dict[int, int] = {}
        self.write_mode = getattr(lay, "write_mode", "rmw")
        for i, span in enumerate(self.vols):
            nb = span.length // self.b
            if nb and not pool._alloc.is_allocated(self.starts[i] + nb - 1):
                pool._alloc.mark_allocated(self.starts[i] + nb - 1)
        self._replay()

    # ------------------------------------------------------------------
    # low-level block I/O
    # ------------------------------------------------------------------

    def _member(self, dev: int) -> Any:
        return self.pool._members[dev]

    def _readable(self, dev: int, off: int, n: int) -> bool:
        mem = self._member(dev)
        return mem.device is not None and mem.sb is not None and mem.readable(off // self.b + n)

    def _read(self, dev: int, off: int, n: int) -> tuple[np.ndarray, set[int]] | None:
        """``n`` blocks at data-area offset ``off`` of ``dev`` and the rows failing their
        checksum, or None when the device cannot be read there."""
        if not self._readable(dev, off, n):
            return None
        b = self.b
        buf = np.empty(n * b, dtype=np.uint8)
        crcs = self.pool._read_blocks(dev, off // b, buf)
        if crcs is None:
            return None
        bad = {int(i) for i in verify_blocks(buf, b, crcs)}
        if bad:
            rows = np.fromiter(sorted(bad), dtype=np.int64)
            fresh = (crcs[rows] == 0) & ~_nonzero_rows(buf, n, b, rows)
            bad = {int(i) for i in rows[~fresh]}
        return buf, bad

    def _write(self, dev: int, off: int, buf: np.ndarray) -> bool:
        """Write blocks and their checksum entries; False (device marked failed) on error."""
        return bool(self.pool._write_blocks(dev, off // self.b, buf))

    # ------------------------------------------------------------------
    # group decoding
    # ------------------------------------------------------------------

    def _spans(self, g: ParityGroup, x: int, n: int) -> list[tuple[int, int, int]]:
        """``(device, offset, valid rows)`` of each member (data slots, then parity)."""
        b = self.b
        out = []
        for v in g.volumes:
            vol = self.vols[v]
            valid = max(0, min(n, (vol.length - x) // b))
            out.append((vol.device, vol.offset + x, valid))
        for p in g.parity:
            out.append((p.device, p.offset + x, n))
        return out

    def _encode(self, g: ParityGroup, bufs: list[np.ndarray]) -> None:
        k = len(g.volumes)
        if g.codec is Codec.XOR:
            ec.xor_parity_into(bufs[:k], bufs[k])
        else:
            ec.pq_parity_into(bufs[:k], bufs[k], bufs[k + 1], order="md")

    def _decode(
        self,
        gi: int,
        x: int,
        n: int,
        *,
        skip: frozenset[int] = frozenset(),
        repair: bool = True,
    ) -> _Rows:
        """Load every member of group ``gi`` over ``n`` blocks at ``x``, reconstruct what is
        erased or fails its checksum, and rewrite the bad blocks that could be rebuilt."""
        g = self.groups[gi]
        b = self.b
        m = len(g.parity)
        out = _Rows(n)
        spans = self._spans(g, x, n)
        rows_erased: list[set[int]] = [set() for _ in range(n)]
        for j, (dev, off, valid) in enumerate(spans):
            buf = np.zeros(n * b, dtype=np.uint8)
            out.bufs.append(buf)
            if valid == 0:
                continue
            got = None if dev in skip else self._read(dev, off, valid)
            if got is None:
                out.erased.add(j)
                for i in range(valid):
                    rows_erased[i].add(j)
                continue
            data, bad = got
            buf[: valid * b] = data
            if bad:
                out.bad[j] = bad
                for i in bad:
                    rows_erased[i].add(j)
        saved = {
            j: {i: bytes(out.bufs[j][i * b : (i + 1) * b]) for i in r} for j, r in out.bad.items()
        }
        i = 0
        while i < n:
            e = rows_erased[i]
            stop = i + 1
            while stop < n and rows_erased[stop] == e:
                stop += 1
            if e:
                views = [buf[i * b : stop * b] for buf in out.bufs]
                if len(e) > m:
                    for j in e:
                        out.lost.setdefault(j, set()).update(range(i, stop))
                elif g.codec is Codec.XOR:
                    ec.xor_recover_into(views, sorted(e))
                else:
                    ec.pq_recover_into(views, sorted(e), order="md")
            i = stop
        for j, rows in out.bad.items():
            dev, off, _valid = spans[j]
            for i in sorted(rows):
                if i in out.lost.get(j, ()):
                    out.events.append((j, "checksum", False, "cannot reconstruct: too many bad"))
                    continue
                if not repair:
                    out.events.append((j, "checksum", False, "not repaired (repair=False)"))
                    continue
                block = out.bufs[j][i * b : (i + 1) * b]
                if self._write(dev, off + i * b, block):
                    how = (
                        "rewrote block from redundancy"
                        if bytes(block) != saved[j][i]
                        else "rewrote checksum entry"
                    )
                    out.events.append((j, "checksum", True, how))
                else:
                    out.events.append((j, "checksum", False, "rewrite failed"))
        return out

    def _failed_devices(self, g: ParityGroup, rows: _Rows | None = None) -> list[int]:
        """The group's devices to blame: those erased or corrupt in ``rows``, else those
        not ONLINE."""
        spans = self._spans(g, 0, 1)
        if rows is not None:
            hit = {spans[j][0] for j in rows.erased | set(rows.bad)}
            if hit:
                return sorted(hit)
        devs = {dev for dev, _off, _valid in spans}
        down = sorted(d for d in devs if self._member(d).state is not DeviceState.ONLINE)
        return down or sorted(devs)

    # ------------------------------------------------------------------
    # extents
    # ------------------------------------------------------------------

    def _locate(self, block: int) -> tuple[int, int]:
        """``(volume, block inside it)`` of allocator block ``block``."""
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= block:
                lo = mid
            else:
                hi = mid - 1
        return lo, block - self.starts[lo]

    def check_extent(self, ext: Extent) -> None:
        if ext.rows == 0:
            return
        if ext.first_row + ext.rows > self.total or ext.length > ext.rows * self.b:
            raise InvalidArgumentError(f"extent {ext!r} does not fit this pool")
        v, a = self._locate(ext.first_row)
        if a + ext.rows > self.vols[v].length // self.b - 1:
            raise InvalidArgumentError(f"extent {ext!r} crosses a volume boundary")

    def volume_of(self, ext: Extent) -> int:
        """The volume holding ``ext``."""
        return self._locate(ext.first_row)[0]

    def _order(self) -> list[int]:
        """Volumes to try for a new extent, by the fill policy."""
        alloc = self.pool._alloc
        cands = []
        for v, vol in enumerate(self.vols):
            if not self._member(vol.device).writable:
                continue
            nb = vol.length // self.b
            if nb < 2:
                continue
            free = nb - alloc.count_allocated(self.starts[v], nb)
            cands.append((v, free))
        if self.fill == "fill-up":
            return [v for v, f in cands if f > 0]
        return [v for v, f in sorted(cands, key=lambda t: (-t[1], t[0])) if f > 0]

    def _alloc_in(self, v: int, n: int) -> int | None:
        """Allocate ``n`` blocks inside volume ``v`` (None when it has no such run)."""
        alloc = self.pool._alloc
        start, nb = self.starts[v], self.vols[v].length // self.b
        hint = self._cursor.get(v, start)
        for attempt in range(2):
            try:
                first = int(alloc.alloc(n, hint=hint))
            except NoSpaceError:
                return None
            if start <= first and first + n <= start + nb:
                self._cursor[v] = first + n
                return first
            alloc.free(first, n)
            if attempt:
                return None
            bits = np.unpackbits(np.frombuffer(alloc.bitmap(), dtype=np.uint8), bitorder="little")
            free = np.concatenate(([0], (bits[start : start + nb - 1] == 0).astype(np.int8), [0]))
            edges = np.diff(free)
            runs = np.nonzero(edges == 1)[0]
            ends = np.nonzero(edges == -1)[0]
            fit = np.nonzero(ends - runs >= n)[0]
            if not len(fit):
                return None
            hint = start + int(runs[fit[0]])
        return None

    def write(self, data: Any) -> Extent:
        view = byte_view(data)
        length = view.nbytes
        b = self.b
        n = -(-length // b)
        pool = self.pool
        if n == 0:
            return Extent(pool._tag, 0, 0, 0)
        src = np.frombuffer(view, dtype=np.uint8)
        new = np.zeros(n * b, dtype=np.uint8)
        new[:length] = src
        tried: set[int] = set()
        last: Exception | None = None
        while True:
            order = [v for v in self._order() if v not in tried]
            if not order:
                if last is not None:
                    raise last
                raise NoSpaceError(
                    f"pool {pool._path}: no volume on a writable device has {n} free blocks"
                )
            first = None
            for v in order:
                tried.add(v)
                first = self._alloc_in(v, n)
                if first is not None:
                    break
            if first is None:
                continue
            try:
                self._store(first, new)
            except DataLossError as exc:
                pool._alloc.free(first, n)
                last = exc
                continue
            except BaseException:
                pool._alloc.free(first, n)
                raise
            return Extent(pool._tag, first, n, length)

    def _store(self, first: int, new: np.ndarray) -> None:
        """Write ``new`` at allocator block ``first`` and update parity (read-modify-write)."""
        b = self.b
        n = len(new) // b
        v, a = self._locate(first)
        vol = self.vols[v]
        gi, slot = self.where[v]
        g = self.groups[gi]
        x = a * b
        lo, hi = x // self.region, (x + n * b - 1) // self.region
        self.intent.mark([self.bit0[v] + r for r in range(lo, hi + 1)])
        k = len(g.volumes)
        old = self._read(vol.device, vol.offset + x, n)
        pars = [self._read(p.device, p.offset + x, n) for p in g.parity]
        fast = old is not None and not old[1] and self.write_mode == "rmw"
        fast = fast and all(
            got is not None and not got[1]
            for got, p in zip(pars, g.parity, strict=True)
            if self._member(p.device).writable
        )
        if fast:
            assert old is not None
            live = [
                j
                for j, (got, p) in enumerate(zip(pars, g.parity, strict=True))
                if got is not None and self._member(p.device).writable
            ]
            updated: list[np.ndarray] = []
            if live:
                m = len(g.parity)
                ins = [got[0] for got in pars if got is not None] if len(live) == m else []
                if len(live) == m:
                    outs = [np.empty(n * b, dtype=np.uint8) for _ in range(m)]
                    ec_encode(_delta_tables(slot, m), m + 2, m, [*ins, old[0], new], outs)
                    updated = outs
                else:  # one of two parity devices down: update the other alone
                    j = live[0]
                    got = pars[j]
                    assert got is not None
                    out = np.empty(n * b, dtype=np.uint8)
                    if j == 0:
                        ec.xor_parity_into([got[0], old[0], new], out)
                    else:
                        tables = _delta_tables(slot, 2)
                        pq = [np.empty(n * b, dtype=np.uint8) for _ in range(2)]
                        zero = np.zeros(n * b, dtype=np.uint8)
                        ec_encode(tables, 4, 2, [zero, got[0], old[0], new], pq)
                        out = pq[1]
                    updated = [out]
            if not self._write(vol.device, vol.offset + x, new):
                raise DataLossError(
                    f"pool {self.pool._path}: cannot write volume {v}: device {vol.device} failed",
                    failed=[vol.device],
                )
            for j, buf in zip(live, updated, strict=True):
                p = g.parity[j]
                self._write(p.device, p.offset + x, buf)
            return
        # reconstruct write: every data member of the rows, the new data in its slot
        rows = self._decode(gi, x, n)
        others = {j for j in rows.lost if j < k and j != slot}
        if others:
            failed = self._failed_devices(g, rows)
            raise DataLossError(
                f"pool {self.pool._path}: cannot update the parity of volume {v}: the group "
                f"lost data on devices {failed}",
                failed=failed,
            )
        bufs = rows.bufs
        bufs[slot][:] = new
        self._encode(g, bufs)
        if not self._write(vol.device, vol.offset + x, new):
            raise DataLossError(
                f"pool {self.pool._path}: cannot write volume {v}: device {vol.device} failed",
                failed=[vol.device],
            )
        for j, p in enumerate(g.parity):
            self._write(p.device, p.offset + x, bufs[k + j])

    def read(self, ext: Extent, offset: int, length: int) -> bytes:
        b = self.b
        v, a = self._locate(ext.first_row)
        vol = self.vols[v]
        r0, r1 = offset // b, -(-(offset + length) // b)
        n = r1 - r0
        x = (a + r0) * b
        got = self._read(vol.device, vol.offset + x, n)
        if got is not None and not got[1]:
            buf = got[0]
        else:
            gi, slot = self.where[v]
            rows = self._decode(gi, x, n)
            lost = rows.lost.get(slot)
            if lost:
                g = self.groups[gi]
                failed = self._failed_devices(g, rows)
                lo = max(offset, (r0 + min(lost)) * b)
                hi = min(offset + length, (r0 + max(lost) + 1) * b)
                err = DataLossError(
                    f"pool {self.pool._path}: extent {ext!r} (volume {v} on device "
                    f"{vol.device}): bytes [{lo}, {hi}) are lost: devices {failed} are failed, "
                    f"missing or corrupt beyond what RAID {self.layout.level} tolerates",
                    failed=failed,
                )
                err.lost_range = (lo, hi)  # type: ignore[attr-defined]
                raise err
            buf = rows.bufs[slot]
        s = offset - r0 * b
        return bytes(buf[s : s + length])

    def physical(self, ext: Extent) -> list[tuple[int, int, int]]:
        """The extent's run on its volume's device and the parity runs at the same offsets."""
        if not ext.rows:
            return []
        v, a = self._locate(ext.first_row)
        vol = self.vols[v]
        x, n = a * self.b, ext.rows * self.b
        g = self.groups[self.where[v][0]]
        return [(vol.device, vol.offset + x, n)] + [(p.device, p.offset + x, n) for p in g.parity]

    def free(self, ext: Extent) -> None:
        if ext.rows:
            self.pool._alloc.free(ext.first_row, ext.rows)

    def _guards(self) -> list[tuple[int, int]]:
        """The last block of every volume, kept allocated (see the allocator's sizing)."""
        return [
            (self.starts[i] + v.length // self.b - 1, 1)
            for i, v in enumerate(self.vols)
            if v.length // self.b
        ]

    def reconcile(self, used: list[tuple[int, int]]) -> int:
        return sum(n for _, n in self.pool._alloc.reconcile(used + self._guards()))

    def check(self, used: list[tuple[int, int]]) -> tuple[int, int]:
        alloc = self.pool._alloc
        return bitmap_diff(alloc.bitmap(), alloc.nblocks, used + self._guards())

    # ------------------------------------------------------------------
    # intent log
    # ------------------------------------------------------------------

    def after_sync(self) -> None:
        self.intent.clear()

    def _replay(self) -> None:
        """Resync every region the write-intent log still marks (module documentation)."""
        dirty = self.intent.dirty()
        if not dirty:
            return
        b = self.b
        done: list[int] = []
        stuck: list[int] = []
        for bit in dirty:
            v = max(i for i, s in enumerate(self.bit0) if s <= bit)
            vol = self.vols[v]
            x0 = (bit - self.bit0[v]) * self.region
            n = min(self.region, vol.length - x0) // b
            gi, slot = self.where[v]
            g = self.groups[gi]
            k = len(g.volumes)
            spans = self._spans(g, x0, n)
            bufs: list[np.ndarray] = []
            skip_rows: set[int] = set()
            ok = True
            for j, (dev, off, valid) in enumerate(spans[:k]):
                buf = np.zeros(n * b, dtype=np.uint8)
                bufs.append(buf)
                if valid == 0:
                    continue
                got = self._read(dev, off, valid)
                if got is None:
                    ok = False
                    break
                buf[: valid * b] = got[0]
                if got[1] and j == slot:
                    self._write(dev, off, got[0])  # torn, unacknowledged: take it as it is
                elif got[1]:
                    skip_rows |= got[1]
            if not ok:
                stuck.append(bit)
                continue
            par = [np.empty(n * b, dtype=np.uint8) for _ in g.parity]
            self._encode(g, bufs + par)
            for j, (dev, off, _valid) in enumerate(spans[k:]):
                if not self._member(dev).writable:
                    continue
                for i in range(n):
                    if i in skip_rows:
                        continue
                    self._write(dev, off + i * b, par[j][i * b : (i + 1) * b])
            done.append(bit)
        for dev in {m.index for m in self.pool._members if m.writable}:
            try:
                self._member(dev).device.sync()
            except DeviceError as exc:
                self.pool._mark_failed(dev, f"sync failed: {exc}")
        self.intent.clear(done)
        if stuck:
            warnings.warn(
                f"pool {self.pool._path}: {len(stuck)} write-intent regions cannot be resynced "
                f"while data devices are missing (parity there may be stale)",
                RuntimeWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------
    # rebuild, scrub, status
    # ------------------------------------------------------------------

    def _device_spans(self, dev: int) -> list[tuple[int, int, int]]:
        """``(device offset, group, group offset)`` runs of ``dev``'s spans, by offset."""
        out = []
        for gi, g in enumerate(self.groups):
            for v in g.volumes:
                vol = self.vols[v]
                if vol.device == dev and vol.length:
                    out.append((vol.offset, gi, vol.length))
            for p in g.parity:
                if p.device == dev and p.length:
                    out.append((p.offset, gi, p.length))
        return sorted(out)

    def rebuild(self, progress: Callable[[int, int], Any] | None) -> None:
        pool = self.pool
        b = self.b
        with pool._lock:
            pool._check_open()
            targets = [m for m in pool._members if m.state is DeviceState.REBUILDING]
            if not targets:
                return
            work = {m.index: self._device_spans(m.index) for m in targets}
            total = sum(length for spans in work.values() for _o, _g, length in spans)
        done = since = 0
        if progress is not None:
            progress(0, total)
        tdev = frozenset(work)
        for t in sorted(work):
            mem = pool._members[t]
            for off, gi, length in work[t]:
                for x in range(0, length, STEP_BLOCKS * b):
                    n = min(STEP_BLOCKS, (length - x) // b)
                    with pool._lock:
                        pool._check_open()
                        if mem.state is not DeviceState.REBUILDING:
                            raise InvalidArgumentError("device states changed during rebuild")
                        if (off + x) // b + n > mem.rebuilt_rows:
                            self._rebuild_rows(t, gi, x, n, tdev)
                            mem.rebuilt_rows = (off + x) // b + n
                        done += n * b
                        since += n * b
                        if since >= CHECKPOINT_BYTES:
                            since = 0
                            pool._checkpoint([mem])
                    if progress is not None:
                        progress(min(done, total), total)
        if progress is not None and done != total:
            progress(total, total)
        with pool._lock:
            for m in targets:
                m.state, m.reason, m.rebuilt_rows = DeviceState.ONLINE, "", 0
                if m.device is not None:
                    m.device.sync()
            pool._commit_membership()

    def _rebuild_rows(self, t: int, gi: int, x: int, n: int, tdev: frozenset[int]) -> None:
        g = self.groups[gi]
        rows = self._decode(gi, x, n, skip=tdev)
        for j, (dev, off, valid) in enumerate(self._spans(g, x, n)):
            if dev != t or valid == 0:
                continue
            if rows.lost.get(j):
                failed = sorted(set(self._failed_devices(g, rows)) - {t})
                raise DataLossError(
                    f"pool {self.pool._path}: rebuild of device {t} cannot reconstruct parity "
                    f"group {gi}: devices {failed} are failed or corrupt beyond what RAID "
                    f"{self.layout.level} tolerates",
                    failed=failed,
                )
            if not self._write(dev, off, rows.bufs[j][: valid * self.b]):
                raise DataLossError(
                    f"pool {self.pool._path}: write to device {t} failed during rebuild",
                    failed=[t],
                )

    def scrub(self, repair: bool, progress: Callable[[int, int], Any] | None) -> ScrubReport:
        pool = self.pool
        b = self.b
        report = ScrubReport()
        found: dict[tuple[int, int, str], list[tuple[bool, str]]] = {}
        total = sum(g.length for g in self.groups)
        done = 0
        for gi, g in enumerate(self.groups):
            k = len(g.volumes)
            for x in range(0, g.length, STEP_BLOCKS * b):
                n = min(STEP_BLOCKS, (g.length - x) // b)
                with pool._lock:
                    pool._check_open()
                    rows = self._decode(gi, x, n, repair=repair)
                    spans = self._spans(g, x, n)
                    events = list(rows.events)
                    dirty = set(rows.bad) | rows.erased | set(rows.lost)
                    if not (set(range(k)) & set(rows.lost)):
                        fresh = [x_.copy() for x_ in rows.bufs]
                        self._encode(g, fresh)
                        for j in range(k, k + len(g.parity)):
                            if j in dirty:
                                continue
                            a = rows.bufs[j].reshape(n, b)
                            f = fresh[j].reshape(n, b)
                            bad = np.nonzero((a != f).any(axis=1))[0]
                            if not len(bad):
                                continue
                            if not repair:
                                events.append((j, "parity", False, "not repaired (repair=False)"))
                                continue
                            dev, off, _valid = spans[j]
                            for i in bad:
                                self._write(dev, off + int(i) * b, f[int(i)].copy())
                            events.append((j, "parity", True, "rewrote parity"))
                    for j in sorted(rows.erased):
                        events.append((j, "io", False, "device unreadable"))
                for j, kind, ok, how in events:
                    found.setdefault((gi, spans[j][0], kind), []).append((ok, how))
                report.rows_checked += n
                report.bytes_checked += n * b * len(spans)
                done += n * b
                if progress is not None:
                    progress(done, total)
        report.stripes_checked = len(self.groups)
        for (s, dev, kind), outcomes in sorted(found.items()):
            ok = all(o for o, _ in outcomes)
            hows = sorted({h for _, h in outcomes})
            report.mismatches.append(Mismatch(s, dev, kind, ok, "; ".join(hows)))
        return report

    def capacity(self) -> tuple[int, int]:
        guards = sum(1 for v in self.vols if v.length // self.b)
        st = self.pool._alloc.stats_dict(False)
        used = int(st["nblocks"]) - int(st["free_blocks"]) - guards
        return (self.total - guards) * self.b, used * self.b

    def rebuild_progress(self) -> float | None:
        targets = [m for m in self.pool._members if m.state is DeviceState.REBUILDING]
        if not targets:
            return None
        fracs = []
        for m in targets:
            spans = self._device_spans(m.index)
            total = sum(length for _o, _g, length in spans)
            done = sum(
                min(length, max(0, m.rebuilt_rows * self.b - off)) for off, _g, length in spans
            )
            fracs.append(done / total if total else 1.0)
        return min(1.0, min(fracs))

    def close(self) -> None:
        self.intent.close()
