/* alloc.c - the block allocator's in-memory structures and operations.
 *
 * The bitmap (1 = allocated) is the truth; two summaries make searches fast
 * (see dw_alloc.h, IN RAM):
 *
 *  - has-free levels, kept exact on every change, find the next word with a
 *    free block in a few word reads: single-block allocation is one ctz on
 *    the cursor's word in the common case;
 *  - the free-run tree (prefix / suffix / longest free run per 4096-block
 *    region, combined up a binary tree) finds the first run of n free
 *    blocks at or after a position by visiting O(log regions) nodes, one
 *    descent and one region scan.  Changes only mark their regions dirty (a
 *    bit each); tree_flush() recomputes the marked leaves and their
 *    ancestors before a tree search, so single-block traffic never pays for
 *    the tree.
 *
 * Contiguous allocation is next-fit: first the cursor's own region is
 * scanned bit by bit, then the tree is walked rightwards, then from block 0.
 * File I/O lives in alloc_io.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc_impl.h"

#define NONE UINT64_MAX
#define RSHIFT 12 /* log2(DW_ALLOC_REGION_BLOCKS) */

void dw_alloc__set_err(dw_alloc_err *err, int sys_errno, int64_t page, const char *fmt, ...)
{
    if (!err) return;
    err->sys_errno = sys_errno;
    err->page = page;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static inline void err_block(dw_alloc_err *err, uint64_t block, uint64_t value)
{
    if (!err) return;
    err->block = block;
    err->value = value;
    err->page = -1;
    err->sys_errno = 0;
    err->msg[0] = 0;
}

static inline uint64_t sat32(uint64_t x) { return x > UINT32_MAX ? UINT32_MAX : x; }
static inline uint64_t div_ceil(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

/* ------------------------------------------------------------------------ */
/* has-free levels                                                          */
/* ------------------------------------------------------------------------ */

/* Clear bit i, and upwards while words become zero. */
static inline void hb_clear(dw_hbits *b, uint64_t i)
{
    for (int l = 0; l < b->levels; l++) {
        uint64_t *x = &b->w[l][i >> 6];
        *x &= ~(1ULL << (i & 63));
        if (*x) return;
        i >>= 6;
    }
}

/* Set bit i, and upwards while words were zero. */
static inline void hb_set(dw_hbits *b, uint64_t i)
{
    for (int l = 0; l < b->levels; l++) {
        uint64_t *x = &b->w[l][i >> 6];
        uint64_t old = *x;
        *x = old | (1ULL << (i & 63));
        if (old) return;
        i >>= 6;
    }
}

/* First set bit >= i, or NONE. */
static uint64_t hb_next(const dw_hbits *b, uint64_t i)
{
    int l = 0;
    for (;;) {
        uint64_t w = i >> 6;
        if (w >= b->words[l]) return NONE;
        uint64_t m = b->w[l][w] & (~0ULL << (i & 63));
        if (m) {
            i = (w << 6) + dw_ctz64(m);
            break;
        }
        if (l + 1 >= b->levels) return NONE;
        i = w + 1;
        l++;
    }
    while (l > 0) {
        l--;
        i = (i << 6) + dw_ctz64(b->w[l][i]);
    }
    return i;
}

static inline int hb_get(const dw_hbits *b, uint64_t i) { return (int)((b->w[0][i >> 6] >> (i & 63)) & 1); }

/* Word w became full / gained a free block. */
static inline void hclear(dw_alloc *a, uint64_t w) { hb_clear(&a->hfree, w); }
static inline void hset(dw_alloc *a, uint64_t w) { hb_set(&a->hfree, w); }
static inline uint64_t hnext(const dw_alloc *a, uint64_t w) { return hb_next(&a->hfree, w); }

/* ------------------------------------------------------------------------ */
/* dirty marks: tree regions and bitmap pages                               */
/* ------------------------------------------------------------------------ */

static inline void touch_region(dw_alloc *a, uint64_t r)
{
    uint64_t w = r >> 6, bit = 1ULL << (r & 63);
    if (!(a->tdirty0[w] & bit)) {
        a->tdirty0[w] |= bit;
        a->tdirty1[w >> 6] |= 1ULL << (w & 63);
        a->tree_dirty = 1;
    }
}

static inline void touch_page(dw_alloc *a, uint64_t p) { a->pdirty[p >> 6] |= 1ULL << (p & 63); }

/* Words w0..w1 of the bitmap changed. */
static inline void touch_words(dw_alloc *a, uint64_t w0, uint64_t w1)
{
    for (uint64_t r = w0 >> 6; r <= w1 >> 6; r++) touch_region(a, r);
    for (uint64_t p = w0 / DW_ALLOC_PAGE_WORDS; p <= w1 / DW_ALLOC_PAGE_WORDS; p++) touch_page(a, p);
}

/* ------------------------------------------------------------------------ */
/* bitmap ranges                                                            */
/* ------------------------------------------------------------------------ */

static inline uint64_t range_mask(uint64_t w, uint64_t w0, uint64_t w1, uint64_t s, uint64_t e)
{
    uint64_t m = ~0ULL;
    if (w == w0) m &= ~0ULL << (s & 63);
    if (w == w1) m &= ~0ULL >> (63 - (e & 63));
    return m;
}

/* Mark [s, s+n) allocated; returns how many blocks were free. */
static uint64_t set_range(dw_alloc *a, uint64_t s, uint64_t n)
{
    uint64_t e = s + n - 1, w0 = s >> 6, w1 = e >> 6, newly = 0;
    for (uint64_t w = w0; w <= w1; w++) {
        uint64_t m = range_mask(w, w0, w1, s, e), old = a->bm[w], nw = old | m;
        if (nw != old) {
            newly += dw_popcount64(m & ~old);
            a->bm[w] = nw;
            if (nw == ~0ULL) hclear(a, w);
        }
    }
    a->free_count -= newly;
    touch_words(a, w0, w1);
    return newly;
}

/* Mark [s, s+n) free; returns how many blocks were allocated. */
static uint64_t clear_range(dw_alloc *a, uint64_t s, uint64_t n)
{
    uint64_t e = s + n - 1, w0 = s >> 6, w1 = e >> 6, freed = 0;
    for (uint64_t w = w0; w <= w1; w++) {
        uint64_t m = range_mask(w, w0, w1, s, e), old = a->bm[w], nw = old & ~m;
        if (nw != old) {
            freed += dw_popcount64(old & m);
            a->bm[w] = nw;
            if (old == ~0ULL) hset(a, w);
        }
    }
    a->free_count += freed;
    touch_words(a, w0, w1);
    return freed;
}

/* First free block in [s, s+n), or NONE. */
static uint64_t first_free_in(const dw_alloc *a, uint64_t s, uint64_t n)
{
    uint64_t e = s + n - 1, w0 = s >> 6, w1 = e >> 6;
    for (uint64_t w = w0; w <= w1; w++) {
        uint64_t f = ~a->bm[w] & range_mask(w, w0, w1, s, e);
        if (f) return (w << 6) + dw_ctz64(f);
    }
    return NONE;
}

static uint64_t count_in(const dw_alloc *a, uint64_t s, uint64_t n)
{
    uint64_t e = s + n - 1, w0 = s >> 6, w1 = e >> 6, c = 0;
    for (uint64_t w = w0; w <= w1; w++) c += dw_popcount64(a->bm[w] & range_mask(w, w0, w1, s, e));
    return c;
}

static inline int range_is_free(const dw_alloc *a, uint64_t s, uint64_t n)
{
    uint64_t e = s + n - 1, w0 = s >> 6, w1 = e >> 6;
    for (uint64_t w = w0; w <= w1; w++)
        if (a->bm[w] & range_mask(w, w0, w1, s, e)) return 0;
    return 1;
}

/* First allocated block in [b, lim), or lim (bm ends with an all-ones word). */
static uint64_t next_alloc(const dw_alloc *a, uint64_t b, uint64_t lim)
{
    if (b >= lim) return lim;
    uint64_t w = b >> 6, x = a->bm[w] & (~0ULL << (b & 63));
    while (!x) {
        w++;
        if ((w << 6) >= lim) return lim;
        x = a->bm[w];
    }
    uint64_t r = (w << 6) + dw_ctz64(x);
    return r < lim ? r : lim;
}

/* First free block in [b, lim), or lim. */
static uint64_t next_free(const dw_alloc *a, uint64_t b, uint64_t lim)
{
    if (b >= lim) return lim;
    uint64_t w = b >> 6, x = ~a->bm[w] & (~0ULL << (b & 63));
    while (!x) {
        w++;
        if ((w << 6) >= lim) return lim;
        x = ~a->bm[w];
    }
    uint64_t r = (w << 6) + dw_ctz64(x);
    return r < lim ? r : lim;
}

/* First free block at or after pos, wrapping to 0; NONE if there is none. */
static uint64_t find_free_block(const dw_alloc *a, uint64_t pos)
{
    uint64_t w = pos >> 6, f = ~a->bm[w] & (~0ULL << (pos & 63));
    if (!f) {
        w = hnext(a, w + 1);
        if (w == NONE) w = hnext(a, 0);
        if (w == NONE) return NONE;
        f = ~a->bm[w];
    }
    return (w << 6) + dw_ctz64(f);
}

/* ------------------------------------------------------------------------ */
/* free-run tree                                                            */
/* ------------------------------------------------------------------------ */

/* Bit i of the result is set iff bits i .. i+n-1 of f are all set (1<=n<=64). */
static inline uint64_t runs_of(uint64_t f, uint64_t n)
{
    uint64_t g = f, s = 1;
    while (2 * s <= n) {
        g &= g >> s;
        s *= 2;
    }
    if (s < n) g &= g >> (n - s);
    return g;
}

/* Scan blocks [a0, b) (b a multiple of 64) for the first free run of n
 * blocks, given `carry` free blocks ending right before a0.  Returns its
 * start (which may lie before a0 by up to carry) or NONE; *carry_out gets
 * the free run ending at b.  Blocks before a0 in its word count as used. */
static uint64_t scan_run(const uint64_t *bm, uint64_t a0, uint64_t b, uint64_t carry, uint64_t n,
                         uint64_t *carry_out)
{
    uint64_t run = carry, mask = ~0ULL << (a0 & 63);
    for (uint64_t w = a0 >> 6; w < (b >> 6); w++, mask = ~0ULL) {
        uint64_t f = ~bm[w] & mask, base = w << 6;
        if (f == ~0ULL) {
            run += 64;
            if (run >= n) return base + 64 - run;
            continue;
        }
        if (f == 0) {
            run = 0;
            continue;
        }
        uint64_t t = dw_ctz64(~f); /* free blocks at the bottom of the word */
        if (run + t >= n) return base - run;
        if (n < 64) {
            uint64_t g = runs_of(f, n);
            if (g) return base + dw_ctz64(g);
        }
        run = dw_clz64(~f); /* free blocks at the top */
    }
    *carry_out = run;
    return NONE;
}

static inline unsigned run_class(uint64_t len)
{
    unsigned k = 63u - dw_clz64(len);
    return k < DW_NCLASSES ? k : DW_NCLASSES - 1;
}

/* Prefix, suffix and longest free run of region r, the classes of its free
 * runs (cut at the region's edges), and (returned) its free blocks.  Branch
 * light, as open() runs it on every region: one pass marks the free/used
 * transitions of each word, then only the transitions are visited. */
static uint64_t leaf_values(const dw_alloc *a, uint64_t r, uint64_t *pp, uint64_t *ps,
                            uint64_t *pm, uint64_t *pcls, uint64_t *phasfree)
{
    const uint64_t *w = a->bm + (r << 6);
    uint64_t ev[64], has = 0, prev = 0, all_and = ~0ULL, all_or = 0, hf = 0;
    for (int i = 0; i < 64; i++) { /* bit i of has/hf ends up at word i: constant shifts */
        uint64_t x = w[i], f = ~x, e = f ^ ((f << 1) | prev);
        all_and &= x;
        all_or |= x;
        prev = f >> 63;
        ev[i] = e;
        has = (has >> 1) | ((uint64_t)(e != 0) << 63);
        hf = (hf >> 1) | ((uint64_t)(f != 0) << 63);
    }
    *phasfree = hf;
    if (all_and == ~0ULL) { /* full */
        *pp = *ps = *pm = *pcls = 0;
        return 0;
    }
    if (all_or == 0) { /* free */
        *pp = *ps = *pm = DW_ALLOC_REGION_BLOCKS;
        *pcls = 1ULL << (DW_NCLASSES - 1);
        return DW_ALLOC_REGION_BLOCKS;
    }
    /* transitions alternate: free run starts, free run ends, ... */
    uint64_t m = 0, cls = 0, total = 0, start = 0, p = 0, in_run = 0;
    for (; has; has &= has - 1) {
        unsigned i = dw_ctz64(has);
        for (uint64_t e = ev[i]; e; e &= e - 1) {
            uint64_t pos = ((uint64_t)i << 6) + dw_ctz64(e);
            if (in_run) {
                uint64_t len = pos - start;
                m = len > m ? len : m;
                cls |= 1ULL << run_class(len);
                total += len;
                p = start == 0 ? len : p;
            } else {
                start = pos;
            }
            in_run ^= 1;
        }
    }
    uint64_t s = 0;
    if (in_run) { /* the last run reaches the region's end */
        s = DW_ALLOC_REGION_BLOCKS - start;
        m = s > m ? s : m;
        cls |= 1ULL << run_class(s);
        total += s;
        p = start == 0 ? s : p;
    }
    *pp = p;
    *ps = s;
    *pm = m;
    *pcls = cls;
    return total;
}

/* First free run of region r (cut at its edges) with lo <= length < hi. */
static uint64_t region_find_run(const dw_alloc *a, uint64_t r, uint64_t lo, uint64_t hi)
{
    const uint64_t *w = a->bm + (r << 6);
    uint64_t base = r << RSHIFT, cur = 0, cur_start = base;
    for (int i = 0; i < 64; i++) {
        uint64_t x = w[i], wb = base + ((uint64_t)i << 6);
        if (x == 0) {
            if (!cur) cur_start = wb;
            cur += 64;
            continue;
        }
        uint64_t t = dw_ctz64(x);
        if (t) {
            if (!cur) cur_start = wb;
            cur += t;
        }
        if (cur >= lo && cur < hi) return cur_start;
        cur = 0;
        if (x == ~0ULL) continue;
        uint64_t lead = dw_clz64(x), f = ~x & (~0ULL << t) & (~0ULL >> lead);
        while (f) {
            uint64_t s0 = dw_ctz64(f), len = dw_ctz64(~(f >> s0));
            if (len >= lo && len < hi) return wb + s0;
            f &= ~(((1ULL << len) - 1) << s0);
        }
        if (lead) cur = lead, cur_start = wb + 64 - lead;
    }
    return cur >= lo && cur < hi ? cur_start : NONE;
}

static inline uint64_t tlen(const dw_alloc *a, int lvl, uint64_t j)
{
    uint64_t start = j << (RSHIFT + lvl), size = 1ULL << (RSHIFT + lvl), rem = a->nblocks - start;
    return rem < size ? rem : size;
}

static inline void tget(const dw_alloc *a, int lvl, uint64_t j, uint64_t *p, uint64_t *s,
                        uint64_t *m)
{
    if (lvl == 0) {
        const dw_leaf *l = &a->leaf[j];
        *p = l->p, *s = l->s, *m = l->m;
    } else {
        const dw_node *nd = &a->node[lvl][j];
        *p = nd->p, *s = nd->s, *m = nd->m;
    }
}

static void node_values(const dw_alloc *a, int lvl, uint64_t j, uint64_t *pp, uint64_t *ps,
                        uint64_t *pm)
{
    uint64_t l = 2 * j, r = l + 1, lp, ls, lm, rp, rs, rm;
    tget(a, lvl - 1, l, &lp, &ls, &lm);
    if (r >= a->tsize[lvl - 1]) {
        *pp = lp, *ps = ls, *pm = lm;
        return;
    }
    tget(a, lvl - 1, r, &rp, &rs, &rm);
    uint64_t llen = tlen(a, lvl - 1, l), rlen = tlen(a, lvl - 1, r);
    uint64_t m = lm > rm ? lm : rm;
    if (ls + rp > m) m = ls + rp;
    *pp = sat32(lp == llen ? llen + rp : lp);
    *ps = sat32(rs == rlen ? rlen + ls : rs);
    *pm = sat32(m);
}

static inline void leaf_compute(dw_alloc *a, uint64_t r)
{
    uint64_t p, s, m, cls, hf, old = a->leaf[r].cls;
    leaf_values(a, r, &p, &s, &m, &cls, &hf);
    a->leaf[r] = (dw_leaf){(uint16_t)p, (uint16_t)s, (uint16_t)m, (uint16_t)cls};
    for (uint64_t d = old ^ cls; d; d &= d - 1) {
        unsigned k = dw_ctz64(d);
        if ((cls >> k) & 1)
            hb_set(&a->cls[k], r);
        else
            hb_clear(&a->cls[k], r);
    }
}

static inline void node_compute(dw_alloc *a, int lvl, uint64_t j)
{
    uint64_t p, s, m;
    node_values(a, lvl, j, &p, &s, &m);
    a->node[lvl][j] = (dw_node){(uint32_t)p, (uint32_t)s, (uint32_t)m};
}

/* Recompute the leaves (and class bitmaps) of the regions marked dirty; their
 * ancestors are only marked.  Enough for the good-fit search. */
static void leaf_flush(dw_alloc *a)
{
    if (!a->tree_dirty) return;
    for (uint64_t i1 = 0; i1 < a->tdirty1_words; i1++) {
        uint64_t x = a->tdirty1[i1];
        if (!x) continue;
        a->tdirty1[i1] = 0;
        a->ndirty1[i1] |= x;
        for (; x; x &= x - 1) {
            uint64_t w0 = (i1 << 6) + dw_ctz64(x), y = a->tdirty0[w0];
            a->tdirty0[w0] = 0;
            a->ndirty0[w0] |= y;
            for (; y; y &= y - 1) leaf_compute(a, (w0 << 6) + dw_ctz64(y));
        }
    }
    a->tree_dirty = 0;
    a->nodes_dirty = 1;
}

/* Bring the whole tree up to date: dirty leaves, then their ancestors. */
static void tree_flush(dw_alloc *a)
{
    leaf_flush(a);
    if (!a->nodes_dirty) return;
    uint64_t cnt = 0;
    for (uint64_t i1 = 0; i1 < a->tdirty1_words; i1++) {
        uint64_t x = a->ndirty1[i1];
        if (!x) continue;
        a->ndirty1[i1] = 0;
        for (; x; x &= x - 1) {
            uint64_t w0 = (i1 << 6) + dw_ctz64(x), y = a->ndirty0[w0];
            a->ndirty0[w0] = 0;
            for (; y; y &= y - 1) a->scratch[cnt++] = (uint32_t)((w0 << 6) + dw_ctz64(y));
        }
    }
    /* scratch is sorted, so parents are deduplicated in place */
    for (int lvl = 1; lvl < a->tlevels; lvl++) {
        uint64_t out = 0;
        for (uint64_t k = 0; k < cnt; k++) {
            uint32_t j = a->scratch[k] >> 1;
            if (out == 0 || a->scratch[out - 1] != j) a->scratch[out++] = j;
        }
        cnt = out;
        for (uint64_t k = 0; k < cnt; k++) node_compute(a, lvl, a->scratch[k]);
    }
    a->nodes_dirty = 0;
}

/* The first run of n free blocks inside node (lvl, j), given `carry` free
 * blocks ending at its start; the caller knows one exists. */
static uint64_t descend(const dw_alloc *a, int lvl, uint64_t j, uint64_t carry, uint64_t n)
{
    while (lvl > 0) {
        int cl = lvl - 1;
        uint64_t l = 2 * j, r = l + 1, p, s, m;
        tget(a, cl, l, &p, &s, &m);
        if (carry + p >= n) return (l << (RSHIFT + cl)) - carry;
        if (m >= n) {
            lvl = cl, j = l;
            continue;
        }
        uint64_t len = tlen(a, cl, l);
        carry = p == len ? carry + len : s;
        if (r >= a->tsize[cl]) return NONE; /* cannot happen: summaries are exact */
        tget(a, cl, r, &p, &s, &m);
        if (carry + p >= n) return (r << (RSHIFT + cl)) - carry;
        lvl = cl, j = r;
    }
    uint64_t c;
    return scan_run(a->bm, j << RSHIFT, (j + 1) << RSHIFT, carry, n, &c);
}

/* The lowest start s >= pos of n free blocks, or NONE. */
static uint64_t find_from(dw_alloc *a, uint64_t pos, uint64_t n)
{
    uint64_t r = pos >> RSHIFT, carry = 0;
    uint64_t s = scan_run(a->bm, pos, (r + 1) << RSHIFT, 0, n, &carry);
    if (s != NONE) return s;
    tree_flush(a);
    /* visit the maximal nodes right of region r, left to right */
    int lvl = 0, top = a->tlevels - 1;
    uint64_t i = r + 1;
    for (;;) {
        while (!(i & 1) && lvl < top) i >>= 1, lvl++;
        if (i >= a->tsize[lvl]) return NONE;
        uint64_t p, sf, m, len = tlen(a, lvl, i);
        tget(a, lvl, i, &p, &sf, &m);
        if (carry + p >= n) return (i << (RSHIFT + lvl)) - carry;
        if (m >= n) return descend(a, lvl, i, carry, n);
        carry = p == len ? carry + len : sf;
        i++;
    }
}

/* Good fit for n <= 4096 through the class bitmaps: the first region (from
 * pos's, wrapping) holding a free run in the smallest class that can serve
 * n.  Runs of n's own class may be shorter than n: at most 8 regions are
 * tried there before moving up a class.  NONE: no run inside a region fits
 * (one crossing regions may still; the caller asks the tree). */
static uint64_t find_fit(dw_alloc *a, uint64_t pos, uint64_t n)
{
    leaf_flush(a);
    uint64_t r0 = pos >> RSHIFT;
    for (unsigned k = run_class(n); k < DW_NCLASSES; k++) {
        const dw_hbits *b = &a->cls[k];
        uint64_t lo = k == run_class(n) ? n : 1ULL << k;
        uint64_t hi = k == DW_NCLASSES - 1 ? NONE : 1ULL << (k + 1);
        int wrapped = 0, tries = 0;
        uint64_t r = hb_next(b, r0);
        if (r == NONE) wrapped = 1, r = hb_next(b, 0);
        while (r != NONE && !(wrapped && r >= r0)) {
            uint64_t s = region_find_run(a, r, lo, hi);
            if (s != NONE) return s;
            if (++tries >= 8) break;
            r = hb_next(b, r + 1);
            if (r == NONE && !wrapped) wrapped = 1, r = hb_next(b, 0);
        }
    }
    return NONE;
}

static uint64_t largest_free(dw_alloc *a)
{
    tree_flush(a);
    uint64_t p, s, m;
    tget(a, a->tlevels - 1, 0, &p, &s, &m);
    if (m == UINT32_MAX && a->free_count == a->nblocks) return a->nblocks;
    return m;
}

/* ------------------------------------------------------------------------ */
/* setup                                                                    */
/* ------------------------------------------------------------------------ */

static void *zalloc(dw_alloc *a, uint64_t count, size_t size)
{
    if (count == 0) count = 1;
    void *p = calloc((size_t)count, size);
    if (p) a->heap_bytes += count * size;
    return p;
}

/* The bitmap: anonymous memory, in transparent huge pages where the kernel
 * offers them (fewer page faults when open() fills 32 MiB for 2^28 blocks). */
static void *big_alloc(uint64_t bytes)
{
    if (bytes < (1u << 21)) return malloc(bytes);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

static void big_free(void *p, uint64_t bytes)
{
    if (!p) return;
    if (bytes < (1u << 21))
        free(p);
    else
        munmap(p, bytes);
}

static int hb_alloc(dw_alloc *a, dw_hbits *b, uint64_t nbits)
{
    b->words[0] = div_ceil(nbits, 64);
    b->levels = 1;
    while (b->words[b->levels - 1] > 1) {
        b->words[b->levels] = div_ceil(b->words[b->levels - 1], 64);
        b->levels++;
    }
    for (int l = 0; l < b->levels; l++)
        if (!(b->w[l] = zalloc(a, b->words[l], 8))) return 0;
    return 1;
}

static void hb_free(dw_hbits *b)
{
    for (int l = 0; l < DW_H_MAX_LEVELS; l++) free(b->w[l]), b->w[l] = NULL;
}

/* Level k from level k-1 (level 0 filled by the caller). */
static void hb_build_up(dw_hbits *b)
{
    for (int l = 1; l < b->levels; l++)
        for (uint64_t hw = 0; hw < b->words[l]; hw++) {
            uint64_t bits = 0, base = hw << 6;
            uint64_t lim = b->words[l - 1] - base < 64 ? b->words[l - 1] - base : 64;
            for (uint64_t i = 0; i < lim; i++) bits |= (uint64_t)(b->w[l - 1][base + i] != 0) << i;
            b->w[l][hw] = bits;
        }
}

/* Does every summary level of b agree with level 0 (bits < nbits only)? */
static int hb_consistent(const dw_hbits *b, uint64_t nbits)
{
    for (uint64_t i = nbits; i < b->words[0] * 64; i++)
        if (hb_get(b, i)) return 0;
    for (int l = 1; l < b->levels; l++)
        for (uint64_t i = 0; i < b->words[l] * 64; i++) {
            int want = i < b->words[l - 1] && b->w[l - 1][i] != 0;
            if ((int)((b->w[l][i >> 6] >> (i & 63)) & 1) != want) return 0;
        }
    return 1;
}

dw_alloc_status dw_alloc__init_mem(dw_alloc *a, dw_alloc_err *err)
{
    a->nwords = div_ceil(a->nblocks, 64);
    a->nleaves = div_ceil(a->nwords, 64);
    uint64_t pw = a->npages * DW_ALLOC_PAGE_WORDS, lw = a->nleaves * 64;
    a->bwords = (pw > lw ? pw : lw) + 1; /* + an all-ones sentinel word */
    a->heap_bytes = sizeof *a;

    a->tsize[0] = a->nleaves;
    a->tlevels = 1;
    while (a->tsize[a->tlevels - 1] > 1) {
        a->tsize[a->tlevels] = div_ceil(a->tsize[a->tlevels - 1], 2);
        a->tlevels++;
    }
    a->tdirty0_words = div_ceil(a->nleaves, 64);
    a->tdirty1_words = div_ceil(a->tdirty0_words, 64);
    a->pwords = div_ceil(a->npages, 64);

    int ok = 1;
    ok &= (a->bm = big_alloc(a->bwords * 8)) != NULL;
    if (a->bm) a->heap_bytes += a->bwords * 8;
    ok &= hb_alloc(a, &a->hfree, a->nwords);
    for (int k = 0; k < DW_NCLASSES; k++) ok &= hb_alloc(a, &a->cls[k], a->nleaves);
    ok &= (a->leaf = zalloc(a, a->nleaves, sizeof(dw_leaf))) != NULL;
    for (int l = 1; l < a->tlevels; l++)
        ok &= (a->node[l] = zalloc(a, a->tsize[l], sizeof(dw_node))) != NULL;
    ok &= (a->tdirty0 = zalloc(a, a->tdirty0_words, 8)) != NULL;
    ok &= (a->tdirty1 = zalloc(a, a->tdirty1_words, 8)) != NULL;
    ok &= (a->ndirty0 = zalloc(a, a->tdirty0_words, 8)) != NULL;
    ok &= (a->ndirty1 = zalloc(a, a->tdirty1_words, 8)) != NULL;
    ok &= (a->scratch = zalloc(a, a->nleaves, sizeof(uint32_t))) != NULL;
    ok &= (a->slot = zalloc(a, a->pwords, 8)) != NULL;
    ok &= (a->pdirty = zalloc(a, a->pwords, 8)) != NULL;
    ok &= (a->inflight = zalloc(a, a->pwords, 8)) != NULL;
    ok &= (a->area_buf = zalloc(a, a->area_bytes, 1)) != NULL;
    ok &= (a->page_buf = zalloc(a, DW_ALLOC_PAGE_BYTES, 1)) != NULL;
    if (!ok) {
        dw_alloc__set_err(err, ENOMEM, -1, "out of memory for an allocator of %llu blocks",
                          (unsigned long long)a->nblocks);
        return DW_ALLOC_ENOMEM;
    }
    /* the words past the last block hold no blocks: allocated for good */
    for (uint64_t w = a->nwords; w < a->bwords; w++) a->bm[w] = ~0ULL;
    return DW_ALLOC_OK;
}

void dw_alloc__free_mem(dw_alloc *a)
{
    big_free(a->bm, a->bwords * 8);
    hb_free(&a->hfree);
    for (int k = 0; k < DW_NCLASSES; k++) hb_free(&a->cls[k]);
    free(a->leaf);
    for (int l = 0; l < DW_T_MAX_LEVELS; l++) free(a->node[l]);
    free(a->tdirty0);
    free(a->tdirty1);
    free(a->ndirty0);
    free(a->ndirty1);
    free(a->scratch);
    free(a->slot);
    free(a->pdirty);
    free(a->inflight);
    free(a->area_buf);
    free(a->page_buf);
}

/* Has-free levels and the whole tree from bm (which holds its padding). */
uint64_t dw_alloc__summarize_regions(dw_alloc *a, uint64_t r0, uint64_t r1)
{
    uint64_t free_blocks = 0;
    for (uint64_t r = r0; r < r1; r++) {
        uint64_t p, sf, m, cls, hf;
        free_blocks += leaf_values(a, r, &p, &sf, &m, &cls, &hf);
        a->hfree.w[0][r] = hf; /* one has-free word per region; padding words are full */
        a->leaf[r] = (dw_leaf){(uint16_t)p, (uint16_t)sf, (uint16_t)m, (uint16_t)cls};
        for (; cls; cls &= cls - 1) a->cls[dw_ctz64(cls)].w[0][r >> 6] |= 1ULL << (r & 63);
    }
    return free_blocks;
}

void dw_alloc__finish_summaries(dw_alloc *a)
{
    hb_build_up(&a->hfree);
    for (int k = 0; k < DW_NCLASSES; k++) hb_build_up(&a->cls[k]);
    for (int l = 1; l < a->tlevels; l++)
        for (uint64_t j = 0; j < a->tsize[l]; j++) node_compute(a, l, j);
    memset(a->tdirty0, 0, a->tdirty0_words * 8);
    memset(a->tdirty1, 0, a->tdirty1_words * 8);
    memset(a->ndirty0, 0, a->tdirty0_words * 8);
    memset(a->ndirty1, 0, a->tdirty1_words * 8);
    a->tree_dirty = 0;
    a->nodes_dirty = 0;
}

/* ------------------------------------------------------------------------ */
/* operations                                                               */
/* ------------------------------------------------------------------------ */

static dw_alloc_status check_range(const dw_alloc *a, uint64_t start, uint64_t n,
                                   dw_alloc_err *err)
{
    if (n == 0) {
        err_block(err, start, 0);
        dw_alloc__set_err(err, 0, -1, "n must be at least 1");
        return DW_ALLOC_EINVAL;
    }
    if (start >= a->nblocks || n > a->nblocks - start) {
        err_block(err, start >= a->nblocks ? start : a->nblocks, 0);
        return DW_ALLOC_ERANGE;
    }
    return DW_ALLOC_OK;
}

static dw_alloc_status enospc(dw_alloc *a, dw_alloc_err *err)
{
    err_block(err, 0, largest_free(a));
    return DW_ALLOC_ENOSPC;
}

static dw_alloc_status failed(const dw_alloc *a, dw_alloc_err *err)
{
    dw_alloc__set_err(err, a->failed_errno, -1,
                      "an earlier sync failed (%s); the allocator refuses changes until it is "
                      "closed and reopened",
                      strerror(a->failed_errno));
    return DW_ALLOC_EFAILED;
}

/* Take one free block at or after pos (wrapping); the caller checked free_count. */
static inline uint64_t take_one(dw_alloc *a, uint64_t pos)
{
    uint64_t w = pos >> 6, f = ~a->bm[w] & (~0ULL << (pos & 63));
    if (!f) {
        w = hnext(a, w + 1);
        if (w == NONE) w = hnext(a, 0);
        f = ~a->bm[w];
    }
    uint64_t b = dw_ctz64(f), nw = a->bm[w] | (1ULL << b);
    a->bm[w] = nw;
    if (nw == ~0ULL) hclear(a, w);
    touch_region(a, w >> 6);
    touch_page(a, w / DW_ALLOC_PAGE_WORDS);
    a->free_count--;
    return (w << 6) + b;
}

/* Where n contiguous free blocks go (NONE if nowhere): right at pos if the
 * run there is long enough (the hole being filled goes on being filled),
 * else good fit by class (n <= 4096), else the first run of n at or after
 * pos by the tree, wrapping.  Good fit keeps long runs for long requests:
 * next-fit alone cuts them up and a 90%-full map soon has no 1 MiB run. */
static uint64_t find_contig(dw_alloc *a, uint64_t pos, uint64_t n)
{
    if (n <= a->nblocks - pos && range_is_free(a, pos, n)) return pos;
    uint64_t s = n <= DW_ALLOC_REGION_BLOCKS ? find_fit(a, pos, n) : NONE;
    if (s == NONE) s = find_from(a, pos, n);
    if (s == NONE && pos) s = find_from(a, 0, n);
    return s;
}

static inline void advance(dw_alloc *a, uint64_t hint, uint64_t end)
{
    if (hint == DW_ALLOC_NO_HINT) a->cursor = end >= a->nblocks ? 0 : end;
}

/* Allocate with the lock held; ENOSPC without filling err (callers do). */
static dw_alloc_status alloc_locked(dw_alloc *a, uint64_t n, uint64_t hint, uint64_t *start)
{
    if (n > a->free_count) return DW_ALLOC_ENOSPC;
    uint64_t pos = hint == DW_ALLOC_NO_HINT ? a->cursor : hint, s;
    if (n == 1) {
        s = take_one(a, pos);
    } else {
        s = find_contig(a, pos, n);
        if (s == NONE) return DW_ALLOC_ENOSPC;
        set_range(a, s, n);
    }
    advance(a, hint, s + n);
    *start = s;
    return DW_ALLOC_OK;
}

static dw_alloc_status check_alloc_args(const dw_alloc *a, uint64_t n, uint64_t hint,
                                        dw_alloc_err *err)
{
    if (n == 0) {
        err_block(err, 0, 0);
        dw_alloc__set_err(err, 0, -1, "n must be at least 1");
        return DW_ALLOC_EINVAL;
    }
    if (hint != DW_ALLOC_NO_HINT && hint >= a->nblocks) {
        err_block(err, hint, 0);
        dw_alloc__set_err(err, 0, -1, "hint=%llu is past the last block (%llu blocks)",
                          (unsigned long long)hint, (unsigned long long)a->nblocks);
        return DW_ALLOC_EINVAL;
    }
    return DW_ALLOC_OK;
}

dw_alloc_status dw_alloc_alloc(dw_alloc *a, uint64_t n, uint64_t hint, uint64_t *start,
                               dw_alloc_err *err)
{
    if (!a || !start) return DW_ALLOC_ENULL;
    dw_alloc_status rc = check_alloc_args(a, n, hint, err);
    if (rc) return rc;
    pthread_mutex_lock(&a->mtx);
    if (a->failed)
        rc = failed(a, err);
    else if ((rc = alloc_locked(a, n, hint, start)) == DW_ALLOC_ENOSPC)
        enospc(a, err);
    pthread_mutex_unlock(&a->mtx);
    return rc;
}

dw_alloc_status dw_alloc_alloc_extents(dw_alloc *a, uint64_t n, uint64_t hint, uint64_t *starts,
                                       uint64_t *lens, size_t cap, size_t *count,
                                       dw_alloc_err *err)
{
    if (!a || !starts || !lens || !count) return DW_ALLOC_ENULL;
    dw_alloc_status rc = check_alloc_args(a, n, hint, err);
    if (rc) return rc;
    if (cap == 0) {
        dw_alloc__set_err(err, 0, -1, "room for at least one extent is needed");
        return DW_ALLOC_EINVAL;
    }
    pthread_mutex_lock(&a->mtx);
    if (a->failed) {
        rc = failed(a, err);
        goto out;
    }
    if (n > a->free_count) {
        rc = enospc(a, err);
        goto out;
    }
    uint64_t pos = hint == DW_ALLOC_NO_HINT ? a->cursor : hint;
    uint64_t s = n == 1 ? find_free_block(a, pos) : find_contig(a, pos, n);
    if (s != NONE) {
        set_range(a, s, n);
        starts[0] = s, lens[0] = n, *count = 1;
        advance(a, hint, s + n);
        goto out;
    }
    /* gather the free runs met from pos on */
    size_t k = 0;
    uint64_t got = 0;
    while (got < n) {
        uint64_t b = find_free_block(a, pos);
        uint64_t lim = n - got < a->nblocks - b ? b + (n - got) : a->nblocks;
        uint64_t e = next_alloc(a, b, lim);
        if (k == cap) {
            for (size_t i = 0; i < k; i++) clear_range(a, starts[i], lens[i]);
            err_block(err, 0, largest_free(a));
            rc = DW_ALLOC_EBUFSIZE;
            goto out;
        }
        starts[k] = b, lens[k] = e - b, k++;
        set_range(a, b, e - b);
        got += e - b;
        pos = e >= a->nblocks ? 0 : e;
    }
    *count = k;
    advance(a, hint, pos);
out:
    pthread_mutex_unlock(&a->mtx);
    return rc;
}

dw_alloc_status dw_alloc_alloc_batch(dw_alloc *a, size_t count, uint64_t n, uint64_t hint,
                                     uint64_t *starts, dw_alloc_err *err)
{
    if (!a || (!starts && count)) return DW_ALLOC_ENULL;
    dw_alloc_status rc = check_alloc_args(a, n, hint, err);
    if (rc || count == 0) return rc;
    pthread_mutex_lock(&a->mtx);
    if (a->failed) {
        rc = failed(a, err);
        goto out;
    }
    uint64_t cursor = a->cursor, h = hint;
    if (n > a->free_count || count > a->free_count / n) {
        rc = enospc(a, err);
        goto out;
    }
    if (n == 1) { /* every free block of a word in one step */
        uint64_t pos = hint == DW_ALLOC_NO_HINT ? a->cursor : hint;
        size_t i = 0;
        while (i < count) {
            uint64_t w = pos >> 6, f = ~a->bm[w] & (~0ULL << (pos & 63));
            if (!f) {
                w = hnext(a, w + 1);
                if (w == NONE) w = hnext(a, 0);
                f = ~a->bm[w];
            }
            uint64_t taken = 0, base = w << 6, b = 0;
            for (; f && i < count; f &= f - 1, i++) {
                b = dw_ctz64(f);
                taken |= 1ULL << b;
                starts[i] = base + b;
            }
            uint64_t nw = a->bm[w] | taken;
            a->bm[w] = nw;
            if (nw == ~0ULL) hclear(a, w);
            touch_region(a, w >> 6);
            touch_page(a, w / DW_ALLOC_PAGE_WORDS);
            a->free_count -= dw_popcount64(taken);
            pos = base + b + 1 >= a->nblocks ? 0 : base + b + 1;
        }
        if (hint == DW_ALLOC_NO_HINT) a->cursor = pos;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        rc = alloc_locked(a, n, h, &starts[i]);
        if (rc) {
            for (size_t j = 0; j < i; j++) clear_range(a, starts[j], n);
            a->cursor = cursor;
            enospc(a, err);
            if (err) err->block = i;
            goto out;
        }
        if (hint != DW_ALLOC_NO_HINT) h = starts[i] + n >= a->nblocks ? 0 : starts[i] + n;
    }
out:
    pthread_mutex_unlock(&a->mtx);
    return rc;
}

dw_alloc_status dw_alloc_free(dw_alloc *a, uint64_t start, uint64_t n, dw_alloc_err *err)
{
    if (!a) return DW_ALLOC_ENULL;
    dw_alloc_status rc = check_range(a, start, n, err);
    if (rc) return rc;
    pthread_mutex_lock(&a->mtx);
    if (a->failed) {
        rc = failed(a, err);
    } else if (n == 1) {
        uint64_t w = start >> 6, bit = 1ULL << (start & 63), old = a->bm[w];
        if (!(old & bit)) {
            err_block(err, start, 0);
            rc = DW_ALLOC_ENOTALLOC;
        } else {
            a->bm[w] = old & ~bit;
            if (old == ~0ULL) hset(a, w);
            touch_region(a, w >> 6);
            touch_page(a, w / DW_ALLOC_PAGE_WORDS);
            a->free_count++;
        }
    } else {
        uint64_t b = first_free_in(a, start, n);
        if (b != NONE) {
            err_block(err, b, 0);
            rc = DW_ALLOC_ENOTALLOC;
        } else {
            clear_range(a, start, n);
        }
    }
    pthread_mutex_unlock(&a->mtx);
    return rc;
}

static dw_alloc_status check_batch(const dw_alloc *a, size_t count, const uint64_t *starts,
                                   const uint64_t *lens, uint64_t n, dw_alloc_err *err)
{
    for (size_t i = 0; i < count; i++) {
        dw_alloc_status rc = check_range(a, starts[i], lens ? lens[i] : n, err);
        if (rc) {
            if (err) err->value = i;
            return rc;
        }
    }
    return DW_ALLOC_OK;
}

dw_alloc_status dw_alloc_free_batch(dw_alloc *a, size_t count, const uint64_t *starts,
                                    const uint64_t *lens, uint64_t n, dw_alloc_err *err)
{
    if (!a || (!starts && count)) return DW_ALLOC_ENULL;
    dw_alloc_status rc = check_batch(a, count, starts, lens, n, err);
    if (rc) return rc;
    pthread_mutex_lock(&a->mtx);
    if (a->failed) {
        rc = failed(a, err);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t len = lens ? lens[i] : n, b = first_free_in(a, starts[i], len);
        if (b != NONE) {
            for (size_t j = 0; j < i; j++) set_range(a, starts[j], lens ? lens[j] : n);
            err_block(err, b, i);
            rc = DW_ALLOC_ENOTALLOC;
            goto out;
        }
        clear_range(a, starts[i], len);
    }
out:
    pthread_mutex_unlock(&a->mtx);
    return rc;
}

dw_alloc_status dw_alloc_mark_allocated(dw_alloc *a, uint64_t start, uint64_t n, uint64_t *newly,
                                        dw_alloc_err *err)
{
    return dw_alloc_mark_batch(a, 1, &start, &n, 0, newly, err);
}

dw_alloc_status dw_alloc_mark_batch(dw_alloc *a, size_t count, const uint64_t *starts,
                                    const uint64_t *lens, uint64_t n, uint64_t *newly,
                                    dw_alloc_err *err)
{
    if (!a || (!starts && count)) return DW_ALLOC_ENULL;
    dw_alloc_status rc = check_batch(a, count, starts, lens, n, err);
    if (rc) return rc;
    uint64_t total = 0;
    pthread_mutex_lock(&a->mtx);
    if (a->failed)
        rc = failed(a, err);
    else
        for (size_t i = 0; i < count; i++) total += set_range(a, starts[i], lens ? lens[i] : n);
    pthread_mutex_unlock(&a->mtx);
    if (newly) *newly = total;
    return rc;
}

dw_alloc_status dw_alloc_count_allocated(dw_alloc *a, uint64_t start, uint64_t n,
                                         uint64_t *nalloc, dw_alloc_err *err)
{
    if (!a || !nalloc) return DW_ALLOC_ENULL;
    dw_alloc_status rc = check_range(a, start, n, err);
    if (rc) return rc;
    pthread_mutex_lock(&a->mtx);
    *nalloc = count_in(a, start, n);
    pthread_mutex_unlock(&a->mtx);
    return DW_ALLOC_OK;
}

/* Allocated runs in [lo, hi): counted, or (out != NULL) freed and recorded. */
static uint64_t leaked_runs(dw_alloc *a, uint64_t lo, uint64_t hi, uint64_t *os, uint64_t *ol,
                            uint64_t k, uint64_t *nfreed)
{
    uint64_t b = next_alloc(a, lo, hi);
    while (b < hi) {
        uint64_t e = next_free(a, b, hi);
        if (os) {
            os[k] = b, ol[k] = e - b;
            *nfreed += clear_range(a, b, e - b);
        }
        k++;
        b = next_alloc(a, e, hi);
    }
    return k;
}

dw_alloc_status dw_alloc_reconcile(dw_alloc *a, size_t count, const uint64_t *starts,
                                   const uint64_t *lens, uint64_t *out_starts,
                                   uint64_t *out_lens, size_t cap, size_t *nout,
                                   uint64_t *nfreed, uint64_t *nrestored, dw_alloc_err *err)
{
    if (!a || !nout || (count && (!starts || !lens)) || (cap && (!out_starts || !out_lens)))
        return DW_ALLOC_ENULL;
    for (size_t i = 0; i < count; i++) {
        if (lens[i] == 0) continue;
        dw_alloc_status rc = check_range(a, starts[i], lens[i], err);
        if (rc) {
            if (err) err->value = i;
            return rc;
        }
        if (i && starts[i] < starts[i - 1]) {
            err_block(err, starts[i], i);
            dw_alloc__set_err(err, 0, -1, "used extents must be sorted by start (entry %zu)", i);
            return DW_ALLOC_EINVAL;
        }
    }
    dw_alloc_status rc = DW_ALLOC_OK;
    uint64_t freed = 0, restored = 0;
    pthread_mutex_lock(&a->mtx);
    if (a->failed) {
        rc = failed(a, err);
        goto out;
    }
    for (int pass = 0; pass < 2; pass++) {
        uint64_t cur = 0, k = 0;
        uint64_t *os = pass ? out_starts : NULL, *ol = pass ? out_lens : NULL;
        for (size_t i = 0; i < count; i++) {
            if (lens[i] == 0) continue;
            if (starts[i] > cur) k = leaked_runs(a, cur, starts[i], os, ol, k, &freed);
            if (starts[i] + lens[i] > cur) cur = starts[i] + lens[i];
        }
        k = leaked_runs(a, cur, a->nblocks, os, ol, k, &freed);
        *nout = k;
        if (!pass && k > cap) {
            err_block(err, 0, k);
            rc = DW_ALLOC_EBUFSIZE;
            goto out;
        }
    }
    for (size_t i = 0; i < count; i++)
        if (lens[i]) restored += set_range(a, starts[i], lens[i]);
out:
    pthread_mutex_unlock(&a->mtx);
    if (nfreed) *nfreed = freed;
    if (nrestored) *nrestored = restored;
    return rc;
}

dw_alloc_status dw_alloc_get_stats(dw_alloc *a, int full, dw_alloc_stats *st)
{
    if (!a || !st) return DW_ALLOC_ENULL;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&a->mtx);
    st->nblocks = a->nblocks;
    st->block_size = a->block_size;
    st->free_blocks = a->free_count;
    st->largest_free = largest_free(a);
    st->generation = a->gen;
    for (uint64_t i = 0; i < a->pwords; i++) st->dirty_pages += dw_popcount64(a->pdirty[i]);
    st->memory_bytes = a->heap_bytes;
    st->file_bytes = a->file_bytes;
    st->recovered_from_fallback = (uint64_t)a->fallback;
    st->damaged_area_gen = a->damaged_gen;
    if (full) {
        uint64_t runs = 0, prev = 0;
        for (uint64_t w = 0; w < a->nwords; w++) {
            uint64_t f = ~a->bm[w];
            runs += dw_popcount64(f & ~((f << 1) | prev));
            prev = f >> 63;
        }
        st->free_extents = runs;
    }
    pthread_mutex_unlock(&a->mtx);
    return DW_ALLOC_OK;
}

dw_alloc_status dw_alloc_bitmap(dw_alloc *a, uint8_t *out, size_t cap)
{
    if (!a || !out) return DW_ALLOC_ENULL;
    uint64_t nbytes = div_ceil(a->nblocks, 8);
    if (cap < nbytes) return DW_ALLOC_EINVAL;
    pthread_mutex_lock(&a->mtx);
    for (uint64_t w = 0; w < a->nwords; w++) {
        uint64_t x = a->bm[w];
        uint64_t rem = a->nblocks - (w << 6);
        if (rem < 64) x &= (1ULL << rem) - 1;
        for (uint64_t b = 0; b < 8 && w * 8 + b < nbytes; b++) out[w * 8 + b] = (uint8_t)(x >> (8 * b));
    }
    pthread_mutex_unlock(&a->mtx);
    return DW_ALLOC_OK;
}

dw_alloc_status dw_alloc_check(dw_alloc *a, dw_alloc_err *err)
{
    if (!a) return DW_ALLOC_ENULL;
    dw_alloc_status rc = DW_ALLOC_ECORRUPT;
    pthread_mutex_lock(&a->mtx);
    uint64_t used = 0;
    for (uint64_t w = 0; w < a->nwords; w++) used += dw_popcount64(a->bm[w]);
    uint64_t pad = a->nwords * 64 - a->nblocks;
    if (pad && (a->bm[a->nwords - 1] >> (64 - pad)) != (~0ULL >> (64 - pad))) {
        dw_alloc__set_err(err, 0, -1, "padding bits past block %llu are not set",
                          (unsigned long long)a->nblocks);
        goto out;
    }
    for (uint64_t w = a->nwords; w < a->bwords; w++)
        if (a->bm[w] != ~0ULL) {
            dw_alloc__set_err(err, 0, -1, "padding word %llu is not all ones", (unsigned long long)w);
            goto out;
        }
    if (a->nblocks - (used - pad) != a->free_count) {
        dw_alloc__set_err(err, 0, -1, "free count %llu but the bitmap has %llu free blocks",
                          (unsigned long long)a->free_count,
                          (unsigned long long)(a->nblocks - (used - pad)));
        goto out;
    }
    if (a->cursor >= a->nblocks) {
        dw_alloc__set_err(err, 0, -1, "cursor %llu out of range", (unsigned long long)a->cursor);
        goto out;
    }
    for (uint64_t w = 0; w < a->nwords; w++)
        if (hb_get(&a->hfree, w) != (a->bm[w] != ~0ULL)) {
            dw_alloc__set_err(err, 0, -1, "has-free bit of word %llu is wrong", (unsigned long long)w);
            goto out;
        }
    if (!hb_consistent(&a->hfree, a->nwords)) {
        dw_alloc__set_err(err, 0, -1, "has-free summary levels are wrong");
        goto out;
    }
    tree_flush(a);
    for (int l = 0; l < a->tlevels; l++)
        for (uint64_t j = 0; j < a->tsize[l]; j++) {
            uint64_t p, s, m, p2, s2, m2, cls = 0;
            uint64_t hf;
            if (l == 0)
                leaf_values(a, j, &p, &s, &m, &cls, &hf);
            else
                node_values(a, l, j, &p, &s, &m);
            tget(a, l, j, &p2, &s2, &m2);
            int bad = p != p2 || s != s2 || m != m2;
            for (int k = 0; l == 0 && k < DW_NCLASSES; k++)
                bad |= (int)((cls >> k) & 1) != hb_get(&a->cls[k], j) ||
                       (uint64_t)a->leaf[j].cls != cls;
            if (bad) {
                dw_alloc__set_err(err, 0, -1, "free-run tree node %d/%llu is stale", l,
                                  (unsigned long long)j);
                goto out;
            }
        }
    for (int k = 0; k < DW_NCLASSES; k++)
        if (!hb_consistent(&a->cls[k], a->nleaves)) {
            dw_alloc__set_err(err, 0, -1, "class %d region summary levels are wrong", k);
            goto out;
        }
    rc = DW_ALLOC_OK;
out:
    pthread_mutex_unlock(&a->mtx);
    return rc;
}

uint64_t dw_alloc_nblocks(const dw_alloc *a) { return a ? a->nblocks : 0; }
uint32_t dw_alloc_block_size(const dw_alloc *a) { return a ? a->block_size : 0; }

void dw_alloc_set_flush_hook(dw_alloc *a, dw_alloc_flush_hook hook, void *ctx)
{
    if (!a) return;
    pthread_mutex_lock(&a->sync_mtx);
    a->hook = hook;
    a->hook_ctx = ctx;
    pthread_mutex_unlock(&a->sync_mtx);
}

void dw_alloc_set_test_flags(dw_alloc *a, unsigned flags)
{
    if (!a) return;
    pthread_mutex_lock(&a->sync_mtx);
    a->test_flags = flags;
    pthread_mutex_unlock(&a->sync_mtx);
}
