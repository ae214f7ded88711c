"""What the public Python call costs on top of the C kernel it wraps.

The public call (``ReedSolomon.encode_into``, ``reconstruct_into``,
``pq_parity_into``, ``xor_parity_into``) is timed in a Python loop; the raw
kernel runs the same number of times inside one ``_native.loop_*`` call with
the GIL released, so the difference is argument parsing, buffer collection,
validation and the Python loop itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from dwcore import _native
from dwcore.bench.arena import hot_set
from dwcore.bench.kernels import KernelConfig
from dwcore.bench.results import OverheadRow
from dwcore.bench.timing import Batch, Contender, measure_interleaved
from dwcore.ec import ReedSolomon, pq_parity_into, xor_parity_into
from dwcore.errors import InvalidArgumentError

__all__ = ["measure_overhead"]


def _api_call_loop(call: Callable[[], object]) -> Batch:
    def run(count: int) -> None:
        for _ in range(count):
            call()

    return run


def _decode_tables(rs: ReedSolomon) -> bytes:
    """Tables rebuilding data shards 0..m-1 from shards m..k+m-1 (dwcore's own GF code)."""
    k, m = rs.k, rs.m
    inverse = _native.invert_matrix(rs.matrix[m : m + k].tobytes(), k)
    if inverse is None:
        raise InvalidArgumentError(f"the survivor matrix of {rs!r} is singular")
    return _native.init_tables(inverse[: m * k], k, m)


def _batches(config: KernelConfig) -> tuple[Batch, Batch]:
    k, m = config.k, config.m
    s = hot_set(config.rows, config.fragment, seed=7)
    if config.op == "encode":
        rs = ReedSolomon(k, m)
        api = functools.partial(rs.encode_into, s[:k], s[k:])
        raw = functools.partial(_native.loop_ec_encode, rs.encode_tables, k, m, s[:k], s[k:])
    elif config.op == "decode":
        rs = ReedSolomon(k, m)
        api = functools.partial(rs.reconstruct_into, s, tuple(range(m)))
        raw = functools.partial(_native.loop_ec_encode, _decode_tables(rs), k, m, s[m:], s[:m])
    elif config.op == "pq":
        api = functools.partial(pq_parity_into, s[:k], s[k], s[k + 1])
        raw = functools.partial(_native.loop_pq_gen, s[:k], s[k], s[k + 1])
    else:
        api = functools.partial(xor_parity_into, s[:k], s[k])
        raw = functools.partial(_native.loop_xor_gen, s[:k], s[k])
    return _api_call_loop(api), raw


def measure_overhead(config: KernelConfig, repeats: int, target_ns: int) -> OverheadRow:
    """Time the public call against its raw kernel loop, interleaved, in cache."""
    api, raw = _batches(config)
    nbytes = config.data_bytes
    result = measure_interleaved(
        [Contender.of_batch("api", api, nbytes), Contender.of_batch("raw", raw, nbytes)],
        repeats,
        target_ns,
    )
    return OverheadRow(
        op=config.op,
        k=config.k,
        m=config.m,
        fragment=config.fragment,
        api=result["api"],
        raw=result["raw"],
    )
