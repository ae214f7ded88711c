/* alloc_io.c - the block allocator's file: format, create, open, sync, close.
 *
 * Format and crash-safety argument: see dw_alloc.h.  In short, shadow
 * paging: sync() snapshots the changed bitmap pages under the mutex, writes
 * them without it into their uncommitted copies, fdatasync()s, writes the
 * superblock area not in use naming those copies, fdatasync()s.  open()
 * maps the file, takes the newest verifying area and reads the copies it
 * names, and reports a fallback from a damaged newer area.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc_impl.h"

#define SB_MAGIC 0x00434f4c4c415744ULL /* "DWALLOC\0" little-endian */
#define PAGE_MAGIC 0x50415744u         /* "DWAP" */
#define SB_SEED 0x6477616c6c6f6331ULL
#define PAGE_SEED 0x70616765636f7079ULL
#define SB_HDR 256u
#define PB DW_ALLOC_PAGE_BYTES
#define PAGE_HDR 64u
#define MAX_AREA_PAGES 8u

/* ------------------------------------------------------------------------ */
/* checksum: xxHash64 (public algorithm, written from its specification)     */
/* ------------------------------------------------------------------------ */

#define XP1 0x9E3779B185EBCA87ULL
#define XP2 0xC2B2AE3D27D4EB4FULL
#define XP3 0x165667B19E3779F9ULL
#define XP4 0x85EBCA77C2B2AE63ULL
#define XP5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return DW_LE64(v);
}
static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return DW_LE32(v);
}
static inline void wr64(uint8_t *p, uint64_t v)
{
    v = DW_LE64(v);
    memcpy(p, &v, 8);
}
static inline void wr32(uint8_t *p, uint32_t v)
{
    v = DW_LE32(v);
    memcpy(p, &v, 4);
}
static inline uint64_t xround(uint64_t acc, uint64_t in) { return rotl64(acc + in * XP2, 31) * XP1; }
static inline uint64_t xmerge(uint64_t h, uint64_t v) { return (h ^ xround(0, v)) * XP1 + XP4; }

uint64_t dw_alloc_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + XP1 + XP2, v2 = seed + XP2, v3 = seed, v4 = seed - XP1;
        const uint8_t *lim = end - 32;
        do {
            v1 = xround(v1, rd64(p));
            v2 = xround(v2, rd64(p + 8));
            v3 = xround(v3, rd64(p + 16));
            v4 = xround(v4, rd64(p + 24));
            p += 32;
        } while (p <= lim);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xmerge(xmerge(xmerge(xmerge(h, v1), v2), v3), v4);
    } else {
        h = seed + XP5;
    }
    h += (uint64_t)len;
    for (; p + 8 <= end; p += 8) h = rotl64(h ^ xround(0, rd64(p)), 27) * XP1 + XP4;
    if (p + 4 <= end) {
        h = rotl64(h ^ (uint64_t)rd32(p) * XP1, 23) * XP2 + XP3;
        p += 4;
    }
    for (; p < end; p++) h = rotl64(h ^ (uint64_t)*p * XP5, 11) * XP1;
    h ^= h >> 33;
    h *= XP2;
    h ^= h >> 29;
    h *= XP3;
    h ^= h >> 32;
    return h;
}

/* ------------------------------------------------------------------------ */
/* geometry and page images                                                 */
/* ------------------------------------------------------------------------ */

typedef struct geom {
    uint64_t npages, area_pages, area_bytes, data_off, file_bytes;
} geom;

static geom geometry(uint64_t nblocks)
{
    geom g;
    g.npages = (nblocks + DW_ALLOC_PAGE_BLOCKS - 1) / DW_ALLOC_PAGE_BLOCKS;
    uint64_t smap = (g.npages + 63) / 64 * 8;
    g.area_pages = (SB_HDR + smap + PB - 1) / PB;
    g.area_bytes = g.area_pages * PB;
    g.data_off = 2 * g.area_bytes;
    g.file_bytes = g.data_off + g.npages * 2 * PB;
    return g;
}

static inline uint64_t copy_off(const dw_alloc *a, uint64_t p, unsigned s)
{
    return a->data_off + (2 * p + s) * PB;
}

