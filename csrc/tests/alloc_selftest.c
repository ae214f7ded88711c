/* alloc_selftest.c - the block allocator from C, without Python (ctest).
 *
 *   dw_alloc_selftest [dir]     (default: $TMPDIR or /tmp)
 *
 * On a temporary file: create, alloc/free/batch/extents against a plain
 * bitmap model, double free refused, sync, close, reopen (same bitmap),
 * dw_alloc_check consistency, changes after the last sync dropped by a
 * close without sync, a damaged newest superblock reported as a fallback,
 * reconcile.  Exit status 0 when every CHECK holds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dw_alloc.h"
#include "testutil.h"

#define NB 100000u

static uint8_t model[NB];

static void check_same(dw_alloc *a, const char *when)
{
    static uint8_t bm[(NB + 7) / 8];
    CHECK(dw_alloc_bitmap(a, bm, sizeof bm) == DW_ALLOC_OK, "%s: bitmap", when);
    uint64_t bad = 0, used = 0;
    for (uint64_t b = 0; b < NB; b++) {
        int bit = (bm[b / 8] >> (b % 8)) & 1;
        bad += bit != model[b];
        used += model[b];
    }
    CHECK(bad == 0, "%s: %llu blocks differ from the model", when, (unsigned long long)bad);
    dw_alloc_stats st;
    CHECK(dw_alloc_get_stats(a, 1, &st) == DW_ALLOC_OK, "%s: stats", when);
    CHECK(st.free_blocks == NB - used, "%s: free %llu, model %llu", when,
          (unsigned long long)st.free_blocks, (unsigned long long)(NB - used));
    dw_alloc_err err;
    memset(&err, 0, sizeof err);
    CHECK(dw_alloc_check(a, &err) == DW_ALLOC_OK, "%s: check: %s", when, err.msg);
}

static void set_model(uint64_t s, uint64_t n, uint8_t v)
{
    for (uint64_t i = 0; i < n; i++) model[s + i] = v;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/dw_alloc_selftest.%d", dir, (int)getpid());
    unlink(path);
    dw_alloc *a = NULL;
    dw_alloc_err err;
    memset(&err, 0, sizeof err);
    dw_alloc_status rc = dw_alloc_create(path, NB, 4096, &a, &err);
    if (rc) {
        fprintf(stderr, "create %s: %d %s\n", path, (int)rc, err.msg);
        return 1;
    }
    check_same(a, "fresh");

    /* random allocations and frees, checked against the model */
    uint64_t held_s[512], held_n[512];
    size_t nheld = 0;
    for (int i = 0; i < 4000; i++) {
        if (nheld < 512 && (nheld == 0 || test_next() % 3)) {
            uint64_t n = 1 + test_next() % 64, s = 0;
            rc = dw_alloc_alloc(a, n, DW_ALLOC_NO_HINT, &s, &err);
            CHECK(rc == DW_ALLOC_OK, "alloc(%llu): %d", (unsigned long long)n, (int)rc);
            if (rc) break;
            for (uint64_t b = s; b < s + n; b++) CHECK(!model[b], "block %llu handed out twice",
                                                       (unsigned long long)b);
            set_model(s, n, 1);
            held_s[nheld] = s, held_n[nheld++] = n;
        } else {
            size_t j = test_next() % nheld;
            CHECK(dw_alloc_free(a, held_s[j], held_n[j], &err) == DW_ALLOC_OK, "free");
            set_model(held_s[j], held_n[j], 0);
            held_s[j] = held_s[--nheld], held_n[j] = held_n[nheld];
        }
    }
    check_same(a, "after churn");

    /* a double free is refused and changes nothing */
    uint64_t s1 = 0;
    CHECK(dw_alloc_alloc(a, 10, DW_ALLOC_NO_HINT, &s1, &err) == DW_ALLOC_OK, "alloc 10");
    set_model(s1, 10, 1);
    CHECK(dw_alloc_free(a, s1, 10, &err) == DW_ALLOC_OK, "free 10");
    set_model(s1, 10, 0);
    CHECK(dw_alloc_free(a, s1, 10, &err) == DW_ALLOC_ENOTALLOC && err.block == s1,
          "double free not refused");
    CHECK(dw_alloc_free(a, NB - 1, 2, &err) == DW_ALLOC_ERANGE, "free past the end");

    /* batch and extents */
    uint64_t bs[16];
    CHECK(dw_alloc_alloc_batch(a, 16, 3, DW_ALLOC_NO_HINT, bs, &err) == DW_ALLOC_OK, "batch");
    for (int i = 0; i < 16; i++) set_model(bs[i], 3, 1);
    uint64_t es[8], el[8];
    size_t ne = 0;
    CHECK(dw_alloc_alloc_extents(a, 200, DW_ALLOC_NO_HINT, es, el, 8, &ne, &err) == DW_ALLOC_OK,
          "extents");
    uint64_t tot = 0;
    for (size_t i = 0; i < ne; i++) set_model(es[i], el[i], 1), tot += el[i];
    CHECK(tot == 200, "extents hold %llu blocks", (unsigned long long)tot);
    check_same(a, "after batches");

    /* sync, close, reopen: the same bitmap */
    CHECK(dw_alloc_sync(a, &err) == DW_ALLOC_OK, "sync: %s", err.msg);
    dw_alloc_stats st;
    dw_alloc_get_stats(a, 0, &st);
    CHECK(st.dirty_pages == 0 && st.generation == 2, "after sync: dirty %llu gen %llu",
          (unsigned long long)st.dirty_pages, (unsigned long long)st.generation);
    CHECK(dw_alloc_close(a, 1, &err) == DW_ALLOC_OK, "close");
    a = NULL;
    CHECK(dw_alloc_open(path, &a, &err) == DW_ALLOC_OK, "reopen: %s", err.msg);
    if (!a) return 1;
    check_same(a, "reopened");
    dw_alloc_get_stats(a, 0, &st);
    CHECK(!st.recovered_from_fallback, "clean file reported as a fallback");

    /* changes after the last sync are dropped by a close without sync */
    uint64_t s2 = 0;
    CHECK(dw_alloc_mark_allocated(a, NB - 100, 50, NULL, &err) == DW_ALLOC_OK, "mark");
    CHECK(dw_alloc_close(a, 0, &err) == DW_ALLOC_OK, "close without sync");
    CHECK(dw_alloc_open(path, &a, &err) == DW_ALLOC_OK, "reopen 2: %s", err.msg);
    check_same(a, "unsynced change dropped");
    CHECK(dw_alloc_alloc(a, 5, DW_ALLOC_NO_HINT, &s2, &err) == DW_ALLOC_OK, "alloc 5");
    set_model(s2, 5, 1);
    CHECK(dw_alloc_sync(a, &err) == DW_ALLOC_OK, "sync 2");
    dw_alloc_get_stats(a, 0, &st);
    uint64_t gen = st.generation;
    CHECK(dw_alloc_close(a, 0, &err) == DW_ALLOC_OK, "close 2");

    /* one flipped bit in the newest superblock: the previous generation,
     * reported as a fallback; reconcile restores the referenced blocks */
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0, "open for damage");
    uint8_t hdr[2][64];
    CHECK(pread(fd, hdr[0], 64, 0) == 64 && pread(fd, hdr[1], 64, 4096) == 64, "read areas");
    uint64_t g0, g1;
    memcpy(&g0, hdr[0] + 48, 8);
    memcpy(&g1, hdr[1] + 48, 8);
    unsigned newest = g0 > g1 ? 0 : 1;
    CHECK((newest ? g1 : g0) == gen, "newest area holds generation %llu",
          (unsigned long long)gen);
    uint8_t byte;
    CHECK(pread(fd, &byte, 1, newest * 4096 + 100) == 1, "read byte");
    byte ^= 1;
    CHECK(pwrite(fd, &byte, 1, newest * 4096 + 100) == 1, "write byte");
    close(fd);
    CHECK(dw_alloc_open(path, &a, &err) == DW_ALLOC_OK, "reopen damaged: %s", err.msg);
    if (!a) return 1;
    dw_alloc_get_stats(a, 0, &st);
    CHECK(st.recovered_from_fallback && st.damaged_area_gen == gen && st.generation == gen - 1,
          "fallback not reported (%llu, %llu, %llu)",
          (unsigned long long)st.recovered_from_fallback,
          (unsigned long long)st.damaged_area_gen, (unsigned long long)st.generation);
    uint64_t nalloc = 0;
    dw_alloc_count_allocated(a, s2, 5, &nalloc, &err);
    CHECK(nalloc == 0, "rolled-back extent still allocated");
    uint64_t rs[1] = {s2}, rl[1] = {5}, os_[4], ol[4], nfreed = 0, nrestored = 0;
    size_t nout = 0;
    /* reconcile with just this extent frees everything else: model that */
    rc = dw_alloc_reconcile(a, 1, rs, rl, os_, ol, 4, &nout, &nfreed, &nrestored, &err);
    if (rc == DW_ALLOC_EBUFSIZE) {
        uint64_t *bo = malloc(nout * 8), *bl = malloc(nout * 8);
        rc = dw_alloc_reconcile(a, 1, rs, rl, bo, bl, nout, &nout, &nfreed, &nrestored, &err);
        free(bo);
        free(bl);
    }
    CHECK(rc == DW_ALLOC_OK && nrestored == 5, "reconcile: %d restored %llu", (int)rc,
          (unsigned long long)nrestored);
    memset(model, 0, sizeof model);
    set_model(s2, 5, 1);
    check_same(a, "reconciled");
    CHECK(dw_alloc_close(a, 1, &err) == DW_ALLOC_OK, "close 3");
    CHECK(dw_alloc_open(path, &a, &err) == DW_ALLOC_OK, "reopen repaired: %s", err.msg);
    if (a) {
        dw_alloc_get_stats(a, 0, &st);
        CHECK(!st.recovered_from_fallback, "repaired file still reported as a fallback");
        check_same(a, "repaired");
        dw_alloc_close(a, 0, &err);
    }
    unlink(path);
    if (failures) {
        fprintf(stderr, "dw_alloc_selftest: %d failures\n", failures);
        return 1;
    }
    printf("dw_alloc_selftest: ok\n");
    return 0;
}
