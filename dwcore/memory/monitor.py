"""The memory monitor: readings to levels, levels to cache shrinking and admission.

:meth:`MemoryMonitor.check` takes one reading, computes the level, and acts:

* when the level rises above normal, every registered cache is shrunk for
  the new level (:class:`~dwcore.memory.caches.CacheRegistry`);
* at critical, caches are cleared and ``gc.collect()`` runs on every check
  while the level stays critical;
* the admission controller gets the new level (throttle at high, pause at
  critical), and listeners hear about changes.

:meth:`MemoryMonitor.start` runs ``check`` on a daemon thread every
``interval_s`` seconds; readers, the collector and the thread's wait are
injectable.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from dwcore.errors import InvalidArgumentError
from dwcore.memory.admission import Admission
from dwcore.memory.caches import CACHES, CacheRegistry
from dwcore.memory.levels import Level, Thresholds
from dwcore.memory.reading import MemoryReading, Reader, read_memory

__all__ = ["ADMISSION", "MemoryMonitor", "MemoryStatus", "ResourceSettings", "admit"]

#: The process-wide admission controller (what :func:`admit` uses).
ADMISSION = Admission()


def admit(timeout: float | None = None) -> AbstractContextManager[None]:
    """``with admit():`` — admission of one unit of work through :data:`ADMISSION`."""
    return ADMISSION.admit(timeout)


class ResourceSettings(Protocol):
    """The memory settings of the ``[resources]`` table of ``dwcore.toml``."""

    memory_elevated: float
    memory_high: float
    memory_critical: float
    memory_check_interval_s: float
    admission_high_concurrency: int
    admission_timeout_s: float


@dataclass(frozen=True)
class MemoryStatus:
    """The outcome of one :meth:`MemoryMonitor.check`."""

    level: Level
    previous: Level
    reading: MemoryReading
    freed: dict[str, int] = field(default_factory=dict)
    collected: int | None = None

    @property
    def changed(self) -> bool:
        """True when this check moved to another level."""
        return self.level is not self.previous


Listener = Callable[[MemoryStatus], None]


class MemoryMonitor:
    """See the module documentation.

    Defaults: the real reader (:func:`~dwcore.memory.reading.read_memory`),
    70/85/95 % thresholds, the process-wide :data:`~dwcore.memory.caches.CACHES`
    and :data:`ADMISSION`.
    """

    def __init__(
        self,
        reader: Reader = read_memory,
        thresholds: Thresholds | None = None,
        caches: CacheRegistry = CACHES,
        admission: Admission | None = None,
        *,
        interval_s: float = 1.0,
        collect: Callable[[], int] = gc.collect,
    ) -> None:
        if isinstance(interval_s, bool) or not isinstance(interval_s, (int, float)):
            raise InvalidArgumentError(f"interval_s must be a number, got {interval_s!r}")
        if not 0 < interval_s <= 3600:
            raise InvalidArgumentError(f"interval_s must be in (0, 3600] seconds, got {interval_s}")
        self.reader = reader
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.caches = caches
        self.admission = admission if admission is not None else ADMISSION
        self.interval_s = float(interval_s)
        self._collect = collect
        self._level = Level.NORMAL
        self._last: MemoryStatus | None = None
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error = ""

    @classmethod
    def from_settings(
        cls,
        settings: ResourceSettings,
        reader: Reader = read_memory,
        caches: CacheRegistry = CACHES,
        admission: Admission | None = None,
    ) -> MemoryMonitor:
        """A monitor built from ``[resources]``.

        It drives ``admission``, by default the process-wide :data:`ADMISSION`
        that :func:`admit` uses, which gets the configured concurrency and timeout.
        """
        thresholds = Thresholds(
            elevated=settings.memory_elevated,
            high=settings.memory_high,
            critical=settings.memory_critical,
        )
        if admission is None:
            admission = ADMISSION
        admission.configure(settings.admission_high_concurrency, settings.admission_timeout_s)
        return cls(
            reader,
            thresholds,
            caches,
            admission,
            interval_s=settings.memory_check_interval_s,
        )

    @property
    def level(self) -> Level:
        """The level of the last check (normal before the first)."""
        return self._level

    @property
    def last(self) -> MemoryStatus | None:
        """The status of the last check."""
        return self._last

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(status)`` after every check that changes the level."""
        self._listeners.append(listener)

    def check(self) -> MemoryStatus:
        """Take one reading and act on it; see the module documentation."""
        reading = self.reader()
        with self._lock:
            previous = self._level
            level = self.thresholds.level(reading.ratio)
            freed: dict[str, int] = {}
            collected = None
            if level > previous or level is Level.CRITICAL:
                freed = self.caches.shrink(level)
            if level is Level.CRITICAL:
                collected = self._collect()
            self._level = level
            self.admission.set_level(level)
            status = MemoryStatus(level, previous, reading, freed, collected)
            self._last = status
        if status.changed:
            for listener in list(self._listeners):
                listener(status)
        return status

    # -- the polling thread ----------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the polling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start polling on a daemon thread (checks at once, then every ``interval_s``)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dwcore-memory", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the polling thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception as exc:  # a failed reading must not kill the monitor
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> MemoryMonitor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
