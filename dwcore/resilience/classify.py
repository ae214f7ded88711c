"""Which errors are worth retrying: the transient-error classifier.

:func:`is_transient` says yes to errors that a later attempt may not meet:

* :class:`TimeoutError`, :class:`ConnectionError` (resets, refusals, broken
  pipes) and ``OSError`` with ``errno`` ``EAGAIN``, ``EINTR``, ``EBUSY`` or
  ``ETIMEDOUT``;
* HTTP responses (any object with an int ``status`` or ``status_code``
  attribute, or an exception carrying one in ``response``) with status 429,
  408 or 5xx other than 501 (not implemented) and 505 (version unsupported);
* whatever plugins declare through :data:`TRANSIENT` (exception types, or
  predicates for errors that carry their meaning in a field).

Errors a caller caused (:class:`~dwcore.errors.DWError` that is not an
``OSError``: bad arguments, closed devices) are never transient, whatever a
registered predicate says.  Presets narrow or widen this:
:func:`storage_transient` also retries ``EIO`` (a read of a flaky sector may
succeed the second time; a dead disk keeps failing and trips its breaker),
:func:`database_transient` also retries SQLite's "database is locked/busy".
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from collections.abc import Callable

from dwcore.errors import DWError, InvalidArgumentError

__all__ = [
    "TRANSIENT",
    "TRANSIENT_ERRNOS",
    "TransientRegistry",
    "database_transient",
    "http_status",
    "is_transient",
    "storage_transient",
]

#: ``OSError`` errno values that describe a momentary condition.
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT})
_HTTP_PERMANENT_5XX = frozenset({501, 505})

Predicate = Callable[[BaseException], bool]


class TransientRegistry:
    """Exception types and predicates declared transient (by plugins); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: tuple[type[BaseException], ...] = ()
        self._predicates: tuple[Predicate, ...] = ()

    def register_type(self, exc_type: type[BaseException]) -> None:
        """Treat every instance of ``exc_type`` (and its subclasses) as transient."""
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise InvalidArgumentError(f"exc_type must be an exception class, got {exc_type!r}")
        with self._lock:
            if exc_type not in self._types:
                self._types = (*self._types, exc_type)

    def register_predicate(self, predicate: Predicate) -> None:
        """Treat an error as transient when ``predicate(error)`` is true."""
        if not callable(predicate):
            raise InvalidArgumentError(f"predicate must be callable, got {predicate!r}")
        with self._lock:
            self._predicates = (*self._predicates, predicate)

    def unregister(self, item: type[BaseException] | Predicate) -> None:
        """Forget a type or predicate registered before (unknown ones are ignored)."""
        with self._lock:
            self._types = tuple(t for t in self._types if t is not item)
            self._predicates = tuple(p for p in self._predicates if p is not item)

    def matches(self, exc: BaseException) -> bool:
        """True if a registered type or predicate claims ``exc``.

        A predicate that raises claims nothing (a broken plugin cannot turn
        every error into a retry loop).
        """
        types, predicates = self._types, self._predicates
        if types and isinstance(exc, types):
            return True
        for predicate in predicates:
            try:
                if predicate(exc):
                    return True
            except Exception:  # a broken predicate must not break error handling
                continue
        return False


#: The process-wide registry that :func:`is_transient` consults.
TRANSIENT = TransientRegistry()


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an error carries (``status``, ``status_code``, or on ``response``)."""
    for obj in (exc, getattr(exc, "response", None)):
        if obj is None:
            continue
        for attr in ("status_code", "status"):
            value = getattr(obj, attr, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _caller_error(exc: BaseException) -> bool:
    return isinstance(exc, DWError) and not isinstance(exc, OSError)


def is_transient(exc: BaseException, registry: TransientRegistry | None = None) -> bool:
    """True if retrying the operation that raised ``exc`` may succeed."""
    if _caller_error(exc):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return True
    status = http_status(exc)
    if status is not None and (
        status in (408, 429) or (status >= 500 and status not in _HTTP_PERMANENT_5XX)
    ):
        return True
    return (registry if registry is not None else TRANSIENT).matches(exc)


def storage_transient(exc: BaseException) -> bool:
    """:func:`is_transient`, plus ``EIO``: device errors get a few more attempts."""
    if isinstance(exc, OSError) and exc.errno == errno.EIO and not _caller_error(exc):
        return True
    return is_transient(exc)


def database_transient(exc: BaseException) -> bool:
    """:func:`is_transient`, plus SQLite's "database is locked" and "database is busy"."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    return is_transient(exc)
