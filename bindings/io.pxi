# Batched positional I/O: a pool's per-device requests for one extent in one call,
# with the GIL released once for all of them instead of once per system call.

from posix.types cimport off_t
from posix.uio cimport iovec, preadv, pwritev
from posix.unistd cimport pread
from libc.errno cimport EBADMSG, EINTR, EIO, errno
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
