"""A circuit breaker over a sliding window of call outcomes.

States:

* **closed** — calls go through; the outcomes of the last ``window`` calls
  are kept.  Once at least ``min_calls`` are in the window and the share of
  failures reaches ``failure_rate``, the breaker opens.
* **open** — calls fail at once with :class:`~dwcore.errors.CircuitOpenError`
  for ``open_s`` seconds.
* **half-open** — then up to ``half_open_probes`` calls are let through as
  probes.  If all of them succeed the breaker closes (with an empty window);
  if one fails it opens again for another ``open_s``.

Which exceptions count as failures is ``is_failure`` (default: every
:class:`Exception`); others pass through without counting either way.
:meth:`CircuitBreaker.snapshot` gives the state and counters for metrics;
listeners hear every state change.  The clock is injectable.
"""

from __future__ import annotations

import enum
import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from dwcore.errors import CircuitOpenError, InvalidArgumentError

__all__ = ["BreakerState", "CircuitBreaker"]

_T = TypeVar("_T")
_P = ParamSpec("_P")
Listener = Callable[["CircuitBreaker", "BreakerState", "BreakerState"], None]


class BreakerState(str, enum.Enum):
    """The three states of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgumentError(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    return value


def _real(name: str, value: object, lo: float, hi: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or math.isnan(value) or not lo <= value <= hi:  # type: ignore[arg-type]
        raise InvalidArgumentError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)  # type: ignore[arg-type]


class CircuitBreaker:
    """See the module documentation.  Thread-safe."""

    def __init__(
        self,
        name: str = "breaker",
        *,
        window: int = 20,
        min_calls: int = 5,
        failure_rate: float = 0.5,
        open_s: float = 30.0,
        half_open_probes: int = 1,
        is_failure: Callable[[BaseException], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.window = _int("window", window, 1, 100_000)
        self.min_calls = _int("min_calls", min_calls, 1, self.window)
        self.failure_rate = _real("failure_rate", failure_rate, 0.0, 1.0)
        if self.failure_rate == 0.0:
            raise InvalidArgumentError("failure_rate must be above 0 (0 would open on success)")
        self.open_s = _real("open_s", open_s, 0.0, 86400.0 * 365)
        self.half_open_probes = _int("half_open_probes", half_open_probes, 1, 10_000)
        self._is_failure = is_failure or (lambda exc: isinstance(exc, Exception))
        self._clock = clock
        self._lock = threading.Lock()
        self._outcomes: deque[bool] = deque(maxlen=self.window)  # True = failure
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probes = 0
        self._probe_ok = 0
        self._listeners: list[Listener] = []
        self.calls = 0
        self.successes = 0
        self.failures = 0
        self.rejected = 0
        self.opened = 0
        self.last_failure = ""

    # -- state ----------------------------------------------------------------

    def _tick(self) -> list[tuple[BreakerState, BreakerState]]:
        """Open -> half-open once ``open_s`` has passed (lock held)."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.open_s:
            return self._move(BreakerState.HALF_OPEN)
        return []

    def _move(self, new: BreakerState) -> list[tuple[BreakerState, BreakerState]]:
        old = self._state
        if old is new:
            return []
        self._state = new
        self._probes = self._probe_ok = 0
        if new is BreakerState.OPEN:
            self._opened_at = self._clock()
            self.opened += 1
        elif new is BreakerState.CLOSED:
            self._outcomes.clear()
        return [(old, new)]

    def _notify(self, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        for old, new in changes:
            for listener in list(self._listeners):
                listener(self, old, new)

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose time is up reports half-open)."""
        with self._lock:
            changes = self._tick()
            state = self._state
        self._notify(changes)
        return state

    @property
    def closed(self) -> bool:
        """True while the breaker is closed: :attr:`state` without its lock (a closed
        breaker has no timer to run), for checks on every request."""
        return self._state is BreakerState.CLOSED

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(breaker, old_state, new_state)`` on every state change."""
        self._listeners.append(listener)

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        with self._lock:
            if self._state is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.open_s - self._clock())

    # -- the protocol -------------------------------------------------------------

    def allow(self) -> None:
        """Admit one call or raise :class:`~dwcore.errors.CircuitOpenError`.

        Every admitted call must be followed by :meth:`record_success`,
        :meth:`record_failure` or :meth:`record_ignored` (:meth:`call` does this).
        """
        with self._lock:
            changes = self._tick()
            state = self._state
            refused = state is BreakerState.OPEN or (
                state is BreakerState.HALF_OPEN and self._probes >= self.half_open_probes
            )
            if refused:
                self.rejected += 1
                wait = max(0.0, self._opened_at + self.open_s - self._clock())
            else:
                self.calls += 1
                if state is BreakerState.HALF_OPEN:
                    self._probes += 1
        self._notify(changes)
        if refused:
            what = "open" if state is BreakerState.OPEN else "half-open with its probes in flight"
            last = f"; last failure: {self.last_failure}" if self.last_failure else ""
            raise CircuitOpenError(
                f"circuit {self.name!r} is {what}: calls fail fast for {wait:.1f} s more{last}",
                self.name,
                wait,
            )

    def record_success(self) -> None:
        """The admitted call succeeded."""
        with self._lock:
            self.successes += 1
            changes: list[tuple[BreakerState, BreakerState]] = []
            if self._state is BreakerState.HALF_OPEN:
                self._probe_ok += 1
                if self._probe_ok >= self.half_open_probes:
                    changes = self._move(BreakerState.CLOSED)
            else:
                self._outcomes.append(False)
        self._notify(changes)

    def record_failure(self, exc: BaseException | None = None) -> None:
        """The admitted call failed (with ``exc``, kept as ``last_failure``)."""
        with self._lock:
            self.failures += 1
            if exc is not None:
                self.last_failure = f"{type(exc).__name__}: {exc}"[:300]
            changes: list[tuple[BreakerState, BreakerState]] = []
            if self._state is BreakerState.HALF_OPEN:
                changes = self._move(BreakerState.OPEN)
            elif self._state is BreakerState.CLOSED:
                self._outcomes.append(True)
                n = len(self._outcomes)
                if n >= self.min_calls and sum(self._outcomes) / n >= self.failure_rate:
                    changes = self._move(BreakerState.OPEN)
        self._notify(changes)

    def record_ignored(self) -> None:
        """The admitted call ended in an error that is not the callee's failure."""
        with self._lock:
            if self._state is BreakerState.HALF_OPEN and self._probes > 0:
                self._probes -= 1

    def call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)`` through the breaker."""
        self.allow()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, Exception) and self._is_failure(exc):
                self.record_failure(exc)
            else:
                self.record_ignored()
            raise
        self.record_success()
        return result

    def __call__(self, fn: Callable[_P, _T]) -> Callable[_P, _T]:
        """Use the breaker as a decorator."""

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def reset(self) -> None:
        """Close the breaker and forget the window (counters are kept)."""
        with self._lock:
            changes = self._move(BreakerState.CLOSED)
            self._outcomes.clear()
        self._notify(changes)

    def snapshot(self) -> dict[str, Any]:
        """State and counters, for metrics and status pages."""
        with self._lock:
            changes = self._tick()
            n = len(self._outcomes)
            failed = sum(self._outcomes)
            snap: dict[str, Any] = {
                "name": self.name,
                "state": self._state.value,
                "window_calls": n,
                "window_failures": failed,
                "failure_rate": failed / n if n else 0.0,
                "calls": self.calls,
                "successes": self.successes,
                "failures": self.failures,
                "rejected": self.rejected,
                "opened": self.opened,
                "retry_after_s": (
                    max(0.0, self._opened_at + self.open_s - self._clock())
                    if self._state is BreakerState.OPEN
                    else 0.0
                ),
                "last_failure": self.last_failure,
            }
        self._notify(changes)
        return snap

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state.value}>"
