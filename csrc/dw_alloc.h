/* dw_alloc.h - persistent block allocator: state in RAM, made durable in one file.
 *
 * One allocator per pool: it hands out extents of a logical block space of
 * up to 2^32 fixed-size blocks (4 KiB by default; the size is recorded, the
 * allocator itself works in block numbers).  State is one bit per block,
 * 1 = allocated, kept in RAM with small summary structures and made durable
 * by dw_alloc_sync() into a file with shadow-paged, checksummed copies.
 *
 * ON-DISK FORMAT (version 1, little-endian, 4 KiB pages)
 *
 *   [superblock area 0][superblock area 1][page 0 copy 0][page 0 copy 1]
 *   [page 1 copy 0][page 1 copy 1] ...
 *
 *   Superblock area (area_pages x 4 KiB; area_pages = 1 up to ~1e9 blocks):
 *     0   u64 checksum of bytes [8, area_bytes), seed 0x6477616c6c6f6331
 *     8   u64 magic "DWALLOC\0"
 *     16  u32 format version          20  u32 flags (0)
 *     24  u32 block size (bytes)      28  u32 page size (4096)
 *     32  u64 block count             40  u64 bitmap page count
 *     48  u64 committed generation    56  u64 uuid (random per file)
 *     64  u64 free blocks at commit   72  u64 area pages
 *     80  u64 data offset             88..255 reserved (0)
 *     256 slot map: one bit per bitmap page, which of its two copies holds
 *         the committed state (the rest of the area is 0)
 *   Bitmap page copy (4 KiB):
 *     0   u64 checksum of bytes [8, 4096), seed uuid ^ 0x70616765636f7079
 *     8   u32 magic "DWAP"            12  u32 page index
 *     16  u64 generation it was written for
 *     24  u64 uuid                    32..63 reserved (0)
 *     64  504 u64 bitmap words = 32256 blocks (bit i of word j of page p is
 *         block (p*504 + j)*64 + i); bits past the last block are set.
 *   The checksum is XXH64 (the public algorithm; vectors match).  The
 *   summary levels of the hierarchical bitmap are not stored: open() rebuilds
 *   them from the bitmap while it loads it (30-45 ms for 2^28 blocks with a
 *   warm page cache on the shared 2-core test machine).
 *
 * CRASH SAFETY (shadow pages + double-buffered superblock, ordered flushes)
 *
 *   sync() copies every bitmap page changed since the last sync into a
 *   buffer (under the mutex: one consistent snapshot; a page changed after
 *   that stays dirty for the next sync), then, without the mutex, writes
 *   each into the copy the committed slot map does NOT name, stamped with
 *   generation G+1; fdatasync; then writes the superblock area not holding
 *   generation G with the slot map of the written pages flipped;
 *   fdatasync.  (The buffer, 4 KiB per changed page, lives only during the
 *   sync.)  The committed copies are never written
 *   between two commits, so any crash image (any subset of the writes after
 *   the last flush, pages torn at any sector) holds either the area of G and
 *   every copy it names intact, or also a complete, verifying area G+1 whose
 *   pages were flushed before it.  open() takes the verifying area with the
 *   highest generation and reads exactly the copies its slot map names (a
 *   torn or uncommitted copy is never looked at).  Hence the opened state is
 *   exactly the state at some completed sync (the last acknowledged one, or
 *   the one in flight if its area made it): every acknowledged allocation is
 *   allocated, and a block freed and reallocated after the last sync is
 *   never both free on disk and referenced by anything the caller recorded
 *   at that sync.  Allocations after the last sync may be lost (the caller
 *   never recorded them durably either) and frees after it come back as
 *   leaks, which dw_alloc_reconcile() returns.  The superblock also records
 *   the free-block count, cross-checked at open.  That is the only check
 *   against an old page copy paired with a newer superblock (what a missing
 *   flush produces: the stale copy still verifies): it is refused as
 *   corruption when the free totals differ, and served when they happen to
 *   match.  The flush ordering is what guarantees it cannot happen.
 *   A committed copy that fails its checksum is media corruption, not a
 *   crash (its write was flushed before the commit): the other copy holds an
 *   older generation, so open() refuses with DW_ALLOC_ECORRUPT naming the
 *   page rather than serve stale state.  A damaged superblock area falls
 *   back to the other one (the previous generation), as a torn superblock
 *   write looks exactly the same.  LIMITATION: the format cannot tell the
 *   two apart, and media damage to the newest area rolls back the last
 *   acknowledged sync.  So it is never silent: when the other area is
 *   written (not all zero, or the chosen one is not generation 1 of a fresh
 *   file) but fails to verify, stats.recovered_from_fallback is set (and
 *   damaged_area_gen to the generation it claims, when readable); the
 *   binding warns, and the caller must reconcile() with its catalog.
 *   sync() always writes the area not holding the committed copy (tracked
 *   from open, not derived from the generation's parity, so a copied or
 *   crafted file with generation G in area 1 - G % 2 is safe too).
 *   Writes go through pwrite() (no read-before-write of cold pages, errors
 *   as return codes instead of SIGBUS); open() maps the file read-only,
 *   verifies and copies the committed page copies into RAM and unmaps it.
 *   After an I/O error in sync the allocator refuses further changes
 *   (DW_ALLOC_EFAILED): the page cache can no longer be trusted (fsync
 *   semantics on Linux); the last completed sync is intact on disk.
 *
 * IN RAM (about 1.07 bit per block)
 *
 *   the bitmap (1 bit/block, in transparent huge pages where offered); a
 *   has-free summary (1 bit per 64-block word, then 1 bit per 64 summary
 *   bits, ... up to one word) for single blocks; per 4096-block region the
 *   free run at its start and end, its longest run and the size classes
 *   [2^k, 2^(k+1)) of its runs (4 x u16), with one region bitmap per class
 *   (+ summary levels); and a binary tree of u32 (prefix, suffix, longest)
 *   over the regions.  A change only marks its regions; leaves are
 *   recomputed before the next class search, the tree before the next tree
 *   search.
 *
 * PLACEMENT: a single block is next-fit from a cursor (one ctz in the common
 * case).  n contiguous blocks go right at the cursor if free (filling a hole
 * goes on), else good fit: the first region, from the cursor's, holding a
 * free run of the smallest size class that can serve n (so small requests
 * do not cut up long runs; plain next-fit leaves a map refilled to 90% with
 * no 256-block run), else the first run of n at or after the cursor found
 * through the tree (runs across regions, n > 4096), wrapping around.
 *
 * THREADS: every call locks the allocator's mutex; sync() holds it only to
 * copy the changed pages, so allocation continues while it writes and
 * flushes.  dw_alloc_close() frees the handle: the caller must make sure
 * no other call on it is running or starts later (nothing here can).  The
 * Python binding does: every method registers itself in the same step as it
 * fetches the handle, under the GIL, and close() refuses while any is
 * registered.
 * A file is opened by one allocator at a time (flock).
 *
 * Buffers are owned by the caller; nothing here keeps a pointer to them.
 */
