"""Content hashes (blake3) computed beside the data writes of a put.

blake3 releases the GIL while it hashes, and so do the pool's checksum,
parity and I/O calls: a large piece is hashed on a helper thread while the
caller writes it, so a 1 MiB put pays for the slower of the two, not both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import blake3

__all__ = ["OVERLAP_MIN_BYTES", "PieceHasher"]

#: Pieces from this size on are hashed on a helper thread; below it the hand-off
#: costs more than the overlap saves.
OVERLAP_MIN_BYTES = 128 * 1024

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _helpers() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            workers = max(1, min(4, os.cpu_count() or 1))
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="dwcore-hash")
        return _executor


def _forget_helpers() -> None:
    """In a forked child the helper threads do not exist: start afresh when needed."""
    global _executor, _lock
    _executor = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_helpers)


class PieceHasher:
    """The blake3 hash of an object's pieces, fed in order through :meth:`update_while`."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = blake3.blake3()

    def update_while(self, piece: Any, work: Callable[[], T]) -> T:
        """Hash ``piece`` (bytes-like) while ``work()`` runs; returns what ``work`` returns.

        The hash of ``piece`` is complete when this returns or raises, so the
        caller may reuse its buffer and the next piece follows it in order.
        """
        if len(piece) < OVERLAP_MIN_BYTES:
            self._hash.update(piece)
            return work()
        pending = _helpers().submit(self._hash.update, piece)
        try:
            return work()
        finally:
            pending.result()

    def digest(self) -> bytes:
        """The 32-byte blake3 digest of everything fed so far."""
        return self._hash.digest()
