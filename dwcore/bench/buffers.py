"""Aligned buffer allocation for kernels that need it (ISA-L's RAID paths)."""

from __future__ import annotations

import math

import numpy as np

from dwcore.errors import InvalidArgumentError

__all__ = ["aligned_empty", "is_aligned"]


def aligned_empty(
    shape: int | tuple[int, ...], align: int = 64, dtype: np.dtype | type = np.uint8
) -> np.ndarray:
    """An uninitialised C-contiguous array whose first byte sits on ``align`` bytes.

    Rows of a 2-D result are aligned too when the row length in bytes is a
    multiple of ``align``.

    >>> a = aligned_empty((4, 4096))
    >>> a.ctypes.data % 64, a.shape, a.flags.c_contiguous
    (0, (4, 4096), True)
    """
    if align <= 0 or align & (align - 1):
        raise InvalidArgumentError(f"align must be a power of two, got {align}")
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if any(d < 0 for d in dims):
        raise InvalidArgumentError(f"shape must not have negative dimensions, got {dims}")
    kind = np.dtype(dtype)
    nbytes = math.prod(dims) * kind.itemsize
    raw = np.empty(nbytes + align, dtype=np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + nbytes].view(kind).reshape(dims)


def is_aligned(arr: np.ndarray, align: int) -> bool:
    """Whether ``arr`` starts on an ``align``-byte boundary."""
    return arr.ctypes.data % align == 0
