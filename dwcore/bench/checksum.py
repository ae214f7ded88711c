"""Checksum benchmarks: CRC-32C against ISA-L and google_crc32c, Fletcher-4 AVX2 against scalar.

Every figure comes from :func:`~dwcore.bench.timing.measure_interleaved`
(contenders timed round-robin, median of ``repeats`` samples, thread CPU
time and wall time), after the outputs were checked against each other.

* ``crc32c`` — the kernels alone, each looping in C without the GIL
  (:func:`dwcore._native.bench_loop`): dwcore's CRC-32C against ISA-L's
  ``crc32_iscsi`` (through its C function pointer, so neither pays a Python
  call), at 64 B, 4 KiB and 1 MiB in cache and 1 MiB out of cache (rotating
  through ≥ 256 MiB).  The 1 MiB rows carry a read-bandwidth anchor: numpy's
  sum of a uint64 view of the same bytes.
* ``crc32c_blocks`` — the public call ``crc32c_blocks(buf, 4096)`` on a
  1 MiB buffer (256 blocks) against a Python loop calling
  ``google_crc32c.value`` per block (as a caller would, slicing the bytes),
  in cache and out of cache, with the same read anchor.
* ``fletcher4`` — the AVX2 kernel against the scalar one (C loops, switched
  with :func:`dwcore.native.force_isa`), 4 KiB and 1 MiB in cache.
* ``call`` — what one ``crc32c`` call on 64 bytes costs from Python, in ns,
  next to ``google_crc32c.value`` and ISA-L through ctypes.

:func:`checksum_targets` judges the issue's targets from the rows.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dwcore import checksum
from dwcore._native import bench_loop
from dwcore.bench.arena import Arena, Rotation, hot_set
from dwcore.bench.isal import Isal
from dwcore.bench.kernels import VerificationError, format_size
from dwcore.bench.results import ratio
from dwcore.bench.targets import Target, _judge
from dwcore.bench.timing import Batch, Contender, Measurement, measure_interleaved
from dwcore.native import available_isas, force_isa

try:  # optional: the comparison the batch target is set against
    import google_crc32c as _google
except ImportError:  # pragma: no cover - depends on the environment
    _google = None

__all__ = [
    "BLOCKS_BUFFER",
    "BLOCK_SIZE",
    "CALL_BYTES",
    "CALL_TARGET_NS",
    "CRC_SIZES",
    "ChecksumRow",
    "checksum_table",
    "checksum_targets",
    "checksum_tasks",
    "isal_crc32_iscsi_address",
]

#: Buffer sizes of the CRC-32C kernel rows, in cache (1 MiB also out of cache).
CRC_SIZES: tuple[int, ...] = (64, 4 << 10, 1 << 20)
#: Block size of the batch rows, and the buffer they cover per call.
BLOCK_SIZE = 4 << 10
BLOCKS_BUFFER = 1 << 20
#: Fletcher-4 sizes (in cache).
F4_SIZES: tuple[int, ...] = (4 << 10, 1 << 20)
#: Bytes per Python call of the call-cost row.
CALL_BYTES = 64

# The bars.
CRC_VS_ISAL_TARGET = 1.0  # at 4 KiB and 1 MiB, in cache
BLOCKS_GBPS_TARGET = 15.0  # crc32c_blocks over 4 KiB blocks, in cache
BLOCKS_VS_GOOGLE_TARGET = 1.6
BLOCKS_VS_READ_TARGET = 0.7  # out of cache, against the read anchor
F4_SIMD_TARGET = 2.0
CALL_TARGET_NS = 150.0

#: Run by the runner with ``_Context``-like access to options and the arena.
Task = tuple[str, Callable[[], list["ChecksumRow"]]]


@dataclass(frozen=True)
class ChecksumRow:
    """One checksum configuration: dwcore and what it is compared with, timed interleaved.

    ``baseline`` is the comparison the target is set against (ISA-L
    ``crc32_iscsi``, the google_crc32c loop, the scalar Fletcher-4 kernel),
    named by ``baseline_name``; ``anchor`` the read-bandwidth anchor (numpy
    sum of the same bytes), on 1 MiB rows.  ``others`` holds further
    contenders by name (ISA-L through ctypes on the call-cost row).
    ``size`` is the payload bytes per call; ``cache`` "in" or "out" (rotating
    over ``sets`` buffers).  ``check`` says how the output was verified.
    """

    op: str
    impl: str
    size: int
    cache: str
    sets: int
    check: str
    dwcore: Measurement
    baseline_name: str
    baseline: Measurement | None = None
    anchor: Measurement | None = None
    others: tuple[tuple[str, Measurement], ...] = ()
    kind: str = field(default="checksum", init=False)

    def vs_baseline(self, clock: str) -> float:
        """dwcore GB/s ÷ baseline GB/s on ``clock`` ("cpu" or "wall")."""
        if self.baseline is None:
            return math.nan
        return ratio(_gbps(self.dwcore, clock), _gbps(self.baseline, clock))

    def vs_anchor(self, clock: str) -> float:
        """dwcore GB/s ÷ read-anchor GB/s on ``clock``."""
        if self.anchor is None:
            return math.nan
        return ratio(_gbps(self.dwcore, clock), _gbps(self.anchor, clock))

    def measurements(self) -> list[Measurement]:
        """Every measurement of the row (for the busy-machine check)."""
        out = [self.dwcore, *(m for m in (self.baseline, self.anchor) if m is not None)]
        return out + [m for _, m in self.others]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with derived GB/s, ns per call and ratios."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "op": self.op,
            "impl": self.impl,
            "size": self.size,
            "cache": self.cache,
            "sets": self.sets,
            "check": self.check,
            "baseline_name": self.baseline_name,
        }
        named = [("dwcore", self.dwcore), ("baseline", self.baseline), ("anchor", self.anchor)]
        for name, m in [*named, *self.others]:
            out[name] = None if m is None else _measurement_json(m)
        for clock in ("cpu", "wall"):
            out[f"vs_baseline_{clock}"] = _finite_or_none(self.vs_baseline(clock))
            out[f"vs_anchor_{clock}"] = _finite_or_none(self.vs_anchor(clock))
        return out


def _gbps(m: Measurement, clock: str) -> float:
    return m.cpu_gbps if clock == "cpu" else m.wall_gbps


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _measurement_json(m: Measurement) -> dict[str, Any]:
    return {
        "calls_per_sample": m.calls_per_sample,
        "bytes_per_call": m.bytes_per_call,
        "wall_ns_per_call": m.wall_ns_per_call,
        "cpu_ns_per_call": m.cpu_ns_per_call,
        "samples": m.samples,
        "wall_gbps": m.wall_gbps,
        "cpu_gbps": m.cpu_gbps,
    }


# --------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------


def isal_crc32_iscsi_address(isal: Isal) -> int:
    """The address of ISA-L's ``crc32_iscsi`` (for :func:`dwcore._native.bench_loop`)."""
    lib = ctypes.CDLL(isal.path)
    address = ctypes.cast(lib.crc32_iscsi, ctypes.c_void_p).value
    if not address:
        raise VerificationError(f"{isal.path} has no crc32_iscsi")
    return int(address)