#ifndef DW_ALLOC_H
#define DW_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "dw_status.h"

#define DW_ALLOC_FORMAT_VERSION 1u
#define DW_ALLOC_MAX_BLOCKS ((uint64_t)1 << 32)
#define DW_ALLOC_PAGE_BYTES 4096u
#define DW_ALLOC_PAGE_WORDS 504u                           /* bitmap words per page */
#define DW_ALLOC_PAGE_BLOCKS (DW_ALLOC_PAGE_WORDS * 64u)  /* 32256 */
#define DW_ALLOC_REGION_BLOCKS 4096u                      /* tree leaf */
#define DW_ALLOC_MIN_BLOCK_SIZE 512u
#define DW_ALLOC_MAX_BLOCK_SIZE (1u << 30)
#define DW_ALLOC_NO_HINT UINT64_MAX

typedef enum dw_alloc_status {
    DW_ALLOC_OK = DW_OK,
    DW_ALLOC_EINVAL = DW_EINVAL,  /* an argument is out of range (err says which) */
    DW_ALLOC_ENULL = DW_ENULL,    /* a required pointer is NULL                     */
    DW_ALLOC_ENOSPC = -100,       /* not enough free blocks; err->value = largest extent */
    DW_ALLOC_ENOTALLOC = -101,    /* free of a free block (double free); err->block     */
    DW_ALLOC_ERANGE = -102,       /* blocks past the end; err->block                     */
    DW_ALLOC_ECORRUPT = -103,     /* file damaged beyond recovery; err->page, err->msg   */
    DW_ALLOC_EVERSION = -104,     /* file written by a newer format version              */
    DW_ALLOC_EIO = -105,          /* a system call failed; err->sys_errno                */
    DW_ALLOC_ENOMEM = -106,       /* out of memory                                       */
    DW_ALLOC_EFAILED = -107,      /* an earlier sync failed: reopen the allocator        */
    DW_ALLOC_EBUFSIZE = -108,     /* output capacity too small; err->value = the needed
                                     count (reconcile, also *nout) or the largest free
                                     extent (alloc_extents: more than cap extents)    */
    DW_ALLOC_EBUSY = -109,        /* the file is open in another allocator (flock)       */
} dw_alloc_status;

