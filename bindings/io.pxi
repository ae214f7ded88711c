# Batched positional I/O: a pool's per-device requests for one extent in one call,
# with the GIL released once for all of them instead of once per system call.

from posix.types cimport off_t
from posix.uio cimport iovec, preadv, pwritev
from posix.unistd cimport pread
from libc.errno cimport EBADMSG, EINTR, EIO, ENODEV, ENOMEM, errno
from libc.stdint cimport uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void **memptr, size_t alignment, size_t size)

# A copy whose destination sits 1-31 bytes past its source modulo 64 runs several
# times slower on some CPUs (rep movsb; measured 3.5x on AMD Zen 3 for the kernel's
# copy to user space: 470 against 140 us per MiB from tmpfs).  Reads that would copy
# so go through a bounce buffer placed to keep both copies (kernel to bounce, bounce
# to destination) 32 bytes apart modulo 64, which runs at full speed.
DEF _BOUNCE = 65536

cdef extern from "<limits.h>":
    enum: IOV_MAX


cdef int _transfer(int fd, iovec *iov, Py_ssize_t count, off_t offset, bint write) noexcept nogil:
    """Move every byte of ``iov[0:count]`` (short transfers resumed); 0 or an errno.
    ``iov`` is consumed (advanced in place)."""
    cdef ssize_t done
    cdef int batch
    while count > 0:
        if iov[0].iov_len == 0:
            iov += 1
            count -= 1
            continue
        batch = <int>(count if count < IOV_MAX else IOV_MAX)
        if write:
            done = pwritev(fd, iov, batch, offset)
        else:
            done = preadv(fd, iov, batch, offset)
        if done < 0:
            if errno == EINTR:
                continue
            return errno
        if done == 0:
            return EIO  # a read past the end of the file, or a write that made no progress
        offset += done
        while count > 0 and <size_t>done >= iov[0].iov_len:
            done -= iov[0].iov_len
            iov += 1
            count -= 1
        if done:
            iov[0].iov_base = <char *>iov[0].iov_base + done
            iov[0].iov_len -= done
    return 0


cdef inline bint _slow_copy(void *dst, off_t offset, size_t n) noexcept nogil:
    cdef size_t rel = (<uintptr_t>dst - <uintptr_t>offset) & 63
    return n >= 4096 and rel != 0 and rel < 32


cdef int _read(int fd, iovec *iov, Py_ssize_t count, off_t offset, char *bounce) noexcept nogil:
    """Fill ``iov[0:count]`` from ``offset`` (as _transfer), badly aligned buffers
    through ``bounce``; 0 or an errno."""
    cdef Py_ssize_t i = 0, j
    cdef off_t at
    cdef size_t done, n, place
    cdef ssize_t got
    cdef int err
    while i < count:
        if bounce != NULL and _slow_copy(iov[i].iov_base, offset, iov[i].iov_len):
            done = 0
            while done < iov[i].iov_len:
                n = iov[i].iov_len - done
                if n > _BOUNCE:
                    n = _BOUNCE
                # relative offset r of destination to source is in (0, 32); the bounce
                # copy sits r + 32 past the source, so each copy is 32 apart modulo 64
                place = <size_t>(offset + <off_t>done + <off_t>(
                    (<uintptr_t>iov[i].iov_base - <uintptr_t>offset) & 63) + 32) & 63
                got = pread(fd, bounce + place, n, offset + <off_t>done)
                if got < 0:
                    if errno == EINTR:
                        continue
                    return errno
                if got == 0:
                    return EIO
                memcpy(<char *>iov[i].iov_base + done, bounce + place, <size_t>got)
                done += <size_t>got
            offset += <off_t>iov[i].iov_len
            i += 1
            continue
        j = i
        at = offset
        while j < count and not (bounce != NULL and _slow_copy(iov[j].iov_base, at, iov[j].iov_len)):
            at += <off_t>iov[j].iov_len
            j += 1
        err = _transfer(fd, iov + i, j - i, offset, False)
        if err:
            return err
        offset = at
        i = j
    return 0