def _c_loop(op: str, sets: Sequence[np.ndarray], rotation: Rotation, fn: int = 0) -> Batch:
    """``count`` kernel calls in C, continuing the shared rotation."""

    def run(count: int) -> None:
        _, rotation.position = bench_loop(op, sets, count, rotation.position, fn)

    return run


def _py_loop(
    call: Callable[[np.ndarray], object], sets: Sequence[np.ndarray], rotation: Rotation
) -> Batch:
    """``count`` Python calls of ``call(buffer)``, continuing the shared rotation."""
    n = len(sets)

    def run(count: int) -> None:
        pos = rotation.position
        for _ in itertools.repeat(None, count):
            call(sets[pos])
            pos += 1
            if pos == n:
                pos = 0
        rotation.position = pos

    return run


def _read_anchor(buf: np.ndarray) -> object:
    return buf.view(np.uint64).sum()


def _google_loop(data: bytes) -> Batch:
    """``count`` times: google_crc32c.value on each 4 KiB block of ``data``, sliced in Python."""
    value = _google.value  # type: ignore[union-attr]
    starts = range(0, len(data), BLOCK_SIZE)

    def run(count: int) -> None:
        for _ in itertools.repeat(None, count):
            [value(data[i : i + BLOCK_SIZE]) for i in starts]

    return run


