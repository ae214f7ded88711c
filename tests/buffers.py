"""Buffer placement helpers: misaligned views and guard-page allocations."""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]

LENGTHS = (1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 95, 127, 128, 129, 255, 257, 4095, 4097)
"""Odd lengths around the 16/32-byte vectors and the 64/128-byte unrolled steps."""


def misaligned(length: int, offset: int, fill: U8 | None = None) -> U8:
    """A writable uint8 view of ``length`` bytes whose address is ``offset`` mod 64."""
    base = np.zeros(length + 128, dtype=np.uint8)
    start = (-base.ctypes.data) % 64 + offset % 64
    view = base[start : start + length]
    assert view.ctypes.data % 64 == offset % 64
    if fill is not None:
        view[:] = fill
    return view


def misaligned_rows(rows: U8, offsets: Sequence[int]) -> list[U8]:
    """Copies of each row at the given address offsets (mod 64)."""
    return [misaligned(len(r), off, r) for r, off in zip(rows, offsets, strict=True)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mprotect.restype = ctypes.c_int
PROT_NONE = 0


class GuardedArena:
    """Anonymous memory with PROT_NONE guard pages between fixed-size slots.

    Each slot is followed (and the first is preceded) by an inaccessible page,
    so reading or writing one byte past a buffer placed with :meth:`at_end`,
    or before one placed with :meth:`at_start`, kills the process with SIGSEGV.
    """

    def __init__(self, slots: int, slot_bytes: int) -> None:
        page = mmap.PAGESIZE
        self.page = page
        self.slot_pages = max(1, -(-slot_bytes // page))
        self.stride = (self.slot_pages + 1) * page
        self.slots = slots
        self.size = page + slots * self.stride
        self.mm = mmap.mmap(-1, self.size, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._anchor = (ctypes.c_char * self.size).from_buffer(self.mm)
        self.addr = ctypes.addressof(self._anchor)
        self.array = np.frombuffer(self.mm, dtype=np.uint8)
        self._protect(0)
        for s in range(slots):
            self._protect(page + s * self.stride + self.slot_pages * page)
        self._used = 0

    def _protect(self, offset: int) -> None:
        if _libc.mprotect(ctypes.c_void_p(self.addr + offset), self.page, PROT_NONE) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mprotect failed at offset {offset}")

    def _slot(self) -> int:
        if self._used >= self.slots:
            raise RuntimeError("arena is full")
        start = self.page + self._used * self.stride
        self._used += 1
        return start

    def reset(self) -> None:
        self._used = 0

    def at_end(self, length: int, fill: U8 | None = None) -> U8:
        """A writable view whose last byte is the last accessible byte before a guard."""
        assert length <= self.slot_pages * self.page
        end = self._slot() + self.slot_pages * self.page
        view = self.array[end - length : end]
        if fill is not None:
            view[:] = fill
        return view

    def at_start(self, length: int, fill: U8 | None = None) -> U8:
        """A writable view whose first byte directly follows a guard page."""
        assert length <= self.slot_pages * self.page
        start = self._slot()
        view = self.array[start : start + length]
        if fill is not None:
            view[:] = fill
        return view