/* Details of a failure.  Filled on error only; any pointer may be NULL. */
typedef struct dw_alloc_err {
    int sys_errno;   /* errno of the failing system call (EIO, EBUSY, ...) */
    int64_t page;    /* bitmap page at fault, -1 if none (ECORRUPT)         */
    uint64_t block;  /* first block at fault (ENOTALLOC, ERANGE)            */
    uint64_t value;  /* largest free extent (ENOSPC; EBUFSIZE of alloc_extents),
                        needed count (EBUFSIZE of reconcile), index of the
                        failing entry (ENOTALLOC, ERANGE, EINVAL of batch
                        calls); unset for other statuses                    */
    char msg[320];   /* a sentence for ECORRUPT, EVERSION, EIO, EINVAL      */
} dw_alloc_err;

typedef struct dw_alloc dw_alloc;

typedef struct dw_alloc_stats {
    uint64_t nblocks;
    uint64_t block_size;
    uint64_t free_blocks;
    uint64_t largest_free;  /* longest run of free blocks                     */
    uint64_t free_extents;  /* maximal free runs (only when asked: full scan) */
    uint64_t generation;    /* committed generation                           */
    uint64_t dirty_pages;   /* bitmap pages changed since the last sync       */
    uint64_t memory_bytes;  /* heap the allocator holds                       */
    uint64_t file_bytes;
    uint64_t recovered_from_fallback; /* 1: open() found the other superblock area
                                         written but failing its checksum and used
                                         the previous generation (see CRASH SAFETY) */
    uint64_t damaged_area_gen;        /* the generation that damaged area claims
                                         (unverified; 0 if unreadable)              */
} dw_alloc_stats;

/* Create `path` (which must not exist) for `nblocks` blocks of `block_size`
 * bytes, all free, durably (written to a temporary name, fsynced, linked into
 * place, directory fsynced), and open it.  1 <= nblocks <= 2^32; block_size a
 * power of two in [512, 2^30]. */
dw_alloc_status dw_alloc_create(const char *path, uint64_t nblocks, uint32_t block_size,
                                dw_alloc **out, dw_alloc_err *err);

/* Open an existing allocator file: newest verifying superblock, committed
 * page copies verified, summaries rebuilt. */
dw_alloc_status dw_alloc_open(const char *path, dw_alloc **out, dw_alloc_err *err);

/* Sync (when do_sync) and release everything; `a` is freed even on error. */
dw_alloc_status dw_alloc_close(dw_alloc *a, int do_sync, dw_alloc_err *err);

/* Make the current state durable (see CRASH SAFETY).  A no-op when nothing
 * changed since the last sync.  Holds the mutex only while copying the
 * changed pages (a memcpy each); allocates 4 KiB per changed page for that
 * (DW_ALLOC_ENOMEM if it cannot, nothing changed). */
dw_alloc_status dw_alloc_sync(dw_alloc *a, dw_alloc_err *err);

/* Allocate n contiguous blocks, next-fit from `hint` (or, with
 * DW_ALLOC_NO_HINT, from the allocator's cursor, which then moves past the
 * extent), wrapping around.  ENOSPC sets err->value to the largest free
 * extent. */
dw_alloc_status dw_alloc_alloc(dw_alloc *a, uint64_t n, uint64_t hint, uint64_t *start,
                               dw_alloc_err *err);

/* Allocate n blocks in as few extents as is cheap: one if a long enough
 * free run exists, else the free runs met next-fit from the cursor.  At most
 * `cap` extents are written to starts[]/lens[] and *count; needing more
 * leaves nothing allocated and returns DW_ALLOC_EBUFSIZE. */
dw_alloc_status dw_alloc_alloc_extents(dw_alloc *a, uint64_t n, uint64_t hint, uint64_t *starts,
                                       uint64_t *lens, size_t cap, size_t *count,
                                       dw_alloc_err *err);

