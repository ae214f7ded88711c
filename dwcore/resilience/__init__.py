"""Resilience: retries with backoff and jitter, circuit breakers, a transient-error classifier.

* :class:`RetryPolicy` — exponential backoff with full jitter, attempt and
  time budgets, injectable clock/sleep/random; presets :data:`NETWORK`,
  :data:`DATABASE`, :data:`STORAGE`; :func:`retry` (decorator),
  :func:`retry_call` and :func:`aretry` (async).
* :func:`is_transient` — timeouts, connection resets, ``EAGAIN``/``EINTR``/
  ``EBUSY``/``ETIMEDOUT``, HTTP 408/429/5xx, and what plugins register in
  :data:`TRANSIENT`.
* :class:`CircuitBreaker` — closed / open / half-open over a failure-rate
  window; :meth:`~CircuitBreaker.snapshot` for metrics.

Device I/O uses both through :class:`dwcore.devices.resilient.ResilientDevice`.

>>> calls = []
>>> def flaky():
...     calls.append(1)
...     if len(calls) < 3:
...         raise TimeoutError("slow peer")
...     return "ok"
>>> NETWORK.replace(sleep=lambda s: None).call(flaky), len(calls)
('ok', 3)
"""

from __future__ import annotations

from dwcore.errors import CircuitOpenError
from dwcore.resilience.breaker import BreakerState, CircuitBreaker
from dwcore.resilience.classify import (
    TRANSIENT,
    TRANSIENT_ERRNOS,
    TransientRegistry,
    database_transient,
    http_status,
    is_transient,
    storage_transient,
)
from dwcore.resilience.retry import (
    DATABASE,
    DEFAULT,
    NETWORK,
    PRESETS,
    STORAGE,
    RetryEvent,
    RetryPolicy,
    aretry,
    retry,
    retry_call,
)

__all__ = [
    "DATABASE",
    "DEFAULT",
    "NETWORK",
    "PRESETS",
    "STORAGE",
    "TRANSIENT",
    "TRANSIENT_ERRNOS",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "RetryEvent",
    "RetryPolicy",
    "TransientRegistry",
    "aretry",
    "database_transient",
    "http_status",
    "is_transient",
    "retry",
    "retry_call",
    "storage_transient",
]
