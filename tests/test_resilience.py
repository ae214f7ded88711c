"""Retry policies, the transient-error classifier and the circuit breaker, on a fake clock."""

from __future__ import annotations

import asyncio
import errno
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from dwcore.devices import DeviceBoundsError, DeviceDeadError, DeviceIOError
from dwcore.errors import CircuitOpenError, InvalidArgumentError
from dwcore.resilience import (
    DATABASE,
    DEFAULT,
    NETWORK,
    PRESETS,
    STORAGE,
    TRANSIENT,
    BreakerState,
    CircuitBreaker,
    RetryEvent,
    RetryPolicy,
    aretry,
    database_transient,
    http_status,
    is_transient,
    retry,
    retry_call,
    storage_transient,
)


@dataclass
class FakeClock:
    """A clock that only moves when something sleeps on it."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def policy(clock: FakeClock, base: RetryPolicy = DEFAULT, **changes: Any) -> RetryPolicy:
    return base.replace(clock=clock, sleep=clock.sleep, asleep=clock.asleep, **changes)


def failing(errors: list[BaseException], result: str = "done") -> Callable[[], str]:
    """Raises each error of ``errors`` in turn, then returns ``result``."""
    pending = list(errors)

    def fn() -> str:
        if pending:
            raise pending.pop(0)
        return result

    return fn


class Http(Exception):
    def __init__(self, status: int, attr: str = "status_code") -> None:
        super().__init__(f"HTTP {status}")
        setattr(self, attr, status)


class Response:
    def __init__(self, status: int) -> None:
        self.status = status


class WithResponse(Exception):
    def __init__(self, status: int) -> None:
        super().__init__("request failed")
        self.response = Response(status)


# ---------------------------------------------------------------------------
# classifier
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (ConnectionRefusedError(), True),
        (BrokenPipeError(), True),
        (OSError(errno.EAGAIN, "again"), True),
        (OSError(errno.EINTR, "interrupted"), True),
        (OSError(errno.EBUSY, "busy"), True),
        (OSError(errno.ETIMEDOUT, "timed out"), True),
        (OSError(errno.EIO, "i/o"), False),
        (OSError(errno.ENOSPC, "full"), False),
        (FileNotFoundError(), False),
        (Http(429), True),
        (Http(503, "status"), True),
        (Http(500), True),
        (Http(408), True),
        (Http(501), False),
        (Http(505), False),
        (Http(404), False),
        (Http(400), False),
        (WithResponse(502), True),
        (WithResponse(403), False),
        (ValueError("bad"), False),
        (InvalidArgumentError("bad argument"), False),
        (DeviceBoundsError("outside", "d"), False),
        (DeviceIOError("transient busy", "d", errno=errno.EBUSY), True),
        (CircuitOpenError("open"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_http_status_ignores_non_status_values() -> None:
    bogus = Http(0)
    bogus.status_code = "503"  # type: ignore[attr-defined]
    assert http_status(bogus) is None
    flag = Exception()
    flag.status = True  # type: ignore[attr-defined]
    assert http_status(flag) is None
    assert http_status(WithResponse(429)) == 429


def test_storage_and_database_presets_widen_the_classifier() -> None:
    eio = DeviceIOError("injected", "d")
    assert not is_transient(eio)
    assert storage_transient(eio)
    assert not storage_transient(DeviceDeadError("dead", "d"))
    assert not storage_transient(DeviceBoundsError("outside", "d"))
    assert database_transient(sqlite3.OperationalError("database is locked"))
    assert database_transient(sqlite3.OperationalError("database is busy"))
    assert not database_transient(sqlite3.OperationalError("no such table: x"))
    assert database_transient(TimeoutError())


def test_plugins_register_transient_types_and_predicates() -> None:
    class Throttled(Exception):
        pass

    class Coded(Exception):
        def __init__(self, code: str) -> None:
            super().__init__(code)
            self.code = code

    def slow_down(exc: BaseException) -> bool:
        return getattr(exc, "code", "") == "SlowDown"

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    assert not is_transient(Throttled())
    TRANSIENT.register_type(Throttled)
    TRANSIENT.register_predicate(broken)
    TRANSIENT.register_predicate(slow_down)
    try:
        assert is_transient(Throttled())
        assert is_transient(Coded("SlowDown"))
        assert not is_transient(Coded("AccessDenied"))
        assert not is_transient(InvalidArgumentError("never, whatever plugins say"))
    finally:
        for item in (Throttled, broken, slow_down):
            TRANSIENT.unregister(item)
    assert not is_transient(Throttled())
    with pytest.raises(InvalidArgumentError, match="exc_type must be an exception class"):
        TRANSIENT.register_type(int)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="predicate must be callable"):
        TRANSIENT.register_predicate("yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# retry
# ---------------------------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter() -> None:
    p = DEFAULT.replace(base_delay=0.1, max_delay=1.0, multiplier=2.0, random=lambda: 1.0)
    assert [p.backoff_cap(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert [p.backoff(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert p.replace(random=lambda: 0.0).backoff(3) == 0.0
    assert p.replace(random=lambda: 0.25).backoff(3) == pytest.approx(0.1)
    assert p.backoff_cap(10**6) == 1.0  # no overflow


def test_retries_transient_errors_until_success() -> None:
    clock = FakeClock()
    events: list[RetryEvent] = []
    p = policy(clock, max_attempts=4, base_delay=0.1, random=lambda: 0.5, on_retry=events.append)
    fn = failing([TimeoutError("t1"), ConnectionResetError("r2")])
    assert p.call(fn) == "done"
    assert clock.sleeps == [0.05, 0.1]
    assert [(e.attempt, type(e.error).__name__, e.delay) for e in events] == [
        (1, "TimeoutError", 0.05),
        (2, "ConnectionResetError", 0.1),
    ]
    assert events[1].elapsed == 0.05


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    clock = FakeClock()
    p = policy(clock, max_attempts=3)
    errors: list[BaseException] = [TimeoutError("1"), TimeoutError("2"), TimeoutError("3")]
    with pytest.raises(TimeoutError, match="3"):
        p.call(failing([*errors, TimeoutError("4")]))
    assert len(clock.sleeps) == 2


def test_permanent_errors_are_not_retried() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="bad"):
        policy(clock).call(failing([ValueError("bad")]))
    assert clock.sleeps == []


def test_time_budget_stops_retries_before_the_wait_would_overrun() -> None:
    clock = FakeClock()
    p = policy(clock, max_attempts=100, base_delay=1.0, max_delay=1.0, budget_s=3.5)
    p = p.replace(random=lambda: 1.0)
    calls = []

    def slow_failure() -> None:
        calls.append(clock.now)
        clock.now += 0.5  # each attempt takes 0.5 s
        raise TimeoutError("slow")

    with pytest.raises(TimeoutError):
        p.call(slow_failure)
    # attempts at 0, 1.5 and 3.0; the third ends at 3.5 and another wait would end at 4.5
    assert calls == [0.0, 1.5, 3.0]
    assert clock.now == 3.5


def test_decorator_and_retry_call_and_presets() -> None:
    clock = FakeClock()
    p = policy(clock, NETWORK)
    fn = failing([Http(503), Http(429)], "body")

    @retry(policy=p)
    def fetch(x: int) -> str:
        return f"{fn()}-{x}"

    assert fetch(7) == "body-7"
    assert fetch.__name__ == "fetch"
    assert len(clock.sleeps) == 2

    @retry
    def plain() -> int:
        return 1

    assert plain() == 1
    assert retry_call(lambda a, b: a + b, 2, 3, policy=p) == 5
    assert set(PRESETS) == {"default", "network", "database", "storage"}
    assert STORAGE.classifier is storage_transient and DATABASE.classifier is database_transient
    assert NETWORK.max_attempts > STORAGE.max_attempts
    assert STORAGE.budget_s is not None and NETWORK.budget_s is not None
    assert STORAGE.budget_s < NETWORK.budget_s


def test_async_retry() -> None:
    clock = FakeClock()
    p = policy(clock, NETWORK, random=lambda: 1.0)
    attempts = []

    async def call() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionResetError("reset")
        return "ok"

    assert asyncio.run(aretry(call, policy=p)) == "ok"
    assert clock.sleeps == [0.2, 0.4]

    @p
    async def decorated() -> str:
        raise ValueError("permanent")

    with pytest.raises(ValueError, match="permanent"):
        asyncio.run(decorated())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be an int in 1..1000"),
        ({"max_attempts": True}, "max_attempts must be an int"),
        ({"max_attempts": 10**9}, "max_attempts must be an int in 1..1000"),
        ({"base_delay": -1.0}, "base_delay must be a finite number"),
        ({"base_delay": math.nan}, "base_delay must be a number"),
        ({"max_delay": math.inf}, "max_delay must be a finite number"),
        ({"base_delay": 5.0, "max_delay": 1.0}, "base_delay (5.0) must not exceed max_delay"),
        ({"multiplier": 0.5}, "multiplier must be a finite number in [1.0, 100.0]"),
        ({"budget_s": 0.0}, "budget_s must be positive or None"),
        ({"budget_s": "10"}, "budget_s must be a number"),
        ({"classifier": None}, "classifier must be callable"),
    ],
)
def test_policy_rejects_bad_settings(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        DEFAULT.replace(**changes)
    assert message in str(info.value)


# ---------------------------------------------------------------------------
# circuit breaker
# ---------------------------------------------------------------------------


def boom() -> None:
    raise OSError(errno.EIO, "boom")


def test_breaker_opens_on_failure_rate_and_fails_fast() -> None:
    clock = FakeClock()
    cb = CircuitBreaker("disk", window=4, min_calls=4, failure_rate=0.5, open_s=10, clock=clock)
    changes: list[tuple[str, str]] = []
    cb.add_listener(lambda b, old, new: changes.append((old.value, new.value)))
    assert cb.call(lambda: 1) == 1
    with pytest.raises(OSError):
        cb.call(boom)
    assert cb.call(lambda: 2) == 2
    assert cb.state is BreakerState.CLOSED  # 1 of 3: below min_calls anyway
    with pytest.raises(OSError):
        cb.call(boom)  # window: ok, fail, ok, fail -> 50 %
    assert cb.state is BreakerState.OPEN
    ran = []
    with pytest.raises(CircuitOpenError) as info:
        cb.call(lambda: ran.append(1))
    assert ran == []
    assert info.value.name == "disk" and info.value.retry_after == 10
    assert "circuit 'disk' is open" in str(info.value) and "OSError" in str(info.value)
    snap = cb.snapshot()
    assert snap == {
        "name": "disk",
        "state": "open",
        "window_calls": 4,
        "window_failures": 2,
        "failure_rate": 0.5,
        "calls": 4,
        "successes": 2,
        "failures": 2,
        "rejected": 1,
        "opened": 1,
        "retry_after_s": 10.0,
        "last_failure": "OSError: [Errno 5] boom",
    }
    assert changes == [("closed", "open")]


def test_half_open_probe_success_closes_and_failure_reopens() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(
        "svc", window=2, min_calls=2, failure_rate=1.0, open_s=5, half_open_probes=2, clock=clock
    )
    for _ in range(2):
        with pytest.raises(OSError):
            cb.call(boom)
    assert cb.state is BreakerState.OPEN
    clock.now = 4.9
    assert cb.retry_after() == pytest.approx(0.1)
    with pytest.raises(CircuitOpenError):
        cb.call(lambda: None)
    clock.now = 5.0
    assert cb.state is BreakerState.HALF_OPEN
    cb.allow()  # first probe in flight
    cb.allow()  # second probe in flight
    with pytest.raises(CircuitOpenError, match="half-open with its probes in flight"):
        cb.allow()
    cb.record_success()
    assert cb.state is BreakerState.HALF_OPEN
    cb.record_failure(OSError("probe failed"))
    assert cb.state is BreakerState.OPEN
    assert cb.snapshot()["opened"] == 2
    clock.now = 10.0
    assert cb.call(lambda: "a") == "a"
    assert cb.call(lambda: "b") == "b"
    assert cb.state is BreakerState.CLOSED
    assert cb.snapshot()["window_calls"] == 0  # a fresh window after closing


def test_errors_that_are_not_failures_do_not_count() -> None:
    clock = FakeClock()
    cb = CircuitBreaker(
        "x",
        window=2,
        min_calls=1,
        failure_rate=1.0,
        open_s=1,
        is_failure=lambda e: isinstance(e, OSError),
        clock=clock,
    )
    for _ in range(5):
        with pytest.raises(ValueError):
            cb.call(failing([ValueError("caller error")]))
    assert cb.state is BreakerState.CLOSED
    assert cb.snapshot()["failures"] == 0
    with pytest.raises(OSError):
        cb.call(boom)
    assert cb.state is BreakerState.OPEN
    clock.now = 1.0
    with pytest.raises(ValueError):  # an ignored probe frees its slot
        cb.call(failing([ValueError("caller error")]))
    assert cb.call(lambda: 3) == 3
    assert cb.state is BreakerState.CLOSED


def test_breaker_reset_and_decorator() -> None:
    cb = CircuitBreaker("d", window=1, min_calls=1, failure_rate=1.0, clock=FakeClock())

    @cb
    def op(fail: bool) -> str:
        if fail:
            raise OSError("no")
        return "yes"

    with pytest.raises(OSError):
        op(True)
    with pytest.raises(CircuitOpenError):
        op(False)
    cb.reset()
    assert op(False) == "yes"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "window must be an int in 1..100000"),
        ({"window": 5, "min_calls": 6}, "min_calls must be an int in 1..5"),
        ({"failure_rate": 1.5}, "failure_rate must be a number in [0.0, 1.0]"),
        ({"failure_rate": math.nan}, "failure_rate must be a number"),
        ({"failure_rate": 0.0}, "failure_rate must be above 0"),
        ({"open_s": -1}, "open_s must be a number"),
        ({"half_open_probes": 0}, "half_open_probes must be an int"),
    ],
)
def test_breaker_rejects_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        CircuitBreaker("b", **kwargs)
    assert message in str(info.value)