cdef int _verify(const iovec *iov, Py_ssize_t count, const uint32_t *expected,
                 size_t block) noexcept nogil:
    """0 when every ``block``-byte block of ``iov[0:count]`` (each buffer whole blocks)
    has the CRC-32C in ``expected`` (one per block, in order); EBADMSG otherwise."""
    cdef uint64_t bad[64]
    cdef size_t nbad, nblocks, step, done
    cdef Py_ssize_t i
    for i in range(count):
        nblocks = iov[i].iov_len // block
        done = 0
        while done < nblocks:
            step = nblocks - done if nblocks - done < 64 else 64
            if dw_verify_blocks(<const char *>iov[i].iov_base + done * block, block, step,
                                expected, bad, &nbad) != DW_OK or nbad:
                return EBADMSG
            expected += step
            done += step
    return 0


cdef list _many(list requests, bint write):
    cdef Py_ssize_t n = len(requests), total = 0, i, j, got = 0, at
    cdef Py_buffer *views = NULL
    cdef Py_buffer *checks = NULL
    cdef iovec *iovs = NULL
    cdef iovec *saved = NULL
    cdef int *fds = NULL
    cdef int *errs = NULL
    cdef off_t *offsets = NULL
    cdef Py_ssize_t *starts = NULL
    cdef size_t *blocks = NULL
    cdef Py_ssize_t nchecks = 0
    cdef size_t nblk, have
    cdef int flags = PyBUF_WRITABLE if not write else 0
    cdef void *bounce = NULL
    for req in requests:
        total += len(req[2])
    views = <Py_buffer *>malloc(max(total, 1) * sizeof(Py_buffer))
    iovs = <iovec *>malloc(max(total, 1) * sizeof(iovec))
    saved = <iovec *>malloc(max(total, 1) * sizeof(iovec))
    checks = <Py_buffer *>malloc(max(n, 1) * sizeof(Py_buffer))
    blocks = <size_t *>malloc(max(n, 1) * sizeof(size_t))
    fds = <int *>malloc(max(n, 1) * sizeof(int))
    errs = <int *>malloc(max(n, 1) * sizeof(int))
    offsets = <off_t *>malloc(max(n, 1) * sizeof(off_t))
    starts = <Py_ssize_t *>malloc((n + 1) * sizeof(Py_ssize_t))
    try:
        if not (views and iovs and saved and checks and blocks and fds and errs and offsets
                and starts):
            raise MemoryError()
        for i in range(n):
            req = requests[i]
            if len(req) == 5 and not write:
                fd, offset, buffers, expected, block = req
            elif len(req) == 3:
                fd, offset, buffers = req
                expected, block = None, 0
            else:
                raise InvalidArgumentError(
                    f"requests[{i}]: expected (fd, offset, buffers)"
                    + ("" if write else " or (fd, offset, buffers, expected_crcs, block_size)"))
            blocks[i] = 0
            if offset < 0:
                raise InvalidArgumentError(f"requests[{i}]: offset must be >= 0, got {offset}")
            fds[i] = fd
            offsets[i] = offset
            starts[i] = got
            for buf in buffers:
                try:
                    PyObject_GetBuffer(buf, &views[got], flags)
                except (BufferError, TypeError, ValueError) as exc:
                    need = "contiguous byte buffers" if write else "writable contiguous buffers"
                    raise InvalidArgumentError(
                        f"requests[{i}]: buffers must be {need}: {exc}") from None
                got += 1
                if not PyBuffer_IsContiguous(&views[got - 1], b'C'):
                    raise InvalidArgumentError(f"requests[{i}]: buffers must be contiguous")
                iovs[got - 1].iov_base = views[got - 1].buf
                iovs[got - 1].iov_len = <size_t>views[got - 1].len
            if expected is not None:
                if not isinstance(block, int) or block <= 0:
                    raise InvalidArgumentError(f"requests[{i}]: block_size must be > 0")
                nblk = 0
                for j in range(starts[i], got):
                    if iovs[j].iov_len % <size_t>block:
                        raise InvalidArgumentError(
                            f"requests[{i}]: verified buffers must be whole blocks of {block}")
                    nblk += iovs[j].iov_len // <size_t>block
                try:
                    PyObject_GetBuffer(expected, &checks[nchecks], PyBUF_C_CONTIGUOUS)
                except (BufferError, TypeError, ValueError) as exc:
                    raise InvalidArgumentError(
                        f"requests[{i}]: expected_crcs must be a contiguous buffer: {exc}"
                    ) from None
                nchecks += 1
                have = <size_t>checks[nchecks - 1].len // sizeof(uint32_t)
                if have < nblk:
                    raise InvalidArgumentError(
                        f"requests[{i}]: {nblk} blocks to verify, {have} expected CRCs given")
                blocks[i] = <size_t>block
                # found again by order: the k-th verified request uses checks[k]
        starts[n] = got
        if nchecks:  # verification reads the iovecs as they were before the reads
            memcpy(saved, iovs, <size_t>max(got, 1) * sizeof(iovec))
        if not write and posix_memalign(&bounce, 4096, _BOUNCE + 64) != 0:
            bounce = NULL  # without it every read is direct (slower for some buffers)
        with nogil:
            at = 0  # the next verified request's CRC buffer
            for i in range(n):
                if write:
                    errs[i] = _transfer(fds[i], iovs + starts[i], starts[i + 1] - starts[i],
                                        offsets[i], True)
                else:
                    errs[i] = _read(fds[i], iovs + starts[i], starts[i + 1] - starts[i],
                                    offsets[i], <char *>bounce)
                    if blocks[i]:
                        # right after the read, while the bytes are still in cache
                        if errs[i] == 0:
                            errs[i] = _verify(saved + starts[i], starts[i + 1] - starts[i],
                                              <const uint32_t *>checks[at].buf, blocks[i])
                        at += 1
        return [errs[i] for i in range(n)]
    finally:
        for j in range(got):
            PyBuffer_Release(&views[j])
        for j in range(nchecks):
            PyBuffer_Release(&checks[j])
        free(views)
        free(iovs)
        free(saved)
        free(checks)
        free(blocks)
        free(fds)
        free(errs)
        free(offsets)
        free(starts)
        free(bounce)