/* Page p's image for generation gen from 504 words (host order) into dst. */
static void build_page(uint8_t *dst, uint64_t p, uint64_t gen, uint64_t uuid, const uint64_t *w)
{
    memset(dst, 0, PAGE_HDR);
    wr32(dst + 8, PAGE_MAGIC);
    wr32(dst + 12, (uint32_t)p);
    wr64(dst + 16, gen);
    wr64(dst + 24, uuid);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (unsigned i = 0; i < DW_ALLOC_PAGE_WORDS; i++) wr64(dst + PAGE_HDR + 8 * i, w[i]);
#else
    memcpy(dst + PAGE_HDR, w, PB - PAGE_HDR);
#endif
    wr64(dst, dw_alloc_hash64(dst + 8, PB - 8, uuid ^ PAGE_SEED));
}

/* Superblock area image for generation gen; slot map = slot ^ flip. */
static void build_area(const dw_alloc *a, uint8_t *dst, uint64_t gen, uint64_t free_blocks,
                       const uint64_t *slot, const uint64_t *flip)
{
    memset(dst, 0, a->area_bytes);
    wr64(dst + 8, SB_MAGIC);
    wr32(dst + 16, DW_ALLOC_FORMAT_VERSION);
    wr32(dst + 20, 0);
    wr32(dst + 24, a->block_size);
    wr32(dst + 28, PB);
    wr64(dst + 32, a->nblocks);
    wr64(dst + 40, a->npages);
    wr64(dst + 48, gen);
    wr64(dst + 56, a->uuid);
    wr64(dst + 64, free_blocks);
    wr64(dst + 72, a->area_bytes / PB);
    wr64(dst + 80, a->data_off);
    for (uint64_t i = 0; i < a->pwords; i++)
        wr64(dst + SB_HDR + 8 * i, (slot ? slot[i] : 0) ^ (flip ? flip[i] : 0));
    wr64(dst, dw_alloc_hash64(dst + 8, a->area_bytes - 8, SB_SEED));
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;
        p += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir) return ENOMEM;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir)
        d = "/";
    else if (slash) {
        *slash = 0;
        d = dir;
    }
    int rc = 0, fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        rc = errno;
    else {
        if (fsync(fd) && errno != EINVAL) rc = errno;
        close(fd);
    }
    free(dir);
    return rc;
}

static uint64_t fresh_uuid(void)
{
    uint64_t u = 0;
    if (getrandom(&u, sizeof u, GRND_NONBLOCK) != (ssize_t)sizeof u) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        u = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    return u ? u : 1;
}

/* ------------------------------------------------------------------------ */
/* create                                                                   */
/* ------------------------------------------------------------------------ */

static dw_alloc_status sys_err(dw_alloc_err *err, int e, const char *what, const char *path)
{
    (void)path; /* the binding names it */
    dw_alloc__set_err(err, e, -1, "%s the allocator file: %s", what, strerror(e));
    return DW_ALLOC_EIO;
}

static int write_initial(int fd, uint64_t nblocks, uint32_t block_size, uint64_t uuid)
{
    geom g = geometry(nblocks);
    dw_alloc tmp; /* only the fields build_area reads */
    memset(&tmp, 0, sizeof tmp);
    tmp.nblocks = nblocks, tmp.block_size = block_size, tmp.npages = g.npages;
    tmp.area_bytes = g.area_bytes, tmp.data_off = g.data_off, tmp.uuid = uuid;
    tmp.pwords = (g.npages + 63) / 64;
    const uint64_t chunk_pages = 128; /* bitmap pages per write: 1 MiB */
    size_t bufsz = (size_t)(chunk_pages * 2 * PB);
    if (g.area_bytes > bufsz) bufsz = (size_t)g.area_bytes;
    uint8_t *buf = malloc(bufsz);
    uint64_t *w = malloc(DW_ALLOC_PAGE_WORDS * 8);
    int rc = 0;
    if (!buf || !w) {
        rc = ENOMEM;
        goto out;
    }
    uint64_t nwords = (nblocks + 63) / 64;
    for (uint64_t p0 = 0; p0 < g.npages && !rc; p0 += chunk_pages) {
        uint64_t np = g.npages - p0 < chunk_pages ? g.npages - p0 : chunk_pages;
        memset(buf, 0, (size_t)(np * 2 * PB));
        for (uint64_t p = p0; p < p0 + np; p++) {
            for (uint64_t i = 0; i < DW_ALLOC_PAGE_WORDS; i++) {
                uint64_t wi = p * DW_ALLOC_PAGE_WORDS + i;
                w[i] = wi < nwords ? 0 : ~0ULL;
                if (wi == nwords - 1 && nblocks % 64) w[i] = ~0ULL << (nblocks % 64);
            }
            build_page(buf + (p - p0) * 2 * PB, p, 1, uuid, w); /* copy 0; copy 1 stays 0 */
        }
        rc = pwrite_all(fd, buf, (size_t)(np * 2 * PB), g.data_off + p0 * 2 * PB);
    }
    if (!rc) { /* generation 1 lives in area 1; area 0 is left zero (invalid) */
        build_area(&tmp, buf, 1, nblocks, NULL, NULL);
        rc = pwrite_all(fd, buf, (size_t)g.area_bytes, g.area_bytes);
    }
    if (!rc && fsync(fd)) rc = errno;
out:
    free(buf);
    free(w);
    return rc;
}

