"""Group commit: concurrent writers share one pool sync and one catalog transaction.

A writer hands its change to :meth:`GroupCommit.submit` and waits.  The first
writer to find no batch in progress becomes the leader: it takes every change
queued so far, runs them as one batch (the instance syncs the pools they
wrote to, then commits them in one catalog transaction) and wakes the
writers of that batch.  Writers that arrive meanwhile queue for the next
batch, so under load batches grow by themselves and a lone writer never
waits for anyone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["GroupCommit", "Request"]


class Request:
    """One change waiting for its batch: what to commit, which pools it wrote to, the outcome."""

    __slots__ = ("change", "done", "error", "pools", "result")

    def __init__(self, change: Any, pools: frozenset[str]) -> None:
        self.change = change
        self.pools = pools
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Leader/follower batching of commits; ``run(batch)`` sets each request's result."""

    def __init__(self, run: Callable[[list[Request]], None]) -> None:
        self._run = run
        self._cond = threading.Condition()
        self._queue: list[Request] = []
        self._busy = False
        #: Sizes of the batches run so far are summed here (for tests and the bench).
        self.batches = 0
        self.committed = 0

    def submit(self, change: Any, pools: frozenset[str] = frozenset()) -> Any:
        """Commit ``change`` in the next batch; returns its result or raises its error."""
        req = Request(change, pools)
        with self._cond:
            self._queue.append(req)
            while not req.done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
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
