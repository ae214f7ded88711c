"""Object store and snapshots through the Python API (pytest-benchmark).

Named ``{op}[{case}]``; ``extra_info["bytes"]`` is the object bytes per call:

* ``put[4k]`` / ``get[4k]`` — one durable 4 KiB put (data synced, catalog
  committed) / one 4 KiB get;
* ``put[1m]`` / ``get[1m]`` against ``raw_write[1m]`` / ``raw_read[1m]`` —
  the pool's own ``write`` + ``sync`` / ``read`` of a 1 MiB extent, same pool;
* ``snapshot[1e3]`` / ``snapshot[1e4]`` — creating an instance snapshot with
  that many objects (flat: a snapshot records a generation);
* ``diff[100]`` — a diff of 100 changes among 10^4 objects;
* ``list[1e4]`` — listing 10^4 keys page by page.

The latency percentiles, the 8-writer group-commit rate and the 10^5-object
figures are measured by ``dwcore bench store``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest

from dwcore.bench.store import bulk_load
from dwcore.store import Instance

KiB, MiB = 1 << 10, 1 << 20
CONFIG = {"pools": [{"name": "main", "level": "6", "devices": 6, "device_size": "64MiB"}]}


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    root = tmp_path_factory.mktemp("store") / "root"
    with Instance.create(root, CONFIG, check_resources=False) as i:
        i.create_compartment("b")
        i.create_compartment("bulk")
        bulk_load(i, "o", 1000)
        yield i


def _run(benchmark: Any, op: str, case: str, nbytes: int, fn: Any) -> None:
    benchmark.name = f"{op}[{case}]"
    benchmark.extra_info["bytes"] = nbytes
    benchmark(fn)


@pytest.mark.parametrize(("case", "size"), [("4k", 4 * KiB), ("1m", MiB)])
def test_put(benchmark: Any, inst: Instance, case: str, size: int) -> None:
    data, n = os.urandom(size), count()
    _run(benchmark, "put", case, size, lambda: inst.put("b", f"p{case}{next(n) % 64}", data))
    assert inst.get("b", f"p{case}0") == data


@pytest.mark.parametrize(("case", "size"), [("4k", 4 * KiB), ("1m", MiB)])
def test_get(benchmark: Any, inst: Instance, case: str, size: int) -> None:
    data = os.urandom(size)
    inst.put("b", f"g{case}", data)
    _run(benchmark, "get", case, size, lambda: inst.get("b", f"g{case}"))
    assert inst.get("b", f"g{case}") == data


def test_raw_extents(benchmark: Any, inst: Instance) -> None:
    pool, data = inst.pools["main"], os.urandom(MiB)

    def write() -> None:
        pool.free(pool.write(data))
        pool.sync()

    _run(benchmark, "raw_write", "1m", MiB, write)


def test_raw_read(benchmark: Any, inst: Instance) -> None:
    pool = inst.pools["main"]
    ext = pool.write(os.urandom(MiB))
    _run(benchmark, "raw_read", "1m", MiB, lambda: pool.read(ext))
    pool.free(ext)


@pytest.mark.parametrize(("case", "objects"), [("1e3", 1000), ("1e4", 10_000)])
def test_snapshot(benchmark: Any, inst: Instance, case: str, objects: int) -> None:
    have = inst.catalog.counts()["objects"]
    if have < objects:
        bulk_load(inst, f"s{case}-", objects - have)
    _run(benchmark, "snapshot", case, 0, lambda: inst.snapshots.create("instance"))


def test_diff(benchmark: Any, inst: Instance) -> None:
    if inst.catalog.counts()["objects"] < 10_000:
        bulk_load(inst, "d", 10_000)
    snap = inst.snapshots.create("compartment:bulk")
    bulk_load(inst, "changed", 100, batch=100)
    result: list[Any] = []
    _run(benchmark, "diff", "100", 0, lambda: result.append(inst.snapshots.diff(snap.id)))
    assert len(result[-1].added) == 100


def test_list(benchmark: Any, inst: Instance) -> None:
    if inst.catalog.counts()["objects"] < 10_000:
        bulk_load(inst, "l", 10_000)

    def listing() -> int:
        return sum(1 for _ in inst.iter_objects("bulk"))

    _run(benchmark, "list", "1e4", 0, listing)
    assert listing() >= 10_000