dw_alloc_status dw_alloc_create(const char *path, uint64_t nblocks, uint32_t block_size,
                                dw_alloc **out, dw_alloc_err *err)
{
    if (!path || !out) return DW_ALLOC_ENULL;
    *out = NULL;
    if (nblocks < 1 || nblocks > DW_ALLOC_MAX_BLOCKS) {
        dw_alloc__set_err(err, 0, -1, "nblocks=%llu must be in 1..2^32",
                          (unsigned long long)nblocks);
        return DW_ALLOC_EINVAL;
    }
    if (block_size < DW_ALLOC_MIN_BLOCK_SIZE || block_size > DW_ALLOC_MAX_BLOCK_SIZE ||
        (block_size & (block_size - 1))) {
        dw_alloc__set_err(err, 0, -1, "block_size=%u must be a power of two in 512..2^30",
                          block_size);
        return DW_ALLOC_EINVAL;
    }
    if (access(path, F_OK) == 0) return sys_err(err, EEXIST, "cannot create", path);
    static unsigned counter;
    size_t tlen = strlen(path) + 64;
    char *tmp = malloc(tlen);
    if (!tmp) return sys_err(err, ENOMEM, "cannot create", path);
    snprintf(tmp, tlen, "%s.tmp-%d-%u", path, (int)getpid(),
             __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        dw_alloc_status rc = sys_err(err, errno, "cannot create", tmp);
        free(tmp);
        return rc;
    }
    geom g = geometry(nblocks);
    int e = ftruncate(fd, (off_t)g.file_bytes) ? errno : 0;
    if (!e) {
        int f = posix_fallocate(fd, 0, (off_t)g.file_bytes); /* fail early on a full disk */
        if (f && f != EOPNOTSUPP && f != EINVAL && f != ENOSYS) e = f;
    }
    if (!e) e = write_initial(fd, nblocks, block_size, fresh_uuid());
    close(fd);
    if (!e && link(tmp, path)) { /* atomic: never replaces an existing file */
        e = errno;
        if (e != EEXIST && access(path, F_OK) != 0) e = rename(tmp, path) ? errno : 0;
    }
    unlink(tmp);
    if (!e) e = fsync_dir(path);
    dw_alloc_status rc = DW_ALLOC_OK;
    if (e) rc = sys_err(err, e, "cannot create", path);
    free(tmp);
    if (rc) return rc;
    return dw_alloc_open(path, out, err);
}

/* ------------------------------------------------------------------------ */
/* open                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct sb {
    uint32_t version, block_size;
    uint64_t nblocks, npages, gen, uuid, free, area_pages, data_off;
    uint64_t off;
    const uint8_t *base;
} sb;

/* Is the area at off a verifying version-1 superblock?  *newer gets the
 * version of one written by a newer format. */