class _Suite:
    """The checksum configurations of one run, sharing ISA-L, buffers and timing options."""

    def __init__(
        self, isal: Isal | None, arena: Callable[[], Arena], repeats: int, target_ns: int
    ) -> None:
        self.isal = isal
        self.isal_fn = isal_crc32_iscsi_address(isal) if isal is not None else 0
        self._arena = arena
        self.repeats = repeats
        self.target_ns = target_ns

    def _cold_sets(self, size: int) -> list[np.ndarray]:
        return [s.reshape(-1) for s in self._arena().sets(1, size)]

    def _measure(self, contenders: list[Contender]) -> dict[str, Measurement]:
        return measure_interleaved(contenders, self.repeats, self.target_ns)

    def crc32c(self, size: int, cold: bool) -> list[ChecksumRow]:
        sets = self._cold_sets(size) if cold else [hot_set(1, size, seed=5).reshape(-1)]
        expected = checksum.crc32c(sets[0])
        check = "reference"
        if self.isal is not None:
            if self.isal.crc32c(sets[0]) != expected:
                raise VerificationError(f"crc32c differs from ISA-L's at {size} bytes")
            check = "isal"
        rotation = Rotation()
        contenders = [Contender.of_batch("dwcore", _c_loop("crc32c", sets, rotation), size)]
        if self.isal is not None:
            batch = _c_loop("isal_crc32_iscsi", sets, rotation, self.isal_fn)
            contenders.append(Contender.of_batch("isal", batch, size))
        if size >= BLOCKS_BUFFER:
            contenders.append(
                Contender.of_batch("read", _py_loop(_read_anchor, sets, rotation), size)
            )
        result = self._measure(contenders)
        return [
            ChecksumRow(
                op="crc32c",
                impl=checksum.implementations()["crc32c"],
                size=size,
                cache="out" if cold else "in",
                sets=len(sets),
                check=check,
                dwcore=result["dwcore"],
                baseline_name="ISA-L crc32_iscsi",
                baseline=result.get("isal"),
                anchor=result.get("read"),
            )
        ]

    def blocks(self, cold: bool) -> list[ChecksumRow]:
        size = BLOCKS_BUFFER
        sets = self._cold_sets(size) if cold else [hot_set(1, size, seed=6).reshape(-1)]
        got = checksum.crc32c_blocks(sets[0], BLOCK_SIZE)
        mv = memoryview(sets[0])
        singles = [checksum.crc32c(mv[i : i + BLOCK_SIZE]) for i in range(0, size, BLOCK_SIZE)]
        if got.tolist() != singles:
            raise VerificationError("crc32c_blocks differs from per-block crc32c")
        rotation = Rotation()
        api = functools.partial(checksum.crc32c_blocks, block_size=BLOCK_SIZE)
        contenders = [Contender.of_batch("dwcore", _py_loop(api, sets, rotation), size)]
        if _google is not None and not cold:  # the target compares in cache
            data = sets[0].tobytes()  # a caller of google_crc32c holds bytes
            starts = range(0, size, BLOCK_SIZE)
            if [_google.value(data[i : i + BLOCK_SIZE]) for i in starts] != singles:
                raise VerificationError("google_crc32c disagrees with crc32c_blocks")
            contenders.append(Contender.of_batch("google", _google_loop(data), size))
        contenders.append(Contender.of_batch("read", _py_loop(_read_anchor, sets, rotation), size))
        result = self._measure(contenders)
        return [
            ChecksumRow(
                op="crc32c_blocks",
                impl=checksum.implementations()["crc32c"],
                size=size,
                cache="out" if cold else "in",
                sets=len(sets),
                check="per-block",
                dwcore=result["dwcore"],
                baseline_name="google_crc32c per block (Python loop)",
                baseline=result.get("google"),
                anchor=result["read"],
            )
        ]

    def fletcher4(self, size: int) -> list[ChecksumRow]:
        sets = [hot_set(1, size, seed=8).reshape(-1)]
        with force_isa("scalar"):
            expected = checksum.fletcher4(sets[0])
        if checksum.fletcher4(sets[0]) != expected:
            raise VerificationError(f"fletcher4 differs from the scalar kernel at {size} bytes")
        rotation = Rotation()
        best = available_isas()[-1]

        def under(isa: str) -> Batch:
            inner = _c_loop("fletcher4", sets, rotation)

            def run(count: int) -> None:
                with force_isa(isa):
                    inner(count)

            return run

        result = self._measure(
            [
                Contender.of_batch("dwcore", under(best), size),
                Contender.of_batch("scalar", under("scalar"), size),
            ]
        )
        with force_isa(best):
            impl = checksum.implementations()["fletcher4"]
        return [
            ChecksumRow(
                op="fletcher4",
                impl=impl,
                size=size,
                cache="in",
                sets=1,
                check="scalar",
                dwcore=result["dwcore"],
                baseline_name="dwcore scalar Fletcher-4",
                baseline=result["scalar"],
            )
        ]

    def call(self) -> list[ChecksumRow]:
        data = bytes(range(CALL_BYTES))
        contenders = [Contender.of_batch("dwcore", _repeat_call(checksum.crc32c, data), CALL_BYTES)]
        if _google is not None:
            contenders.append(
                Contender.of_batch("google", _repeat_call(_google.value, data), CALL_BYTES)
            )
        if self.isal is not None:
            fn = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32)(
                self.isal_fn
            )
            isal_call = functools.partial(fn, data, CALL_BYTES)
            contenders.append(
                Contender.of_batch("isal", _repeat_call(isal_call, 0xFFFFFFFF), CALL_BYTES)
            )
        result = self._measure(contenders)
        others = (("isal_ctypes", result["isal"]),) if "isal" in result else ()
        return [
            ChecksumRow(
                op="call",
                impl=checksum.implementations()["crc32c"],
                size=CALL_BYTES,
                cache="in",
                sets=1,
                check="reference",
                dwcore=result["dwcore"],
                baseline_name="google_crc32c.value",
                baseline=result.get("google"),
                others=others,
            )
        ]


