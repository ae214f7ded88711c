/* perf.c - standalone kernel timing against ISA-L (dlopen'ed libisal.so.2
 * when present), for profiling the kernels without Python in the way.
 *   dw_perf [k m len]     thread CPU time, best of 7 runs of >= 50 ms each
 * Figures are GB/s of data bytes.  The Python `dwcore bench` is the
 * reference benchmark; this is the kernel developer's loop. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dw_cpu.h"
#include "dw_ec.h"
#include "dw_gf.h"
#include "dw_raid.h"

typedef void (*isal_encode_fn)(int, int, int, unsigned char *, unsigned char **, unsigned char **);
typedef int (*isal_gen_fn)(int, int, void **);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define TIME_GBS(label, bytes, stmt)                                                          \
    do {                                                                                      \
        double best = 1e30;                                                                   \
        long iters = 1;                                                                       \
        for (;;) { /* calibrate */                                                            \
            double t0 = now();                                                                \
            for (long it_ = 0; it_ < iters; it_++) { stmt; }                                  \
            if (now() - t0 > 0.05) break;                                                     \
            iters *= 2;                                                                       \
        }                                                                                     \
        for (int rep = 0; rep < 7; rep++) {                                                   \
            double t0 = now();                                                                \
            for (long it_ = 0; it_ < iters; it_++) { stmt; }                                  \
            double dt = (now() - t0) / iters;                                                 \
            if (dt < best) best = dt;                                                         \
        }                                                                                     \
        printf("  %-28s %8.2f GB/s\n", label, (double)(bytes) / best / 1e9);                \
    } while (0)

/* Out-of-cache: rotate through sets of buffers totalling >= 512 MiB. */
static void cold_encode(int k, int m, size_t len, const uint8_t *tbls, void *isal_fn) {
    const size_t set_bytes = (size_t)(k + m) * len;
    size_t nsets = ((size_t)512 << 20) / set_bytes + 1;
    uint8_t *arena = aligned_alloc(64, nsets * set_bytes);
    if (!arena) return;
    memset(arena, 7, nsets * set_bytes);
    uint8_t *ptrs[300];
    for (int who = 0; who < (isal_fn ? 2 : 1); who++) {
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            for (size_t s = 0; s < nsets; s++) {
                for (int i = 0; i < k + m; i++) ptrs[i] = arena + s * set_bytes + (size_t)i * len;
                if (who == 0)
                    dw_ec_encode(len, k, m, tbls, (const uint8_t *const *)ptrs, ptrs + k);
                else
                    ((isal_encode_fn)isal_fn)((int)len, k, m, (unsigned char *)tbls, ptrs, ptrs + k);
            }
            double dt = (now() - t0) / nsets;
            if (dt < best) best = dt;
        }
        printf("  %-28s %8.2f GB/s\n", who ? "isal ec_encode_data (cold)" : "dwcore ec_encode (cold)",
               (double)k * len / best / 1e9);
    }
    free(arena);
}

/* Out-of-cache P+Q and XOR: rotate through >= 512 MiB of stripes. */
static void cold_parity(int k, size_t len, isal_gen_fn isal_pq, isal_gen_fn isal_xor) {
    const size_t set_bytes = (size_t)(k + 2) * len;
    size_t nsets = ((size_t)512 << 20) / set_bytes + 1;
    uint8_t *arena = aligned_alloc(64, nsets * set_bytes);
    if (!arena) return;
    memset(arena, 7, nsets * set_bytes);
    uint8_t *ptrs[300];
    for (int who = 0; who < 4; who++) {
        if ((who == 1 && !isal_pq) || (who == 3 && !isal_xor)) continue;
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            for (size_t s = 0; s < nsets; s++) {
                for (int i = 0; i < k + 2; i++) ptrs[i] = arena + s * set_bytes + (size_t)i * len;
                if (who == 0) dw_pq_gen(k, len, (const uint8_t *const *)ptrs, ptrs[k], ptrs[k + 1]);
                if (who == 1) isal_pq(k + 2, (int)len, (void **)ptrs);
                if (who == 2) dw_xor_gen(k, len, (const uint8_t *const *)ptrs, ptrs[k]);
                if (who == 3) isal_xor(k + 1, (int)len, (void **)ptrs);
            }
            double dt = (now() - t0) / nsets;
            if (dt < best) best = dt;
        }
        static const char *names[] = {"dwcore pq_gen (cold)", "isal pq_gen (cold)",
                                      "dwcore xor_gen (cold)", "isal xor_gen (cold)"};
        printf("  %-28s %8.2f GB/s\n", names[who], (double)k * len / best / 1e9);
    }
    free(arena);
}

int main(int argc, char **argv) {
    int k = argc > 1 ? atoi(argv[1]) : 10, m = argc > 2 ? atoi(argv[2]) : 4;
    size_t len = argc > 3 ? (size_t)atol(argv[3]) : 65536;
    dw_init(getenv("DWCORE_FORCE_ISA"));
    void *isal = dlopen("libisal.so.2", RTLD_NOW);
    isal_encode_fn isal_encode = isal ? (isal_encode_fn)dlsym(isal, "ec_encode_data") : NULL;
    isal_gen_fn isal_pq = isal ? (isal_gen_fn)dlsym(isal, "pq_gen") : NULL;
    isal_gen_fn isal_xor = isal ? (isal_gen_fn)dlsym(isal, "xor_gen") : NULL;

    uint8_t *bufs[300];
    for (int i = 0; i < k + m + 3; i++) {
        if (posix_memalign((void **)&bufs[i], 64, len)) return 1;
        for (size_t x = 0; x < len; x++) bufs[i][x] = (uint8_t)rand();
    }
    uint8_t *a = malloc((size_t)(k + m) * k), *tbls = malloc((size_t)k * m * 32);
    dw_gf_gen_cauchy1_matrix(a, k, m);
    dw_gf_init_tables(k, m, a + k * k, tbls);
    printf("k=%d m=%d len=%zu isa=%s\n", k, m, len, dw_isa_name(dw_active_isa()));
    TIME_GBS("dwcore ec_encode", (size_t)k * len,
             dw_ec_encode(len, k, m, tbls, (const uint8_t *const *)bufs, bufs + k));
    if (isal_encode)
        TIME_GBS("isal ec_encode_data", (size_t)k * len,
                 isal_encode((int)len, k, m, tbls, bufs, bufs + k));
    if (getenv("DW_PERF_COLD")) {
        cold_encode(k, m, len, tbls, (void *)isal_encode);
        cold_parity(k, len, isal_pq, isal_xor);
    }
    TIME_GBS("dwcore pq_gen", (size_t)k * len,
             dw_pq_gen(k, len, (const uint8_t *const *)bufs, bufs[k], bufs[k + 1]));
    if (isal_pq && len % 32 == 0) TIME_GBS("isal pq_gen", (size_t)k * len, isal_pq(k + 2, (int)len, (void **)bufs));
    TIME_GBS("dwcore pqr_gen", (size_t)k * len,
             dw_pqr_gen(k, len, (const uint8_t *const *)bufs, bufs[k], bufs[k + 1], bufs[k + 2]));
    TIME_GBS("dwcore xor_gen", (size_t)k * len,
             dw_xor_gen(k, len, (const uint8_t *const *)bufs, bufs[k]));
    if (isal_xor && len % 32 == 0) TIME_GBS("isal xor_gen", (size_t)k * len, isal_xor(k + 1, (int)len, (void **)bufs));
    TIME_GBS("memcpy", (size_t)k * len, for (int j = 0; j < k; j++) memcpy(bufs[k], bufs[j], len));
    return 0;
}
