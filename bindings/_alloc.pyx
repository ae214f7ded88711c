# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: embedsignature=True
"""dwcore._alloc: the persistent block allocator of csrc/ (dw_alloc.h).

:class:`Allocator` is the thin layer over the C handle; the documented API
is :class:`dwcore.alloc.BlockAllocator`, a subclass.  The C side locks its
own mutex, so every method may be called from any thread.  Single calls
keep the GIL (they take well under a microsecond); open, create, sync,
close, stats, reconcile, the bitmap copy, batch calls of 64 or more
extents and range calls of 65536 or more blocks release it.  Every method
registers itself (``_busy``) in the same step as it fetches the C handle,
and close() refuses while any is registered, so the handle is never freed
under a running call.  C status codes become dwcore.errors exceptions.

The ``_bench_*`` functions time the C calls from C loops (no Python per
call) for :mod:`dwcore.bench.alloc`.
"""

import os
import warnings

import numpy as np

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

from dwcore.errors import (
    CorruptionError,
    InvalidArgumentError,
    NoSpaceError,
    UnsupportedFormatError,
)


cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *ts)
    enum:
        CLOCK_MONOTONIC
        CLOCK_THREAD_CPUTIME_ID


cdef extern from "dw_alloc.h" nogil:
    ctypedef enum dw_alloc_status:
        DW_ALLOC_OK
        DW_ALLOC_EINVAL
        DW_ALLOC_ENULL
        DW_ALLOC_ENOSPC
        DW_ALLOC_ENOTALLOC
        DW_ALLOC_ERANGE
        DW_ALLOC_ECORRUPT
        DW_ALLOC_EVERSION
        DW_ALLOC_EIO
        DW_ALLOC_ENOMEM
        DW_ALLOC_EFAILED
        DW_ALLOC_EBUFSIZE
        DW_ALLOC_EBUSY
    ctypedef struct dw_alloc_err:
        int sys_errno
        int64_t page
        uint64_t block
        uint64_t value
        char msg[320]
    ctypedef struct dw_alloc:
        pass
    ctypedef struct dw_alloc_stats:
        uint64_t nblocks
        uint64_t block_size
        uint64_t free_blocks
        uint64_t largest_free
        uint64_t free_extents
        uint64_t generation
        uint64_t dirty_pages
        uint64_t memory_bytes
        uint64_t file_bytes
        uint64_t recovered_from_fallback
        uint64_t damaged_area_gen
    ctypedef void (*dw_alloc_flush_hook)(void *ctx, int phase) noexcept
    uint64_t DW_ALLOC_NO_HINT
    uint64_t DW_ALLOC_MAX_BLOCKS
    unsigned DW_ALLOC_FORMAT_VERSION
    unsigned DW_ALLOC_TEST_SKIP_FLUSH
    unsigned DW_ALLOC_TEST_SKIP_BARRIER

    dw_alloc_status dw_alloc_create(const char *path, uint64_t nblocks, uint32_t block_size,
                                    dw_alloc **out, dw_alloc_err *err)
    dw_alloc_status dw_alloc_open(const char *path, dw_alloc **out, dw_alloc_err *err)
    dw_alloc_status dw_alloc_close(dw_alloc *a, int do_sync, dw_alloc_err *err)
    dw_alloc_status dw_alloc_sync(dw_alloc *a, dw_alloc_err *err)
    dw_alloc_status dw_alloc_alloc(dw_alloc *a, uint64_t n, uint64_t hint, uint64_t *start,
                                   dw_alloc_err *err)
    dw_alloc_status dw_alloc_alloc_extents(dw_alloc *a, uint64_t n, uint64_t hint,
                                           uint64_t *starts, uint64_t *lens, size_t cap,
                                           size_t *count, dw_alloc_err *err)
    dw_alloc_status dw_alloc_alloc_batch(dw_alloc *a, size_t count, uint64_t n, uint64_t hint,
                                         uint64_t *starts, dw_alloc_err *err)
    dw_alloc_status dw_alloc_free(dw_alloc *a, uint64_t start, uint64_t n, dw_alloc_err *err)
    dw_alloc_status dw_alloc_free_batch(dw_alloc *a, size_t count, const uint64_t *starts,
                                        const uint64_t *lens, uint64_t n, dw_alloc_err *err)
    dw_alloc_status dw_alloc_mark_batch(dw_alloc *a, size_t count, const uint64_t *starts,
                                        const uint64_t *lens, uint64_t n, uint64_t *newly,
                                        dw_alloc_err *err)
    dw_alloc_status dw_alloc_count_allocated(dw_alloc *a, uint64_t start, uint64_t n,
                                             uint64_t *nalloc, dw_alloc_err *err)
    dw_alloc_status dw_alloc_reconcile(dw_alloc *a, size_t count, const uint64_t *starts,
                                       const uint64_t *lens, uint64_t *out_starts,
                                       uint64_t *out_lens, size_t cap, size_t *nout,
                                       uint64_t *nfreed, uint64_t *nrestored, dw_alloc_err *err)
    dw_alloc_status dw_alloc_get_stats(dw_alloc *a, int full, dw_alloc_stats *st)
    dw_alloc_status dw_alloc_bitmap(dw_alloc *a, uint8_t *out, size_t cap)
    dw_alloc_status dw_alloc_check(dw_alloc *a, dw_alloc_err *err)
    uint64_t dw_alloc_nblocks(const dw_alloc *a)
    uint32_t dw_alloc_block_size(const dw_alloc *a)
    uint64_t dw_alloc_hash64(const void *data, size_t length, uint64_t seed)
    void dw_alloc_set_flush_hook(dw_alloc *a, dw_alloc_flush_hook hook, void *ctx)
    void dw_alloc_set_test_flags(dw_alloc *a, unsigned flags)


