"""The block allocator: API, errors, threads, on-disk format, damaged files.

The model-based test is test_alloc_model.py; crash safety (kill -9 and
power-cut images) is test_alloc_crash.py.
"""

from __future__ import annotations

import random
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from dwcore._alloc import FORMAT_VERSION, hash64
from dwcore.alloc import AllocStats, BlockAllocator
from dwcore.errors import (
    CorruptionError,
    DWError,
    InvalidArgumentError,
    NoSpaceError,
    UnsupportedFormatError,
)

PAGE = 4096
PAGE_BLOCKS = 32256
SB_SEED = 0x6477616C6C6F6331


def bits(alloc: BlockAllocator) -> np.ndarray:
    raw = np.frombuffer(alloc.bitmap(), np.uint8)
    return np.unpackbits(raw, bitorder="little")[: alloc.nblocks].astype(bool)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "pool.alloc"


# ---------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------


def test_create_alloc_free_reopen(path: Path) -> None:
    with BlockAllocator.create(path, 100_000, block_size=8192) as a:
        assert (a.nblocks, a.block_size, a.path, a.closed) == (100_000, 8192, str(path), False)
        assert a.alloc() == 0
        assert a.alloc(10) == 1
        assert a.alloc(5, contiguous=False) == [(11, 5)]
        assert a.alloc_batch(3, 2).tolist() == [16, 18, 20]
        assert a.alloc(7, hint=50_000) == 50_000
        a.free(1, 10)
        assert a.is_free(1, 10) and a.is_allocated(0) and a.count_allocated(0, 30) == 12
        expected = bits(a)
    assert a.closed
    with BlockAllocator.open(path) as b:
        assert (b.nblocks, b.block_size) == (100_000, 8192)
        assert np.array_equal(bits(b), expected)
        b._check()


def test_stats(path: Path) -> None:
    with BlockAllocator.create(path, 10_000) as a:
        s = a.stats()
        assert isinstance(s, AllocStats)
        assert (s.free_blocks, s.largest_free, s.free_extents, s.fragmentation) == (
            10_000,
            10_000,
            1,
            0.0,
        )
        a.alloc(100)
        a.mark_allocated(5000, 10)
        s = a.stats()
        assert s.used_blocks == 110 and s.free_extents == 2 and s.largest_free == 4990
        assert s.fragmentation == pytest.approx(1 - 4990 / 9890)
        assert s.dirty_pages == 1 and s.generation == 1
        a.sync()
        assert a.stats().generation == 2 and a.stats().dirty_pages == 0
        assert a.stats(full=False).free_extents is None


def test_memory_per_block_is_small(path: Path) -> None:
    with BlockAllocator.create(path, 1 << 24) as a:
        assert a.stats().bits_per_block <= 1.1


def test_next_fit_and_wraparound(path: Path) -> None:
    with BlockAllocator.create(path, 1000) as a:
        first = a.alloc_batch(10, 100)
        assert first.tolist() == list(range(0, 1000, 100))
        a.free(100, 100)
        a.free(700, 100)
        assert a.alloc(100) in (100, 700)  # wraps around to a free extent
        with pytest.raises(NoSpaceError) as exc:
            a.alloc(101)
        assert exc.value.largest_free == 100


def test_good_fit_keeps_long_runs(path: Path) -> None:
    """A small request goes to a small hole, not into the long run."""
    with BlockAllocator.create(path, 20_000) as a:
        a.mark_allocated(0, 20_000)
        a.free(100, 3)  # small hole
        a.free(10_000, 5000)  # long run
        assert a.alloc(3, hint=9_000) == 100
        assert a.alloc(4000) == 10_000


def test_alloc_extents(path: Path) -> None:
    with BlockAllocator.create(path, 1000) as a:
        a.mark_allocated(0, 1000)
        for s in range(0, 1000, 100):
            a.free(s, 10)  # ten holes of 10
        got = a.alloc(35, contiguous=False)
        assert sum(n for _, n in got) == 35 and len(got) == 4
        before = a.bitmap()
        with pytest.raises(NoSpaceError):
            a.alloc_extents(40, max_extents=3)
        assert a.bitmap() == before  # nothing allocated
        with pytest.raises(NoSpaceError):
            a.alloc(100, contiguous=False)  # only 65 free