def pwritev_many(list requests):
    """Run ``(fd, offset, buffers)`` write requests, each one ``pwritev`` of its
    buffers back to back from ``offset`` (short writes resumed), with the GIL
    released once for all.  Returns one errno per request, 0 for each done;
    a failed request does not stop the later ones.
    """
    return _many(requests, True)


def preadv_many(list requests):
    """Fill the writable buffers of ``(fd, offset, buffers)`` read requests, as
    :func:`pwritev_many` writes; a read that reaches the end of the file fails
    with EIO.

    A request ``(fd, offset, buffers, expected_crcs, block_size)`` is also
    verified right after it is read, while its bytes are still in cache: each
    buffer is whole blocks of ``block_size`` bytes, and each block's CRC-32C
    must equal the next value of ``expected_crcs`` (native uint32; it may be
    filled by an earlier request of the same call).  A mismatch fails the
    request with EBADMSG."""
    return _many(requests, False)


cdef extern from "dw_io.h" nogil:
    size_t dw_fdatasync_many(const int *fds, int *errs, size_t n, int parallel)


def fdatasync_many(fds, bint parallel=True):
    """``fdatasync`` every file descriptor in ``fds`` at once (the caller's thread
    and native helper threads; the GIL released once).  Returns one errno per
    descriptor, 0 for each flushed; a failure does not stop the others.
    ``parallel=False`` flushes them one after another on the calling thread (for
    files whose flush returns at once, such as on tmpfs).  Do not
    retry a failed flush on the same file: the kernel may have dropped the pages
    it could not write, so a second flush can succeed without them."""
    cdef Py_ssize_t n = len(fds), i
    cdef int *buf = <int *>malloc(max(2 * n, 1) * sizeof(int))
    if buf == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            fd = fds[i]
            if not isinstance(fd, int) or fd < 0 or fd > 0x7FFFFFFF:
                raise InvalidArgumentError(
                    f"fds[{i}] must be an open file descriptor (int >= 0), got {fd!r}")
            buf[i] = fd
        with nogil:
            dw_fdatasync_many(buf, buf + n, <size_t>n, parallel)
        return [buf[n + i] for i in range(n)]
    finally:
        free(buf)


