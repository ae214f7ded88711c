"""RAID 7's write-back cache with its own journal, in front of the row engine.

:class:`Raid7Pool` is the :class:`~dwcore.pool.pool.Pool` of a
:class:`~dwcore.raid.raid7.Raid7` layout (RAID 4 placement: data devices
0..N-2, dedicated XOR parity on device N-1).

Write path
----------
``write(data)`` waits, if the cache is full, until destaging made room;
allocates the extent's rows; in ``journaled`` mode appends one record (rows,
length, CRC-32C of the data, then the data) to the journal and syncs it; puts
the data in the cache (dirty) and returns the :class:`Extent`: the write is
acknowledged and durable before any member device was touched.  In
``volatile`` mode nothing is journaled; the pool warns with
:class:`VolatileCacheWarning` when it is built, and both
:meth:`Raid7Pool.status` (:class:`Raid7Status`) and
:meth:`Raid7Pool.cache_status` report the mode: an acknowledged write still in
the cache is lost by a power cut (the loss is bounded by the dirty set; such
an extent then raises :class:`~dwcore.errors.DataLossError` — its rows were
never written — unless its rows held an older extent, which is why a caller
commits an extent only after :meth:`~Raid7Pool.sync`, as for every pool).

The journal
-----------
A write-ahead log on its own log device (:class:`Journal`), as md's raid5
journal or ZFS's SLOG: any :class:`~dwcore.devices.Device` given as
``journal=`` to :meth:`Raid7Pool.create` and :meth:`Raid7Pool.open` — it
should be on another disk than the members; the pool directory then keeps a
small stub naming it — or, by default, a file-backed log device: the file
``cache.journal`` in the pool directory (as safe as the disk of the pool
directory).  With the layout option ``journal_on="members"`` (§5's other
choice) the journal is instead mirrored on members 0 and 1
(:class:`_MirrorStore`: the free part of their first metadata area, after
the superblock, about 1 MiB): each record is written and synced on both
before the write is acknowledged; a copy whose write fails is failed out
with its member and the journal goes on with the other; at open the copy
of the journal the pool records (a copy an earlier journal left on a member
that failed and came back never wins), then with the newest epoch and the
most records, is replayed and both copies get its next epoch in both header
slots; replacing one of them flushes the cache first and gives the new
member its copy (both slots written, so no header of another journal or
pool stays there).

The on-disk format (version 3).  Two header slots of 4 KiB (written
alternately, so a torn header write leaves the other) hold the magic, the
version, the pool id, the journal id (new at every format: a new pool,
:meth:`~Raid7Pool.replace_journal`) and the epoch; of the two slots, one of
this pool is preferred over another pool's, one of the journal the pool
records over another journal's, then the newest epoch.  Each record starts
on a 4 KiB boundary (appending never rewrites a page that holds an
acknowledged record) and its header carries the journal id, the epoch, a
sequence number (1, 2, … in each epoch), the rows, the length and the data's
CRC-32C, under a CRC of its own.  Emptying the journal bumps the epoch (older
records no longer count) and, for the file, truncates it.  Formatting leaves
whatever the space held (a device or metadata area that held an earlier
journal of this pool, or another pool's), but those records name another
journal id (or are of version 2, another record magic), so none can count in
the new journal.  A record that does not fit the journal device even when it
is empty is written through: destaged and synced before the write returns.

Journal failure
---------------
The manifest records (``pool.json``, key ``raid7_journal``, written
atomically) the journal in use and its state: ``clean`` (emptied after
everything it held was on the members and synced: written at each
checkpoint and clean close), ``dirty`` (written before the first record after
a checkpoint is appended: it may hold acknowledged writes) or ``failed``
(retired: never replayed again).  When the journal fails in use (an append,
its sync, or emptying it raises), nothing acknowledged is lost: the pool
stops using it, destages and syncs the whole cache, records the journal
``failed`` (its stub then names no device, a journal file is renamed
``cache.journal.failed``) and runs **write-through** — every write on the
members and synced before it returns — warning with
:class:`~dwcore.pool.PoolDegradedWarning`; :meth:`Raid7Pool.status` reports
``cache_mode="write-through"``, ``journal_state="failed"``, ``degraded`` and
the reason in ``reasons[-1]``.  :meth:`Raid7Pool.replace_journal` gives it a
new, empty journal (a new journal id) and journaled write-back resumes.  At
open, a journal that is missing, blank or unreadable: when the record says
``clean`` the pool opens write-through and warns (giving the journal again
at a later open resumes it); when it says ``dirty`` opening raises
:class:`JournalMissingError` unless ``force_journal_loss=True`` (the journal
is then retired and :class:`JournalLostWarning` warns that the writes
acknowledged since the last checkpoint may be lost); a journal that failed
earlier keeps the pool write-through.  A journal of another pool (or
another journal of this pool while the record says ``dirty``) is never
replayed.  A pool from before the record opens as it did and gains it.

Destaging
---------
Each member device has its own I/O worker thread with a bounded queue
(``dwcore-raid7-io-<pool>-dev<i>``).  Destaging an extent computes its whole
rows in the cache — parity from the cached data, so nothing is read from the
devices (no read-modify-write, no pre-reads; the partial-stripe RMW of §5
never arises because rows are never shared) — and queues one gathered
request per device on that device's worker; the extent stays in the cache
(reads hit it) until every device finished.  Completions are settled under
the pool lock: a device whose write failed is failed out (the pool's usual
failure handling); with the failures within RAID 7's tolerance the extent
leaves the cache (destaged degraded, no loss), beyond it the extent stays
dirty and :meth:`~Raid7Pool.flush` raises.  Devices that are FAILED get no
request.  Destaging starts for the oldest extents once they are
``max_dirty_s`` old (background destager), once more than half the cache is
dirty (without waiting), and when a writer finds the cache full (it waits
for room); :meth:`Raid7Pool.flush` / ``sync`` / ``close`` queue everything,
wait until every queue is drained, sync every device on its worker, sync the
allocator and empty the journal.  When the cache has drained on its own the
background destager does the same (a checkpoint), so the journal stays
short.  Scrub and rebuild read rows themselves, step by step under the pool
lock: before each step the cached extents among its rows are destaged and
the destages touching them waited for (rebuild flushes the whole cache
first, scrub does not need to).

Recovery
--------
On open, every complete record of the current epoch (a torn last record is
an unacknowledged write) is put back in the cache in order — its rows marked
allocated — and flushed as above.  Replaying an extent that was freed after
its write leaves its rows allocated (a leak that
:meth:`~dwcore.pool.pool.Pool.reconcile` frees).  How each version is read:

* version 3 (this dwcore): the records from the first on, while each names
  the header's journal id and epoch and has the next sequence number (and its
  CRCs hold);
* version 2 (dwcore before the journal id in records; an older dwcore
  refuses version 3): its records carry no journal id, so they are read by
  that version's rule — the header's epoch and the next sequence number, as
  that dwcore read them.  That rule is safe for a version 2 journal formatted
  on blank space, as a pool's first journal was (a new file, a blank device,
  the metadata area of new members); only one formatted over older records of
  the same space (``replace_journal``, reused members) was exposed, which is
  what version 3 closes.  Once replayed
  (or when it holds nothing) the journal is emptied into a version 3 header of
  the same journal id, and every later record is a version 3 one (until then,
  an append would be a version 2 record);
* version 1 (an appended file, dwcore before the journal device): replayed
  the same way and replaced by a version 3 journal.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import queue
import struct
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from dwcore import raid
from dwcore.alloc import BlockAllocator
from dwcore.checksum import crc32c, crc32c_blocks
from dwcore.devices import Device, DeviceError
from dwcore.devices.base import byte_view
from dwcore.devices.errors import DeviceIOError
from dwcore.devices.superblock import METADATA_SIZE, SUPERBLOCK_SIZE, read_superblock
from dwcore.errors import (
    CorruptionError,
    DataLossError,
    DWError,
    InvalidArgumentError,
    UnsupportedFormatError,
)
from dwcore.memory import CACHES
from dwcore.pool import codec
from dwcore.pool.extent import Extent
from dwcore.pool.manifest import Manifest
from dwcore.pool.pool import DeviceSpec, Pool, PoolDegradedWarning
from dwcore.pool.status import PoolStatus, ScrubReport

__all__ = [
    "JOURNAL_NAME",
    "CacheStats",
    "Journal",
    "JournalLostWarning",
    "JournalMissingError",
    "Raid7Pool",
    "Raid7Status",
    "VolatileCacheWarning",
]

JOURNAL_NAME = "cache.journal"
_MAGIC = b"DWRAID7J"
_VERSION = 3
#: the oldest header version read (version 1 is an appended file, read apart)
_V2 = 2
_PREFIX = struct.Struct("<8sI")  # magic, version: the same in every version
# magic, version, flags, epoch, pool id, journal id, capacity (0: a growing file); the
# same in versions 2 and 3
_HEADER = struct.Struct("<8sIIQ16s16sQ")
_SLOT = 4096  # two header slots, then the records
_RECORDS_AT = 2 * _SLOT
_ALIGN = 4096  # every record starts on a page of its own
# version 3: magic, journal id, epoch, sequence, first row, rows, length, data crc
_REC = struct.Struct("<4s16sQQQQQI")
_REC_MAGIC = b"J7R3"
# version 2 (no journal id): magic, epoch, sequence, first row, rows, length, data crc
_V2_REC = struct.Struct("<4sQQQQQI")
_V2_REC_MAGIC = b"J7R2"
_EXTERNAL = 1  # header flag: a stub, the journal lives on a separate device
_V1_REC = struct.Struct("<4sQQQII")  # version 1: magic, sequence, first row, rows, length, crc
_V1_REC_MAGIC = b"J7RC"
#: manifest.extra key of the journal state record (module documentation, "Journal failure")
_STATE_KEY = "raid7_journal"
_STATE_VERSION = 1
#: the journal id a retired journal's stub names: no journal device matches it
_NIL_ID = uuid.UUID(int=0)
#: The members whose metadata areas hold the mirrored journal (``journal_on="members"``).
MIRROR_MEMBERS = (0, 1)
#: Requests queued per device before a submitter waits (the queues are bounded).
QUEUE_DEPTH = 32

#: The journal device :meth:`Raid7Pool.create` / :meth:`Raid7Pool.open` pass to __init__.
_JOURNAL_ARG: ContextVar[Device | None] = ContextVar("dwcore_raid7_journal", default=None)
#: ``force_journal_loss`` of :meth:`Raid7Pool.open`, passed to __init__.
_FORCE_ARG: ContextVar[bool] = ContextVar("dwcore_raid7_force_journal_loss", default=False)


class VolatileCacheWarning(UserWarning):
    """A RAID 7 pool runs its write-back cache in ``volatile`` mode: acknowledged
    writes not yet destaged are lost on a power cut."""


class JournalLostWarning(PoolDegradedWarning):
    """A RAID 7 pool was opened with ``force_journal_loss=True`` without the journal
    that may have held acknowledged writes not yet destaged: those writes (since the
    last checkpoint) may be lost."""


class JournalMissingError(DataLossError):
    """Opening a journaled RAID 7 pool whose journal is missing, blank or unreadable
    while it may hold acknowledged writes not yet on the members (the pool was not
    closed cleanly).  Give the journal device, or open with
    ``force_journal_loss=True`` to accept losing those writes."""


class _JournalAbsent(Exception):
    """The recorded journal is missing, blank or unreadable (the message says which);
    :class:`Raid7Pool` decides whether the pool opens without it."""


@dataclass
class CacheStats:
    """Counters of the write-back cache."""

    writes: int = 0
    journal_appends: int = 0
    write_through: int = 0
    read_hits: int = 0
    destaged_extents: int = 0
    destaged_bytes: int = 0
    #: Gathered write requests queued on the device workers (one per device per extent).
    destage_requests: int = 0
    replayed_extents: int = 0
    checkpoints: int = 0


@dataclass(frozen=True)
class Raid7Status(PoolStatus):
    """:class:`~dwcore.pool.status.PoolStatus` plus the write-back cache's state.

    ``cache_mode`` is ``"journaled"``, ``"volatile"`` (acknowledged writes not yet
    destaged, ``dirty_bytes``, are lost on a power cut) or ``"write-through"`` (a
    journaled pool without a usable journal: every write is on the members and synced
    before it returns).  ``journal_state`` is ``"ok"``, ``"failed"`` (it failed
    while in use, or at an earlier run, until :meth:`Raid7Pool.replace_journal`),
    ``"missing"`` (absent, blank or unreadable at open) or ``"none"`` (volatile);
    when it is failed or missing the pool is ``degraded`` and ``reasons[-1]`` says
    why.
    """

    cache_mode: str = "journaled"
    volatile: bool = False
    dirty_bytes: int = 0
    dirty_extents: int = 0
    journal: str | None = None
    journal_state: str = "ok"


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


# ----------------------------------------------------------------------
# the journal
# ----------------------------------------------------------------------


class _FileStore:
    """The journal as a file of the pool directory: grows as needed, truncated when
    emptied."""

    capacity: int | None = None

    def __init__(self, path: str, create: bool) -> None:
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
        self.name = path
        self._fd = os.open(path, flags, 0o644)
        if create:  # the file's name must survive a power cut too
            dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def write(self, offset: int, buffers: Sequence[Any]) -> None:
        left = [memoryview(b).cast("B") for b in buffers]
        while left:
            done = os.pwritev(self._fd, left, offset)
            if done <= 0:
                raise OSError(errno.EIO, f"{self.name}: journal write made no progress")
            offset += done
            while left and done >= len(left[0]):
                done -= len(left[0])
                left.pop(0)
            if left and done:
                left[0] = left[0][done:]

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def trim(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _DeviceStore:
    """The journal on a separate :class:`~dwcore.devices.Device` (the caller owns it)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.name = device.path
        self.capacity: int | None = device.size

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.device.size - offset))
        return self.device.pread(offset, length) if length else b""

    def write(self, offset: int, buffers: Sequence[Any]) -> None:
        self.device.pwritev(offset, buffers)

    def sync(self) -> None:
        self.device.sync()

    def trim(self, size: int) -> None:
        """Nothing to give back on a device (old records are told apart by their epoch)."""

    def close(self) -> None:
        """The caller closes its device."""


