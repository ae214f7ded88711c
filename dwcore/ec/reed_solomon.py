"""Systematic Reed-Solomon k+m over GF(2^8) with ISA-L's Cauchy matrix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from dwcore import _native
from dwcore.ec._matrix import MatrixCode
from dwcore.ec._shards import as_array, fill_missing, missing_of
from dwcore.errors import InvalidArgumentError

MAX_SHARDS = 256


def cauchy_matrix(k: int, m: int) -> np.ndarray:
    """The (k+m) x k systematic Cauchy matrix of ISA-L's ``gf_gen_cauchy1_matrix``.

    The top k rows are the identity; parity row i, data column j holds
    ``inv((k + i) ^ j)``.  Every square sub-matrix is invertible (MDS).
    """
    _check_km(k, m)
    return np.frombuffer(_native.cauchy_matrix(k, m), dtype=np.uint8).reshape(k + m, k)


def _check_km(k: object, m: object) -> None:
    for name, v in (("k", k), ("m", m)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InvalidArgumentError(f"{name} must be an int >= 1, got {v!r}")
    if k + m > MAX_SHARDS:  # type: ignore[operator]
        raise InvalidArgumentError(f"k + m = {k + m} exceeds {MAX_SHARDS} (GF(2^8) limit)")  # type: ignore[operator]


class ReedSolomon:
    """A k+m Reed-Solomon code: any k of the k+m shards rebuild the rest.

    Parity is byte-identical to ISA-L's ``ec_encode_data`` with
    ``gf_gen_cauchy1_matrix``.  Shards are equal-length buffers (bytes,
    bytearray, memoryview, mmap, numpy); a list of shards may also be one 2-D
    ``(count, length)`` uint8 array.  Instances are immutable apart from an
    internal, locked cache of decode tables, so one instance may serve many
    threads; the kernels run without the GIL on shards of 2 KiB or more.

    >>> rs = ReedSolomon(4, 2)
    >>> data = [bytes([i]) * 8 for i in range(4)]
    >>> parity = rs.encode(data)
    >>> shards = [*data, *parity]
    >>> shards[1] = shards[4] = None
    >>> bytes(rs.reconstruct(shards)[1])
    b'\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01'
    """

    __slots__ = ("_code", "encode_tables", "k", "m", "matrix", "n")

    def __init__(self, k: int, m: int) -> None:
        _check_km(k, m)
        self.k = k
        self.m = m
        self.n = k + m
        generator = _native.cauchy_matrix(k, m)
        self.matrix: np.ndarray = np.frombuffer(generator, dtype=np.uint8).reshape(k + m, k)
        #: Split-nibble tables of the m parity rows (ISA-L ``ec_init_tables`` layout).
        self.encode_tables: bytes = _native.init_tables(generator[k * k :], k, m)
        self._code = MatrixCode(generator, k, m, f"ReedSolomon({k}, {m})")

    def __repr__(self) -> str:
        return f"ReedSolomon(k={self.k}, m={self.m})"

    def encode(self, data: Sequence[object] | np.ndarray) -> np.ndarray:
        """Parity of k data shards as a new ``(m, length)`` uint8 array."""
        return _native.ec_encode_new(self.encode_tables, self.k, self.m, data)

    def encode_into(self, data: Sequence[object] | np.ndarray, parity_out: object) -> None:
        """Write the parity of ``data`` into ``parity_out`` (m writable buffers)."""
        _native.ec_encode(
            self.encode_tables, self.k, self.m, data, parity_out, "data", "parity_out"
        )

    def reconstruct(self, shards: Sequence[object | None]) -> list[np.ndarray]:
        """All k+m shards, the missing (None) ones rebuilt into new arrays.

        Raises :class:`~dwcore.errors.TooFewShardsError` when more than m are
        missing.  Present shards are returned as zero-copy views.
        """
        missing, length = missing_of(shards, self.n, "shards")
        lost = self._code.plan(missing).missing
        full, _ = fill_missing(shards, lost, length)
        self._code.reconstruct_into(full, lost)
        return [as_array(s) for s in full]

    def reconstruct_into(
        self, shards: Sequence[object] | np.ndarray, missing: Iterable[int]
    ) -> None:
        """Rebuild the shards listed in ``missing`` in place.

        ``shards`` holds all k+m buffers (or is a ``(k+m, length)`` array); the
        ones named by ``missing`` must be writable and are overwritten, the
        others are read.  Nothing is allocated after the first call for an
        erasure pattern.
        """
        self._code.reconstruct_into(shards, missing)

    def verify(self, shards: Sequence[object] | np.ndarray) -> bool:
        """Whether the m parity shards match the k data shards."""
        if len(shards) != self.n:
            raise InvalidArgumentError(f"shards has {len(shards)} entries, expected k+m = {self.n}")
        _native.shard_length(shards, self.n, "shards", False)
        expected = self.encode(shards[: self.k])
        return all(np.array_equal(expected[i], as_array(shards[self.k + i])) for i in range(self.m))
