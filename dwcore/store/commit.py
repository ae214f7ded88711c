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

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dwcore.errors import CommitInterruptedError

__all__ = ["DEFAULT_DELAY", "GroupCommit", "Request", "Writer", "committed"]

#: How long a leader waits at most for writers still writing their data.
DEFAULT_DELAY = 0.002


def committed(exc: BaseException) -> bool:
    """True when ``exc``, raised by :meth:`GroupCommit.submit`, leaves the change
    committed or possibly committed: an interrupt that arrived after its batch
    committed, or a :class:`CommitInterruptedError`.  The caller must then keep what
    the change references (``dwcore fsck`` frees it if it turns out unreferenced)."""
    return isinstance(exc, CommitInterruptedError) or bool(getattr(exc, "_dwcore_committed", False))


class Request:
    """One change waiting for its batch: what to commit, which pools it wrote to, the outcome."""

    __slots__ = ("change", "done", "error", "pools", "result", "wake")

    def __init__(self, change: Any, pools: frozenset[str]) -> None:
        self.change = change
        self.pools = pools
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        # held until its writer is woken: its batch is done, or it is to lead the next one
        self.wake = threading.Lock()
        self.wake.acquire()


class Writer:
    """A writer announced by :meth:`GroupCommit.writing`."""

    __slots__ = ("queued",)

    def __init__(self) -> None:
        self.queued = False


class GroupCommit:
    """Leader/follower batching of commits; ``run(batch)`` sets each request's result.

    Wake-ups are targeted: a finished batch wakes its own writers and the first
    queued writer (the next leader), and a leader gathering its batch is the only
    thread woken when a writer queues.  (One condition shared by all made every
    queued writer wake, check and sleep again at every event: with 8 writers that
    herd cost more CPU than the commits.)
    """

    def __init__(self, run: Callable[[list[Request]], None], delay: float = DEFAULT_DELAY) -> None:
        self._run = run
        self.delay = delay
        self._lock = threading.Lock()
        self._gathering = threading.Condition(self._lock)  # only a gathering leader waits
        self._queue: list[Request] = []
        self._busy = False
        self._handed: Request | None = None  # the writer handed the lead, until it takes it
        self._writing = 0  # writers inside writing() that have not submitted yet
        #: Sizes of the batches run so far are summed here (for tests and the bench).
        self.batches = 0
        self.committed = 0

    @contextmanager
    def writing(self) -> Iterator[Writer]:
        """Around a writer's data writes and its :meth:`submit` (pass it the writer): lets
        a leader wait for it."""
        writer = Writer()
        with self._lock:
            self._writing += 1
        try:
            yield writer
        finally:
            with self._lock:
                if not writer.queued:  # left without submitting
                    writer.queued = True
                    self._writing -= 1
                    self._gathering.notify()

    def submit(
        self, change: Any, pools: frozenset[str] = frozenset(), writer: Writer | None = None
    ) -> Any:
        """Commit ``change`` in the next batch; returns its result or raises its error.

        ``writer``: what :meth:`writing` yielded, when the change was written in it.

        An interrupt (KeyboardInterrupt) while the change waits withdraws it if no
        batch has taken it yet; otherwise the change is seen through first (the lead
        handed to this writer is taken, a batch holding it finishes) and the interrupt
        is raised after, with :func:`committed` telling whether the change was.
        """
        req = Request(change, pools)
        with self._lock:
            self._queue.append(req)
            if writer is not None and not writer.queued:
                writer.queued = True
                self._writing -= 1
                self._gathering.notify()  # a gathering leader may be waiting for this one
            lead = not self._busy
            if lead:
                self._busy = True
        deferred: BaseException | None = None
        if not lead:
            try:
                req.wake.acquire()  # until its batch is done or it is handed the lead
            except BaseException as exc:
                with self._lock:
                    withdrawn = self._handed is not req and req in self._queue
                    if withdrawn:
                        self._queue.remove(req)
                if withdrawn:
                    raise
                deferred = exc
                # in a running batch: wait for its end (the wake is released once then)
                while not (req.done or self._handed is req):
                    with contextlib.suppress(BaseException):
                        req.wake.acquire(timeout=0.05)
        while not req.done:
            deferred = self._lead() or deferred
        if deferred is not None:
            deferred._dwcore_committed = req.error is None or committed(req.error)  # type: ignore[attr-defined]
            raise deferred
        if req.error is not None:
            raise req.error
        return req.result

    def _lead(self) -> BaseException | None:
        """Run one batch as leader (``_busy`` is set for the caller), then wake its
        writers and hand the lead to the first writer still queued.  Returns an
        interrupt that arrived while gathering (the batch runs first)."""
        interrupted: BaseException | None = None
        with self._lock:
            self._handed = None
            try:
                self._gather()
            except BaseException as exc:  # KeyboardInterrupt: the queued changes go first
                interrupted = exc
            batch, self._queue = self._queue, []
        try:
            self._run(batch)
        except Exception as exc:
            for r in batch:
                if not r.done:
                    r.error = exc
        except BaseException as exc:  # an interrupt in mid-batch: the outcome is unknown
            interrupted = interrupted or exc
            for r in batch:
                if not r.done:
                    r.error = CommitInterruptedError(
                        f"the commit of this change was interrupted ({type(exc).__name__}); "
                        f"it may or may not have been committed. Its data is kept: "
                        f"reopening shows which, and `dwcore fsck` frees what is "
                        f"unreferenced"
                    )
        finally:
            with self._lock:
                for r in batch:
                    r.done = True
                self.batches += 1
                self.committed += len(batch)
                nxt = self._queue[0] if self._queue else None
                self._handed = nxt
                if nxt is None:
                    self._busy = False
            for r in batch:
                r.wake.release()  # (the leader's own too: nobody waits on it any more)
            if nxt is not None:
                nxt.wake.release()  # it leads the next batch (_busy stays set)
        return interrupted

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
            self._gathering.wait(left)