cdef enum:
    NOGIL_MIN_COUNT = 64        # batch calls release the GIL from this many extents
    NOGIL_MIN_BLOCKS = 1 << 16  # range calls release the GIL from this many blocks

#: Highest on-disk format version this build reads and writes.
FORMAT_VERSION = DW_ALLOC_FORMAT_VERSION
#: Most blocks one allocator manages.
MAX_BLOCKS = DW_ALLOC_MAX_BLOCKS
#: Flags of :meth:`Allocator._set_test_flags` (tests only).
TEST_SKIP_FLUSH = DW_ALLOC_TEST_SKIP_FLUSH
TEST_SKIP_BARRIER = DW_ALLOC_TEST_SKIP_BARRIER


def hash64(data, uint64_t seed=0):
    """The 64-bit checksum of the allocator's pages (xxHash64) of a bytes-like object."""
    cdef const uint8_t[::1] view = memoryview(data).cast("B")
    if view.shape[0] == 0:
        return dw_alloc_hash64(NULL, 0, seed)
    return dw_alloc_hash64(&view[0], view.shape[0], seed)


cdef object _index(object x, str name, str what):
    """``x`` as a Python int: int, numpy integers and anything with __index__, but
    not bool (``True`` is not a block number)."""
    if type(x) is int:
        return x
    if isinstance(x, (bool, np.bool_)):
        raise InvalidArgumentError(f"{name}={x!r} must be {what}, not a bool")
    try:
        return PyNumber_Index(x)
    except TypeError:
        raise InvalidArgumentError(f"{name}={x!r} must be {what}") from None


cdef inline str _msg(dw_alloc_err *err):
    return err.msg.decode("utf-8", "replace")


cdef object _as_u64_array(object values, str name):
    try:
        arr = np.ascontiguousarray(values, dtype=np.int64 if _has_negative(values) else np.uint64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"{name} must be a sequence or array of block numbers: {exc}") \
            from None
    if arr.ndim != 1:
        raise InvalidArgumentError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.int64:
        raise InvalidArgumentError(f"{name} holds a negative value ({int(arr.min())})")
    return arr


cdef bint _has_negative(object values):
    if isinstance(values, np.ndarray):
        return values.dtype.kind == "i" and values.size > 0 and values.min() < 0
    try:
        return any(v < 0 for v in values)
    except TypeError:
        return False


cdef void _flush_hook(void *ctx, int phase) noexcept with gil:
    cdef Allocator self = <Allocator>ctx
    try:
        self._hook(phase)
    except BaseException as exc:  # re-raised by sync() once it returns
        if self._hook_exc is None:
            self._hook_exc = exc


