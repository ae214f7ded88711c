# Included by _native.pyx: the checksum kernels of csrc/ (dw_checksum.h).
#
# One extension module holds every dispatched kernel family, so
# dwcore.native.set_isa / DWCORE_FORCE_ISA reach them all (each extension
# module would otherwise link its own copy of the kernel library and its own
# dispatch state).  Buffers come in through the buffer protocol with no copies
# (bytes, bytearray, memoryview, mmap, numpy arrays of any dtype, read as raw
# bytes); they must be C-contiguous.  The GIL is released around kernel calls
# on 2 KiB or more; below that the call stays lean, because per-block
# checksums are often called on small buffers.  The documented API is
# dwcore.checksum.

import sys

from cpython.bytes cimport PyBytes_CheckExact
from cpython.exc cimport PyErr_Occurred
from cpython.number cimport PyNumber_Index
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint32_t, uint64_t, uintptr_t

cdef extern from "Python.h":
    # Declared without `except -1` so the small-buffer path checks the
    # status itself instead of setting up a try block.
    int PyObject_GetBuffer_raw "PyObject_GetBuffer" (object obj, Py_buffer *view, int flags)
    int PyBUF_SIMPLE
    Py_ssize_t PY_SSIZE_T_MAX
    unsigned long long PyLong_AsUnsignedLongLong_raw "PyLong_AsUnsignedLongLong" (object o)
    bint PyLong_CheckExact(object o)
    void PyErr_Clear()

cdef extern from "dw_checksum.h":
    uint32_t dw_crc32c(uint32_t crc, const void *buf, size_t length) nogil
    uint32_t dw_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) nogil
    dw_status dw_crc32c_blocks(const void *buf, size_t block_size, size_t nblocks,
                               uint32_t *out) nogil
    dw_status dw_verify_blocks(const void *buf, size_t block_size, size_t nblocks,
                               const uint32_t *expected, uint64_t *bad, size_t *nbad) nogil
    dw_status dw_fletcher4(const void *buf, size_t length, const uint64_t *init,
                           uint64_t *out) nogil
    dw_status dw_fletcher4_blocks(const void *buf, size_t block_size, size_t nblocks,
                                  uint64_t *out) nogil
    const char *dw_crc32c_impl() nogil
    const char *dw_fletcher4_impl() nogil


cdef object _ZERO = 0


def implementations():
    """The kernel variant in use per family: {"crc32c": ..., "fletcher4": ...}."""
    return {"crc32c": dw_crc32c_impl().decode(), "fletcher4": dw_fletcher4_impl().decode()}


# --------------------------------------------------------------------------
# Argument handling
# --------------------------------------------------------------------------

cdef int _raise_buffer_error(object obj, str name, int flags) except -1:
    """After a failed PyObject_GetBuffer_raw: raise a clear error naming `name`.

    The slow path repeats the request through the raising declaration to
    see why it failed."""
    cdef Py_buffer v
    PyErr_Clear()
    try:
        PyObject_GetBuffer(obj, &v, flags)
    except (BufferError, ValueError) as exc:  # numpy: ValueError "not contiguous"
        if flags & PyBUF_WRITABLE:
            raise InvalidArgumentError(
                f"{name} must be a writable, C-contiguous buffer: {exc}") from None
        raise InvalidArgumentError(f"{name} must be a C-contiguous buffer: {exc}") from None
    except Exception:
        pass
    else:
        PyBuffer_Release(&v)
    raise InvalidArgumentError(
        f"{name} must be a bytes-like object (bytes, bytearray, memoryview, mmap, numpy "
        f"array), got {type(obj).__name__}")


cdef inline int _get(object obj, Py_buffer *view, str name) except -1:
    if PyObject_GetBuffer_raw(obj, view, PyBUF_SIMPLE) < 0:
        _raise_buffer_error(obj, name, PyBUF_SIMPLE)
    return 0


cdef int _bad_u32(object value, str name) except -1:
    raise InvalidArgumentError(
        f"{name} must be an int in 0..0xFFFFFFFF (a previous CRC-32C), got {value!r}")


