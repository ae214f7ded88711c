"""The pool engine: extents striped over devices by a RAID layout.

Geometry
--------
Each member device has a 1 MiB metadata area at each end (superblocks,
:mod:`dwcore.devices.superblock`); between them is the *data area*.  Its
first ``usable`` bytes (a multiple of the layout period) are the layout's
stripes; right after them lies the device's **checksum table**: one
little-endian CRC-32C (u32) per ``block_size`` block of the stripe region,
entry ``j`` at ``usable + 4*j`` for the block at data-area offset
``j*block_size``.

The allocation unit is the **row**: the ``block_size`` slice at the same
offset inside the chunk of every member of one stripe (k data blocks and m
redundancy blocks).  Row ``g`` is row ``g mod (C/B)`` of stripe
``g div (C/B)``; for the levels built so far it sits at data-area offset
``g*B`` on every device.  A :class:`~dwcore.pool.extent.Extent` owns whole,
consecutive rows allocated from the pool's
:class:`~dwcore.alloc.BlockAllocator` (``alloc.bin`` in the pool directory,
one allocator block per row).  Inside the rows of one stripe (a *segment* of
``n`` rows) the extent's bytes fill data member 0's ``n`` blocks, then data
member 1's, ... so each member's part of a segment is one contiguous span on
its device and one contiguous slice of the caller's buffer: one ``pwrite`` or
``preadinto`` per member per segment, parity computed over numpy views
without copies, checksums through the batch kernels.

Space cost: an extent of ``L`` bytes takes ``ceil(L / (k*B))`` rows, i.e.
``(k+m)*B`` device bytes per ``k*B`` user bytes; a 1-byte extent costs one
full row (for RAID 6 on 8 devices with 4 KiB blocks: 32 KiB).  Store small
objects packed together above this layer.

Write-hole safety (full-stripe copy-on-write)
---------------------------------------------
Parity is computed per row, rows are never shared by two extents, and
extents are immutable: a write only touches rows that no acknowledged extent
owns (and their checksum entries, written as exactly the 4-byte entries of
those rows).  A crash in the middle of a write can tear only that write's
rows; every acknowledged extent keeps data, parity and checksums that agree.
No write-intent log is needed.

Checksums and repair
--------------------
Every block of every member (data and parity) has a CRC-32C on its device.
A read verifies the blocks it reads; a block that fails (or a device that
fails the read) becomes an erasure, the row is reconstructed from the other
members (mirror copy, XOR, or md's P+Q recovery), the right bytes are
returned and the bad block is rewritten together with its checksum entry (if
the reconstructed block equals what was read, the checksum entry was the bad
part and only it is rewritten).  When a row cannot be reconstructed the read
raises :class:`~dwcore.errors.DataLossError` naming the devices and the lost
byte range of the extent; wrong bytes are never returned.  The zero padding
of an extent's last rows is known to the reader and never counts as an
erasure, so a partly filled row can read back with more members lost than
``StripeMap.recoverable`` allows for a full row.

Fast paths: for layouts where row ``g`` sits at offset ``g*B`` on every
device (RAID 0, 1, 5, 6, 10), multi-row writes, multi-stripe reads and
rebuild do one data and one checksum request per device (a reused scratch
buffer, parity and CRCs computed over its views); anything unexpected (a bad
checksum, an I/O error, an unrecoverable row) falls back to the per-stripe
path above, which does the repairs and raises the errors.

Durability
----------
``write`` puts data, parity and checksums on the devices; ``sync`` syncs
every device and then the allocator, after which the extents written before
are durable.  Rows allocated after the last sync may come back allocated
after a crash (a leak); :meth:`Pool.reconcile` with the live extents frees
them.  ``close(sync=False)`` drops unsynced allocator changes as a crash
would.

Membership and degraded operation
---------------------------------
Superblocks carry the pool id, device index and count, the layout and a
generation, bumped on every membership change (fail, replace, end of
rebuild) and written to every member still in use.  :meth:`Pool.open`
treats a device that cannot be opened, has no valid superblock, belongs to
another pool or index, or has a lower generation (stale) as MISSING, and
warns (:class:`PoolDegradedWarning`).  Opening with a member MISSING, within
the tolerance, bumps the generation (as md's event count moves on when an
array starts degraded) before the level's own open can write anything (a
journal replayed, a map migrated): the pool writes without that member, so
if it comes back at a later open it is stale and stays MISSING until
:meth:`Pool.replace_device` takes it back and :meth:`Pool.rebuild` rewrites
it, instead of serving old blocks whose checksums still match.  Beyond the
tolerance nothing is bumped: no write is stored that could not be read back
without the absent members, and their return must not need a rebuild the
pool can no longer do.  Reads treat FAILED and MISSING
members as erasures; writes skip them and store every member they can (a
write that cannot store enough members to be readable raises
:class:`~dwcore.errors.DataLossError` and allocates nothing).  A device whose
write fails is marked FAILED.

Rebuild
-------
:meth:`Pool.replace_device` puts a blank device in a FAILED or MISSING slot
(state REBUILDING, flag and checkpoint in its superblock).  :meth:`Pool.rebuild`
walks the allocated rows in order (unallocated rows are skipped: no extent
can read them), reconstructs the replacement's members, writes them with
their checksums and checkpoints progress in the replacement's superblock
(``rebuild_offset`` = rows done × block size) every 64 MiB, so an
interrupted rebuild resumes there.  Until then rows at or past the
checkpoint are read degraded; new writes go to the replacement too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import os
import stat
import threading
import uuid
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import numpy as np

from dwcore import raid
from dwcore._native import (
    fdatasync_many,
    new_bytes_to_fill,
    preadv_many,
    pwritev_many,
    read_flat,
    read_segments,
)
from dwcore.alloc import MAX_BLOCKS, BlockAllocator
from dwcore.checksum import crc32c_blocks, crc32c_blocks_into, verify_blocks
from dwcore.devices import (
    MIN_DEVICE_SIZE,
    BlockDevice,
    Device,
    DeviceError,
    DeviceInUseError,
    FileDevice,
    MissingSuperblockError,
    ResilientDevice,
    Superblock,
    SuperblockFlags,
    check_member,
    data_area,
    probe,
    probe_bytes,
    read_superblock,
    read_superblock_copies,
    write_superblock,
)
from dwcore.devices.base import byte_view
from dwcore.errors import CorruptionError, DataLossError, DWError, InvalidArgumentError
from dwcore.memory import ADMISSION, CACHES, KEEP_FRACTION, Level
from dwcore.pool import codec, placement
from dwcore.pool.extent import Extent
from dwcore.pool.fanout import Fanout
from dwcore.pool.manifest import MANIFEST_NAME, Manifest
from dwcore.pool.status import DeviceInfo, DeviceState, Mismatch, PoolStatus, ScrubReport

__all__ = ["DeviceSpec", "Pool", "PoolDegradedWarning", "PoolDeviceInUseError"]

#: What a device argument may be: a path (file or block device) or an open Device.
DeviceSpec = str | os.PathLike[str] | Device

ALLOC_NAME = "alloc.bin"
#: Largest device_size accepted (1 PiB): anything above is a unit mistake.
MAX_DEVICE_SIZE = 1 << 50
#: Bytes of replacement written between two rebuild checkpoints.
CHECKPOINT_BYTES = 64 << 20
#: Most rows one rebuild / scrub step handles (bounded by the stripe too).
STEP_ROWS = 256
_PROBE_HEAD = 128 << 10
_Holes = TypeVar("_Holes", bound=Collection[Any])

#: Most entries of a flat layout's table of data devices (:meth:`Pool._data_devmap`).
_DEVMAP_MAX = 1 << 16


def _enter_raw(dev: Device | None, write: bool) -> int | None:
    """:meth:`Device.enter_raw`, or None where the device is gone or closed (its own
    methods then report that, through the path that reports failures)."""
    if dev is None:
        return None
    try:
        return dev.enter_raw(write)
    except DeviceError:
        return None


def _move_generation_on(root: str, manifest: Manifest, members: list[_Member]) -> None:
    """Bump the generation on the members present, as md's event count moves on when an
    array starts degraded: the pool writes without the MISSING members from here on, so
    one that comes back at a later open holds a stale image and stays MISSING (stale)
    instead of serving old blocks whose checksums still match.  Done before the level's
    own open can write anything; a member whose superblock cannot be written is FAILED.

    Only within the tolerance (the caller checks): beyond it (devices given in the wrong
    order, say) the pool stores nothing it could not read back without them, and making
    every absent member stale would turn a mistake into data loss."""
    generation = manifest.generation + 1
    for mem in members:
        if mem.sb is None or mem.device is None or mem.state is DeviceState.MISSING:
            continue
        sb = mem.sb.bumped(generation=generation)
        try:
            write_superblock(mem.device, sb)
        except DeviceError as exc:
            mem.state, mem.reason = DeviceState.FAILED, f"superblock write failed: {exc}"
            continue
        mem.sb = sb
    manifest.generation = generation
    manifest.states = [m.state.value for m in members]
    manifest.save(root)


def _enter_raw_sync(dev: Device) -> int | None:
    """:meth:`Device.enter_raw_sync`, or None where the device is closed (its own
    :meth:`Device.sync` then reports that)."""
    try:
        return dev.enter_raw_sync()
    except DeviceError:
        return None


def _aligned_empty(n: int) -> np.ndarray:
    """``n`` uninitialised bytes starting on a 64-byte boundary: rows read into it
    from 4 KiB-aligned device offsets copy at full speed (see ``bindings/io.pxi``)."""
    raw = np.empty(n + 64, dtype=np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip : skip + n]


def _is_block(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


_CLEAR_STEP = 4 << 20


def _clear(device: Device, device_size: int) -> None:
    """Make the data area (and checksum table) of a new member of an in-place parity
    level read as zeros, as Unraid clears a disk before adding it: that parity is
    updated by delta, so it must start consistent with what the devices hold.  Reads
    the area and rewrites only what is not zero (a file this pool created is sparse
    and skipped by the caller)."""
    area = data_area(device_size)
    zeros = bytes(_CLEAR_STEP)
    end = area.offset + area.size
    written = False
    for off in range(area.offset, end, _CLEAR_STEP):
        n = min(_CLEAR_STEP, end - off)
        if any(device.pread(off, n)):
            device.pwrite(off, zeros[:n])
            written = True
    if written:
        device.sync()


class PoolDegradedWarning(UserWarning):
    """A pool was opened with members missing, foreign, stale or unreadable."""


class PoolDeviceInUseError(DeviceInUseError, InvalidArgumentError):
    """A device given to create or replace already holds data (a file system or a
    dwcore superblock); pass ``force=True`` to overwrite it."""


def _check_size(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer number of bytes, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidArgumentError(f"{name} must be in {lo}..{hi} bytes, got {value}")
    return value


class _Geometry:
    """Sizes derived from the layout, the block size and the device size."""

    def __init__(self, layout: raid.Layout, block_size: int, device_size: int) -> None:
        self.block = block_size
        self.rpc = layout.chunk_size // block_size
        area = data_area(device_size).size
        usable = layout.usable_device_size(area * block_size // (block_size + 4))
        while usable > 0 and usable + self.table_bytes(usable) > area:
            usable -= layout.period_bytes
        self.usable = max(usable, 0)
        self.stripes = layout.stripe_count(self.usable)
        self.rows = self.stripes * self.rpc
        self.table_off = self.usable

    def table_bytes(self, usable: int) -> int:
        b = self.block
        return -(-(usable // b * 4) // b) * b


class _PoolLock:
    """The pool's lock.

    ``with lock:`` is exclusive and re-entrant (as the RLock it wraps); its
    outermost entry first waits until no shared holder is left.  ``with
    lock.shared():`` admits many holders at once while nobody holds it
    exclusively: the healthy fast paths of flat layouts take it, so their
    system calls (GIL released) run in parallel.  Member states, devices and
    the layout only change under the exclusive lock, so they stay fixed for as
    long as any shared holder is inside; a shared holder changes nothing but
    its own freshly allocated rows.  Threads waiting for exclusive access hold
    new shared holders back, so a stream of I/O cannot starve them.
    """

    __slots__ = ("_cond", "_depth", "_mutex", "_shared", "_waiting")

    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self._cond = threading.Condition(self._mutex)
        self._shared = 0  # shared holders inside
        self._waiting = 0  # exclusive entries waiting for them to leave
        self._depth = threading.local()  # this thread's exclusive nesting

    def __enter__(self) -> _PoolLock:
        if getattr(self._depth, "shared", 0):
            # it would wait for itself to leave
            raise RuntimeError("pool lock: exclusive entry inside a shared hold")
        self._mutex.acquire()
        depth = getattr(self._depth, "n", 0)
        if depth == 0 and self._shared:
            self._waiting += 1
            try:
                while self._shared:
                    self._cond.wait()
            except BaseException:  # KeyboardInterrupt while waiting: leave nothing held
                self._waiting -= 1
                self._cond.notify_all()  # shared entries held back by this waiter
                self._mutex.release()
                raise
            self._waiting -= 1
        self._depth.n = depth + 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth.n -= 1
        if self._depth.n == 0:
            self._cond.notify_all()  # shared holders held back while it waited
        self._mutex.release()

    def shared(self) -> _SharedHold:
        """A context manager for a shared hold (inside an exclusive hold of the same
        thread it is a no-op: that thread has the pool to itself already)."""
        return _SharedHold(self)

    def _enter_shared(self) -> bool:
        if getattr(self._depth, "n", 0) or getattr(self._depth, "shared", 0):
            return False  # held already (a nested hold must not queue behind a waiter)
        with self._mutex:
            while self._waiting:
                self._cond.wait()
            self._shared += 1
        self._depth.shared = 1
        return True

    def _leave_shared(self) -> None:
        with self._mutex:
            self._shared -= 1
            if not self._shared:
                self._cond.notify_all()
        self._depth.shared = 0


class _SharedHold:
    __slots__ = ("_counted", "_lock")

    def __init__(self, lock: _PoolLock) -> None:
        self._lock = lock
        self._counted = False

    def __enter__(self) -> None:
        self._counted = self._lock._enter_shared()

    def __exit__(self, *exc: object) -> None:
        if self._counted:
            self._lock._leave_shared()


class _Member:
    """One pool slot: the device (if open), its state and superblock."""

    def __init__(self, index: int, path: str) -> None:
        self.index = index
        self.path = path
        self.device: Device | None = None
        self.state = DeviceState.MISSING
        self.reason = ""
        self.sb: Superblock | None = None
        self.owned = False
        #: For REBUILDING: rows below this are rebuilt (readable).
        self.rebuilt_rows = 0

    @property
    def writable(self) -> bool:
        return self.device is not None and self.state in (
            DeviceState.ONLINE,
            DeviceState.REBUILDING,
        )

    def readable(self, row_end: int) -> bool:
        if self.device is None:
            return False
        if self.state is DeviceState.ONLINE:
            return True
        return self.state is DeviceState.REBUILDING and row_end <= self.rebuilt_rows


class _Segment:
    """The rows of an extent (or row range) that fall in one stripe."""

    __slots__ = ("first", "n", "offset", "row", "stripe")

    def __init__(self, stripe: int, row: int, n: int, first: int, offset: int) -> None:
        self.stripe = stripe
        self.row = row  # row inside the chunk
        self.n = n
        self.first = first  # global row number
        self.offset = offset  # byte offset of the segment in the extent's data


class _Outcome:
    """What one row-group pass found: member buffers, lost rows, problems seen."""

    def __init__(self) -> None:
        self.bufs: list[np.ndarray | None] = []
        self.lost: dict[int, set[int]] = {}
        #: (member index, kind, repaired, how)
        self.events: list[tuple[int, str, bool, str]] = []
        self.bad_devices: set[int] = set()


class _BadBlocks(Exception):
    """A block read for a fast path failed its checksum (the careful path repairs it)."""


def _is_path(spec: object) -> bool:
    return isinstance(spec, (str, os.PathLike))


def _install_superblock(dev: Device, owned: bool, sb: Superblock) -> None:
    """Write ``sb`` on a device just opened for the pool; one that fails is closed again
    when the pool opened it (``owned``), and the error propagates."""
    try:
        write_superblock(dev, sb)
    except DeviceError:
        if owned:
            dev.close()
        raise


def _existing_size(spec: DeviceSpec, i: int) -> int | None:
    """The bytes of an existing device ``i`` (None for a path not created yet or an
    empty file): for levels whose members may differ in size."""
    if isinstance(spec, Device):
        return spec.size
    if not _is_path(spec):
        raise InvalidArgumentError(
            f"device {i} must be a path or a Device, got {type(spec).__name__}"
        )
    p = os.fspath(spec)
    if not os.path.exists(p):
        return None
    st = os.stat(p)
    if stat.S_ISBLK(st.st_mode):
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
    return st.st_size or None


class Pool:
    """A pool of devices under one RAID layout; see the module documentation.

    Build one with :meth:`create` or :meth:`open`.  Every public method is
    thread-safe: healthy reads and writes of row-striped layouts run in
    parallel (a shared hold of the pool lock), everything else holds it
    exclusively (long rebuilds and scrubs take it step by step).
    """

    #: Healthy reads and writes of flat layouts take the lock shared (subclasses that
    #: reshape the data path keep every request exclusive).
    _SHARED_IO: ClassVar[bool] = True
    #: Healthy reads of row layouts that are not flat may go straight to the devices
    #: (:meth:`_reads_direct`); a subclass that places or reads data its own way says no.
    _DIRECT_READS: ClassVar[bool] = True

    def __init__(
        self,
        path: str,
        manifest: Manifest,
        layout: raid.Layout,
        members: list[_Member],
        alloc: BlockAllocator,
    ) -> None:
        self._path = path
        self._manifest = manifest
        self._pool_id = uuid.UUID(manifest.pool_id)
        self._tag = self._pool_id.bytes[:8]
        self.layout = layout
        self._members = members
        self._alloc = alloc
        self._block = manifest.block_size
        self._geo = _Geometry(layout, manifest.block_size, manifest.device_size)
        self._rpc = self._geo.rpc
        self._lock = _PoolLock()
        self._tls = threading.local()  # per-thread scratch (shared holders write at once)
        self._scratch_bytes: dict[tuple[int, str], int] = {}  # (thread, kind) -> bytes held
        self._closed = False
        self._generation = manifest.generation
        # stripe -> (its map, data-member index, members all whole aligned chunks); an
        # entry is set whole and the dict replaced, never emptied, so shared readers can
        # use it
        self._stripes: dict[int, tuple[raid.StripeMap, list[list[int]], bool]] = {}
        self._flat = self._rows_are_flat()
        self._fanout = Fanout()  # threads start with the first parallel request
        # per-extent placement levels (RAID S, Unraid, RAID-Z) bring their own data path
        self._engine = placement.engine_for(self)
        self._direct = self._reads_direct()
        self._period = max(1, layout.period)
        self._shapes: dict[int, tuple[raid.StripeMap, list[list[int]]]] = {}
        # per position in the period: each member's (device, data index or None), and
        # the positions of the members that hold no data
        self._roles: dict[int, tuple[tuple[tuple[int, int | None], ...], tuple[int, ...]]] = {}
        self._devmap: np.ndarray | None = None  # see _data_devmap
        self._sync_fanout: Fanout | None = None
        self._cache_name = f"pool.{self._pool_id}.{id(self):x}"
        CACHES.register(self._cache_name, self._shrink_caches)

    # ------------------------------------------------------------------
    # creation and opening
    # ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        level: str | int,
        devices: int | Sequence[DeviceSpec],
        device_size: int | None,
        chunk_size: int | None = None,
        block_size: int = 4096,
        *,
        force: bool = False,
        **level_options: Any,
    ) -> Pool:
        """Create a pool in the new directory ``path`` and return it open.

        ``devices`` is a count (sparse files ``dev-00`` ... created under
        ``path``), a list of paths (files created when absent, existing files
        and block devices opened) or a list of :class:`~dwcore.devices.Device`
        objects (the caller keeps ownership: the pool does not close them).
        ``device_size`` is the bytes used on each device (BEYOND also takes
        ``None``: each device's own size, :mod:`dwcore.pool.growth`).  Everything is
        validated before anything is written; a device that holds a file
        system or a dwcore superblock is refused unless ``force``.  For the
        in-place parity levels (RAID S, Unraid) the data areas of block
        devices and given devices are cleared first (read, and zeroed where
        not zero), which takes as long as reading them.
        """
        root = os.fspath(path)
        if isinstance(devices, bool):
            raise InvalidArgumentError("devices must be a count or a list of devices")
        if isinstance(devices, int):
            count = devices
            if count < 1 or count > 255:
                raise InvalidArgumentError(f"devices must be 1..255, got {count}")
            specs: list[DeviceSpec] = [os.path.join(root, f"dev-{i:02d}") for i in range(count)]
        elif isinstance(devices, (str, bytes, os.PathLike)) or not isinstance(devices, Sequence):
            raise InvalidArgumentError(
                "devices must be a count, a list of paths or a list of Device objects"
            )
        else:
            specs = list(devices)
            count = len(specs)
        lay = raid.layout(level, count, chunk_size, **level_options)
        _check_size("block_size", block_size, 512, lay.chunk_size)
        if block_size & (block_size - 1):
            raise InvalidArgumentError(f"block_size must be a power of two, got {block_size}")
        lay, dev_sizes = cls._class_for(lay)._device_sizes(lay, specs, device_size, block_size)
        device_size = max(dev_sizes)
        geo = _Geometry(lay, block_size, device_size)
        if geo.stripes < 1:
            raise InvalidArgumentError(
                f"device_size {device_size} is too small for one stripe of RAID {lay.level} "
                f"(chunk {lay.chunk_size} bytes, 2 MiB of metadata per device)"
            )
        # a layout placed relative to the device size (md raid10 far) is bound to it here
        lay = lay.fit(geo.usable)
        geo = _Geometry(lay, block_size, device_size)
        if geo.rows > MAX_BLOCKS:
            raise InvalidArgumentError(
                f"device_size {device_size} gives more than {MAX_BLOCKS} rows"
            )
        if os.path.exists(root):
            if not os.path.isdir(root):
                raise InvalidArgumentError(f"{root}: exists and is not a directory")
            if os.path.exists(os.path.join(root, MANIFEST_NAME)):
                raise InvalidArgumentError(f"{root}: already holds a pool (pool.json)")
        seen: set[str] = set()
        for i, spec in enumerate(specs):
            if isinstance(spec, (str, os.PathLike)):
                key = os.path.realpath(os.fspath(spec))
            else:
                key = f"id:{id(spec)}"
            if key in seen:
                raise InvalidArgumentError(f"device {i} ({spec}) is listed twice")
            seen.add(key)
            cls._check_new_device(spec, dev_sizes[i], force, i)
        # --- nothing modified above this line ---
        os.makedirs(root, exist_ok=True)
        pool_id = uuid.uuid4()
        members: list[_Member] = []
        try:
            for i, spec in enumerate(specs):
                mem = _Member(i, "")
                mem.device, mem.owned = cls._open_new_device(spec, dev_sizes[i])
                mem.path = mem.device.path
                mem.state = DeviceState.ONLINE
                members.append(mem)
            if placement.placement_of(lay) == "volumes":
                # files this pool created are sparse; disks and given devices may hold data
                for spec, mem in zip(specs, members, strict=True):
                    if isinstance(spec, Device) or _is_block(os.fspath(spec)):
                        assert mem.device is not None
                        _clear(mem.device, device_size)
            params = lay.params
            for mem in members:
                assert mem.device is not None
                sb = Superblock.for_device(
                    dev_sizes[mem.index],
                    pool_id=pool_id,
                    device_index=mem.index,
                    device_count=count,
                    layout=lay.level,
                    layout_params={**params, "block_size": block_size},
                    chunk_size=lay.chunk_size,
                )
                write_superblock(mem.device, sb)
                mem.sb = sb
            nblocks = placement.alloc_blocks(lay, geo.usable, block_size) or geo.rows
            alloc = BlockAllocator.create(os.path.join(root, ALLOC_NAME), nblocks=nblocks)
            manifest = Manifest(
                pool_id=str(pool_id),
                layout=params,
                block_size=block_size,
                device_size=device_size,
                usable=geo.usable,
                rows=geo.rows,
                devices=[m.path for m in members],
                states=[m.state.value for m in members],
            )
            manifest.save(root)
        except BaseException:
            for mem in members:
                if mem.owned and mem.device is not None:
                    mem.device.close()
            raise
        return cls._class_for(lay)(root, manifest, lay, members, alloc)

    @classmethod
    def _class_for(cls, layout: raid.Layout) -> type[Pool]:
        """``cls``, or the subclass an interleaved layout (RAID 2, 3, 03) needs."""
        from dwcore.pool.interleave import pool_class

        special = pool_class(layout)
        if special is None:  # issue 9 levels (Declustered, FR, 7, Beyond, Adaptive)
            from dwcore.pool.levels9 import pool_class as levels9_pool_class

            special = levels9_pool_class(layout)
        return special if special is not None and issubclass(special, cls) else cls

    @classmethod
    def _device_sizes(
        cls,
        layout: raid.Layout,
        specs: Sequence[DeviceSpec],
        device_size: int | None,
        block_size: int,
    ) -> tuple[raid.Layout, list[int]]:
        """The layout and the bytes used on each of ``specs``: ``device_size`` on every
        one (levels over mixed-size devices, :class:`~dwcore.pool.growth.BeyondPool`,
        override this)."""
        if device_size is None:
            raise InvalidArgumentError(f"device_size is required for RAID {layout.level}")
        _check_size("device_size", device_size, MIN_DEVICE_SIZE, MAX_DEVICE_SIZE)
        return layout, [device_size] * len(specs)

    @staticmethod
    def _check_new_device(spec: DeviceSpec, device_size: int, force: bool, i: int) -> None:
        if isinstance(spec, Device):
            if spec.closed:
                raise InvalidArgumentError(f"device {i} ({spec.path}) is closed")
            if spec.size < device_size:
                raise InvalidArgumentError(
                    f"device {i} ({spec.path}) has {spec.size} bytes, less than device_size "
                    f"{device_size}"
                )
            if force:
                return
            found = probe_bytes(spec.pread(0, min(spec.size, _PROBE_HEAD)))
            copies = read_superblock_copies(spec) if spec.size >= MIN_DEVICE_SIZE else None
            if copies is not None and (copies.primary or copies.backup):
                found = found or ["dwcore superblock"]  # type: ignore[list-item]
            if found:
                raise PoolDeviceInUseError(
                    f"device {i} ({spec.path}) is in use (holds a file system or a dwcore "
                    f"superblock); pass force=True to overwrite it",
                    spec.path,
                )
            return
        if not _is_path(spec):
            raise InvalidArgumentError(
                f"device {i} must be a path or a Device, got {type(spec).__name__}"
            )
        p = os.fspath(spec)
        if not os.path.exists(p):
            return
        st = os.stat(p)
        is_blk = stat.S_ISBLK(st.st_mode)
        if not is_blk and not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError(f"device {i}: {p} is neither a file nor a block device")
        if is_blk:
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
            try:
                size = os.lseek(fd, 0, os.SEEK_END)
            finally:
                os.close(fd)
            if size < device_size:
                raise InvalidArgumentError(
                    f"device {i}: {p} has {size} bytes, less than device_size {device_size}"
                )
        if not force and (is_blk or st.st_size):
            found = probe(p)
            if found:
                what = "; ".join(sig.detail for sig in found)
                raise PoolDeviceInUseError(
                    f"device {i}: {p} is in use ({what}); pass force=True to overwrite it", p
                )

    @staticmethod
    def _open_new_device(spec: DeviceSpec, device_size: int) -> tuple[Device, bool]:
        if isinstance(spec, Device):
            return spec, False
        p = os.fspath(spec)
        if os.path.exists(p):
            if stat.S_ISBLK(os.stat(p).st_mode):
                dev: Device = BlockDevice.open(p)
                if dev.size < device_size:
                    dev.close()
                    raise InvalidArgumentError(
                        f"{p}: block device has {dev.size} bytes, less than {device_size}"
                    )
                return ResilientDevice(dev), True
            return ResilientDevice(FileDevice.create(p, device_size, overwrite=True)), True
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        return ResilientDevice(FileDevice.create(p, device_size)), True

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], devices: Sequence[DeviceSpec | None] | None = None
    ) -> Pool:
        """Open the pool in ``path``.

        ``devices`` (same forms as :meth:`create`, ``None`` entries for absent
        members) overrides the paths in the manifest.  Members that cannot be
        opened or whose superblock is missing, foreign or stale are MISSING;
        the pool opens degraded and warns with :class:`PoolDegradedWarning`.
        """
        root = os.fspath(path)
        try:
            manifest = Manifest.load(root)
        except FileNotFoundError:
            raise InvalidArgumentError(f"{root}: no pool here (pool.json missing)") from None
        params = dict(manifest.layout)
        lay = raid.layout(params.pop("name"), params.pop("n_devices"), **params)
        n = lay.n_devices
        if devices is not None and len(devices) != n:
            raise InvalidArgumentError(f"the pool has {n} devices, {len(devices)} were given")
        pool_id = uuid.UUID(manifest.pool_id)
        members: list[_Member] = []
        specs: list[DeviceSpec | None] = (
            list(devices) if devices is not None else list(manifest.devices)
        )
        alloc: BlockAllocator | None = None
        try:
            for i in range(n):
                spec = specs[i]
                mem = _Member(i, manifest.devices[i])
                members.append(mem)
                if manifest.states[i] == DeviceState.FAILED.value:
                    mem.state, mem.reason = DeviceState.FAILED, "marked failed"
                    continue
                if spec is None:
                    mem.reason = "no device given"
                    continue
                try:
                    if isinstance(spec, Device):
                        dev, owned = spec, False
                    else:
                        p = os.fspath(spec)
                        opened = BlockDevice.open(p) if stat.S_ISBLK(os.stat(p).st_mode) else None
                        dev, owned = ResilientDevice(opened or FileDevice.open(p)), True
                except (OSError, DWError) as exc:
                    mem.reason = f"cannot open: {exc}"
                    continue
                mem.device, mem.owned, mem.path = dev, owned, dev.path
                try:
                    sb = read_superblock(dev)
                    check_member(sb, pool_id, i, dev.path)
                except MissingSuperblockError:
                    mem.reason = "no dwcore superblock (blank or foreign device)"
                except (CorruptionError, DWError, OSError) as exc:
                    mem.reason = str(exc)
                else:
                    mem.sb = sb
                    continue
                if owned:
                    dev.close()
                mem.device = None
            # A membership change writes the new generation to the members in use, then
            # saves the manifest: the manifest's generation is the last one committed.  A
            # member below it missed a committed change (stale); members above it were
            # written by a change a crash cut short, before anything could be stored
            # without the others, so they are all current.
            committed = manifest.generation
            gens = [m.sb.generation for m in members if m.sb is not None]
            generation = max([*gens, committed])
            for mem in members:
                if mem.sb is None:
                    continue
                if mem.sb.generation < committed:
                    mem.reason = f"stale: generation {mem.sb.generation} < {committed}"
                    if mem.owned and mem.device is not None:
                        mem.device.close()
                    mem.device, mem.sb = None, None
                    continue
                if mem.sb.flags & SuperblockFlags.REBUILDING:
                    mem.state = DeviceState.REBUILDING
                    mem.rebuilt_rows = mem.sb.rebuild_offset // manifest.block_size
                else:
                    mem.state = DeviceState.ONLINE
            if not any(m.sb is not None for m in members):
                raise InvalidArgumentError(f"{root}: none of the pool's devices could be opened")
            manifest.generation = generation
            absent = frozenset(m.index for m in members if m.state is not DeviceState.ONLINE)
            moved_on = False
            if any(m.state is DeviceState.MISSING for m in members) and lay.survives(absent):
                # before the level's own open, which may write (a journal replayed, a
                # map migrated): see _move_generation_on
                _move_generation_on(root, manifest, members)
                moved_on = True
            alloc = BlockAllocator.open(os.path.join(root, ALLOC_NAME))
            pool = cls._class_for(lay)(root, manifest, lay, members, alloc)
        except BaseException:
            # nothing half-opened stays behind: the devices this call opened, the allocator
            for mem in members:
                if mem.owned and mem.device is not None:
                    mem.device.close()
            if alloc is not None:
                alloc.close(sync=False)
            raise
        bad = [m for m in members if m.state is not DeviceState.ONLINE]
        missing = any(m.state is DeviceState.MISSING for m in members)
        if missing and not moved_on and pool.survives(set(absent)):
            # a level whose map survives more than its layout guarantees: moved on now
            try:
                pool._commit_membership()
            except BaseException:
                pool.close(sync=False)
                raise
        if bad:
            text = "; ".join(f"device {m.index} {m.state.value}: {m.reason}" for m in bad)
            try:
                warnings.warn(
                    f"pool {root} opened degraded: {text}", PoolDegradedWarning, stacklevel=2
                )
            except BaseException:
                # the warning raised (warnings as errors): the caller never gets the pool,
                # so nothing it started (engine threads, devices) may stay behind
                pool.close(sync=False)
                raise
        try:
            pool._resume_background()
        except BaseException:
            pool.close(sync=False)
            raise
        return pool

    def survives(self, failed: set[int] | frozenset[int]) -> bool:
        """Whether every extent still reads with the devices ``failed`` lost (the
        layout's predicate; levels with a per-extent map answer for their map)."""
        return self.layout.survives(frozenset(failed))

    def _resume_background(self) -> None:
        """Restart background work a close or a crash interrupted, once :meth:`open`
        is done (a level with such work overrides this; row layouts have none)."""
        return None

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgumentError(f"pool {self._path} is closed")

    def _stripe_entry(self, s: int) -> tuple[raid.StripeMap, list[list[int]], bool]:
        """Stripe ``s``: its map (its own device offsets), its data-member index, and
        whether every member is a whole chunk at a block-aligned offset; cached."""
        stripes = self._stripes
        hit = stripes.get(s)
        if hit is None:
            sm = self.layout.stripe(s)
            c, b = self.layout.chunk_size, self._block
            whole = all(m.length == c and m.device_offset % b == 0 for m in sm.members)
            hit = (sm, codec.data_member_index(sm), whole)
            if len(stripes) > 4096:
                self._stripes = stripes = {}
            stripes[s] = hit
        return hit

    def _stripe(self, s: int) -> raid.StripeMap:
        return self._stripe_entry(s)[0]

    def _shape(self, s: int) -> tuple[raid.StripeMap, list[list[int]]]:
        """For flat layouts: the members' devices and roles of stripe ``s`` (with the
        stripe map of ``s`` modulo the period, whose offsets must not be used) and
        its data-member index; cached per position in the period."""
        key = s % self._period
        shape = self._shapes.get(key)
        if shape is None:
            sm = self.layout.stripe(key)
            shape = self._shapes[key] = (sm, codec.data_member_index(sm))
        return shape

    def _member_roles(self, s: int) -> tuple[tuple[tuple[int, int | None], ...], tuple[int, ...]]:
        """For flat layouts: each member of stripe ``s`` as (device, data index or None),
        and the positions of its members that hold no data; cached like :meth:`_shape`."""
        key = s % self._period
        roles = self._roles.get(key)
        if roles is None:
            sm = self._shape(s)[0]
            pairs = tuple((m.device, m.role.data_index) for m in sm.members)
            no_data = tuple(j for j, (_, d) in enumerate(pairs) if d is None)
            roles = self._roles[key] = (pairs, no_data)
        return roles

    def _single_copy(self) -> bool:
        """For flat layouts: every data member has one copy (no mirrors), so a read that
        meets a missing member must reconstruct it from the rest of its rows."""
        return all(len(copies) == 1 for copies in self._shape(0)[1])

    def _data_devmap(self) -> np.ndarray | None:
        """For flat layouts: the device each data member's first copy lies on, per position
        in the period (int32, period × k, what :func:`read_flat` takes); None where the
        period is too long to tabulate."""
        devmap = self._devmap
        if devmap is None:
            k, period = self.layout.k, self._period
            if period * k > _DEVMAP_MAX:
                return None
            devmap = np.empty((period, k), dtype=np.int32)
            for p in range(period):
                dmi = self._shape(p)[1]
                roles = self._member_roles(p)[0]
                devmap[p] = [roles[dmi[d][0]][0] for d in range(k)]
            self._devmap = devmap
        return devmap

    def _segments(self, first: int, rows: int, cap: int | None = None) -> Iterator[_Segment]:
        """Split rows at stripe boundaries (the extent data mapping: never change it);
        ``cap`` further limits the rows of a piece (for scans, not for extents)."""
        g, end, off = first, first + rows, 0
        k, b = self.layout.k, self._block
        limit = cap or self._rpc
        while g < end:
            s, r = divmod(g, self._rpc)
            n = min(self._rpc - r, end - g, limit)
            yield _Segment(s, r, n, g, off)
            off += n * k * b
            g += n

    def _addr(self, mem: _Member, member: raid.Member, row: int) -> tuple[int, int]:
        """Device offsets of a member's block at chunk row ``row`` and of its checksum."""
        assert mem.sb is not None
        rel = member.device_offset + row * self._block
        base = mem.sb.data_offset
        return base + rel, base + self._table_off(member.device) + 4 * (rel // self._block)

    def _table_off(self, dev: int) -> int:
        """Data-area offset of device ``dev``'s checksum table: the same on every member
        (levels over mixed-size members use :meth:`_sized_table_off`)."""
        return self._geo.table_off

    def _sized_table_off(self, dev: int) -> int:
        """:meth:`_table_off` where members differ in size (Beyond, Adaptive): each
        member's table follows its own data area, by the size in its superblock."""
        sb = self._members[dev].sb
        if sb is None or sb.device_size == self._manifest.device_size:
            return self._geo.table_off
        tables: dict[int, int] = self.__dict__.setdefault("_tables_by_size", {})
        at = tables.get(sb.device_size)
        if at is None:
            at = _Geometry(self.layout, self._block, sb.device_size).table_off
            tables[sb.device_size] = at
        return at

    def _lost_range_error(
        self, ext: Extent, ranges: list[tuple[int, int]], devices: set[int]
    ) -> DataLossError:
        """The DataLossError of a read that could not rebuild ``ranges`` of ``ext``
        (its ``lost_range`` spans them all), naming ``devices``."""
        lo = min(a for a, _ in ranges)
        hi = max(z for _, z in ranges)
        failed = sorted(devices)
        err = DataLossError(
            f"pool {self._path}: extent {ext!r}: bytes [{lo}, {hi}) are lost: devices "
            f"{failed} are failed, missing or corrupt beyond what RAID {self.layout.level} "
            f"tolerates",
            failed=failed,
        )
        err.lost_range = (lo, hi)  # type: ignore[attr-defined]
        return err

    def _rows_are_flat(self) -> bool:
        """True when row g lies at data-area offset g*B on every device (one member per
        device per stripe, every stripe on every device at s*C): then a run of rows
        is one contiguous span per device and I/O is batched per device."""
        lay = self.layout
        if lay.device_bytes_per_stripe != lay.chunk_size:
            return False
        for s in range(max(1, lay.period)):
            sm = lay.stripe(s)
            devs = [m.device for m in sm.members]
            if sorted(devs) != list(range(lay.n_devices)):
                return False
            if any(
                m.device_offset != s * lay.chunk_size or m.length != lay.chunk_size
                for m in sm.members
            ):
                return False
        return True

    def _reads_direct(self) -> bool:
        """Whether healthy reads go straight to the devices (:meth:`_read_direct`): flat
        layouts, and other row layouts unless the class reads its own way
        (``_DIRECT_READS``); :meth:`_stripe_entry` says which of their stripes can."""
        if self._flat:
            return True
        return self._DIRECT_READS and self._engine is None

    def _check_ours(self, ext: Extent) -> None:
        """An Extent, and of this pool (by its tag)."""
        if not isinstance(ext, Extent):
            raise InvalidArgumentError(f"expected an Extent, got {type(ext).__name__}")
        if ext.pool_tag != self._tag:
            raise InvalidArgumentError(
                f"extent belongs to another pool ({ext.pool_tag.hex()}, this is {self._tag.hex()})"
            )

    def _check_extent(self, ext: Extent) -> None:
        self._check_ours(ext)
        if self._engine is not None:
            self._engine.check_extent(ext)
            return
        if ext.first_row + ext.rows > self._geo.rows or ext.length > (
            ext.rows * self.layout.k * self._block
        ):
            raise InvalidArgumentError(f"extent {ext!r} does not fit this pool")

    @staticmethod
    def _admitted() -> AbstractContextManager[None]:
        """Admission of one request under memory pressure (:mod:`dwcore.memory`): free
        while the level is normal; throttled at high, paused at critical."""
        if ADMISSION.level is Level.NORMAL:
            return contextlib.nullcontext()
        return ADMISSION.admit()

    def _read_blocks(self, dev: int, row: int, buf: np.ndarray) -> np.ndarray | None:
        """Read ``len(buf)`` bytes at block ``row`` of device ``dev``'s data area into
        ``buf``; returns their checksum-table entries, or None when the read fails."""
        mem = self._members[dev]
        assert mem.sb is not None
        base = mem.sb.data_offset
        table = np.empty(len(buf) // self._block, dtype="<u4")
        at_table = base + self._table_off(dev) + 4 * row
        return (
            table if self._read_run(mem, base + row * self._block, buf, at_table, table) else None
        )

    def _read_blocks_many(
        self, reads: Sequence[tuple[int, int, np.ndarray]]
    ) -> list[np.ndarray | None]:
        """:meth:`_read_blocks` for each ``(device, row, buffer)``: on plain files all in
        one batched call, the others (and any that failed there) one by one through
        their devices."""
        b = self._block
        out: list[np.ndarray | None] = [None] * len(reads)
        tables = [np.empty(len(buf) // b, dtype="<u4") for _, _, buf in reads]
        fds: dict[int, int | None] = {}
        entered: list[Device] = []
        reqs: list[tuple[Any, ...]] = []
        batched: list[int] = []
        try:
            for i, (dev, row, buf) in enumerate(reads):
                if dev not in fds:
                    device = self._members[dev].device
                    fds[dev] = _enter_raw(device, False)
                    if fds[dev] is not None:
                        entered.append(device)  # type: ignore[arg-type]
                fd = fds[dev]
                sb = self._members[dev].sb
                if fd is None or sb is None:
                    continue
                base = sb.data_offset
                reqs.append((fd, base + row * b, [buf]))
                reqs.append((fd, base + self._table_off(dev) + 4 * row, [tables[i]]))
                batched.append(i)
            errs = preadv_many(reqs) if reqs else []
        finally:
            for device in entered:
                device.leave_raw(False)
        for n, i in enumerate(batched):
            if not (errs[2 * n] or errs[2 * n + 1]):
                out[i] = tables[i]
        for i, (dev, row, buf) in enumerate(reads):
            if out[i] is None and self._members[dev].sb is not None:
                out[i] = self._read_blocks(dev, row, buf)
        return out

    def _read_verified_many(self, reads: Sequence[tuple[int, int, np.ndarray]]) -> set[int]:
        """:meth:`_read_blocks_many`, each buffer then verified; returns the positions in
        ``reads`` that failed (the read, or a block's checksum), their buffers zeroed
        (for engines that decode around them)."""
        failed: set[int] = set()
        for i, table in enumerate(self._read_blocks_many(reads)):
            buf = reads[i][2]
            if table is None or len(verify_blocks(buf, self._block, table)):
                failed.add(i)
                buf[:] = 0
        return failed

    def _read_checked(self, dev: int, offset: int, table_offset: int, n: int) -> np.ndarray | None:
        """``n`` blocks at byte ``offset`` of device ``dev`` (a fresh, 64-byte aligned
        buffer), verified against the checksum entries at ``table_offset``; None when
        the device fails or a block fails its checksum (for engines that address
        blocks through their own maps)."""
        buf = _aligned_empty(n * self._block)
        crcs = np.empty(n, dtype="<u4")
        if not self._read_run(self._members[dev], offset, buf, table_offset, crcs):
            return None
        return None if len(verify_blocks(buf, self._block, crcs)) else buf

    def _read_run(
        self, mem: _Member, offset: int, buf: np.ndarray, table_offset: int, table: np.ndarray
    ) -> bool:
        """Fill ``buf`` from byte ``offset`` and ``table`` from ``table_offset`` of a
        member: one batched call on a plain file, else (or after a failure there)
        through the device, which retries and reports; False when that fails."""
        dev = mem.device
        if dev is None:
            return False
        fd = _enter_raw(dev, False)
        if fd is not None:
            try:
                if not any(preadv_many([(fd, offset, [buf]), (fd, table_offset, [table])])):
                    return True
            finally:
                dev.leave_raw(False)
        try:
            dev.preadinto(offset, buf)
            dev.preadinto(table_offset, table)
        except DeviceError:
            return False
        return True

    def _write_blocks(self, dev: int, row: int, buf: np.ndarray) -> bool:
        """Write ``buf`` at block ``row`` of device ``dev`` with its checksum entries;
        False, with the device failed out, when the write fails."""
        mem = self._members[dev]
        if not mem.writable:
            return False
        assert mem.device is not None and mem.sb is not None
        base = mem.sb.data_offset
        crcs = crc32c_blocks(buf, self._block)
        reqs = ((base + row * self._block, (buf,)), (base + self._geo.table_off + 4 * row, (crcs,)))
        exc = self._write_requests([(mem, reqs)], 0)[0]
        if exc is None:
            return True
        if not isinstance(exc, DeviceError):
            raise exc
        self._mark_failed(dev, f"write failed: {exc}")
        return False

    def _reap_dead(self) -> None:
        """Fail out every device whose retries and circuit breaker gave up on it (a
        :class:`~dwcore.devices.ResilientDevice` the pool opened from a path)."""
        for mem in self._members:
            dev = mem.device
            if isinstance(dev, ResilientDevice) and dev.dead and mem.writable:
                self._mark_failed(mem.index, f"device is dead: {dev.dead_reason}")

    def _mark_failed(self, index: int, reason: str) -> None:
        mem = self._members[index]
        if mem.state in (DeviceState.FAILED, DeviceState.MISSING):
            return
        mem.state, mem.reason = DeviceState.FAILED, reason
        warnings.warn(
            f"pool {self._path}: device {index} failed: {reason}", PoolDegradedWarning, stacklevel=3
        )
        self._commit_membership()

    def _commit_membership(self) -> None:
        """Bump the generation, write it to every member in use, save the manifest."""
        self._generation += 1
        pending = True
        while pending:
            pending = False
            for mem in self._members:
                if not mem.writable or mem.sb is None or mem.device is None:
                    continue
                flags = mem.sb.flags & ~SuperblockFlags.REBUILDING
                rebuild = 0
                if mem.state is DeviceState.REBUILDING:
                    flags |= SuperblockFlags.REBUILDING
                    rebuild = mem.rebuilt_rows * self._block
                    try:
                        mem.device.sync()
                    except DeviceError:
                        rebuild = mem.sb.rebuild_offset
                sb = mem.sb.bumped(generation=self._generation, flags=flags, rebuild_offset=rebuild)
                try:
                    write_superblock(mem.device, sb)
                    mem.sb = sb
                except DeviceError as exc:
                    mem.state, mem.reason = DeviceState.FAILED, f"superblock write failed: {exc}"
                    pending = True
        self._manifest.generation = self._generation
        self._manifest.devices = [m.path for m in self._members]
        self._manifest.states = [
            DeviceState.FAILED.value if m.state is DeviceState.FAILED else m.state.value
            for m in self._members
        ]
        self._manifest.save(self._path)

    # ------------------------------------------------------------------
    # the row-group engine
    # ------------------------------------------------------------------

    def _rows(
        self,
        seg: _Segment,
        targets: dict[int, np.ndarray],
        *,
        need_all: bool = False,
        repair: bool = True,
        skip_devices: Iterable[int] = (),
        check_redundancy: bool = False,
        pad_from: dict[int, int] | None = None,
    ) -> _Outcome:
        """Read, verify, reconstruct and repair ``seg.n`` rows of one stripe.

        ``targets`` maps a data index to a buffer of ``n*B`` bytes to fill;
        with ``need_all`` every member is loaded and reconstructed (rebuild,
        scrub).  Members on ``skip_devices`` are treated as erased.
        ``pad_from`` maps a data index to its first row that holds only the
        extent's zero padding: those blocks are known (zeros), never erasures,
        so a partly filled row reads back from fewer members.
        """
        sm = self._stripe(seg.stripe)
        dmi = self._stripe_entry(seg.stripe)[1]
        b, n = self._block, seg.n
        nb = n * b
        members = sm.members
        out = _Outcome()
        bufs: list[np.ndarray | None] = [None] * len(members)
        out.bufs = bufs
        skip = set(skip_devices)
        known: dict[int, int] = {}  # member -> first row known to be zero padding
        if pad_from:
            for d, r in pad_from.items():
                if r < n:
                    for j in dmi[d]:
                        known[j] = r
        erased: set[int] = set()
        for j, m in enumerate(members):
            mem = self._members[m.device]
            unusable = m.device in skip or not mem.readable(seg.first + n)
            if unusable and known.get(j, n) > 0:
                erased.add(j)
        bad: dict[int, np.ndarray] = {}
        ioerr: set[int] = set()
        want: dict[int, np.ndarray] = {}
        for d, buf in targets.items():
            copies = dmi[d]
            choice = next((j for j in copies if j not in erased), copies[0])
            want[choice] = buf

        def load(j: int) -> None:
            buf = want.get(j)
            if buf is None:
                buf = np.empty(nb, dtype=np.uint8)
            bufs[j] = buf
            zero_from = known.get(j, n)
            if zero_from < n:
                buf[zero_from * b :] = 0
            if j in erased or zero_from == 0:
                return
            m = members[j]
            mem = self._members[m.device]
            assert mem.device is not None
            off, coff = self._addr(mem, m, seg.row)
            crcs = np.empty(zero_from, dtype="<u4")
            # batched on a plain file; through the device (retries, reports) otherwise
            if not self._read_run(mem, off, buf[: zero_from * b], coff, crcs):
                ioerr.add(j)
                erased.add(j)
                return
            bad_rows = verify_blocks(buf[: zero_from * b], b, crcs)
            if len(bad_rows):
                bad[j] = bad_rows

        for j in want:
            load(j)
        if not need_all and not bad and not (erased & set(want)):
            return out
        for j in range(len(members)):
            if bufs[j] is None:
                load(j)
        full: list[np.ndarray] = [x for x in bufs if x is not None]
        # save what was read of bad blocks (to tell a bad block from a bad checksum entry)
        saved = {
            (j, int(i)): bytes(full[j][int(i) * b : (int(i) + 1) * b])
            for j, rows in bad.items()
            for i in rows
        }
        # the erasure set of each row: erased members (but not where they are known
        # padding) and the blocks that failed their checksum
        per_row: list[frozenset[int]] = []
        bad_at: dict[int, set[int]] = {}
        for j, rows in bad.items():
            for i in rows:
                bad_at.setdefault(int(i), set()).add(j)
        for i in range(n):
            here = {j for j in erased if i < known.get(j, n)}
            here |= bad_at.get(i, set())
            per_row.append(frozenset(here))
        i = 0
        while i < n:
            e = per_row[i]
            stop = i + 1
            while stop < n and per_row[stop] == e:
                stop += 1
            if e:
                views = [x[i * b : stop * b] for x in full]
                for j in codec.reconstruct(sm, views, e):
                    out.lost.setdefault(j, set()).update(range(i, stop))
            i = stop
        # repair blocks that failed their checksum, where they could be reconstructed
        for (j, i), old in saved.items():
            if i in out.lost.get(j, ()):
                out.events.append((j, "checksum", False, "cannot reconstruct: too many bad"))
                continue
            if not repair:
                out.events.append((j, "checksum", False, "not repaired (repair=False)"))
                continue
            m = members[j]
            mem = self._members[m.device]
            block = full[j][i * b : (i + 1) * b]
            fix_data = bytes(block) != old
            try:
                off, coff = self._addr(mem, m, seg.row + i)
                assert mem.device is not None
                if fix_data:
                    mem.device.pwrite(off, block)
                mem.device.pwrite(coff, crc32c_blocks(block, b))
            except DeviceError as exc:
                out.events.append((j, "checksum", False, f"rewrite failed: {exc}"))
                self._mark_failed(m.device, f"repair write failed: {exc}")
                continue
            how = "rewrote block from redundancy" if fix_data else "rewrote checksum entry"
            out.events.append((j, "checksum", True, how))
        for j in sorted(ioerr) if check_redundancy else ():
            m = members[j]
            lost_rows = out.lost.get(j, set())
            if lost_rows or not repair:
                why = "cannot reconstruct" if lost_rows else "not repaired (repair=False)"
                out.events.append((j, "io", False, why))
                continue
            mem = self._members[m.device]
            off, coff = self._addr(mem, m, seg.row)
            try:
                assert mem.device is not None
                mem.device.pwrite(off, full[j])
                mem.device.pwrite(coff, crc32c_blocks(full[j], b))
                out.events.append((j, "io", True, "rewrote member from redundancy"))
            except DeviceError as exc:
                out.events.append((j, "io", False, f"rewrite failed: {exc}"))
                self._mark_failed(m.device, f"read and rewrite failed: {exc}")
        if check_redundancy:
            dirty = set(bad) | erased | set(out.lost)
            if not dirty or sm.codec is raid.Codec.MIRROR:
                for j, rows in codec.mismatched_rows(sm, full, b).items():
                    if j in dirty:
                        continue
                    kind = "copy" if sm.codec is raid.Codec.MIRROR else "parity"
                    if not repair:
                        out.events.append((j, kind, False, "not repaired (repair=False)"))
                        continue
                    self._fix_redundancy(sm, seg, full, j, rows)
                    how = "rewrote copy from copy 0" if kind == "copy" else "rewrote parity"
                    out.events.append((j, kind, True, how))
        out.bad_devices = {members[j].device for j in set(bad) | erased}
        return out

    def _fix_redundancy(
        self,
        sm: raid.StripeMap,
        seg: _Segment,
        full: list[np.ndarray],
        j: int,
        rows: np.ndarray,
    ) -> None:
        b = self._block
        fresh = [x.copy() for x in full]
        if sm.codec is raid.Codec.MIRROR:
            src = self._stripe_entry(seg.stripe)[1][sm.members[j].role.data_index or 0][0]
            fresh[j][:] = full[src]
        else:
            codec.encode(sm, fresh)
        m = sm.members[j]
        mem = self._members[m.device]
        assert mem.device is not None
        for i in rows:
            i = int(i)
            off, coff = self._addr(mem, m, seg.row + i)
            block = fresh[j][i * b : (i + 1) * b]
            mem.device.pwrite(off, block)
            mem.device.pwrite(coff, crc32c_blocks(block, b))

    # ------------------------------------------------------------------
    # data path
    # ------------------------------------------------------------------

    def write(self, data: Any) -> Extent:
        """Store ``data`` (any bytes-like object) in new rows; returns its :class:`Extent`."""
        if self._engine is not None:
            with self._admitted(), self._lock:
                self._check_open()
                return self._engine.write(data)
        view = byte_view(data)
        length = view.nbytes
        k, b = self.layout.k, self._block
        rows = -(-length // (k * b))
        if self._flat and self._SHARED_IO:
            with self._admitted():
                # shared: other writers' and readers' system calls run at the same time
                with self._lock.shared():
                    self._check_open()
                    if rows == 0:
                        return Extent(self._tag, 0, 0, 0)
                    first = self._alloc.alloc(rows)
                    try:
                        missed, errors = self._write_flat_io(first, rows, view)
                    except BaseException:
                        self._alloc.free(first, rows)
                        raise
                if errors:
                    with self._lock:
                        try:
                            self._settle_write(missed, errors)
                        except BaseException:
                            self._alloc.free(first, rows)
                            raise
                        finally:
                            self._reap_dead()
            return Extent(self._tag, first, rows, length)
        with self._admitted(), self._lock:
            self._check_open()
            if rows == 0:
                return Extent(self._tag, 0, 0, 0)
            first = self._alloc.alloc(rows)
            try:
                if self._flat:
                    self._write_flat(first, rows, view)
                else:
                    self._write_rows(first, rows, view)
            except BaseException:
                self._alloc.free(first, rows)
                raise
            finally:
                self._reap_dead()
        return Extent(self._tag, first, rows, length)

    def _scratch(self, kind: str, n: int, dtype: str) -> np.ndarray:
        """This thread's reused buffer ``kind`` of ``n`` items, 64-byte aligned; grown by
        doubling (fresh large buffers cost page faults)."""
        have = getattr(self._tls, kind, None)
        if have is None or len(have) < n:
            size = max(n, 2 * (0 if have is None else len(have)))
            have = _aligned_empty(size * np.dtype(dtype).itemsize).view(dtype)
            setattr(self._tls, kind, have)
            # what _shrink_caches gives back; threads that ended took theirs with them
            alive = {t.ident for t in threading.enumerate()}
            for key in [k for k in self._scratch_bytes if k[0] not in alive]:
                del self._scratch_bytes[key]
            self._scratch_bytes[threading.get_ident(), kind] = have.nbytes
        return have[:n]

    def _scratch_rows(self, rows: int) -> np.ndarray:
        """This thread's reused (devices × rows·B) buffer."""
        nd = self.layout.n_devices
        return self._scratch("rows", nd * rows * self._block, "u1").reshape(nd, rows * self._block)

    def _write_flat(self, first: int, rows: int, view: memoryview) -> None:
        """Write rows with one gathered write and one checksum write per device (the
        exclusive lock held): :meth:`_write_flat_io`, then :meth:`_settle_write`."""
        self._settle_write(*self._write_flat_io(first, rows, view))

    def _write_flat_io(
        self, first: int, rows: int, view: memoryview
    ) -> tuple[list[int], list[tuple[_Member, Device, DeviceError]]]:
        """The I/O of :meth:`_write_flat`, which changes no pool state (so it may run
        under a shared hold): returns the members it did not write to (unavailable)
        and those whose write failed, with the error.

        Data members are written straight from the caller's buffer (no copy);
        only parity and the zero-padded last chunks are built in scratch.
        """
        b, k = self._block, self.layout.k
        src = np.frombuffer(view, dtype=np.uint8)
        length = len(src)
        nd = self.layout.n_devices
        scratch = self._scratch_rows(rows)
        crcs = self._scratch_crcs(rows)
        iovs: list[list[np.ndarray]] = [[] for _ in range(nd)]
        for seg in self._segments(first, rows):
            sm, dmi = self._shape(seg.stripe)
            roles, no_data = self._member_roles(seg.stripe)
            n = seg.n
            nb = n * b
            r0 = seg.first - first
            lo = r0 * b
            off = seg.offset
            whole = off + k * nb <= length  # every data chunk lies in src
            views: list[np.ndarray] = []
            for dev, d in roles:
                if d is None:
                    v = scratch[dev, lo : lo + nb]
                else:
                    a = off + d * nb
                    if a + nb <= length:
                        v = src[a : a + nb]
                    else:
                        v = scratch[dev, lo : lo + nb]
                        part = src[a:length] if a < length else src[:0]
                        v[: len(part)] = part
                        v[len(part) :] = 0
                views.append(v)
                iovs[dev].append(v)
            codec.encode(sm, views)
            if whole:
                # the data chunks are back to back in src: one checksum call for all
                at = self._scratch_seg_crc(k * n)
                crc32c_blocks_into(src[off : off + k * nb], b, at)
                per_d = at.reshape(k, n)
                for d, copies in enumerate(dmi):
                    for j in copies:
                        crcs[roles[j][0], r0 : r0 + n] = per_d[d]
                rest: Iterable[int] = no_data
            else:
                rest = range(len(roles))
            for j in rest:
                crc32c_blocks_into(views[j], b, crcs[roles[j][0], r0 : r0 + n])
        failed: list[int] = []
        targets: list[_Member] = []
        for mem in self._members:
            if mem.writable:
                targets.append(mem)
            else:
                failed.append(mem.index)
        table = self._geo.table_off + 4 * first
        row_at = first * b
        work = []
        for mem in targets:
            assert mem.sb is not None
            base = mem.sb.data_offset
            work.append(
                (mem, ((base + row_at, iovs[mem.index]), (base + table, (crcs[mem.index],))))
            )
        results = self._write_requests(work, rows * b * len(targets))
        errors: list[tuple[_Member, Device, DeviceError]] = []
        for mem, exc in zip(targets, results, strict=True):
            if exc is None:
                continue
            if not isinstance(exc, DeviceError):
                raise exc
            assert mem.device is not None
            errors.append((mem, mem.device, exc))
        return failed, errors

    def _settle_write(
        self, missed: list[int], errors: list[tuple[_Member, Device, DeviceError]]
    ) -> None:
        """After a flat write (exclusive lock held): fail out the members whose write
        failed; DataLossError when the members written to are too few to hold it.  A
        member whose device was replaced since (and rebuilt from the others, which
        this write had reached) is left alone."""
        failed = list(missed)
        for mem, dev, exc in errors:
            if mem.device is not dev:
                continue
            self._mark_failed(mem.index, f"write failed: {exc}")
            failed.append(mem.index)
        if failed and not self.layout.survives(failed):
            raise DataLossError(
                f"pool {self._path}: cannot write: devices {failed} are unavailable, more than "
                f"RAID {self.layout.level} tolerates",
                failed=failed,
            )

    def _write_requests(
        self, work: Sequence[tuple[_Member, Sequence[tuple[int, Sequence[Any]]]]], nbytes: int
    ) -> list[BaseException | None]:
        """Write each member's ``(offset, buffers)`` requests; returns each member's
        exception or None, in order.

        Members on plain files are written by batched system calls with the GIL
        released once per thread (the fan-out's threads share them when ``nbytes``
        is large); the others, and any member whose batched write failed, through
        :meth:`Device.pwritev_batch` (retries, the breaker, fault injection).
        """
        out: list[BaseException | None] = [None] * len(work)
        fast: list[tuple[int, int]] = []  # (index in work, fd)
        slow: list[int] = []
        try:
            for i, (mem, _) in enumerate(work):
                fd = _enter_raw(mem.device, True)
                if fd is None:
                    slow.append(i)
                else:
                    fast.append((i, fd))
            if fast:
                # in-memory devices never wait: a hand-off to another thread only costs
                in_memory = all(work[i][0].device.in_memory for i, _ in fast)  # type: ignore[union-attr]
                n = 1 if in_memory else self._fanout.shares(len(fast), nbytes)
                parts = [fast[j::n] for j in range(n)]
                errors: list[list[int]] = [[] for _ in parts]

                def batch(j: int) -> None:
                    reqs = [(fd, off, bufs) for i, fd in parts[j] for off, bufs in work[i][1]]
                    errors[j] = pwritev_many(reqs)

                if n == 1:
                    # a batch that raised is checked below: its requests go through the devices
                    with contextlib.suppress(Exception):
                        batch(0)
                else:
                    self._fanout.run([functools.partial(batch, j) for j in range(n)], nbytes)
                for part, errs in zip(parts, errors, strict=True):
                    if not any(errs) and len(errs) == sum(len(work[i][1]) for i, _ in part):
                        continue
                    at = 0
                    for i, _ in part:
                        k = len(work[i][1])
                        # a failure (or a batch that raised): again through the device,
                        # which retries and reports
                        if len(errs) < at + k or any(errs[at : at + k]):
                            slow.append(i)
                        at += k
        finally:
            for i, _ in fast:
                work[i][0].device.leave_raw(True)  # type: ignore[union-attr]
        if slow:

            def put(i: int) -> None:
                mem, reqs = work[i]
                assert mem.device is not None
                mem.device.pwritev_batch(reqs)

            slow.sort()
            results = self._fanout.run([functools.partial(put, i) for i in slow], nbytes)
            for i, exc in zip(slow, results, strict=True):
                out[i] = exc
        return out

    def _replace_layout(self, layout: raid.Layout) -> None:
        """Switch to ``layout``, which must keep the rows (RAID 5EE compaction and expansion,
        :mod:`dwcore.pool.spare`), and save it in the manifest; the caller holds the lock."""
        if (layout.k, layout.stripe_count(self._geo.usable)) != (self.layout.k, self._geo.stripes):
            raise InvalidArgumentError(f"{layout!r} does not keep the rows of {self.layout!r}")
        self.layout = layout
        self._stripes = {}
        self._shapes.clear()
        self._roles.clear()
        self._devmap = None
        self._period = max(1, layout.period)
        self._flat = self._rows_are_flat()
        self._direct = self._reads_direct()
        self._manifest.layout = layout.params
        self._manifest.save(self._path)

    def _shrink_caches(self, level: Level) -> int:
        """Memory pressure: trim the stripe cache to :data:`~dwcore.memory.KEEP_FRACTION`
        of it and, from ``high`` up, give back the scratch buffers (reallocated by the
        next large request); returns bytes freed."""
        keep = KEEP_FRACTION[level]
        with self._lock:
            freed = 0
            if keep <= KEEP_FRACTION[Level.HIGH]:
                # every thread's scratch goes with the thread-local that holds it
                freed += sum(self._scratch_bytes.values())
                self._scratch_bytes.clear()
                self._tls = threading.local()
            stripes = self._stripes
            keep_n = int(len(stripes) * keep)
            freed += 512 * (len(stripes) - keep_n)  # a map and its index: small objects
            # a new dict of the newest entries: readers holding the old one go on with it
            self._stripes = dict(list(stripes.items())[len(stripes) - keep_n :])
            return freed

    def _scratch_seg_crc(self, n: int) -> np.ndarray:
        """This thread's reused checksum buffer of ``n`` entries."""
        return self._scratch("seg", n, "<u4")

    def _scratch_crcs(self, rows: int) -> np.ndarray:
        """This thread's reused (devices × rows) checksum buffer."""
        nd = self.layout.n_devices
        return self._scratch("crcs", nd * rows, "<u4").reshape(nd, rows)

    def _read_direct(self, ext: Extent, offset: int, end: int) -> bytes | None:
        """A read of each chunk from a readable copy, straight into the result: in one
        native call where the devices allow (:meth:`_read_native`), else per device one
        scattered read per run of rows and one checksum-table read through the
        devices; None (nothing returned) when a chunk has no readable copy, a device
        is unusable or a block fails its checksum, for the row or careful path to
        reconstruct and repair."""
        k, b = self.layout.k, self._block
        members = self._members
        # every member online: each chunk reads from its first copy, no per-chunk checks
        healthy = all(m.state is DeviceState.ONLINE and m.device is not None for m in members)
        if not healthy and self._flat and ext.rows > 1 and self._single_copy():
            return None  # a member may be missing with no copy: the row read rebuilds it
        out, outview = new_bytes_to_fill(end - offset)
        native = self._read_native(ext, offset, end, outview, healthy)
        if native is not None:
            if native:
                return None  # the careful path reads through the devices and reports
            del outview
            return out
        dst = np.frombuffer(outview, dtype=np.uint8)
        # device -> runs of (first global row, rows, views covering them back to back)
        plan: dict[int, list[tuple[int, int, list[np.ndarray]]]] = {}
        edges: list[tuple[np.ndarray, int, int, int]] = []  # block, lo, hi, dst offset
        flat = self._flat
        for seg in self._segments(ext.first_row, ext.rows):
            nb = seg.n * b
            if seg.offset >= end or seg.offset + k * nb <= offset:
                continue
            if flat:  # member j's rows lie at device blocks seg.first.. on roles[j][0]
                dmi = self._shape(seg.stripe)[1]
                devs = [dev for dev, _ in self._member_roles(seg.stripe)[0]]
                blk0 = [seg.first] * len(devs)
            else:  # at its own offset in the stripe
                sm, dmi, whole = self._stripe_entry(seg.stripe)
                if not whole:
                    return None  # that stripe takes the careful path
                devs = [m.device for m in sm.members]
                blk0 = [m.device_offset // b + seg.row for m in sm.members]
            for d in range(k):
                start = seg.offset + d * nb  # logical offset of the chunk's first row
                lo, hi = max(offset, start), min(end, start + nb)
                if lo >= hi:
                    continue
                r_a, r_z = (lo - start) // b, -(-(hi - start) // b)
                f_a, f_z = -(-(lo - start) // b), (hi - start) // b  # whole blocks inside
                if healthy:
                    j: int | None = dmi[d][0]
                else:
                    g_end = seg.first + r_z
                    j = next((j for j in dmi[d] if members[devs[j]].readable(g_end)), None)
                if j is None:
                    return None
                views: list[np.ndarray] = []
                if f_a > r_a:  # the first block starts before the range
                    blk = np.empty(b, dtype=np.uint8)
                    blo = start + r_a * b
                    edges.append((blk, lo - blo, min(hi, blo + b) - blo, lo - offset))
                    views.append(blk)
                if f_z > f_a:
                    views.append(dst[start + f_a * b - offset : start + f_z * b - offset])
                if f_z < r_z and r_z - 1 >= f_a:  # the last block ends after the range
                    blk = np.empty(b, dtype=np.uint8)
                    blo = start + (r_z - 1) * b
                    edges.append((blk, 0, hi - blo, blo - offset))
                    views.append(blk)
                at = blk0[j] + r_a  # the device block of the first row read
                pieces = plan.setdefault(devs[j], [])
                if pieces and pieces[-1][0] + pieces[-1][1] == at:
                    g, n, vs = pieces[-1]  # continues the previous run on this device
                    pieces[-1] = (g, n + r_z - r_a, vs + views)
                else:
                    pieces.append((at, r_z - r_a, views))
        # the checksum table and the runs of every device: on plain files in one batched
        # call (the GIL released once), through the device otherwise
        tables: list[tuple[np.ndarray, list[tuple[int, int, list[np.ndarray]]]]] = []
        fast: list[tuple[Any, ...]] = []
        entered: list[Device] = []
        try:
            for dv, pieces in plan.items():
                mem = self._members[dv]
                if mem.sb is None or mem.device is None:
                    return None
                base = mem.sb.data_offset
                g_lo = min(g for g, _, _ in pieces)
                g_end = max(g + n for g, n, _ in pieces)
                if g_end - g_lo > 2 * sum(n for _, n, _ in pieces) + 64:
                    return None  # runs far apart on one device: not worth one table read
                table = np.empty(g_end - g_lo, dtype="<u4")
                at_table = base + self._geo.table_off + 4 * g_lo
                fd = _enter_raw(mem.device, False)
                if fd is not None:
                    entered.append(mem.device)
                    fast.append((fd, at_table, [table]))
                    # each run verified against the table (read just before it in the
                    # same call) right after it is read, while its bytes are in cache
                    fast.extend(
                        (fd, base + g * b, vs, table[g - g_lo : g - g_lo + n], b)
                        for g, n, vs in pieces
                    )
                    continue
                tables.append((table, pieces))
                try:
                    mem.device.preadinto(at_table, table)
                    for g, _, vs in pieces:
                        mem.device.preadvinto(base + g * b, vs)
                except DeviceError:
                    return None
            if fast and any(preadv_many(fast)):
                return None  # the careful path reads through the devices and reports
        finally:
            for dev in entered:
                dev.leave_raw(False)
        for table, pieces in tables:
            g_lo = pieces[0][0]
            for g, _, vs in pieces:
                r = g - g_lo
                for v in vs:
                    n = len(v) // b
                    if len(verify_blocks(v, b, table[r : r + n])):
                        return None
                    r += n
        for blk, lo, hi, at in edges:
            dst[at : at + hi - lo] = blk[lo:hi]
        del dst, outview
        return out

    def _read_native(
        self, ext: Extent, offset: int, end: int, outview: memoryview, healthy: bool
    ) -> int | None:
        """A read planned, read and verified in one native call: :func:`read_flat` for
        a healthy flat layout, else :func:`read_segments` with each chunk read from its
        first readable copy.  Returns its result (0, or an errno after which the
        careful path must read), or None (nothing read) where it cannot serve the read:
        a chunk has no readable copy, a device must see its requests itself, or a
        stripe has odd members."""
        k, b = self.layout.k, self._block
        members = self._members
        if healthy and self._flat:
            devmap = self._data_devmap()
            if devmap is None:
                return None
            plan = (ext.first_row, ext.rows, self._rpc, b, k, devmap)
            used: Iterable[int] = range(len(members))
            s0 = ext.first_row // self._rpc
            if s0 == (ext.first_row + ext.rows - 1) // self._rpc:
                # one stripe: only the devices of the chunks in range
                nb = ext.rows * b
                used = set(devmap[s0 % len(devmap)][offset // nb : (end - 1) // nb + 1].tolist())
            return self._native_read(used, read_flat, outview, offset, end, *plan)
        table = []
        skip = -1  # extent bytes before the first segment the range needs
        for seg in self._segments(ext.first_row, ext.rows):
            if seg.offset + k * seg.n * b <= offset:
                continue
            if seg.offset >= end:
                break
            if skip < 0:
                skip = seg.offset
            if self._flat:  # member j's rows lie at device blocks seg.first..
                dmi = self._shape(seg.stripe)[1]
                places = [(dev, seg.first) for dev, _ in self._member_roles(seg.stripe)[0]]
            else:  # at its own offset in the stripe
                sm, dmi, whole = self._stripe_entry(seg.stripe)
                if not whole:
                    return None
                places = [(m.device, m.device_offset // b + seg.row) for m in sm.members]
            row = [seg.n]
            g_end = seg.first + seg.n
            for copies in dmi:
                if healthy:
                    row += places[copies[0]]
                    continue
                for j in copies:
                    if members[places[j][0]].readable(g_end):
                        row += places[j]
                        break
                else:
                    return None  # no copy to read: the careful path reconstructs
            table.append(row)
        if not table:
            return None
        segments = np.array(table, dtype=np.int64)
        return self._read_segments(outview, offset - skip, end - skip, segments, k)

    def _read_segments(
        self, outview: memoryview, offset: int, end: int, segments: np.ndarray, k: int
    ) -> int | None:
        """:func:`read_segments` of this pool's devices (``segments``: int64 rows of
        ``[rows, device, block] * k``, block in the devices' data areas; ``offset`` and
        ``end`` relative to the first; device -1: bytes left for the caller to fill); as
        :meth:`_native_read`.  Engines that place blocks by their own maps (RAID-Z,
        Adaptive, Beyond) read their healthy chunks with it."""
        used = {int(dev) for dev in segments[:, 1::2].flat if dev >= 0}
        return self._native_read(
            used, read_segments, outview, offset, end, segments, self._block, k
        )

    def _read_chunks(
        self,
        outview: memoryview,
        offset: int,
        end: int,
        rows: list[tuple[int, int, int]],
        holes: _Holes,
    ) -> _Holes | None:
        """For engines that place chunks by their own maps (Adaptive, Beyond): the
        chunks ``rows`` (one-member segments ``(rows, device, block)``; device -1
        for the ``holes``, left for the caller) read natively into ``outview``
        (``offset``/``end`` relative to the first chunk).  Returns ``holes`` when
        that read succeeded, None where it read nothing usable (every chunk a hole,
        a bad block, a device that is not a plain file)."""
        if len(holes) == len(rows):
            return None
        segments = np.array(rows, dtype=np.int64)
        return holes if self._read_segments(outview, offset, end, segments, 1) == 0 else None

    def _native_read(self, used: Iterable[int], read: Callable[..., int], *args: Any) -> int | None:
        """``read(*args, fds, bases, table offset)`` with the devices ``used`` entered
        for raw reads (the others' descriptors -1): its result, or None (nothing read)
        where one of them has no plain descriptor or no superblock."""
        members = self._members
        fds = [-1] * len(members)
        bases = [0] * len(members)
        entered: list[Device] = []
        table_off: int | None = None
        try:
            for dv in used:
                mem = members[dv]
                fd = _enter_raw(mem.device, False)
                if fd is None:
                    return None
                entered.append(mem.device)  # type: ignore[arg-type]
                if mem.sb is None:
                    return None
                at = self._table_off(dv)
                if table_off is not None and at != table_off:
                    return None  # one table offset per call (mixed-size BEYOND groups by it)
                table_off = at
                fds[dv] = fd
                bases[dv] = mem.sb.data_offset
            return read(*args, fds, bases, self._geo.table_off if table_off is None else table_off)
        finally:
            for dev in entered:
                dev.leave_raw(False)

    @staticmethod
    def _chunk_places(
        dmi: list[list[int]], start: int, nb: int, offset: int, end: int
    ) -> tuple[dict[int, int], list[tuple[int, int, int, int]]]:
        """Where one segment's data chunks (``nb`` bytes each from extent offset
        ``start``) go in the result of a read of ``offset:end``: ``{first copy: its
        offset in the result}`` for the chunks wholly inside, and ``(first copy, from,
        to, offset in the result)`` for those the range cuts."""
        whole: dict[int, int] = {}
        cut: list[tuple[int, int, int, int]] = []
        for d, copies in enumerate(dmi):
            a = start + d * nb
            if offset <= a and a + nb <= end:
                whole[copies[0]] = a - offset
            elif a < end and a + nb > offset:
                lo, hi = max(a, offset), min(a + nb, end)
                cut.append((copies[0], lo - a, hi - a, lo - offset))
        return whole, cut

    def _read_flat(self, ext: Extent, offset: int, end: int) -> bytes | None:
        """A read of whole rows: one read per device, and with devices missing the
        reconstruction of their rows; None to take the careful path.

        Data chunks wholly inside the range are read (or rebuilt) straight into the
        result; redundancy and the chunks the range cuts go to scratch first."""
        k, b = self.layout.k, self._block
        segs = [
            seg
            for seg in self._segments(ext.first_row, ext.rows)
            if seg.offset < end and seg.offset + k * seg.n * b > offset
        ]
        if not segs:
            return None
        g0, g1 = segs[0].first, segs[-1].first + segs[-1].n
        erased = {m.index for m in self._members if not m.readable(g1) or m.sb is None}
        out, outview = new_bytes_to_fill(end - offset)
        dst = np.frombuffer(outview, dtype=np.uint8)
        devbuf = self._scratch_rows(g1 - g0)
        want: set[int] = set()
        per_device: dict[int, list[np.ndarray]] = {}  # each device's rows, back to back
        stripes: list[tuple[raid.StripeMap, list[np.ndarray], set[int]]] = []
        # chunks the range cuts: (first copy, from, to, where in the result)
        cut: list[tuple[np.ndarray, int, int, int]] = []
        for seg in segs:  # each device's rows are loaded once for all segments
            sm, dmi = self._shape(seg.stripe)
            gone = {j for j, m in enumerate(sm.members) if m.device in erased}
            want |= {sm.members[j].device for j in codec.needed_members(sm, gone)}
            lo, nb = (seg.first - g0) * b, seg.n * b
            views = [devbuf[m.device, lo : lo + nb] for m in sm.members]
            whole, cuts = self._chunk_places(dmi, seg.offset, nb, offset, end)
            for j, at in whole.items():
                views[j] = dst[at : at + nb]
            cut += [(views[j], a, z, at) for j, a, z, at in cuts]
            for m, v in zip(sm.members, views, strict=True):
                per_device.setdefault(m.device, []).append(v)
            stripes.append((sm, views, gone))
        loads = {dv: per_device[dv] for dv in sorted(want)}
        if not self._load_verified(sorted(want), g0, g1 - g0, devbuf, loads):
            return None
        if erased:
            for sm, views, gone in stripes:
                if gone and codec.reconstruct(sm, views, gone):
                    return None
        for src, a, z, at in cut:
            dst[at : at + z - a] = src[a:z]
        del dst, outview
        return out

    def _read_stripes(self, ext: Extent, offset: int, end: int) -> bytes | None:
        """A read of a row layout that is not flat, around missing members: per stripe
        the members that rebuild the missing ones, read and verified in one batched
        call (data chunks wholly inside the range straight into the result), then
        rebuilt; None to take the careful path (a device that is not a plain file, a
        read or checksum that fails, a stripe with odd members, too much missing)."""
        k, b = self.layout.k, self._block
        out, outview = new_bytes_to_fill(end - offset)
        dst = np.frombuffer(outview, dtype=np.uint8)
        stripes: list[tuple[raid.StripeMap, list[np.ndarray], set[int]]] = []
        cut: list[tuple[np.ndarray, int, int, int]] = []  # as in _read_flat
        reqs: list[tuple[Any, ...]] = []
        fds: dict[int, int] = {}
        entered: list[Device] = []
        try:
            for seg in self._segments(ext.first_row, ext.rows):
                nb = seg.n * b
                if seg.offset >= end or seg.offset + k * nb <= offset:
                    continue
                sm, dmi, aligned = self._stripe_entry(seg.stripe)
                if not aligned:
                    return None
                g_end = seg.first + seg.n
                gone = {
                    j
                    for j, m in enumerate(sm.members)
                    if not self._members[m.device].readable(g_end)
                    or self._members[m.device].sb is None
                }
                whole, cuts = self._chunk_places(dmi, seg.offset, nb, offset, end)
                need = codec.needed_members(sm, gone)
                # the members read or rebuilt: straight into the result where they can
                views = [
                    dst[whole[j] : whole[j] + nb]
                    if j in whole
                    else np.empty(nb if j in need or j in gone else 0, dtype=np.uint8)
                    for j in range(len(sm.members))
                ]
                cut += [(views[j], a, z, at) for j, a, z, at in cuts]
                for j in need:
                    m = sm.members[j]
                    mem = self._members[m.device]
                    fd = fds.get(m.device)
                    if fd is None:
                        fd = _enter_raw(mem.device, False)
                        if fd is None:
                            return None
                        entered.append(mem.device)  # type: ignore[arg-type]
                        fds[m.device] = fd
                    off, coff = self._addr(mem, m, seg.row)
                    crcs = np.empty(seg.n, dtype="<u4")
                    reqs.append((fd, coff, [crcs]))
                    reqs.append((fd, off, [views[j]], crcs, b))
                stripes.append((sm, views, gone))
            if not stripes or any(preadv_many(reqs)):
                return None
        finally:
            for dev in entered:
                dev.leave_raw(False)
        for sm, views, gone in stripes:
            if gone and codec.reconstruct(sm, views, gone):
                return None
        for src, a, z, at in cut:
            dst[at : at + z - a] = src[a:z]
        del dst, outview, stripes, cut, reqs
        return out

    def _write_rows(self, first: int, rows: int, view: memoryview) -> None:
        k, b = self.layout.k, self._block
        src = np.frombuffer(view, dtype=np.uint8)
        length = len(src)
        for seg in self._segments(first, rows):
            sm = self._stripe(seg.stripe)
            nb = seg.n * b
            data: list[np.ndarray] = []
            for d in range(k):
                lo = seg.offset + d * nb
                part = src[lo : lo + nb] if lo < length else src[:0]
                if len(part) < nb:
                    padded = np.zeros(nb, dtype=np.uint8)
                    padded[: len(part)] = part
                    part = padded
                data.append(part)
            bufs: list[np.ndarray] = []
            for m in sm.members:
                di = m.role.data_index
                bufs.append(data[di] if di is not None else np.empty(nb, dtype=np.uint8))
            codec.encode(sm, bufs)
            crcs: dict[int, np.ndarray] = {}
            written: set[int] = set()
            for j, m in enumerate(sm.members):
                mem = self._members[m.device]
                if not mem.writable:
                    continue
                key = id(bufs[j])
                if key not in crcs:
                    crcs[key] = crc32c_blocks(bufs[j], b)
                off, coff = self._addr(mem, m, seg.row)
                try:
                    assert mem.device is not None
                    mem.device.pwrite(off, bufs[j])
                    mem.device.pwrite(coff, crcs[key])
                except DeviceError as exc:
                    self._mark_failed(m.device, f"write failed: {exc}")
                    continue
                written.add(j)
            missing = set(range(len(sm.members))) - written
            if codec.lost_members(sm, missing) & {
                j for j, m in enumerate(sm.members) if m.role.data_index is not None
            }:
                bad = sorted({sm.members[j].device for j in missing})
                raise DataLossError(
                    f"pool {self._path}: cannot write: devices {bad} are unavailable, more than "
                    f"RAID {self.layout.level} tolerates",
                    failed=bad,
                )

    def _read_range(self, ext: Extent, offset: int, length: int | None) -> int:
        """Check a read of ``ext`` from ``offset`` (an extent of this pool, a range inside
        it); returns the length, ``length`` or the rest of the extent."""
        self._check_extent(ext)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidArgumentError(f"offset must be an int >= 0, got {offset!r}")
        if offset > ext.length:
            raise InvalidArgumentError(f"offset {offset} is past the extent ({ext.length} bytes)")
        if length is None:
            length = ext.length - offset
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise InvalidArgumentError(f"length must be an int >= 0, got {length!r}")
        if offset + length > ext.length:
            raise InvalidArgumentError(
                f"range {offset}+{length} is past the end of the extent ({ext.length} bytes)"
            )
        return length

    def read(self, ext: Extent, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes (default: to the end) of ``ext`` from ``offset``.

        Verifies every block read; reconstructs around failed devices and bad
        blocks and repairs the latter.  Raises DataLossError when part of the
        range cannot be reconstructed.
        """
        length = self._read_range(ext, offset, length)
        if length == 0:
            return b""
        if self._engine is not None:
            with self._admitted(), self._lock:
                self._check_open()
                return self._engine.read(ext, offset, length)
        if self._direct:
            fast = None
            if self._SHARED_IO:
                # shared: other readers' and writers' system calls run at the same time
                with self._admitted(), self._lock.shared():
                    self._check_open()
                    fast = self._read_direct(ext, offset, offset + length)
                if fast is not None:
                    return fast
            with self._admitted(), self._lock:
                self._check_open()
                if not self._SHARED_IO:
                    fast = self._read_direct(ext, offset, offset + length)
                if fast is None and self._flat and ext.rows > 1:
                    fast = self._read_flat(ext, offset, offset + length)
                elif fast is None and not self._flat:
                    fast = self._read_stripes(ext, offset, offset + length)
                self._reap_dead()
            if fast is not None:
                return fast
        out = bytearray(length)
        outv = np.frombuffer(out, dtype=np.uint8)
        end = offset + length
        k, b = self.layout.k, self._block
        lost_ranges: list[tuple[int, int]] = []
        lost_devices: set[int] = set()
        with self._admitted(), self._lock:
            self._check_open()
            for seg in self._segments(ext.first_row, ext.rows):
                nb = seg.n * b
                if seg.offset >= end or seg.offset + k * nb <= offset:
                    continue
                spans: dict[int, tuple[int, int]] = {}
                for d in range(k):
                    lo = max(offset, seg.offset + d * nb)
                    hi = min(end, seg.offset + (d + 1) * nb)
                    if lo < hi:
                        rel = lo - seg.offset - d * nb
                        spans[d] = (rel // b, -(-(hi - seg.offset - d * nb) // b))
                r0 = min(a for a, _ in spans.values())
                r1 = max(z for _, z in spans.values())
                sub = _Segment(
                    seg.stripe, seg.row + r0, r1 - r0, seg.first + r0, seg.offset + r0 * b
                )
                targets: dict[int, np.ndarray] = {}
                direct: dict[int, bool] = {}
                for d in spans:
                    start = seg.offset + d * nb + r0 * b
                    stop = start + (r1 - r0) * b
                    if start >= offset and stop <= end:
                        targets[d] = outv[start - offset : stop - offset]
                        direct[d] = True
                    else:
                        targets[d] = np.empty((r1 - r0) * b, dtype=np.uint8)
                        direct[d] = False
                pad: dict[int, int] = {}
                for d in range(k):
                    valid = ext.length - (seg.offset + d * nb + r0 * b)
                    pad[d] = min(max(-(-valid // b), 0), r1 - r0)
                res = self._rows(sub, targets, pad_from=pad)
                dmi = self._stripe_entry(seg.stripe)[1]
                for d, buf in targets.items():
                    start = seg.offset + d * nb + r0 * b
                    lost_rows: set[int] = set()
                    for j in dmi[d]:
                        lost_rows |= res.lost.get(j, set())
                    for i in sorted(lost_rows):
                        lo = max(offset, start + i * b)
                        hi = min(end, start + (i + 1) * b)
                        if lo < hi:
                            lost_ranges.append((lo, hi))
                    if lost_rows:
                        lost_devices |= res.bad_devices
                    if not direct[d]:
                        lo = max(offset, start)
                        hi = min(end, start + len(buf))
                        outv[lo - offset : hi - offset] = buf[lo - start : hi - start]
            self._reap_dead()
        if lost_ranges:
            raise self._lost_range_error(ext, lost_ranges, lost_devices)
        return bytes(out)

    def free(self, ext: Extent) -> None:
        """Release the rows of ``ext`` (durable at the next :meth:`sync`)."""
        self._check_extent(ext)
        with self._lock:
            self._check_open()
            if self._engine is not None:
                self._engine.free(ext)
            elif ext.rows:
                self._alloc.free(ext.first_row, ext.rows)

    def physical(self, ext: Extent) -> list[tuple[int, int, int]]:
        """``(device, data-area offset, length)`` of every byte ``ext`` occupies on the
        devices (data, redundancy, padding), merged per device where contiguous: what a
        raw-I/O anchor must move to compare with writing or reading ``ext``."""
        self._check_extent(ext)
        with self._lock:
            if self._engine is not None:
                return list(self._engine.physical(ext))
            b = self._block
            runs: dict[int, list[list[int]]] = {}
            for seg in self._segments(ext.first_row, ext.rows):
                for m in self._stripe(seg.stripe).members:
                    off, n = m.device_offset + seg.row * b, seg.n * b
                    dev = runs.setdefault(m.device, [])
                    if dev and dev[-1][0] + dev[-1][1] == off:
                        dev[-1][1] += n
                    else:
                        dev.append([off, n])
            return [(d, off, n) for d in sorted(runs) for off, n in runs[d]]

    def _used_rows(
        self, live_extents: Iterable[Extent], known: bool = True
    ) -> list[tuple[int, int]]:
        """``(first_row, rows)`` of each extent, checked to be this pool's (``known``:
        also by the engine, which refuses extents it has no record of)."""
        check = self._check_extent if known or self._engine is None else self._check_ours
        used = []
        for ext in live_extents:
            check(ext)
            if ext.rows:
                used.append((ext.first_row, ext.rows))
        return used

    def check_rows(self, live_extents: Iterable[Extent]) -> tuple[int, int]:
        """What :meth:`reconcile` would find, changing nothing: ``(leaked, missing)``
        rows — allocated rows no live extent references, and rows live extents
        reference that the pool has free (or, for per-extent engines, does not know)."""
        used = self._used_rows(live_extents, known=False)
        with self._lock:
            self._check_open()
            if self._engine is not None:
                return self._engine.check(used)
            return placement.bitmap_diff(self._alloc.bitmap(), self._alloc.nblocks, used)

    def reconcile(self, live_extents: Iterable[Extent]) -> int:
        """Free rows no live extent references (leaked by a crash); returns rows freed.
        Rows live extents reference but the allocator had free are marked allocated."""
        used = self._used_rows(live_extents)
        with self._lock:
            self._check_open()
            if self._engine is not None:
                return self._engine.reconcile(used)
            return sum(n for _, n in self._alloc.reconcile(used))

    def sync(self, *, allocator: bool = True) -> None:
        """Make every extent written so far durable (devices and the allocator).

        Only devices written since their last flush are flushed, at the same
        time as the allocator's commit: the two are independent (a crash
        between them leaves at most allocated, unreferenced rows, which
        :meth:`reconcile` frees), and both precede whatever the caller commits
        next.  For row-striped layouts the flushes run without the pool lock,
        so other threads keep writing meanwhile (their extents become durable
        at a later sync).  Placement engines keep their maps in step with the
        flushes and sync under the lock.

        ``allocator=False`` flushes only the devices on row-striped layouts:
        the extents' bytes are durable, but after a crash the allocator may
        have forgotten their rows.  Only a caller that keeps its own durable
        record of every live extent may ask for it, and it must pass that
        record to :meth:`reconcile` (which restores the forgotten rows) before
        writing to a pool reopened after a crash; the object store does.
        """
        with self._lock:
            self._check_open()
            targets = [
                (m, m.device)
                for m in self._members
                if m.writable and m.device is not None and m.device.unsynced
            ]
            # flushes of RAM-backed files return at once: a hand-off would only cost
            parallel = not all(dev.in_memory for _, dev in targets)
            if self._engine is not None:
                self._finish_sync(targets, self._flush(targets, parallel, True))
                return
        results = self._flush(targets, parallel, allocator)
        with self._lock:
            if self._closed:
                return  # close() synced what it could
            self._finish_sync(targets, results)

    def _flush(
        self, targets: list[tuple[_Member, Device]], parallel: bool, allocator: bool
    ) -> list[BaseException | None]:
        """Flush the devices and (``allocator``) commit the allocator, all at once
        where flushes take real time, one after another where they do not (RAM).

        Plain files are flushed in one native call (:func:`fdatasync_many`: native
        threads, the GIL released once); devices that must flush themselves (block
        devices, fault injection, a device whose breaker is not closed) and the
        allocator's commit run on Python threads meanwhile.  Returns each device's
        exception or None, then the allocator's.
        """
        results: list[BaseException | None] = [None] * (len(targets) + 1)
        raw: list[tuple[int, int, Device]] = []  # (index in targets, fd, device)
        slow: list[int] = []
        for i, (_, dev) in enumerate(targets):
            fd = _enter_raw_sync(dev)
            if fd is None:
                slow.append(i)
            else:
                raw.append((i, fd, dev))
        errnos: list[int] = []
        calls: list[Callable[[], object]] = []
        try:
            if raw:

                def native() -> None:
                    errnos.extend(fdatasync_many([fd for _, fd, _ in raw], parallel))

                calls.append(native)
            calls.extend(functools.partial(targets[i][1].sync) for i in slow)
            if allocator:
                calls.append(self._alloc.sync)
            if parallel and len(calls) > 1:
                if self._sync_fanout is None:
                    self._sync_fanout = Fanout(helpers=min(self.layout.n_devices, 15))
                outcome = self._sync_fanout.run(calls)
            else:
                outcome = self._fanout.run(calls, nbytes=0)
        finally:
            for j, (i, _, dev) in enumerate(raw):
                # a native call that raised flushed nothing it can vouch for
                results[i] = dev.leave_raw_sync(errnos[j] if j < len(errnos) else errno.EIO)
        at = 1 if raw else 0
        if raw and outcome[0] is not None and not isinstance(outcome[0], Exception):
            raise outcome[0]  # KeyboardInterrupt and the like
        for i in slow:
            results[i] = outcome[at]
            at += 1
        if allocator:
            results[-1] = outcome[at]
        return results

    def _finish_sync(
        self, targets: list[tuple[_Member, Device]], results: list[BaseException | None]
    ) -> None:
        """Fail out devices whose flush failed, raise the allocator's failure (lock held)."""
        for (mem, dev), exc in zip(targets, results, strict=False):
            if exc is None:
                continue
            if not isinstance(exc, DeviceError):
                raise exc
            if mem.device is dev:  # not replaced while it flushed
                self._mark_failed(mem.index, f"sync failed: {exc}")
        if results[-1] is not None:
            raise results[-1]
        if self._engine is not None:
            self._engine.after_sync()

    def close(self, sync: bool = True) -> None:
        """Sync (unless ``sync=False``, which drops unsynced allocations like a crash)
        and close the devices the pool opened; closing twice is a no-op."""
        with self._lock:
            if self._closed:
                return
            try:
                if sync:
                    self.sync()
                    rebuilding = [m for m in self._members if m.state is DeviceState.REBUILDING]
                    if rebuilding:
                        self._checkpoint(rebuilding)
            finally:
                self._closed = True
                if self._engine is not None:
                    self._engine.close()
                CACHES.unregister(self._cache_name)
                self._fanout.close()
                if self._sync_fanout is not None:
                    self._sync_fanout.close()
                self._alloc.close(sync=sync)
                for mem in self._members:
                    if mem.owned and mem.device is not None:
                        mem.device.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------
    # membership
    # ------------------------------------------------------------------

    def _check_index(self, i: object) -> int:
        n = self.layout.n_devices
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise InvalidArgumentError(f"device index must be in 0..{n - 1}, got {i!r}")
        return i

    def fail_device(self, i: int) -> None:
        """Mark device ``i`` FAILED: no more I/O goes to it."""
        i = self._check_index(i)
        with self._lock:
            self._check_open()
            mem = self._members[i]
            if mem.state is DeviceState.FAILED:
                return
            mem.state, mem.reason = DeviceState.FAILED, "failed by request"
            self._commit_membership()

    def replace_device(
        self, i: int, path_or_device: DeviceSpec | None = None, *, force: bool = False
    ) -> None:
        """Put a blank device in the FAILED or MISSING slot ``i``; it becomes REBUILDING.

        ``None`` creates a new sparse file in the pool directory.  A device
        holding data is refused unless ``force`` (or it is a member of this pool).
        """
        i = self._check_index(i)
        with self._lock:
            self._check_open()
            mem = self._members[i]
            if mem.state in (DeviceState.ONLINE, DeviceState.REBUILDING):
                raise InvalidArgumentError(
                    f"device {i} is {mem.state.value}; fail it before replacing it"
                )
            spec: DeviceSpec
            if path_or_device is None:
                gen = 1
                while True:
                    spec = os.path.join(self._path, f"dev-{i:02d}.r{gen}")
                    if not os.path.exists(spec):
                        break
                    gen += 1
            else:
                spec = path_or_device
            size = self._replacement_size(i, spec)
            if not force and not self._own_member(spec):
                self._check_new_device(spec, size, force, i)
            dev, owned = self._open_new_device(spec, size)
            if mem.owned and mem.device is not None and mem.device is not dev:
                mem.device.close()
            sb = Superblock.for_device(
                size,
                pool_id=self._pool_id,
                device_index=i,
                device_count=self.layout.n_devices,
                layout=self.layout.level,
                layout_params={**self.layout.params, "block_size": self._block},
                chunk_size=self.layout.chunk_size,
                generation=self._generation,
                flags=SuperblockFlags.REBUILDING,
            )
            _install_superblock(dev, owned, sb)
            mem.device, mem.owned, mem.path, mem.sb = dev, owned, dev.path, sb
            mem.state, mem.reason, mem.rebuilt_rows = DeviceState.REBUILDING, "replacement", 0
            self._commit_membership()

    def _replacement_size(self, i: int, spec: DeviceSpec) -> int:
        """Bytes a replacement for slot ``i`` must have (and a new file gets)."""
        return self._manifest.device_size

    def add_device(self, path: DeviceSpec | None = None, size: int | None = None) -> int:
        """Grow the pool by one device; only levels with a zone table (BEYOND,
        :mod:`dwcore.pool.growth`) can, every other level raises InvalidArgumentError."""
        raise InvalidArgumentError(
            f"RAID {self.layout.level} cannot grow by adding devices (BEYOND pools can)"
        )

    def _own_member(self, spec: DeviceSpec) -> bool:
        """True when ``spec`` holds a superblock of this pool (a member coming back)."""
        try:
            if isinstance(spec, Device):
                sb = read_superblock(spec)
            elif os.path.exists(os.fspath(spec)):
                with FileDevice.open(spec, readonly=True) as dev:
                    sb = read_superblock(dev)
            else:
                return False
        except (DWError, OSError):
            return False
        return sb.pool_id == self._pool_id

    def _allocated_runs(self, start_row: int = 0) -> list[tuple[int, int]]:
        bits = np.unpackbits(np.frombuffer(self._alloc.bitmap(), dtype=np.uint8), bitorder="little")
        bits = bits[: self._geo.rows].astype(np.int8)
        bits[:start_row] = 0
        edges = np.diff(np.concatenate(([0], bits, [0])))
        starts = np.nonzero(edges == 1)[0]
        stops = np.nonzero(edges == -1)[0]
        return [(int(a), int(z - a)) for a, z in zip(starts, stops, strict=True)]

    def rebuild(self, progress: Callable[[int, int], Any] | None = None) -> None:
        """Reconstruct every REBUILDING device's members for all allocated rows.

        ``progress(done_bytes, total_bytes)`` is called after each step (bytes
        written to the replacements).  Checkpoints let an interrupted rebuild
        resume; at the end the devices are ONLINE and the generation is bumped.
        Raises DataLossError (leaving the device REBUILDING) for rows that
        cannot be reconstructed.
        """
        if self._engine is not None:
            return self._engine.rebuild(progress)
        b = self._block
        with self._lock:
            self._check_open()
            targets = [m for m in self._members if m.state is DeviceState.REBUILDING]
            if not targets:
                return
            start = min(m.rebuilt_rows for m in targets)
            runs = self._allocated_runs(start)
            total = sum(n for _, n in runs) * b * len(targets)
        done = 0
        since = 0
        if progress is not None:
            progress(0, total)
        tdev = {m.index for m in targets}
        for first, rows in runs:
            for g in range(first, first + rows, STEP_ROWS):
                n = min(STEP_ROWS, first + rows - g)
                with self._admitted(), self._lock:
                    self._check_open()
                    if any(m.state is not DeviceState.REBUILDING for m in targets):
                        raise InvalidArgumentError("device states changed during rebuild")
                    pending_targets = [m for m in targets if m.rebuilt_rows < g + n]
                    if not pending_targets:
                        continue
                    if not (self._flat and self._rebuild_flat(g, n, tdev)):
                        for seg in self._segments(g, n, STEP_ROWS):
                            self._rebuild_segment(seg, tdev)
                    for m in pending_targets:
                        m.rebuilt_rows = g + n
                    step = n * b * len(pending_targets)
                    done += step
                    since += step
                    if since >= CHECKPOINT_BYTES:
                        since = 0
                        self._checkpoint(pending_targets)
                if progress is not None:
                    progress(min(done, total), total)
        if progress is not None and done != total:
            progress(total, total)
        with self._lock:
            for m in targets:
                m.state, m.reason, m.rebuilt_rows = DeviceState.ONLINE, "", 0
                if m.device is not None:
                    m.device.sync()
            self._commit_membership()

    def _load_verified(
        self,
        devices: list[int],
        g0: int,
        n: int,
        devbuf: np.ndarray,
        into: dict[int, list[np.ndarray]] | None = None,
    ) -> bool:
        """Read rows [g0, g0+n) of each of ``devices`` into its row of ``devbuf`` (or
        into the buffers ``into[device]``, which cover those rows back to back), in
        parallel, and verify every block; False when a read fails or a block is bad.

        Devices on plain files are read by batched system calls (one per fan-out
        thread, the GIL released once); the others through the device."""
        b = self._block
        targets = into if into is not None else {dv: [devbuf[dv]] for dv in devices}
        table = self._geo.table_off + 4 * g0
        nbytes = n * b * len(devices)
        crcs = np.empty((len(devices), n), dtype="<u4")
        fast: list[tuple[int, int]] = []  # (position in devices, fd)
        slow: list[int] = []
        entered: list[Device] = []
        try:
            for pos, dv in enumerate(devices):
                dev = self._members[dv].device
                assert dev is not None
                fd = _enter_raw(dev, False)
                if fd is None:
                    slow.append(pos)
                else:
                    entered.append(dev)
                    fast.append((pos, fd))
            # in-memory devices never wait: a hand-off to another thread only costs
            in_memory = all(dev.in_memory for dev in entered)
            shares = 1 if in_memory else self._fanout.shares(len(fast), nbytes)
            parts = [fast[j::shares] for j in range(shares)] if fast else []

            def batch(part: list[tuple[int, int]]) -> None:
                reqs: list[tuple[Any, ...]] = []
                for pos, fd in part:
                    sb = self._members[devices[pos]].sb
                    assert sb is not None
                    # the table first: the rows are verified against it right after they
                    # are read, while their bytes are in cache
                    reqs.append((fd, sb.data_offset + table, [crcs[pos]]))
                    reqs.append((fd, sb.data_offset + g0 * b, targets[devices[pos]], crcs[pos], b))
                if any(preadv_many(reqs)):
                    raise _BadBlocks  # read again through the devices, which report

            results = self._fanout.run([functools.partial(batch, part) for part in parts], nbytes)
        finally:
            for dev in entered:
                dev.leave_raw(False)
        for part, exc in zip(parts, results, strict=True):
            if exc is None:
                continue
            if not isinstance(exc, _BadBlocks):
                raise exc
            slow.extend(pos for pos, _ in part)

        def load(pos: int) -> None:
            mem = self._members[devices[pos]]
            assert mem.device is not None and mem.sb is not None
            base = mem.sb.data_offset
            bufs = targets[mem.index]
            mem.device.preadvinto(base + g0 * b, bufs)
            mem.device.preadinto(base + table, crcs[pos])
            at = 0
            for buf in bufs:
                if len(verify_blocks(buf, b, crcs[pos, at : at + len(buf) // b])):
                    raise _BadBlocks
                at += len(buf) // b

        results = self._fanout.run([functools.partial(load, pos) for pos in slow], nbytes)
        for exc in results:
            if exc is not None and not isinstance(exc, (DeviceError, _BadBlocks)):
                raise exc
        return all(exc is None for exc in results)

    def _rebuild_flat(self, g0: int, n: int, tdev: set[int]) -> bool:
        """Rebuild rows [g0, g0+n) with one read per surviving device and one write per
        target; False (nothing written) when anything needs the careful path."""
        b = self._block
        erased = {m.index for m in self._members if not m.readable(g0 + n) or m.sb is None}
        erased |= tdev
        devbuf = self._scratch_rows(n)
        survivors = [m.index for m in self._members if m.index not in erased]
        if not self._load_verified(survivors, g0, n, devbuf):
            return False
        for seg in self._segments(g0, n):
            sm, _ = self._shape(seg.stripe)
            lo = (seg.first - g0) * b
            views = [devbuf[m.device, lo : lo + seg.n * b] for m in sm.members]
            gone = {j for j, m in enumerate(sm.members) if m.device in erased}
            if codec.reconstruct(sm, views, gone):
                return False
        for t in sorted(tdev):
            mem = self._members[t]
            assert mem.device is not None and mem.sb is not None
            base = mem.sb.data_offset
            try:
                mem.device.pwrite(base + g0 * b, devbuf[t])
                mem.device.pwrite(base + self._geo.table_off + 4 * g0, crc32c_blocks(devbuf[t], b))
            except DeviceError as exc:
                self._mark_failed(t, f"write failed during rebuild: {exc}")
                raise
        return True

    def _rebuild_segment(self, seg: _Segment, tdev: set[int]) -> None:
        """Rebuild one stripe's rows through the careful (per-member) path."""
        b = self._block
        res = self._rows(seg, {}, need_all=True, skip_devices=tdev)
        sm = self._stripe(seg.stripe)
        for j, m in enumerate(sm.members):
            if m.device not in tdev:
                continue
            if res.lost.get(j):
                failed = sorted(res.bad_devices - tdev)
                raise DataLossError(
                    f"pool {self._path}: rebuild of device {m.device} cannot "
                    f"reconstruct stripe {seg.stripe}: devices {failed} are failed "
                    f"or corrupt beyond what RAID {self.layout.level} tolerates",
                    failed=failed,
                )
            mem = self._members[m.device]
            buf = res.bufs[j]
            assert buf is not None and mem.device is not None
            off, coff = self._addr(mem, m, seg.row)
            try:
                mem.device.pwrite(off, buf)
                mem.device.pwrite(coff, crc32c_blocks(buf, b))
            except DeviceError as exc:
                self._mark_failed(m.device, f"write failed during rebuild: {exc}")
                raise

    def _checkpoint(self, members: list[_Member]) -> None:
        for m in members:
            if m.device is None or m.sb is None:
                continue
            m.device.sync()
            sb = dataclasses.replace(m.sb, rebuild_offset=m.rebuilt_rows * self._block)
            write_superblock(m.device, sb)
            m.sb = sb

    # ------------------------------------------------------------------
    # scrub and status
    # ------------------------------------------------------------------

    def scrub(
        self, repair: bool = True, progress: Callable[[int, int], Any] | None = None
    ) -> ScrubReport:
        """Read and verify every member of every allocated row.

        Checks each block's checksum and the redundancy (parity recomputed,
        copies compared); with ``repair`` rewrites what is wrong from the
        redundancy.  ``progress(done_bytes, total_bytes)`` counts user rows.
        """
        if self._engine is not None:
            return self._engine.scrub(repair, progress)
        b = self._block
        report = ScrubReport()
        found: dict[tuple[int, int, str], list[tuple[bool, str]]] = {}
        with self._lock:
            self._check_open()
            runs = self._allocated_runs()
        total = sum(n for _, n in runs) * b * self.layout.k
        done = 0
        stripes: set[int] = set()
        for first, rows in runs:
            for seg in self._segments(first, rows, STEP_ROWS):
                with self._admitted(), self._lock:
                    self._check_open()
                    res = self._rows(seg, {}, need_all=True, repair=repair, check_redundancy=True)
                    sm = self._stripe(seg.stripe)
                    self._reap_dead()
                for j, kind, ok, how in res.events:
                    found.setdefault((seg.stripe, sm.members[j].device, kind), []).append((ok, how))
                stripes.add(seg.stripe)
                report.rows_checked += seg.n
                report.bytes_checked += seg.n * b * len(sm.members)
                done += seg.n * b * self.layout.k
                if progress is not None:
                    progress(done, total)
        report.stripes_checked = len(stripes)
        for (s, dev, kind), outcomes in sorted(found.items()):
            ok = all(o for o, _ in outcomes)
            hows = sorted({h for _, h in outcomes})
            report.mismatches.append(Mismatch(s, dev, kind, ok, "; ".join(hows)))
        return report

    def status(self) -> PoolStatus:
        """Device states, capacity and use (user bytes), degraded or not, rebuild progress."""
        with self._lock:
            self._check_open()
            if self._engine is not None:
                return self._engine_status()
            k, b = self.layout.k, self._block
            st = self._alloc.stats_dict(False)
            used_rows = int(st["nblocks"]) - int(st["free_blocks"])
            infos = [DeviceInfo(m.index, m.path, m.state) for m in self._members]
            rebuilding = [m for m in self._members if m.state is DeviceState.REBUILDING]
            progress: float | None = None
            if rebuilding:
                pos = min(m.rebuilt_rows for m in rebuilding)
                done = self._alloc.count_allocated(0, pos) if pos else 0
                progress = done / used_rows if used_rows else 1.0
                progress = min(progress, 1.0)
            return PoolStatus(
                level=self.layout.level,
                devices=infos,
                capacity=self._geo.rows * k * b,
                used=used_rows * k * b,
                degraded=any(m.state is not DeviceState.ONLINE for m in self._members),
                rebuild_progress=progress,
                failed=tuple(
                    m.index
                    for m in self._members
                    if m.state in (DeviceState.FAILED, DeviceState.MISSING)
                ),
                reasons={m.index: m.reason for m in self._members if m.reason},
            )

    def _engine_status(self) -> PoolStatus:
        """:meth:`status` for a per-extent placement level (capacity from its engine)."""
        assert self._engine is not None
        capacity, used = self._engine.capacity()
        return PoolStatus(
            level=self.layout.level,
            devices=[DeviceInfo(m.index, m.path, m.state) for m in self._members],
            capacity=capacity,
            used=used,
            degraded=any(m.state is not DeviceState.ONLINE for m in self._members),
            rebuild_progress=self._engine.rebuild_progress(),
            failed=tuple(
                m.index
                for m in self._members
                if m.state in (DeviceState.FAILED, DeviceState.MISSING)
            ),
            reasons={m.index: m.reason for m in self._members if m.reason},
        )

    # ------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The pool directory."""
        return self._path

    @property
    def pool_id(self) -> uuid.UUID:
        """The pool's UUID (in every superblock and, abbreviated, every extent)."""
        return self._pool_id

    @property
    def block_size(self) -> int:
        """Checksum and row block size in bytes."""
        return self._block

    @property
    def checksum_table_offset(self) -> int:
        """Where each device's checksum table starts, relative to its data area."""
        return self._geo.table_off

    @property
    def rows(self) -> int:
        """Rows (allocation units) in the pool."""
        return self._geo.rows

    @property
    def generation(self) -> int:
        """Membership generation (bumped on fail, replace and end of rebuild)."""
        return self._generation

    @property
    def devices(self) -> list[Device | None]:
        """The open device of each slot (None when FAILED-and-closed or MISSING)."""
        return [m.device for m in self._members]

    def __repr__(self) -> str:
        return f"<Pool {self._path} RAID {self.layout.level} x{self.layout.n_devices}>"
