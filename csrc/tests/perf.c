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
