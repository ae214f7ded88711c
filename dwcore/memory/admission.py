"""Admission control: throttle new work at high memory pressure, pause it at critical.

Callers wrap each unit of new work (a write, a restore chunk, a request) in
``with admission.admit():``.  At normal and elevated pressure work is
admitted at once.  At high pressure at most ``high_concurrency`` units run at
a time; the rest wait.  At critical pressure nothing new starts until the
level drops.  A wait longer than its timeout raises
:class:`~dwcore.errors.MemoryPressureError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dwcore.errors import InvalidArgumentError, MemoryPressureError
from dwcore.memory.levels import Level

__all__ = ["Admission"]

#: ``wait(condition, seconds)``: blocks on the condition (tests inject their own).
WaitFn = Callable[[threading.Condition, float], Any]


def _cond_wait(cond: threading.Condition, seconds: float) -> Any:
    return cond.wait(seconds)


class Admission:
    """See the module documentation.  ``timeout_s`` is the default longest wait."""

    def __init__(
        self,
        high_concurrency: int = 4,
        timeout_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: WaitFn = _cond_wait,
    ) -> None:
        self.high_concurrency = self._check_concurrency(high_concurrency)
        self.timeout_s = self._check_timeout(timeout_s)
        self._clock = clock
        self._wait = wait
        self._cond = threading.Condition()  # an RLock: set_level may run inside a wait hook
        self._level = Level.NORMAL
        self._active = 0
        self._waiting = 0
        self.admitted = 0
        self.delayed = 0
        self.refused = 0

    def configure(self, high_concurrency: int, timeout_s: float) -> None:
        """Change the concurrency allowed at high pressure and the default longest wait."""
        concurrency, timeout = (
            self._check_concurrency(high_concurrency),
            self._check_timeout(timeout_s),
        )
        with self._cond:
            self.high_concurrency, self.timeout_s = concurrency, timeout
            self._cond.notify_all()

    @staticmethod
    def _check_concurrency(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"high_concurrency must be an int, got {value!r}")
        if value < 1:
            raise InvalidArgumentError(f"high_concurrency must be >= 1, got {value}")
        return value

    @staticmethod
    def _check_timeout(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InvalidArgumentError(f"timeout must be a number of seconds >= 0, got {value!r}")
        return float(value)

    @property
    def level(self) -> Level:
        """The pressure level admission decisions use now."""
        return self._level

    def set_level(self, level: Level) -> None:
        """Change the level (the monitor calls this) and wake waiters that may now run."""
        with self._cond:
            self._level = Level(level)
            self._cond.notify_all()

    def _blocked(self) -> bool:
        if self._level is Level.CRITICAL:
            return True
        return self._level is Level.HIGH and self._active >= self.high_concurrency

    @contextmanager
    def admit(self, timeout: float | None = None) -> Iterator[None]:
        """Run the ``with`` block once memory allows it; see the module documentation."""
        limit = self.timeout_s if timeout is None else self._check_timeout(timeout)
        with self._cond:
            if self._blocked():
                self.delayed += 1
                deadline = self._clock() + limit
                self._waiting += 1
                try:
                    while self._blocked():
                        left = deadline - self._clock()
                        if left <= 0:
                            self.refused += 1
                            what = (
                                "paused (critical)"
                                if self._level is Level.CRITICAL
                                else f"throttled to {self.high_concurrency} at a time (high)"
                            )
                            raise MemoryPressureError(
                                f"memory pressure: new work is {what} and did not get in within "
                                f"{limit:g} s; free memory or raise the limit "
                                f"(resources.memory_* thresholds in dwcore.toml)"
                            )
                        self._wait(self._cond, left)
                finally:
                    self._waiting -= 1
            self._active += 1
            self.admitted += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """Level, work in flight and waiting, and counters, for metrics."""
        with self._cond:
            return {
                "level": self._level.label,
                "active": self._active,
                "waiting": self._waiting,
                "admitted": self.admitted,
                "delayed": self.delayed,
                "refused": self.refused,
            }
