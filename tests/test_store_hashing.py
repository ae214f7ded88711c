"""The content hasher a put feeds its pieces through (dwcore.store.hashing)."""

from __future__ import annotations

import os
import signal
import threading

import blake3
import pytest

from dwcore.store import hashing
from dwcore.store.hashing import OVERLAP_MIN_BYTES, PieceHasher


@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [1, OVERLAP_MIN_BYTES - 1],
        [OVERLAP_MIN_BYTES, 7, 3 * OVERLAP_MIN_BYTES + 5],
        [4 << 20, 4 << 20, 123],
    ],
)
def test_hash_of_pieces_is_blake3_of_the_whole(sizes: list[int]) -> None:
    pieces = [os.urandom(n) for n in sizes]
    hasher = PieceHasher()
    seen = []
    for i, piece in enumerate(pieces):
        seen.append(hasher.update_while(memoryview(piece), lambda i=i: i * 10))
    assert seen == [i * 10 for i in range(len(pieces))]
    assert hasher.digest() == blake3.blake3(b"".join(pieces)).digest()


def test_large_pieces_hash_beside_the_work_and_finish_before_returning() -> None:
    piece = os.urandom(OVERLAP_MIN_BYTES)
    hasher = PieceHasher()
    caller = threading.get_ident()
    on: list[int] = []

    def work() -> str:
        on.append(threading.get_ident())
        return "written"

    assert hasher.update_while(piece, work) == "written"
    assert on == [caller]  # the work runs on the caller's thread, the hash on a helper
    assert hasher.digest() == blake3.blake3(piece).digest()


def test_a_failing_work_still_leaves_the_piece_hashed_in_order() -> None:
    first, second = os.urandom(OVERLAP_MIN_BYTES * 2), os.urandom(100)
    hasher = PieceHasher()

    def fail() -> None:
        raise OSError("device gone")

    with pytest.raises(OSError, match="device gone"):
        hasher.update_while(first, fail)
    hasher.update_while(second, lambda: None)
    assert hasher.digest() == blake3.blake3(first + second).digest()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_hashes_with_helpers_of_its_own() -> None:
    piece = os.urandom(OVERLAP_MIN_BYTES)
    PieceHasher().update_while(piece, lambda: None)  # the parent's helpers exist now
    assert hashing._executor is not None
    pid = os.fork()
    if pid == 0:  # child: would hang on the parent's vanished helper threads
        try:
            signal.alarm(20)  # a hang kills the child instead of the test run
            h = PieceHasher()
            h.update_while(piece, lambda: None)
            os._exit(0 if h.digest() == blake3.blake3(piece).digest() else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