cdef object _as_int(object value):
    """value as a Python int if it is an integer (int, numpy integer, __index__),
    else None; bool is not an integer here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return PyNumber_Index(value)
    except TypeError:
        return None


cdef inline int _as_u32(object value, str name, uint32_t *out) except -1:
    cdef unsigned long long v
    if PyLong_CheckExact(value):
        v = PyLong_AsUnsignedLongLong_raw(value)
        if v == <unsigned long long>-1 and PyErr_Occurred() != NULL:
            PyErr_Clear()
            _bad_u32(value, name)
    else:
        iv = _as_int(value)
        if iv is None or not 0 <= iv <= 0xFFFFFFFF:
            _bad_u32(value, name)
        v = iv
    if v > 0xFFFFFFFF:
        _bad_u32(value, name)
    out[0] = <uint32_t>v
    return 0


cdef Py_ssize_t _block_count(Py_buffer *view, object block_size, str name,
                             size_t *bs_out) except -1:
    """The number of whole blocks in `view` (the block size goes to bs_out)."""
    size = _as_int(block_size)
    if size is None or size <= 0 or size > PY_SSIZE_T_MAX:
        raise InvalidArgumentError(f"block_size must be a positive int, got {block_size!r}")
    cdef Py_ssize_t bs = size
    bs_out[0] = <size_t>bs
    if view.len % bs:
        raise InvalidArgumentError(
            f"{name} holds {view.len} bytes, not a whole number of {bs}-byte blocks "
            f"({view.len // bs} blocks and {view.len % bs} bytes over); pass a buffer whose "
            f"length is a multiple of block_size")
    return view.len // bs


cdef bint _LITTLE = sys.byteorder == "little"


cdef inline bint _is_u32_format(const char *fmt) noexcept:
    # Native-order unsigned integers: "I", "@I", "=I", "<I" on little-endian
    # hosts, ">I" on big-endian ones; "L" too (the caller checks itemsize 4).
    if fmt == NULL:
        return False
    if fmt[0] == b'@' or fmt[0] == b'=' or (fmt[0] == b'<' and _LITTLE) \
            or (fmt[0] == b'>' and not _LITTLE):
        fmt += 1
    return (fmt[0] == b'I' or fmt[0] == b'L') and fmt[1] == 0


cdef int _get_u32_array(object obj, Py_buffer *view, Py_ssize_t count, bint writable,
                        str name) except -1:
    """A C-contiguous buffer of `count` native uint32 values."""
    cdef int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (PyBUF_WRITABLE if writable else 0)
    if PyObject_GetBuffer_raw(obj, view, flags) < 0:
        _raise_buffer_error(obj, name, flags)
    cdef Py_ssize_t itemsize = view.itemsize, n = view.len // 4
    if itemsize != 4 or not _is_u32_format(view.format):
        fmt = view.format.decode() if view.format != NULL else "?"
        PyBuffer_Release(view)
        raise InvalidArgumentError(
            f"{name} must hold native uint32 values, got format {fmt!r} (itemsize {itemsize})")
    if n != count:
        PyBuffer_Release(view)
        raise InvalidArgumentError(f"{name} holds {n} values, expected one per block: {count}")
    return 0



# --------------------------------------------------------------------------
# CRC-32C
# --------------------------------------------------------------------------

def crc32c(data, value=0):
    """CRC-32C (Castagnoli) of ``data``, continuing the CRC ``value`` (0 to start).

    ``crc32c(b"123456789") == 0xE3069283``, and like ``zlib.crc32``,
    ``crc32c(b, crc32c(a)) == crc32c(a + b)``.  ``data`` is any C-contiguous
    bytes-like object (read as raw bytes, no copy); ``value`` an int in
    0..0xFFFFFFFF.  The GIL is released from 2 KiB.
    """
    cdef Py_buffer view
    cdef uint32_t crc
    cdef const char *raw
    cdef Py_ssize_t n
    if value is _ZERO:  # the default: skip the conversion
        crc = 0
    else:
        _as_u32(value, "value", &crc)
    if PyBytes_CheckExact(data):  # immutable and alive for the call: no buffer export needed
        raw = PyBytes_AS_STRING(data)
        n = PyBytes_GET_SIZE(data)
        if n >= NOGIL_MIN_BYTES:
            with nogil:
                crc = dw_crc32c(crc, raw, <size_t>n)
        else:
            crc = dw_crc32c(crc, raw, <size_t>n)
        return crc
    _get(data, &view, "data")
    if view.len >= NOGIL_MIN_BYTES:
        with nogil:
            crc = dw_crc32c(crc, view.buf, <size_t>view.len)
    else:
        crc = dw_crc32c(crc, view.buf, <size_t>view.len)
    PyBuffer_Release(&view)
    return crc


def crc32c_combine(crc_a, crc_b, length_b):
    """The CRC-32C of A + B from ``crc_a = crc32c(A)``, ``crc_b = crc32c(B)`` and len(B).

    Like ``zlib.crc32_combine``: O(log length_b), no data needed, so CRCs
    computed in parallel over pieces can be joined.
    """
    cdef uint32_t a, b
    _as_u32(crc_a, "crc_a", &a)
    _as_u32(crc_b, "crc_b", &b)
    length = _as_int(length_b)
    if length is None or length < 0 or length >= 2**61:
        raise InvalidArgumentError(f"length_b must be an int in 0..2**61-1, got {length_b!r}")
    return dw_crc32c_combine(a, b, <uint64_t>length)


def crc32c_blocks_into(buf, block_size, out):
    """CRC-32C of each ``block_size``-byte block of ``buf`` into ``out``; returns ``out``.

    ``out`` is a writable, C-contiguous uint32 array (numpy or array('I'))
    with one element per block; reuse it across calls to avoid allocating.
    ``len(buf)`` must be a multiple of ``block_size``.
    """
    cdef Py_buffer view, vout
    cdef Py_ssize_t n
    cdef size_t bs
    cdef dw_status st
    _get(buf, &view, "buf")
    try:
        n = _block_count(&view, block_size, "buf", &bs)
        _get_u32_array(out, &vout, n, True, "out")
        try:
            if <char *>vout.buf < <char *>view.buf + view.len and \
                    <char *>view.buf < <char *>vout.buf + vout.len:
                raise InvalidArgumentError("out overlaps buf; pass a separate array")
            if view.len >= NOGIL_MIN_BYTES:
                with nogil:
                    st = dw_crc32c_blocks(view.buf, bs, <size_t>n, <uint32_t *>vout.buf)
            else:
                st = dw_crc32c_blocks(view.buf, bs, <size_t>n, <uint32_t *>vout.buf)
            _check_status(st, "crc32c_blocks")
        finally:
            PyBuffer_Release(&vout)
    finally:
        PyBuffer_Release(&view)
    return out


def crc32c_blocks(buf, block_size):
    """CRC-32C of each ``block_size``-byte block of ``buf``, as a new uint32 array.

    Element i is ``crc32c(buf[i*block_size:(i+1)*block_size])``; one call
    covers any number of blocks with the GIL released.  ``len(buf)`` must be
    a multiple of ``block_size``.
    """
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef size_t bs
    _get(buf, &view, "buf")
    try:
        n = _block_count(&view, block_size, "buf", &bs)
    finally:
        PyBuffer_Release(&view)
    out = np.empty(n, dtype=np.uint32)
    crc32c_blocks_into(buf, block_size, out)
    return out


def verify_blocks(buf, block_size, expected):
    """Indices of the blocks of ``buf`` whose CRC-32C differs from ``expected``.

    Returns an ascending int64 array (empty when every block checks out).
    ``expected`` holds one CRC per block: a uint32 array (numpy or
    array('I'), used without a copy) or any other 1-D integer array or
    sequence of ints in 0..0xFFFFFFFF.  ``len(buf)`` must be a multiple of
    ``block_size``.
    """
    cdef Py_buffer view, vexp, vbad
    cdef Py_ssize_t n
    cdef size_t nbad = 0
    cdef size_t bs
    cdef dw_status st
    _get(buf, &view, "buf")
    try:
        n = _block_count(&view, block_size, "buf", &bs)
        if not _is_u32_buffer(expected):
            expected = _u32_from_sequence(expected)
        _get_u32_array(expected, &vexp, n, False, "expected")
        try:
            bad = np.empty(n, dtype=np.int64)
            PyObject_GetBuffer(bad, &vbad, PyBUF_WRITABLE)
            try:
                if view.len >= NOGIL_MIN_BYTES:
                    with nogil:
                        st = dw_verify_blocks(view.buf, bs, <size_t>n, <const uint32_t *>vexp.buf,
                                             <uint64_t *>vbad.buf, &nbad)
                else:
                    st = dw_verify_blocks(view.buf, bs, <size_t>n, <const uint32_t *>vexp.buf,
                                         <uint64_t *>vbad.buf, &nbad)
                _check_status(st, "verify_blocks")
            finally:
                PyBuffer_Release(&vbad)
        finally:
            PyBuffer_Release(&vexp)
    finally:
        PyBuffer_Release(&view)
    return bad[:nbad].copy()


cdef bint _is_u32_buffer(object obj):
    """Whether obj exports C-contiguous native uint32 values (used without a copy)."""
    cdef Py_buffer v
    cdef bint ok
    if PyObject_GetBuffer_raw(obj, &v, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0:
        PyErr_Clear()
        return False
    ok = v.itemsize == 4 and _is_u32_format(v.format)
    PyBuffer_Release(&v)
    return ok


cdef object _u32_from_sequence(object seq):
    """Any other integer array or sequence, checked and converted to uint32."""
    try:
        arr = np.asarray(seq)
    except Exception:
        arr = None
    if arr is not None and arr.ndim == 1 and arr.size == 0:
        return np.empty(0, dtype=np.uint32)  # [] is float64 to numpy
    if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iu" or (
            arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise InvalidArgumentError(
            "expected must be a 1-D array or sequence of ints in 0..0xFFFFFFFF (one CRC-32C "
            f"per block), got {type(seq).__name__}"
            + (f" of dtype {arr.dtype} and shape {arr.shape}" if arr is not None else ""))
    return np.ascontiguousarray(arr, dtype=np.uint32)


# --------------------------------------------------------------------------
# Fletcher-4
# --------------------------------------------------------------------------

cdef int _f4_length(Py_buffer *view, str name) except -1:
    if view.len % 4:
        raise InvalidArgumentError(
            f"{name} is {view.len} bytes; Fletcher-4 reads 32-bit words, so the length must "
            f"be a multiple of 4")
    return 0


def fletcher4(data, value=None):
    """ZFS Fletcher-4 of ``data`` as the tuple (a, b, c, d) of zio_cksum_t words.

    ``data`` is read as native-endian 32-bit words (ZFS's
    ``fletcher_4_native``), so its length must be a multiple of 4.  Pass a
    previous result as ``value`` to continue it (ZFS's incremental form):
    ``fletcher4(b, fletcher4(a)) == fletcher4(a + b)``.
    """
    cdef Py_buffer view
    cdef uint64_t init[4]
    cdef uint64_t out[4]
    cdef const uint64_t *pinit = NULL
    cdef dw_status st
    cdef int i
    if value is not None:
        if not isinstance(value, tuple) or len(value) != 4:
            raise InvalidArgumentError(
                f"value must be a previous Fletcher-4, a tuple of 4 ints, got {value!r}")
        for i in range(4):
            w = _as_int(value[i])
            if w is None or not 0 <= w < 2**64:
                raise InvalidArgumentError(
                    f"value[{i}] must be an int in 0..2**64-1, got {value[i]!r}")
            init[i] = <uint64_t>w
        pinit = init
    _get(data, &view, "data")
    try:
        _f4_length(&view, "data")
        if view.len >= NOGIL_MIN_BYTES:
            with nogil:
                st = dw_fletcher4(view.buf, <size_t>view.len, pinit, out)
        else:
            st = dw_fletcher4(view.buf, <size_t>view.len, pinit, out)
        _check_status(st, "fletcher4")
    finally:
        PyBuffer_Release(&view)
    return (out[0], out[1], out[2], out[3])


def fletcher4_blocks(buf, block_size):
    """Fletcher-4 of each ``block_size``-byte block as an (n, 4) uint64 array (a, b, c, d).

    ``block_size`` must be a multiple of 4 and ``len(buf)`` a multiple of
    ``block_size``.
    """
    cdef Py_buffer view, vout
    cdef Py_ssize_t n
    cdef size_t bs
    cdef dw_status st
    _get(buf, &view, "buf")
    try:
        n = _block_count(&view, block_size, "buf", &bs)
        if bs % 4:
            raise InvalidArgumentError(
                f"block_size must be a multiple of 4 for Fletcher-4, got {block_size}")
        out = np.empty((n, 4), dtype=np.uint64)
        PyObject_GetBuffer(out, &vout, PyBUF_WRITABLE)
        try:
            if view.len >= NOGIL_MIN_BYTES:
                with nogil:
                    st = dw_fletcher4_blocks(view.buf, bs, <size_t>n, <uint64_t *>vout.buf)
            else:
                st = dw_fletcher4_blocks(view.buf, bs, <size_t>n, <uint64_t *>vout.buf)
            _check_status(st, "fletcher4_blocks")
        finally:
            PyBuffer_Release(&vout)
    finally:
        PyBuffer_Release(&view)
    return out


# --------------------------------------------------------------------------
# Raw kernel loops: the C kernels alone, for benchmarks (dwcore.bench.checksum)
# --------------------------------------------------------------------------

ctypedef uint32_t (*isal_crc_fn)(const uint8_t *, int, uint32_t) noexcept nogil

cdef enum LoopOp:
    LOOP_CRC32C = 0
    LOOP_ISAL_CRC = 1
    LOOP_FLETCHER4 = 2

_LOOP_OPS = {"crc32c": LOOP_CRC32C, "isal_crc32_iscsi": LOOP_ISAL_CRC,
             "fletcher4": LOOP_FLETCHER4}


def bench_loop(str op, sets, long iterations, Py_ssize_t start=0, uintptr_t fn=0):
    """Run one kernel ``iterations`` times without the GIL, walking through ``sets``.

    ``op`` is "crc32c" (dwcore's kernel on the active instruction set),
    "fletcher4", or "isal_crc32_iscsi": the C function at address ``fn``
    with ISA-L's prototype ``uint32_t crc32_iscsi(const uint8_t *buf, int len,
    uint32_t init)``.  Call i works on ``sets[(start + i) % len(sets)]`` (one
    buffer for in-cache runs, hundreds of MiB of them out of cache), each
    call independent of the last.  Returns (a digest of the results, the
    next start) so rotation continues across batches.
    """
    if op not in _LOOP_OPS:
        raise InvalidArgumentError(f"op must be one of {', '.join(_LOOP_OPS)}, got {op!r}")
    cdef LoopOp code = _LOOP_OPS[op]
    if code == LOOP_ISAL_CRC and fn == 0:
        raise InvalidArgumentError("fn must be the address of ISA-L's crc32_iscsi")
    cdef Py_ssize_t n = len(sets), i, got = 0
    if n < 1:
        raise InvalidArgumentError("sets must hold at least one buffer")
    cdef Py_buffer *views = <Py_buffer *>PyMem_Malloc(n * sizeof(Py_buffer))
    if views == NULL:
        raise MemoryError()
    cdef uint64_t acc = 0
    cdef uint64_t f4[4]
    cdef long it
    cdef Py_ssize_t pos = start % n
    if pos < 0:  # C division: bring a negative start into 0..n-1
        pos += n
    cdef isal_crc_fn ifn = <isal_crc_fn>fn
    try:
        for i in range(n):
            _get(sets[i], &views[i], f"sets[{i}]")
            got += 1
            if code == LOOP_ISAL_CRC and views[i].len > 0x7FFFFFFF:
                raise InvalidArgumentError("ISA-L takes lengths below 2 GiB")
        with nogil:
            for it in range(iterations):
                if code == LOOP_CRC32C:
                    acc ^= dw_crc32c(0, views[pos].buf, <size_t>views[pos].len)
                elif code == LOOP_ISAL_CRC:
                    acc ^= ifn(<const uint8_t *>views[pos].buf, <int>views[pos].len, 0xFFFFFFFF)
                else:
                    dw_fletcher4(views[pos].buf, <size_t>views[pos].len & ~(<size_t>3), NULL, f4)
                    acc ^= f4[3]
                pos += 1
                if pos == n:
                    pos = 0
    finally:
        for i in range(got):
            PyBuffer_Release(&views[i])
        PyMem_Free(views)
    return acc, pos
