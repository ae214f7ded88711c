"""Time as the audit log and the security layer see it, injectable for tests.

Wall-clock time (:meth:`Clock.now`, aware UTC) stamps records and expiries
that are stored; monotonic time (:meth:`Clock.monotonic`) measures intervals
inside one process.  Tests use :class:`ManualClock` and move time by hand
instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of wall-clock and monotonic time."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (arbitrary origin)."""
        ...


class SystemClock:
    """The real clocks: :func:`datetime.now` in UTC and :func:`time.monotonic`."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to: both readings advance together.

    ``ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))``; then
    :meth:`advance` by seconds.  Thread-safe.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime (tzinfo=timezone.utc)")
        self._now = start.astimezone(timezone.utc)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The clock's current UTC time."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """The clock's current monotonic reading."""
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both readings forward by *seconds* (must not be negative)."""
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