def test_mark_allocated_and_reconcile(path: Path) -> None:
    with BlockAllocator.create(path, 5000) as a:
        assert a.mark_allocated(10, 20) == 20
        assert a.mark_allocated(15, 20) == 5  # idempotent on the overlap
        assert a.mark_allocated_batch([100, 200], [5, 5]) == 10
        a.alloc(50, hint=1000)
        # the catalog references (10, 25), (1000, 20) and (3000, 4), in any order
        leaked = a.reconcile([(3000, 4), (1000, 20), (12, 5), (10, 25)])
        assert leaked == [(100, 5), (200, 5), (1020, 30)]
        assert a.is_allocated(3000, 4)  # referenced but free: restored
        assert a.stats().used_blocks == 25 + 20 + 4
        assert a.reconcile(np.array([[10, 25], [1000, 20], [3000, 4]])) == []
        assert a.reconcile([]) == [(10, 25), (1000, 20), (3000, 4)]


def test_context_manager_syncs_only_on_success(path: Path) -> None:
    with BlockAllocator.create(path, 100) as a:
        a.alloc(10)
    with pytest.raises(RuntimeError), BlockAllocator.open(path) as a:
        a.alloc(10)
        raise RuntimeError("boom")
    with BlockAllocator.open(path) as a:
        assert a.stats().used_blocks == 10
    a.close()  # idempotent


def test_whole_map_and_tiny_maps(tmp_path: Path) -> None:
    for n in (1, 2, 63, 64, 65, 4095, 4096, 4097, PAGE_BLOCKS, PAGE_BLOCKS + 1):
        with BlockAllocator.create(tmp_path / f"m{n}", n) as a:
            assert a.alloc(n) == 0
            with pytest.raises(NoSpaceError):
                a.alloc()
            a.free(0, n)
            assert a.alloc_batch(n).tolist() == list(range(n))
            a.free_batch(np.arange(n, dtype=np.uint64))
            a._check()


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_double_free_and_unallocated_free(path: Path) -> None:
    with BlockAllocator.create(path, 1000) as a:
        s = a.alloc(10)
        a.free(s, 10)
        with pytest.raises(InvalidArgumentError, match=r"block 0 is not allocated"):
            a.free(s, 10)
        a.alloc(5, hint=0)
        with pytest.raises(InvalidArgumentError, match=r"block 5 is not allocated"):
            a.free(0, 10)  # partly allocated: nothing freed
        assert a.is_allocated(0, 5)
        with pytest.raises(InvalidArgumentError, match="double free"):
            a.free(500)


def test_out_of_range_and_bad_arguments(path: Path) -> None:
    with BlockAllocator.create(path, 1000) as a:
        for call in (
            lambda: a.free(999, 2),
            lambda: a.free(1000),
            lambda: a.free(-1),
            lambda: a.free(0, 0),
            lambda: a.is_allocated(990, 11),
            lambda: a.mark_allocated(1000),
            lambda: a.alloc(0),
            lambda: a.alloc(-3),
            lambda: a.alloc(1, hint=1000),
            lambda: a.alloc_batch(-1),
            lambda: a.free_batch([1, 2], [1]),
            lambda: a.free_batch([-5]),
            lambda: a.reconcile([(990, 20)]),
            lambda: a.reconcile([(1, 2, 3)]),  # type: ignore[list-item]
        ):
            with pytest.raises(InvalidArgumentError):
                call()
        with pytest.raises(NoSpaceError) as exc:
            a.alloc(1001)
        assert exc.value.largest_free == 1000
        with pytest.raises(NoSpaceError):
            a.alloc_batch(11, 100)
        assert a.stats().used_blocks == 0


def test_nospace_names_the_largest_extent(path: Path) -> None:
    with BlockAllocator.create(path, 10_000) as a:
        a.mark_allocated(0, 10_000)
        a.free(100, 30)
        a.free(5000, 70)
        with pytest.raises(
            NoSpaceError,
            match=r"100 of 10000 blocks are free.*largest free "
            r"extent is 70 blocks",
        ) as exc:
            a.alloc(71)
        assert exc.value.largest_free == 70
        assert isinstance(exc.value, DWError)


