"""RAID parity: XOR (RAID 5), P+Q (RAID 6) and P+Q+R (RAID-Z3, triple parity).

Two orderings of the same codes (``raid-levels.md`` §0.2):

* ``order="md"`` (Linux md RAID 6): ``Q = sum 2^d * D_d``, ``R = sum 4^d * D_d``
  with d = 0 the first data block;
* ``order="zfs"`` (RAID-Z): for n data columns ``Q = sum 2^(n-1-i) * D_i``,
  ``R = sum 4^(n-1-i) * D_i``.

P is plain XOR in both.  A shard list holds the k data blocks followed by
the parity blocks (P, then Q, then R); None marks a lost one.  At most 255
data blocks (2^255 = 1 would repeat a coefficient).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import numpy as np

from dwcore import _native
from dwcore.ec._matrix import MatrixCode
from dwcore.ec._shards import as_array, check_present, fill_missing, missing_of
from dwcore.errors import InvalidArgumentError, TooFewShardsError

MAX_DATA = 255
#: XOR has no coefficient limit; the cap is the kernels' shard-list size.
MAX_XOR_DATA = 257
ORDERS = ("md", "zfs")


def _check_order(order: str) -> bool:
    """True for ZFS order (the kernels take the data list reversed)."""
    if order not in ORDERS:
        raise InvalidArgumentError(f"order must be 'md' or 'zfs', got {order!r}")
    return order == "zfs"


def _data_length(data: object) -> int:
    return _native.shard_length(data, -1, "data", False)


@functools.lru_cache(maxsize=128)
def _parity_code(k: int, nparity: int, order: str) -> MatrixCode:
    """Generator matrix [I; 1...; 2^e...; 4^e...] of a P/Q/R code."""
    rows = [bytes(1 if i == j else 0 for j in range(k)) for i in range(k)]
    for g in (1, 2, 4)[:nparity]:
        exps = range(k) if order == "md" else range(k - 1, -1, -1)
        rows.append(bytes(_gf_pow(g, e) for e in exps))
    name = {1: "XOR parity", 2: "P+Q parity", 3: "P+Q+R parity"}[nparity]
    return MatrixCode(b"".join(rows), k, nparity, name)


def _gf_pow(g: int, e: int) -> int:
    out = 1
    for _ in range(e):
        out = _native.gf_mul(out, g)
    return out


def _shard_count(shards: Sequence[object], nparity: int) -> int:
    try:
        k = len(shards) - nparity
    except TypeError:
        raise InvalidArgumentError(
            f"shards must be a list of data blocks followed by {nparity} parity, "
            f"got {type(shards).__name__}"
        ) from None
    limit = MAX_XOR_DATA if nparity == 1 else MAX_DATA
    if not 1 <= k <= limit:
        raise InvalidArgumentError(
            f"shards must hold 1..{limit} data blocks plus {nparity} parity, "
            f"got {len(shards)} entries"
        )
    return k


# --------------------------------------------------------------------------
# XOR
# --------------------------------------------------------------------------


def xor_parity(data: Sequence[object] | np.ndarray) -> np.ndarray:
    """P = D_0 ^ D_1 ^ ... as a new uint8 array."""
    out = np.empty(_data_length(data), dtype=np.uint8)
    _native.xor_gen(data, out)
    return out


def xor_parity_into(data: Sequence[object] | np.ndarray, out: object) -> None:
    """Write the XOR of ``data`` into the writable buffer ``out``."""
    _native.xor_gen(data, out)


def xor_recover_into(shards: Sequence[object], missing: Iterable[int]) -> None:
    """Rebuild the one lost block of ``[D_0 .. D_{k-1}, P]`` in place."""
    k = _shard_count(shards, 1)
    lost = _parity_code(k, 1, "md").check_missing(missing)
    if not lost:
        return
    check_present(shards, lost, "shards")
    (i,) = lost
    _native.xor_gen([s for j, s in enumerate(shards) if j != i], shards[i], f"shards[{i}]")


def xor_recover(shards: Sequence[object | None]) -> list[np.ndarray]:
    """All k+1 blocks of ``[D_0 .. D_{k-1}, P]``, the None one rebuilt."""
    k = _shard_count(shards, 1)
    missing, length = missing_of(shards, len(shards), "shards")
    lost = _parity_code(k, 1, "md").check_missing(missing)
    full, _ = fill_missing(shards, lost, length)
    xor_recover_into(full, lost)
    return [as_array(s) for s in full]


# --------------------------------------------------------------------------
# P+Q
# --------------------------------------------------------------------------


def pq_parity(
    data: Sequence[object] | np.ndarray, order: str = "md"
) -> tuple[np.ndarray, np.ndarray]:
    """(P, Q) of the data blocks as new arrays."""
    reverse = _check_order(order)
    out = np.empty((2, _data_length(data)), dtype=np.uint8)
    _native.pq_gen(data, out[0], out[1], reverse)
    return out[0], out[1]


def pq_parity_into(
    data: Sequence[object] | np.ndarray, p: object, q: object, order: str = "md"
) -> None:
    """Write P and Q of ``data`` into the writable buffers ``p`` and ``q``."""
    _native.pq_gen(data, p, q, _check_order(order))


def pq_recover_into(shards: Sequence[object], missing: Iterable[int], order: str = "md") -> None:
    """Rebuild up to two lost blocks of ``[D_0 .. D_{k-1}, P, Q]`` in place.

    Two lost data blocks and data + P use the RAID-6 recovery formulas of
    Linux md (lib/raid6/recov.c); the other patterns are XOR and re-encoding.
    """
    reverse = _check_order(order)
    k = _shard_count(shards, 2)
    code = _parity_code(k, 2, order)
    lost = code.check_missing(missing)
    if not lost:
        return
    check_present(shards, lost, "shards")
    data = shards[:k]
    p, q = shards[k], shards[k + 1]
    lost_data = [i for i in lost if i < k]
    if len(lost_data) == 2:
        _native.raid6_recov_2data(data, lost_data[0], lost_data[1], p, q, reverse)
        return
    if lost_data and k in lost:  # one data block and P
        _native.raid6_recov_datap(data, lost_data[0], p, q, reverse)
        return
    if lost_data:  # one data block, P present: plain XOR
        a = lost_data[0]
        _native.xor_gen(
            [s for j, s in enumerate(shards[: k + 1]) if j != a], shards[a], f"shards[{a}]"
        )
    if k in lost and k + 1 in lost:
        _native.pq_gen(data, p, q, reverse)
    elif k in lost:
        _native.xor_gen(data, p, f"shards[{k}]")
    elif k + 1 in lost:
        code.reconstruct_into(shards, (k + 1,))


def pq_recover(shards: Sequence[object | None], order: str = "md") -> list[np.ndarray]:
    """All k+2 blocks of ``[D_0 .. D_{k-1}, P, Q]`` with up to two None rebuilt."""
    _check_order(order)
    k = _shard_count(shards, 2)
    missing, length = missing_of(shards, len(shards), "shards")
    lost = _parity_code(k, 2, order).check_missing(missing)
    full, _ = fill_missing(shards, lost, length)
    pq_recover_into(full, lost, order)
    return [as_array(s) for s in full]


# --------------------------------------------------------------------------
# P+Q+R
# --------------------------------------------------------------------------


def pqr_parity(
    data: Sequence[object] | np.ndarray, order: str = "zfs"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, Q, R) of the data blocks as new arrays."""
    reverse = _check_order(order)
    out = np.empty((3, _data_length(data)), dtype=np.uint8)
    _native.pqr_gen(data, out[0], out[1], out[2], reverse)
    return out[0], out[1], out[2]