/* `count` contiguous extents of n blocks each, their starts in starts[].
 * All or nothing: on failure nothing stays allocated. */
dw_alloc_status dw_alloc_alloc_batch(dw_alloc *a, size_t count, uint64_t n, uint64_t hint,
                                     uint64_t *starts, dw_alloc_err *err);

/* Free [start, start+n).  Every block must be allocated: a free block is
 * DW_ALLOC_ENOTALLOC (double free) with err->block, and nothing changes. */
dw_alloc_status dw_alloc_free(dw_alloc *a, uint64_t start, uint64_t n, dw_alloc_err *err);

/* Free count extents (lens == NULL: n blocks each).  All or nothing;
 * err->value is the index of the failing extent. */
dw_alloc_status dw_alloc_free_batch(dw_alloc *a, size_t count, const uint64_t *starts,
                                    const uint64_t *lens, uint64_t n, dw_alloc_err *err);

/* Mark [start, start+n) allocated whatever its state (rebuilding from a
 * catalog; idempotent); *newly (may be NULL) counts blocks that were free. */
dw_alloc_status dw_alloc_mark_allocated(dw_alloc *a, uint64_t start, uint64_t n,
                                        uint64_t *newly, dw_alloc_err *err);

/* mark_allocated for count extents (lens == NULL: n each); *newly sums. */
dw_alloc_status dw_alloc_mark_batch(dw_alloc *a, size_t count, const uint64_t *starts,
                                    const uint64_t *lens, uint64_t n, uint64_t *newly,
                                    dw_alloc_err *err);

/* Number of allocated blocks in [start, start+n) into *nalloc. */
dw_alloc_status dw_alloc_count_allocated(dw_alloc *a, uint64_t start, uint64_t n,
                                         uint64_t *nalloc, dw_alloc_err *err);

/* Given the extents the caller references (sorted by start, overlaps
 * allowed), mark them allocated and free every other allocated block.  The
 * freed (leaked) extents go to out_starts/out_lens (capacity cap; *nout
 * their number).  If cap is too small nothing changes, *nout says how many
 * are needed and DW_ALLOC_EBUFSIZE is returned.  *nfreed / *nrestored (may
 * be NULL) count blocks freed and referenced blocks that were free. */
dw_alloc_status dw_alloc_reconcile(dw_alloc *a, size_t count, const uint64_t *starts,
                                   const uint64_t *lens, uint64_t *out_starts,
                                   uint64_t *out_lens, size_t cap, size_t *nout,
                                   uint64_t *nfreed, uint64_t *nrestored, dw_alloc_err *err);

/* Figures; free_extents is counted (a scan of the bitmap) only when full. */
dw_alloc_status dw_alloc_get_stats(dw_alloc *a, int full, dw_alloc_stats *st);

/* Copy the bitmap, ceil(nblocks/8) bytes, bit i of byte j = block 8j + i. */
dw_alloc_status dw_alloc_bitmap(dw_alloc *a, uint8_t *out, size_t cap);

/* Cross-check every summary against the bitmap (tests); ECORRUPT + msg. */
dw_alloc_status dw_alloc_check(dw_alloc *a, dw_alloc_err *err);

uint64_t dw_alloc_nblocks(const dw_alloc *a);
uint32_t dw_alloc_block_size(const dw_alloc *a);

/* The 64-bit page checksum (exposed for tests and tools). */
uint64_t dw_alloc_hash64(const void *data, size_t len, uint64_t seed);

/* ---- for tests only ------------------------------------------------------
 * The hook is called after every flush that really happened (phase 1: page
 * copies, phase 2: superblock), with only the sync lock held, so a test can
 * capture the file's durable bytes.  The flags break sync on purpose, to
 * show that the power-cut test catches a missing flush; never set them
 * otherwise. */
typedef void (*dw_alloc_flush_hook)(void *ctx, int phase);
void dw_alloc_set_flush_hook(dw_alloc *a, dw_alloc_flush_hook hook, void *ctx);
#define DW_ALLOC_TEST_SKIP_FLUSH 1u    /* sync flushes nothing             */
#define DW_ALLOC_TEST_SKIP_BARRIER 2u  /* no flush between pages and superblock */
void dw_alloc_set_test_flags(dw_alloc *a, unsigned flags);

#endif /* DW_ALLOC_H */