def test_batches_are_all_or_nothing(path: Path) -> None:
    with BlockAllocator.create(path, 1000) as a:
        a.mark_allocated(0, 1000)
        a.free(0, 50)
        a.free(100, 50)
        before = a.bitmap()
        with pytest.raises(NoSpaceError):
            a.alloc_batch(2, 60)  # 100 free blocks, but no 60-block run
        assert a.bitmap() == before
        a.mark_allocated(0, 1000)
        with pytest.raises(InvalidArgumentError, match="entry 2"):
            a.free_batch([10, 20, 10], 5)  # the same extent twice
        assert a.is_allocated(0, 1000)


def test_file_errors(path: Path, tmp_path: Path) -> None:
    a = BlockAllocator.create(path, 100)
    with pytest.raises(FileExistsError):
        BlockAllocator.create(path, 100)
    with pytest.raises(InvalidArgumentError, match="already open"):
        BlockAllocator.open(path)
    a.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        a.alloc()
    with pytest.raises(FileNotFoundError):
        BlockAllocator.open(tmp_path / "missing")
    for nblocks in (0, 2**32 + 1, -1, 1.5):
        with pytest.raises(InvalidArgumentError, match="nblocks"):
            BlockAllocator.create(tmp_path / "x", nblocks)  # type: ignore[arg-type]
    for bs in (0, 256, 4097, 2**31):
        with pytest.raises(InvalidArgumentError, match="block_size"):
            BlockAllocator.create(tmp_path / "x", 10, block_size=bs)
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.alloc"]  # no temporaries left


# ---------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------


