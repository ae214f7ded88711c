"""Group commit: concurrent writers share one pool sync and one catalog transaction.

A writer hands its change to :meth:`GroupCommit.submit` and waits.  The first
writer to find no batch in progress becomes the leader: it takes every change
queued so far, runs them as one batch (the instance syncs the pools they
wrote to, then commits them in one catalog transaction) and wakes the
writers of that batch.  Writers that arrive meanwhile queue for the next
batch, so under load batches grow by themselves and a lone writer never
waits for anyone.

Commit delay (PostgreSQL's ``commit_delay``): a writer announces itself with
:meth:`GroupCommit.writing` while it writes its data, before it submits.  A
leader that finds other writers still writing waits up to ``delay`` seconds
for them to queue, so one flush and one transaction serve them all; with no
other writer active it starts at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["DEFAULT_DELAY", "GroupCommit", "Request", "Writer"]

#: How long a leader waits at most for writers still writing their data.
DEFAULT_DELAY = 0.002


class Request:
    """One change waiting for its batch: what to commit, which pools it wrote to, the outcome."""

    __slots__ = ("change", "done", "error", "pools", "result")

    def __init__(self, change: Any, pools: frozenset[str]) -> None:
        self.change = change
        self.pools = pools
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class Writer:
    """A writer announced by :meth:`GroupCommit.writing`."""

    __slots__ = ("queued",)

    def __init__(self) -> None:
        self.queued = False


class GroupCommit:
    """Leader/follower batching of commits; ``run(batch)`` sets each request's result."""

    def __init__(self, run: Callable[[list[Request]], None], delay: float = DEFAULT_DELAY) -> None:
        self._run = run
        self.delay = delay
        self._cond = threading.Condition()
        self._queue: list[Request] = []
        self._busy = False
        self._writing = 0  # writers inside writing() that have not submitted yet
        #: Sizes of the batches run so far are summed here (for tests and the bench).
        self.batches = 0
        self.committed = 0

    @contextmanager
    def writing(self) -> Iterator[Writer]:
        """Around a writer's data writes and its :meth:`submit` (pass it the writer): lets
        a leader wait for it."""
        writer = Writer()
        with self._cond:
            self._writing += 1
        try:
            yield writer
        finally:
            with self._cond:
                if not writer.queued:  # left without submitting
                    writer.queued = True
                    self._writing -= 1
                    self._cond.notify_all()

    def submit(
        self, change: Any, pools: frozenset[str] = frozenset(), writer: Writer | None = None
    ) -> Any:
        """Commit ``change`` in the next batch; returns its result or raises its error.

        ``writer``: what :meth:`writing` yielded, when the change was written in it."""
        req = Request(change, pools)
        with self._cond:
            self._queue.append(req)
            if writer is not None and not writer.queued:
                writer.queued = True
                self._writing -= 1
                if self._busy:
                    self._cond.notify_all()  # a gathering leader may be waiting for this one
            while not req.done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                self._gather()
                batch, self._queue = self._queue, []
                self._cond.release()
                try:
                    self._run(batch)
                except BaseException as exc:
                    for r in batch:
                        if not r.done:
                            r.error, r.done = exc, True
                finally:
                    self._cond.acquire()
                    self._busy = False
                    for r in batch:
                        r.done = True
                    self.batches += 1
                    self.committed += len(batch)
                    self._cond.notify_all()
        if req.error is not None:
            raise req.error
        return req.result

    def _gather(self) -> None:
        """As leader (lock held): wait up to ``delay`` while writers that will submit
        are still writing."""
        if self.delay <= 0 or self._writing == 0:
            return
        deadline = time.monotonic() + self.delay
        while self._writing > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)