# -- planned, verified reads of whole extents (the pools' healthy read path) ---------

cdef struct _Piece:
    int dev
    int edge          # 1: one block read into scratch, its bytes [lo, hi) copied to dst
    Py_ssize_t blk    # device block of its first block (also its checksum-table entry)
    Py_ssize_t nblk
    char *dst         # where the blocks (or, for an edge, bytes lo..hi) go
    Py_ssize_t lo
    Py_ssize_t hi
    Py_ssize_t aux    # an edge: its block in scratch; after the table read: its first CRC


cdef Py_ssize_t _plan_chunk(_Piece *pieces, Py_ssize_t n, Py_ssize_t *nedges, int dev,
                            Py_ssize_t blk0, Py_ssize_t start, Py_ssize_t nb,
                            Py_ssize_t offset, Py_ssize_t end, Py_ssize_t block,
                            char *dst) noexcept nogil:
    """Add the pieces of one chunk (extent bytes ``start:start+nb`` at device blocks
    ``blk0..`` of ``dev``) that the range ``offset:end`` needs; returns the new count."""
    cdef Py_ssize_t lo = offset if offset > start else start
    cdef Py_ssize_t hi = end if end < start + nb else start + nb
    cdef Py_ssize_t r_a, r_z, f_a, f_z, blo
    if lo >= hi or dev < 0:  # dev < 0: the caller fills these bytes itself
        return n
    r_a = (lo - start) // block
    r_z = (hi - start + block - 1) // block
    f_a = (lo - start + block - 1) // block  # the whole blocks inside the range: f_a..f_z
    f_z = (hi - start) // block
    if f_a > r_a:  # the first block starts before the range
        blo = start + r_a * block
        pieces[n] = _Piece(dev, 1, blk0 + r_a, 1, dst + lo - offset, lo - blo,
                           (hi if hi < blo + block else blo + block) - blo, nedges[0])
        nedges[0] += 1
        n += 1
    if f_z > f_a:
        pieces[n] = _Piece(dev, 0, blk0 + f_a, f_z - f_a, dst + start + f_a * block - offset,
                           0, 0, 0)
        n += 1
    if f_z < r_z and r_z - 1 >= f_a:  # the last block ends after the range
        blo = start + (r_z - 1) * block
        pieces[n] = _Piece(dev, 1, blk0 + r_z - 1, 1, dst + blo - offset, 0, hi - blo,
                           nedges[0])
        nedges[0] += 1
        n += 1
    return n


