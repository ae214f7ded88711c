"""The block allocator against a Python model, driven by Hypothesis.

The model is a bool array of blocks (allocated or not) plus the extents the
"caller" references.  Every rule is checked against it, every step ends with
the allocator's bitmap equal to the model and its summaries consistent, and
every mutating rule may be followed by a reopen: clean (sync and close), or
a crash (close without sync: the state falls back to the last sync, the
caller's references to what it held then, and ``reconcile`` frees the
leaks).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from dwcore.alloc import BlockAllocator
from dwcore.errors import InvalidArgumentError, NoSpaceError

REOPEN = st.sampled_from([None, None, None, "clean", "crash"])


def runs(bits: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate(([False], bits, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e - s)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


def longest_free(model: np.ndarray) -> int:
    return max((n for _, n in runs(~model)), default=0)


class AllocatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="dwalloc-model-"))
        self.alloc: BlockAllocator | None = None

    @initialize(nblocks=st.sampled_from([1, 63, 200, 4096 + 7, 40000, 70000]))
    def create(self, nblocks: int) -> None:
        self.nblocks = nblocks
        self.path = self.dir / "pool.alloc"
        self.alloc = BlockAllocator.create(self.path, nblocks)
        self.model = np.zeros(nblocks, bool)  # the allocator's truth
        self.held: list[tuple[int, int]] = []  # what the caller references
        self.synced = self.model.copy()
        self.held_synced: list[tuple[int, int]] = []

    def teardown(self) -> None:
        if self.alloc is not None:
            self.alloc.close(sync=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------- helpers

    @property
    def a(self) -> BlockAllocator:
        assert self.alloc is not None
        return self.alloc

    def take(self, start: int, n: int, hold: bool = True) -> None:
        assert start >= 0 and start + n <= self.nblocks
        assert not self.model[start : start + n].any(), f"({start}, {n}) was not free"
        self.model[start : start + n] = True
        if hold:
            self.held.append((start, n))

    def reopen(self, how: str | None) -> None:
        if how == "clean":
            self.a.close()
            self.alloc = BlockAllocator.open(self.path)
            self.synced = self.model.copy()
            self.held_synced = list(self.held)
        elif how == "crash":
            self.a.close(sync=False)
            self.alloc = BlockAllocator.open(self.path)
            self.model = self.synced.copy()
            self.held = list(self.held_synced)
            used = np.zeros(self.nblocks, bool)
            for s, n in self.held:
                used[s : s + n] = True
            # the caller's references at the last sync are all allocated ...
            assert np.array_equal(self.model | used, self.model)
            # ... and reconcile frees exactly what it no longer references
            leaked = self.a.reconcile(self.held)
            assert leaked == runs(self.model & ~used)
            self.model = used

    # ------------------------------------------------------------------ rules

    @rule(n=st.integers(1, 300), hint=st.none() | st.floats(0, 1), then=REOPEN)
    def alloc_contiguous(self, n: int, hint: float | None, then: str | None) -> None:
        h = None if hint is None else min(int(hint * self.nblocks), self.nblocks - 1)
        try:
            start = self.a.alloc(n, hint=h)
        except NoSpaceError as exc:
            assert longest_free(self.model) < n
            assert exc.largest_free == longest_free(self.model)
        else:
            if h is not None and h + n <= self.nblocks and not self.model[h : h + n].any():
                assert start == h  # a free hint is honoured exactly
            self.take(start, n)
        self.reopen(then)

    @rule(n=st.integers(1, 500), then=REOPEN)
    def alloc_extents(self, n: int, then: str | None) -> None:
        free = int((~self.model).sum())
        try:
            extents = self.a.alloc(n, contiguous=False)
        except NoSpaceError:
            assert free < n
        else:
            assert sum(k for _, k in extents) == n
            if longest_free(self.model) >= n:
                assert len(extents) == 1
            for s, k in extents:
                self.take(s, k)
        self.reopen(then)

    @rule(count=st.integers(0, 80), n=st.integers(1, 9), then=REOPEN)
    def alloc_batch(self, count: int, n: int, then: str | None) -> None:
        before = self.a.bitmap()
        try:
            starts = self.a.alloc_batch(count, n)
        except NoSpaceError:
            assert self.a.bitmap() == before  # all or nothing
        else:
            assert len(starts) == count
            for s in starts:
                self.take(int(s), n)
        self.reopen(then)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), then=REOPEN)
    def free_held(self, data: st.DataObject, then: str | None) -> None:
        i = data.draw(st.integers(0, len(self.held) - 1))
        s, n = self.held.pop(i)
        # free a part of it (blocks are blocks) and keep the rest
        a = data.draw(st.integers(0, n - 1))
        b = data.draw(st.integers(a + 1, n))
        self.a.free(s + a, b - a)
        self.model[s + a : s + b] = False
        if a:
            self.held.append((s, a))
        if b < n:
            self.held.append((s + b, n - b))
        self.reopen(then)

    @precondition(lambda self: len(self.held) >= 2)
    @rule(data=st.data(), then=REOPEN)
    def free_batch(self, data: st.DataObject, then: str | None) -> None:
        k = data.draw(st.integers(1, len(self.held)))
        picked = [self.held.pop() for _ in range(k)]
        dup = data.draw(st.booleans())
        starts = [s for s, _ in picked]
        lens = [n for _, n in picked]
        if dup:  # the same extent twice: nothing may be freed
            before = self.a.bitmap()
            try:
                self.a.free_batch([*starts, starts[0]], [*lens, lens[0]])
            except InvalidArgumentError:
                pass
            else:
                raise AssertionError("free_batch freed an extent twice")
            assert self.a.bitmap() == before
            self.held.extend(picked)
            return
        self.a.free_batch(starts, lens)
        for s, n in picked:
            self.model[s : s + n] = False
        self.reopen(then)

    @rule(start=st.integers(0, 80000), n=st.integers(1, 100))
    def free_bad(self, start: int, n: int) -> None:
        """Double free, free of never-allocated or out-of-range blocks: errors, no change."""
        if start + n <= self.nblocks and self.model[start : start + n].all():
            return
        before = self.a.bitmap()
        try:
            self.a.free(start, n)
        except InvalidArgumentError:
            pass
        else:
            raise AssertionError(f"free({start}, {n}) of unallocated blocks succeeded")
        assert self.a.bitmap() == before

    @rule(data=st.data(), then=REOPEN)
    def mark_allocated(self, data: st.DataObject, then: str | None) -> None:
        s = data.draw(st.integers(0, self.nblocks - 1))
        n = data.draw(st.integers(1, min(200, self.nblocks - s)))
        newly = self.a.mark_allocated(s, n)
        assert newly == int((~self.model[s : s + n]).sum())
        self.model[s : s + n] = True
        # the caller now references those blocks (a catalog rebuild)
        self.held = [(x, k) for x, k in runs(self.model)]
        self.reopen(then)

    @rule(n=st.integers(1, 50), then=REOPEN)
    def leak(self, n: int, then: str | None) -> None:
        """An allocation the caller never records (it crashed before its catalog write)."""
        try:
            start = self.a.alloc(n)
        except NoSpaceError:
            return
        self.take(start, n, hold=False)
        self.reopen(then)

    @rule(then=REOPEN)
    def reconcile(self, then: str | None) -> None:
        used = np.zeros(self.nblocks, bool)
        for s, n in self.held:
            used[s : s + n] = True
        leaked = self.a.reconcile(self.held)
        assert leaked == runs(self.model & ~used)
        self.model = used
        self.reopen(then)

    @rule(data=st.data())
    def query(self, data: st.DataObject) -> None:
        s = data.draw(st.integers(0, self.nblocks - 1))
        n = data.draw(st.integers(1, self.nblocks - s))
        count = int(self.model[s : s + n].sum())
        assert self.a.count_allocated(s, n) == count
        assert self.a.is_allocated(s, n) == (count == n)
        assert self.a.is_free(s, n) == (count == 0)

    @rule()
    def sync(self) -> None:
        self.a.sync()
        self.synced = self.model.copy()
        self.held_synced = list(self.held)

    @rule(how=st.sampled_from(["clean", "crash"]))
    def reopen_now(self, how: str) -> None:
        self.reopen(how)

    # -------------------------------------------------------------- invariant

    @invariant()
    def matches_model(self) -> None:
        if self.alloc is None:
            return
        bits = np.unpackbits(np.frombuffer(self.a.bitmap(), np.uint8), bitorder="little")
        assert np.array_equal(bits[: self.nblocks].astype(bool), self.model)
        stats = self.a.stats()
        assert stats.free_blocks == int((~self.model).sum())
        assert stats.largest_free == longest_free(self.model)
        assert stats.free_extents == len(runs(~self.model))
        self.a._check()


AllocatorMachine.TestCase.settings = settings(
    settings.default,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestAllocatorModel = AllocatorMachine.TestCase
