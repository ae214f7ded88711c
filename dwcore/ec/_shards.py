"""Small helpers shared by the erasure-code front ends."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dwcore import _native
from dwcore.errors import InvalidArgumentError


def as_array(buf: object) -> np.ndarray:
    """A zero-copy 1-D uint8 view of a shard buffer."""
    if isinstance(buf, np.ndarray) and buf.dtype == np.uint8 and buf.ndim == 1:
        return buf
    return np.frombuffer(buf, dtype=np.uint8)  # type: ignore[call-overload]


def missing_of(shards: Sequence[object], n: int, name: str) -> tuple[list[int], int]:
    """Indices of the None entries of ``shards`` and the common shard length."""
    if isinstance(shards, (bytes, bytearray, memoryview, str, np.ndarray)):
        raise InvalidArgumentError(
            f"{name} must be a list of {n} shards with None for the missing ones"
        )
    try:
        count = len(shards)
    except TypeError:
        raise InvalidArgumentError(
            f"{name} must be a list of {n} shards with None for the missing ones, "
            f"got {type(shards).__name__}"
        ) from None
    if count != n:
        raise InvalidArgumentError(f"{name} has {count} entries, expected {n}")
    missing = [i for i, s in enumerate(shards) if s is None]
    length = _native.shard_length(shards, n, name, True)
    return missing, length


def check_present(shards: Sequence[object], missing: Sequence[int], name: str) -> None:
    """Every shard not listed as missing must be given; the missing ones writable."""
    lost = set(missing)
    for i, s in enumerate(shards):
        if s is None and i not in lost:
            raise InvalidArgumentError(
                f"{name}[{i}] is None but is not listed in missing; pass its buffer or "
                f"list it as missing"
            )
    for i in missing:
        _native.require_writable(shards[i], f"{name}[{i}]")
    _native.shard_length(shards, len(shards), name, False)


def fill_missing(
    shards: Sequence[object], missing: Sequence[int], length: int
) -> tuple[list[object], np.ndarray]:
    """A copy of ``shards`` with fresh output rows where entries are missing."""
    fresh = np.empty((len(missing), length), dtype=np.uint8)
    full = list(shards)
    for row, i in enumerate(missing):
        full[i] = fresh[row]
    return full, fresh