def _repeat_call(fn: Callable[[Any], object], arg: object) -> Batch:
    def run(count: int) -> None:
        for _ in itertools.repeat(None, count):
            fn(arg)

    return run


def checksum_tasks(
    isal: Isal | None,
    arena: Callable[[], Arena],
    repeats: int,
    target_ns: int,
    out_of_cache: bool = True,
) -> list[Task]:
    """The checksum group's tasks as (label, run) pairs, in execution order.

    ``arena`` returns the run's (lazily built) arena of ≥ 256 MiB for the
    out-of-cache rows; it must hold 1 MiB sets.
    """
    suite = _Suite(isal, arena, repeats, target_ns)
    tasks: list[Task] = [
        (f"checksum crc32c {format_size(s)}", functools.partial(suite.crc32c, s, False))
        for s in CRC_SIZES
    ]
    if out_of_cache:
        tasks.append(("checksum crc32c 1 MiB cold", functools.partial(suite.crc32c, 1 << 20, True)))
    tasks.append(("checksum crc32c_blocks 4 KiB", functools.partial(suite.blocks, False)))
    if out_of_cache:
        tasks.append(("checksum crc32c_blocks 4 KiB cold", functools.partial(suite.blocks, True)))
    tasks += [
        (f"checksum fletcher4 {format_size(s)}", functools.partial(suite.fletcher4, s))
        for s in F4_SIZES
    ]
    tasks.append(("checksum call 64 B", suite.call))
    return tasks


# --------------------------------------------------------------------------
# Targets and the table
# --------------------------------------------------------------------------


def checksum_targets(rows: Sequence[ChecksumRow], isal_missing: bool) -> list[Target]:
    """The issue's checksum targets judged from ``rows`` (CPU time)."""
    why = "the checksum group was not run"

    def pick(op: str, cache: str, fn: Callable[[ChecksumRow], float]) -> list[tuple[str, float]]:
        vals = [(format_size(r.size), fn(r)) for r in rows if r.op == op and r.cache == cache]
        return [(label, v) for label, v in vals if math.isfinite(v)]

    crc = [r for r in rows if r.op == "crc32c" and r.cache == "in" and r.size >= 4 << 10]
    crc_values = [(format_size(r.size), r.vs_baseline("cpu")) for r in crc]
    crc_values = [(label, v) for label, v in crc_values if math.isfinite(v)]
    call = [r for r in rows if r.op == "call"]
    call_context = ""
    if call and call[0].baseline is not None:
        call_context = f"google_crc32c {call[0].baseline.cpu_ns_per_call:.0f} ns"
    if call and call[0].others:
        call_context += f" · ISA-L via ctypes {call[0].others[0][1].cpu_ns_per_call:.0f} ns"
    return [
        _judge(
            "crc32c ÷ ISA-L crc32_iscsi, 4 KiB & 1 MiB, in cache",
            crc_values,
            bar=CRC_VS_ISAL_TARGET,
            why_missing="ISA-L is not installed" if isal_missing and rows else why,
        ),
        _judge(
            "crc32c_blocks GB/s, 4 KiB blocks, in cache",
            pick("crc32c_blocks", "in", lambda r: r.dwcore.cpu_gbps),
            bar=BLOCKS_GBPS_TARGET,
            unit=" GB/s",
            digits=1,
            why_missing=why,
        ),
        _judge(
            "crc32c_blocks ÷ google_crc32c Python loop, 4 KiB blocks, in cache",
            pick("crc32c_blocks", "in", lambda r: r.vs_baseline("cpu")),
            bar=BLOCKS_VS_GOOGLE_TARGET,
            why_missing="google_crc32c is not installed" if _google is None else why,
        ),
        _judge(
            "crc32c_blocks ÷ read bandwidth, 4 KiB blocks, out of cache",
            pick("crc32c_blocks", "out", lambda r: r.vs_anchor("cpu")),
            bar=BLOCKS_VS_READ_TARGET,
            why_missing="out-of-cache runs were not selected" if rows else why,
        ),
        _judge(
            "fletcher4 AVX2 ÷ scalar, 4 KiB & 1 MiB, in cache",
            [
                (format_size(r.size), r.vs_baseline("cpu"))
                for r in rows
                if r.op == "fletcher4" and r.impl == "avx2"
            ],
            bar=F4_SIMD_TARGET,
            unit="×",
            digits=1,
            why_missing="this CPU cannot run AVX2" if rows else why,
        ),
        _judge(
            "crc32c 64-byte call from Python, ns",
            [("64 B", r.dwcore.cpu_ns_per_call) for r in call],
            bar=CALL_TARGET_NS,
            higher_is_better=False,
            unit=" ns",
            digits=0,
            context=call_context,
            why_missing=why,
        ),
    ]


