"""Memory pressure: levels, cgroup limits, cache shrinking, admission, the monitor.

Every reading is injected; waits go through injected clocks and wait hooks.
"""

from __future__ import annotations

import gc
import math
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dwcore.ec import ReedSolomon, _matrix
from dwcore.errors import InvalidArgumentError, MemoryPressureError
from dwcore.memory import (
    ADMISSION,
    CACHES,
    KEEP_FRACTION,
    Admission,
    CacheRegistry,
    Level,
    MemoryMonitor,
    MemoryReading,
    MemoryStatus,
    Thresholds,
    admit,
    cgroup_limit,
    read_memory,
)

GiB = 1 << 30


class Readings:
    """Returns the given ratios of a 1000-byte limit, one per call."""

    def __init__(self, *ratios: float) -> None:
        self.ratios = list(ratios)
        self.calls = 0

    def __call__(self) -> MemoryReading:
        ratio = self.ratios[min(self.calls, len(self.ratios) - 1)]
        self.calls += 1
        return MemoryReading(int(ratio * 1000), 1000, "test")


class Recorder:
    """A cache that records the levels it was asked to shrink for."""

    def __init__(self, freed: int = 100) -> None:
        self.levels: list[Level] = []
        self.freed = freed

    def shrink(self, level: Level) -> int:
        self.levels.append(level)
        return self.freed


# ---------------------------------------------------------------------------
# levels and readings
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "level"),
    [
        (0.0, Level.NORMAL),
        (0.6999, Level.NORMAL),
        (0.70, Level.ELEVATED),
        (0.85, Level.HIGH),
        (0.9499, Level.HIGH),
        (0.95, Level.CRITICAL),
        (3.0, Level.CRITICAL),
    ],
)
def test_default_thresholds(ratio: float, level: Level) -> None:
    assert Thresholds().level(ratio) is level


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"elevated": math.nan}, "elevated must be a fraction in (0, 1]"),
        ({"high": 1.5}, "high must be a fraction in (0, 1]"),
        ({"critical": 0}, "critical must be a fraction in (0, 1]"),
        ({"elevated": "70%"}, "elevated must be a fraction, got '70%'"),
        ({"elevated": True}, "elevated must be a fraction, got True"),
        ({"elevated": 0.9, "high": 0.8}, "thresholds must rise: elevated (0.9) < high (0.8)"),
    ],
)
def test_thresholds_reject_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Thresholds(**kwargs)
    assert message in str(info.value)


def test_reading_ratio() -> None:
    assert MemoryReading(50, 200, "x").ratio == 0.25
    assert MemoryReading(50, 0, "x").ratio == 1.0


def fake_cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[str, str]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc_file = tmp_path / "proc_cgroup"
    proc_file.write_text(proc)
    return str(root), str(proc_file)


def test_cgroup_v2_memory_max(tmp_path: Path) -> None:
    root, proc = fake_cgroup(
        tmp_path, "0::/user.slice/app\n", {"user.slice/app/memory.max": "536870912\n"}
    )
    limit, source = cgroup_limit(root, proc) or (0, "")
    assert limit == 512 << 20
    assert source.startswith("cgroup v2 ") and source.endswith("user.slice/app/memory.max")
    reading = read_memory(root, proc)
    assert reading.limit == 512 << 20 and reading.used > 0
    assert reading.source == source


def test_cgroup_v2_max_means_no_limit(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "0::/a\n", {"a/memory.max": "max\n"})
    assert cgroup_limit(root, proc) is None
    assert read_memory(root, proc).source == "physical memory"


def test_cgroup_v1_limit_and_root_fallback(tmp_path: Path) -> None:
    proc = "4:memory:/docker/abc\n3:cpu:/\n0::/\n"
    root, proc_file = fake_cgroup(tmp_path, proc, {"memory/memory.limit_in_bytes": "1073741824"})
    assert cgroup_limit(root, proc_file) == (GiB, f"cgroup v1 {root}/memory/memory.limit_in_bytes")
    root2, proc_file2 = fake_cgroup(
        tmp_path / "b",
        proc,
        {
            "memory/docker/abc/memory.limit_in_bytes": "2147483648",
            "memory/memory.limit_in_bytes": "9223372036854771712",
        },
    )
    assert cgroup_limit(root2, proc_file2) == (
        2 * GiB,
        f"cgroup v1 {root2}/memory/docker/abc/memory.limit_in_bytes",
    )