static int read_area(const uint8_t *map, uint64_t size, uint64_t off, sb *s, uint32_t *newer)
{
    if (off + SB_HDR > size) return 0;
    const uint8_t *p = map + off;
    if (rd64(p + 8) != SB_MAGIC) return 0;
    s->version = rd32(p + 16);
    if (s->version > DW_ALLOC_FORMAT_VERSION) {
        if (s->version > *newer) *newer = s->version;
        return 0;
    }
    s->block_size = rd32(p + 24);
    s->nblocks = rd64(p + 32);
    s->npages = rd64(p + 40);
    s->gen = rd64(p + 48);
    s->uuid = rd64(p + 56);
    s->free = rd64(p + 64);
    s->area_pages = rd64(p + 72);
    s->data_off = rd64(p + 80);
    s->off = off;
    s->base = p;
    if (s->version == 0 || s->nblocks < 1 || s->nblocks > DW_ALLOC_MAX_BLOCKS) return 0;
    geom g = geometry(s->nblocks);
    if (s->npages != g.npages || s->area_pages != g.area_pages || s->data_off != g.data_off ||
        rd32(p + 28) != PB || s->gen == 0 || s->free > s->nblocks)
        return 0;
    if (off + g.area_bytes > size) return 0;
    return rd64(p) == dw_alloc_hash64(p + 8, g.area_bytes - 8, SB_SEED);
}

#define corrupt(err, page, ...) (dw_alloc__set_err((err), 0, (page), __VA_ARGS__), DW_ALLOC_ECORRUPT)

