"""Allocate, free and sync in a loop until killed (the kill -9 crash trials).

Usage: ``python alloc_crash_worker.py PATH LOG SEED``.  test_alloc_crash.py
mostly forks and calls :func:`run` in the child (no interpreter start-up per
trial); the script form is exercised too.

Every operation is appended to LOG as one line, with one ``write`` each,
right after the allocator returns, so a SIGKILL can never leave half a
line.  The parent replays the log to know exactly what the allocator held
when each sync began:

* ``A start n`` — blocks [start, start+n) allocated (one line per extent);
* ``F start n`` — freed;
* ``S`` — a sync is about to start (the allocator's state = the replay so far);
* ``K`` — that sync returned (acknowledged).
"""

from __future__ import annotations

import os
import random
import sys

from dwcore.alloc import BlockAllocator
from dwcore.errors import NoSpaceError


def run(path: str, log_fd: int, seed: int) -> None:
    """The crash loop; never returns (the parent kills it)."""
    rng = random.Random(seed)
    alloc = BlockAllocator.open(path)
    held: list[tuple[int, int]] = []
    write = os.write

    def log(line: str) -> None:
        write(log_fd, line.encode())

    while True:
        r = rng.random()
        if r < 0.40 or not held:
            n = rng.randint(1, 96)
            try:
                if rng.random() < 0.25:
                    extents = alloc.alloc(n, contiguous=False)
                else:
                    extents = [(alloc.alloc(n), n)]
            except NoSpaceError:
                extents = []
            held.extend(extents)
            log("".join(f"A {s} {k}\n" for s, k in extents))
        elif r < 0.48:
            count, n = rng.randint(1, 16), rng.randint(1, 8)
            try:
                starts = alloc.alloc_batch(count, n)
            except NoSpaceError:
                continue
            held.extend((int(s), n) for s in starts)
            log("".join(f"A {s} {n}\n" for s in starts))
        elif r < 0.88:
            i = rng.randrange(len(held))
            held[i], held[-1] = held[-1], held[i]
            s, n = held.pop()
            alloc.free(s, n)
            log(f"F {s} {n}\n")
        else:
            log("S\n")
            alloc.sync()
            log("K\n")


def main(argv: list[str]) -> int:
    path, log_path, seed = argv[1], argv[2], int(argv[3])
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    run(path, fd, seed)
    return 0  # pragma: no cover - run() only ends by SIGKILL


if __name__ == "__main__":
    sys.exit(main(sys.argv))
