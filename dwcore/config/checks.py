"""Start-up resource checks: free disk for the pools, memory, the open-file limit.

* **Disk** — the device files a pool creates are sparse, so a pool can be
  created on a disk too small for it and fail much later.  For every file
  system, the bytes the configured pools' device files may still grow by
  (devices × device_size, less what existing files already hold) plus
  ``resources.min_free_disk`` must be free.  Block devices are not counted.
* **Memory** — a limit (cgroup or physical) below 256 MiB, or a process
  already past ``resources.memory_elevated``, is a warning.
* **Open files** — ``RLIMIT_NOFILE`` below ``resources.min_open_files`` is an
  error when the hard limit is below it too (it cannot be raised without
  privileges) and a warning otherwise; the pools need two descriptors per
  device.

Every probe is a parameter, so tests inject disks, readings and limits.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from dwcore.config.report import ValidationReport
from dwcore.config.schema import DwConfig, PoolConfig
from dwcore.config.units import format_size
from dwcore.memory.reading import MemoryReading, read_memory

__all__ = ["MIN_MEMORY", "Probes", "check_resources", "pool_device_paths", "pool_directory"]

#: Less memory than this (the cgroup or physical limit) draws a warning.
MIN_MEMORY = 256 << 20


class Probes(NamedTuple):
    """What the checks look at (replace any of them in tests)."""

    #: ``disk_usage(path).free``: bytes free on the file system of ``path``.
    disk_usage: Callable[[str], Any] = shutil.disk_usage
    memory: Callable[[], MemoryReading] = read_memory
    nofile: Callable[[], tuple[int, int]] = lambda: resource.getrlimit(resource.RLIMIT_NOFILE)


def instance_root(config: DwConfig, base: Path) -> Path:
    """The instance root: ``instance.root``, relative to ``base`` (the file's directory)."""
    return (base / os.path.expanduser(config.instance.root)).absolute()


def pool_directory(pool: PoolConfig, root: Path) -> Path:
    """Where pool ``pool`` lives: its ``path`` (relative to the root) or ``root/pools/NAME``."""
    if pool.path is not None:
        return (root / os.path.expanduser(pool.path)).absolute()
    return root / "pools" / pool.name


def pool_device_paths(pool: PoolConfig, root: Path) -> list[Path]:
    """The device paths of ``pool`` (the files ``Pool.create`` makes for a count)."""
    directory = pool_directory(pool, root)
    if isinstance(pool.devices, int):
        return [directory / f"dev-{i:02d}" for i in range(pool.devices)]
    return [(directory / os.path.expanduser(p)).absolute() for p in pool.devices]


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _check_disk(config: DwConfig, root: Path, report: ValidationReport, probes: Probes) -> None:
    need: dict[int, int] = {}
    where: dict[int, tuple[Path, list[str]]] = {}
    for i, pool in enumerate(config.pools):
        for path in pool_device_paths(pool, root):
            try:
                st = path.stat()
            except OSError:
                st = None
            if st is not None and stat.S_ISBLK(st.st_mode):
                continue
            held = st.st_blocks * 512 if st is not None else 0
            anchor = _existing_ancestor(path.parent)
            dev = anchor.stat().st_dev
            need[dev] = need.get(dev, 0) + max(0, pool.device_size - held)
            keys = where.setdefault(dev, (anchor, []))[1]
            if f"pools[{i}]" not in keys:
                keys.append(f"pools[{i}]")
    reserve = config.resources.min_free_disk
    for dev, bytes_needed in need.items():
        anchor, keys = where[dev]
        try:
            free = probes.disk_usage(str(anchor)).free
        except OSError as exc:
            report.warning(keys[0], f"cannot read the free space of {anchor}: {exc.strerror}")
            continue
        if free < bytes_needed + reserve:
            report.error(
                ".".join([keys[0], "device_size"]) if len(keys) == 1 else ", ".join(keys),
                f"the device files need up to {format_size(bytes_needed)} on the file system of "
                f"{anchor}, which has {format_size(free)} free; with resources.min_free_disk = "
                f"{format_size(reserve)} kept free, shrink device_size or the device count, "
                f"or free {format_size(bytes_needed + reserve - free)}",
            )


def _check_memory(config: DwConfig, report: ValidationReport, probes: Probes) -> None:
    try:
        reading = probes.memory()
    except Exception as exc:  # psutil or /proc unavailable: a warning, not a failure
        report.warning("resources", f"cannot read memory usage: {exc}")
        return
    if reading.limit < MIN_MEMORY:
        report.warning(
            "resources",
            f"only {format_size(reading.limit)} of memory is available ({reading.source}); "
            f"dwcore wants at least {format_size(MIN_MEMORY)}",
        )
    if reading.ratio >= config.resources.memory_elevated:
        report.warning(
            "resources.memory_elevated",
            f"the process already uses {reading.ratio:.0%} of its memory limit "
            f"({reading.source}), past this threshold",
            config.resources.memory_elevated,
        )


def _check_nofile(config: DwConfig, report: ValidationReport, probes: Probes) -> None:
    soft, hard = probes.nofile()
    want = config.resources.min_open_files
    infinite = resource.RLIM_INFINITY
    devices = sum(p.device_count for p in config.pools)
    if devices * 2 + 64 > want:
        report.warning(
            "resources.min_open_files",
            f"the pools have {devices} devices and need about {devices * 2 + 64} file "
            f"descriptors; raise min_open_files to at least that",
            want,
        )
    if soft != infinite and soft < want:
        if hard != infinite and hard < want:
            report.error(
                "resources.min_open_files",
                f"the open-file limit (RLIMIT_NOFILE) is {soft}, hard limit {hard}: raise it "
                f"(ulimit -n, LimitNOFILE=) to at least {want} or lower min_open_files",
                want,
            )
        else:
            report.warning(
                "resources.min_open_files",
                f"the open-file limit (RLIMIT_NOFILE) is {soft}, below {want}; raise it with "
                f"ulimit -n {want} (the hard limit allows it)",
                want,
            )


def check_resources(
    config: DwConfig, base: Path, report: ValidationReport, probes: Probes | None = None
) -> None:
    """Add the resource checks' errors and warnings for ``config`` to ``report``."""
    p = probes if probes is not None else Probes()
    root = instance_root(config, base)
    _check_disk(config, root, report, p)
    _check_memory(config, report, p)
    _check_nofile(config, report, p)