def test_threads_never_share_a_block(path: Path) -> None:
    a = BlockAllocator.create(path, 200_000)
    stop = threading.Event()
    results: list[list[tuple[int, int]]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        rng = random.Random(t)
        held = results[t]
        try:
            for _ in range(3000):
                r = rng.random()
                if r < 0.5 or not held:
                    n = rng.randint(1, 40)
                    try:
                        if rng.random() < 0.1:
                            held.extend((int(s), 2) for s in a.alloc_batch(rng.randint(1, 20), 2))
                        else:
                            held.append((a.alloc(n), n))
                    except NoSpaceError:
                        pass
                else:
                    s, n = held.pop(rng.randrange(len(held)))
                    a.free(s, n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def syncer() -> None:
        while not stop.is_set():
            a.sync()
            a.stats()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    sync_thread = threading.Thread(target=syncer)
    sync_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sync_thread.join()
    assert not errors, errors
    want = np.zeros(a.nblocks, bool)
    for held in results:
        for s, n in held:
            assert not want[s : s + n].any(), "two threads hold the same block"
            want[s : s + n] = True
    assert np.array_equal(bits(a), want)
    a._check()
    a.close()
    with BlockAllocator.open(path) as b:
        assert np.array_equal(bits(b), want)


def test_parallel_calls_without_the_gil(path: Path) -> None:
    """C loops and large batches run truly in parallel (no GIL) on one allocator."""
    from dwcore._alloc import _bench_alloc_free

    a = BlockAllocator.create(path, 100_000)
    a.mark_allocated(50_000, 10)
    errors: list[BaseException] = []

    def c_loop() -> None:
        try:
            _bench_alloc_free(a, 100_000, 3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def batches(seed: int) -> None:
        try:
            for _ in range(200):
                starts = a.alloc_batch(500, 1 + seed)
                assert len(set(starts.tolist())) == 500
                a.free_batch(starts, 1 + seed)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=c_loop) for _ in range(2)]
    threads += [threading.Thread(target=batches, args=(k,)) for k in range(2)]

    def syncs() -> None:
        for _ in range(20):
            a.sync()

    threads.append(threading.Thread(target=syncs))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert a.stats().used_blocks == 10 and a.is_allocated(50_000, 10)
    a._check()
    a.close()


def test_close_during_a_sync_is_refused(path: Path) -> None:
    a = BlockAllocator.create(path, 1000)
    a.alloc(10)
    in_flush, release = threading.Event(), threading.Event()

    def hook(phase: int) -> None:
        in_flush.set()
        release.wait(5)

    a._set_flush_hook(hook)
    syncer = threading.Thread(target=a.sync)
    syncer.start()
    assert in_flush.wait(5)
    with pytest.raises(InvalidArgumentError, match="another thread"):
        a.close()
    assert a.alloc(5) == 10  # allocation goes on while sync flushes
    release.set()
    syncer.join()
    a._set_flush_hook(None)
    a.close()
    with BlockAllocator.open(path) as b:
        assert b.stats().used_blocks == 15


# ---------------------------------------------------------------------------
# on-disk format and damaged files
# ---------------------------------------------------------------------------


def copy_offset(page: int, copy: int, area_pages: int = 1) -> int:
    return 2 * area_pages * PAGE + (2 * page + copy) * PAGE


def newest_area(raw: bytes | bytearray) -> int:
    gens = [struct.unpack_from("<Q", raw, off + 48)[0] for off in (0, PAGE)]
    return 0 if gens[0] > gens[1] else 1


def committed_copy(raw: bytes | bytearray, page: int) -> int:
    area = newest_area(raw) * PAGE
    slot_word = struct.unpack_from("<Q", raw, area + 256 + 8 * (page // 64))[0]
    return (slot_word >> (page % 64)) & 1


def reseal_area(raw: bytearray, off: int) -> None:
    raw[off : off + 8] = struct.pack("<Q", hash64(bytes(raw[off + 8 : off + PAGE]), SB_SEED))


def synced_file(path: Path, nblocks: int = 3 * PAGE_BLOCKS, rounds: int = 3) -> list[np.ndarray]:
    """An allocator synced `rounds` times with changes in every page; the states."""
    states = []
    rng = random.Random(5)
    with BlockAllocator.create(path, nblocks) as a:
        for _ in range(rounds):
            for _ in range(60):
                a.mark_allocated(rng.randrange(nblocks - 50), rng.randint(1, 50))
            a.sync()
            states.append(bits(a))
    return states


def test_layout_is_as_documented(path: Path) -> None:
    synced_file(path, rounds=1)
    raw = path.read_bytes()
    assert len(raw) == 2 * PAGE + 3 * 2 * PAGE
    area = newest_area(raw) * PAGE
    magic, version, _, bsize, psize, nblocks, npages, gen = struct.unpack_from(
        "<QIIIIQQQ", raw, area + 8
    )
    assert magic == int.from_bytes(b"DWALLOC\0", "little")
    assert (version, bsize, psize, nblocks, npages, gen) == (
        FORMAT_VERSION,
        4096,
        4096,
        3 * PAGE_BLOCKS,
        3,
        2,
    )
    assert struct.unpack_from("<Q", raw, area)[0] == hash64(raw[area + 8 : area + PAGE], SB_SEED)
    uuid = struct.unpack_from("<Q", raw, area + 56)[0]
    for page in range(3):
        off = copy_offset(page, committed_copy(raw, page))
        assert raw[off + 8 : off + 12] == b"DWAP"
        assert struct.unpack_from("<IQQ", raw, off + 12) == (page, 2, uuid)


def test_truncated_file(path: Path) -> None:
    synced_file(path, rounds=1)
    raw = path.read_bytes()
    for size in (0, 100, PAGE, 2 * PAGE, len(raw) - PAGE, len(raw) - 1):
        path.write_bytes(raw[:size])
        with pytest.raises(CorruptionError, match=r"truncated|superblock"):
            BlockAllocator.open(path)


def test_not_an_allocator_file(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(5 * PAGE))
    with pytest.raises(CorruptionError, match="not a dwcore allocator file"):
        BlockAllocator.open(path)


def test_newer_format_version_is_refused(path: Path) -> None:
    synced_file(path, rounds=1)
    raw = bytearray(path.read_bytes())
    area = newest_area(raw) * PAGE
    raw[area + 16 : area + 20] = struct.pack("<I", FORMAT_VERSION + 1)
    reseal_area(raw, area)
    path.write_bytes(raw)
    with pytest.raises(UnsupportedFormatError, match=r"newer dwcore .*version 2"):
        BlockAllocator.open(path)


def test_committed_page_failing_its_checksum_is_named(path: Path) -> None:
    synced_file(path)
    raw = bytearray(path.read_bytes())
    off = copy_offset(1, committed_copy(raw, 1))
    raw[off + 1000] ^= 0x10
    path.write_bytes(raw)
    with pytest.raises(CorruptionError, match=r"bitmap page 1 \(blocks 32256\.\.64511"):
        BlockAllocator.open(path)


def test_damage_to_uncommitted_copies_is_harmless(path: Path) -> None:
    states = synced_file(path)
    raw = bytearray(path.read_bytes())
    for page in range(3):
        off = copy_offset(page, 1 - committed_copy(raw, page))
        raw[off : off + PAGE] = random.Random(page).randbytes(PAGE)
    path.write_bytes(raw)
    with BlockAllocator.open(path) as a:
        assert np.array_equal(bits(a), states[-1])
        a.mark_allocated(0, 10)  # the next sync writes over the damaged copies
    with BlockAllocator.open(path) as a:
        assert a.is_allocated(0, 10)


def test_superblock_copies(path: Path) -> None:
    states = synced_file(path)
    raw = bytearray(path.read_bytes())
    # the newest copy damaged: the previous generation is used (a torn superblock
    # write after a crash looks exactly like this)
    area = newest_area(raw) * PAGE
    raw[area + 100] ^= 1
    path.write_bytes(raw)
    with pytest.warns(RuntimeWarning, match="generation 4.*generation 3"):
        a = BlockAllocator.open(path)
    with a:
        assert a.opened_from_fallback  # never silent (see test_alloc_safety.py)
        assert np.array_equal(bits(a), states[-2])
        a.close(sync=False)
    # both damaged
    raw[PAGE - area + 200] ^= 1  # the other copy
    path.write_bytes(raw)
    with pytest.raises(CorruptionError, match="both superblock copies"):
        BlockAllocator.open(path)


def test_page_of_another_allocator_is_refused(tmp_path: Path) -> None:
    p1, p2 = tmp_path / "one", tmp_path / "two"
    synced_file(p1)
    synced_file(p2)
    r1, r2 = bytearray(p1.read_bytes()), p2.read_bytes()
    off1 = copy_offset(0, committed_copy(r1, 0))
    off2 = copy_offset(0, committed_copy(r2, 0))
    r1[off1 : off1 + PAGE] = r2[off2 : off2 + PAGE]
    p1.write_bytes(r1)
    with pytest.raises(CorruptionError, match="bitmap page 0"):
        BlockAllocator.open(p1)


def _fuzz(path: Path, cases: int, seed: int) -> dict[str, int]:
    states = synced_file(path, rounds=4)
    clean = path.read_bytes()
    rng = random.Random(seed)
    outcome = {"opened": 0, "refused": 0}
    for _ in range(cases):
        raw = bytearray(clean)
        kind = rng.choice(("flip", "bytes", "page", "truncate", "zero-page"))
        if kind == "flip":
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(raw))
                raw[pos] ^= 1 << rng.randrange(8)
        elif kind == "bytes":
            pos = rng.randrange(len(raw) - 64)
            raw[pos : pos + 64] = rng.randbytes(64)
        elif kind == "page":
            p = rng.randrange(len(raw) // PAGE)
            raw[p * PAGE : (p + 1) * PAGE] = rng.randbytes(PAGE)
        elif kind == "zero-page":
            p = rng.randrange(len(raw) // PAGE)
            raw[p * PAGE : (p + 1) * PAGE] = bytes(PAGE)
        else:
            del raw[rng.randrange(len(raw)) :]
        path.write_bytes(raw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # checked below
                a = BlockAllocator.open(path)
        except (CorruptionError, UnsupportedFormatError):
            outcome["refused"] += 1
            continue
        try:
            a._check()
            got = bits(a)
            # never a made-up state: the last sync, or the one before (newest
            # superblock copy damaged)
            assert np.array_equal(got, states[-1]) or np.array_equal(got, states[-2]), kind
            if not np.array_equal(got, states[-1]):  # a rollback is always reported
                assert a.opened_from_fallback, kind
            a.alloc(5)
            a.sync()
        finally:
            a.close()
        outcome["opened"] += 1
    return outcome


def test_fuzzed_files_open_consistent_or_refuse(path: Path) -> None:
    outcome = _fuzz(path, 300, seed=1)
    assert outcome["opened"] > 30 and outcome["refused"] > 30, outcome


@pytest.mark.slow
def test_fuzzed_files_many(path: Path) -> None:
    _fuzz(path, 5000, seed=2)


@pytest.mark.slow
def test_two_to_the_32_blocks(path: Path) -> None:
    with BlockAllocator.create(path, 2**32) as a:
        assert a.stats().largest_free == 2**32
        assert a.alloc(2**32) == 0
        a.free(2**32 - 5, 5)
        assert a.alloc(5) == 2**32 - 5
        a.free(0, 2**32)
        assert a.alloc(2**31 + 1) == 0
        a._check()
    with BlockAllocator.open(path) as a:
        assert a.stats().used_blocks == 2**31 + 1