cdef int _read_pieces_of(int fd, long long base, long long table_at, _Piece *pieces,
                         Py_ssize_t npieces, int dev, Py_ssize_t block, uint32_t *table,
                         char *scratch, iovec *iovs, char *bounce) noexcept nogil:
    """Read, verify and place one device's pieces; 0 or an errno (EBADMSG: a block
    does not match its checksum).  The checksum entries come in one read where the
    pieces lie close together, else one read per piece."""
    cdef Py_ssize_t i, g_lo = -1, g_end = 0, total = 0, count = 0, at = 0, run0 = 0, used = 0
    cdef iovec tiov
    cdef int err
    cdef char *buf
    cdef bint dense
    for i in range(npieces):
        if pieces[i].dev != dev:
            continue
        if g_lo < 0 or pieces[i].blk < g_lo:
            g_lo = pieces[i].blk
        if pieces[i].blk + pieces[i].nblk > g_end:
            g_end = pieces[i].blk + pieces[i].nblk
        total += pieces[i].nblk
    if g_lo < 0:
        return 0
    dense = g_end - g_lo <= 2 * total + 64
    if dense:
        tiov.iov_base = table
        tiov.iov_len = <size_t>(g_end - g_lo) * sizeof(uint32_t)
        err = _transfer(fd, &tiov, 1, <off_t>(table_at + 4 * g_lo), False)
        if err:
            return err
    # runs of consecutive blocks (in piece order): one scattered read each
    for i in range(npieces + 1):
        if i < npieces and pieces[i].dev != dev:
            continue
        if count and (i == npieces or pieces[i].blk != at):
            err = _read(fd, iovs, count, <off_t>(base + run0 * block), bounce)
            if err:
                return err
            count = 0
        if i == npieces:
            break
        if not dense:
            tiov.iov_base = table + used
            tiov.iov_len = <size_t>pieces[i].nblk * sizeof(uint32_t)
            err = _transfer(fd, &tiov, 1, <off_t>(table_at + 4 * pieces[i].blk), False)
            if err:
                return err
        if count == 0:
            at = run0 = pieces[i].blk
        iovs[count].iov_base = (scratch + pieces[i].aux * block) if pieces[i].edge else pieces[i].dst
        iovs[count].iov_len = <size_t>(pieces[i].nblk * block)
        count += 1
        at += pieces[i].nblk
        if not dense:
            used += pieces[i].nblk
    used = 0
    for i in range(npieces):
        if pieces[i].dev != dev:
            continue
        buf = (scratch + pieces[i].aux * block) if pieces[i].edge else pieces[i].dst
        # _verify checks at most 64 blocks per call: dw_verify_blocks writes the index
        # of every bad block, and a piece may hold many (a one-entry array overflowed)
        tiov.iov_base = buf
        tiov.iov_len = <size_t>(pieces[i].nblk * block)
        if _verify(&tiov, 1, table + ((pieces[i].blk - g_lo) if dense else used),
                   <size_t>block):
            return EBADMSG
        used += pieces[i].nblk
        if pieces[i].edge:
            memcpy(pieces[i].dst, buf + pieces[i].lo, <size_t>(pieces[i].hi - pieces[i].lo))
    return 0


cdef int _read_pieces(_Piece *pieces, Py_ssize_t npieces, Py_ssize_t nedges, Py_ssize_t nd,
                      const int *fds, const long long *bases, Py_ssize_t table_off,
                      Py_ssize_t block, Py_ssize_t table_size) noexcept nogil:
    """Every device's pieces (:func:`_read_pieces_of`), the devices in order;
    ``table_size``: checksum entries one device may need (its span when dense)."""
    cdef void *scratch = NULL
    cdef void *bounce = NULL
    cdef uint32_t *table = <uint32_t *>malloc(<size_t>(table_size + 1) * sizeof(uint32_t))
    cdef iovec *iovs = <iovec *>malloc(<size_t>(npieces + 1) * sizeof(iovec))
    cdef int err = 0, dev
    cdef Py_ssize_t i
    if table == NULL or iovs == NULL or \
            posix_memalign(&scratch, 64, <size_t>((nedges if nedges > 0 else 1) * block)) != 0 or \
            posix_memalign(&bounce, 4096, _BOUNCE + 64) != 0:
        err = ENOMEM
    dev = 0
    while err == 0 and dev < nd:
        for i in range(npieces):
            if pieces[i].dev == dev:
                if fds[dev] < 0:
                    err = ENODEV
                else:
                    err = _read_pieces_of(fds[dev], bases[dev], bases[dev] + table_off, pieces,
                                          npieces, dev, block, table, <char *>scratch, iovs,
                                          <char *>bounce)
                break
        dev += 1
    free(table)
    free(iovs)
    free(scratch)
    free(bounce)
    return err