cdef class Allocator:
    """A block allocator over one file (see dwcore.alloc.BlockAllocator)."""

    cdef dw_alloc *_a
    cdef int _busy
    cdef object _path
    cdef uint64_t _nblocks
    cdef uint32_t _block_size
    cdef object _hook
    cdef object _hook_exc
    cdef uint64_t _fallback_gen

    def __cinit__(self):
        self._a = NULL
        self._busy = 0
        self._fallback_gen = 0

    def __dealloc__(self):
        cdef dw_alloc_err err
        if self._a != NULL:
            dw_alloc_close(self._a, 0, &err)
            self._a = NULL

    # ---------------------------------------------------------------- setup

    @classmethod
    def create(cls, path, nblocks, block_size=4096):
        """Create the allocator file ``path`` for ``nblocks`` blocks (1 .. 2**32) of
        ``block_size`` bytes (a power of two, 512 .. 2**30), all free, and open it.

        The file (about nblocks / 4 bytes plus 16 KiB: two copies of the
        bitmap) is written under a temporary name, flushed and linked into
        place, so a crash never leaves a half-made allocator at ``path``.
        Raises ``FileExistsError`` if ``path`` exists.
        """
        nblocks = _index(nblocks, "nblocks", "an int in 1..2**32")
        if not 1 <= nblocks <= DW_ALLOC_MAX_BLOCKS:
            raise InvalidArgumentError(f"nblocks={nblocks!r} must be an int in 1..2**32")
        block_size = _index(block_size, "block_size", "a power of two from 512 to 2**30 bytes")
        if block_size < 512 or block_size > (1 << 30) or block_size & (block_size - 1):
            raise InvalidArgumentError(
                f"block_size={block_size!r} must be a power of two from 512 to 2**30 bytes")
        cdef bytes raw = os.fsencode(path)
        cdef const char *cpath = raw
        cdef uint64_t nb = nblocks
        cdef uint32_t bs = block_size
        cdef dw_alloc *a = NULL
        cdef dw_alloc_err err
        cdef dw_alloc_status st
        memset(&err, 0, sizeof(err))
        with nogil:
            st = dw_alloc_create(cpath, nb, bs, &a, &err)
        return Allocator._wrap(cls, st, a, &err, path)

    @classmethod
    def open(cls, path):
        """Open an allocator file in the state of its last completed sync.

        Raises CorruptionError (naming the page or the superblock) for a
        truncated file or a committed page that fails its checksum,
        UnsupportedFormatError for a newer format version, and
        InvalidArgumentError if another allocator (in any process) has the
        file open.  About 30-45 ms for 2**28 blocks with a warm page cache.
        """
        cdef bytes raw = os.fsencode(path)
        cdef const char *cpath = raw
        cdef dw_alloc *a = NULL
        cdef dw_alloc_err err
        cdef dw_alloc_status st
        memset(&err, 0, sizeof(err))
        with nogil:
            st = dw_alloc_open(cpath, &a, &err)
        return Allocator._wrap(cls, st, a, &err, path)

    @staticmethod
    cdef Allocator _wrap(object cls, dw_alloc_status st, dw_alloc *a, dw_alloc_err *err,
                         object path):
        if st != DW_ALLOC_OK:
            _raise_open(st, err, path)
        cdef Allocator self = cls.__new__(cls)
        cdef dw_alloc_stats s
        self._a = a
        self._path = os.fspath(path)
        self._nblocks = dw_alloc_nblocks(a)
        self._block_size = dw_alloc_block_size(a)
        dw_alloc_get_stats(a, 0, &s)
        if s.recovered_from_fallback:
            self._fallback_gen = s.generation
            claimed = (f"claiming generation {s.damaged_area_gen}" if s.damaged_area_gen
                       else "of an unknown generation")
            warnings.warn(
                f"allocator {self._path!r}: the newest superblock copy ({claimed}) fails its "
                f"checksum; opened at generation {s.generation}, the previous copy.  Either "
                f"a sync was cut short by a crash, or media damage rolled back the last "
                f"acknowledged sync: run reconcile() with the catalog",
                RuntimeWarning, stacklevel=1)
        return self

    # ----------------------------------------------------------- properties

    @property
    def path(self):
        """The allocator file."""
        return self._path

    @property
    def nblocks(self):
        """Blocks managed (numbered 0 .. nblocks-1)."""
        return self._nblocks

    @property
    def block_size(self):
        """Bytes per block (recorded in the file; the allocator counts blocks)."""
        return self._block_size

    @property
    def closed(self):
        """True once :meth:`close` has run."""
        return self._a == NULL

    # ------------------------------------------------------------- helpers

    cdef inline dw_alloc *_h(self) except NULL:
        if self._a == NULL:
            raise InvalidArgumentError(f"the allocator {self._path!r} is closed")
        return self._a

    cdef inline dw_alloc *_enter(self) except NULL:
        """The handle, with this call registered (``_busy``) in the same step: close()
        refuses while any call is registered, so the handle stays valid until the
        caller's ``finally: self._busy -= 1``.  (Both run under the GIL.)"""
        if self._a == NULL:
            raise InvalidArgumentError(f"the allocator {self._path!r} is closed")
        self._busy += 1
        return self._a

    cdef int _range(self, object start, object n, uint64_t *s, uint64_t *c) except -1:
        start = _index(start, "start", "a block number (int >= 0)")
        n = _index(n, "n", "a block count (int >= 1)")
        if start < 0:
            raise InvalidArgumentError(f"start={start!r} must be a block number (int >= 0)")
        if n < 1:
            raise InvalidArgumentError(f"n={n!r} must be a block count (int >= 1)")
        if start + n > self._nblocks:
            raise InvalidArgumentError(
                f"blocks {start}..{start + n - 1} are past the end: the allocator has "
                f"{self._nblocks} blocks (0..{self._nblocks - 1})")
        s[0] = start
        c[0] = n
        return 0

    cdef uint64_t _hint(self, object hint) except? 0:
        if hint is None:
            return DW_ALLOC_NO_HINT
        what = f"a block number in 0..{self._nblocks - 1} or None"
        hint = _index(hint, "hint", what)
        if not 0 <= hint < self._nblocks:
            raise InvalidArgumentError(f"hint={hint!r} must be {what}")
        return hint

    cdef int _raise(self, dw_alloc_status st, dw_alloc_err *err, str what, uint64_t n) except -1:
        cdef dw_alloc_stats s
        cdef uint64_t nfree = 0
        if st == DW_ALLOC_ENOSPC or st == DW_ALLOC_EBUFSIZE:
            if self._a != NULL:
                dw_alloc_get_stats(self._a, 0, &s)
                nfree = s.free_blocks
            if st == DW_ALLOC_EBUFSIZE:
                raise NoSpaceError(
                    f"{what}: {n} blocks would take more extents than allowed; "
                    f"{nfree} blocks are free, the largest free extent is "
                    f"{err.value} blocks", largest_free=err.value)
            raise NoSpaceError(
                f"{what}: not enough space for {n} blocks: {nfree} of "
                f"{self._nblocks} blocks are free and the largest free extent is "
                f"{err.value} blocks", largest_free=err.value)
        if st == DW_ALLOC_ENOTALLOC:
            raise InvalidArgumentError(
                f"{what}: block {err.block} is not allocated (double free, or it was never "
                f"allocated); nothing was freed")
        if st == DW_ALLOC_ERANGE:
            raise InvalidArgumentError(
                f"{what}: block {err.block} is past the end: the allocator has "
                f"{self._nblocks} blocks (0..{self._nblocks - 1}); nothing changed")
        _raise_common(st, err, what)

    cdef int _ok(self, dw_alloc_status st, dw_alloc_err *err, str what, uint64_t n) except -1:
        if st != DW_ALLOC_OK:
            self._raise(st, err, what, n)
        return 0

    # ---------------------------------------------------------- allocation

    def alloc(self, n=1, contiguous=True, hint=None):
        """Allocate ``n`` contiguous blocks and return the first block number.

        Next-fit from ``hint`` if given (the cursor is left alone), else from
        the allocator's cursor (which then moves past the extent), wrapping
        around to block 0.  With ``contiguous=False`` the blocks may come in
        several extents (one when a long enough free run exists) and a list
        of ``(start, length)`` is returned (see :meth:`alloc_extents`).
        Raises NoSpaceError (``largest_free`` = the longest free extent) when
        the space is not there; nothing is allocated then.
        """
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef uint64_t start = 0, h, c
        cdef dw_alloc_status st
        n = _index(n, "n", "a block count (int >= 1)")
        if n < 1:
            raise InvalidArgumentError(f"n={n!r} must be a block count (int >= 1)")
        if not contiguous:
            return self.alloc_extents(n, hint)
        h = self._hint(hint)
        if n > self._nblocks:
            raise NoSpaceError(
                f"alloc: {n} blocks is more than the allocator's {self._nblocks}",
                largest_free=self.stats_dict(False)["largest_free"])
        c = n
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            if c < NOGIL_MIN_BLOCKS:
                st = dw_alloc_alloc(a, c, h, &start, &err)
            else:
                with nogil:
                    st = dw_alloc_alloc(a, c, h, &start, &err)
            if st != DW_ALLOC_OK:
                self._raise(st, &err, f"alloc(n={n})", c)
        finally:
            self._busy -= 1
        return start

    def alloc_extents(self, n, hint=None, max_extents=None):
        """Allocate ``n`` blocks as a list of ``(start, length)`` extents (best effort).

        One extent if a free run of ``n`` blocks exists, else the free runs
        met next-fit from the cursor (or ``hint``).  Needing more than
        ``max_extents`` extents (default: no limit below 2**20) raises
        NoSpaceError and allocates nothing.
        """
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef uint64_t h, c
        cdef size_t cap, count = 0, i
        cdef dw_alloc_status st
        cdef uint64_t[::1] vs, vl
        n = _index(n, "n", "a block count (int >= 1)")
        if n < 1:
            raise InvalidArgumentError(f"n={n!r} must be a block count (int >= 1)")
        h = self._hint(hint)
        if n > self._nblocks:
            raise NoSpaceError(
                f"alloc: {n} blocks is more than the allocator's {self._nblocks}",
                largest_free=self.stats_dict(False)["largest_free"])
        if max_extents is None:
            cap = min(n, 1 << 20)
        else:
            max_extents = _index(max_extents, "max_extents", "an int >= 1")
            if max_extents < 1:
                raise InvalidArgumentError(f"max_extents={max_extents!r} must be an int >= 1")
            cap = min(n, max_extents)
        c = n
        starts = np.empty(cap, dtype=np.uint64)
        lens = np.empty(cap, dtype=np.uint64)
        vs = starts
        vl = lens
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            with nogil:
                st = dw_alloc_alloc_extents(a, c, h, &vs[0], &vl[0], cap, &count, &err)
            if st != DW_ALLOC_OK:
                self._raise(st, &err, f"alloc(n={n}, contiguous=False)", c)
        finally:
            self._busy -= 1
        return [(vs[i], vl[i]) for i in range(count)]

    def alloc_batch(self, count, n=1, hint=None):
        """Allocate ``count`` extents of ``n`` contiguous blocks each in one call.

        Returns their starts as a uint64 array.  All or nothing: if any
        allocation fails, the earlier ones are undone and NoSpaceError is
        raised.  One lock and one Python call for the lot (under 10 ns a block).
        """
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef uint64_t h, c
        cdef size_t k
        cdef dw_alloc_status st
        cdef uint64_t[::1] v
        count = _index(count, "count", "an int >= 0")
        if count < 0:
            raise InvalidArgumentError(f"count={count!r} must be an int >= 0")
        n = _index(n, "n", "a block count (int >= 1)")
        if n < 1:
            raise InvalidArgumentError(f"n={n!r} must be a block count (int >= 1)")
        h = self._hint(hint)
        if count * n > self._nblocks:
            raise NoSpaceError(
                f"alloc_batch: {count} x {n} blocks is more than the allocator's "
                f"{self._nblocks}", largest_free=self.stats_dict(False)["largest_free"])
        out = np.empty(count, dtype=np.uint64)
        if count == 0:
            self._h()
            return out
        v = out
        k = count
        c = n
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            if k < NOGIL_MIN_COUNT:
                st = dw_alloc_alloc_batch(a, k, c, h, &v[0], &err)
            else:
                with nogil:
                    st = dw_alloc_alloc_batch(a, k, c, h, &v[0], &err)
            if st != DW_ALLOC_OK:
                self._raise(st, &err, f"alloc_batch(count={count}, n={n})", k * c)
        finally:
            self._busy -= 1
        return out

    def free(self, start, n=1):
        """Free the ``n`` blocks from ``start``.

        Every one must be allocated: a free block in the range (double free,
        never allocated) raises InvalidArgumentError naming it, as do blocks
        past the end; nothing is freed then.
        """
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef uint64_t s, c
        cdef dw_alloc_status st
        self._range(start, n, &s, &c)
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            if c < NOGIL_MIN_BLOCKS:
                st = dw_alloc_free(a, s, c, &err)
            else:
                with nogil:
                    st = dw_alloc_free(a, s, c, &err)
            if st != DW_ALLOC_OK:
                self._raise(st, &err, f"free(start={s}, n={c})", c)
        finally:
            self._busy -= 1

    cdef int _batch(self, int which, object starts, object n, uint64_t *newly) except -1:
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef dw_alloc_status st
        cdef uint64_t each = 0
        cdef const uint64_t *pl = NULL
        cdef const uint64_t[::1] vs, vl
        cdef size_t k, i
        name = "free_batch" if which == 0 else "mark_allocated_batch"
        sarr = _as_u64_array(starts, "starts")
        k = sarr.shape[0]
        if k == 0:
            self._h()
            return 0
        vs = sarr
        if isinstance(n, (int, np.integer)) or (isinstance(n, np.ndarray) and n.ndim == 0):
            n = _index(n, "n", "a block count >= 1, or one per start")
            if n < 1:
                raise InvalidArgumentError(f"{name}: n={n!r} must be >= 1")
            each = n
        else:
            larr = _as_u64_array(n, "n")
            if larr.shape[0] != k:
                raise InvalidArgumentError(
                    f"{name}: {larr.shape[0]} lengths for {k} starts; give one per start")
            vl = larr
            pl = &vl[0]
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            if which == 0:
                with nogil:
                    st = dw_alloc_free_batch(a, k, &vs[0], pl, each, &err)
            else:
                with nogil:
                    st = dw_alloc_mark_batch(a, k, &vs[0], pl, each, newly, &err)
            if st != DW_ALLOC_OK:
                what = name
                # err.value names the failing entry only for per-entry errors
                if (st == DW_ALLOC_ENOTALLOC or st == DW_ALLOC_ERANGE
                        or st == DW_ALLOC_EINVAL) and err.value < k:
                    i = err.value
                    what = (f"{name}: entry {i} (start={vs[i]}, "
                            f"n={pl[i] if pl != NULL else each})")
                self._raise(st, &err, what, 0)
        finally:
            self._busy -= 1
        return 0

    def free_batch(self, starts, n=1):
        """Free many extents in one call: ``starts`` is a sequence or array of
        block numbers and ``n`` one length for all or a length per start.

        All or nothing: if an extent is not wholly allocated (including the
        same block twice in the batch) nothing is freed and
        InvalidArgumentError names the entry.
        """
        self._batch(0, starts, n, NULL)

    def mark_allocated(self, start, n=1):
        """Mark the ``n`` blocks from ``start`` allocated whatever their state
        (rebuilding the allocator from a catalog; idempotent).

        Returns how many of them were free.
        """
        cdef dw_alloc_err err
        cdef uint64_t s, c, newly = 0
        cdef dw_alloc_status st
        cdef dw_alloc *a
        self._range(start, n, &s, &c)
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            if c < NOGIL_MIN_BLOCKS:
                st = dw_alloc_mark_batch(a, 1, &s, &c, 0, &newly, &err)
            else:
                with nogil:
                    st = dw_alloc_mark_batch(a, 1, &s, &c, 0, &newly, &err)
            self._ok(st, &err, f"mark_allocated(start={s}, n={c})", c)
        finally:
            self._busy -= 1
        return newly

    def mark_allocated_batch(self, starts, n=1):
        """mark_allocated for many extents; returns how many blocks were free."""
        cdef uint64_t newly = 0
        self._batch(1, starts, n, &newly)
        return newly

    def count_allocated(self, start, n=1):
        """How many of the blocks [start, start+n) are allocated."""
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef uint64_t s, c, k = 0
        cdef dw_alloc_status st
        self._range(start, n, &s, &c)
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            if c < NOGIL_MIN_BLOCKS:
                st = dw_alloc_count_allocated(a, s, c, &k, &err)
            else:
                with nogil:
                    st = dw_alloc_count_allocated(a, s, c, &k, &err)
            self._ok(st, &err, "count_allocated", c)
        finally:
            self._busy -= 1
        return k

    def is_allocated(self, start, n=1):
        """True if every block of [start, start+n) is allocated."""
        return self.count_allocated(start, n) == n

    def is_free(self, start, n=1):
        """True if every block of [start, start+n) is free."""
        return self.count_allocated(start, n) == 0

    def reconcile(self, used_extents):
        """Make the allocator agree with the extents the caller references.

        ``used_extents``: ``(start, length)`` pairs (any order, overlaps
        allowed) or an ``(n, 2)`` integer array.  Allocated blocks outside
        them (leaked by a crash between an allocation or free and the next
        sync) are freed and returned as extents; referenced blocks found free
        are marked allocated.
        """
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef dw_alloc_status st
        cdef size_t k, cap = 1024, nout = 0, i
        cdef uint64_t nfreed = 0, nrestored = 0
        cdef const uint64_t *ps = NULL
        cdef const uint64_t *pl = NULL
        cdef uint64_t[::1] os_, ol_
        cdef const uint64_t[::1] vs, vl
        arr = np.asarray(list(used_extents) if not isinstance(used_extents, np.ndarray)
                         else used_extents)
        if arr.size == 0:
            arr = np.empty((0, 2), dtype=np.uint64)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InvalidArgumentError(
                "used_extents must be (start, length) pairs or an (n, 2) array")
        if arr.dtype.kind not in "iu" or (arr.dtype.kind == "i" and arr.size and arr.min() < 0):
            raise InvalidArgumentError("used_extents must hold non-negative integers")
        arr = arr.astype(np.uint64)
        order = np.argsort(arr[:, 0], kind="stable")
        starts = np.ascontiguousarray(arr[order, 0])
        lens = np.ascontiguousarray(arr[order, 1])
        k = starts.shape[0]
        if k:
            vs = starts
            vl = lens
            ps = &vs[0]
            pl = &vl[0]
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            while True:
                out_s = np.empty(cap, dtype=np.uint64)
                out_l = np.empty(cap, dtype=np.uint64)
                os_ = out_s
                ol_ = out_l
                with nogil:
                    st = dw_alloc_reconcile(a, k, ps, pl, &os_[0], &ol_[0], cap, &nout,
                                            &nfreed, &nrestored, &err)
                if st != DW_ALLOC_EBUFSIZE:
                    break
                cap = nout + 64
            if st != DW_ALLOC_OK:
                if (st == DW_ALLOC_ERANGE or st == DW_ALLOC_EINVAL) and err.value < k:
                    i = err.value
                    raise InvalidArgumentError(
                        f"reconcile: used extent ({starts[i]}, {lens[i]}) is past the end of "
                        f"the allocator ({self._nblocks} blocks)")
                self._raise(st, &err, "reconcile", 0)
        finally:
            self._busy -= 1
        return [(os_[i], ol_[i]) for i in range(nout)]

    # ----------------------------------------------------------- durability

    def sync(self):
        """Make every change so far durable.

        Changed bitmap pages are written into their uncommitted copies and
        flushed, then the other superblock copy names them and is flushed.
        Allocation from other threads continues during the writes and
        flushes.  A no-op when nothing changed.  After an I/O error (OSError)
        the allocator refuses changes until it is reopened; the last
        completed sync stays intact on disk.
        """
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef dw_alloc_status st
        memset(&err, 0, sizeof(err))
        a = self._enter()
        self._hook_exc = None
        try:
            with nogil:
                st = dw_alloc_sync(a, &err)
        finally:
            self._busy -= 1
        if self._hook_exc is not None:
            exc, self._hook_exc = self._hook_exc, None
            raise exc
        if st != DW_ALLOC_OK:
            _raise_common(st, &err, f"sync {self._path!r}")

    def close(self, sync=True):
        """Sync (unless ``sync=False``) and release the file and memory; idempotent.

        Raises InvalidArgumentError (and closes nothing) while another thread
        is inside a call on this allocator."""
        cdef dw_alloc *a = self._a
        cdef dw_alloc_err err
        cdef dw_alloc_status st
        cdef int do_sync = 1 if sync else 0
        if a == NULL:
            return
        if self._busy:
            raise InvalidArgumentError(
                "close() while another thread is inside a call on this allocator; "
                "wait for it first")
        self._a = NULL
        memset(&err, 0, sizeof(err))
        with nogil:
            st = dw_alloc_close(a, do_sync, &err)
        if st != DW_ALLOC_OK:
            _raise_common(st, &err, f"close {self._path!r}")

    # --------------------------------------------------------------- views

    @property
    def opened_from_fallback(self):
        """True if open() could not use the newest superblock copy (it fails its
        checksum) and fell back to the previous generation: a sync cut short by a
        crash (torn write), or media damage that rolled back the last acknowledged
        sync -- the two look the same.  Run :meth:`reconcile` with the catalog."""
        return self._fallback_gen != 0

    def stats_dict(self, full=True):
        """Raw figures (dwcore.alloc.BlockAllocator.stats wraps them)."""
        cdef dw_alloc *a
        cdef dw_alloc_stats s
        cdef int f = 1 if full else 0
        a = self._enter()
        try:
            with nogil:
                dw_alloc_get_stats(a, f, &s)
        finally:
            self._busy -= 1
        return {
            "nblocks": s.nblocks, "block_size": s.block_size, "free_blocks": s.free_blocks,
            "largest_free": s.largest_free, "free_extents": s.free_extents if full else None,
            "generation": s.generation, "dirty_pages": s.dirty_pages,
            "memory_bytes": s.memory_bytes, "file_bytes": s.file_bytes,
            "recovered_from_fallback": s.recovered_from_fallback != 0,
        }

    def bitmap(self):
        """The allocation bitmap: ceil(nblocks/8) bytes, bit i of byte j is block 8j+i
        (1 = allocated)."""
        cdef dw_alloc *a
        cdef size_t nbytes = (self._nblocks + 7) // 8
        out = PyBytes_FromStringAndSize(NULL, nbytes)
        cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
        a = self._enter()
        try:
            with nogil:
                dw_alloc_bitmap(a, p, nbytes)
        finally:
            self._busy -= 1
        return out

    def _check(self):
        """Cross-check every in-memory summary against the bitmap (tests)."""
        cdef dw_alloc *a
        cdef dw_alloc_err err
        cdef dw_alloc_status st
        memset(&err, 0, sizeof(err))
        a = self._enter()
        try:
            with nogil:
                st = dw_alloc_check(a, &err)
        finally:
            self._busy -= 1
        if st != DW_ALLOC_OK:
            raise CorruptionError(f"internal inconsistency: {_msg(&err)}")

    # ------------------------------------------------------ for tests only

    def _set_flush_hook(self, hook):
        """TESTS ONLY: call ``hook(phase)`` after every flush sync really performs
        (1: bitmap pages, 2: superblock), so a test can capture the durable bytes.
        Use from one thread only."""
        cdef dw_alloc *a = self._enter()
        try:
            self._hook = hook
            with nogil:
                if hook is None:
                    dw_alloc_set_flush_hook(a, NULL, NULL)
                else:
                    dw_alloc_set_flush_hook(a, _flush_hook, <void *>self)
        finally:
            self._busy -= 1

    def _set_test_flags(self, unsigned flags):
        """TESTS ONLY: break sync on purpose (TEST_SKIP_FLUSH, TEST_SKIP_BARRIER) to show
        that the power-cut test catches a missing flush.  Never use otherwise."""
        cdef dw_alloc *a = self._enter()
        try:
            with nogil:
                dw_alloc_set_test_flags(a, flags)
        finally:
            self._busy -= 1

    # ------------------------------------------------------------- protocol

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(sync=exc[0] is None)

    def __repr__(self):
        state = "closed" if self._a == NULL else f"{self._nblocks} blocks"
        return f"<{type(self).__name__} {self._path!r} {state}>"


