# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""dwcore._native: the C kernels of csrc/ exposed to Python.

Buffers come in through the buffer protocol with no copies (bytes,
bytearray, memoryview, mmap, numpy).  A list of shards may be given as a
sequence of buffers or as one 2-D uint8 array (one row per shard).  The GIL
is released around every kernel call on buffers of 2 KiB or more.  C status
codes become dwcore.errors exceptions naming the argument at fault.

This module is the thin layer; the documented API is dwcore.ec and
dwcore.native.
"""

import os

import numpy as np

from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_RECORDS_RO, PyBUF_WRITABLE, PyBUF_WRITE,
    PyBuffer_IsContiguous, PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer,
)
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.pystate cimport PyThreadState
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t
from libc.string cimport memset

from dwcore.errors import InvalidArgumentError, UnsupportedISAError


cdef extern from "Python.h":
    PyThreadState *PyEval_SaveThread() noexcept
    void PyEval_RestoreThread(PyThreadState *state) noexcept

cdef extern from "dw_status.h":
    ctypedef enum dw_status:
        DW_OK
        DW_EINVAL
        DW_ENULL
        DW_ESINGULAR
        DW_EUNSUPPORTED

cdef extern from "dw_cpu.h":
    ctypedef enum dw_isa:
        DW_ISA_SCALAR
        DW_ISA_SSSE3
        DW_ISA_AVX2
        DW_ISA_COUNT
    dw_isa dw_cpu_detect()
    int dw_isa_supported(dw_isa isa)
    const char *dw_isa_name(dw_isa isa)
    dw_status dw_isa_from_name(const char *name, dw_isa *out)
    dw_status dw_set_isa(dw_isa isa)
    dw_isa dw_active_isa()
    dw_status dw_init(const char *force)

cdef extern from "dw_gf.h":
    uint8_t dw_gf_mul(uint8_t a, uint8_t b)
    uint8_t dw_gf_inv(uint8_t a)
    uint8_t dw_gf_exp(unsigned n)
    dw_status dw_gf_gen_cauchy1_matrix(uint8_t *a, int k, int m)
    dw_status dw_gf_invert_matrix(uint8_t *inp, uint8_t *out, int n)
    void dw_gf_init_tables(int k, int rows, const uint8_t *a, uint8_t *tbls)

cdef extern from "dw_ec.h":
    dw_status dw_ec_encode(size_t length, int k, int rows, const uint8_t *tbls,
                           const uint8_t *const *data, uint8_t *const *coding) nogil

cdef extern from "dw_raid.h":
    dw_status dw_xor_gen(int nsrc, size_t length, const uint8_t *const *src, uint8_t *dst) nogil
    dw_status dw_pq_gen(int k, size_t length, const uint8_t *const *data, uint8_t *p,
                        uint8_t *q) nogil
    dw_status dw_pqr_gen(int k, size_t length, const uint8_t *const *data, uint8_t *p,
                         uint8_t *q, uint8_t *r) nogil
    dw_status dw_raid6_recov_2data(int k, size_t length, int a, int b, uint8_t *const *data,
                                   const uint8_t *p, const uint8_t *q) nogil
    dw_status dw_raid6_recov_datap(int k, size_t length, int a, uint8_t *const *data,
                                   uint8_t *p, const uint8_t *q) nogil


cdef enum:
    MAX_SHARDS = 256        # k + m <= 256 for Reed-Solomon
    MAX_BUFS = 258          # 255 data blocks + P, Q, R
    MAX_PQ_DATA = 255       # 2^255 == 1: P+Q(+R) codes stop at 255 data blocks
    NOGIL_MIN_BYTES = 2048  # release the GIL from this buffer size up
    TBL_BYTES = 32


# --------------------------------------------------------------------------
# The GIL is released around kernel calls on buffers of NOGIL_MIN_BYTES or
# more; below that, releasing costs more than the kernel.  Between the two
# calls only C runs: no Python object may be touched.
# --------------------------------------------------------------------------

cdef inline PyThreadState *_release_gil(size_t nbytes) noexcept:
    if nbytes >= NOGIL_MIN_BYTES:
        return PyEval_SaveThread()
    return NULL


cdef inline void _restore_gil(PyThreadState *state) noexcept:
    if state != NULL:
        PyEval_RestoreThread(state)


# --------------------------------------------------------------------------
# Instruction-set selection
# --------------------------------------------------------------------------

def _init_from_env():
    force = os.environ.get("DWCORE_FORCE_ISA", "").strip()
    cdef bytes raw = force.encode("ascii", "replace")
    cdef dw_status st = dw_init(raw)
    if st == DW_EINVAL:
        raise UnsupportedISAError(
            f"DWCORE_FORCE_ISA={force!r} is not an instruction set dwcore knows; "
            f"use one of {', '.join(isa_names())} or unset it")
    if st == DW_EUNSUPPORTED:
        raise UnsupportedISAError(
            f"DWCORE_FORCE_ISA={force!r} cannot run on this CPU (best available: "
            f"{detected_isa()}); unset it or choose one of {', '.join(available_isas())}")


def isa_names():
    """Every instruction set this build knows, slowest first."""
    return [dw_isa_name(<dw_isa>i).decode() for i in range(<int>DW_ISA_COUNT)]


def available_isas():
    """The instruction sets that can run on this CPU, slowest first."""
    return [dw_isa_name(<dw_isa>i).decode() for i in range(<int>DW_ISA_COUNT)
            if dw_isa_supported(<dw_isa>i)]


def detected_isa():
    """The best instruction set this CPU and OS support."""
    return dw_isa_name(dw_cpu_detect()).decode()


def active_isa():
    """The instruction set the kernels use now."""
    return dw_isa_name(dw_active_isa()).decode()


def set_isa(name):
    """Point every kernel at instruction set ``name`` ("scalar", "ssse3", "avx2")."""
    cdef dw_isa isa
    if not isinstance(name, str):
        raise InvalidArgumentError(f"isa must be a string, got {type(name).__name__}")
    if dw_isa_from_name(name.encode("ascii", "replace"), &isa) != DW_OK:
        raise InvalidArgumentError(
            f"isa={name!r} is unknown; use one of {', '.join(isa_names())}")
    if dw_set_isa(isa) != DW_OK:
        raise UnsupportedISAError(
            f"isa={name!r} cannot run on this CPU; available: {', '.join(available_isas())}")


_init_from_env()


# --------------------------------------------------------------------------
# GF(2^8) helpers (setup paths, not hot)
# --------------------------------------------------------------------------

cdef int _check_byte(object v, str name) except -1:
    if not isinstance(v, int) or not 0 <= v <= 255:
        raise InvalidArgumentError(f"{name} must be an int in 0..255, got {v!r}")
    return 0


def gf_mul(a, b):
    """Product of two GF(2^8) elements (polynomial 0x11D)."""
    _check_byte(a, "a")
    _check_byte(b, "b")
    return dw_gf_mul(a, b)


def gf_inv(a):
    """Multiplicative inverse of a non-zero GF(2^8) element."""
    _check_byte(a, "a")
    if a == 0:
        raise InvalidArgumentError("a=0 has no inverse in GF(2^8)")
    return dw_gf_inv(a)


def gf_exp(unsigned int n):
    """2**n in GF(2^8)."""
    return dw_gf_exp(n)


def cauchy_matrix(int k, int m):
    """(k+m) x k systematic Cauchy matrix, row-major bytes (ISA-L convention)."""
    if k < 1 or m < 0 or k + m > MAX_SHARDS:
        raise InvalidArgumentError(
            f"k={k}, m={m}: need k >= 1, m >= 0 and k + m <= {MAX_SHARDS}")
    out = PyBytes_FromStringAndSize(NULL, (k + m) * k)
    dw_gf_gen_cauchy1_matrix(<uint8_t *>PyBytes_AS_STRING(out), k, m)
    return out


def invert_matrix(bytes matrix, int n):
    """Inverse of an n x n row-major GF(2^8) matrix; None if it is singular."""
    if n < 1 or n > MAX_SHARDS or PyBytes_GET_SIZE(matrix) != n * n:
        raise InvalidArgumentError(f"matrix must hold n*n = {n * n} bytes for n={n}")
    work = bytearray(matrix)
    out = PyBytes_FromStringAndSize(NULL, n * n)
    cdef uint8_t[::1] w = work
    if dw_gf_invert_matrix(&w[0], <uint8_t *>PyBytes_AS_STRING(out), n) != DW_OK:
        return None
    return out


def matrix_mul(bytes a, bytes b, int rows, int inner, int cols):
    """GF(2^8) product of a (rows x inner) and b (inner x cols), row-major bytes."""
    for name, v in (("rows", rows), ("inner", inner), ("cols", cols)):
        if not 1 <= v <= MAX_SHARDS:
            raise InvalidArgumentError(f"matrix_mul: {name}={v} must be in 1..{MAX_SHARDS}")
    if (PyBytes_GET_SIZE(a) != <Py_ssize_t>rows * inner
            or PyBytes_GET_SIZE(b) != <Py_ssize_t>inner * cols):
        raise InvalidArgumentError("matrix_mul: operand sizes do not match the dimensions")
    out = PyBytes_FromStringAndSize(NULL, rows * cols)
    cdef const uint8_t *pa = <const uint8_t *>PyBytes_AS_STRING(a)
    cdef const uint8_t *pb = <const uint8_t *>PyBytes_AS_STRING(b)
    cdef uint8_t *po = <uint8_t *>PyBytes_AS_STRING(out)
    cdef int i, j, t
    cdef uint8_t s
    for i in range(rows):
        for j in range(cols):
            s = 0
            for t in range(inner):
                s ^= dw_gf_mul(pa[i * inner + t], pb[t * cols + j])
            po[i * cols + j] = s
    return out


def init_tables(bytes coeffs, int k, int rows):
    """Split-nibble tables (32 bytes per coefficient) for a rows x k matrix."""
    if not (1 <= k <= MAX_SHARDS and 1 <= rows <= MAX_SHARDS) \
            or PyBytes_GET_SIZE(coeffs) != <Py_ssize_t>k * rows:
        raise InvalidArgumentError(
            f"coeffs must hold rows*k bytes with k and rows in 1..{MAX_SHARDS} "
            f"(k={k}, rows={rows}, got {PyBytes_GET_SIZE(coeffs)} bytes)")
    out = PyBytes_FromStringAndSize(NULL, k * rows * TBL_BYTES)
    dw_gf_init_tables(k, rows, <const uint8_t *>PyBytes_AS_STRING(coeffs),
                      <uint8_t *>PyBytes_AS_STRING(out))
    return out


# --------------------------------------------------------------------------
# Buffer collection: a list of shards as a sequence of buffers or a 2-D array
# --------------------------------------------------------------------------

cdef struct BufSet:
    Py_buffer views[MAX_BUFS]
    int nviews
    uint8_t *ptrs[MAX_BUFS]
    Py_ssize_t count
    Py_ssize_t length


cdef inline void bufset_init(BufSet *bs) noexcept:
    bs.nviews = 0
    bs.count = 0
    bs.length = -1


cdef void bufset_release(BufSet *bs) noexcept:
    cdef int i
    for i in range(bs.nviews):
        PyBuffer_Release(&bs.views[i])
    bs.nviews = 0


cdef inline bint _bytes_format(const char *fmt) noexcept:
    # Raw bytes only: uint8 ("B", optionally with a byte-order prefix) or char.
    if fmt == NULL:
        return True
    if fmt[0] in (b'@', b'=', b'<', b'>', b'!'):
        fmt += 1
    return (fmt[0] == b'B' or fmt[0] == b'c') and fmt[1] == 0


cdef int _get_view(object obj, Py_buffer *view, bint writable, str argname, object index) except -1:
    cdef int flags = PyBUF_RECORDS_RO | (PyBUF_WRITABLE if writable else 0)
    if index is None:
        where = argname
    elif isinstance(index, str):
        where = index
    else:
        where = f"{argname}[{index}]"
    try:
        PyObject_GetBuffer(obj, view, flags)
    except (BufferError, ValueError) as exc:
        if writable:
            try:
                PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO)
            except (BufferError, ValueError):
                pass
            else:
                PyBuffer_Release(view)
                raise InvalidArgumentError(
                    f"{where} is read-only; pass a writable buffer (bytearray or numpy array)") from None
        raise InvalidArgumentError(f"{where} is not a usable buffer: {exc}") from None
    except TypeError:
        raise InvalidArgumentError(
            f"{where} must be a bytes-like object or uint8 array, got {type(obj).__name__}") from None
    if view.itemsize != 1 or not _bytes_format(view.format):
        fmt = view.format.decode() if view.format != NULL else "?"
        PyBuffer_Release(view)
        raise InvalidArgumentError(f"{where} must hold uint8 bytes, got format {fmt!r}")
    return 0


cdef int bufset_collect(BufSet *bs, object seq, Py_ssize_t expected, bint writable,
                        str argname, bint allow_none, tuple names=None) except -1:
    """Acquire every shard of `seq`; the caller releases with bufset_release."""
    cdef Py_buffer *view
    cdef Py_ssize_t i, n, rows, row_len
    cdef char *base
    if seq is None:
        raise InvalidArgumentError(f"{argname} must be a list of buffers or a 2-D uint8 array")
    if PyObject_CheckBuffer(seq) and not isinstance(seq, (bytes, bytearray, memoryview)) \
            or (isinstance(seq, memoryview) and (<memoryview>seq).ndim == 2):
        # One 2-D array: one row per shard.
        view = &bs.views[bs.nviews]
        _get_view(seq, view, writable, argname, None)
        bs.nviews += 1
        if view.ndim != 2:
            raise InvalidArgumentError(
                f"{argname} must be a 2-D (shards, length) uint8 array or a list of buffers, "
                f"got a {view.ndim}-D array")
        rows = view.shape[0]
        row_len = view.shape[1]
        if view.strides[1] != 1 and row_len > 1:
            raise InvalidArgumentError(f"{argname} rows must be contiguous (strides[1] == 1)")
        if expected >= 0 and rows != expected:
            raise InvalidArgumentError(f"{argname} has {rows} rows, expected {expected}")
        if rows < 1 or rows > MAX_BUFS:
            raise InvalidArgumentError(f"{argname} must have 1..{MAX_BUFS} rows, got {rows}")
        base = <char *>view.buf
        for i in range(rows):
            bs.ptrs[i] = <uint8_t *>(base + i * view.strides[0])
        bs.count = rows
        bs.length = row_len
        return 0
    if isinstance(seq, (bytes, bytearray, memoryview, str)):
        raise InvalidArgumentError(
            f"{argname} must be a sequence of buffers (one per shard), not a single "
            f"{type(seq).__name__}")
    try:
        n = len(seq)
    except TypeError:
        raise InvalidArgumentError(
            f"{argname} must be a sequence of buffers or a 2-D uint8 array, "
            f"got {type(seq).__name__}") from None
    if expected >= 0 and n != expected:
        raise InvalidArgumentError(f"{argname} has {n} buffers, expected {expected}")
    if n < 1 or n > MAX_BUFS:
        raise InvalidArgumentError(f"{argname} must hold 1..{MAX_BUFS} buffers, got {n}")
    first = None
    for i in range(n):
        item = seq[i]
        if item is None:
            if not allow_none:
                raise InvalidArgumentError(f"{argname}[{i}] is None")
            bs.ptrs[i] = NULL
            continue
        where = names[i] if names is not None else f"{argname}[{i}]"
        view = &bs.views[bs.nviews]
        _get_view(item, view, writable, argname, where)
        bs.nviews += 1
        if not _is_c_contig(view):
            raise InvalidArgumentError(f"{where} must be C-contiguous")
        if bs.length < 0:
            bs.length = view.len
            first = where
        elif view.len != bs.length:
            raise InvalidArgumentError(
                f"{where} is {view.len} bytes but {first} is {bs.length}: "
                f"all shards must have equal length")
        bs.ptrs[i] = <uint8_t *>view.buf
    bs.count = n
    if bs.length < 0:
        bs.length = 0
    return 0


cdef inline bint _is_c_contig(Py_buffer *view) noexcept:
    cdef Py_ssize_t expect = view.itemsize
    cdef int d
    if view.strides == NULL:
        return True
    for d in range(view.ndim - 1, -1, -1):
        if view.shape[d] > 1 and view.strides[d] != expect:
            return False
        expect *= view.shape[d]
    return True


cdef int _same_length(BufSet *a, BufSet *b, str aname, str bname) except -1:
    if a.length != b.length:
        raise InvalidArgumentError(
            f"{bname} buffers are {b.length} bytes but {aname} buffers are {a.length}: "
            f"lengths must match")
    return 0


cdef inline bint _overlaps(const uint8_t *a, const uint8_t *b, size_t n) noexcept:
    return a != NULL and b != NULL and n > 0 and a < b + n and b < a + n


cdef int _check_io(BufSet *ins, BufSet *outs, str inname, str outname,
                   bint alias_first=False, tuple in_idx=None, tuple out_idx=None) except -1:
    """Equal lengths, and no output shares memory with an input or another output.

    Kernels read inputs while writing outputs (and overlap their last
    vector), so aliasing would silently produce wrong bytes.  With
    alias_first, a single output may be exactly the first input (in place
    XOR accumulate, which the XOR kernel supports)."""
    cdef Py_ssize_t i, j
    cdef size_t n
    _same_length(ins, outs, inname, outname or " and ".join(out_idx))
    oname = (lambda x: f"{outname}[{out_idx[x] if out_idx else x}]") if outname else (
        lambda x: out_idx[x])
    n = <size_t>ins.length
    for i in range(outs.count):
        for j in range(ins.count):
            if not _overlaps(outs.ptrs[i], ins.ptrs[j], n):
                continue
            if alias_first and j == 0 and outs.count == 1 and outs.ptrs[i] == ins.ptrs[0]:
                continue
            raise InvalidArgumentError(
                f"{oname(i)} overlaps {inname}[{in_idx[j] if in_idx else j}]: outputs must "
                f"not share memory with inputs")
        for j in range(i):
            if _overlaps(outs.ptrs[i], outs.ptrs[j], n):
                raise InvalidArgumentError(
                    f"{oname(i)} overlaps {oname(j)}: outputs must be distinct buffers")
    return 0


cdef int _check_disjoint(uint8_t **ptrs, Py_ssize_t count, size_t n, str name) except -1:
    """Every buffer of an in-place recovery is a separate member of the stripe."""
    cdef Py_ssize_t i, j
    for i in range(count):
        for j in range(i):
            if _overlaps(ptrs[i], ptrs[j], n):
                raise InvalidArgumentError(
                    f"{name}: members {j} and {i} share memory; each block of a stripe "
                    f"must be its own buffer")
    return 0


cdef int _check_stripe_disjoint(BufSet *data, BufSet *parity) except -1:
    cdef uint8_t *ptrs[MAX_BUFS]
    cdef Py_ssize_t i, n = data.count
    for i in range(n):
        ptrs[i] = data.ptrs[i]
    for i in range(parity.count):
        ptrs[n + i] = parity.ptrs[i]
    return _check_disjoint(ptrs, n + parity.count, <size_t>data.length, "stripe")


cdef int _check_status(dw_status st, str what) except -1:
    if st == DW_OK:
        return 0
    if st == DW_EINVAL:
        raise InvalidArgumentError(f"{what}: argument out of range")
    if st == DW_ENULL:
        raise InvalidArgumentError(f"{what}: a required buffer is missing")
    if st == DW_ESINGULAR:
        raise InvalidArgumentError(f"{what}: the matrix is singular")
    raise UnsupportedISAError(f"{what}: unsupported on this CPU")


# --------------------------------------------------------------------------
# Reed-Solomon
# --------------------------------------------------------------------------

cdef const uint8_t *_encode_tables(bytes tables, int k, int rows) except NULL:
    """The tables of a rows x k matrix, after checking their dimensions."""
    if not (1 <= k <= MAX_SHARDS and 1 <= rows <= MAX_SHARDS):
        raise InvalidArgumentError(f"k={k}, rows={rows}: both must be in 1..{MAX_SHARDS}")
    if PyBytes_GET_SIZE(tables) != <Py_ssize_t>k * rows * TBL_BYTES:
        raise InvalidArgumentError(
            f"tables hold {PyBytes_GET_SIZE(tables)} bytes, expected k*rows*32 = "
            f"{<Py_ssize_t>k * rows * TBL_BYTES}")
    return <const uint8_t *>PyBytes_AS_STRING(tables)


cdef int _encode(const uint8_t *tb, int k, int rows, BufSet *din, BufSet *dout) except -1:
    """Run the dot-product kernel over collected, checked buffers."""
    cdef size_t length = <size_t>din.length
    cdef PyThreadState *gil = _release_gil(length)
    cdef dw_status st = dw_ec_encode(length, k, rows, tb, <const uint8_t *const *>din.ptrs,
                                     dout.ptrs)
    _restore_gil(gil)
    return _check_status(st, "ec_encode")


def ec_encode(bytes tables, int k, int rows, data, out, str data_name="data",
              str out_name="out"):
    """coding[i] = sum_j a[i][j] * data[j] for the tables of a rows x k matrix.

    ``data``: k buffers (or a (k, n) array); ``out``: rows writable buffers
    (or a (rows, n) array).  Entries of ``data`` must all be present.
    """
    cdef BufSet din, dout
    cdef const uint8_t *tb = _encode_tables(tables, k, rows)
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect(&din, data, k, False, data_name, False)
        bufset_collect(&dout, out, rows, True, out_name, False)
        _check_io(&din, &dout, data_name, out_name)
        _encode(tb, k, rows, &din, &dout)
    finally:
        bufset_release(&din)
        bufset_release(&dout)


def ec_encode_new(bytes tables, int k, int rows, data):
    """Like ec_encode, into a new (rows, n) uint8 array, which is returned."""
    cdef BufSet din, dout
    cdef const uint8_t *tb = _encode_tables(tables, k, rows)
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect(&din, data, k, False, "data", False)
        out = np.empty((rows, din.length), dtype=np.uint8)
        bufset_collect(&dout, out, rows, True, "out", False)
        _encode(tb, k, rows, &din, &dout)
    finally:
        bufset_release(&din)
        bufset_release(&dout)
    return out


def ec_encode_rows(bytes tables, int k, int rows, shards, tuple src, tuple dst):
    """ec_encode over rows of one shard list: data = shards[src], out = shards[dst].

    ``shards`` is a sequence of buffers or a 2-D array; ``src`` holds k and
    ``dst`` rows distinct indices into it (the decode fast path: no
    per-call lists or views are built)."""
    cdef BufSet din, dout
    cdef const uint8_t *tb = _encode_tables(tables, k, rows)
    if len(src) != k or len(dst) != rows:
        raise InvalidArgumentError(f"need {k} source and {rows} destination indices")
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect_rows(&din, shards, src, False, "shards")
        bufset_collect_rows(&dout, shards, dst, True, "shards")
        _check_io(&din, &dout, "shards", "shards", False, src, dst)
        _encode(tb, k, rows, &din, &dout)
    finally:
        bufset_release(&din)
        bufset_release(&dout)


cdef int bufset_collect_rows(BufSet *bs, object seq, tuple idx, bint writable,
                             str argname) except -1:
    """Acquire shards seq[i] for i in idx (a 2-D array is acquired once).

    For a list, every entry's length is checked first (all k+m shards must
    agree, not only those this call reads), naming the odd one out."""
    cdef Py_buffer *view
    cdef Py_ssize_t j, i, n = len(idx)
    cdef char *base
    if n > MAX_BUFS:
        raise InvalidArgumentError(f"{argname}: at most {MAX_BUFS} shards per call, got {n}")
    if PyObject_CheckBuffer(seq) and not isinstance(seq, (bytes, bytearray)):
        view = &bs.views[bs.nviews]
        _get_view(seq, view, writable, argname, None)
        bs.nviews += 1
        if view.ndim != 2 or (view.strides[1] != 1 and view.shape[1] > 1):
            raise InvalidArgumentError(
                f"{argname} must be a 2-D (shards, length) uint8 array with contiguous rows "
                f"or a list of buffers")
        base = <char *>view.buf
        for j in range(n):
            i = idx[j]
            if not 0 <= i < view.shape[0]:
                raise InvalidArgumentError(f"{argname} has no row {i}")
            bs.ptrs[j] = <uint8_t *>(base + i * view.strides[0])
        bs.count = n
        bs.length = view.shape[1]
        return 0
    for j in range(n):
        i = idx[j]
        item = seq[i]
        if item is None:
            raise InvalidArgumentError(
                f"{argname}[{i}] is None but is not listed as missing; pass its buffer")
        view = &bs.views[bs.nviews]
        _get_view(item, view, writable, argname, i)
        bs.nviews += 1
        if not _is_c_contig(view):
            raise InvalidArgumentError(f"{argname}[{i}] must be C-contiguous")
        bs.ptrs[j] = <uint8_t *>view.buf
    bs.count = n
    bs.length = shard_length(seq, -1, argname, True)
    return 0


def shard_length(data, Py_ssize_t expected, str argname, bint allow_none=False):
    """Validate a list of shards and return their common length."""
    cdef BufSet bs
    bufset_init(&bs)
    try:
        bufset_collect(&bs, data, expected, False, argname, allow_none)
        return bs.length
    finally:
        bufset_release(&bs)


# --------------------------------------------------------------------------
# RAID parity
# --------------------------------------------------------------------------

cdef void _reverse(uint8_t **ptrs, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    cdef uint8_t *t
    for i in range(n // 2):
        t = ptrs[i]
        ptrs[i] = ptrs[n - 1 - i]
        ptrs[n - 1 - i] = t


def xor_gen(data, out, str out_name="out"):
    """out = data[0] ^ data[1] ^ ...  (None entries count as zero blocks)."""
    cdef BufSet din, dout
    cdef dw_status st
    cdef PyThreadState *gil
    cdef size_t length
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect(&din, data, -1, False, "data", True)
        if din.count > MAX_BUFS - 1:
            raise InvalidArgumentError(
                f"data has {din.count} blocks; XOR parity supports at most {MAX_BUFS - 1}")
        bufset_collect(&dout, (out,), 1, True, "out", False, (out_name,))
        _check_io(&din, &dout, "data", "", True, None, (out_name,))
        length = <size_t>din.length
        gil = _release_gil(length)
        st = dw_xor_gen(<int>din.count, length, <const uint8_t *const *>din.ptrs,
                        dout.ptrs[0])
        _restore_gil(gil)
        _check_status(st, "xor_gen")
    finally:
        bufset_release(&din)
        bufset_release(&dout)


cdef _syndrome_gen(data, tuple outs, tuple names, bint reverse):
    """P and Q (and R when three outputs are given) over the data blocks."""
    cdef BufSet din, dout
    cdef dw_status st
    cdef PyThreadState *gil
    cdef size_t length
    cdef Py_ssize_t nout = len(outs)
    what = "P+Q" if nout == 2 else "P+Q+R"
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect(&din, data, -1, False, "data", True)
        if din.count > MAX_PQ_DATA:
            raise InvalidArgumentError(
                f"data has {din.count} blocks; {what} supports at most {MAX_PQ_DATA}")
        bufset_collect(&dout, outs, nout, True, "parity", False, names)
        _check_io(&din, &dout, "data", "", False, None, names)
        if reverse:
            _reverse(din.ptrs, din.count)
        length = <size_t>din.length
        gil = _release_gil(length)
        if nout == 2:
            st = dw_pq_gen(<int>din.count, length, <const uint8_t *const *>din.ptrs,
                           dout.ptrs[0], dout.ptrs[1])
        else:
            st = dw_pqr_gen(<int>din.count, length, <const uint8_t *const *>din.ptrs,
                            dout.ptrs[0], dout.ptrs[1], dout.ptrs[2])
        _restore_gil(gil)
        _check_status(st, what)
    finally:
        bufset_release(&din)
        bufset_release(&dout)


def pq_gen(data, p, q, bint reverse=False):
    """P and Q (md order: Q = sum 2^d D_d; reverse=True gives ZFS order)."""
    _syndrome_gen(data, (p, q), ("p", "q"), reverse)


def pqr_gen(data, p, q, r, bint reverse=False):
    """P, Q and R (md order: R = sum 4^d D_d; reverse=True gives ZFS order)."""
    _syndrome_gen(data, (p, q, r), ("p", "q", "r"), reverse)


def raid6_recov_2data(data, int a, int b, p, q, bint reverse=False):
    """Recover data[a] and data[b] in place from the other data, P and Q.

    ``data`` holds every data block; those at a and b must be writable and
    are overwritten.  With reverse=True the blocks are in ZFS order."""
    cdef BufSet din, dpar
    cdef dw_status st
    cdef size_t length
    cdef int k, ia, ib
    bufset_init(&din)
    bufset_init(&dpar)
    try:
        bufset_collect(&din, data, -1, False, "data", False)
        k = <int>din.count
        if k > MAX_PQ_DATA or not (0 <= a < k and 0 <= b < k and a != b):
            raise InvalidArgumentError(f"a={a}, b={b} must be distinct indices in 0..{k - 1}")
        _require_writable(data[a], f"data[{a}]")
        _require_writable(data[b], f"data[{b}]")
        bufset_collect(&dpar, (p, q), 2, False, "parity", False, ("p", "q"))
        _same_length(&din, &dpar, "data", "parity")
        _check_stripe_disjoint(&din, &dpar)
        if reverse:
            ia = k - 1 - a
            ib = k - 1 - b
        else:
            ia = a
            ib = b
        if ia > ib:
            ia, ib = ib, ia
        if reverse:
            _reverse(din.ptrs, din.count)
        length = <size_t>din.length
        with nogil:
            st = dw_raid6_recov_2data(k, length, ia, ib, din.ptrs, dpar.ptrs[0], dpar.ptrs[1])
        _check_status(st, "raid6_recov_2data")
    finally:
        bufset_release(&din)
        bufset_release(&dpar)


def raid6_recov_datap(data, int a, p, q, bint reverse=False):
    """Recover data[a] and P in place from the other data and Q."""
    cdef BufSet din, dpar
    cdef dw_status st
    cdef size_t length
    cdef int k, ia
    bufset_init(&din)
    bufset_init(&dpar)
    try:
        bufset_collect(&din, data, -1, False, "data", False)
        k = <int>din.count
        if k > MAX_PQ_DATA or not 0 <= a < k:
            raise InvalidArgumentError(f"a={a} must be an index in 0..{k - 1}")
        _require_writable(data[a], f"data[{a}]")
        bufset_collect(&dpar, (p, q), 2, False, "parity", False, ("p", "q"))
        _same_length(&din, &dpar, "data", "parity")
        _check_stripe_disjoint(&din, &dpar)
        _require_writable(p, "p")
        ia = k - 1 - a if reverse else a
        if reverse:
            _reverse(din.ptrs, din.count)
        length = <size_t>din.length
        with nogil:
            st = dw_raid6_recov_datap(k, length, ia, din.ptrs, dpar.ptrs[0], dpar.ptrs[1])
        _check_status(st, "raid6_recov_datap")
    finally:
        bufset_release(&din)
        bufset_release(&dpar)


cdef int _require_writable(object obj, str name) except -1:
    cdef Py_buffer view
    _get_view(obj, &view, True, name, None)
    PyBuffer_Release(&view)
    return 0


def new_bytes_to_fill(Py_ssize_t n):
    """``(data, view)``: a new ``bytes`` of ``n`` uninitialised bytes and a writable
    memoryview over it.

    For readers that fill a result in place (``preadv`` straight into it)
    instead of filling a scratch buffer and copying it into a new ``bytes``.
    The caller must fill every byte through ``view`` and drop ``view``
    before ``data`` is handed to anyone (a bytes object is immutable once
    shared; its hash is not cached until first asked for).
    """
    if n < 0:
        raise InvalidArgumentError(f"n must be >= 0, got {n}")
    data = PyBytes_FromStringAndSize(NULL, n)
    # A page copied into a buffer 1-31 bytes past a 64-byte boundary copies several
    # times slower (rep movsb; see io.pxi).  The allocator decides where the bytes
    # start: a few more tries (the earlier ones still held, so each lands elsewhere)
    # usually give a buffer the kernel fills at full speed.
    cdef list held = []
    cdef size_t skew
    if n >= 4096:
        for _ in range(3):
            skew = (<size_t>PyBytes_AS_STRING(data)) & 63
            if skew == 0 or skew >= 32:
                break
            held.append(data)
            data = PyBytes_FromStringAndSize(NULL, n)
    del held
    view = PyMemoryView_FromMemory(PyBytes_AS_STRING(data), n, PyBUF_WRITE)
    return data, view


def require_writable(obj, str name):
    """Raise InvalidArgumentError naming `name` unless `obj` is a writable byte buffer."""
    _require_writable(obj, name)


# --------------------------------------------------------------------------
# Raw kernel loops: the C kernel alone, for measuring binding overhead
# --------------------------------------------------------------------------

def loop_ec_encode(bytes tables, int k, int rows, data, out, long iterations):
    """Run the encode kernel `iterations` times without the GIL (benchmarks)."""
    cdef BufSet din, dout
    cdef long it
    cdef const uint8_t *tb = _encode_tables(tables, k, rows)
    cdef size_t length
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect(&din, data, k, False, "data", False)
        bufset_collect(&dout, out, rows, True, "out", False)
        _same_length(&din, &dout, "data", "out")
        length = <size_t>din.length
        _check_status(dw_ec_encode(length, k, rows, tb, <const uint8_t *const *>din.ptrs,
                                   dout.ptrs), "loop_ec_encode")
        with nogil:
            for it in range(iterations):
                dw_ec_encode(length, k, rows, tb, <const uint8_t *const *>din.ptrs, dout.ptrs)
    finally:
        bufset_release(&din)
        bufset_release(&dout)


def loop_pq_gen(data, p, q, long iterations):
    """Run the P+Q kernel `iterations` times without the GIL (benchmarks)."""
    cdef BufSet din, dout
    cdef long it
    cdef size_t length
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect(&din, data, -1, False, "data", False)
        bufset_collect(&dout, (p, q), 2, True, "parity", False)
        _same_length(&din, &dout, "data", "parity")
        length = <size_t>din.length
        _check_status(dw_pq_gen(<int>din.count, length, <const uint8_t *const *>din.ptrs,
                                dout.ptrs[0], dout.ptrs[1]), "loop_pq_gen")
        with nogil:
            for it in range(iterations):
                dw_pq_gen(<int>din.count, length, <const uint8_t *const *>din.ptrs,
                          dout.ptrs[0], dout.ptrs[1])
    finally:
        bufset_release(&din)
        bufset_release(&dout)


def loop_xor_gen(data, out, long iterations):
    """Run the XOR kernel `iterations` times without the GIL (benchmarks)."""
    cdef BufSet din, dout
    cdef long it
    cdef size_t length
    bufset_init(&din)
    bufset_init(&dout)
    try:
        bufset_collect(&din, data, -1, False, "data", False)
        bufset_collect(&dout, (out,), 1, True, "out", False)
        _same_length(&din, &dout, "data", "out")
        length = <size_t>din.length
        _check_status(dw_xor_gen(<int>din.count, length, <const uint8_t *const *>din.ptrs,
                                 dout.ptrs[0]), "loop_xor_gen")
        with nogil:
            for it in range(iterations):
                dw_xor_gen(<int>din.count, length, <const uint8_t *const *>din.ptrs, dout.ptrs[0])
    finally:
        bufset_release(&din)
        bufset_release(&dout)


# Checksum kernels (CRC-32C, Fletcher-4): same module, same dispatch state.
include "checksum.pxi"
include "io.pxi"
