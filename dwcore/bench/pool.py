"""``dwcore bench pool``: the pool engine against plain ``os.pwrite``/``os.pread``.

For each configuration of :data:`CONFIGS` (RAID 5 on 6 devices; RAID 6, 10,
50, 60, MD10 far, Z2, Z3, Unraid 6+2, Declustered, FR, 7, Beyond and Adaptive
on 8) a pool is created on device files in a directory (RAM-backed
``/dev/shm`` by default) or on the devices given, and measured in one run:

* sequential write and read of 1 MiB extents, against the *anchor*: writing
  and reading the same physical bytes (:meth:`Pool.physical`: data,
  redundancy and padding, one request per run the pool stores) with plain
  ``os.pwrite``/``os.pread`` to the same device files, in a region past the
  pool's ``device_size`` so neither overwrites the other;
* degraded read with the maximum tolerated failures (the first devices);
* rebuild of one replaced device, against plain writes of the same bytes to
  the replacement;
* 4 KiB extents: read latency p50 / p99.

Targets (issue 4): write and read ≥ 0.7 × anchor, degraded read ≥ 0.5 ×
healthy read, rebuild ≥ 0.7 × raw replacement write, 4 KiB read p99 ≤ 200 µs
on RAM-backed files.  Wall-clock figures on a shared machine are noisy: pool
and anchor passes alternate and each figure is the median of ``repeats``
passes; the write and read ratios are medians of back-to-back pairs.  Every
device file (and the replacement) is written over once before measuring, as
a disk's blocks exist before it is used.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dwcore.devices import (
    METADATA_SIZE,
    BlockDevice,
    FileDevice,
    ResilientDevice,
    read_superblock,
)
from dwcore.devices.file import ram_backed
from dwcore.errors import InvalidArgumentError
from dwcore.pool import Pool, PoolDegradedWarning

__all__ = ["CONFIGS", "Config", "PoolBenchRow", "judge", "ram_backed", "run_pool_bench"]


MiB = 1 << 20


@dataclass(frozen=True)
class Config:
    """One measured pool: a level on ``devices`` devices with level ``options``."""

    level: str
    devices: int
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def label(self) -> str:
        """How the table names it (the level, or a name for a variant)."""
        return self.name or self.level


#: What ``dwcore bench pool`` measures by default.
CONFIGS: tuple[Config, ...] = (
    Config("5", 6),
    Config("6", 8),
    Config("10", 8),
    Config("50", 8),
    Config("60", 8),
    Config("MD10", 8, {"far": 2}, "MD10 far"),
    Config("Z2", 8),
    Config("Z3", 8),
    Config("UNRAID", 8, {"parity": 2}, "Unraid 6+2"),
    Config("DECLUSTERED", 8),
    Config("FR", 8),
    Config("7", 8),
    Config("BEYOND", 8, {"zone_size": 64 * MiB}),
    Config("ADAPTIVE", 8),
)


@dataclass(frozen=True)
class PoolBenchRow:
    """Figures of one configuration (MiB/s of user data unless said otherwise)."""

    level: str
    devices: int
    write: float
    raw_write: float
    #: median over alternating pool / anchor pairs of anchor time ÷ pool time
    write_ratio: float
    read: float
    raw_read: float
    read_ratio: float
    degraded_read: float
    failed: int
    rebuild: float
    raw_rebuild: float
    p50_4k_us: float
    p99_4k_us: float
    #: device bytes one 1 MiB extent occupies (data, redundancy, padding), in MiB
    physical_per_mib: float = 0.0
    #: the device files were on tmpfs / ramfs
    ram: bool = False
    #: passes were timed by thread CPU time rather than the wall clock
    cpu_time: bool = False

    @property
    def degraded_ratio(self) -> float:
        return self.degraded_read / self.read

    @property
    def rebuild_ratio(self) -> float:
        return self.rebuild / self.raw_rebuild if self.raw_rebuild else float("nan")


def _paired(
    pool_pass: Callable[[], float], raw_pass: Callable[[], float], repeats: int
) -> tuple[float, float, float]:
    """Alternate a pool pass and its anchor pass ``repeats`` times.

    Returns the median pool time, the median anchor time and the median of the
    per-pair ratios (anchor time / pool time): pairs run back to back see the
    same machine load, so their ratio is steadier than a ratio of medians.
    """
    tp: list[float] = []
    ta: list[float] = []
    for _ in range(repeats):
        tp.append(pool_pass())
        ta.append(raw_pass())
    ratios = [a / p for p, a in zip(tp, ta, strict=True)]
    return statistics.median(tp), statistics.median(ta), statistics.median(ratios)


def _pretouch(path: str, size: int) -> None:
    """Write zeros over a file so every page exists and is initialised.

    On tmpfs the first write to a page (even one ``fallocate`` reserved) costs
    several times a later one; whichever of pool and anchor wrote a page first
    would pay it, so both must find every page already written.
    """
    zeros = bytes(4 * MiB)
    fd = os.open(path, os.O_RDWR)
    try:
        for pos in range(0, size, len(zeros)):
            os.pwrite(fd, memoryview(zeros)[: size - pos], pos)
    finally:
        os.close(fd)


def _one(
    config: Config,
    devices: Sequence[str],
    device_size: int,
    extents: int,
    repeats: int,
    force: bool,
    workdir: str,
    clock: Callable[[], float],
) -> PoolBenchRow:
    level, n, options = config.level, len(devices), config.options
    root = os.path.join(workdir, f"pool-{level}-{n}")
    files = not any(os.path.exists(d) and not os.path.isfile(d) for d in devices)
    # The anchor writes past the pool's device_size: its own region of the same files
    # (on block devices, of the same disks), so pool and anchor never overwrite each other.
    spare = extents * MiB + 8 * METADATA_SIZE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoolDegradedWarning)
        if files:
            opened: list[Any] = []
            for d in devices:
                FileDevice.create(d, device_size + spare, overwrite=True).close()
                _pretouch(d, device_size + spare)
                opened.append(ResilientDevice(FileDevice.open(d)))
        else:
            opened = [ResilientDevice(BlockDevice.open(d)) for d in devices]
            device_size = min(dev.size for dev in opened) - spare
        try:
            pool = Pool.create(root, level, opened, device_size, force=force, **options)
        except BaseException:
            for dev in opened:
                dev.close()
            raise
        replacement: FileDevice | None = None
        try:
            lay = pool.layout
            data = np.random.default_rng(0).bytes(MiB)
            exts: list[Any] = [pool.write(data) for _ in range(extents)]
            base = {i: read_superblock(dev).data_offset for i, dev in enumerate(opened)}
            # the anchor: per extent the same requests (device, length) as the pool's
            # physical runs, laid back to back per device in the anchor region
            plan: list[list[tuple[int, int, int]]] = []
            cursor = dict.fromkeys(range(n), device_size + 2 * METADATA_SIZE)
            for e in exts:
                reqs = []
                for dev, _, length in pool.physical(e):
                    reqs.append((dev, cursor[dev], length))
                    cursor[dev] += length
                plan.append(reqs)
            if max(cursor.values()) > device_size + spare - 2 * METADATA_SIZE:
                raise InvalidArgumentError(f"RAID {level}: the anchor region is too small")
            physical = sum(length for reqs in plan for _, _, length in reqs)
            # a buffer per device and request size: each device gets its own bytes, as
            # from the pool (one shared buffer would stay in cache and flatter the anchor)
            bufs = {(d, n): os.urandom(n) for reqs in plan for d, _, n in reqs}
            fds = [dev.inner.fileno for dev in opened]

            def write_pass() -> float:
                for e in exts:
                    pool.free(e)
                exts.clear()
                t = clock()
                for _ in range(extents):
                    exts.append(pool.write(data))
                return clock() - t

            def read_pass() -> float:
                t = clock()
                for e in exts:
                    pool.read(e)
                return clock() - t

            def raw_write() -> float:
                t = clock()
                for reqs in plan:
                    for dev, off, length in reqs:
                        os.pwrite(fds[dev], bufs[dev, length], off)
                return clock() - t

            def raw_read() -> float:
                t = clock()
                for reqs in plan:
                    for dev, off, length in reqs:
                        os.pread(fds[dev], length, off)
                return clock() - t

            tw, trw, w_ratio = _paired(write_pass, raw_write, repeats)
            tr, trr, r_ratio = _paired(read_pass, raw_read, repeats)
            small = [pool.write(os.urandom(4096)) for _ in range(2000)]
            lat = []
            for e in small:
                t = time.perf_counter()
                pool.read(e)
                lat.append(time.perf_counter() - t)
            for e in small:
                pool.free(e)
            # what the replacement of device 0 must receive: the bytes it holds now
            rebuilt = sum(length for e in exts for dev, _, length in pool.physical(e) if dev == 0)
            failed = lay.fault_tolerance
            for i in range(failed):
                pool.fail_device(i)
            td = statistics.median(read_pass() for _ in range(repeats))
            # a replacement whose pages are written already, like a disk (never truncated)
            repl_path = os.path.join(workdir, f"replacement-{level}-{n}")
            FileDevice.create(repl_path, device_size + spare, overwrite=True).close()
            _pretouch(repl_path, device_size + spare)
            replacement = FileDevice.open(repl_path)
            pool.replace_device(0, replacement, force=True)
            t = clock()
            pool.rebuild()
            tb = clock() - t
            chunk = os.urandom(min(max(rebuilt, 1), 4 * MiB))
            at = base[0]

            def raw_rebuild() -> float:
                t = clock()
                pos = 0
                while pos < rebuilt:
                    pos += os.pwrite(replacement.fileno, chunk[: rebuilt - pos], at + pos)
                return clock() - t

            trb = statistics.median(raw_rebuild() for _ in range(repeats))
        finally:
            pool.close()
            for dev in opened:
                dev.close()
            if replacement is not None:
                replacement.close()
    mib = extents * 1.0
    return PoolBenchRow(
        level=config.label,
        devices=n,
        write=mib / tw,
        raw_write=mib / trw,
        write_ratio=w_ratio,
        read=mib / tr,
        raw_read=mib / trr,
        read_ratio=r_ratio,
        degraded_read=mib / td,
        failed=failed,
        rebuild=rebuilt / MiB / tb,
        raw_rebuild=rebuilt / MiB / trb,
        p50_4k_us=float(np.percentile(lat, 50) * 1e6),
        p99_4k_us=float(np.percentile(lat, 99) * 1e6),
        physical_per_mib=physical / MiB / extents,
    )


def run_pool_bench(
    directory: str | None = None,
    devices: Sequence[str] = (),
    *,
    configs: Sequence[Config] = CONFIGS,
    device_size: int = 256 * MiB,
    extents: int = 128,
    repeats: int = 3,
    force: bool = False,
    cpu_time: bool | None = None,
    progress: Callable[[str], Any] | None = None,
) -> list[PoolBenchRow]:
    """Measure every configuration; see the module documentation.

    With ``devices`` the configurations that fit use the first N of them
    (each refused if it holds a file system or a dwcore superblock unless
    ``force``; their dwcore metadata is erased afterwards).  Otherwise files
    are created in ``directory`` (default: a temporary directory in
    ``/dev/shm`` when it exists), removed afterwards.

    ``cpu_time`` times passes by the process's CPU time (user + system, all
    threads) instead of the wall clock; by default it does so on RAM-backed
    files, where the work is CPU-bound and the wall clock mostly measures
    other processes on a shared machine.  Latencies are wall-clock.
    """
    device_size = max(device_size, extents * MiB)
    own = directory is None
    work = directory or tempfile.mkdtemp(
        prefix="dwcore-bench-pool-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    )
    os.makedirs(work, exist_ok=True)
    if cpu_time is None:
        cpu_time = not devices and ram_backed(work)
    clock = time.process_time if cpu_time else time.perf_counter
    ram = not devices and ram_backed(work)
    rows: list[PoolBenchRow] = []
    try:
        for config in configs:
            level, n = config.level, config.devices
            if devices:
                if len(devices) < n:
                    continue
                devs = list(devices[:n])
            else:
                devs = [os.path.join(work, f"bench-{level}-{n}-{i:02d}") for i in range(n)]
            if progress is not None:
                progress(f"RAID {config.label} on {n} devices")
            try:
                row = _one(config, devs, device_size, extents, repeats, force, work, clock)
                rows.append(dataclasses.replace(row, ram=ram, cpu_time=cpu_time))
            finally:
                for d in devs:
                    if devices:
                        _erase_metadata(d)
                    elif os.path.exists(d):
                        os.unlink(d)
                shutil.rmtree(os.path.join(work, f"pool-{level}-{n}"), ignore_errors=True)
                repl = os.path.join(work, f"replacement-{level}-{n}")
                if os.path.exists(repl):
                    os.unlink(repl)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    if devices and not rows:
        raise InvalidArgumentError(
            f"{len(devices)} devices given; the configurations need "
            f"{', '.join(str(c.devices) for c in configs)}"
        )
    return rows


def _erase_metadata(path: str) -> None:
    """Zero both dwcore metadata areas so the device reads as unused again."""
    with FileDevice.open(path) if os.path.isfile(path) else _block(path) as dev:
        zeros = bytes(METADATA_SIZE)
        dev.pwrite(0, zeros)
        last = dev.size - dev.size % METADATA_SIZE - METADATA_SIZE
        if last > 0:
            dev.pwrite(last, zeros)
        dev.sync()


def _block(path: str) -> Any:
    from dwcore.devices import BlockDevice

    return BlockDevice.open(path)


def judge(rows: Sequence[PoolBenchRow], ram: bool) -> list[tuple[str, float, str, bool | None]]:
    """``(target, worst figure, bar, met)`` over the rows (None: not measured)."""
    if not rows:
        return []
    out: list[tuple[str, float, str, bool | None]] = []
    w = min(r.write_ratio for r in rows)
    out.append(("sequential write / raw pwrite", w, "≥ 0.70", w >= 0.7))
    rd = min(r.read_ratio for r in rows)
    out.append(("sequential read / raw pread", rd, "≥ 0.70", rd >= 0.7))
    dg = min(r.degraded_ratio for r in rows)
    out.append(("degraded read / healthy read", dg, "≥ 0.50", dg >= 0.5))
    rb = min(r.rebuild_ratio for r in rows)
    out.append(("rebuild / raw replacement write", rb, "≥ 0.70", rb >= 0.7))
    p99 = max(r.p99_4k_us for r in rows)
    out.append(("4 KiB extent read p99 (µs)", p99, "≤ 200 (RAM)", p99 <= 200 if ram else None))
    return out