static dw_alloc_status load(dw_alloc *a, const char *path, const uint8_t *map, uint64_t size,
                            dw_alloc_err *err)
{
    sb best = {0}, cand = {0};
    int have = 0, magic = 0;
    uint32_t newer = 0;
    uint64_t verified = 0; /* bit k: a verifying area at k pages */
    for (uint64_t k = 0; k <= MAX_AREA_PAGES; k++) {
        uint64_t off = k * PB;
        if (off + 16 <= size && rd64(map + off + 8) == SB_MAGIC) magic = 1;
        if (!read_area(map, size, off, &cand, &newer)) continue;
        if (k && cand.area_pages != k) continue; /* area 1 sits right after area 0 */
        verified |= 1ULL << k;
        if (!have || cand.gen > best.gen) best = cand, have = 1;
    }
    if (newer) {
        dw_alloc__set_err(err, 0, -1,
                          "%s was written by a newer dwcore (allocator format version %u; this "
                          "one reads version %u): upgrade dwcore to open it",
                          path, newer, DW_ALLOC_FORMAT_VERSION);
        return DW_ALLOC_EVERSION;
    }
    if (!have) {
        if (magic)
            return corrupt(err, -1, "%s: both superblock copies fail their checksums", path);
        return corrupt(err, -1, "%s: not a dwcore allocator file (no superblock found)", path);
    }
    geom g = geometry(best.nblocks);
    if (size < g.file_bytes) {
        dw_alloc__set_err(err, 0, -1,
                          "%s: truncated: %llu bytes, but a %llu-block allocator file holds %llu",
                          path, (unsigned long long)size, (unsigned long long)best.nblocks,
                          (unsigned long long)g.file_bytes);
        return DW_ALLOC_ECORRUPT;
    }
    if (best.block_size < DW_ALLOC_MIN_BLOCK_SIZE || best.block_size > DW_ALLOC_MAX_BLOCK_SIZE ||
        (best.block_size & (best.block_size - 1)))
        return corrupt(err, -1, "%s: superblock block size %u is invalid", path,
                       best.block_size);

    a->nblocks = best.nblocks;
    a->block_size = best.block_size;
    a->npages = g.npages;
    a->area_bytes = g.area_bytes;
    a->data_off = g.data_off;
    a->file_bytes = g.file_bytes;
    a->uuid = best.uuid;
    a->gen = best.gen;
    /* The next sync writes the area not holding this copy, whatever the
     * generation's parity (a copied or crafted file may have it elsewhere). */
    a->sb_area = best.off ? 1u : 0u;
    {
        /* The other area: verifying (older) is the normal case, and so is
         * all zero right after create (generation 1 in area 1, area 0 never
         * written).  Anything else is a damaged newer copy: a torn
         * superblock write, or media damage that rolls back an acknowledged
         * sync; the two look alike, so open() says so (see CRASH SAFETY). */
        uint64_t other = a->sb_area ? 0 : g.area_bytes;
        if (!(verified & (1ULL << (other / PB)))) {
            int zero = 1;
            for (uint64_t i = 0; i < g.area_bytes && zero; i++) zero = map[other + i] == 0;
            if (!zero || best.gen != 1 || a->sb_area != 1) {
                a->fallback = 1;
                a->damaged_gen = rd64(map + other + 8) == SB_MAGIC ? rd64(map + other + 48) : 0;
            }
        }
    }
    dw_alloc_status rc = dw_alloc__init_mem(a, err);
    if (rc) return rc;
    for (uint64_t i = 0; i < a->pwords; i++) a->slot[i] = rd64(best.base + SB_HDR + 8 * i);

    /* the committed copy of every page: verify, copy, and summarise the
     * regions it completes while they are still in cache */
    uint64_t seed = a->uuid ^ PAGE_SEED, free_blocks = 0, next_region = 0;
    for (uint64_t p = 0; p < a->npages; p++) {
        unsigned s = (unsigned)((a->slot[p >> 6] >> (p & 63)) & 1);
        const uint8_t *src = map + copy_off(a, p, s);
        uint64_t gen = rd64(src + 16);
        const char *why = NULL;
        if (rd64(src) != dw_alloc_hash64(src + 8, PB - 8, seed))
            why = "fails its checksum";
        else if (rd32(src + 8) != PAGE_MAGIC || rd32(src + 12) != (uint32_t)p ||
                 rd64(src + 24) != a->uuid)
            why = "has the header of another page or file";
        else if (gen == 0 || gen > a->gen)
            why = "is from a generation the superblock never committed";
        if (why) {
            uint64_t first = p * DW_ALLOC_PAGE_BLOCKS, last = first + DW_ALLOC_PAGE_BLOCKS - 1;
            if (last >= a->nblocks) last = a->nblocks - 1;
            dw_alloc__set_err(err, 0, (int64_t)p,
                              "%s: bitmap page %llu (blocks %llu..%llu, copy %u at offset %llu) "
                              "%s, and its other copy holds an older generation: the state of "
                              "these blocks is lost; recreate the allocator and rebuild it from "
                              "the catalog with mark_allocated()",
                              path, (unsigned long long)p, (unsigned long long)first,
                              (unsigned long long)last, s, (unsigned long long)copy_off(a, p, s),
                              why);
            return DW_ALLOC_ECORRUPT;
        }
        uint64_t *dst = a->bm + p * DW_ALLOC_PAGE_WORDS;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (unsigned i = 0; i < DW_ALLOC_PAGE_WORDS; i++) dst[i] = rd64(src + PAGE_HDR + 8 * i);
#else
        memcpy(dst, src + PAGE_HDR, PB - PAGE_HDR);
#endif
        uint64_t done = (p + 1) * DW_ALLOC_PAGE_WORDS / 64; /* regions wholly loaded */
        if (done > a->nleaves) done = a->nleaves;
        if (done > next_region) {
            free_blocks += dw_alloc__summarize_regions(a, next_region, done);
            next_region = done;
        }
    }
    /* bits past the last block must read allocated */
    uint64_t lastw = a->bm[a->nwords - 1], tail = a->nblocks % 64;
    int pad_ok = !tail || (lastw | ((1ULL << tail) - 1)) == ~0ULL;
    for (uint64_t w = a->nwords; w < a->npages * DW_ALLOC_PAGE_WORDS; w++) pad_ok &= a->bm[w] == ~0ULL;
    if (!pad_ok)
        return corrupt(err, (int64_t)a->npages - 1,
                       "%s: bitmap page %llu marks blocks past the last one (%llu) free", path,
                       (unsigned long long)(a->npages - 1), (unsigned long long)a->nblocks);
    free_blocks += dw_alloc__summarize_regions(a, next_region, a->nleaves);
    dw_alloc__finish_summaries(a);
    a->free_count = free_blocks;
    if (a->free_count != best.free)
        return corrupt(err, -1,
                       "%s: the superblock records %llu free blocks but the bitmap holds %llu",
                       path, (unsigned long long)best.free, (unsigned long long)a->free_count);
    a->committed_free = a->free_count;
    return DW_ALLOC_OK;
}