cdef int _raise_common(dw_alloc_status st, dw_alloc_err *err, str what) except -1:
    msg = _msg(err)
    if st == DW_ALLOC_ECORRUPT:
        raise CorruptionError(msg)
    if st == DW_ALLOC_EVERSION:
        raise UnsupportedFormatError(msg)
    if st == DW_ALLOC_EIO or st == DW_ALLOC_EFAILED:
        raise OSError(err.sys_errno, msg)
    if st == DW_ALLOC_ENOMEM:
        raise MemoryError(msg)
    if st == DW_ALLOC_EBUSY:
        raise InvalidArgumentError(msg)
    if st == DW_ALLOC_EINVAL:
        raise InvalidArgumentError(f"{what}: {msg}")
    raise InvalidArgumentError(f"{what}: error {<int>st}")


cdef int _raise_open(dw_alloc_status st, dw_alloc_err *err, object path) except -1:
    if st == DW_ALLOC_EIO:
        raise OSError(err.sys_errno, _msg(err), os.fspath(path))
    _raise_common(st, err, f"allocator {os.fspath(path)!r}")


# --------------------------------------------------------------------------
# C-level benchmark loops (dwcore.bench.alloc): no Python between calls
# --------------------------------------------------------------------------

cdef inline double _now(int clk) noexcept nogil:
    cdef timespec ts
    clock_gettime(clk, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline uint64_t _xorshift(uint64_t *s) noexcept nogil:
    cdef uint64_t x = s[0]
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    s[0] = x
    return x


cdef int _grow(uint64_t **st, uint64_t **ln, size_t *cap) noexcept nogil:
    """Double two extent tables; 0 when out of memory (the old ones stay valid)."""
    cdef uint64_t *a = <uint64_t *>realloc(st[0], cap[0] * 16)
    if a == NULL:
        return 0
    st[0] = a
    a = <uint64_t *>realloc(ln[0], cap[0] * 16)
    if a == NULL:
        return 0
    ln[0] = a
    cap[0] *= 2
    return 1


def _bench_alloc_free(Allocator al, uint64_t iters, uint64_t n=1):
    """``iters`` x (alloc(n) then free it) from C: (wall s, thread cpu s)."""
    cdef dw_alloc *a = al._enter()
    cdef dw_alloc_err err
    cdef uint64_t i, s = 0
    cdef double w0, c0, w1, c1
    cdef int bad = 0
    try:
        with nogil:
            w0 = _now(CLOCK_MONOTONIC)
            c0 = _now(CLOCK_THREAD_CPUTIME_ID)
            for i in range(iters):
                if dw_alloc_alloc(a, n, DW_ALLOC_NO_HINT, &s, &err) != DW_ALLOC_OK:
                    bad = 1
                    break
                dw_alloc_free(a, s, n, &err)
            c1 = _now(CLOCK_THREAD_CPUTIME_ID)
            w1 = _now(CLOCK_MONOTONIC)
    finally:
        al._busy -= 1
    if bad:
        raise NoSpaceError("benchmark allocator is full", largest_free=0)
    return w1 - w0, c1 - c0


def _bench_fill(Allocator al, uint64_t n):
    """alloc(n) from C until the allocator is full: (blocks, wall s, thread cpu s)."""
    cdef dw_alloc *a = al._enter()
    cdef dw_alloc_err err
    cdef uint64_t s = 0, blocks = 0
    cdef double w0, c0, w1, c1
    try:
        with nogil:
            w0 = _now(CLOCK_MONOTONIC)
            c0 = _now(CLOCK_THREAD_CPUTIME_ID)
            while dw_alloc_alloc(a, n, DW_ALLOC_NO_HINT, &s, &err) == DW_ALLOC_OK:
                blocks += n
            c1 = _now(CLOCK_THREAD_CPUTIME_ID)
            w1 = _now(CLOCK_MONOTONIC)
    finally:
        al._busy -= 1
    return blocks, w1 - w0, c1 - c0


cdef int _fill_random(dw_alloc *a, uint64_t *rs, uint64_t max_n, uint64_t target,
                      uint64_t **st, uint64_t **ln, size_t *cap, size_t *cnt,
                      uint64_t *used) noexcept nogil:
    """Allocate random 1..max_n-block extents, recorded in st/ln, until the map
    is full or ``used`` reaches ``target``.  0 if the extent table could not grow."""
    cdef dw_alloc_err err
    cdef uint64_t n, s = 0
    while used[0] < target:
        n = 1 + _xorshift(rs) % max_n
        if dw_alloc_alloc(a, n, DW_ALLOC_NO_HINT, &s, &err) != DW_ALLOC_OK:
            return 1
        if cnt[0] == cap[0] and not _grow(st, ln, cap):
            return 0
        st[0][cnt[0]] = s
        ln[0][cnt[0]] = n
        cnt[0] += 1
        used[0] += n
    return 1


def _bench_fragmented(Allocator al, double fill=0.9, uint64_t max_n=256, uint64_t probe_n=256,
                      size_t probes=20000, uint64_t seed=12345, bint keep=False):
    """Fill with random 1..max_n-block allocations, free a random half, refill to
    ``fill``, then time ``probes`` contiguous allocations of probe_n blocks.  Each
    probe is freed right after (``keep=False``: the map stays as it was) or kept
    while a random held extent is freed (``keep=True``: churn, occupancy stays
    near ``fill``; the probes stop early if no run of probe_n blocks is left).
    Returns (latencies in ns of the probes done, as a float64 array, used
    fraction before probing, setup seconds)."""
    cdef dw_alloc *a = NULL
    cdef dw_alloc_err err
    cdef uint64_t nb = al._nblocks, rs = seed | 1, s = 0, n, used = 0, target
    cdef size_t cap = <size_t>(nb // 64 + 1024), cnt = 0, i, j, kept
    cdef uint64_t *st = <uint64_t *>malloc(cap * 8)
    cdef uint64_t *ln = <uint64_t *>malloc(cap * 8)
    lat = np.empty(probes, dtype=np.float64)
    cdef double[::1] vlat = lat
    cdef double t0, t1, setup0, setup
    cdef int ok = 1
    cdef size_t done = 0
    if st == NULL or ln == NULL:
        free(st)
        free(ln)
        raise MemoryError("benchmark extent table")
    target = <uint64_t>(fill * nb)
    try:
        a = al._enter()
    except BaseException:
        free(st)
        free(ln)
        raise
    try:
        with nogil:
            setup0 = _now(CLOCK_MONOTONIC)
            # 1. fill
            ok = _fill_random(a, &rs, max_n, <uint64_t>-1, &st, &ln, &cap, &cnt, &used)
            # 2. free a random half
            kept = 0
            for i in range(cnt):
                if ok and _xorshift(&rs) & 1:
                    dw_alloc_free(a, st[i], ln[i], &err)
                    used -= ln[i]
                else:
                    st[kept] = st[i]
                    ln[kept] = ln[i]
                    kept += 1
            cnt = kept
            # 3. refill to the target
            if ok:
                ok = _fill_random(a, &rs, max_n, target, &st, &ln, &cap, &cnt, &used)
            setup = _now(CLOCK_MONOTONIC) - setup0
            # 4. probe
            for i in range(probes):
                if not ok:
                    break
                t0 = _now(CLOCK_MONOTONIC)
                if dw_alloc_alloc(a, probe_n, DW_ALLOC_NO_HINT, &s, &err) != DW_ALLOC_OK:
                    break
                t1 = _now(CLOCK_MONOTONIC)
                vlat[i] = (t1 - t0) * 1e9
                done = i + 1
                if not keep:
                    dw_alloc_free(a, s, probe_n, &err)
                    continue
                j = <size_t>(_xorshift(&rs) % cnt)
                dw_alloc_free(a, st[j], ln[j], &err)
                st[j] = s
                ln[j] = probe_n
    finally:
        al._busy -= 1
        free(st)
        free(ln)
    if not ok:
        raise MemoryError("fragmented benchmark: out of memory for its extent table")
    if done == 0:
        raise NoSpaceError(f"fragmented benchmark: no free run of {probe_n} blocks at "
                           f"{used / <double>nb:.0%} used", largest_free=0)
    return lat[:done], used / <double>nb, setup