cdef class _ReadArgs:
    """The checked arguments shared by :func:`read_flat` and :func:`read_segments`."""
    cdef Py_buffer out
    cdef bint have_out
    cdef int *fds
    cdef long long *bases
    cdef Py_ssize_t nd

    def __cinit__(self, dst, Py_ssize_t offset, Py_ssize_t end, Py_ssize_t limit,
                  list fds, list bases):
        cdef Py_ssize_t i
        if not (0 <= offset <= end <= limit):
            raise InvalidArgumentError(
                f"range {offset}:{end} is not inside the {limit} bytes of the rows")
        if len(bases) != len(fds):
            raise InvalidArgumentError(f"{len(bases)} bases for {len(fds)} devices")
        try:
            PyObject_GetBuffer(dst, &self.out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS)
        except (BufferError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"dst must be a writable contiguous buffer: {exc}") from None
        self.have_out = True
        if self.out.len != end - offset:
            raise InvalidArgumentError(f"dst holds {self.out.len} bytes, the range {end - offset}")
        self.nd = len(fds)
        self.fds = <int *>malloc(max(self.nd, 1) * sizeof(int))
        self.bases = <long long *>malloc(max(self.nd, 1) * sizeof(long long))
        if self.fds == NULL or self.bases == NULL:
            raise MemoryError()
        for i in range(self.nd):
            self.fds[i] = fds[i]
            self.bases[i] = bases[i]

    def __dealloc__(self):
        if self.have_out:
            PyBuffer_Release(&self.out)
        free(self.fds)
        free(self.bases)


cdef object _get_table(obj, str name, Py_buffer *view):
    """Get ``obj`` (a table argument named ``name``) as a C-contiguous buffer; the
    caller checks its item size and length and releases it."""
    try:
        PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS)
    except (BufferError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name} must be a contiguous buffer: {exc}") from None


