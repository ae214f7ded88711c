"""Over-read and over-write detection with PROT_NONE guard pages.

Each case runs ``guard_worker.py`` in a subprocess: buffers end exactly at
(or start exactly after) an inaccessible page, so a kernel that touches one
byte outside its buffers crashes that process with SIGSEGV, which is
reported here as a failure naming the last operation it started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from buffers import GuardedArena

WORKER = Path(__file__).with_name("guard_worker.py")


def describe(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


@pytest.mark.parametrize("op", ["rs_encode", "rs_reconstruct", "parity", "recover"])
def test_kernels_stay_inside_their_buffers(op: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(WORKER), op], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-20:])
        pytest.fail(
            f"guard-page worker {op!r}: {describe(proc.returncode)}"
            + (" (a kernel read or wrote outside its buffers)" if proc.returncode < 0 else "")
            + f"\n--- stderr tail ---\n{tail}"
        )
    assert proc.stdout.strip() == "ok"


def test_guard_page_really_faults() -> None:
    """The harness itself: touching the byte after an at_end buffer kills the process."""
    code = (
        "import numpy as np\n"
        "from buffers import GuardedArena\n"
        "a = GuardedArena(1, 100)\n"
        "v = a.at_end(100)\n"
        "v[:] = 1\n"
        "print('inside ok', flush=True)\n"
        "base = a.array\n"
        "off = v.ctypes.data - a.addr\n"
        "print(int(base[off + 100]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
    )
    assert "inside ok" in proc.stdout
    assert proc.returncode == -signal.SIGSEGV, describe(proc.returncode)


def test_arena_placement() -> None:
    arena = GuardedArena(3, 5000)
    end = arena.at_end(4097)
    start = arena.at_start(33)
    page = arena.page
    assert (end.ctypes.data + 4097) % page == 0
    assert start.ctypes.data % page == 0
    end[:] = 7
    start[:] = 9
    assert int(end.sum()) == 7 * 4097 and int(start.sum()) == 9 * 33
    assert isinstance(end, np.ndarray) and end.flags.writeable
