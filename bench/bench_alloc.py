"""Block allocator: what its calls cost from Python (pytest-benchmark).

Named ``{op}[{case}]``; ``extra_info["blocks"]`` is the blocks allocated
per benchmarked call, ``extra_info["calls"]`` the allocator calls in it:

* ``alloc[single]`` — ``alloc()`` then ``free(s)``;
* ``alloc[contig-256]`` — ``alloc(256)`` then ``free(s, 256)``;
* ``alloc[batch-1000]`` — ``alloc_batch(1000)`` then ``free_batch(starts)``;
* ``alloc[extents-100]`` — ``alloc(100, contiguous=False)`` on a map whose free
  space is in 10-block holes, then ``free_batch``;
* ``alloc[fragmented-256]`` — ``alloc(256)`` then ``free`` on a 2**22-block
  map 90% full and fragmented (random 1–256-block allocations, a random half
  freed, refilled to 90%);
* ``open[2^22]`` — opening that fragmented map (warm page cache).

The C-level targets (10 M pairs/s, 50 M blocks/s fills, p99 at 90%, RAM,
open of 2**28 blocks) are measured by ``dwcore bench --only alloc`` and by
``csrc/tests/alloc_perf.c``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dwcore._alloc import _bench_fragmented
from dwcore.alloc import BlockAllocator


@pytest.fixture
def allocator(tmp_path: Path) -> Iterator[BlockAllocator]:
    a = BlockAllocator.create(tmp_path / "bench.alloc", 1 << 20)
    yield a
    a.close(sync=False)


@pytest.fixture(scope="module")
def fragmented(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("alloc") / "fragmented.alloc"
    with BlockAllocator.create(path, 1 << 22) as a:
        _bench_fragmented(a, probes=1)
    yield path


def _run(
    benchmark: Any, op: str, case: str, blocks: int, calls: int, step: Callable[[], object]
) -> None:
    benchmark.name = f"{op}[{case}]"
    benchmark.group = f"alloc {case}"
    benchmark.extra_info.update(op=op, case=case, blocks=blocks, calls=calls)
    benchmark(step)


def test_alloc_single(benchmark: Any, allocator: BlockAllocator) -> None:
    alloc, free = allocator.alloc, allocator.free
    _run(benchmark, "alloc", "single", 1, 2, lambda: free(alloc()))


def test_alloc_contiguous_256(benchmark: Any, allocator: BlockAllocator) -> None:
    alloc, free = allocator.alloc, allocator.free
    _run(benchmark, "alloc", "contig-256", 256, 2, lambda: free(alloc(256), 256))


def test_alloc_batch_1000(benchmark: Any, allocator: BlockAllocator) -> None:
    a = allocator
    _run(benchmark, "alloc", "batch-1000", 1000, 2, lambda: a.free_batch(a.alloc_batch(1000)))


def test_alloc_extents_100(benchmark: Any, allocator: BlockAllocator) -> None:
    a = allocator
    a.mark_allocated(0, a.nblocks)
    for s in range(0, a.nblocks, 1000):
        a.free(s, 10)

    def step() -> None:
        extents = a.alloc(100, contiguous=False)
        assert len(extents) == 10
        a.free_batch([s for s, _ in extents], [n for _, n in extents])

    _run(benchmark, "alloc", "extents-100", 100, 2, step)


def test_alloc_fragmented_256(benchmark: Any, fragmented: Path) -> None:
    with BlockAllocator.open(fragmented) as a:
        assert a.stats().used_blocks >= 0.89 * a.nblocks
        alloc, free = a.alloc, a.free
        _run(benchmark, "alloc", "fragmented-256", 256, 2, lambda: free(alloc(256), 256))
        a.close(sync=False)


def test_open_fragmented(benchmark: Any, fragmented: Path) -> None:
    _run(benchmark, "open", "2^22", 0, 1, lambda: BlockAllocator.open(fragmented).close(sync=False))
