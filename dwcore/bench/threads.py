"""Do two threads encoding at once scale?  Two threads on distinct in-cache buffers
against one thread encoding both buffer sets in turn.

dwcore releases the GIL inside its kernels (on shards of 2 KiB or more) and
ctypes releases it around ISA-L's, so both should approach a speedup of 2 on
two free cores; a lower figure points at the GIL, shared caches or memory.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from dwcore.bench.arena import hot_set
from dwcore.bench.isal import Isal
from dwcore.bench.kernels import encode_tables
from dwcore.bench.results import ThreadsRow
from dwcore.bench.timing import Batch, Contender, Sample, measure_interleaved, time_batch
from dwcore.ec import ReedSolomon

__all__ = ["measure_threads"]

Call = Callable[[], object]


def _both_in_turn(a: Call, b: Call) -> Batch:
    def run(count: int) -> None:
        for _ in range(count):
            a()
            b()

    return run


def _repeat(call: Call) -> Batch:
    def run(count: int) -> None:
        for _ in range(count):
            call()

    return run


def _two_threads(a: Call, b: Call, calls: int) -> Sample:
    """Thread 1 runs ``a`` and thread 2 runs ``b``, ``calls`` times each, released together."""
    barrier = threading.Barrier(2)
    starts = [0, 0]
    ends = [0, 0]
    cpu = [0, 0]
    errors: list[BaseException] = []

    def worker(i: int, call: Call) -> None:
        try:
            barrier.wait()
            starts[i] = time.perf_counter_ns()
            c0 = time.thread_time_ns()
            _repeat(call)(calls)
            cpu[i] = time.thread_time_ns() - c0
            ends[i] = time.perf_counter_ns()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return Sample(calls, max(ends) - min(starts), sum(cpu))


def _encode_calls(k: int, m: int, fragment: int, isal: Isal | None) -> dict[str, tuple[Call, Call]]:
    """Per implementation, one encode call on each of two distinct buffer sets."""
    a, b = (hot_set(k + m, fragment, seed=8 + i) for i in range(2))
    rs = ReedSolomon(k, m)
    out: dict[str, tuple[Call, Call]] = {
        "dwcore": (
            functools.partial(rs.encode_into, a[:k], a[k:]),
            functools.partial(rs.encode_into, b[:k], b[k:]),
        )
    }
    if isal is not None:
        tables = encode_tables(isal, k, m)
        out["isal"] = (
            isal.prepare_encode(tables, a[:k], a[k:]),
            isal.prepare_encode(tables, b[:k], b[k:]),
        )
    return out


def measure_threads(
    k: int, m: int, fragment: int, isal: Isal | None, repeats: int, target_ns: int
) -> list[ThreadsRow]:
    """One row per implementation: one thread doing both sets vs two threads, interleaved."""
    calls = _encode_calls(k, m, fragment, isal)
    nbytes = 2 * k * fragment
    contenders = []
    for impl, (a, b) in calls.items():
        contenders.append(
            Contender(f"{impl}/1", functools.partial(time_batch, _both_in_turn(a, b)), nbytes)
        )
        contenders.append(Contender(f"{impl}/2", functools.partial(_two_threads, a, b), nbytes))
    result = measure_interleaved(contenders, repeats, target_ns)
    return [
        ThreadsRow(
            impl=impl,
            k=k,
            m=m,
            fragment=fragment,
            one=result[f"{impl}/1"],
            two=result[f"{impl}/2"],
        )
        for impl in calls
    ]
