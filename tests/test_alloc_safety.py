"""The block allocator: close() racing other calls, argument types, error paths,
superblock fallback reporting and placement, sync not blocking allocation.

(Regression tests for a review of the allocator; the general API tests are in
test_alloc.py.)
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from dwcore._alloc import hash64
from dwcore.alloc import BlockAllocator
from dwcore.errors import InvalidArgumentError

PAGE = 4096
PAGE_BLOCKS = 32256
SB_SEED = 0x6477616C6C6F6331


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "pool.alloc"


def run_child(code: str, tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (a use after free kills it, not pytest)."""
    env = dict(os.environ, DW_TMP=str(tmp_path))
    flags = ["-S"] if sys.flags.no_site else []
    # From tmp_path, so `python -c` imports the installed package, never the
    # source tree at the repository root.
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )


# ---------------------------------------------------------------------------
# close() against calls in flight
# ---------------------------------------------------------------------------


def test_close_never_frees_the_allocator_under_a_running_call(tmp_path: Path) -> None:
    # mark_allocated over many blocks runs without the GIL; close() from another
    # thread must refuse (busy) until it returns, never free the handle under it
    proc = run_child(
        """
        import os, threading, time
        from dwcore.alloc import BlockAllocator
        from dwcore.errors import InvalidArgumentError
        nb = 1 << 24
        refused = 0
        for trial in range(8):
            a = BlockAllocator.create(os.path.join(os.environ["DW_TMP"], f"a{trial}"), nb)
            started, stop = threading.Event(), threading.Event()
            def worker():
                started.set()
                try:
                    while not stop.is_set():
                        a.mark_allocated(0, nb)
                except InvalidArgumentError as exc:
                    assert "closed" in str(exc), exc
            t = threading.Thread(target=worker)
            t.start()
            started.wait()
            time.sleep(0.005)
            deadline = time.monotonic() + 0.1
            while True:
                try:
                    a.close(sync=False)
                    break
                except InvalidArgumentError as exc:
                    assert "another thread" in str(exc), exc
                    refused += 1
                    if time.monotonic() > deadline:
                        stop.set()  # a close refused while busy is retried later
                    time.sleep(0)
            stop.set()
            t.join()
        print("ok", refused)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.startswith("ok"), proc.stdout


def test_close_during_argument_conversion_is_seen(tmp_path: Path) -> None:
    # Python code run while a call converts its arguments (here: iterating them)
    # may close the allocator; the call must then fail as closed, not use the
    # handle it fetched before
    proc = run_child(
        """
        import os
        from dwcore.alloc import BlockAllocator
        from dwcore.errors import InvalidArgumentError
        tmp = os.environ["DW_TMP"]

        def closing_list(a, items):
            class L(list):
                def __iter__(self):
                    a.close(sync=False)
                    return super().__iter__()
            return L(items)

        results = []
        for name in ("free_batch", "mark_allocated_batch", "reconcile"):
            a = BlockAllocator.create(os.path.join(tmp, name), 1 << 20)
            a.mark_allocated(0, 100)
            try:
                if name == "reconcile":
                    a.reconcile(closing_list(a, [(0, 10)]))
                else:
                    getattr(a, name)(closing_list(a, [0, 10]), 5)
                results.append(f"{name}: no error")
            except InvalidArgumentError as exc:
                results.append(f"{name}: {'closed' if 'closed' in str(exc) else exc}")
        print(results)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.strip() == str(
        ["free_batch: closed", "mark_allocated_batch: closed", "reconcile: closed"]
    )


# ---------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------


def test_numpy_integers_are_block_numbers(path: Path) -> None:
    with BlockAllocator.create(path, 1 << 16) as a:
        starts = a.alloc_batch(np.int64(4), np.uint32(2))
        a.free(starts[0], 2)  # uint64 from alloc_batch
        a.free(np.int64(int(starts[1])), np.uint8(2))
        assert a.is_free(starts[0], np.uint64(2))
        assert a.count_allocated(np.int32(0), np.int64(1 << 16)) == 4
        s = a.alloc(np.uint16(7), hint=np.uint64(1000))
        assert s == 1000
        assert a.mark_allocated(np.int64(2000), np.uint64(3)) == 3
        a.free_batch(np.array([2000], dtype=np.int32), np.int64(3))
        ext = a.alloc_extents(np.int64(10), max_extents=np.int8(2))
        assert sum(n for _, n in ext) == 10
        a.free(*ext[0])
        nb = BlockAllocator.create(path.with_suffix(".b"), np.uint64(100), np.int64(512))
        assert (nb.nblocks, nb.block_size) == (100, 512)
        nb.close()


def test_bools_are_not_block_numbers(path: Path) -> None:
    with BlockAllocator.create(path, 1000) as a:
        for call in (
            lambda: a.is_allocated(True, True),
            lambda: a.free(0, True),
            lambda: a.alloc(True),
            lambda: a.alloc(1, hint=False),
            lambda: a.alloc_batch(True),
            lambda: a.alloc_extents(True),
            lambda: a.mark_allocated(np.bool_(True)),
            lambda: a.free_batch([0], True),
            lambda: a.alloc(1.0),
            lambda: a.free("3"),
        ):
            with pytest.raises(InvalidArgumentError):
                call()
        assert a.stats().used_blocks == 0


# ---------------------------------------------------------------------------
# error paths
# ---------------------------------------------------------------------------


def _break_the_fd(path: Path) -> None:
    """Close the allocator's descriptor behind its back, so sync() fails."""
    real = os.path.realpath(path)
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.path.realpath(f"/proc/self/fd/{fd}") == real:
                os.close(int(fd))
                return
        except OSError:
            pass
    raise AssertionError("allocator descriptor not found")


def test_errors_after_a_failed_sync_name_no_entry(path: Path) -> None:
    # EFAILED leaves err.value unset: the batch error path must not index the
    # caller's arrays with it
    a = BlockAllocator.create(path, 1 << 16)
    s = a.alloc(4)
    _break_the_fd(path)
    with pytest.raises(OSError, match="sync failed"):
        a.sync()
    for _ in range(3):
        with pytest.raises(OSError, match="earlier sync failed") as exc:
            a.free_batch([s], 4)
        assert "entry" not in str(exc.value)
        with pytest.raises(OSError, match="earlier sync failed"):
            a.mark_allocated_batch(np.arange(100, 200, dtype=np.uint64), [1] * 100)
        with pytest.raises(OSError, match="earlier sync failed"):
            a.mark_allocated(100, 1 << 15)
    a.close(sync=False)


# ---------------------------------------------------------------------------
# superblock: fallback is reported, the committed copy is never overwritten
# ---------------------------------------------------------------------------


def area_gen(raw: bytes, area: int) -> int:
    return int(struct.unpack_from("<Q", raw, area * PAGE + 48)[0])


def area_verifies(raw: bytes, area: int) -> bool:
    off = area * PAGE
    return struct.unpack_from("<Q", raw, off)[0] == hash64(raw[off + 8 : off + PAGE], SB_SEED)


def test_fallback_to_the_previous_superblock_is_reported(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file opens without a warning
        a = BlockAllocator.create(path, 100_000)
        assert not a.opened_from_fallback
        s = a.alloc(1000)
        a.sync()  # acknowledged: generation 2
        a.close()
        with BlockAllocator.open(path) as b:
            assert not b.opened_from_fallback
            assert not b.stats().recovered_from_fallback
    raw = bytearray(path.read_bytes())
    newest = 0 if area_gen(raw, 0) > area_gen(raw, 1) else 1
    assert area_gen(raw, newest) == 2
    raw[newest * PAGE + 100] ^= 1  # one bit of media damage in the newest copy
    path.write_bytes(raw)
    with pytest.warns(RuntimeWarning, match=r"pool\.alloc.*generation 2.*generation 1.*reconcile"):
        b = BlockAllocator.open(path)
    assert b.opened_from_fallback
    st = b.stats()
    assert st.recovered_from_fallback and st.generation == 1
    assert b.is_free(s, 1000)  # rolled back: what reconcile() is for
    assert b.reconcile([(s, 1000)]) == []
    assert b.is_allocated(s, 1000)
    b.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with BlockAllocator.open(path) as c:  # the repaired file is clean again
            assert not c.opened_from_fallback
            assert c.is_allocated(s, 1000)


def test_sync_never_overwrites_the_area_in_use(path: Path) -> None:
    # generation 1 lives in area 1; a copied or crafted file may hold it in area 0
    with BlockAllocator.create(path, 1000):
        pass
    raw = bytearray(path.read_bytes())
    assert area_gen(raw, 1) == 1 and area_verifies(raw, 1)
    raw[0:PAGE] = raw[PAGE : 2 * PAGE]
    raw[PAGE : 2 * PAGE] = bytes(PAGE)
    path.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # area 1 should hold something: reported
        a = BlockAllocator.open(path)
    a.alloc(10)
    a.sync()
    raw = path.read_bytes()
    # the copy open() used is still there: a crash during that sync could not
    # have left the file without a verifying superblock
    assert area_verifies(raw, 0) and area_gen(raw, 0) == 1
    assert area_verifies(raw, 1) and area_gen(raw, 1) == 2
    a.alloc(5)
    a.sync()
    raw = path.read_bytes()
    assert area_gen(raw, 0) == 3 and area_gen(raw, 1) == 2
    a.close()
    with BlockAllocator.open(path) as b:
        assert b.stats().used_blocks == 15 and b.stats().generation == 3


# ---------------------------------------------------------------------------
# sync copies the changed pages under the lock, writes them without it
# ---------------------------------------------------------------------------


def test_changes_during_a_sync_stay_dirty_for_the_next(path: Path) -> None:
    a = BlockAllocator.create(path, 4 * PAGE_BLOCKS)
    a.mark_allocated_batch(np.arange(0, 4 * PAGE_BLOCKS, PAGE_BLOCKS, dtype=np.uint64), 1)
    late: list[int] = []

    def hook(phase: int) -> None:
        if phase == 1 and not late:  # pages written and flushed, not committed
            late.append(a.alloc(1, hint=2 * PAGE_BLOCKS + 7))

    a._set_flush_hook(hook)
    a.sync()
    a._set_flush_hook(None)
    assert late == [2 * PAGE_BLOCKS + 7]
    assert a.stats().dirty_pages == 1  # the late change was not in the snapshot
    a.close(sync=False)
    with BlockAllocator.open(path) as b:  # the commit holds the snapshot exactly
        assert b.stats().used_blocks == 4
        assert b.is_free(late[0])
        b.mark_allocated(late[0])
    with BlockAllocator.open(path) as b:
        assert b.stats().used_blocks == 5


@pytest.mark.slow
def test_allocation_is_not_blocked_while_sync_writes(path: Path) -> None:
    nb = 1 << 28
    a = BlockAllocator.create(path, nb)
    a.mark_allocated_batch(np.arange(0, nb, PAGE_BLOCKS, dtype=np.uint64), 1)
    lat: list[float] = []
    stop = threading.Event()

    def pinger() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            a.alloc(1)
            lat.append(time.perf_counter() - t)

    th = threading.Thread(target=pinger)
    th.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    a.sync()
    took = time.perf_counter() - t0
    stop.set()
    th.join()
    a.close(sync=False)
    # the lock is held for a memcpy of the pages, not for their pwrites
    assert max(lat) < max(0.1 * took, 0.02), (max(lat), took)
