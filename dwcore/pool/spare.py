"""Integrated spare space: RAID 5EE compaction, RAID 5E / 6E compression, and expansion.

RAID 5EE (:class:`dwcore.raid.enhanced.Raid5EE`) keeps one spare chunk per
stripe.  :func:`compact` absorbs a failed device into them: for every
stripe where the failed device held data or P, the chunk is reconstructed
from the other members and written into that stripe's spare chunk (same
rows, same offsets, with checksums); stripes where it held the spare are not
touched.  Only then is the layout switched to ``compacted=f`` (saved in the
manifest), so a crash in the middle leaves the old placement valid (the
spare chunks were unused) and :func:`compact` simply runs again.  The pool
is then a RAID 5 over the other N-1 devices and survives one more failure.

:func:`expand` reverses it onto a replacement device: each relocated chunk
is copied back to the replacement, the layout is switched back, and only
then are the spare chunks (blocks and checksum entries) zeroed again, so
every device equals that of an array that never failed.

RAID 5E and 6E (:class:`dwcore.raid.enhanced.Raid5E`, ``Raid6E``) keep
their spare space at the end of every member.  :func:`compress` reshapes the
array onto the N-1 survivors' whole data areas, stripe by stripe from the end
backwards (every chunk moves to an equal or higher device offset, md's
reshape-backwards rule); :func:`expand` reshapes it forwards back onto a
replacement.  Each stripe is read in the old placement (degraded), its data
saved with a checksum in ``reshape.bak`` in the pool directory and synced,
written in the new placement with fresh parity and checksums, the devices
synced, and only then the reshape position saved in the manifest (the
layout's ``position``).  A crash leaves the position at the last finished
stripe and the backup holding the one in flight (whose old and new places
may overlap); running the same call again resumes there, taking that
stripe's data from the backup.

All of them hold the pool lock for their whole run (I/O waits) and move the
allocated rows only, as rebuild does.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from dwcore.checksum import crc32c, crc32c_blocks
from dwcore.devices import DeviceError
from dwcore.errors import CorruptionError, DataLossError, InvalidArgumentError
from dwcore.pool import codec
from dwcore.pool.pool import STEP_ROWS, DeviceSpec, Pool, _Segment
from dwcore.pool.status import DeviceState
from dwcore.raid import Member, Role
from dwcore.raid.enhanced import Raid5EE, _EndSpare

__all__ = ["BACKUP_NAME", "compact", "compress", "expand"]

#: The in-flight stripe of a RAID 5E / 6E reshape, in the pool directory.
BACKUP_NAME = "reshape.bak"
_BACKUP_HEAD = struct.Struct("<4sQI")
_BACKUP_SEG = struct.Struct("<QI")


def _spare_layout(pool: Pool) -> Raid5EE:
    lay = pool.layout
    if not isinstance(lay, Raid5EE):
        raise InvalidArgumentError(
            f"pool {pool.path} is RAID {lay.level}: only RAID 5EE has spare chunks to compact into"
        )
    return lay


def _write(pool: Pool, index: int, off: int, coff: int, buf: np.ndarray, crcs: Any) -> None:
    mem = pool._members[index]
    if mem.device is None or not mem.writable:
        raise DataLossError(
            f"pool {pool.path}: device {index} is not writable, cannot move chunks onto it",
            failed=[index],
        )
    try:
        mem.device.pwrite(off, buf)
        mem.device.pwrite(coff, crcs)
    except DeviceError as exc:
        pool._mark_failed(index, f"write failed while moving spare chunks: {exc}")
        raise


def compact(pool: Pool, device: int, progress: Callable[[int, int], Any] | None = None) -> None:
    """Absorb the FAILED (or MISSING) ``device`` of a RAID 5EE pool into its spare chunks.

    ``progress(done_rows, total_rows)`` is called as stripes are moved.
    Raises DataLossError when a chunk cannot be reconstructed (nothing is
    switched then; the pool stays as it was, degraded).
    """
    lay = _spare_layout(pool)
    i = pool._check_index(device)
    new = lay.compacted_on(i)
    b = pool.block_size
    with pool._lock:
        pool._check_open()
        state = pool._members[i].state
        if state not in (DeviceState.FAILED, DeviceState.MISSING):
            raise InvalidArgumentError(
                f"device {i} is {state.value}: only a failed or missing device is compacted"
            )
        runs = pool._allocated_runs()
        total = sum(n for _, n in runs)
        done = 0
        for first, rows in runs:
            for seg in pool._segments(first, rows, STEP_ROWS):
                done += seg.n
                sd = lay.spare_device(seg.stripe)
                if sd == i:
                    continue  # the failed device held this stripe's spare: nothing lost
                old = lay.stripe(seg.stripe)
                (j,) = [x for x, m in enumerate(old.members) if m.device == i]
                res = pool._rows(seg, {}, need_all=True, skip_devices={i})
                buf = res.bufs[j]
                if res.lost.get(j) or buf is None:
                    raise DataLossError(
                        f"pool {pool.path}: cannot compact stripe {seg.stripe}: devices "
                        f"{sorted(res.bad_devices | {i})} are failed or corrupt beyond what "
                        f"RAID 5EE tolerates",
                        failed=sorted(res.bad_devices | {i}),
                    )
                target = new.stripe(seg.stripe).members[j]
                off, coff = pool._addr(pool._members[sd], target, seg.row)
                _write(pool, sd, off, coff, buf, crc32c_blocks(buf, b))
                if progress is not None:
                    progress(done, total)
        for mem in pool._members:
            if mem.writable and mem.device is not None:
                mem.device.sync()
        pool._replace_layout(new)
        pool._commit_membership()
    if progress is not None:
        progress(total, total)


def expand(
    pool: Pool,
    device: int,
    replacement: DeviceSpec | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> None:
    """Put ``replacement`` (a new sparse file when None) in the slot of the device a RAID
    5EE pool compacted (a 5E / 6E pool compressed) away and move its share back onto it;
    the pool has its spare space again.  A 5E / 6E expansion interrupted by a crash
    resumes when called again (``replacement`` is then ignored)."""
    if isinstance(pool.layout, _EndSpare):
        _expand_end(pool, device, replacement, progress)
    else:
        _expand_5ee(pool, device, replacement, progress)


def _expand_5ee(
    pool: Pool,
    device: int,
    replacement: DeviceSpec | None,
    progress: Callable[[int, int], Any] | None,
) -> None:
    lay = _spare_layout(pool)
    i = pool._check_index(device)
    if lay.compacted != i:
        raise InvalidArgumentError(
            f"device {i} is not the compacted device of this RAID 5EE pool "
            f"(compacted: {lay.compacted})"
        )
    pool.replace_device(i, replacement)
    back = lay.expanded()
    b = pool.block_size
    with pool._lock:
        pool._check_open()
        runs = pool._allocated_runs()
        total = sum(n for _, n in runs)
        done = 0
        spares: list[tuple[int, int, int, int]] = []
        for first, rows in runs:
            for seg in pool._segments(first, rows, STEP_ROWS):
                done += seg.n
                sd = lay.spare_device(seg.stripe)
                if sd == i:
                    continue
                now = lay.stripe(seg.stripe)
                home = back.stripe(seg.stripe)
                (j,) = [x for x, m in enumerate(home.members) if m.device == i]
                res = pool._rows(seg, {}, need_all=True)
                buf = res.bufs[j]
                if res.lost.get(j) or buf is None:
                    raise DataLossError(
                        f"pool {pool.path}: cannot expand stripe {seg.stripe}: devices "
                        f"{sorted(res.bad_devices)} are failed or corrupt beyond what "
                        f"RAID 5EE tolerates",
                        failed=sorted(res.bad_devices),
                    )
                off, coff = pool._addr(pool._members[i], home.members[j], seg.row)
                _write(pool, i, off, coff, buf, crc32c_blocks(buf, b))
                spares.append((sd, *pool._addr(pool._members[sd], now.members[j], seg.row), seg.n))
                if progress is not None:
                    progress(done, total)
        mem = pool._members[i]
        mem.state, mem.reason, mem.rebuilt_rows = DeviceState.ONLINE, "", 0
        for m in pool._members:
            if m.writable and m.device is not None:
                m.device.sync()
        pool._replace_layout(back)
        pool._commit_membership()
        # the spare chunks are free again: zero them (blocks and checksum entries)
        for sd, off, coff, n in spares:
            _write(pool, sd, off, coff, np.zeros(n * b, dtype=np.uint8), bytes(4 * n))
    if progress is not None:
        progress(total, total)


# -- RAID 5E / 6E: reshapes --------------------------------------------------------------


def _end_layout(pool: Pool) -> _EndSpare:
    lay = pool.layout
    if not isinstance(lay, _EndSpare):
        raise InvalidArgumentError(
            f"pool {pool.path} is RAID {lay.level}: only RAID 5E and 6E are compressed"
        )
    return lay


def compress(pool: Pool, device: int, progress: Callable[[int, int], Any] | None = None) -> None:
    """Reshape a RAID 5E / 6E pool whose ``device`` failed onto the other N-1 devices'
    whole data areas (its spare space), so it survives one more failure than before.

    Resumes an interrupted compression of the same device.  ``progress(done, total)``
    counts stripes.  Raises DataLossError (position kept, resumable) when a stripe cannot
    be read.
    """
    lay = _end_layout(pool)
    i = pool._check_index(device)
    with pool._lock:
        pool._check_open()
        if lay.position is not None:
            if lay.reshape_from is not None or lay.absent != i:
                raise InvalidArgumentError(
                    f"pool {pool.path} is in the middle of another reshape ({lay!r}): "
                    f"finish it first"
                )
        else:
            if lay.absent is not None:
                raise InvalidArgumentError(
                    f"pool {pool.path} is already compressed (device {lay.absent}); expand "
                    "it onto a replacement before compressing again"
                )
            state = pool._members[i].state
            if state not in (DeviceState.FAILED, DeviceState.MISSING):
                raise InvalidArgumentError(
                    f"device {i} is {state.value}: only a failed or missing device is "
                    "compressed away"
                )
            lay = lay.with_state(i, None, pool._geo.stripes)
            pool._replace_layout(lay)
        _reshape(pool, lay, progress)
        pool._commit_membership()


def _expand_end(
    pool: Pool,
    device: int,
    replacement: DeviceSpec | None,
    progress: Callable[[int, int], Any] | None,
) -> None:
    lay = _end_layout(pool)
    i = pool._check_index(device)
    if lay.position is None:
        if lay.absent != i:
            raise InvalidArgumentError(
                f"device {i} is not the compressed device of this RAID {lay.level} pool "
                f"(compressed: {lay.absent})"
            )
        pool.replace_device(i, replacement)
        with pool._lock:
            lay = lay.with_state(None, i, 0)
            pool._replace_layout(lay)
    elif lay.reshape_from != i:
        raise InvalidArgumentError(
            f"pool {pool.path} is in the middle of another reshape ({lay!r}): finish it first"
        )
    with pool._lock:
        pool._check_open()
        _reshape(pool, lay, progress)
        mem = pool._members[i]
        mem.state, mem.reason, mem.rebuilt_rows = DeviceState.ONLINE, "", 0
        _zero_spare_area(pool, lay)
        pool._commit_membership()


def _zero_spare_area(pool: Pool, lay: _EndSpare) -> None:
    """Blank the spare space ``[A, S)`` of every member again (blocks and checksum entries)."""
    b = pool.block_size
    usable = pool.checksum_table_offset
    start = lay.spare_area(usable)
    step = 1 << 20
    for m in range(lay.n_devices):
        for lo in range(start, usable, step):
            n = min(step, usable - lo)
            off, coff = pool._addr(pool._members[m], _at(lo), 0)
            _write(pool, m, off, coff, np.zeros(n, dtype=np.uint8), bytes(4 * (n // b)))
        mem = pool._members[m]
        if mem.device is not None:
            mem.device.sync()


def _at(offset: int) -> Member:
    """A member-shaped address (data-area offset) for :meth:`Pool._addr`."""
    return Member(0, offset, 0, Role.spare())


def _backup_path(pool: Pool) -> str:
    return os.path.join(pool.path, BACKUP_NAME)


def _save_backup(pool: Pool, stripe: int, segs: list[_Segment], data: list[np.ndarray]) -> None:
    parts = [_BACKUP_HEAD.pack(b"DWRB", stripe, len(segs))]
    for seg, buf in zip(segs, data, strict=True):
        parts += [_BACKUP_SEG.pack(seg.first, seg.n), buf.tobytes()]
    blob = b"".join(parts)
    blob += struct.pack("<I", crc32c(blob))
    tmp = _backup_path(pool) + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, blob)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, _backup_path(pool))


def _load_backup(pool: Pool, k: int) -> tuple[int, dict[int, np.ndarray]] | None:
    """``(stripe, {first row: data})`` of the in-flight stripe, or None."""
    try:
        with open(_backup_path(pool), "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        return None
    if len(blob) < _BACKUP_HEAD.size + 4 or crc32c(blob[:-4]) != struct.unpack("<I", blob[-4:])[0]:
        raise CorruptionError(f"{_backup_path(pool)}: reshape backup is damaged")
    magic, stripe, count = _BACKUP_HEAD.unpack_from(blob)
    if magic != b"DWRB":
        raise CorruptionError(f"{_backup_path(pool)}: not a reshape backup")
    pos = _BACKUP_HEAD.size
    out: dict[int, np.ndarray] = {}
    for _ in range(count):
        first, n = _BACKUP_SEG.unpack_from(blob, pos)
        pos += _BACKUP_SEG.size
        size = k * n * pool.block_size
        out[first] = np.frombuffer(blob, dtype=np.uint8, count=size, offset=pos).reshape(k, -1)
        pos += size
    return stripe, out


def _reshape(pool: Pool, lay: _EndSpare, progress: Callable[[int, int], Any] | None) -> None:
    """Move every stripe from ``lay``'s position to its final placement (lock held)."""
    assert lay.position is not None
    b, k = pool.block_size, lay.k
    final = lay.with_state(lay.absent)
    backwards = lay.reshape_from is None
    stripes = pool._geo.stripes
    order = range(lay.position - 1, -1, -1) if backwards else range(lay.position, stripes)
    by_stripe: dict[int, list[_Segment]] = {}
    for first, rows in pool._allocated_runs():
        for seg in pool._segments(first, rows, STEP_ROWS):
            by_stripe.setdefault(seg.stripe, []).append(seg)
    backup = _load_backup(pool, k)
    total = len(order)
    for done, s in enumerate(order, 1):
        segs = by_stripe.get(s, [])
        if segs:
            if backup is not None and backup[0] == s:
                data = [backup[1][seg.first] for seg in segs]
            else:
                data = [_read_data(pool, seg) for seg in segs]
                _save_backup(pool, s, segs, data)
            dst = final.stripe(s)
            for seg, blocks in zip(segs, data, strict=True):
                bufs = [
                    blocks[m.role.index]
                    if m.role.data_index is not None
                    else np.empty_like(blocks[0])
                    for m in dst.members
                ]
                codec.encode(dst, bufs)
                for m, buf in zip(dst.members, bufs, strict=True):
                    off, coff = pool._addr(pool._members[m.device], m, seg.row)
                    _write(pool, m.device, off, coff, buf, crc32c_blocks(buf, b))
            if progress is not None:  # written, not yet synced nor recorded
                progress(done, total)
            for mem in pool._members:
                if mem.writable and mem.device is not None:
                    mem.device.sync()
            position = s if backwards else s + 1
            pool._replace_layout(lay.with_state(lay.absent, lay.reshape_from, position))
            backup = None
            if os.path.exists(_backup_path(pool)):
                os.unlink(_backup_path(pool))
        elif progress is not None:
            progress(done, total)
    pool._replace_layout(final)


def _read_data(pool: Pool, seg: _Segment) -> np.ndarray:
    """The k data blocks of a segment's rows (``k × n·B``), reconstructed where needed."""
    sm = pool.layout.stripe(seg.stripe)
    res = pool._rows(seg, {}, need_all=True)
    out = np.empty((sm.k, seg.n * pool.block_size), dtype=np.uint8)
    dmi = codec.data_member_index(sm)
    for d in range(sm.k):
        j = dmi[d][0]
        buf = res.bufs[j]
        if res.lost.get(j) or buf is None:
            bad = sorted(res.bad_devices)
            raise DataLossError(
                f"pool {pool.path}: cannot reshape stripe {seg.stripe}: devices {bad} are "
                f"failed or corrupt beyond what RAID {pool.layout.level} tolerates",
                failed=bad,
            )
        out[d] = buf
    return out
