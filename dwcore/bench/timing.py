"""Interleaved timing of competing implementations on thread CPU time and wall time.

A *batch* is a callable ``run(count)`` that performs ``count`` calls of one
implementation; a *sampler* runs a batch and returns its :class:`Sample`
(:func:`time_batch` for the calling thread, or a custom one for work spread
over threads).  :func:`measure_interleaved` calibrates each contender to
last at least ``target_ns``, then for every repetition times each one in
turn (dwcore, then ISA-L, then memcpy, ...) so slow drifts of the machine
(clock, neighbours, thermal) hit all of them alike, and reports medians.
"""

from __future__ import annotations

import functools
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "Batch",
    "Contender",
    "Measurement",
    "Sample",
    "Sampler",
    "calibrate",
    "gc_paused",
    "measure_interleaved",
    "time_batch",
]

Batch = Callable[[int], None]

#: Never let calibration run a sample longer than this many calls.
_MAX_CALLS = 1 << 24


@dataclass(frozen=True)
class Sample:
    """One timed batch: ``calls`` calls took ``wall_ns`` elapsed and ``cpu_ns`` thread CPU."""

    calls: int
    wall_ns: int
    cpu_ns: int


Sampler = Callable[[int], Sample]


@dataclass(frozen=True)
class Contender:
    """A named implementation: how to time ``n`` calls, and the payload bytes per call."""

    name: str
    sample: Sampler
    bytes_per_call: int

    @classmethod
    def of_batch(cls, name: str, batch: Batch, bytes_per_call: int) -> Contender:
        """A contender timed on the calling thread with :func:`time_batch`."""
        return cls(name, functools.partial(time_batch, batch), bytes_per_call)


@dataclass(frozen=True)
class Measurement:
    """Median throughput of one implementation over the repetitions.

    ``bytes_per_call`` is the payload counted per call (data bytes, k × fragment).
    """

    calls_per_sample: int
    bytes_per_call: int
    wall_ns_per_call: float
    cpu_ns_per_call: float
    samples: int

    @property
    def wall_gbps(self) -> float:
        """Payload GB/s (10^9 bytes per second) on wall time."""
        return self.bytes_per_call / self.wall_ns_per_call if self.wall_ns_per_call else math.inf

    @property
    def cpu_gbps(self) -> float:
        """Payload GB/s on the calling thread's CPU time."""
        return self.bytes_per_call / self.cpu_ns_per_call if self.cpu_ns_per_call else math.inf

    @classmethod
    def from_samples(cls, samples: Sequence[Sample], bytes_per_call: int) -> Measurement:
        """Medians of per-call wall and CPU time over ``samples``."""
        return cls(
            calls_per_sample=samples[0].calls,
            bytes_per_call=bytes_per_call,
            wall_ns_per_call=statistics.median(s.wall_ns / s.calls for s in samples),
            cpu_ns_per_call=statistics.median(s.cpu_ns / s.calls for s in samples),
            samples=len(samples),
        )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector out of timed regions."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_batch(batch: Batch, calls: int) -> Sample:
    """Run ``batch(calls)`` once, timing wall (perf_counter) and thread CPU time."""
    w0 = time.perf_counter_ns()
    c0 = time.thread_time_ns()
    batch(calls)
    c1 = time.thread_time_ns()
    w1 = time.perf_counter_ns()
    return Sample(calls, w1 - w0, c1 - c0)


def calibrate(sample: Sampler, target_ns: int) -> int:
    """The number of calls for one sample to last at least ``target_ns`` of wall time.

    The first call warms caches, tables and lazily built state and is not
    counted.
    """
    sample(1)
    calls = 1
    while True:
        elapsed = max(sample(calls).wall_ns, 1)
        if elapsed >= target_ns or calls >= _MAX_CALLS:
            return calls
        calls = min(_MAX_CALLS, max(calls + 1, math.ceil(calls * target_ns * 1.1 / elapsed)))


def measure_interleaved(
    contenders: Sequence[Contender], repeats: int, target_ns: int
) -> dict[str, Measurement]:
    """Median per-call times of each contender, timed round-robin ``repeats`` times.

    Each contender is first calibrated on its own; then every repetition
    times each one once, in the order given.
    """
    with gc_paused():
        calls = [calibrate(c.sample, target_ns) for c in contenders]
        samples: list[list[Sample]] = [[] for _ in contenders]
        for _ in range(repeats):
            for c, n, out in zip(contenders, calls, samples, strict=True):
                out.append(c.sample(n))
    return {
        c.name: Measurement.from_samples(out, c.bytes_per_call)
        for c, out in zip(contenders, samples, strict=True)
    }