dw_alloc_status dw_alloc_open(const char *path, dw_alloc **out, dw_alloc_err *err)
{
    if (!path || !out) return DW_ALLOC_ENULL;
    *out = NULL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return sys_err(err, errno, "cannot open", path);
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            dw_alloc__set_err(err, e, -1,
                              "%s is already open in another allocator (this process or "
                              "another); close that one first",
                              path);
            return DW_ALLOC_EBUSY;
        }
        return sys_err(err, e, "cannot lock", path);
    }
    struct stat st;
    if (fstat(fd, &st)) {
        dw_alloc_status rc = sys_err(err, errno, "cannot stat", path);
        close(fd);
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size;
    dw_alloc *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        return sys_err(err, ENOMEM, "cannot open", path);
    }
    a->fd = fd;
    pthread_mutex_init(&a->mtx, NULL);
    pthread_mutex_init(&a->sync_mtx, NULL);
    dw_alloc_status rc = DW_ALLOC_OK;
    const uint8_t *map = NULL;
    if (size < PB) {
        rc = corrupt(err, -1, "%s: truncated to %llu bytes, smaller than a superblock", path,
                     (unsigned long long)size);
        goto fail;
    }
    map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        map = NULL;
        rc = sys_err(err, errno, "cannot map", path);
        goto fail;
    }
    rc = load(a, path, map, size, err);
    munmap((void *)map, (size_t)size);
    if (rc) goto fail;
    *out = a;
    return DW_ALLOC_OK;
fail:
    pthread_mutex_destroy(&a->mtx);
    pthread_mutex_destroy(&a->sync_mtx);
    dw_alloc__free_mem(a);
    free(a);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* sync and close                                                           */
/* ------------------------------------------------------------------------ */

/* A flush that really happens (the test flags may skip it on purpose). */
static int flush(dw_alloc *a, int phase)
{
    if (a->test_flags & DW_ALLOC_TEST_SKIP_FLUSH) return 0;
    if (phase == 1 && (a->test_flags & DW_ALLOC_TEST_SKIP_BARRIER)) return 0;
    if (fdatasync(a->fd)) return errno;
    if (a->hook) a->hook(a->hook_ctx, phase);
    return 0;
}

static dw_alloc_status sync_failed(dw_alloc *a, int e, const char *what, dw_alloc_err *err)
{
    pthread_mutex_lock(&a->mtx);
    for (uint64_t i = 0; i < a->pwords; i++) a->pdirty[i] |= a->inflight[i], a->inflight[i] = 0;
    a->failed = 1;
    a->failed_errno = e;
    pthread_mutex_unlock(&a->mtx);
    dw_alloc__set_err(err, e, -1, "sync failed while %s: %s; the allocator refuses changes "
                      "until it is reopened (the last completed sync is intact)", what, strerror(e));
    return DW_ALLOC_EIO;
}

/* Page p's header and checksum for generation gen around the 504 bitmap
 * words already at dst + PAGE_HDR (host order; put in file order here). */
static void seal_page(uint8_t *dst, uint64_t p, uint64_t gen, uint64_t uuid)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (unsigned i = 0; i < DW_ALLOC_PAGE_WORDS; i++) {
        uint64_t v;
        memcpy(&v, dst + PAGE_HDR + 8 * i, 8);
        wr64(dst + PAGE_HDR + 8 * i, v);
    }
#endif
    memset(dst, 0, PAGE_HDR);
    wr32(dst + 8, PAGE_MAGIC);
    wr32(dst + 12, (uint32_t)p);
    wr64(dst + 16, gen);
    wr64(dst + 24, uuid);
    wr64(dst, dw_alloc_hash64(dst + 8, PB - 8, uuid ^ PAGE_SEED));
}

static uint64_t count_dirty(const dw_alloc *a)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < a->pwords; i++) n += dw_popcount64(a->pdirty[i]);
    return n;
}

