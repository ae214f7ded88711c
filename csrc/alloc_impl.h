/* alloc_impl.h - internal state of the block allocator, shared by alloc.c
 * (in-memory structures and operations) and alloc_io.c (file format, open,
 * create, sync).  Not part of the C API. */
#ifndef DW_ALLOC_IMPL_H
#define DW_ALLOC_IMPL_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "dw_alloc.h"

#define DW_H_MAX_LEVELS 8   /* 2^26 words -> 2^20 -> 2^14 -> 2^8 -> 4 -> 1 */
#define DW_T_MAX_LEVELS 24  /* 2^20 regions -> 21 levels */
#define DW_NCLASSES 13      /* free-run classes [2^k, 2^(k+1)), k = 0..12 */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define DW_LE64(x) __builtin_bswap64(x)
#define DW_LE32(x) __builtin_bswap32(x)
#else
#define DW_LE64(x) (x)
#define DW_LE32(x) (x)
#endif

/* Tree leaf: one 4096-block region.  p = free run at its start, s = at its
 * end, m = longest; cls bit k = it holds a free run (cut at the region's
 * edges) of length in [2^k, 2^(k+1)). */
typedef struct dw_leaf {
    uint16_t p, s, m, cls;
} dw_leaf;

/* A bitmap with summary levels: level 0 holds the bits, level k one bit
 * per non-zero word of level k-1, up to a single word. */
typedef struct dw_hbits {
    int levels;
    uint64_t *w[DW_H_MAX_LEVELS];
    uint64_t words[DW_H_MAX_LEVELS];
} dw_hbits;

/* Inner tree node over 2^level regions (saturating at UINT32_MAX, which only
 * the root of a 2^32-block map can reach). */
typedef struct dw_node {
    uint32_t p, s, m;
} dw_node;

struct dw_alloc {
    pthread_mutex_t mtx;      /* guards the state below                     */
    pthread_mutex_t sync_mtx; /* serialises sync(); guards slot[] writers   */

    /* geometry */
    uint64_t nblocks;
    uint32_t block_size;
    uint64_t nwords;   /* words holding at least one block */
    uint64_t bwords;   /* words in bm[] (padded with all-ones words) */
    uint64_t npages;   /* bitmap pages */
    uint64_t area_bytes;
    uint64_t data_off;
    uint64_t file_bytes;
    uint64_t uuid;

    /* allocation state */
    uint64_t *bm;  /* 1 = allocated */
    uint64_t free_count;
    uint64_t cursor;

    /* has-free summary: one bit per bm word that is not full */
    dw_hbits hfree;
    /* per free-run class, one bit per region holding a run of that class */
    dw_hbits cls[DW_NCLASSES];

    /* free-run tree: level 0 = leaves, tsize[k] nodes at level k */
    uint64_t nleaves;
    int tlevels;
    uint64_t tsize[DW_T_MAX_LEVELS];
    dw_leaf *leaf;
    dw_node *node[DW_T_MAX_LEVELS]; /* node[0] unused */
    uint64_t *tdirty0;              /* leaves to recompute: one bit per leaf */
    uint64_t *tdirty1;              /* one bit per tdirty0 word */
    uint64_t *ndirty0, *ndirty1;    /* recomputed leaves whose ancestors are stale */
    uint64_t tdirty0_words, tdirty1_words;
    int tree_dirty;                 /* some tdirty bit is set */
    int nodes_dirty;                /* some ndirty bit is set */
    uint32_t *scratch; /* nleaves entries, used by tree_flush */

    /* persistence */
    int fd;
    uint64_t gen;            /* committed generation */
    uint64_t committed_free; /* free blocks at the last commit */
    uint64_t pwords;         /* words in the page bitmaps below */
    uint64_t *slot;          /* committed copy of each page (1 bit)       */
    uint64_t *pdirty;        /* pages changed since the last sync          */
    uint64_t *inflight;      /* pages written by the sync in progress      */
    unsigned sb_area;        /* superblock area holding the committed copy */
    int fallback;            /* open() fell back from a damaged newest area */
    uint64_t damaged_gen;    /* the generation that area claims (unverified) */
    uint8_t *area_buf;       /* area_bytes */
    uint8_t *page_buf;       /* one page */
    int failed;              /* an I/O error in sync: refuse changes      */
    int failed_errno;
    unsigned test_flags;
    dw_alloc_flush_hook hook;
    void *hook_ctx;
    uint64_t heap_bytes;
};

/* alloc.c: in-memory structures */
dw_alloc_status dw_alloc__init_mem(dw_alloc *a, dw_alloc_err *err);
void dw_alloc__free_mem(dw_alloc *a);
/* Summaries from bm: regions [r0, r1) (level 0 of the has-free and class
 * bitmaps, which must start zeroed, and the leaves; returns their free
 * blocks), then, once every region is done, the upper levels and the tree. */
uint64_t dw_alloc__summarize_regions(dw_alloc *a, uint64_t r0, uint64_t r1);
void dw_alloc__finish_summaries(dw_alloc *a);
void dw_alloc__set_err(dw_alloc_err *err, int sys_errno, int64_t page, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The baseline x86-64 target has no POPCNT: __builtin_popcountll would be a
 * libgcc call, slower than this. */
static inline uint64_t dw_popcount64(uint64_t x)
{
#if defined(__POPCNT__) || defined(__aarch64__)
    return (uint64_t)__builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (x * 0x0101010101010101ULL) >> 56;
#endif
}
static inline unsigned dw_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
static inline unsigned dw_clz64(uint64_t x) { return (unsigned)__builtin_clzll(x); }

#endif /* DW_ALLOC_IMPL_H */
