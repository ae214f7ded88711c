"""The issue's performance targets, judged from the rows of one run.

Each :class:`Target` takes the worst case over the shapes the run measured
(the minimum of a ratio, the maximum of an overhead) and says whether it
meets the bar; ``median`` is shown for context.  Ratios to ISA-L and to
scalar are on thread CPU time (immune to preemption); the two-thread speedup
is on wall time, as its definition requires.  A target the run did not
measure (a group left out, a size not selected, no ISA-L, no AVX2) has
``met = None`` and says why.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dwcore.bench.isa import RS_SIMD_TARGET
from dwcore.bench.kernels import format_size
from dwcore.bench.results import BenchResult, IsaRow, KernelRow, OverheadRow, ThreadsRow

__all__ = [
    "ISAL_GOAL_IN_CACHE",
    "ISAL_TARGET",
    "OVERHEAD_TARGET_PCT",
    "PQ_TARGET",
    "TARGET_SIZES",
    "THREADS_TARGET",
    "XOR_TARGET",
    "Target",
    "evaluate",
]

#: Fragment sizes the targets are judged at.
TARGET_SIZES: tuple[int, ...] = (64 << 10, 1 << 20)
#: dwcore ÷ ISA-L for Reed-Solomon encode and decode, every shape, in and out of cache.
ISAL_TARGET = 1.0
#: The goal for the same ratio in cache.
ISAL_GOAL_IN_CACHE = 1.3
#: P+Q ÷ ISA-L pq_gen in cache.
PQ_TARGET = 2.0
#: XOR ÷ ISA-L xor_gen.
XOR_TARGET = 1.0
#: Largest Python call overhead at 1 MiB, percent of the raw kernel's time.
OVERHEAD_TARGET_PCT = 5.0
#: Two threads ÷ one thread (wall time) for dwcore's encode; the ideal is 2.
THREADS_TARGET = 1.8

#: How a row's ``cache`` field reads in a target's name.
_WHERE = {"in": "in cache", "out": "out of cache"}

#: (label of a shape, value) pairs that a target is judged on.
Values = list[tuple[str, float]]


@dataclass(frozen=True)
class Target:
    """One target: what was measured against what bar, and whether it was met.

    ``value`` is the judged figure (the worst case: ``worst`` names its shape)
    and ``median`` the median over the shapes; both None when ``met`` is None
    (not measured: ``measured`` says why).  ``goal``/``goal_met`` carry a
    second, stricter bar where the issue sets one.
    """

    name: str
    measured: str
    target: str
    met: bool | None
    value: float | None = None
    median: float | None = None
    worst: str | None = None
    goal: str | None = None
    goal_met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dict(self.__dict__)


def _not_measured(name: str, target: str, why: str) -> Target:
    return Target(name=name, measured=f"not measured: {why}", target=target, met=None)


def _judge(
    name: str,
    values: Values,
    *,
    bar: float,
    higher_is_better: bool = True,
    unit: str = "",
    digits: int = 2,
    goal: float | None = None,
    context: str = "",
    why_missing: str,
) -> Target:
    """Judge the worst of ``values`` against ``bar`` (and ``goal``, when given)."""
    sign = "≥" if higher_is_better else "≤"
    word = "min" if higher_is_better else "max"
    target_text = f"{word} {sign} {bar:.{digits}f}{unit}"
    goal_text = None if goal is None else f"{word} {sign} {goal:.{digits}f}{unit}"
    if not values:
        return _not_measured(name, target_text, why_missing)
    pick = min if higher_is_better else max
    worst_label, worst = pick(values, key=lambda lv: lv[1])
    median = statistics.median(v for _, v in values)

    def passes(threshold: float) -> bool:
        return bool(worst >= threshold if higher_is_better else worst <= threshold)

    measured = (
        f"{word} {worst:.{digits}f}{unit} ({worst_label}) · median {median:.{digits}f}{unit}"
        f" · {len(values)} case{'s' if len(values) != 1 else ''}"
    )
    if context:
        measured += f" · {context}"
    return Target(
        name=name,
        measured=measured,
        target=target_text,
        met=passes(bar),
        value=float(worst),
        median=float(median),
        worst=worst_label,
        goal=goal_text,
        goal_met=None if goal is None else passes(goal),
    )


def _kernel_values(
    rows: Sequence[KernelRow], op: str, cache: str, label: Callable[[KernelRow], str]
) -> Values:
    out = []
    for r in rows:
        if r.op == op and r.cache == cache and r.fragment in TARGET_SIZES:
            value = r.vs_isal("cpu")
            if math.isfinite(value):  # NaN where ISA-L was not measured
                out.append((label(r), value))
    return out


def _rs_targets(rows: Sequence[KernelRow], why: str) -> list[Target]:
    out = []
    for op in ("encode", "decode"):
        for size in TARGET_SIZES:
            for cache in ("in", "out"):
                values = _kernel_values(
                    [r for r in rows if r.fragment == size],
                    op,
                    cache,
                    lambda r: f"{r.k}+{r.m}",
                )
                out.append(
                    _judge(
                        f"{op} ÷ ISA-L, {format_size(size)}, {_WHERE[cache]}",
                        values,
                        bar=ISAL_TARGET,
                        goal=ISAL_GOAL_IN_CACHE if cache == "in" else None,
                        why_missing=why,
                    )
                )
    return out


def _raid_targets(rows: Sequence[KernelRow], why: str) -> list[Target]:
    def label(r: KernelRow) -> str:
        return f"{r.k} disks {format_size(r.fragment)}"

    sizes = " & ".join(format_size(s) for s in TARGET_SIZES)
    out = [
        _judge(
            f"P+Q ÷ ISA-L pq_gen, {sizes}, in cache",
            _kernel_values(rows, "pq", "in", label),
            bar=PQ_TARGET,
            why_missing=why,
        )
    ]
    for cache in ("in", "out"):
        out.append(
            _judge(
                f"XOR ÷ ISA-L xor_gen, {sizes}, {_WHERE[cache]}",
                _kernel_values(rows, "xor", cache, label),
                bar=XOR_TARGET,
                why_missing=why,
            )
        )
    return out


def _simd_target(rows: Sequence[IsaRow], available: Sequence[str]) -> Target:
    name = "AVX2 ÷ scalar, Reed-Solomon encode, 64 KiB in cache"
    avx2 = [r for r in rows if r.op == "encode" and r.isa == "avx2"]
    values = [(f"{r.k}+{r.m}", r.vs_scalar("cpu")) for r in avx2]
    values = [(label, v) for label, v in values if math.isfinite(v)]
    refs = [f"{r.k}+{r.m} {r.isal_vs_base('cpu'):.0f}×" for r in avx2 if r.isal_base is not None]
    if "avx2" not in available:
        why = "this CPU (or OS) cannot run AVX2"
    else:
        why = "the isa group was not run"
    return _judge(
        name,
        values,
        bar=RS_SIMD_TARGET,
        unit="×",
        digits=1,
        context=f"ISA-L avx2 ÷ base: {', '.join(refs)}" if refs else "",
        why_missing=why,
    )


def _overhead_target(rows: Sequence[OverheadRow]) -> Target:
    values = [(f"{r.op} {r.k}+{r.m}", r.overhead_pct("cpu")) for r in rows if r.fragment == 1 << 20]
    return _judge(
        "Python call overhead at 1 MiB, % of the raw kernel",
        [(label, v) for label, v in values if math.isfinite(v)],
        bar=OVERHEAD_TARGET_PCT,
        higher_is_better=False,
        unit=" %",
        digits=1,
        why_missing="the overhead group was not run",
    )


def _threads_target(rows: Sequence[ThreadsRow], cpu_count: int | None) -> Target:
    def pick(impl: str) -> Values:
        return [
            (f"{r.k}+{r.m} {format_size(r.fragment)}", r.speedup)
            for r in rows
            if r.impl == impl and r.fragment in TARGET_SIZES and math.isfinite(r.speedup)
        ]

    isal = pick("isal")
    context = ""
    if isal:
        context = (
            f"ISA-L min {min(v for _, v in isal):.2f} · "
            f"median {statistics.median(v for _, v in isal):.2f}"
        )
    if cpu_count is not None and cpu_count < 2:
        why = "this machine has one CPU"
    else:
        why = "the threads group was not run at 64 KiB or 1 MiB"
    return _judge(
        "Two-thread encode speedup (wall), in cache",
        pick("dwcore"),
        bar=THREADS_TARGET,
        context=context,
        why_missing=why,
    )


def evaluate(result: BenchResult) -> list[Target]:
    """Every target, judged from ``result``'s rows (unmeasured ones say why)."""
    kernels = [r for r in result.rows if isinstance(r, KernelRow)]
    meta = result.meta
    no_isal = meta.get("isal") is None
    why_kernels = (
        "ISA-L is not installed"
        if no_isal
        else "not in this run (group, size or out-of-cache runs not selected)"
    )
    return [
        *_rs_targets(kernels, why_kernels),
        *_raid_targets(kernels, why_kernels),
        _simd_target(
            [r for r in result.rows if isinstance(r, IsaRow)],
            meta.get("available_isas", []),
        ),
        _overhead_target([r for r in result.rows if isinstance(r, OverheadRow)]),
        _threads_target(
            [r for r in result.rows if isinstance(r, ThreadsRow)], meta.get("cpu_count")
        ),
        *_checksum_targets(result, no_isal),
        *_alloc_targets(result),
    ]


def _checksum_targets(result: BenchResult, no_isal: bool) -> list[Target]:
    # Imported here: dwcore.bench.checksum builds its targets with _judge.
    from dwcore.bench.checksum import ChecksumRow, checksum_targets

    rows = [r for r in result.rows if isinstance(r, ChecksumRow)]
    return checksum_targets(rows, no_isal)


def _alloc_targets(result: BenchResult) -> list[Target]:
    # Imported here: dwcore.bench.alloc builds its targets with _judge.
    from dwcore.bench.alloc import AllocRow, alloc_targets

    rows = [r for r in result.rows if isinstance(r, AllocRow)]
    return alloc_targets(rows)
