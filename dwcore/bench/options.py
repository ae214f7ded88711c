"""What a kernel benchmark run covers: shapes, fragment sizes, groups, repetitions."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dwcore.errors import InvalidArgumentError

__all__ = [
    "COLD_BYTES",
    "DISKS",
    "EC_SHAPES",
    "GROUPS",
    "MIN_REPEATS",
    "SIZES",
    "BenchOptions",
    "parse_groups",
    "parse_size",
    "parse_sizes",
]

#: Reed-Solomon (k, m) shapes of the full table.
EC_SHAPES: tuple[tuple[int, int], ...] = ((4, 2), (6, 3), (8, 3), (10, 4), (12, 4), (17, 3))
#: Data-disk counts for P+Q and XOR.
DISKS: tuple[int, ...] = (4, 8, 12)
#: Fragment sizes of the full table.
SIZES: tuple[int, ...] = (4 << 10, 64 << 10, 1 << 20)
#: Benchmark groups that ``--only`` selects from.
GROUPS: tuple[str, ...] = ("ec", "pq", "xor", "isa", "overhead", "threads", "checksum", "alloc")
#: Bytes of distinct buffers an out-of-cache run rotates through.
COLD_BYTES = 256 << 20
#: Fewest timed repetitions per figure (the median of at least this many).
MIN_REPEATS = 5
#: Fragment sizes must be multiples of this (ISA-L's RAID kernels, row alignment).
SIZE_MULTIPLE = 64

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20}
_UNITS |= {"mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """``"4K"``, ``"64KiB"``, ``"1M"`` or ``"4096"`` as bytes (binary units).

    >>> parse_size("64K"), parse_size("1MiB")
    (65536, 1048576)
    """
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise InvalidArgumentError(f"size {text!r} is not a number with an optional K/M/G unit")
    size = int(match.group(1)) * _UNITS[unit]
    if size <= 0 or size % SIZE_MULTIPLE:
        raise InvalidArgumentError(
            f"size {text!r} must be a positive multiple of {SIZE_MULTIPLE} bytes"
        )
    return size


def _split(values: Iterable[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def parse_sizes(values: Iterable[str]) -> tuple[int, ...]:
    """Comma-separated and/or repeated sizes, deduplicated, ascending."""
    sizes = sorted({parse_size(v) for v in _split(values)})
    if not sizes:
        raise InvalidArgumentError("--sizes needs at least one size, e.g. 4K,64K,1M")
    return tuple(sizes)


def parse_groups(values: Iterable[str]) -> frozenset[str]:
    """Comma-separated and/or repeated group names from :data:`GROUPS`."""
    groups = _split(values)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown or not groups:
        raise InvalidArgumentError(
            f"--only takes {', '.join(GROUPS)} (comma-separated or repeated); "
            f"got {', '.join(unknown) or 'nothing'}"
        )
    return frozenset(groups)


@dataclass(frozen=True)
class BenchOptions:
    """The configurations of one run and how long each figure is measured.

    ``target_ms`` is the shortest duration of one timed sample; each figure
    is the median of ``repeats`` samples.  Overhead is measured at 1 MiB
    (and at the smallest selected size when that is smaller); the threads
    comparison runs every Reed-Solomon shape at every selected size, in cache.
    The ``isa`` group has fixed shapes and size (:mod:`dwcore.bench.isa`):
    RS 10+4 and 4+2, P+Q and XOR on 8 disks, 64 KiB in cache, per instruction
    set; its samples last ``isa_target_ms`` (shorter, as it times 7 or more
    contenders per shape, the slowest of them ISA-L's scalar code at about 13
    ms a call).  The ``checksum`` group has fixed sizes too
    (:mod:`dwcore.bench.checksum`: CRC-32C at 64 B, 4 KiB and 1 MiB, 4 KiB
    blocks, Fletcher-4, the 64-byte call cost) and uses ``target_ms``.
    The ``alloc`` group (:mod:`dwcore.bench.alloc`: the block allocator's
    C-level targets on 2**28 blocks and its Python call costs, about 5-10 s)
    has its own fixed workloads and is left out of :meth:`quick`.
    """

    groups: frozenset[str] = frozenset(GROUPS)
    ec_shapes: tuple[tuple[int, int], ...] = EC_SHAPES
    disks: tuple[int, ...] = DISKS
    sizes: tuple[int, ...] = SIZES
    out_of_cache: bool = True
    repeats: int = 7
    target_ms: float = 20.0
    cold_bytes: int = COLD_BYTES
    isa_target_ms: float = 10.0

    def __post_init__(self) -> None:
        if self.repeats < MIN_REPEATS:
            raise InvalidArgumentError(
                f"repeats must be at least {MIN_REPEATS} (figures are medians), got {self.repeats}"
            )
        if self.target_ms <= 0 or self.isa_target_ms <= 0:
            raise InvalidArgumentError(
                f"target_ms and isa_target_ms must be positive, got {self.target_ms} "
                f"and {self.isa_target_ms}"
            )
        if not self.sizes or any(s <= 0 or s % SIZE_MULTIPLE for s in self.sizes):
            raise InvalidArgumentError(
                f"sizes must be positive multiples of {SIZE_MULTIPLE}, got {self.sizes}"
            )
        if not self.groups or not self.groups <= set(GROUPS):
            raise InvalidArgumentError(f"groups must be a non-empty subset of {GROUPS}")

    @classmethod
    def quick(cls) -> BenchOptions:
        """A smoke run for CI (about half a minute): two shapes, 8 disks, 64 KiB and 1 MiB."""
        return cls(
            groups=frozenset(GROUPS) - {"alloc"},
            ec_shapes=((4, 2), (10, 4)),
            disks=(8,),
            sizes=(64 << 10, 1 << 20),
            repeats=MIN_REPEATS,
            target_ms=10.0,
            isa_target_ms=4.0,
        )

    def replace(self, **changes: object) -> BenchOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def target_ns(self) -> int:
        """``target_ms`` in nanoseconds."""
        return int(self.target_ms * 1e6)

    @property
    def isa_target_ns(self) -> int:
        """``isa_target_ms`` in nanoseconds."""
        return int(self.isa_target_ms * 1e6)

    @property
    def overhead_sizes(self) -> tuple[int, ...]:
        """1 MiB, plus the smallest selected size when it is smaller."""
        return tuple(sorted({1 << 20, min(min(self.sizes), 1 << 20)}))