def test_cgroup_garbage_and_missing_files(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "0::/x\nnonsense\n", {"x/memory.max": "lots"})
    assert cgroup_limit(root, proc) is None
    assert cgroup_limit(root, str(tmp_path / "absent")) is None
    huge_root, huge_proc = fake_cgroup(tmp_path / "h", "0::/\n", {"memory.max": str(1 << 62)})
    assert read_memory(huge_root, huge_proc).source == "physical memory"  # above physical


# ---------------------------------------------------------------------------
# caches
# ---------------------------------------------------------------------------


def test_registry_shrinks_every_cache_and_drops_dead_ones() -> None:
    reg = CacheRegistry()
    a, b = Recorder(10), Recorder(20)
    reg.register("a", a.shrink)
    reg.register("b", b.shrink)
    reg.register("plain", lambda level: 5)
    assert reg.shrink(Level.HIGH) == {"a": 10, "b": 20, "plain": 5}
    assert a.levels == [Level.HIGH]
    del b
    gc.collect()
    assert reg.names() == ["a", "plain"]
    reg.register("b", Recorder().shrink)  # a dead entry's name can be taken again
    with pytest.raises(InvalidArgumentError, match="'a' is already registered"):
        reg.register("a", a.shrink)
    reg.unregister("a")
    reg.unregister("a")
    assert "a" not in reg.names()
    with pytest.raises(InvalidArgumentError, match="shrink must be callable"):
        reg.register("x", 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="cache name must be a non-empty string"):
        reg.register("", a.shrink)


def test_a_broken_cache_does_not_stop_the_others() -> None:
    reg = CacheRegistry()

    def broken(level: Level) -> int:
        raise RuntimeError("bug")

    good = Recorder(7)
    reg.register("broken", broken)
    reg.register("weird", lambda level: "lots")  # type: ignore[arg-type, return-value]
    reg.register("good", good.shrink)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert reg.shrink(Level.CRITICAL) == {"broken": 0, "weird": 0, "good": 7}
    assert any("cache 'broken' failed to shrink: RuntimeError: bug" in str(w.message) for w in seen)


def test_decode_plan_cache_is_registered_and_shrinks() -> None:
    assert "ec.decode_plans" in CACHES.names()
    rs = ReedSolomon(6, 3)
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(6, 256), dtype=np.uint8)
    shards = np.concatenate([data, rs.encode(data)])
    patterns = [(a, b) for a in range(9) for b in range(a + 1, 9)][:16]
    for pattern in patterns:
        damaged = shards.copy()
        damaged[list(pattern)] = 0
        rs.reconstruct_into(damaged, pattern)
        assert np.array_equal(damaged, shards)
    code = rs._code
    full = code.plan_bytes()
    assert full > 0 and _matrix.plan_cache_bytes() >= full
    freed = CACHES.shrink(Level.HIGH)["ec.decode_plans"]
    assert freed > 0
    assert code.plan_bytes() == pytest.approx(full * KEEP_FRACTION[Level.HIGH], rel=0.2)
    CACHES.shrink(Level.CRITICAL)
    assert code.plan_bytes() == 0
    damaged = shards.copy()
    damaged[[0, 8]] = 0
    rs.reconstruct_into(damaged, (0, 8))  # plans are rebuilt on demand
    assert np.array_equal(damaged, shards)
    with pytest.raises(InvalidArgumentError, match="keep must be a fraction"):
        code.shrink_plans(1.5)


