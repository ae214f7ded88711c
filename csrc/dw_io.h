/* dw_io.h - durable-I/O helpers for the pool's data path.
 *
 * dw_fdatasync_many flushes several files at once: a pool's members are
 * flushed together after a group of writes, and the flushes only overlap when
 * they are issued from different threads.  Python threads would each need the
 * interpreter lock again when their flush returns; these are native threads
 * that never touch it, kept alive between calls (a thread start costs more than
 * a flush is worth waiting for).
 */
#ifndef DW_IO_H
#define DW_IO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most helper threads dw_fdatasync_many keeps (the caller flushes too). */
#define DW_SYNC_MAX_HELPERS 15

/* fdatasync(2) every fds[i] (EINTR retried) and set errs[i] to 0 or its errno.
 * The calling thread flushes too; up to min(n - 1, DW_SYNC_MAX_HELPERS) helper
 * threads flush the others at the same time.  Safe to call from several
 * threads at once and after fork(); if helpers cannot be started the caller
 * flushes everything itself.  parallel == 0 flushes them one after another on
 * the calling thread (files whose flush returns at once, such as on tmpfs).
 * Returns the number of failed flushes. */
size_t dw_fdatasync_many(const int *fds, int *errs, size_t n, int parallel);

#ifdef __cplusplus
}
#endif

#endif /* DW_IO_H */