def pqr_parity_into(
    data: Sequence[object] | np.ndarray, p: object, q: object, r: object, order: str = "zfs"
) -> None:
    """Write P, Q and R of ``data`` into writable buffers."""
    _native.pqr_gen(data, p, q, r, _check_order(order))


def pqr_recover_into(shards: Sequence[object], missing: Iterable[int], order: str = "zfs") -> None:
    """Rebuild up to three lost blocks of ``[D_0 .. D_{k-1}, P, Q, R]`` in place."""
    reverse = _check_order(order)
    k = _shard_count(shards, 3)
    code = _parity_code(k, 3, order)
    lost = code.check_missing(missing)
    if not lost:
        return
    check_present(shards, lost, "shards")
    if all(i >= k for i in lost) and len(lost) == 3:
        _native.pqr_gen(shards[:k], shards[k], shards[k + 1], shards[k + 2], reverse)
        return
    code.reconstruct_into(shards, lost)


def pqr_recover(shards: Sequence[object | None], order: str = "zfs") -> list[np.ndarray]:
    """All k+3 blocks of ``[D_0 .. D_{k-1}, P, Q, R]`` with up to three None rebuilt."""
    _check_order(order)
    k = _shard_count(shards, 3)
    missing, length = missing_of(shards, len(shards), "shards")
    lost = _parity_code(k, 3, order).check_missing(missing)
    full, _ = fill_missing(shards, lost, length)
    pqr_recover_into(full, lost, order)
    return [as_array(s) for s in full]


__all__ = [
    "TooFewShardsError",
    "pq_parity",
    "pq_parity_into",
    "pq_recover",
    "pq_recover_into",
    "pqr_parity",
    "pqr_parity_into",
    "pqr_recover",
    "pqr_recover_into",
    "xor_parity",
    "xor_parity_into",
    "xor_recover",
    "xor_recover_into",
]
