"""Byte- and bit-interleaved levels (RAID 3, RAID 2, RAID 03) on the row engine.

The engine fills an extent's rows member by member: inside the rows of one
stripe (a *segment* of n rows) data member d holds the extent bytes
``[offset + d·n·B, offset + (d+1)·n·B)``.  Interleaved levels spread every
run of k logical bytes (RAID 3: ``interleave = "byte"``) or k·8 logical bits
(RAID 2: ``"bit"``) over the k data members instead: over an extent's rows,
logical byte L is byte ``L div k`` of data member ``L mod k``
(``raid-levels.md`` §1, RAID 3), and logical bit b is bit ``b div k`` of
data member ``b mod k`` (RAID 2, bits LSB first).

:class:`InterleavedPool` does this by permuting bytes on the way in and out
and leaves everything else to :class:`~dwcore.pool.pool.Pool`: a write
permutes the (zero-padded) extent into the engine's member order and stores
it as whole rows; a read asks the engine for the rows that hold the wanted
logical bytes and permutes them back.  Parity, checksums, degraded reads,
rebuild and scrub work on rows and are unchanged.  The engine reads such an
extent as whole rows, so its zero padding is not known to the reader: a
row whose only erasures hold padding counts as lost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dwcore.errors import DataLossError
from dwcore.pool.extent import Extent
from dwcore.pool.pool import Pool

__all__ = ["InterleavedPool", "deinterleave", "interleave"]


def interleave(data: np.ndarray, k: int, kind: str) -> np.ndarray:
    """The k data members' bytes (a ``k × len/k`` array) of logical bytes ``data``.

    ``len(data)`` must be a multiple of k.
    """
    if kind == "byte":
        return data.reshape(-1, k).T
    bits = np.unpackbits(data.reshape(-1, k), axis=1, bitorder="little")  # (t, 8k)
    planes = bits.reshape(-1, 8, k).transpose(2, 0, 1)  # (k, t, 8): bit j of k-group -> j mod k
    return np.packbits(planes, axis=2, bitorder="little").reshape(k, -1)


def deinterleave(members: np.ndarray, kind: str) -> np.ndarray:
    """Inverse of :func:`interleave`: logical bytes from a ``k × t`` member array."""
    k = members.shape[0]
    if kind == "byte":
        return members.T.reshape(-1)
    planes = np.unpackbits(members.reshape(k, -1, 1), axis=2, bitorder="little")  # (k, t, 8)
    bits = planes.transpose(1, 2, 0).reshape(-1, 8 * k)
    return np.packbits(bits, axis=1, bitorder="little").reshape(-1)


class InterleavedPool(Pool):
    """A :class:`Pool` whose layout interleaves data bytes or bits over its data members."""

    _SHARED_IO = False  # its own data path: every request holds the pool lock
    _DIRECT_READS = False

    @property
    def _kind(self) -> str:
        kind: str = getattr(self.layout, "interleave", "byte")
        return kind

    def _to_members(self, view: memoryview, first: int, rows: int) -> memoryview:
        """The engine's member-by-member order of an extent's logical bytes."""
        k, b = self.layout.k, self._block
        padded = np.zeros(rows * k * b, dtype=np.uint8)
        padded[: view.nbytes] = np.frombuffer(view, dtype=np.uint8)
        members = interleave(padded, k, self._kind)  # k × rows·B
        out = np.empty_like(padded)
        for seg in self._segments(first, rows):
            r0 = seg.first - first
            part = out[r0 * k * b : (r0 + seg.n) * k * b].reshape(k, seg.n * b)
            part[:] = members[:, r0 * b : (r0 + seg.n) * b]
        return out.data

    def _write_rows(self, first: int, rows: int, view: memoryview) -> None:
        super()._write_rows(first, rows, self._to_members(view, first, rows))

    def _write_flat(self, first: int, rows: int, view: memoryview) -> None:
        super()._write_flat(first, rows, self._to_members(view, first, rows))

    def read(self, ext: Extent, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes of ``ext`` from ``offset`` (see :meth:`Pool.read`)."""
        length = self._read_range(ext, offset, length)
        if length == 0:
            return b""
        k, b = self.layout.k, self._block
        row_bytes = k * b
        # extent rows holding logical bytes [offset, offset+length), widened to segments
        want0, want1 = offset // row_bytes, -(-(offset + length) // row_bytes)
        segs = [
            s
            for s in self._segments(ext.first_row, ext.rows)
            if s.first - ext.first_row < want1 and s.first - ext.first_row + s.n > want0
        ]
        r0 = segs[0].first - ext.first_row
        r1 = segs[-1].first - ext.first_row + segs[-1].n
        whole = Extent(ext.pool_tag, ext.first_row, ext.rows, ext.rows * row_bytes)
        try:
            raw = super().read(whole, r0 * row_bytes, (r1 - r0) * row_bytes)
        except DataLossError as exc:
            lo, hi = getattr(exc, "lost_range", (r0 * row_bytes, r1 * row_bytes))
            lo = max(offset, lo // row_bytes * row_bytes)
            hi = min(offset + length, -(-hi // row_bytes) * row_bytes)
            err = DataLossError(
                f"pool {self.path}: extent {ext!r}: bytes [{lo}, {hi}) are lost: devices "
                f"{sorted(exc.failed)} are failed, missing or corrupt beyond what "
                f"RAID {self.layout.level} tolerates",
                failed=exc.failed,
            )
            err.lost_range = (lo, hi)  # type: ignore[attr-defined]
            raise err from exc
        src = np.frombuffer(raw, dtype=np.uint8)
        members = np.empty((k, (r1 - r0) * b), dtype=np.uint8)
        for seg in segs:
            a = seg.first - ext.first_row - r0
            part = src[a * row_bytes : (a + seg.n) * row_bytes].reshape(k, seg.n * b)
            members[:, a * b : (a + seg.n) * b] = part
        # only the member bytes holding [offset, offset+length): k logical bytes per member byte
        start = offset - r0 * row_bytes
        t0, t1 = start // k, -(-(start + length) // k)
        logical = deinterleave(members[:, t0:t1], self._kind)
        return bytes(logical[start - t0 * k : start - t0 * k + length])


def pool_class(layout: Any) -> type[Pool] | None:
    """The pool class a layout needs beyond the plain engine (None: the engine itself)."""
    return InterleavedPool if getattr(layout, "interleave", None) else None
