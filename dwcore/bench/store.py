"""``dwcore bench store``: the object store and snapshots through the Python API.

One instance (the embedded default layout: RAID 6 on six device files, here
64 MiB each) in a directory (a temporary one under the system's temporary
directory by default: a real disk, so "durable" means real fsyncs), measured
in one run:

* 4 KiB put and get latency p50 / p99 — every put is durable when it returns
  (data synced, then the catalog committed with ``synchronous=FULL``);
* put rate with 8 concurrent writers against 1 (group commit shares one pool
  sync and one catalog transaction per batch);
* 1 MiB put and get throughput against the pool's raw extent throughput in
  the same run (``Pool.write`` + ``Pool.sync`` per extent, ``Pool.read``),
  interleaved; where device flushes cost time, a put flushes the member
  devices in parallel before ``Pool.sync``, which alone flushes them one
  after another (``Instance._sync_pool``);
* snapshot creation time with 10^3 and 10^5 objects (it should not grow),
  diff time for 10, 100 and 1000 changes among 10^5 objects (it should grow
  with the changes, not the objects), listing 10^5 keys.

The 10^5 objects are empty and committed through the catalog in batches of
1000 (what is measured is the catalog, not the load).  Targets (issue 6):
get p99 ≤ 1 ms, durable put p99 ≤ 5 ms, 8 writers ≥ 3 × one, 1 MiB put and
get ≥ 0.8 × raw, flat snapshot creation.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dwcore.store.catalog import PutChange
from dwcore.store.instance import Instance
from dwcore.store.keys import partition_of

__all__ = ["StoreBenchResult", "bulk_load", "judge", "render", "run_store_bench"]

KiB, MiB = 1 << 10, 1 << 20


@dataclass
class StoreBenchResult:
    """Figures of one run (latencies in µs, rates in operations or MiB per second)."""

    directory: str
    put4k_p50_us: float = 0.0
    put4k_p99_us: float = 0.0
    get4k_p50_us: float = 0.0
    get4k_p99_us: float = 0.0
    rate_1_writer: float = 0.0
    rate_8_writers: float = 0.0
    mean_batch_8_writers: float = 0.0
    put_1m_mibs: float = 0.0
    get_1m_mibs: float = 0.0
    raw_write_1m_mibs: float = 0.0
    raw_read_1m_mibs: float = 0.0
    snapshot_ms: dict[int, float] = field(default_factory=dict)
    diff_ms: dict[int, float] = field(default_factory=dict)
    list_s: float = 0.0
    list_keys: int = 0

    @property
    def writer_speedup(self) -> float:
        """8-writer put rate ÷ 1-writer put rate."""
        return self.rate_8_writers / self.rate_1_writer if self.rate_1_writer else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {**asdict(self), "writer_speedup": self.writer_speedup}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bulk_load(inst: Instance, prefix: str, n: int, batch: int = 1000) -> None:
    """``n`` empty objects ``prefix%08d`` committed through the catalog in batches."""
    comp = inst.catalog.compartment("bulk")
    now = time.time()
    for start in range(0, n, batch):
        changes = [
            PutChange(
                comp.id,
                k,
                partition_of(k, comp.partitions),
                0,
                b"\0" * 32,
                "bench",
                {},
                now,
                "main",
            )
            for k in (f"{prefix}{i:08d}" for i in range(start, min(n, start + batch)))
        ]
        inst.commit_changes(changes)


def run_store_bench(
    directory: str | None = None,
    *,
    quick: bool = False,
    progress: Callable[[str], Any] = lambda _what: None,
) -> StoreBenchResult:
    """Run every measurement in a new instance under ``directory`` (removed afterwards)."""
    base = tempfile.mkdtemp(prefix="dwcore-bench-store-", dir=directory)
    res = StoreBenchResult(directory=base)
    config = {
        "pools": [{"name": "main", "level": "6", "devices": 6, "device_size": "64MiB"}],
    }
    n_small = 200 if quick else 1000
    n_big = 16 if quick else 48
    big_objects = 100_000 if not quick else 20_000
    try:
        with Instance.create(Path(base) / "root", config, check_resources=False) as inst:
            inst.create_compartment("b")
            inst.create_compartment("bulk")
            payload = os.urandom(4 * KiB)
            progress("4 KiB puts and gets")
            puts = [_timed(lambda i=i: inst.put("b", f"s{i}", payload)) for i in range(n_small)]
            gets = [_timed(lambda i=i: inst.get("b", f"s{i}")) for i in range(n_small)]
            res.put4k_p50_us = statistics.median(puts) * 1e6
            res.put4k_p99_us = _pct(puts, 0.99) * 1e6
            res.get4k_p50_us = statistics.median(gets) * 1e6
            res.get4k_p99_us = _pct(gets, 0.99) * 1e6
            res.rate_1_writer = n_small / sum(puts)
            progress("8 concurrent writers")
            per = max(1, n_small // 8)
            before = (inst.group_commit.batches, inst.group_commit.committed)
            barrier = threading.Barrier(8)

            def writer(t: int) -> None:
                barrier.wait()
                for i in range(per):
                    inst.put("b", f"w{t}/{i}", payload)

            threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
            t0 = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            res.rate_8_writers = 8 * per / (time.perf_counter() - t0)
            batches = inst.group_commit.batches - before[0]
            res.mean_batch_8_writers = (inst.group_commit.committed - before[1]) / max(1, batches)
            progress("1 MiB puts and gets against raw pool extents")
            big = os.urandom(MiB)
            pool = inst.pools["main"]
            raw_w, put_w, raw_r, get_r = [], [], [], []
            for i in range(n_big):  # interleaved, so both see the same machine state
                t = time.perf_counter()
                ext = pool.write(big)
                pool.sync()
                raw_w.append(time.perf_counter() - t)
                put_w.append(_timed(lambda i=i: inst.put("b", f"big{i}", big)))
                raw_r.append(_timed(lambda e=ext: pool.read(e)))
                get_r.append(_timed(lambda i=i: inst.get("b", f"big{i}")))
                pool.free(ext)
            res.raw_write_1m_mibs = 1 / statistics.median(raw_w)
            res.put_1m_mibs = 1 / statistics.median(put_w)
            res.raw_read_1m_mibs = 1 / statistics.median(raw_r)
            res.get_1m_mibs = 1 / statistics.median(get_r)
            progress(f"snapshots at 10^3 and {big_objects} objects")
            bulk_load(inst, "o", 1000)
            res.snapshot_ms[1000] = 1e3 * statistics.median(
                _timed(lambda: inst.snapshots.create("instance")) for _ in range(9)
            )
            bulk_load(inst, "p", big_objects - 1000)
            res.snapshot_ms[big_objects] = 1e3 * statistics.median(
                _timed(lambda: inst.snapshots.create("instance")) for _ in range(9)
            )
            progress("diffs")
            for changes in (10, 100, 1000):
                snap = inst.snapshots.create("compartment:bulk")
                bulk_load(inst, f"d{changes}-", changes, batch=changes)
                res.diff_ms[changes] = 1e3 * _timed(lambda s=snap: inst.snapshots.diff(s.id))
            progress(f"listing {big_objects} keys")
            count = [0]

            def listing() -> None:
                for _ in inst.iter_objects("bulk", "p"):
                    count[0] += 1

            res.list_s = _timed(listing)
            res.list_keys = count[0]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return res


def judge(res: StoreBenchResult) -> list[tuple[str, str, bool]]:
    """``(target, measured, met)`` for each target of the issue."""
    flat = res.snapshot_ms
    lo, hi = min(flat), max(flat)
    return [
        ("4 KiB get p99 ≤ 1 ms", f"{res.get4k_p99_us / 1000:.2f} ms", res.get4k_p99_us <= 1000),
        (
            "durable 4 KiB put p99 ≤ 5 ms",
            f"{res.put4k_p99_us / 1000:.2f} ms",
            res.put4k_p99_us <= 5000,
        ),
        ("8 writers ≥ 3 × one", f"{res.writer_speedup:.2f} ×", res.writer_speedup >= 3),
        (
            "1 MiB put ≥ 0.8 × raw extent write",
            f"{res.put_1m_mibs / res.raw_write_1m_mibs:.2f} ×",
            res.put_1m_mibs >= 0.8 * res.raw_write_1m_mibs,
        ),
        (
            "1 MiB get ≥ 0.8 × raw extent read",
            f"{res.get_1m_mibs / res.raw_read_1m_mibs:.2f} ×",
            res.get_1m_mibs >= 0.8 * res.raw_read_1m_mibs,
        ),
        (
            f"snapshot creation flat from {lo} to {hi} objects (≤ 2 ×)",
            f"{flat[lo]:.2f} ms -> {flat[hi]:.2f} ms",
            flat[hi] <= 2 * max(flat[lo], 0.5),
        ),
    ]


def render(res: StoreBenchResult) -> list[str]:
    """The figures as text lines, then the targets."""
    lines = [
        f"directory: {res.directory}",
        f"4 KiB put (durable): p50 {res.put4k_p50_us:.0f} µs, p99 {res.put4k_p99_us:.0f} µs",
        f"4 KiB get:           p50 {res.get4k_p50_us:.0f} µs, p99 {res.get4k_p99_us:.0f} µs",
        f"put rate: 1 writer {res.rate_1_writer:.0f}/s, 8 writers {res.rate_8_writers:.0f}/s "
        f"({res.writer_speedup:.2f} ×, mean batch {res.mean_batch_8_writers:.1f})",
        f"1 MiB put {res.put_1m_mibs:.0f} MiB/s vs raw extent write "
        f"{res.raw_write_1m_mibs:.0f} MiB/s; get {res.get_1m_mibs:.0f} MiB/s vs raw read "
        f"{res.raw_read_1m_mibs:.0f} MiB/s",
        "snapshot creation: "
        + ", ".join(f"{n} objects {ms:.2f} ms" for n, ms in res.snapshot_ms.items()),
        "diff: " + ", ".join(f"{n} changes {ms:.1f} ms" for n, ms in res.diff_ms.items()),
        f"listing {res.list_keys} keys: {res.list_s:.2f} s",
    ]
    for target, measured, met in judge(res):
        lines.append(f"{'✓' if met else '✗'} {target}: {measured}")
    return lines