def _cell(m: Measurement | None, ns: bool = False) -> str:
    if m is None:
        return "—"
    if ns:
        return f"{m.cpu_ns_per_call:.0f} / {m.wall_ns_per_call:.0f} ns"
    return f"{m.cpu_gbps:.2f} / {m.wall_gbps:.2f}"


def _ratio(cpu: float, wall: float) -> str:
    if not math.isfinite(cpu):
        return "—"
    return f"{cpu:.2f} / {wall:.2f}"


#: Short names of the baselines for the table.
_SHORT = {
    "ISA-L crc32_iscsi": "ISA-L",
    "google_crc32c per block (Python loop)": "google loop",
    "dwcore scalar Fletcher-4": "scalar",
    "google_crc32c.value": "google",
}


def checksum_table(rows: Sequence[ChecksumRow]) -> Any:
    """The checksum rows as a rich Table (cpu / wall figures) with a legend below it."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="Checksums (cpu / wall GB/s; the call row in ns per call)", title_justify="left"
    )
    for name in ("op", "impl", "size", "cache"):
        table.add_column(name, no_wrap=True)
    for name in ("dwcore", "vs", "baseline", "÷ baseline", "read", "÷ read"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("ok", no_wrap=True)
    notes = []
    for r in rows:
        ns = r.op == "call"
        vs = r.vs_baseline("cpu")
        if ns and r.baseline is not None:  # fewer ns is better: baseline ns ÷ dwcore ns
            vs_text = _ratio(
                r.baseline.cpu_ns_per_call / r.dwcore.cpu_ns_per_call,
                r.baseline.wall_ns_per_call / r.dwcore.wall_ns_per_call,
            )
            good = r.dwcore.cpu_ns_per_call <= CALL_TARGET_NS
        else:
            vs_text = _ratio(vs, r.vs_baseline("wall"))
            good = math.isfinite(vs) and vs >= 1.0
        for name, m in r.others:
            notes.append(f"{r.op} {format_size(r.size)}: {name} {_cell(m, ns)}")
        size = format_size(r.size)
        if r.op == "crc32c_blocks":
            size = f"{r.size // BLOCK_SIZE} × {format_size(BLOCK_SIZE)}"
        table.add_row(
            r.op,
            r.impl,
            size,
            "in" if r.cache == "in" else f"out ({r.sets})",
            _cell(r.dwcore, ns),
            _SHORT.get(r.baseline_name, r.baseline_name),
            _cell(r.baseline, ns),
            Text(vs_text, style="green" if good else "red"),
            _cell(r.anchor),
            _ratio(r.vs_anchor("cpu"), r.vs_anchor("wall")),
            Text(f"✓ {r.check}", style="green"),
        )
    legend = (
        "crc32c: kernels looping in C (ISA-L crc32_iscsi through its function pointer) · "
        "crc32c_blocks: one call per 1 MiB buffer of 4 KiB blocks vs a Python loop of "
        "google_crc32c.value per block · read: numpy sum of a uint64 view of the same bytes · "
        "fletcher4: AVX2 vs scalar kernel in C loops · call: one Python call on 64 bytes"
    )
    return Group(table, *(Text(n, style="dim") for n in [*notes, legend]))
