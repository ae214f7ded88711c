"""Result rows of the kernel benchmark, ready for a table or for JSON.

Every throughput is payload GB/s (10^9 bytes per second) counting **data
bytes** only: k × fragment per call, whatever the operation writes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from dwcore.bench.timing import Measurement

__all__ = ["BenchResult", "IsaRow", "KernelRow", "OverheadRow", "Row", "ThreadsRow", "ratio"]


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when b is zero or not finite."""
    return a / b if b and math.isfinite(b) else math.nan


@dataclass(frozen=True)
class KernelRow:
    """One operation on one shape: dwcore, ISA-L and memcpy timed interleaved.

    ``cache`` is ``"in"`` (one buffer set, reused) or ``"out"`` (rotating over
    ``sets`` distinct buffer sets, ≥ 256 MiB in all).  ``check`` says how the
    output was verified before timing: ``"isal"`` (byte-identical to ISA-L),
    ``"reference"`` (to a numpy reference) or ``"roundtrip"`` (decode gave
    back the data).  ``isal`` is None when ISA-L is not installed.
    """

    op: str
    k: int
    m: int
    fragment: int
    cache: str
    sets: int
    check: str
    dwcore: Measurement
    memcpy: Measurement
    isal: Measurement | None = None
    kind: str = field(default="kernel", init=False)

    def vs_isal(self, clock: str) -> float:
        """dwcore GB/s ÷ ISA-L GB/s on ``clock`` ("cpu" or "wall")."""
        if self.isal is None:
            return math.nan
        return ratio(_gbps(self.dwcore, clock), _gbps(self.isal, clock))

    def vs_memcpy(self, clock: str) -> float:
        """dwcore GB/s ÷ memcpy GB/s on ``clock`` ("cpu" or "wall")."""
        return ratio(_gbps(self.dwcore, clock), _gbps(self.memcpy, clock))


@dataclass(frozen=True)
class OverheadRow:
    """The public Python call against the raw C kernel looping without Python."""

    op: str
    k: int
    m: int
    fragment: int
    api: Measurement
    raw: Measurement
    kind: str = field(default="overhead", init=False)

    def overhead_ns(self, clock: str) -> float:
        """Nanoseconds per call the Python layer adds, on ``clock`` ("cpu" or "wall")."""
        return _ns(self.api, clock) - _ns(self.raw, clock)

    def overhead_pct(self, clock: str) -> float:
        """That overhead as a percentage of the raw kernel's time per call."""
        return 100.0 * ratio(self.overhead_ns(clock), _ns(self.raw, clock))


@dataclass(frozen=True)
class ThreadsRow:
    """Two threads encoding distinct in-cache buffers at once vs one thread doing both.

    A call here is one encode of each buffer set (2 × k × fragment bytes).
    ``two``'s CPU time is the sum over both threads, so its cpu GB/s is the
    per-core rate and drops when the threads contend for memory.
    """

    impl: str
    k: int
    m: int
    fragment: int
    one: Measurement
    two: Measurement
    kind: str = field(default="threads", init=False)

    @property
    def speedup(self) -> float:
        """Wall time of one thread doing both ÷ wall time of two threads (ideal 2)."""
        return ratio(self.one.wall_ns_per_call, self.two.wall_ns_per_call)


@dataclass(frozen=True)
class IsaRow:
    """One operation on one shape in cache, with dwcore forced onto instruction set ``isa``.

    ``dwcore`` is the public API call on that path and ``scalar`` the same
    call on the scalar path, timed in the same interleaved rounds, so
    :meth:`vs_scalar` is what the SIMD kernel buys.  ``isal`` is ISA-L's
    entry point for the same level (``isal_symbol``, e.g.
    ``ec_encode_data_avx2``) and ``isal_base`` its scalar ``*_base`` code:
    :meth:`isal_vs_base` is the reference for :meth:`vs_scalar`.  ISA-L fields
    are None where the library, the symbol or the CPU support is missing.
    ``check`` says how dwcore's output on this path was verified.
    """

    op: str
    k: int
    m: int
    fragment: int
    isa: str
    check: str
    dwcore: Measurement
    scalar: Measurement | None
    isal_symbol: str | None = None
    isal: Measurement | None = None
    isal_base: Measurement | None = None
    kind: str = field(default="isa", init=False)

    def vs_scalar(self, clock: str) -> float:
        """dwcore on ``isa`` ÷ dwcore on scalar, GB/s on ``clock`` ("cpu" or "wall")."""
        if self.scalar is None:
            return math.nan
        return ratio(_gbps(self.dwcore, clock), _gbps(self.scalar, clock))

    def isal_vs_base(self, clock: str) -> float:
        """ISA-L's ``isal_symbol`` ÷ ISA-L's scalar ``*_base``, GB/s on ``clock``."""
        if self.isal is None or self.isal_base is None:
            return math.nan
        return ratio(_gbps(self.isal, clock), _gbps(self.isal_base, clock))

    def vs_isal(self, clock: str) -> float:
        """dwcore ÷ ISA-L at the same instruction-set level, GB/s on ``clock``."""
        if self.isal is None:
            return math.nan
        return ratio(_gbps(self.dwcore, clock), _gbps(self.isal, clock))


Row = KernelRow | OverheadRow | ThreadsRow | IsaRow


@dataclass
class BenchResult:
    """Everything one ``dwcore bench`` run measured, plus how and where."""

    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``meta`` and ``rows`` with derived GB/s and ratios."""
        return {"meta": self.meta, "rows": [_row_json(r) for r in self.rows]}


def _gbps(m: Measurement, clock: str) -> float:
    return m.cpu_gbps if clock == "cpu" else m.wall_gbps


def _ns(m: Measurement, clock: str) -> float:
    return m.cpu_ns_per_call if clock == "cpu" else m.wall_ns_per_call


def _measurement_json(m: Measurement) -> dict[str, Any]:
    out = dataclasses.asdict(m)
    out["wall_gbps"] = m.wall_gbps
    out["cpu_gbps"] = m.cpu_gbps
    return out


def _row_json(row: Row) -> dict[str, Any]:
    to_json = getattr(row, "to_json", None)
    if to_json is not None:  # rows of other groups describe themselves (bench.checksum)
        return to_json()  # type: ignore[no-any-return]
    out: dict[str, Any] = {}
    for f in dataclasses.fields(row):
        value = getattr(row, f.name)
        out[f.name] = _measurement_json(value) if isinstance(value, Measurement) else value
    if isinstance(row, KernelRow):
        for clock in ("cpu", "wall"):
            out[f"vs_isal_{clock}"] = _finite_or_none(row.vs_isal(clock))
            out[f"vs_memcpy_{clock}"] = _finite_or_none(row.vs_memcpy(clock))
    elif isinstance(row, OverheadRow):
        for clock in ("cpu", "wall"):
            out[f"overhead_ns_{clock}"] = row.overhead_ns(clock)
            out[f"overhead_pct_{clock}"] = _finite_or_none(row.overhead_pct(clock))
    elif isinstance(row, IsaRow):
        for clock in ("cpu", "wall"):
            out[f"vs_scalar_{clock}"] = _finite_or_none(row.vs_scalar(clock))
            out[f"isal_vs_base_{clock}"] = _finite_or_none(row.isal_vs_base(clock))
            out[f"vs_isal_{clock}"] = _finite_or_none(row.vs_isal(clock))
    else:
        out["speedup"] = _finite_or_none(row.speedup)
    return out


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
