"""ResilientDevice: flaky devices are retried, dead ones trip the breaker once; fake clock."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import pytest

from dwcore.devices import (
    MIN_DEVICE_SIZE,
    DeviceBoundsError,
    DeviceClosedError,
    DeviceDeadError,
    DeviceIOError,
    FaultyDevice,
    RamDevice,
    ResilientDevice,
)
from dwcore.devices.resilient import device_breaker
from dwcore.pool import Pool
from dwcore.resilience import STORAGE, BreakerState, RetryPolicy

SIZE = 1 << 20


@dataclass
class FakeClock:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: list[object] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for action in self.on_sleep:
            action()  # type: ignore[operator]


@dataclass
class Rig:
    clock: FakeClock
    faulty: FaultyDevice
    dev: ResilientDevice
    dead: list[tuple[ResilientDevice, str]]


def rig(open_s: float = 60.0) -> Rig:
    clock = FakeClock()
    faulty = FaultyDevice(RamDevice(SIZE))
    policy: RetryPolicy = STORAGE.replace(clock=clock, sleep=clock.sleep)
    dead: list[tuple[ResilientDevice, str]] = []
    dev = ResilientDevice(
        faulty,
        policy=policy,
        breaker=device_breaker("test", open_s=open_s, clock=clock),
        on_dead=lambda d, reason: dead.append((d, reason)),
    )
    return Rig(clock, faulty, dev, dead)


def test_flaky_reads_writes_and_syncs_are_retried_transparently() -> None:
    r = rig()
    r.clock.on_sleep.append(r.faulty.heal)  # the fault is gone by the next attempt
    r.faulty.fail_now("write")
    assert r.dev.pwrite(100, b"hello") == 5
    assert r.faulty.stats.writes == 2
    r.faulty.fail_now("read")
    assert r.dev.pread(100, 5) == b"hello"
    r.faulty.fail_now("read")
    buf = bytearray(5)
    assert r.dev.preadinto(100, buf) == 5 and buf == b"hello"
    r.faulty.fail_now("write")
    assert r.dev.pwritev(200, [b"ab", b"", b"cde"]) == 5  # one request, retried whole
    r.faulty.fail_now("read")
    parts = [bytearray(1), bytearray(4)]
    assert r.dev.preadvinto(200, parts) == 5 and parts == [b"a", b"bcde"]
    assert len(r.clock.sleeps) == 5
    assert all(0 <= s <= STORAGE.max_delay for s in r.clock.sleeps)
    snap = r.dev.breaker.snapshot()
    assert snap["failures"] == 0 and snap["successes"] == 5 and snap["state"] == "closed"
    assert not r.dead and not r.dev.dead


def test_a_failed_sync_is_never_retried() -> None:
    # fsyncgate: after a failed fsync the kernel may drop the pages it could not write,
    # so a retry that succeeds would report writes durable that are gone
    r = rig()
    r.clock.on_sleep.append(r.faulty.heal)  # a retry would succeed
    r.dev.pwrite(0, b"data")
    syncs = r.faulty.stats.syncs
    r.faulty.fail_now("write")
    with pytest.raises(DeviceIOError, match="injected"):
        r.dev.sync()
    assert r.faulty.stats.syncs == syncs + 1 and r.clock.sleeps == []
    snap = r.dev.breaker.snapshot()
    assert snap["failures"] == 1 and snap["state"] == "closed"


def test_dead_device_trips_the_breaker_and_on_dead_fires_exactly_once() -> None:
    r = rig(open_s=30.0)
    r.faulty.fail_now("any")
    for _ in range(3):  # each request: 3 attempts, then the device's own error
        with pytest.raises(DeviceIOError) as info:
            r.dev.pread(0, 10)
        assert not isinstance(info.value, DeviceDeadError)
    assert r.faulty.stats.reads == 9
    assert r.dev.breaker.state is BreakerState.OPEN
    assert len(r.dead) == 1
    assert r.dead[0][0] is r.dev
    assert "injected I/O error on read" in r.dead[0][1]
    assert r.dev.dead and "injected" in r.dev.dead_reason
    # fail fast: no attempt reaches the device, no retry waits
    waits = len(r.clock.sleeps)
    for call in (lambda: r.dev.pread(0, 1), lambda: r.dev.pwrite(0, b"x"), r.dev.sync):
        with pytest.raises(DeviceDeadError) as dead:
            call()
        assert dead.value.device == r.dev.path
        assert "considered dead" in str(dead.value) and "injected" in dead.value.reason
    assert r.faulty.stats.reads == 9 and r.faulty.stats.writes == 0
    assert len(r.clock.sleeps) == waits
    # after open_s one probe goes through; it fails, the breaker reopens, no second callback
    r.clock.now += 30.5  # past open_s (an exact 30.0 may round below it in floats)
    with pytest.raises(DeviceIOError):
        r.dev.pread(0, 1)
    assert r.faulty.stats.reads == 12
    assert r.dev.breaker.state is BreakerState.OPEN
    assert len(r.dead) == 1
    # repaired: the next probe succeeds and the device is used again
    r.faulty.heal()
    r.clock.now += 30.5  # past open_s (an exact 30.0 may round below it in floats)
    assert r.dev.pread(0, 2) == b"\0\0"
    assert r.dev.breaker.state is BreakerState.CLOSED
    assert len(r.dead) == 1


def test_caller_errors_are_neither_retried_nor_counted() -> None:
    r = rig()
    with pytest.raises(DeviceBoundsError):
        r.dev.pread(SIZE - 1, 2)
    r.faulty.close()
    for _ in range(5):
        with pytest.raises(DeviceClosedError):
            r.dev.pread(0, 1)
    assert r.clock.sleeps == []
    assert r.dev.breaker.state is BreakerState.CLOSED
    assert r.dev.breaker.snapshot()["failures"] == 0


def test_a_raising_on_dead_callback_does_not_hide_the_io_error() -> None:
    clock = FakeClock()

    def explode(dev: ResilientDevice, reason: str) -> None:
        raise RuntimeError("callback bug")

    faulty = FaultyDevice(RamDevice(SIZE))
    dev = ResilientDevice(
        faulty,
        policy=STORAGE.replace(clock=clock, sleep=clock.sleep, max_attempts=1),
        breaker=device_breaker("t", min_calls=1, clock=clock),
        on_dead=explode,
    )
    faulty.fail_now("read")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(DeviceIOError, match="injected"):
            dev.pread(0, 1)
    assert any("on_dead callback raised RuntimeError" in str(w.message) for w in seen)
    assert dev.dead


def test_close_and_describe() -> None:
    inner = RamDevice(SIZE, name="r")
    dev = ResilientDevice(inner)
    assert dev.path == "ram:r" and dev.size == SIZE
    assert dev.describe().startswith("ResilientDevice(RamDevice(ram:r")
    dev.close()
    assert inner.closed
    inner2 = RamDevice(SIZE)
    ResilientDevice(inner2, close_inner=False).close()
    assert not inner2.closed
    inner2.close()


def test_a_pool_over_resilient_devices_rides_out_a_flaky_member(tmp_path: object) -> None:
    clock = FakeClock()
    policy = STORAGE.replace(clock=clock, sleep=clock.sleep)
    faulty = [FaultyDevice(RamDevice(MIN_DEVICE_SIZE * 2)) for _ in range(3)]
    devs = [ResilientDevice(f, policy=policy) for f in faulty]
    root = os.path.join(str(tmp_path), "pool")
    with Pool.create(root, "5", devs, device_size=MIN_DEVICE_SIZE * 2, chunk_size=4096) as pool:
        data = os.urandom(20_000)
        clock.on_sleep.append(faulty[1].heal)
        faulty[1].fail_now("any")
        ext = pool.write(data)
        faulty[1].fail_now("read")
        assert pool.read(ext) == data
        assert not pool.status().degraded
        assert clock.sleeps  # the errors were retried, not passed to the pool
    for dev in devs:
        dev.close()
