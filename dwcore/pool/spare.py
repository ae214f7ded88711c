"""Integrated spare space: RAID 5EE compaction and expansion on a pool.

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

Both hold the pool lock for their whole run (I/O waits) and work on the
allocated rows only, as rebuild does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dwcore.checksum import crc32c_blocks
from dwcore.devices import DeviceError
from dwcore.errors import DataLossError, InvalidArgumentError
from dwcore.pool.pool import STEP_ROWS, DeviceSpec, Pool
from dwcore.pool.status import DeviceState
from dwcore.raid.enhanced import Raid5EE

__all__ = ["compact", "expand"]


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
    """Put ``replacement`` (a new sparse file when None) in the compacted device's slot and
    move its chunks back from the spare chunks; the pool is RAID 5EE with spares again."""
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