dw_alloc_status dw_alloc_sync(dw_alloc *a, dw_alloc_err *err)
{
    if (!a) return DW_ALLOC_ENULL;
    pthread_mutex_lock(&a->sync_mtx);
    dw_alloc_status rc = DW_ALLOC_OK;
    uint8_t *buf = NULL;
    uint64_t *idx = NULL, cap = 0, nwritten = 0, gen = a->gen + 1, free_snap = 0;
    int e = 0;
    /* 1. snapshot the changed pages under the lock (a memcpy each, into a
     *    buffer sized and touched beforehand without the lock), then build
     *    and write their images without it: other threads only wait for the
     *    copy.  A page changed after its copy stays dirty for the next sync. */
    for (;;) {
        pthread_mutex_lock(&a->mtx);
        if (a->failed) {
            dw_alloc__set_err(err, a->failed_errno, -1,
                              "an earlier sync failed (%s); close and reopen the allocator",
                              strerror(a->failed_errno));
            pthread_mutex_unlock(&a->mtx);
            rc = DW_ALLOC_EFAILED;
            goto out;
        }
        uint64_t need = count_dirty(a);
        if (need <= cap) break;
        pthread_mutex_unlock(&a->mtx);
        if (buf) munmap(buf, (size_t)(cap * PB));
        free(idx);
        cap = need + need / 8 + 16;
        /* faulted in now (page by page: MAP_POPULATE would hold the mm lock
         * throughout), so the copy under the mutex takes no page faults */
        buf = mmap(NULL, (size_t)(cap * PB), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) buf = NULL;
        for (uint64_t j = 0; buf && j < cap; j++) ((volatile uint8_t *)buf)[j * PB] = 1;
        idx = malloc((size_t)(cap * 8));
        if (!buf || !idx) {
            dw_alloc__set_err(err, ENOMEM, -1, "sync: out of memory for %llu page images",
                              (unsigned long long)cap);
            rc = DW_ALLOC_ENOMEM;
            goto out;
        }
    }
    for (uint64_t i = 0; i < a->pwords; i++) {
        uint64_t x = a->pdirty[i];
        while (x) {
            uint64_t p = (i << 6) + dw_ctz64(x);
            x &= x - 1;
            memcpy(buf + nwritten * PB + PAGE_HDR, a->bm + p * DW_ALLOC_PAGE_WORDS, PB - PAGE_HDR);
            idx[nwritten++] = p;
        }
        a->inflight[i] = a->pdirty[i];
        a->pdirty[i] = 0;
    }
    free_snap = a->free_count;
    pthread_mutex_unlock(&a->mtx);
    if (nwritten == 0) goto out; /* nothing changed since the last commit */
    /* 2. into their uncommitted copies (inflight and slot change only under
     *    sync_mtx, which this thread holds) */
    for (uint64_t j = 0; j < nwritten && !e; j++) {
        uint64_t p = idx[j];
        unsigned s = 1u - (unsigned)((a->slot[p >> 6] >> (p & 63)) & 1);
        seal_page(buf + j * PB, p, gen, a->uuid);
        e = pwrite_all(a->fd, buf + j * PB, PB, copy_off(a, p, s));
    }
    if (e) {
        rc = sync_failed(a, e, "writing bitmap pages", err);
        goto out;
    }
    /* 3. make them durable before anything points at them */
    if ((e = flush(a, 1))) {
        rc = sync_failed(a, e, "flushing bitmap pages", err);
        goto out;
    }
    /* 4. commit: the area not holding the committed copy names the new ones */
    build_area(a, a->area_buf, gen, free_snap, a->slot, a->inflight);
    if ((e = pwrite_all(a->fd, a->area_buf, (size_t)a->area_bytes,
                        (uint64_t)(1u - a->sb_area) * a->area_bytes)) ||
        (e = flush(a, 2))) {
        rc = sync_failed(a, e, "writing the superblock", err);
        goto out;
    }
    pthread_mutex_lock(&a->mtx);
    for (uint64_t i = 0; i < a->pwords; i++) a->slot[i] ^= a->inflight[i], a->inflight[i] = 0;
    a->gen = gen;
    a->sb_area = 1u - a->sb_area;
    a->committed_free = free_snap;
    pthread_mutex_unlock(&a->mtx);
out:
    pthread_mutex_unlock(&a->sync_mtx);
    if (buf) munmap(buf, (size_t)(cap * PB));
    free(idx);
    return rc;
}

dw_alloc_status dw_alloc_close(dw_alloc *a, int do_sync, dw_alloc_err *err)
{
    if (!a) return DW_ALLOC_ENULL;
    dw_alloc_status rc = do_sync ? dw_alloc_sync(a, err) : DW_ALLOC_OK;
    close(a->fd);
    pthread_mutex_destroy(&a->mtx);
    pthread_mutex_destroy(&a->sync_mtx);
    dw_alloc__free_mem(a);
    free(a);
    return rc;
}
