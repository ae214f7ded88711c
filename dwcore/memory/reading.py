"""How much memory the process uses, and against which limit.

The limit is the smallest of physical memory and the process's cgroup limit:
cgroup v2 ``memory.max`` (``max`` means none) or cgroup v1
``memory.limit_in_bytes`` (a huge value means none), found through
``/proc/self/cgroup``.  Usage is the process's resident set size (psutil).
Paths are parameters so tests can point them at a fake tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import psutil

__all__ = ["MemoryReading", "Reader", "cgroup_limit", "read_memory"]

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"


@dataclass(frozen=True)
class MemoryReading:
    """Resident bytes ``used`` against ``limit`` bytes; ``source`` says where the limit is from."""

    used: int
    limit: int
    source: str

    @property
    def ratio(self) -> float:
        """``used / limit`` (1.0 when the limit is unknown or zero)."""
        return self.used / self.limit if self.limit > 0 else 1.0


#: Something that returns a fresh reading (tests inject their own).
Reader = Callable[[], MemoryReading]


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def _candidates(root: str, sub: str, rel: str, name: str) -> list[str]:
    base = os.path.join(root, sub) if sub else root
    rel = rel.lstrip("/")
    paths = [os.path.join(base, rel, name)] if rel else []
    return [*paths, os.path.join(base, name)]


def cgroup_limit(root: str = CGROUP_ROOT, proc_cgroup: str = PROC_CGROUP) -> tuple[int, str] | None:
    """The cgroup memory limit of this process and which file set it, or None if unlimited."""
    try:
        with open(proc_cgroup, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, rel = parts
        if hid == "0" and controllers == "":
            for path in _candidates(root, "", rel, "memory.max"):
                value = _read_int(path)
                if value is not None:
                    return value, f"cgroup v2 {path}"
        elif "memory" in controllers.split(","):
            for path in _candidates(root, "memory", rel, "memory.limit_in_bytes"):
                value = _read_int(path)
                if value is not None:
                    return value, f"cgroup v1 {path}"
    return None


def read_memory(root: str = CGROUP_ROOT, proc_cgroup: str = PROC_CGROUP) -> MemoryReading:
    """This process's RSS against min(physical memory, cgroup limit)."""
    used = psutil.Process().memory_info().rss
    limit, source = psutil.virtual_memory().total, "physical memory"
    found = cgroup_limit(root, proc_cgroup)
    if found is not None and found[0] < limit:
        limit, source = found
    return MemoryReading(used, limit, source)
