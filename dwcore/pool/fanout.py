"""Per-device I/O spread over the calling thread and a few helper threads.

A pool's data path issues one large request per device; the system calls
release the GIL, so on a machine with more than one core the requests of
different devices proceed at once (on disks: every spindle busy at once; on
RAM-backed files: the copies run on several cores).  :class:`Fanout` runs a
list of such calls, the caller taking a share itself, and returns each
call's exception (or None) in order, so the caller decides what a failure
means.  Small requests stay on the calling thread: a hand-off costs more
than it saves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["Fanout"]


def _run_all(calls: Sequence[Callable[[], object]]) -> list[BaseException | None]:
    out: list[BaseException | None] = []
    for call in calls:
        try:
            call()
        except BaseException as exc:
            out.append(exc)
        else:
            out.append(None)
    return out


class Fanout:
    """Run per-device calls in parallel: ``helpers`` threads plus the caller.

    ``helpers=None`` picks ``min(cpus - 1, 3)``; 0 runs everything inline.
    """

    def __init__(self, helpers: int | None = None) -> None:
        if helpers is None:
            helpers = max(0, min((os.cpu_count() or 1) - 1, 3))
        self.helpers = helpers
        self._pool = (
            ThreadPoolExecutor(helpers, thread_name_prefix="dwcore-io") if helpers else None
        )

    def shares(self, n_calls: int, nbytes: int = 1 << 30) -> int:
        """How many threads (the caller included) :meth:`run` spreads ``n_calls`` calls
        moving ``nbytes`` over."""
        if self._pool is None or n_calls < 2 or nbytes < (256 << 10):
            return 1
        return min(self.helpers + 1, n_calls)

    def run(
        self, calls: Sequence[Callable[[], object]], nbytes: int = 1 << 30
    ) -> list[BaseException | None]:
        """Run every call; returns each one's exception or None, in order.

        ``nbytes`` (the bytes the calls move in all) below 256 KiB keeps them
        on the calling thread.
        """
        shares = self.shares(len(calls), nbytes)
        if shares == 1 or self._pool is None:
            return _run_all(calls)
        parts = [calls[i::shares] for i in range(shares)]
        futures: list[Future[list[BaseException | None]]] = [
            self._pool.submit(_run_all, part) for part in parts[1:]
        ]
        results = [_run_all(parts[0])] + [f.result() for f in futures]
        out: list[BaseException | None] = [None] * len(calls)
        for i, res in enumerate(results):
            out[i::shares] = res
        return out

    def close(self) -> None:
        """Stop the helper threads (after the calls in flight)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
