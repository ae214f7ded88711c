"""Retry with exponential backoff and full jitter, within attempt and time budgets.

A :class:`RetryPolicy` calls a function until it returns, the error it
raises is not transient (its ``classifier`` says no), ``max_attempts`` calls
have been made, or the next wait would end past ``budget_s`` seconds after
the first call.  Then the last error is raised as it is, so callers handle
the same exceptions with or without retries.

The wait before attempt ``n + 1`` is drawn uniformly from
``[0, min(max_delay, base_delay * multiplier ** (n - 1))]`` ("full jitter",
which spreads the retries of many clients best).  The clock, the sleep
functions and the random source are fields, so tests run on a fake clock.

Presets: :data:`NETWORK`, :data:`DATABASE`, :data:`STORAGE`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ParamSpec, TypeVar, overload

from dwcore.errors import InvalidArgumentError
from dwcore.resilience.classify import database_transient, is_transient, storage_transient

__all__ = [
    "DATABASE",
    "DEFAULT",
    "NETWORK",
    "PRESETS",
    "STORAGE",
    "RetryEvent",
    "RetryPolicy",
    "aretry",
    "retry",
    "retry_call",
]

_T = TypeVar("_T")
_P = ParamSpec("_P")
MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class RetryEvent:
    """One retry about to happen: after ``attempt`` failed with ``error``, wait ``delay``."""

    policy: str
    attempt: int
    error: BaseException
    delay: float
    elapsed: float


def _number(name: str, value: object, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    if not lo <= value <= hi or math.isinf(value):
        raise InvalidArgumentError(f"{name} must be a finite number in [{lo}, {hi}], got {value}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry; see the module documentation.  Immutable: use :meth:`replace`.

    ``budget_s`` ``None`` means no time budget (attempts still bound it).
    ``on_retry`` is called before each wait (for logs and metrics).
    """

    name: str = "default"
    max_attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 2.0
    multiplier: float = 2.0
    budget_s: float | None = 10.0
    classifier: Callable[[BaseException], bool] = is_transient
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    asleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)
    on_retry: Callable[[RetryEvent], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        a = self.max_attempts
        if isinstance(a, bool) or not isinstance(a, int) or not 1 <= a <= MAX_ATTEMPTS:
            raise InvalidArgumentError(
                f"max_attempts must be an int in 1..{MAX_ATTEMPTS}, got {a!r}"
            )
        _number("base_delay", self.base_delay, 0.0, 3600.0)
        _number("max_delay", self.max_delay, 0.0, 3600.0)
        _number("multiplier", self.multiplier, 1.0, 100.0)
        if self.base_delay > self.max_delay:
            raise InvalidArgumentError(
                f"base_delay ({self.base_delay}) must not exceed max_delay ({self.max_delay})"
            )
        if self.budget_s is not None and _number("budget_s", self.budget_s, 0.0, 86400.0) <= 0:
            raise InvalidArgumentError(f"budget_s must be positive or None, got {self.budget_s}")
        if not callable(self.classifier):
            raise InvalidArgumentError(f"classifier must be callable, got {self.classifier!r}")

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def backoff_cap(self, attempt: int) -> float:
        """The longest wait after failed attempt number ``attempt`` (1-based)."""
        try:
            cap = self.base_delay * self.multiplier ** (attempt - 1)
        except OverflowError:
            return self.max_delay
        return min(self.max_delay, cap)

    def backoff(self, attempt: int) -> float:
        """A wait after failed attempt ``attempt``: uniform in ``[0, backoff_cap(attempt)]``."""
        return self.backoff_cap(attempt) * min(max(self.random(), 0.0), 1.0)

    def _next_delay(self, exc: Exception, attempt: int, start: float) -> float | None:
        """The wait before the next attempt, or None to give up and raise ``exc``."""
        if attempt >= self.max_attempts or not self.classifier(exc):
            return None
        delay = self.backoff(attempt)
        elapsed = self.clock() - start
        if self.budget_s is not None and elapsed + delay > self.budget_s:
            return None
        if self.on_retry is not None:
            self.on_retry(RetryEvent(self.name, attempt, exc, delay, elapsed))
        return delay

    def call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)``, retried as this policy says."""
        start = self.clock()
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                delay = self._next_delay(exc, attempt, start)
                if delay is None:
                    raise
            self.sleep(delay)
            attempt += 1

    async def acall(
        self, fn: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """``await fn(*args, **kwargs)``, retried as this policy says (waits with ``asleep``)."""
        start = self.clock()
        attempt = 1
        while True:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                delay = self._next_delay(exc, attempt, start)
                if delay is None:
                    raise
            await self.asleep(delay)
            attempt += 1

    def __call__(self, fn: Callable[_P, _T]) -> Callable[_P, _T]:
        """Use the policy as a decorator (of plain or ``async`` functions)."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(fn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            return self.call(fn, *args, **kwargs)

        return wrapper


#: Generic transient errors, a few quick attempts.
DEFAULT = RetryPolicy()
#: Remote services: more attempts, longer waits, a minute in all.
NETWORK = RetryPolicy(name="network", max_attempts=5, base_delay=0.2, max_delay=10.0, budget_s=60.0)
#: Local databases (SQLite): short waits while a lock is held.
DATABASE = RetryPolicy(
    name="database",
    max_attempts=6,
    base_delay=0.01,
    max_delay=1.0,
    budget_s=10.0,
    classifier=database_transient,
)
#: Device I/O: three quick attempts (EIO included), so a dead disk is failed out fast.
STORAGE = RetryPolicy(
    name="storage",
    max_attempts=3,
    base_delay=0.005,
    max_delay=0.2,
    budget_s=2.0,
    classifier=storage_transient,
)
#: The presets by name.
PRESETS: dict[str, RetryPolicy] = {p.name: p for p in (DEFAULT, NETWORK, DATABASE, STORAGE)}


@overload
def retry(fn: Callable[_P, _T], /, *, policy: RetryPolicy = ...) -> Callable[_P, _T]: ...
@overload
def retry(
    fn: None = None, /, *, policy: RetryPolicy = ...
) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]: ...
def retry(
    fn: Callable[_P, _T] | None = None, /, *, policy: RetryPolicy = DEFAULT
) -> Callable[_P, _T] | Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Decorator: ``@retry`` (the :data:`DEFAULT` policy) or ``@retry(policy=NETWORK)``."""
    if fn is None:
        return policy
    return policy(fn)


def retry_call(
    fn: Callable[..., _T], *args: Any, policy: RetryPolicy = DEFAULT, **kwargs: Any
) -> _T:
    """Call ``fn(*args, **kwargs)`` under ``policy``."""
    return policy.call(fn, *args, **kwargs)


async def aretry(
    fn: Callable[..., Awaitable[_T]], *args: Any, policy: RetryPolicy = DEFAULT, **kwargs: Any
) -> _T:
    """Await ``fn(*args, **kwargs)`` under ``policy``."""
    return await policy.acall(fn, *args, **kwargs)
