"""``dwcore bench pool``: the pool engine against plain ``os.pwrite``/``os.pread``.

For each configuration (RAID 5 on 6 devices, RAID 6 on 8, RAID 10 on 8) a
pool is created on device files in a directory (RAM-backed ``/dev/shm`` by
default) or on the devices given, and measured in one run:

* sequential write and read of 1 MiB extents, against the *anchor*: writing
  and reading the same physical bytes (data + redundancy) with plain
  ``os.pwrite``/``os.pread`` to the same device files, one request per device
  per extent;
* degraded read with the maximum tolerated failures (the first devices);
* rebuild of one replaced device, against plain writes of the same bytes to
  the replacement;
* 4 KiB extents: read latency p50 / p99.

Targets (issue 4): write and read ≥ 0.7 × anchor, degraded read ≥ 0.5 ×
healthy read, rebuild ≥ 0.7 × raw replacement write, 4 KiB read p99 ≤ 200 µs
on RAM-backed files.  Wall-clock figures on a shared machine are noisy: each
figure is the best of ``repeats`` passes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dwcore.devices import METADATA_SIZE, FileDevice
from dwcore.errors import InvalidArgumentError
from dwcore.pool import Pool, PoolDegradedWarning

__all__ = ["CONFIGS", "PoolBenchRow", "judge", "run_pool_bench"]

#: (level, devices) measured by default.
CONFIGS: tuple[tuple[str, int], ...] = (("5", 6), ("6", 8), ("10", 8))
MiB = 1 << 20


@dataclass(frozen=True)
class PoolBenchRow:
    """Figures of one configuration (MiB/s of user data unless said otherwise)."""

    level: str
    devices: int
    write: float
    raw_write: float
    read: float
    raw_read: float
    degraded_read: float
    failed: int
    rebuild: float
    raw_rebuild: float
    p50_4k_us: float
    p99_4k_us: float

    @property
    def write_ratio(self) -> float:
        return self.write / self.raw_write

    @property
    def read_ratio(self) -> float:
        return self.read / self.raw_read

    @property
    def degraded_ratio(self) -> float:
        return self.degraded_read / self.read

    @property
    def rebuild_ratio(self) -> float:
        return self.rebuild / self.raw_rebuild


def _best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def _one(
    level: str,
    devices: Sequence[str],
    device_size: int,
    extents: int,
    repeats: int,
    force: bool,
    workdir: str,
) -> PoolBenchRow:
    n = len(devices)
    root = os.path.join(workdir, f"pool-{level}-{n}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoolDegradedWarning)
        pool = Pool.create(root, level, list(devices), device_size, force=force)
        try:
            # allocate every page of file devices first, so that pool and anchor both
            # write to allocated pages (first-touch costs would favour whichever ran last)
            for d in pool.devices:
                if d is not None and os.path.isfile(d.path):
                    fd = os.open(d.path, os.O_RDWR)
                    try:
                        os.posix_fallocate(fd, 0, d.size)
                    finally:
                        os.close(fd)
            lay = pool.layout
            data = np.random.default_rng(0).bytes(MiB)
            exts: list[Any] = []

            def write_pass() -> float:
                for e in exts:
                    pool.free(e)
                exts.clear()
                t = time.perf_counter()
                for _ in range(extents):
                    exts.append(pool.write(data))
                return time.perf_counter() - t

            tw = _best(write_pass, repeats)

            def read_pass() -> float:
                t = time.perf_counter()
                for e in exts:
                    pool.read(e)
                return time.perf_counter() - t

            tr = _best(read_pass, repeats)
            # the anchor: the same physical bytes with plain pwrite / pread, same files
            rows = exts[0].rows
            per_dev = rows * pool.block_size
            start = METADATA_SIZE + exts[-1].first_row * pool.block_size + per_dev
            fds = [os.open(d.path, os.O_RDWR) for d in pool.devices if d is not None]
            buf = os.urandom(per_dev)
            try:

                def raw_write() -> float:
                    t = time.perf_counter()
                    for i in range(extents):
                        for fd in fds:
                            os.pwrite(fd, buf, start + i * per_dev)
                    return time.perf_counter() - t

                def raw_read() -> float:
                    t = time.perf_counter()
                    for i in range(extents):
                        for fd in fds:
                            os.pread(fd, per_dev, start + i * per_dev)
                    return time.perf_counter() - t

                trw = _best(raw_write, repeats)
                trr = _best(raw_read, repeats)
            finally:
                for fd in fds:
                    os.close(fd)
            small = [pool.write(os.urandom(4096)) for _ in range(2000)]
            lat = []
            for e in small:
                t = time.perf_counter()
                pool.read(e)
                lat.append(time.perf_counter() - t)
            for e in small:
                pool.free(e)
            failed = lay.fault_tolerance
            for i in range(failed):
                pool.fail_device(i)
            td = _best(read_pass, repeats)
            pool.replace_device(0, os.path.join(workdir, f"replacement-{level}-{n}"), force=True)
            t = time.perf_counter()
            pool.rebuild()
            tb = time.perf_counter() - t
            rebuilt = len(exts) * per_dev
            repl = pool.devices[0]
            assert repl is not None
            fd = os.open(repl.path, os.O_RDWR)
            try:
                chunk = os.urandom(min(rebuilt, 4 * MiB))
                t = time.perf_counter()
                pos = 0
                while pos < rebuilt:
                    pos += os.pwrite(fd, chunk, METADATA_SIZE + pos)
                trb = time.perf_counter() - t
            finally:
                os.close(fd)
        finally:
            pool.close()
    mib = extents * 1.0
    return PoolBenchRow(
        level=level,
        devices=n,
        write=mib / tw,
        raw_write=mib / trw,
        read=mib / tr,
        raw_read=mib / trr,
        degraded_read=mib / td,
        failed=failed,
        rebuild=rebuilt / MiB / tb,
        raw_rebuild=rebuilt / MiB / trb,
        p50_4k_us=float(np.percentile(lat, 50) * 1e6),
        p99_4k_us=float(np.percentile(lat, 99) * 1e6),
    )


def run_pool_bench(
    directory: str | None = None,
    devices: Sequence[str] = (),
    *,
    configs: Sequence[tuple[str, int]] = CONFIGS,
    device_size: int = 256 * MiB,
    extents: int = 128,
    repeats: int = 3,
    force: bool = False,
    progress: Callable[[str], Any] | None = None,
) -> list[PoolBenchRow]:
    """Measure every configuration; see the module documentation.

    With ``devices`` the configurations that fit use the first N of them
    (each refused if it holds a file system or a dwcore superblock unless
    ``force``; their dwcore metadata is erased afterwards).  Otherwise files
    are created in ``directory`` (default: a temporary directory in
    ``/dev/shm`` when it exists), removed afterwards.
    """
    device_size = max(device_size, extents * MiB)
    own = directory is None
    work = directory or tempfile.mkdtemp(
        prefix="dwcore-bench-pool-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    )
    os.makedirs(work, exist_ok=True)
    rows: list[PoolBenchRow] = []
    try:
        for level, n in configs:
            if devices:
                if len(devices) < n:
                    continue
                devs = list(devices[:n])
            else:
                devs = [os.path.join(work, f"bench-{level}-{n}-{i:02d}") for i in range(n)]
            if progress is not None:
                progress(f"RAID {level} on {n} devices")
            try:
                rows.append(_one(level, devs, device_size, extents, repeats, force, work))
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
            f"{', '.join(str(n) for _, n in configs)}"
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
