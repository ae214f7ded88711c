"""A device wrapper that retries transient I/O errors and fails a dead device fast.

:class:`ResilientDevice` passes every request to an inner device through a
:class:`~dwcore.resilience.RetryPolicy` (default
:data:`~dwcore.resilience.STORAGE`: three quick attempts, ``EIO`` included)
and a :class:`~dwcore.resilience.CircuitBreaker`:

* a flaky device (an error, then success) is retried and the caller never
  sees the error — except a failed sync, which is never retried (a second
  fsync can succeed after the first dropped the pages it could not write);
* a request that still fails after its retries raises the device's own
  :class:`~dwcore.devices.errors.DeviceIOError` and counts as one failure in
  the breaker's window;
* once the failure rate opens the breaker, ``on_dead(device, reason)`` is
  called once (the pool fails the device out there) and every request fails
  at once with :class:`~dwcore.devices.errors.DeviceDeadError` without
  touching the device — no request waits out retries on a dead disk.  After
  ``open_s`` one probe request is let through; if it succeeds the device is
  used again.

Errors the caller caused (bounds, closed device) are neither retried nor
counted.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import TypeVar

from dwcore.devices.base import Device
from dwcore.devices.errors import DeviceDeadError, DeviceIOError
from dwcore.errors import CircuitOpenError
from dwcore.resilience.breaker import BreakerState, CircuitBreaker
from dwcore.resilience.retry import STORAGE, RetryPolicy

__all__ = ["DeadCallback", "ResilientDevice", "device_breaker"]

_T = TypeVar("_T")
#: ``on_dead(device, reason)``: called once when the device's breaker first opens.
DeadCallback = Callable[["ResilientDevice", str], None]


def _is_device_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and not isinstance(exc, DeviceDeadError)


def device_breaker(
    name: str,
    *,
    window: int = 10,
    min_calls: int = 3,
    failure_rate: float = 0.5,
    open_s: float = 60.0,
    clock: Callable[[], float] | None = None,
) -> CircuitBreaker:
    """The breaker :class:`ResilientDevice` uses by default: it opens when half of the
    last 10 requests (at least 3) failed after their retries, and probes after a minute.
    """
    kwargs = {} if clock is None else {"clock": clock}
    return CircuitBreaker(
        name,
        window=window,
        min_calls=min_calls,
        failure_rate=failure_rate,
        open_s=open_s,
        half_open_probes=1,
        is_failure=_is_device_failure,
        **kwargs,
    )


class ResilientDevice(Device):
    """Wraps ``inner`` with retries and a circuit breaker; see the module documentation.

    ``policy`` and ``breaker`` default to :data:`~dwcore.resilience.STORAGE`
    and :func:`device_breaker`; ``close_inner`` closes the inner device with
    this one.  The path is the inner device's, so errors name the real device.
    """

    def __init__(
        self,
        inner: Device,
        *,
        policy: RetryPolicy = STORAGE,
        breaker: CircuitBreaker | None = None,
        on_dead: DeadCallback | None = None,
        close_inner: bool = True,
    ) -> None:
        super().__init__(inner.path, inner.size)
        self.inner = inner
        self.policy = policy
        self.breaker = breaker if breaker is not None else device_breaker(f"device {inner.path}")
        self.close_inner = close_inner
        self._on_dead = on_dead
        self._dead_lock = threading.Lock()
        self._dead_reason: str | None = None
        self.breaker.add_listener(self._state_changed)

    def describe(self) -> str:
        return f"ResilientDevice({self.inner.describe()})"

    @property
    def dead(self) -> bool:
        """True once the breaker has opened (even if it later let the device back)."""
        return self._dead_reason is not None

    @property
    def dead_reason(self) -> str:
        """The error that opened the breaker first ("" while the device is not dead)."""
        return self._dead_reason or ""

    def _state_changed(self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        if new is not BreakerState.OPEN:
            return
        with self._dead_lock:
            if self._dead_reason is not None:
                return
            self._dead_reason = breaker.last_failure or "unknown error"
        if self._on_dead is not None:
            try:
                self._on_dead(self, self._dead_reason)
            except Exception as exc:  # the I/O error in flight must reach the caller
                warnings.warn(
                    f"{self._path}: on_dead callback raised {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _io(self, what: str, fn: Callable[..., _T], *args: object, retry: bool = True) -> _T:
        try:
            self.breaker.allow()
        except CircuitOpenError as exc:
            raise DeviceDeadError(
                f"{self._path}: {what} refused: the device failed persistently and is "
                f"considered dead (next probe in {exc.retry_after:.1f} s); last error: "
                f"{self.breaker.last_failure or 'unknown'}",
                self._path,
                reason=self.breaker.last_failure,
            ) from exc
        try:
            result = self.policy.call(fn, *args) if retry else fn(*args)
        except Exception as exc:
            if _is_device_failure(exc):
                self.breaker.record_failure(exc)
            else:
                self.breaker.record_ignored()
            raise
        self.breaker.record_success()
        return result

    # The range was checked and the request entered on this device already.  An inner
    # device this one owns (``close_inner``) is closed only through this one, after its
    # requests drain, so they go straight to its primitives (no second round of checks:
    # about 2.5 us a request); one owned elsewhere gets its public, checked methods.

    def _read(self, offset: int, length: int) -> bytes:
        inner = self.inner
        return self._io("read", inner._read if self.close_inner else inner.pread, offset, length)

    def _read_into(self, offset: int, view: memoryview) -> None:
        inner = self.inner
        self._io("read", inner._read_into if self.close_inner else inner.preadinto, offset, view)

    def _write(self, offset: int, view: memoryview) -> None:
        inner = self.inner
        self._io("write", inner._write if self.close_inner else inner.pwrite, offset, view)

    def _writev(self, offset: int, views: list[memoryview]) -> None:
        inner = self.inner
        self._io("write", inner._writev if self.close_inner else inner.pwritev, offset, views)

    @property
    def in_memory(self) -> bool:
        return self.inner.in_memory

    def _raw_fd(self, write: bool) -> int | None:
        # only an owned inner device, and only while the breaker is closed: a failing
        # device must see its requests go through the retries and the breaker
        if not self.close_inner or not self.breaker.closed:
            return None
        return self.inner._raw_fd(write)

    def leave_raw_sync(self, error: int) -> DeviceIOError | None:
        exc = super().leave_raw_sync(error)
        if exc is None:
            self.breaker.record_success()
        else:
            self.breaker.record_failure(exc)
        return exc

    def _writev_batch(self, batch: list[tuple[int, list[memoryview]]]) -> None:
        inner = self.inner
        if self.close_inner:
            self._io("write", inner._writev_batch, batch)
        else:
            self._io("write", inner.pwritev_batch, batch)

    def _readv_into(self, offset: int, views: list[memoryview]) -> None:
        inner = self.inner
        fn = inner._readv_into if self.close_inner else inner.preadvinto
        self._io("read", fn, offset, views)

    def _sync(self) -> None:
        # Never retried: a failed fsync may have dropped the dirty pages it could not
        # write, and a second one would then succeed without them ("fsyncgate").  The
        # error reaches the caller, which must treat the unsynced writes as lost.
        self._io("sync", self.inner.sync, retry=False)

    def _close(self) -> None:
        if self.close_inner:
            self.inner.close()
