"""Concurrency helpers of the store: a shared/exclusive lock and extent pins.

:class:`SharedLock` lets every data operation run together while
``fsck`` and ``close`` wait for them and run alone.  :class:`ExtentPins`
keeps the extents a reader is reading from being freed under it: readers
resolve a version and pin its extents in one step (:meth:`ExtentPins.resolve`),
and a free of a pinned extent is deferred until the last reader unpins it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from dwcore.pool import Extent

__all__ = ["ExtentPins", "SharedLock"]

_T = TypeVar("_T")
PinKey = tuple[str, Extent]


class SharedLock:
    """Many holders in shared mode, or one in exclusive mode (exclusive waiters go first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock in shared mode for the ``with`` block."""
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                if not self._shared:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone for the ``with`` block."""
        with self._cond:
            self._waiting += 1
            try:
                while self._exclusive or self._shared:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class ExtentPins:
    """Reference counts of extents being read, and the frees waiting for them."""

    def __init__(self, free: Callable[[str, Extent], None]) -> None:
        self._free = free
        self._lock = threading.Lock()
        self._counts: Counter[PinKey] = Counter()
        self._deferred: set[PinKey] = set()

    def resolve(self, find: Callable[[], _T], extents: Callable[[_T], Iterable[PinKey]]) -> _T:
        """Run ``find`` (a catalog look-up) and pin the extents of its result, atomically
        with respect to :meth:`free`."""
        with self._lock:
            found = find()
            for item in extents(found):
                self._counts[item] += 1
            return found

    def unpin(self, items: Iterable[PinKey]) -> None:
        """Drop one pin of each item; frees deferred on an item happen now if it is unpinned."""
        due = []
        with self._lock:
            for item in items:
                self._counts[item] -= 1
                if self._counts[item] <= 0:
                    del self._counts[item]
                    if item in self._deferred:
                        self._deferred.discard(item)
                        due.append(item)
        for pool, ext in due:
            self._free(pool, ext)

    def free(self, items: Iterable[PinKey]) -> None:
        """Free each item now, or when its last reader unpins it."""
        now = []
        with self._lock:
            for item in items:
                if self._counts.get(item):
                    self._deferred.add(item)
                else:
                    now.append(item)
        for pool, ext in now:
            self._free(pool, ext)

    def held(self, pool: str) -> list[Extent]:
        """Extents of ``pool`` pinned or waiting to be freed (still in use by a reader)."""
        with self._lock:
            return [e for p, e in set(self._counts) | self._deferred if p == pool]
