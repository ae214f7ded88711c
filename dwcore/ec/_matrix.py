"""Decoding of systematic linear codes over GF(2^8) by matrix inversion.

A code is given by its (k+m) x k generator matrix with the identity on top:
shard i is row i times the data.  To recover the missing shards from any k
survivors, invert the survivors' k x k sub-matrix; each missing shard is then
its generator row times that inverse, applied to the survivors in one pass
of the dot-product kernel.  Decode tables are cached per erasure pattern,
at most :data:`_PLAN_CACHE_SIZE` per code; :func:`shrink_plan_caches` trims
the caches of every live code (the memory-pressure module calls it).
"""

from __future__ import annotations

import operator
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dwcore import _native
from dwcore.errors import InvalidArgumentError, TooFewShardsError

_PLAN_CACHE_SIZE = 512
#: Every live code, so memory pressure can trim their plan caches.
_CODES: weakref.WeakSet[MatrixCode] = weakref.WeakSet()
_CODES_LOCK = threading.Lock()


def shrink_plan_caches(keep: float) -> int:
    """Keep the newest ``keep`` fraction (0..1) of every code's decode plans.

    Returns the bytes of decode tables dropped.  ``keep=0`` empties the
    caches; plans are rebuilt on the next decode that needs them.
    """
    with _CODES_LOCK:
        codes = list(_CODES)
    return sum(code.shrink_plans(keep) for code in codes)


def plan_cache_bytes() -> int:
    """Bytes of decode tables cached by every live code."""
    with _CODES_LOCK:
        codes = list(_CODES)
    return sum(code.plan_bytes() for code in codes)


@dataclass(frozen=True)
class DecodePlan:
    """How to rebuild ``missing`` from ``survivors`` (one kernel call)."""

    survivors: tuple[int, ...]
    missing: tuple[int, ...]
    tables: bytes


class MatrixCode:
    """A systematic (k+m, k) code given by its generator matrix (thread-safe)."""

    def __init__(self, generator: bytes, k: int, m: int, name: str) -> None:
        if len(generator) != (k + m) * k:
            raise InvalidArgumentError(f"generator must hold (k+m)*k = {(k + m) * k} bytes")
        self.k = k
        self.m = m
        self.n = k + m
        self.name = name
        self._generator = generator
        self._plans: OrderedDict[tuple[int, ...], DecodePlan] = OrderedDict()
        self._lock = threading.Lock()
        with _CODES_LOCK:
            _CODES.add(self)

    def row(self, i: int) -> bytes:
        """Generator row i (k bytes)."""
        return self._generator[i * self.k : (i + 1) * self.k]

    def check_missing(self, missing: Iterable[int]) -> tuple[int, ...]:
        """Validate shard indices and return them sorted and unique."""
        out: set[int] = set()
        for i in missing:
            try:
                index = operator.index(i) if not isinstance(i, bool) else None
            except TypeError:
                index = None
            if index is None or not 0 <= index < self.n:
                raise InvalidArgumentError(
                    f"missing shard index {i!r} is not an int in 0..{self.n - 1}"
                )
            out.add(index)
        lost = tuple(sorted(out))
        if len(lost) > self.m:
            raise TooFewShardsError(
                f"{len(lost)} of {self.n} shards missing ({', '.join(map(str, lost))}); "
                f"{self.name} tolerates {self.m}",
                failed=lost,
            )
        return lost

    def plan(self, missing: Iterable[int]) -> DecodePlan:
        """The decode plan for an erasure pattern (validated, cached).

        The cache is keyed by the pattern exactly as the caller spells it,
        so a repeated call costs one dictionary look-up.
        """
        key = missing if isinstance(missing, tuple) else tuple(missing)
        try:
            plan = self._plans.get(key)
        except TypeError:  # unhashable entries: let validation name them
            self.check_missing(key)
            raise
        # (True,) and (1.0,) hash like (1,): only exact ints may take the hit.
        if plan is not None and all(type(i) is int for i in key):
            return plan
        lost = self.check_missing(key)
        plan = self._plans.get(lost)
        if plan is None:
            gone = set(lost)
            survivors = tuple(i for i in range(self.n) if i not in gone)[: self.k]
            plan = self._build(survivors, lost)
        with self._lock:
            while len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
            self._plans[lost] = plan
            if all(type(i) is int for i in key):
                self._plans[key] = plan
        return plan

    def plan_bytes(self) -> int:
        """Bytes of decode tables this code caches (a plan cached under two keys counts once)."""
        with self._lock:
            plans = {id(p): p for p in self._plans.values()}
        return sum(len(p.tables) for p in plans.values())

    def shrink_plans(self, keep: float) -> int:
        """Drop the oldest cached plans, keeping a ``keep`` fraction (0..1); bytes freed."""
        if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 <= keep <= 1:
            raise InvalidArgumentError(f"keep must be a fraction in [0, 1], got {keep!r}")
        with self._lock:
            target = int(len(self._plans) * keep)
            dropped: dict[int, DecodePlan] = {}
            while len(self._plans) > target:
                _, plan = self._plans.popitem(last=False)
                dropped[id(plan)] = plan
            alive = {id(p) for p in self._plans.values()}
        return sum(len(p.tables) for i, p in dropped.items() if i not in alive)

    def _build(self, survivors: tuple[int, ...], missing: tuple[int, ...]) -> DecodePlan:
        if not missing:
            return DecodePlan(survivors, missing, b"")
        k = self.k
        sub = b"".join(self.row(i) for i in survivors)
        inverse = _native.invert_matrix(sub, k)
        if inverse is None:  # impossible for an MDS code; kept as a hard stop
            raise TooFewShardsError(
                f"{self.name}: shards {survivors} do not determine the data", failed=missing
            )
        rows = b"".join(self.row(i) for i in missing)
        decode = _native.matrix_mul(rows, inverse, len(missing), k, k)
        return DecodePlan(survivors, missing, _native.init_tables(decode, k, len(missing)))

    def reconstruct_into(self, shards: Sequence[object], missing: Iterable[int]) -> None:
        """Overwrite ``shards[i]`` for every i in ``missing`` with its contents."""
        plan = self.plan(missing)
        if len(shards) != self.n:
            raise InvalidArgumentError(f"shards has {len(shards)} entries, expected k+m = {self.n}")
        if plan.missing:
            _native.ec_encode_rows(
                plan.tables, self.k, len(plan.missing), shards, plan.survivors, plan.missing
            )