# ---------------------------------------------------------------------------
# admission
# ---------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_admission_is_free_below_high() -> None:
    adm = Admission(high_concurrency=1, timeout_s=0)
    for level in (Level.NORMAL, Level.ELEVATED):
        adm.set_level(level)
        with adm.admit(), adm.admit(), adm.admit():
            assert adm.snapshot()["active"] == 3
    assert adm.snapshot() == {
        "level": "elevated",
        "active": 0,
        "waiting": 0,
        "admitted": 6,
        "delayed": 0,
        "refused": 0,
    }


def test_admission_throttles_at_high() -> None:
    adm = Admission(high_concurrency=2)
    adm.set_level(Level.HIGH)
    throttled = pytest.raises(MemoryPressureError, match=r"throttled to 2 at a time \(high\)")
    with adm.admit(), adm.admit(), throttled, adm.admit(timeout=0):
        pytest.fail("admitted a third unit at high pressure")
    with adm.admit(timeout=0):
        pass
    assert adm.snapshot()["refused"] == 1


def test_admission_pauses_at_critical_until_the_level_drops() -> None:
    clock = FakeTime()
    waits: list[float] = []
    adm: Admission

    def wait(cond: threading.Condition, seconds: float) -> None:
        waits.append(seconds)
        clock.now += 1.0
        if len(waits) == 3:
            adm.set_level(Level.ELEVATED)  # the monitor saw memory freed

    adm = Admission(timeout_s=10, clock=clock, wait=wait)
    adm.set_level(Level.CRITICAL)
    with adm.admit():
        assert adm.snapshot()["active"] == 1
    assert waits == [10.0, 9.0, 8.0]
    assert adm.snapshot()["delayed"] == 1 and adm.snapshot()["refused"] == 0


def test_admission_gives_up_after_its_timeout() -> None:
    clock = FakeTime()
    waits: list[float] = []

    def wait(cond: threading.Condition, seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    adm = Admission(timeout_s=2.5, clock=clock, wait=wait)
    adm.set_level(Level.CRITICAL)
    paused = pytest.raises(MemoryPressureError, match=r"paused \(critical\).*within 2.5 s")
    with paused, adm.admit():
        pytest.fail("admitted at critical pressure")
    assert waits == [2.5]
    assert adm.snapshot()["waiting"] == 0


def test_admission_wakes_a_real_waiting_thread() -> None:
    adm = Admission(high_concurrency=1, timeout_s=30)
    adm.set_level(Level.HIGH)
    done = threading.Event()

    def worker() -> None:
        with adm.admit():
            done.set()

    with adm.admit():
        t = threading.Thread(target=worker)
        t.start()
        assert not done.is_set()  # the slot is ours until the block ends
    t.join(30)
    assert done.is_set()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"high_concurrency": 0}, "high_concurrency must be >= 1"),
        ({"high_concurrency": 2.0}, "high_concurrency must be an int"),
        ({"timeout_s": -1}, "timeout must be a number of seconds >= 0"),
        ({"timeout_s": math.nan}, "timeout must be a number of seconds >= 0"),
    ],
)
def test_admission_rejects_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Admission(**kwargs)


# ---------------------------------------------------------------------------
# monitor
# ---------------------------------------------------------------------------


def test_monitor_shrinks_on_rises_collects_at_critical_and_drives_admission() -> None:
    reg = CacheRegistry()
    cache = Recorder(64)
    reg.register("c", cache.shrink)
    collects: list[int] = []
    adm = Admission()
    readings = Readings(0.5, 0.72, 0.74, 0.9, 0.97, 0.99, 0.6, 0.88)
    mon = MemoryMonitor(
        readings, caches=reg, admission=adm, collect=lambda: collects.append(1) or 3
    )
    seen: list[MemoryStatus] = []
    mon.add_listener(seen.append)
    levels = [mon.check().level for _ in range(8)]
    assert levels == [
        Level.NORMAL,
        Level.ELEVATED,
        Level.ELEVATED,
        Level.HIGH,
        Level.CRITICAL,
        Level.CRITICAL,
        Level.NORMAL,
        Level.HIGH,
    ]
    # shrunk on each rise, and on every critical check
    assert cache.levels == [
        Level.ELEVATED,
        Level.HIGH,
        Level.CRITICAL,
        Level.CRITICAL,
        Level.HIGH,
    ]
    assert len(collects) == 2
    assert adm.level is Level.HIGH and mon.level is Level.HIGH
    assert [(s.previous, s.level) for s in seen] == [
        (Level.NORMAL, Level.ELEVATED),
        (Level.ELEVATED, Level.HIGH),
        (Level.HIGH, Level.CRITICAL),
        (Level.CRITICAL, Level.NORMAL),
        (Level.NORMAL, Level.HIGH),
    ]
    assert seen[2].freed == {"c": 64} and seen[2].collected == 3
    assert mon.last is not None and mon.last.reading.used == 880