def read_flat(dst, Py_ssize_t offset, Py_ssize_t end, Py_ssize_t first, Py_ssize_t rows,
              Py_ssize_t rows_per_chunk, Py_ssize_t block, int k, devmap, list fds,
              list bases, Py_ssize_t table_off):
    """Read bytes ``offset:end`` of the data of rows ``first:first+rows`` of a flat
    striped layout into ``dst`` (writable, ``end - offset`` bytes) and verify every
    block read against the devices' checksum tables; returns 0, or an errno where
    something failed (EBADMSG: a block does not match its checksum; ENODEV: a
    needed device has no descriptor), for the caller to take its careful path.

    The layout is flat: global row ``g`` is block ``g`` of every device's data area
    (at ``bases[dev]``), and its checksum is entry ``g`` of the uint32 table at
    ``bases[dev] + table_off``.  Rows split into stripes of ``rows_per_chunk``
    rows; an extent's data fills a stripe's segment member after member, ``k``
    data members, member ``d`` of stripe ``s`` read from device
    ``devmap[(s % period) * k + d]`` (``devmap``: int32, ``period * k`` entries).
    ``fds[dev]`` is -1 for a device that must not be read directly.
    """
    cdef Py_buffer dm
    cdef const int *row
    cdef Py_ssize_t period, i, g, s, r, n, off, d, npieces = 0, nedges = 0
    cdef _Piece *pieces = NULL
    cdef _ReadArgs args
    cdef int err
    if block <= 0 or rows_per_chunk <= 0 or k <= 0 or rows < 0 or first < 0:
        raise InvalidArgumentError("block, rows_per_chunk and k must be > 0, rows and first >= 0")
    args = _ReadArgs(dst, offset, end, rows * k * block, fds, bases)
    _get_table(devmap, "devmap", &dm)
    try:
        if dm.len % (k * 4) or dm.len == 0:
            raise InvalidArgumentError("devmap must hold period * k int32 entries")
        period = dm.len // (k * 4)
        row = <const int *>dm.buf
        for i in range(period * k):
            if not 0 <= row[i] < args.nd:
                raise InvalidArgumentError(f"devmap[{i}] = {row[i]} is not a device index")
        if end == offset:
            return 0
        pieces = <_Piece *>malloc(<size_t>(rows // rows_per_chunk + 2) * k * 3 * sizeof(_Piece))
        if pieces == NULL:
            raise MemoryError()
        with nogil:
            g = first
            off = 0
            while g < first + rows:
                s = g // rows_per_chunk
                r = g % rows_per_chunk
                n = rows_per_chunk - r
                if n > first + rows - g:
                    n = first + rows - g
                if off < end and off + k * n * block > offset:
                    for d in range(k):
                        npieces = _plan_chunk(pieces, npieces, &nedges, row[(s % period) * k + d],
                                              g, off + d * n * block, n * block, offset, end,
                                              block, <char *>args.out.buf)
                off += n * k * block
                g += n
            err = _read_pieces(pieces, npieces, nedges, args.nd, args.fds, args.bases,
                               table_off, block, 2 * rows + 64)
        return err
    finally:
        PyBuffer_Release(&dm)
        free(pieces)


def read_segments(dst, Py_ssize_t offset, Py_ssize_t end, segments, Py_ssize_t block, int k,
                  list fds, list bases, Py_ssize_t table_off):
    """As :func:`read_flat` for any row layout: ``segments`` (int64, one row of
    ``1 + 2k`` entries per segment, in extent order) gives each segment's rows and,
    per data member ``d``, the device and the device block of its first row:
    ``[rows, dev_0, block_0, dev_1, block_1, ...]``.  A member's rows lie at
    consecutive device blocks, each checked against the table entry of its block.
    A device of -1 leaves that member's bytes of ``dst`` untouched, for the caller
    to fill (a chunk it must rebuild)."""
    cdef Py_buffer sv
    cdef const long long *seg
    cdef Py_ssize_t nseg, width = 1 + 2 * k, i, d, off = 0, total = 0, n
    cdef Py_ssize_t npieces = 0, nedges = 0
    cdef _Piece *pieces = NULL
    cdef _ReadArgs args
    cdef int err
    if block <= 0 or k <= 0:
        raise InvalidArgumentError("block and k must be > 0")
    _get_table(segments, "segments", &sv)
    try:
        if sv.itemsize != 8 or sv.len % (width * 8):
            raise InvalidArgumentError(f"segments must be int64 rows of 1 + 2k = {width}")
        nseg = sv.len // (width * 8)
        seg = <const long long *>sv.buf
        for i in range(nseg):
            if seg[i * width] < 0:
                raise InvalidArgumentError(f"segments[{i}]: rows must be >= 0")
            total += seg[i * width]
            for d in range(k):
                if not -1 <= seg[i * width + 1 + 2 * d] < len(fds):
                    raise InvalidArgumentError(f"segments[{i}]: device of member {d} out of range")
                if seg[i * width + 2 + 2 * d] < 0:
                    raise InvalidArgumentError(f"segments[{i}]: block of member {d} < 0")
        args = _ReadArgs(dst, offset, end, total * k * block, fds, bases)
        if end == offset:
            return 0
        pieces = <_Piece *>malloc(<size_t>(nseg + 1) * k * 3 * sizeof(_Piece))
        if pieces == NULL:
            raise MemoryError()
        with nogil:
            for i in range(nseg):
                n = seg[i * width]
                if off < end and off + k * n * block > offset:
                    for d in range(k):
                        npieces = _plan_chunk(pieces, npieces, &nedges,
                                              <int>seg[i * width + 1 + 2 * d],
                                              seg[i * width + 2 + 2 * d], off + d * n * block,
                                              n * block, offset, end, block,
                                              <char *>args.out.buf)
                off += n * k * block
            err = _read_pieces(pieces, npieces, nedges, args.nd, args.fds, args.bases,
                               table_off, block, 2 * total + 64)
        return err
    finally:
        PyBuffer_Release(&sv)
        free(pieces)