class _MirrorStore:
    """The journal mirrored on two members' metadata areas (``journal_on="members"``):
    the free part of the first 1 MiB metadata area of members :data:`MIRROR_MEMBERS`,
    after the superblock.  Writes and syncs go to every writable copy (a copy whose
    write fails is failed out with its member; the journal fails when none is left);
    reads come from the copy chosen at open (:meth:`Raid7Pool._open_mirror`)."""

    def __init__(self, pool: Raid7Pool) -> None:
        self._pool = pool
        self.capacity: int | None = METADATA_SIZE - SUPERBLOCK_SIZE
        self.name = "members " + ",".join(map(str, MIRROR_MEMBERS)) + " (metadata areas)"
        self.source = MIRROR_MEMBERS[0]

    def copies(self) -> list[tuple[int, Device]]:
        """The writable members holding a copy."""
        out = []
        for i in MIRROR_MEMBERS:
            mem = self._pool._members[i]
            if mem.writable and mem.device is not None:
                out.append((i, mem.device))
        return out

    def read(self, offset: int, length: int) -> bytes:
        assert self.capacity is not None
        length = max(0, min(length, self.capacity - offset))
        dev = self._pool._members[self.source].device
        if dev is None:
            raise DeviceIOError(f"journal copy on member {self.source} is gone", self.name)
        return dev.pread(SUPERBLOCK_SIZE + offset, length) if length else b""

    def _each(self, what: str, call: Callable[[Device], object]) -> None:
        done = 0
        for i, dev in self.copies():
            try:
                call(dev)
            except DeviceError as exc:
                self._pool._mark_failed(i, f"journal {what} failed: {exc}")
            else:
                done += 1
        if not done:
            raise DeviceIOError(f"{self.name}: no journal copy left to {what}", self.name)

    def write(self, offset: int, buffers: Sequence[Any]) -> None:
        self._each("write", lambda dev: dev.pwritev(SUPERBLOCK_SIZE + offset, buffers))

    def sync(self) -> None:
        self._each("sync", lambda dev: dev.sync())

    def trim(self, size: int) -> None:
        """Nothing to give back (old records are told apart by their epoch)."""

    def close(self) -> None:
        """The members belong to the pool."""


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _rename_durably(src: str, dst: str) -> None:
    """Rename ``src`` over ``dst`` and sync the directory (the new name survives a crash)."""
    os.replace(src, dst)
    dfd = os.open(os.path.dirname(dst) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _write_stub(path: str, pool_id: uuid.UUID, jid: uuid.UUID, exclusive: bool = False) -> None:
    """Write the stub naming the separate journal device ``jid`` (both header slots),
    synced; ``exclusive``: ``path`` must not exist yet."""
    if not exclusive and os.path.exists(path):
        os.unlink(path)
    stub = _FileStore(path, create=True)
    try:
        for slot in range(2):
            stub.write(slot * _SLOT, [_pack_header(_EXTERNAL, slot, pool_id, jid, 0)])
        stub.sync()
    finally:
        stub.close()


def _pack_header(flags: int, epoch: int, pool_id: uuid.UUID, jid: uuid.UUID, cap: int) -> bytes:
    head = _HEADER.pack(_MAGIC, _VERSION, flags, epoch, pool_id.bytes, jid.bytes, cap)
    return head + crc32c(head).to_bytes(4, "little")


class _Head(NamedTuple):
    """A valid header slot."""

    flags: int
    epoch: int
    pool_id: uuid.UUID
    journal_id: uuid.UUID
    version: int


def _device_header(
    device: Device, pool_id: uuid.UUID, want: uuid.UUID | None, recorded: bool
) -> _Head | None:
    """:func:`_read_header` of a journal device; where the manifest records a journal
    there (``recorded``), a read failure or a blank device is :class:`_JournalAbsent`."""
    try:
        head = _read_header(_DeviceStore(device), pool_id, want)
    except DeviceError as exc:
        if recorded:
            raise _JournalAbsent(f"journal device {device.path}: {exc}") from None
        raise
    if head is None and recorded:
        raise _JournalAbsent(f"journal device {device.path} is blank")
    return head


def _read_header(
    store: _FileStore | _DeviceStore | _MirrorStore,
    pool_id: uuid.UUID | None = None,
    want: uuid.UUID | None = None,
) -> _Head | None:
    """The header slot that counts; None when neither slot holds a valid one (a blank
    device).  Slots of pool ``pool_id`` are preferred over those of another pool, then
    slots of journal ``want`` (the journal the pool records) over those of another
    journal, then the newest epoch: a slot left by another pool or an earlier journal
    on the same space never hides the current journal's.  Raises for another format or
    a newer version."""
    best: tuple[tuple[bool, bool, int], _Head] | None = None
    for slot in range(2):
        raw = store.read(slot * _SLOT, _HEADER.size + 4)
        if len(raw) < _PREFIX.size:
            continue
        magic, version = _PREFIX.unpack_from(raw)
        if magic != _MAGIC:
            continue
        if version > _VERSION:
            raise UnsupportedFormatError(
                f"{store.name}: RAID 7 journal version {version} is newer than this dwcore"
            )
        if len(raw) < _HEADER.size + 4 or version < _V2:
            continue
        head = raw[: _HEADER.size]
        if crc32c(head) != int.from_bytes(raw[_HEADER.size :], "little"):
            continue  # a torn header write: the other slot holds the previous epoch
        _m, _v, flags, epoch, pid, jid, _cap = _HEADER.unpack(head)
        got = _Head(flags, epoch, uuid.UUID(bytes=pid), uuid.UUID(bytes=jid), version)
        key = (
            pool_id is not None and got.pool_id == pool_id,
            want is not None and got.journal_id == want,
            epoch,
        )
        if best is None or key > best[0]:
            best = (key, got)
    return None if best is None else best[1]


class Journal:
    """The write-ahead journal of a RAID 7 cache (module documentation); not thread-safe
    (the pool lock serialises it).  Build one with :meth:`open_for`."""

    def __init__(self, store: _FileStore | _DeviceStore | _MirrorStore, pool_id: uuid.UUID) -> None:
        self._store = store
        self.pool_id = pool_id
        self.journal_id = uuid.uuid4()
        self.epoch = 0
        #: the on-disk version of the current epoch's records (a version 2 journal is
        #: read, and appended to, by its own rule until it is next emptied)
        self.version = _VERSION
        self._end = _RECORDS_AT
        self._seq = 0
        self._touched = False  # bytes may lie past the records (a failed append)

    def _adopt(self, head: _Head) -> None:
        """Continue the journal ``head`` names (its id, epoch and version)."""
        self.journal_id, self.epoch, self.version = head.journal_id, head.epoch, head.version

    # -- opening ----------------------------------------------------------

    @classmethod
    def open_for(
        cls, directory: str, pool_id: uuid.UUID, device: Device | None, *, recorded: bool = False
    ) -> Journal:
        """The journal of the pool in ``directory``: the file ``cache.journal`` there, or
        ``device`` when the pool keeps its journal on a separate device (the file is
        then a stub naming it).  A version 1 file raises UnsupportedFormatError: the
        pool replays it (:func:`read_v1_records`), removes it and asks again.

        ``recorded``: the pool's manifest records its journal (dwcore since the
        journal state record), so a journal that is missing, blank or unreadable
        raises ``_JournalAbsent`` and the pool decides what follows.  Without
        it (a new pool, or one from before the record) a missing journal is
        created, as a new pool's is."""
        path = os.path.join(directory, JOURNAL_NAME)
        if not os.path.exists(path):
            if recorded and device is None:
                raise _JournalAbsent(f"{path} is missing")
            return cls._new(path, pool_id, device, recorded)
        if os.path.getsize(path) <= _RECORDS_AT and _MAGIC not in _read_file(path):
            if recorded:
                raise _JournalAbsent(f"{path} holds no journal header")
            # created, but its header never reached the disk: no record can be there
            os.unlink(path)
            return cls._new(path, pool_id, device, recorded)
        try:
            stub = _FileStore(path, create=False)
        except OSError as exc:
            if recorded:
                raise _JournalAbsent(f"{path}: {exc}") from None
            raise
        try:
            try:
                head = _read_header(stub, pool_id)
            except OSError as exc:
                if recorded:
                    raise _JournalAbsent(f"{path}: {exc}") from None
                raise
            if head is None:
                raw = stub.read(0, _PREFIX.size)
                if len(raw) == _PREFIX.size and _PREFIX.unpack(raw) == (_MAGIC, 1):
                    raise UnsupportedFormatError(f"{path}: a version 1 RAID 7 journal")
                if recorded:
                    raise _JournalAbsent(f"{path}: no valid journal header")
                raise CorruptionError(f"{path}: not a dwcore RAID 7 journal")
            flags, pid, jid = head.flags, head.pool_id, head.journal_id
            if pid != pool_id:
                raise CorruptionError(f"{path}: the RAID 7 journal of another pool ({pid})")
            if not flags & _EXTERNAL:
                if device is not None:
                    raise InvalidArgumentError(
                        f"pool {directory} keeps its RAID 7 journal in {path}; open it "
                        f"without journal="
                    )
                journal = cls(stub, pool_id)
                journal._adopt(head)
                return journal
        except BaseException:
            stub.close()
            raise
        stub.close()
        if device is None:
            if recorded:
                raise _JournalAbsent(
                    f"no journal device given (the pool keeps its journal {jid} on a separate "
                    f"device)"
                )
            raise InvalidArgumentError(
                f"pool {directory} keeps its RAID 7 journal on a separate device (journal "
                f"{jid}); pass that device as journal= to Raid7Pool.open"
            )
        store = _DeviceStore(device)
        head = _device_header(device, pool_id, jid, recorded)
        if head is None or head.pool_id != pool_id or head.journal_id != jid:
            raise InvalidArgumentError(
                f"{device.path} is not the RAID 7 journal {jid} of pool {directory}"
            )
        journal = cls(store, pool_id)
        journal._adopt(head)
        return journal

    @classmethod
    def create_for(cls, directory: str, pool_id: uuid.UUID, device: Device | None) -> Journal:
        """A new, empty journal (a new journal id) for the pool in ``directory``, in
        place of whatever ``cache.journal`` holds: the file itself, or ``device``
        (formatted) and a stub naming it.  The file or stub is written aside and renamed
        into place, so a crash leaves the old one or the new one."""
        path = os.path.join(directory, JOURNAL_NAME)
        tmp = path + ".new"
        if os.path.exists(tmp):
            os.unlink(tmp)
        if device is None:
            store = _FileStore(tmp, create=True)
            try:
                journal = cls(store, pool_id)
                journal._format(0)
                _rename_durably(tmp, path)
            except BaseException:
                store.close()
                raise
            store.name = path
            return journal
        journal = cls(_DeviceStore(device), pool_id)
        _write_stub(tmp, pool_id, journal.journal_id)
        _rename_durably(tmp, path)
        journal._format(device.size)
        return journal

    @staticmethod
    def check_blank(device: Device) -> None:
        """Refuse ``device`` as a new journal device: too small, or it holds a RAID 7
        journal already, or a dwcore superblock (a pool member)."""
        if device.size < _RECORDS_AT + _ALIGN:
            raise InvalidArgumentError(
                f"journal device {device.path} is too small ({device.size} bytes; at least "
                f"{_RECORDS_AT + _ALIGN})"
            )
        try:
            read_superblock(device)
        except (DWError, OSError):
            pass  # no valid superblock: not a pool member
        else:
            raise InvalidArgumentError(
                f"journal device {device.path} holds a dwcore superblock (a pool member); "
                f"give a blank device"
            )
        head = _read_header(_DeviceStore(device))
        if head is not None:
            raise InvalidArgumentError(
                f"journal device {device.path} holds the RAID 7 journal of another pool "
                f"({head.pool_id}); give a blank device"
            )

    @classmethod
    def _new(cls, path: str, pool_id: uuid.UUID, device: Device | None, recorded: bool) -> Journal:
        if device is None:
            journal = cls(_FileStore(path, create=True), pool_id)
            journal._format(0)
            return journal
        head = _device_header(device, pool_id, None, recorded)
        if head is None or head.pool_id != pool_id:
            cls.check_blank(device)  # too small, or another pool's journal
        journal = cls(_DeviceStore(device), pool_id)
        if head is None:
            journal._format(device.size)
        else:  # this pool's journal whose stub was lost: keep its records
            journal._adopt(head)
        _write_stub(path, pool_id, journal.journal_id, exclusive=True)
        return journal

    def _format(self, capacity: int) -> None:
        """Write both header slots (epochs 0 and 1: the journal starts empty at epoch 1).
        Whatever the space held before stays, but no record there can count: every
        record names its journal, and this one's id is new."""
        for slot in range(2):
            self._store.write(
                slot * _SLOT, [_pack_header(0, slot, self.pool_id, self.journal_id, capacity)]
            )
        self._store.sync()
        self.epoch, self.version = 1, _VERSION

    # -- records ----------------------------------------------------------

    @property
    def capacity(self) -> int | None:
        """Bytes the journal can hold (None: a file, which grows)."""
        return self._store.capacity

    def fits(self, length: int, empty: bool = False) -> bool:
        """True when a record of ``length`` data bytes fits now (``empty``: in an empty
        journal)."""
        cap = self._store.capacity
        at = _RECORDS_AT if empty else self._end
        return cap is None or at + _REC.size + 4 + length <= cap

    def _pack_record(self, seq: int, first_row: int, rows: int, data: bytes) -> bytes:
        """A record's header (with its CRC) in the journal's version."""
        dcrc = crc32c(data)
        if self.version == _V2:
            head = _V2_REC.pack(_V2_REC_MAGIC, self.epoch, seq, first_row, rows, len(data), dcrc)
        else:
            head = _REC.pack(
                _REC_MAGIC, self.journal_id.bytes, self.epoch, seq, first_row, rows, len(data), dcrc
            )
        return head + crc32c(head).to_bytes(4, "little")

    def append(self, first_row: int, rows: int, data: bytes) -> None:
        """Append one record and sync the journal device (the write is then acknowledged)."""
        seq = self._seq + 1
        head = self._pack_record(seq, first_row, rows, data)
        # gathered: the data is not copied into one record first
        self._touched = True
        self._store.write(self._end, [head, data])
        self._store.sync()
        # advanced only once durable: a failed append is overwritten by the next one
        self._seq = seq
        self._end = _align(self._end + len(head) + len(data))

    def records(self) -> Iterator[tuple[int, int, bytes]]:
        """``(first_row, rows, data)`` of every complete record of the current epoch, in
        order; stops at the first torn, stale, foreign or corrupt one (appends continue
        there).  A version 3 record counts only when it names this journal, its epoch
        and the next sequence number; a version 2 record (no journal id) when it has
        the epoch and the next sequence number."""
        rec, magic_want = (_V2_REC, _V2_REC_MAGIC) if self.version == _V2 else (_REC, _REC_MAGIC)
        jid = self.journal_id.bytes
        pos, seq = _RECORDS_AT, 0
        self._end, self._seq = pos, seq
        while True:
            raw = self._store.read(pos, rec.size + 4)
            if len(raw) < rec.size + 4:
                return
            head = raw[: rec.size]
            if crc32c(head) != int.from_bytes(raw[rec.size :], "little"):
                return
            if rec is _V2_REC:
                magic, epoch, rseq, first, rows, length, dcrc = rec.unpack(head)
                owner = jid
            else:
                magic, owner, epoch, rseq, first, rows, length, dcrc = rec.unpack(head)
            if magic != magic_want or owner != jid or epoch != self.epoch or rseq != seq + 1:
                return
            data = self._store.read(pos + rec.size + 4, length)
            if len(data) != length or crc32c(data) != dcrc:
                return
            seq = rseq
            pos = _align(pos + rec.size + 4 + length)
            self._end, self._seq = pos, seq
            yield first, rows, data

    def clear(self, force: bool = False, both: bool = False) -> None:
        """Empty the journal durably (after the devices hold everything it held): the
        next epoch goes to the other header slot, in the current version (a version 2
        journal is upgraded here).  ``force``: also when no record was read or written
        (records of the current epoch are then dropped unread).  ``both``: then the
        other slot too, so neither holds a header of another journal or pool (a member
        that gets its copy of the mirrored journal)."""
        if self._end == _RECORDS_AT and self._seq == 0 and not self._touched and not force:
            return
        epoch = self.epoch + 1
        slots = [epoch % 2, (epoch + 1) % 2] if both else [epoch % 2]
        for slot in slots:  # one at a time: a torn write leaves a valid slot
            self._store.write(
                slot * _SLOT,
                [_pack_header(0, epoch, self.pool_id, self.journal_id, self._store.capacity or 0)],
            )
            self._store.sync()
        self.epoch, self.version = epoch, _VERSION
        self._end, self._seq, self._touched = _RECORDS_AT, 0, False
        self._store.trim(_RECORDS_AT)

    @property
    def size(self) -> int:
        """Bytes of records in the journal."""
        return self._end - _RECORDS_AT

    @property
    def name(self) -> str:
        """Where the journal lives (the file's path or the device's)."""
        return self._store.name

    def close(self) -> None:
        """Close the file (its records stay for the next open); a device stays open."""
        self._store.close()


def read_v1_records(path: str) -> list[tuple[int, int, bytes]]:
    """Every complete record of a version 1 journal file (an appended file: 12-byte
    header, then records), in order."""
    out: list[tuple[int, int, bytes]] = []
    with open(path, "rb") as f:
        raw = f.read()
    pos = _PREFIX.size
    while pos + _V1_REC.size + 4 <= len(raw):
        head = raw[pos : pos + _V1_REC.size]
        if crc32c(head) != int.from_bytes(
            raw[pos + _V1_REC.size : pos + _V1_REC.size + 4], "little"
        ):
            break
        magic, _seq, first, rows, length, dcrc = _V1_REC.unpack(head)
        at = pos + _V1_REC.size + 4
        data = raw[at : at + length]
        if magic != _V1_REC_MAGIC or len(data) != length or crc32c(data) != dcrc:
            break
        out.append((first, rows, data))
        pos = at + length
    return out


# ----------------------------------------------------------------------
# the device workers
# ----------------------------------------------------------------------


class _Job:
    """One request set spread over device workers: an extent's destage (``entry`` set)
    or a sync barrier; counted down as the workers finish their parts."""

    __slots__ = ("_lock", "_pool", "done", "entry", "errors", "first", "missed", "pending", "rows")

    def __init__(self, pool: Raid7Pool, parts: int, entry: _Entry | None = None) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self.pending = parts
        self.entry = entry
        self.first = -1 if entry is None else entry.ext.first_row
        self.rows = 0 if entry is None else entry.ext.rows
        self.missed: list[int] = []
        self.errors: list[tuple[int, Device, BaseException]] = []
        self.done = False

    def part_done(self, index: int, device: Device, exc: BaseException | None) -> None:
        with self._lock:
            if exc is not None:
                self.errors.append((index, device, exc))
            self.pending -= 1
            last = self.pending == 0
        if last:
            self._pool._completed_job(self)


class _Discarded(Exception):
    """A queued request dropped by ``close(sync=False)`` (a power cut)."""


_Item = tuple[_Job, int, Device, Callable[[], object]]


class _Worker:
    """One device's I/O thread and its bounded queue of requests."""

    def __init__(self, name: str, depth: int) -> None:
        self.name = name
        self._queue: queue.Queue[_Item | None] = queue.Queue(depth)
        self._discard = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Requests waiting or running."""
        return self._queue.unfinished_tasks

    def put(self, item: _Item) -> None:
        """Queue ``item`` (waits while the queue is full); after :meth:`stop` it runs on
        the calling thread."""
        if self._stopped:
            self._execute(item)
        else:
            self._queue.put(item)

    def _execute(self, item: _Item) -> None:
        job, index, device, call = item
        exc: BaseException | None = None
        if self._discard:
            exc = _Discarded("dropped: the pool was closed without a sync")
        else:
            try:
                call()
            except BaseException as e:  # reported to the pool; the worker keeps going
                exc = e
        job.part_done(index, device, exc)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._execute(item)
            finally:
                self._queue.task_done()

    def stop(self, discard: bool) -> None:
        """Finish (``discard``: drop) what is queued, end the thread and wait for it."""
        if self._stopped:
            return
        self._discard = discard
        self._queue.put(None)
        self._thread.join()
        self._stopped = True
        self._discard = False


# ----------------------------------------------------------------------
# the pool
# ----------------------------------------------------------------------


@dataclass(eq=False)
class _Entry:
    """A dirty extent in the cache; ``job`` is its destage while one is in flight."""

    ext: Extent
    buf: bytes
    born: float
    job: _Job | None = None


def _is_write_back(layout: raid.Layout) -> bool:
    return bool(getattr(layout, "write_back", False))


class Raid7Pool(Pool):
    """A RAID 7 pool: RAID 4 rows behind a journaled write-back cache (module docs)."""

    # its own data path: requests hold the pool lock exclusively; destage I/O runs on the
    # device workers, settled under the lock (and waited for before scrub or rebuild
    # reads the rows it touches)
    _SHARED_IO = False

    @classmethod
    def create(  # type: ignore[override]
        cls,
        path: str | os.PathLike[str],
        level: str | int,
        devices: int | Sequence[DeviceSpec],
        device_size: int | None,
        chunk_size: int | None = None,
        block_size: int = 4096,
        *,
        force: bool = False,
        journal: Device | None = None,
        **level_options: Any,
    ) -> Pool:
        """:meth:`Pool.create` for RAID 7.

        ``journal`` is the device of the write-ahead journal (a separate log
        device, as ZFS's SLOG or md's raid5 journal): give a
        :class:`~dwcore.devices.Device` on another disk than the members (a
        :class:`~dwcore.devices.FileDevice` or :class:`~dwcore.devices.BlockDevice`,
        ideally a fast one); the caller keeps ownership of it and passes it to
        every :meth:`open`.  Without it the journal is a file-backed log device:
        the file ``cache.journal`` in ``path`` — on the file system of the pool
        directory, so it is only as safe as that disk (on its own disk, away from
        the members, it is a separate log device too)."""
        try:
            count = devices if isinstance(devices, int) else len(devices)
        except TypeError:
            count = 0  # Pool.create says what is wrong with it
        lay: Any = raid.layout(level, max(count, 3), chunk_size, **level_options)
        if not _is_write_back(lay):
            raise InvalidArgumentError(f"Raid7Pool is for RAID 7 pools, not RAID {level}")
        if journal is not None:  # refused before anything is written
            if lay.cache_mode == "volatile":
                raise InvalidArgumentError("a volatile RAID 7 cache has no journal; journal= given")
            if lay.journal_on == "members":
                raise InvalidArgumentError(
                    "journal_on='members' keeps the journal on the members; journal= given"
                )
            if not isinstance(devices, int) and any(d is journal for d in devices):
                raise InvalidArgumentError(
                    f"journal device {journal.path} is also given as a member device"
                )
            Journal.check_blank(journal)
        token = _JOURNAL_ARG.set(journal)
        try:
            return super().create(
                path,
                level,
                devices,
                device_size,
                chunk_size,
                block_size,
                force=force,
                **level_options,
            )
        finally:
            _JOURNAL_ARG.reset(token)

    @classmethod
    def open(  # type: ignore[override]
        cls,
        path: str | os.PathLike[str],
        devices: Sequence[DeviceSpec | None] | None = None,
        *,
        journal: Device | None = None,
        force_journal_loss: bool = False,
    ) -> Pool:
        """:meth:`Pool.open` for RAID 7; ``journal``: the separate journal device the
        pool was created with (refused when the pool keeps its journal in its
        directory).

        A journal that is missing, blank or unreadable (module documentation,
        "Journal failure"): when it was clean (emptied at the last close or
        checkpoint) the pool opens write-through and warns
        (:class:`~dwcore.pool.PoolDegradedWarning`); when it may hold acknowledged
        writes not yet destaged, opening raises :class:`JournalMissingError`
        unless ``force_journal_loss`` (then it opens write-through, retires that
        journal for good and warns with :class:`JournalLostWarning`).  A journal of
        another pool is refused either way."""
        token = _JOURNAL_ARG.set(journal)
        force = _FORCE_ARG.set(bool(force_journal_loss))
        try:
            return super().open(path, devices)
        finally:
            _FORCE_ARG.reset(force)
            _JOURNAL_ARG.reset(token)

    def __init__(
        self,
        path: str,
        manifest: Manifest,
        layout: raid.Layout,
        members: list[Any],
        alloc: BlockAllocator,
    ) -> None:
        if not _is_write_back(layout):
            raise InvalidArgumentError(f"Raid7Pool is for RAID 7 pools, not RAID {layout.level}")
        super().__init__(path, manifest, layout, members, alloc)
        lay: Any = self.layout
        journal_dev = _JOURNAL_ARG.get()
        self._volatile = lay.cache_mode == "volatile"
        self._mirrored = getattr(lay, "journal_on", "log") == "members"
        if self._volatile and journal_dev is not None:
            raise InvalidArgumentError("a volatile RAID 7 cache has no journal; journal= given")
        self._cache_bytes: int = lay.cache_bytes
        self._max_age: float = lay.max_dirty_s
        self._dirty: OrderedDict[int, _Entry] = OrderedDict()
        self._dirty_bytes = 0
        self._inflight_bytes = 0
        self._out: set[_Job] = set()  # destage jobs queued and not yet settled
        self._error: BaseException | None = None  # why an extent stayed dirty
        self._io_cond = threading.Condition()
        self._completed: list[_Job] = []
        self._settled = 0  # reaps so far (writers waiting for room watch it)
        self.cache_stats = CacheStats()
        self._journal: Journal | None = None
        #: why a journaled pool runs write-through (no usable journal), else None
        self._journal_problem: tuple[str, str] | None = None  # (state, reason)
        #: a journal lost while in use, retired once everything is destaged
        self._lost_journal: Journal | None = None
        tag = self._pool_id.hex[:8]
        self._workers = [
            _Worker(f"dwcore-raid7-io-{tag}-dev{i}", QUEUE_DEPTH) for i in range(lay.n_devices)
        ]
        try:
            if self._volatile:
                warnings.warn(
                    f"pool {self._path}: RAID 7 cache_mode='volatile': acknowledged writes not "
                    f"yet destaged are lost on a power cut",
                    VolatileCacheWarning,
                    stacklevel=3,
                )
            else:
                self._open_journal(journal_dev, _FORCE_ARG.get())
        except BaseException:
            self._stop_workers(discard=True)
            if self._journal is not None:
                self._journal.close()
            CACHES.unregister(self._cache_name)  # what Pool.__init__ set up
            self._fanout.close()
            raise
        self._stop = threading.Event()
        self._destager = threading.Thread(
            target=self._destage_loop, name=f"dwcore-raid7-destage-{tag}", daemon=True
        )
        self._destager.start()

    def _journal_record(self) -> dict[str, Any] | None:
        """The journal state record of the manifest (None: a new pool, or one from
        before the record)."""
        rec = self._manifest.extra.get(_STATE_KEY)
        if rec is None:
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("version"), int):
            raise CorruptionError(f"pool {self._path}: invalid RAID 7 journal record {rec!r}")
        if rec["version"] > _STATE_VERSION:
            raise UnsupportedFormatError(
                f"pool {self._path}: RAID 7 journal record version {rec['version']} is newer "
                f"than this dwcore reads ({_STATE_VERSION})"
            )
        if rec.get("state") not in ("clean", "dirty", "failed"):
            raise CorruptionError(f"pool {self._path}: invalid RAID 7 journal record {rec!r}")
        return rec

    def _save_journal_record(self, journal_id: uuid.UUID, state: str, reason: str = "") -> None:
        """Record durably (in the manifest) the journal in use and whether it may hold
        acknowledged writes not on the members (``dirty``), none (``clean``), or was
        retired (``failed``: never replayed; the pool runs write-through)."""
        rec = {"version": _STATE_VERSION, "id": str(journal_id), "state": state}
        if reason:
            rec["reason"] = reason
        if self._manifest.extra.get(_STATE_KEY) == rec:
            return
        self._manifest.extra[_STATE_KEY] = rec
        self._manifest.save(self._path)

    def _open_journal(self, device: Device | None, force: bool) -> None:
        """Open (or create) the journal and replay it; without a usable journal, open
        write-through or refuse (module documentation)."""
        rec = self._journal_record()
        if rec is not None and rec["state"] == "failed":
            reason = rec.get("reason") or "failed"
            self._journal_problem = ("failed", f"journal {rec['id']}: {reason}")
            warnings.warn(
                f"pool {self._path}: RAID 7 journal {rec['id']} failed earlier ({reason}); "
                f"the pool runs write-through until replace_journal()",
                PoolDegradedWarning,
                stacklevel=4,
            )
            return
        try:
            if self._mirrored:
                if device is not None:
                    raise InvalidArgumentError(
                        f"pool {self._path} keeps its RAID 7 journal on members "
                        f"{MIRROR_MEMBERS}; open it without journal="
                    )
                journal, records = self._open_mirror(rec)
                if records is None:  # a new pool
                    self._journal = journal
                    self._save_journal_record(journal.journal_id, "clean")
                    return
            else:
                journal = Journal.open_for(
                    self._path, self._pool_id, device, recorded=rec is not None
                )
                records = None
        except _JournalAbsent as exc:
            assert rec is not None
            self._open_without_journal(rec, str(exc), force)
            return
        except UnsupportedFormatError:
            path = os.path.join(self._path, JOURNAL_NAME)
            if self._mirrored or not os.path.exists(path):
                raise  # a newer version: only a journal file can be of version 1
            with open(path, "rb") as f:
                raw = f.read(_PREFIX.size)
            if len(raw) != _PREFIX.size or _PREFIX.unpack(raw) != (_MAGIC, 1):
                raise
            # version 1: replay it, then replace it by a journal of the current version
            with self._lock:
                self._replay(read_v1_records(path))
            os.unlink(path)
            journal = Journal.open_for(self._path, self._pool_id, device)
            self._journal = journal
            self._save_journal_record(journal.journal_id, "clean")
            return
        if rec is not None and str(journal.journal_id) != rec["id"]:
            if rec["state"] == "dirty":
                journal.close()
                self._open_without_journal(
                    rec,
                    f"{journal.name} holds journal {journal.journal_id}, not the pool's "
                    f"current journal {rec['id']}",
                    force,
                )
                return
            # clean: nothing to replay (a replace_journal cut short, say); its records,
            # if any, are older than the members' contents
            try:
                journal.clear(force=True, both=self._mirrored)
            except (DeviceError, OSError) as exc:
                journal.close()
                self._open_without_journal(rec, f"{journal.name}: {exc}", force)
                return
        else:
            try:
                if records is None:
                    records = list(journal.records())
            except (DeviceError, OSError) as exc:
                journal.close()
                if rec is None:
                    raise
                self._open_without_journal(rec, f"{journal.name} unreadable: {exc}", force)
                return
            self._journal = journal
            with self._lock:
                self._replay(records)
                upgrade = journal.version != _VERSION
                if (self._mirrored or upgrade) and self._journal is journal and not records:
                    # mirrored: both copies get the chosen copy's (new) epoch, in both
                    # slots; version 2: emptied into a current-version header, so its
                    # next records name the journal (with records, the flush did it)
                    try:
                        journal.clear(force=True, both=self._mirrored)
                    except (DeviceError, OSError) as exc:
                        self._drop_journal(journal, exc)
                        self._flush_locked()
            if self._journal is not journal:
                return  # it failed while being emptied: retired, the pool runs write-through
        self._journal = journal
        self._save_journal_record(journal.journal_id, "clean")

    def _open_mirror(
        self, rec: dict[str, Any] | None
    ) -> tuple[Journal, list[tuple[int, int, bytes]] | None]:
        """The mirrored journal: of the copies on writable members, the one of the
        journal the pool records (``rec``; a copy left by an earlier journal, on a
        member that failed and came back, never wins over it), then with the newest
        epoch and the most records (every acknowledged record is on each copy that did
        not fail), and its records; a new pool (no ``rec``) without a copy of its own
        formats both (records None: the new journal id, so no record an earlier pool
        or journal left there counts).  _JournalAbsent when no copy is readable and
        valid."""
        recorded = rec is not None
        want: uuid.UUID | None = None
        if rec is not None:
            try:
                want = uuid.UUID(str(rec.get("id")))
            except ValueError:
                raise CorruptionError(
                    f"pool {self._path}: invalid RAID 7 journal record {rec!r}"
                ) from None
        store = _MirrorStore(self)
        best: tuple[tuple[bool, int, int], int, Journal, list[tuple[int, int, bytes]]] | None = None
        problems = []
        for i, _dev in store.copies():
            store.source = i
            try:
                head = _read_header(store, self._pool_id, want)
                if head is None or head.pool_id != self._pool_id:
                    problems.append(f"member {i}: no journal header")
                    continue
                journal = Journal(store, self._pool_id)
                journal._adopt(head)
                records = list(journal.records())
            except (DeviceError, OSError) as exc:
                problems.append(f"member {i}: {exc}")
                continue
            key = (head.journal_id == want, head.epoch, len(records))
            if best is None or key > best[0]:
                best = (key, i, journal, records)
        if best is None:
            if not recorded:
                journal = Journal(store, self._pool_id)
                journal._format(METADATA_SIZE - SUPERBLOCK_SIZE)
                return journal, None
            raise _JournalAbsent(
                f"no copy on members {MIRROR_MEMBERS}: " + ("; ".join(problems) or "none writable")
            )
        _key, store.source, journal, records = best
        # the chosen copy's records again, so the journal appends after them
        return journal, list(journal.records())

    def _open_without_journal(self, rec: dict[str, Any], why: str, force: bool) -> None:
        """The recorded journal is absent (``why``): open write-through when it was
        clean; refuse when it may hold acknowledged writes, unless ``force``."""
        if rec["state"] == "clean":
            self._journal_problem = ("missing", f"journal {rec['id']} missing: {why}")
            warnings.warn(
                f"pool {self._path}: RAID 7 journal {rec['id']} is missing ({why}); it was "
                f"clean at the last close or checkpoint, so nothing is lost; the pool runs "
                f"write-through until the journal is given again or replace_journal()",
                PoolDegradedWarning,
                stacklevel=5,
            )
            return
        if not force:
            raise JournalMissingError(
                f"pool {self._path}: its RAID 7 journal {rec['id']} is missing ({why}) and "
                f"may hold acknowledged writes not yet on the members (the pool was not "
                f"closed cleanly); give the journal device as journal=, or pass "
                f"force_journal_loss=True to open without it and lose the writes "
                f"acknowledged since the last checkpoint"
            )
        reason = f"lost at open ({why}); opened with force_journal_loss"
        # retired for good: if it comes back, its records are older than what follows
        self._save_journal_record(uuid.UUID(rec["id"]), "failed", reason)
        self._invalidate_journal_files()
        self._journal_problem = ("failed", f"journal {rec['id']}: {reason}")
        warnings.warn(
            f"pool {self._path}: RAID 7 journal {rec['id']} is missing ({why}) and may have "
            f"held acknowledged writes not yet destaged: opened with force_journal_loss, "
            f"WRITES ACKNOWLEDGED SINCE THE LAST CHECKPOINT MAY BE LOST (extents then raise "
            f"DataLossError or read older data); the pool runs write-through until "
            f"replace_journal()",
            JournalLostWarning,
            stacklevel=5,
        )

    def _invalidate_journal_files(self) -> None:
        """After a journal is retired: a journal file in the pool directory is renamed
        aside, a stub is made to name no device, so no dwcore (an older one included)
        replays the retired journal.  Best effort: the manifest record already says it."""
        path = os.path.join(self._path, JOURNAL_NAME)
        try:
            if not os.path.exists(path):
                return
            stub = _FileStore(path, create=False)
            try:
                head = _read_header(stub, self._pool_id)
            finally:
                stub.close()
            if head is not None and head.flags & _EXTERNAL:
                _write_stub(path + ".new", self._pool_id, _NIL_ID)
                _rename_durably(path + ".new", path)
            else:
                _rename_durably(path, path + ".failed")
        except (OSError, DWError):
            pass

    def replace_journal(self, journal: Device | None = None) -> None:
        """Give the pool a new, empty journal and resume journaled write-back: the file
        ``cache.journal`` in the pool directory (``None``) or ``journal``, a blank
        device or one that held a journal of this pool (the caller keeps ownership and
        passes it to every :meth:`open`).  Everything cached is destaged and synced
        first; the old journal is never replayed again.  Also moves a healthy journal."""
        with self._lock:
            self._check_open()
            if self._volatile:
                raise InvalidArgumentError("a volatile RAID 7 cache has no journal")
            if journal is not None and self._mirrored:
                raise InvalidArgumentError(
                    f"pool {self._path} keeps its RAID 7 journal on members {MIRROR_MEMBERS} "
                    f"(journal_on='members'); replace_journal() takes no device"
                )
            if journal is not None:
                if any(m.device is journal for m in self._members):
                    raise InvalidArgumentError(
                        f"{journal.path} is a member of this pool, not a journal device"
                    )
                head = None
                if journal.size >= _RECORDS_AT + _ALIGN:
                    head = _read_header(_DeviceStore(journal), self._pool_id)
                if head is None or head.pool_id != self._pool_id:
                    Journal.check_blank(journal)  # too small, another pool's, a member
            self._flush_locked()  # the old journal emptied (or retired): nothing in it counts
            if self._mirrored:
                new = Journal(_MirrorStore(self), self._pool_id)
                new._format(METADATA_SIZE - SUPERBLOCK_SIZE)
            else:
                new = Journal.create_for(self._path, self._pool_id, journal)
            old, lost = self._journal, self._lost_journal
            self._journal, self._lost_journal, self._journal_problem = new, None, None
            self._save_journal_record(new.journal_id, "clean")
            for j in (old, lost):
                if j is not None:
                    j.close()

    def _drop_journal(self, journal: Journal, exc: BaseException) -> None:
        """The journal failed (lock held): stop using it; every later write is written
        through, and the journal is retired at the next complete flush (which the
        caller starts: until then the cache's acknowledged writes may need it)."""
        if self._journal is journal:
            self._journal = None
            self._lost_journal = journal
        reason = f"journal {journal.name} failed: {exc}"
        self._journal_problem = ("failed", reason)
        warnings.warn(
            f"pool {self._path}: RAID 7 {reason}; destaging the cache, the pool runs "
            f"write-through until replace_journal()",
            PoolDegradedWarning,
            stacklevel=4,
        )

    def _retire_lost_journal(self) -> None:
        """After a complete flush without the journal (lock held): record it retired
        (its records never replayed), then close it."""
        lost = self._lost_journal
        if lost is None:
            return
        reason = self._journal_problem[1] if self._journal_problem else "failed"
        self._save_journal_record(lost.journal_id, "failed", reason)
        self._lost_journal = None
        self._invalidate_journal_files()
        lost.close()

    # ------------------------------------------------------------------
    # data path
    # ------------------------------------------------------------------

    def write(self, data: Any) -> Extent:
        """Acknowledge ``data`` from the cache (journaled first unless volatile); waits
        for destaging when the cache is full."""
        view = byte_view(data)
        length = view.nbytes
        k, b = self.layout.k, self._block
        rows = -(-length // (k * b))
        buf = bytes(view) if rows else b""
        while True:
            with self._admitted(), self._lock:
                self._check_open()
                if rows == 0:
                    return Extent(self._tag, 0, 0, 0)
                self._reap()
                if not self._dirty or self._dirty_bytes + length <= self._cache_bytes:
                    return self._accept(buf, rows)
                # full: destage the oldest until this write fits, then wait for room
                self._submit_oldest(max(0, min(self._cache_bytes // 2, self._cache_bytes - length)))
                if not self._out:
                    raise self._stuck()
                seen = self._settled
            self._wait_completion(seen)

    def _accept(self, buf: bytes, rows: int) -> Extent:
        """Allocate, journal and cache one write (lock held, room checked); without a
        usable journal (not volatile) the write is written through."""
        length = len(buf)
        first = self._alloc.alloc(rows)
        ext = Extent(self._tag, first, rows, length)
        through = False
        try:
            if self._journal is not None and not self._journal.fits(length):
                if self._journal.fits(length, empty=True):
                    self._flush_locked()  # a full journal: checkpoint, then append
                else:
                    through = True
            journal = self._journal
            if journal is None:
                through = not self._volatile  # no journal: write-through
            elif not through:
                # durable before the record: the journal may now hold acknowledged writes
                self._save_journal_record(journal.journal_id, "dirty")
                try:
                    journal.append(first, rows, buf)
                except (DeviceError, OSError) as exc:
                    self._drop_journal(journal, exc)
                    through = True  # the flush below destages the cache and retires it
                else:
                    self.cache_stats.journal_appends += 1
        except BaseException:
            self._alloc.free(first, rows)
            raise
        self._insert(ext, buf)
        self.cache_stats.writes += 1
        if through:
            # larger than the journal, or no journal: on the devices and synced before
            # it is acknowledged
            try:
                self._flush_locked()
            except BaseException:
                self._drop(ext)
                self._alloc.free(first, rows)
                raise
            self.cache_stats.write_through += 1
        elif self._dirty_bytes - self._inflight_bytes > self._cache_bytes // 2:
            self._submit_oldest(self._cache_bytes // 2)  # write-behind: no waiting
        return ext

    def read(self, ext: Extent, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of ``ext`` from the cache when it is dirty there, else from the devices."""
        with self._lock:
            hit = self._dirty.get(ext.first_row) if isinstance(ext, Extent) else None
            if hit is not None and hit.ext == ext:
                buf = hit.buf
                if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                    raise InvalidArgumentError(f"offset must be an int >= 0, got {offset!r}")
                if offset > ext.length:
                    raise InvalidArgumentError(
                        f"offset {offset} is past the extent ({ext.length} bytes)"
                    )
                if length is None:
                    length = ext.length - offset
                if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                    raise InvalidArgumentError(f"length must be an int >= 0, got {length!r}")
                if offset + length > ext.length:
                    raise InvalidArgumentError(
                        f"range {offset}+{length} is past the end of the extent "
                        f"({ext.length} bytes)"
                    )
                self.cache_stats.read_hits += 1
                return buf[offset : offset + length]
        return super().read(ext, offset, length)

    def free(self, ext: Extent) -> None:
        """Drop ``ext`` from the cache (if dirty) and release its rows."""
        self._check_extent(ext)
        with self._lock:
            self._drop(ext)
            super().free(ext)

    def flush(self) -> None:
        """Destage every dirty extent, wait until every device queue is drained and each
        device synced, sync the allocator, empty the journal."""
        self.sync()

    def sync(self, *, allocator: bool = True) -> None:
        """:meth:`flush`: everything written so far is on the devices and durable
        (``allocator=False``: see :meth:`Pool.sync`; the journal is then kept)."""
        with self._lock:
            self._check_open()
            self._flush_locked(allocator)

    def rebuild(self, progress: Callable[[int, int], Any] | None = None) -> None:
        """Destage, then rebuild as every pool does."""
        self.flush()
        super().rebuild(progress)

    def scrub(
        self, repair: bool = True, progress: Callable[[int, int], Any] | None = None
    ) -> ScrubReport:
        """Scrub as every pool does; each step first destages the cached extents among
        its rows (:meth:`_settle_rows`), so the cache is not flushed as a whole first."""
        return super().scrub(repair, progress)

    def replace_device(
        self, i: int, path_or_device: DeviceSpec | None = None, *, force: bool = False
    ) -> None:
        """Wait for the destages in flight, then replace as every pool does.  A member
        holding a copy of the mirrored journal: the cache is flushed first (the journal
        emptied), and the new member gets its copy."""
        with self._lock:
            self._check_open()
            self._wait_jobs()
            mirror = self._mirrored and self._journal is not None and i in MIRROR_MEMBERS
            if mirror:
                self._check_index(i)
                self._flush_locked()
            super().replace_device(i, path_or_device, force=force)
            journal = self._journal
            if mirror and journal is not None:
                try:
                    # both slots on every copy: the new member's may hold headers of
                    # another journal (it held a copy before) or another pool
                    journal.clear(force=True, both=True)
                except (DeviceError, OSError) as exc:
                    self._drop_journal(journal, exc)
                    self._flush_locked()

    def close(self, sync: bool = True) -> None:
        """Stop the destager; destage and sync, stop the device workers (``sync=False``:
        drop the cache and the queued requests as a power cut would — journaled writes
        come back at the next open)."""
        if self._closed:
            return
        self._stop.set()
        with self._io_cond:
            self._io_cond.notify_all()
        if self._destager is not threading.current_thread():
            self._destager.join()
        with self._lock:
            if self._closed:
                return
            try:
                if not sync:
                    self._stop_workers(discard=True)
                    self._dirty.clear()
                    self._dirty_bytes = self._inflight_bytes = 0
                super().close(sync)  # sync=True: self.sync() destages and empties the journal
            finally:
                self._stop_workers(discard=True)  # nothing is left queued after a sync
                for journal in (self._journal, self._lost_journal):
                    if journal is not None:
                        journal.close()

    def status(self) -> Raid7Status:
        """:meth:`Pool.status` with the cache's mode and dirty set (:class:`Raid7Status`)."""
        with self._lock:
            st = super().status()
            self._reap()
            extra = {
                "cache_mode": self._cache_mode(),
                "volatile": self._volatile,
                "dirty_bytes": self._dirty_bytes,
                "dirty_extents": len(self._dirty),
                "journal": None if self._journal is None else self._journal.name,
                "journal_state": self._journal_state(),
            }
            problem = self._journal_problem
        base = {f.name: getattr(st, f.name) for f in dataclasses.fields(PoolStatus)}
        if problem is not None:  # the pool's own reason, as growth's zones report theirs
            base["degraded"] = True
            base["reasons"] = {**st.reasons, -1: f"{problem[1]} (write-through)"}
        return Raid7Status(**base, **extra)

    def _cache_mode(self) -> str:
        if self._volatile:
            return "volatile"
        return "journaled" if self._journal is not None else "write-through"

    def _journal_state(self) -> str:
        if self._volatile:
            return "none"
        return "ok" if self._journal_problem is None else self._journal_problem[0]

    def cache_status(self) -> dict[str, Any]:
        """Mode (``volatile`` says acknowledged writes can be lost), dirty set, destages
        in flight, requests queued per device, journal and counters."""
        with self._lock:
            self._reap()
            return {
                "cache_mode": self._cache_mode(),
                "volatile": self._volatile,
                "journal_state": self._journal_state(),
                "journal_problem": None
                if self._journal_problem is None
                else self._journal_problem[1],
                "cache_bytes": self._cache_bytes,
                "max_dirty_s": self._max_age,
                "dirty_extents": len(self._dirty),
                "dirty_bytes": self._dirty_bytes,
                "destaging_extents": sum(1 for e in self._dirty.values() if e.job is not None),
                "io_queued": [w.queued for w in self._workers],
                "io_threads": [w.name for w in self._workers],
                "journal": None if self._journal is None else self._journal.name,
                "journal_bytes": 0 if self._journal is None else self._journal.size,
                **asdict(self.cache_stats),
            }

    # ------------------------------------------------------------------
    # the cache (every method below runs with the pool lock held)
    # ------------------------------------------------------------------

    def _insert(self, ext: Extent, buf: bytes) -> None:
        """Put a dirty extent at the young end (replacing one at the same first row)."""
        self._drop_first(ext.first_row)
        self._dirty[ext.first_row] = _Entry(ext, buf, time.monotonic())
        self._dirty_bytes += ext.length

    def _drop(self, ext: Extent) -> None:
        hit = self._dirty.get(ext.first_row)
        if hit is not None and hit.ext == ext:
            self._drop_first(ext.first_row)

    def _drop_first(self, first: int) -> None:
        entry = self._dirty.pop(first, None)
        if entry is None:
            return
        self._dirty_bytes -= entry.ext.length
        if entry.job is not None:  # its destage finishes unseen
            self._inflight_bytes -= entry.ext.length
            entry.job = None

    def _stuck(self) -> BaseException:
        """Why dirty extents cannot leave the cache."""
        if self._error is not None:
            return self._error
        failed = [m.index for m in self._members if not m.writable]
        return DataLossError(
            f"pool {self._path}: cannot destage: devices {failed} are unavailable, more than "
            f"RAID {self.layout.level} tolerates",
            failed=failed,
        )

    # -- destaging ------------------------------------------------------

    def _destage_requests(
        self, first: int, rows: int, buf: bytes
    ) -> dict[int, list[tuple[int, list[np.ndarray]]]]:
        """Each writable device's requests for an extent's whole rows: data chunks from
        the cached bytes, parity computed here from them (no device is read), checksum
        entries; adjacent requests merged (flat layouts: one data and one checksum
        request per device)."""
        k, b = self.layout.k, self._block
        src = np.frombuffer(buf, dtype=np.uint8)
        length = len(src)
        data_reqs: dict[int, list[tuple[int, list[np.ndarray]]]] = {}
        crc_reqs: dict[int, list[tuple[int, list[np.ndarray]]]] = {}
        ends: dict[tuple[int, int], int] = {}

        def add(
            reqs: dict[int, list[tuple[int, list[np.ndarray]]]],
            kind: int,
            dev: int,
            off: int,
            arr: np.ndarray,
        ) -> None:
            lst = reqs.setdefault(dev, [])
            if lst and ends[kind, dev] == off:
                lst[-1][1].append(arr)
            else:
                lst.append((off, [arr]))
            ends[kind, dev] = off + arr.nbytes

        for seg in self._segments(first, rows):
            sm = self._stripe(seg.stripe)
            nb = seg.n * b
            data: list[np.ndarray] = []
            for d in range(k):
                lo = seg.offset + d * nb
                if lo + nb <= length:
                    part = src[lo : lo + nb]
                else:
                    part = np.zeros(nb, dtype=np.uint8)
                    tail = src[lo:length] if lo < length else src[:0]
                    part[: len(tail)] = tail
                data.append(part)
            bufs = [
                data[m.role.data_index] if m.role.data_index is not None else np.empty(nb, np.uint8)
                for m in sm.members
            ]
            codec.encode(sm, bufs)
            for j, m in enumerate(sm.members):
                mem = self._members[m.device]
                if not mem.writable:
                    continue
                off, coff = self._addr(mem, m, seg.row)
                add(data_reqs, 0, m.device, off, bufs[j])
                add(crc_reqs, 1, m.device, coff, crc32c_blocks(bufs[j], b))
        return {dev: reqs + crc_reqs[dev] for dev, reqs in data_reqs.items()}

    def _submit(self, entry: _Entry) -> bool:
        """Queue ``entry``'s destage on the device workers; False (the reason kept for
        :meth:`flush`) when too few devices are writable to hold it."""
        missed = [m.index for m in self._members if not m.writable]
        if missed and not self.layout.survives(missed):
            self._error = self._stuck()
            return False
        ext = entry.ext
        reqs = self._destage_requests(ext.first_row, ext.rows, entry.buf)
        job = _Job(self, len(reqs), entry)
        job.missed = missed
        entry.job = job
        self._out.add(job)
        self._inflight_bytes += ext.length
        self.cache_stats.destage_requests += len(reqs)
        for dev, dev_reqs in reqs.items():
            device = self._members[dev].device
            assert device is not None
            call = functools.partial(device.pwritev_batch, dev_reqs)
            self._workers[dev].put((job, dev, device, call))
        return True

    def _submit_oldest(self, limit: int) -> None:
        """Queue destages, oldest first, until at most ``limit`` dirty bytes are not in
        flight."""
        for entry in list(self._dirty.values()):
            if self._dirty_bytes - self._inflight_bytes <= limit:
                return
            if entry.job is None and not self._submit(entry):
                return

    def _completed_job(self, job: _Job) -> None:
        """A worker finished the last part of ``job`` (called on that worker)."""
        with self._io_cond:
            job.done = True
            if job.entry is not None:
                self._completed.append(job)
            self._io_cond.notify_all()

    def _wait_completion(self, seen: int, timeout: float = 0.5) -> None:
        """Wait (without the pool lock) until some destage completed or was settled since
        the count ``seen``, or ``timeout``."""
        with self._io_cond:
            if not self._completed and self._settled == seen:
                self._io_cond.wait(timeout)

    def _reap(self) -> None:
        """Settle the destages the workers finished: fail out devices whose write
        failed; an extent leaves the cache when the devices it reached can hold it."""
        with self._io_cond:
            done, self._completed = self._completed, []
            if done:  # writers waiting for room look again
                self._settled += 1
                self._io_cond.notify_all()
        for job in done:
            self._out.discard(job)
            failed = set(job.missed)
            unexpected: BaseException | None = None
            for index, device, exc in job.errors:
                failed.add(index)
                mem = self._members[index]
                if isinstance(exc, DeviceError):
                    if mem.device is device:  # not replaced since
                        self._mark_failed(index, f"destage write failed: {exc}")
                elif not isinstance(exc, _Discarded):
                    unexpected = exc
            entry = job.entry
            if entry is None or entry.job is not job:
                continue  # freed (or dropped) while in flight
            entry.job = None
            self._inflight_bytes -= entry.ext.length
            if unexpected is not None or (failed and not self.layout.survives(sorted(failed))):
                self._error = unexpected or DataLossError(
                    f"pool {self._path}: cannot destage: devices {sorted(failed)} failed, "
                    f"more than RAID {self.layout.level} tolerates",
                    failed=sorted(failed),
                )
                continue  # stays dirty
            del self._dirty[entry.ext.first_row]
            self._dirty_bytes -= entry.ext.length
            self.cache_stats.destaged_extents += 1
            self.cache_stats.destaged_bytes += entry.ext.length
        if done:
            self._reap_dead()

    def _wait_jobs(self) -> None:
        """Wait until every queued destage has finished and is settled."""
        while True:
            self._reap()
            if not self._out:
                return
            with self._io_cond:
                if not self._completed:
                    self._io_cond.wait(0.5)

    def _settle_rows(self, first: int, n: int) -> None:
        """Before the engine reads rows ``[first, first + n)`` itself (scrub, rebuild,
        degraded reads): destage the cached extents among them and wait for the destages
        in flight that touch them (their device writes run outside the pool lock)."""
        end = first + n
        for entry in list(self._dirty.values()):
            ext = entry.ext
            if entry.job is None and ext.first_row < end and first < ext.first_row + ext.rows:
                self._submit(entry)
        if any(j.first < end and first < j.first + j.rows for j in self._out):
            self._wait_jobs()

    def _rows(self, seg: Any, *args: Any, **kwargs: Any) -> Any:
        """The engine's row reader, after :meth:`_settle_rows` (lock held)."""
        self._settle_rows(seg.first, seg.n)
        return super()._rows(seg, *args, **kwargs)

    def _rebuild_flat(self, g0: int, n: int, tdev: set[int]) -> bool:
        """The engine's flat rebuild step, after :meth:`_settle_rows` (lock held)."""
        self._settle_rows(g0, n)
        return super()._rebuild_flat(g0, n, tdev)

    def _destage_until(self, limit: int) -> None:
        """Destage oldest first until at most ``limit`` dirty bytes remain, and wait."""
        with self._lock:
            self._submit_oldest(limit)
            self._wait_jobs()

    def _sync_members(self) -> None:
        """Sync every written device on its own worker (behind what it has queued) and
        wait; a device whose sync fails is failed out."""
        targets = [
            m for m in self._members if m.writable and m.device is not None and m.device.unsynced
        ]
        if not targets:
            return
        job = _Job(self, len(targets))
        for m in targets:
            assert m.device is not None
            self._workers[m.index].put((job, m.index, m.device, m.device.sync))
        with self._io_cond:
            while not job.done:
                self._io_cond.wait()
        for index, device, exc in job.errors:
            if not isinstance(exc, DeviceError):
                raise exc
            if self._members[index].device is device:
                self._mark_failed(index, f"sync failed: {exc}")

    def _flush_locked(self, allocator: bool = True) -> None:
        """Destage everything, drain and sync every device queue, sync the allocator and
        empty the journal (recorded ``clean``; a journal that fails to empty is dropped,
        and a dropped one retired: write-through); raises (keeping the journal) when an
        extent stays dirty."""
        self._error = None
        for entry in list(self._dirty.values()):
            if entry.job is None:
                self._submit(entry)
        self._wait_jobs()
        if self._dirty:
            raise self._stuck()
        self._sync_members()
        Pool.sync(self, allocator=allocator)
        failed = [m.index for m in self._members if not m.writable]
        if not allocator or not self.layout.survives(failed):
            return
        journal = self._journal
        if journal is not None:
            try:
                journal.clear()
            except (DeviceError, OSError) as exc:
                self._drop_journal(journal, exc)  # everything is on the members already
            else:
                self._save_journal_record(journal.journal_id, "clean")
        self._retire_lost_journal()

    def _stop_workers(self, discard: bool) -> None:
        for w in self._workers:
            w.stop(discard)

    def _destage_loop(self) -> None:
        """Background: settle completions, destage extents older than ``max_dirty_s``,
        checkpoint (sync, empty the journal) once the cache has drained."""
        interval = min(0.5, self._max_age / 2)
        while not self._stop.is_set():
            with self._io_cond:
                if not self._completed:
                    self._io_cond.wait(interval)
            if self._stop.is_set():
                return
            with self._lock:
                if self._closed:
                    return
                try:
                    self._reap()
                    now = time.monotonic()
                    for entry in list(self._dirty.values()):
                        if now - entry.born < self._max_age:
                            break
                        if entry.job is None and not self._submit(entry):
                            break  # stays dirty; flush raises the reason
                    journal = self._journal
                    failed = [m.index for m in self._members if not m.writable]
                    if (
                        journal is not None
                        and journal.size
                        and not self._dirty
                        and not self._out
                        and self.layout.survives(failed)
                    ):
                        self._flush_locked()
                        self.cache_stats.checkpoints += 1
                except Exception as exc:  # a failed destage stays dirty; flush raises it
                    warnings.warn(
                        f"pool {self._path}: RAID 7 destage failed: {exc}",
                        RuntimeWarning,
                        stacklevel=1,
                    )

    def _replay(self, records: Iterator[tuple[int, int, bytes]] | list[Any]) -> None:
        """Put every journaled record back in the cache, in order, and flush it."""
        count = 0
        for first, rows, data in records:
            self._alloc.mark_allocated(first, rows)
            self._insert(Extent(self._tag, first, rows, len(data)), data)
            count += 1
        if count:
            self._flush_locked()
            self.cache_stats.replayed_extents = count