def test_monitor_from_settings() -> None:
    settings = SimpleNamespace(
        memory_elevated=0.5,
        memory_high=0.6,
        memory_critical=0.7,
        memory_check_interval_s=0.25,
        admission_high_concurrency=3,
        admission_timeout_s=4.0,
    )
    own = Admission()
    mon = MemoryMonitor.from_settings(settings, Readings(0.65), CacheRegistry(), own)
    assert mon.admission is own
    assert mon.thresholds == Thresholds(0.5, 0.6, 0.7)
    assert mon.interval_s == 0.25
    assert mon.admission.high_concurrency == 3 and mon.admission.timeout_s == 4.0
    assert mon.check().level is Level.HIGH
    assert mon.admission.level is Level.HIGH


def test_a_monitor_from_settings_drives_the_process_wide_admit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for attr in ("high_concurrency", "timeout_s"):
        monkeypatch.setattr(ADMISSION, attr, getattr(ADMISSION, attr))
    settings = SimpleNamespace(
        memory_elevated=0.7,
        memory_high=0.85,
        memory_critical=0.95,
        memory_check_interval_s=1.0,
        admission_high_concurrency=2,
        admission_timeout_s=7.0,
    )
    mon = MemoryMonitor.from_settings(settings, Readings(0.97, 0.2), CacheRegistry())
    try:
        assert mon.admission is ADMISSION
        assert ADMISSION.high_concurrency == 2 and ADMISSION.timeout_s == 7.0
        assert mon.check().level is Level.CRITICAL
        with pytest.raises(MemoryPressureError, match="paused"), admit(timeout=0):
            pytest.fail("admitted at critical pressure")
        assert mon.check().level is Level.NORMAL
        with admit(timeout=0):
            assert ADMISSION.snapshot()["active"] >= 1
    finally:
        ADMISSION.set_level(Level.NORMAL)


def test_admission_configure_checks_values() -> None:
    adm = Admission()
    adm.configure(8, 1.5)
    assert (adm.high_concurrency, adm.timeout_s) == (8, 1.5)
    with pytest.raises(InvalidArgumentError, match="high_concurrency must be >= 1"):
        adm.configure(0, 1.0)
    assert adm.high_concurrency == 8


def test_monitor_thread_polls_and_survives_reader_errors() -> None:
    polled = threading.Event()
    calls = []

    def reader() -> MemoryReading:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("psutil hiccup")
        if len(calls) >= 3:
            polled.set()
        return MemoryReading(99, 100, "test")

    adm = Admission()
    with MemoryMonitor(reader, caches=CacheRegistry(), admission=adm, interval_s=0.001) as mon:
        assert mon.running
        assert polled.wait(30)
    assert not mon.running
    assert mon.errors >= 1 and "OSError: psutil hiccup" in mon.last_error
    assert adm.level is Level.CRITICAL


def test_monitor_rejects_bad_interval() -> None:
    with pytest.raises(InvalidArgumentError, match=r"interval_s must be in \(0, 3600\]"):
        MemoryMonitor(Readings(0.1), interval_s=0)


def test_cli_memory_status() -> None:
    from typer.testing import CliRunner

    from dwcore.cli import app

    result = CliRunner().invoke(app, ["memory", "status"])
    assert result.exit_code == 0, result.output
    assert "level normal" in result.output or "level elevated" in result.output
    assert "limit from" in result.output and "ec.decode_plans" in result.output
