"""Memory pressure: levels from RSS against the cgroup or physical limit, and what to do.

* :class:`Level` — normal, elevated, high, critical; :class:`Thresholds`
  (70/85/95 % by default) map ``RSS / limit`` to a level.
* :func:`read_memory` — RSS (psutil) against cgroup v2 ``memory.max``, cgroup
  v1 ``memory.limit_in_bytes`` or physical memory, whichever is smallest.
* :data:`CACHES` — caches register ``shrink(level) -> bytes_freed``; the
  erasure codes' decode-plan cache is registered already.
* :class:`Admission` / :func:`admit` — new work is throttled at high and
  paused at critical (:class:`~dwcore.errors.MemoryPressureError` after the
  timeout).
* :class:`MemoryMonitor` — :meth:`~MemoryMonitor.check` once, or
  :meth:`~MemoryMonitor.start` a polling thread; shrinks caches when the level
  rises, runs ``gc.collect()`` at critical, feeds the admission controller.

>>> from dwcore.memory import MemoryMonitor, MemoryReading, Admission, Level
>>> mon = MemoryMonitor(lambda: MemoryReading(90, 100, "test"), admission=Admission())
>>> mon.check().level is Level.HIGH
True
"""

from __future__ import annotations

from dwcore.errors import MemoryPressureError
from dwcore.memory.admission import Admission
from dwcore.memory.caches import CACHES, CacheRegistry, ShrinkFn
from dwcore.memory.levels import KEEP_FRACTION, Level, Thresholds
from dwcore.memory.monitor import ADMISSION, MemoryMonitor, MemoryStatus, ResourceSettings, admit
from dwcore.memory.reading import MemoryReading, Reader, cgroup_limit, read_memory

__all__ = [
    "ADMISSION",
    "CACHES",
    "KEEP_FRACTION",
    "Admission",
    "CacheRegistry",
    "Level",
    "MemoryMonitor",
    "MemoryPressureError",
    "MemoryReading",
    "MemoryStatus",
    "Reader",
    "ResourceSettings",
    "ShrinkFn",
    "Thresholds",
    "admit",
    "cgroup_limit",
    "read_memory",
]
