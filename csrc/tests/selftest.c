/* selftest.c - standalone C self-test of the kernel library: every compiled
 * instruction set against the scalar reference on random shapes and odd
 * lengths, plus RAID-6 recovery round trips.  Exit status 0 on success.
 * The thorough cross-checks (ISA-L, md, exhaustive erasures) live in the
 * Python suite; this proves the static library stands on its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw_cpu.h"
#include "dw_ec.h"
#include "dw_gf.h"
#include "dw_raid.h"

#include "testutil.h"


enum { MAXK = 20, MAXM = 6, MAXLEN = 5000 };
static uint8_t data[MAXK][MAXLEN + 1], ref[MAXM][MAXLEN], out[MAXM][MAXLEN];

static void test_encode(dw_isa isa) {
    static const size_t lens[] = {1, 15, 31, 32, 33, 63, 64, 65, 127, 4097, MAXLEN};
    for (int trial = 0; trial < 40; trial++) {
        const int k = 1 + rnd8() % MAXK, m = 1 + rnd8() % MAXM;
        const size_t len = lens[trial % (sizeof lens / sizeof lens[0])];
        const size_t mis = rnd8() % 2; /* odd source alignment */
        uint8_t a[(MAXK + MAXM) * MAXK], tbls[MAXK * MAXM * 32];
        dw_gf_gen_cauchy1_matrix(a, k, m);
        dw_gf_init_tables(k, m, a + k * k, tbls);
        const uint8_t *src[MAXK];
        uint8_t *dst_ref[MAXM], *dst[MAXM];
        for (int j = 0; j < k; j++) {
            for (size_t x = 0; x < len + 1; x++) data[j][x] = rnd8();
            src[j] = data[j] + mis;
        }
        for (int i = 0; i < m; i++) {
            dst_ref[i] = ref[i];
            dst[i] = out[i];
        }
        dw_set_isa(DW_ISA_SCALAR);
        dw_ec_encode(len, k, m, tbls, src, dst_ref);
        dw_set_isa(isa);
        dw_ec_encode(len, k, m, tbls, src, dst);
        for (int i = 0; i < m; i++)
            CHECK(memcmp(ref[i], out[i], len) == 0, "[%s] ec_encode k=%d m=%d len=%zu row %d differs",
                  dw_isa_name(isa), k, m, len, i);

        uint8_t pr[3][MAXLEN], pi[3][MAXLEN];
        dw_set_isa(DW_ISA_SCALAR);
        dw_pqr_gen(k, len, src, pr[0], pr[1], pr[2]);
        dw_set_isa(isa);
        dw_pqr_gen(k, len, src, pi[0], pi[1], pi[2]);
        for (int i = 0; i < 3; i++)
            CHECK(memcmp(pr[i], pi[i], len) == 0, "[%s] pqr_gen k=%d len=%zu out %d differs",
                  dw_isa_name(isa), k, len, i);
        dw_pq_gen(k, len, src, pi[0], pi[1]);
        CHECK(memcmp(pr[0], pi[0], len) == 0 && memcmp(pr[1], pi[1], len) == 0,
              "[%s] pq_gen k=%d len=%zu differs from pqr_gen", dw_isa_name(isa), k, len);
        dw_xor_gen(k, len, src, pi[2]);
        CHECK(memcmp(pr[0], pi[2], len) == 0, "[%s] xor_gen k=%d len=%zu differs from P",
              dw_isa_name(isa), k, len);

        /* Q must equal the RS encode with row 2^d. */
        uint8_t qrow[MAXK];
        for (int j = 0; j < k; j++) qrow[j] = dw_gf_exp((unsigned)j);
        dw_gf_init_tables(k, 1, qrow, tbls);
        uint8_t *qd[1] = {out[0]};
        dw_ec_encode(len, k, 1, tbls, src, qd);
        CHECK(memcmp(out[0], pr[1], len) == 0, "[%s] Q != sum 2^d D_d (k=%d len=%zu)",
              dw_isa_name(isa), k, len);

        /* RAID-6 double-data and data+P recovery. */
        if (k >= 2) {
            const int ia = rnd8() % k;
            int ib = rnd8() % k;
            if (ib == ia) ib = (ia + 1) % k;
            const int a2 = ia < ib ? ia : ib, b2 = ia < ib ? ib : ia;
            uint8_t *rec[MAXK];
            static uint8_t copy[MAXK][MAXLEN];
            for (int j = 0; j < k; j++) {
                memcpy(copy[j], src[j], len);
                rec[j] = copy[j];
            }
            memset(copy[a2], 0xAA, len);
            memset(copy[b2], 0x55, len);
            dw_raid6_recov_2data(k, len, a2, b2, rec, pr[0], pr[1]);
            CHECK(memcmp(copy[a2], src[a2], len) == 0 && memcmp(copy[b2], src[b2], len) == 0,
                  "[%s] recov_2data k=%d a=%d b=%d len=%zu wrong", dw_isa_name(isa), k, a2, b2, len);
            uint8_t pp[MAXLEN];
            memset(copy[a2], 0x11, len);
            dw_raid6_recov_datap(k, len, a2, rec, pp, pr[1]);
            CHECK(memcmp(copy[a2], src[a2], len) == 0 && memcmp(pp, pr[0], len) == 0,
                  "[%s] recov_datap k=%d a=%d len=%zu wrong", dw_isa_name(isa), k, a2, len);
        }
    }
}

/* Large blocks take the streaming-store path of the parity kernels: check it
 * with every relative misalignment class of the outputs. */
static void test_large(dw_isa isa) {
    enum { BIG = 300001, K = 5 };
    static uint8_t src[K][BIG + 64], ref[3][BIG + 64], out[3][BIG + 64];
    const uint8_t *d[K];
    for (int j = 0; j < K; j++) {
        for (size_t x = 0; x < BIG + 64; x++) src[j][x] = rnd8();
        d[j] = src[j] + j;
    }
    for (int trial = 0; trial < 4; trial++) {
        const size_t len = BIG - (size_t)trial * 7;
        uint8_t *o[3], *rf[3];
        for (int i = 0; i < 3; i++) {
            o[i] = out[i] + (trial == 3 ? (size_t)i * 5 : (size_t)trial);
            rf[i] = ref[i];
        }
        dw_set_isa(DW_ISA_SCALAR);
        dw_pqr_gen(K, len, d, rf[0], rf[1], rf[2]);
        dw_set_isa(isa);
        dw_pqr_gen(K, len, d, o[0], o[1], o[2]);
        for (int i = 0; i < 3; i++)
            CHECK(memcmp(rf[i], o[i], len) == 0, "[%s] large pqr_gen trial %d out %d differs",
                  dw_isa_name(isa), trial, i);
        dw_pq_gen(K, len, d, o[0], o[1]);
        CHECK(memcmp(rf[0], o[0], len) == 0 && memcmp(rf[1], o[1], len) == 0,
              "[%s] large pq_gen trial %d differs", dw_isa_name(isa), trial);
        dw_xor_gen(K, len, d, o[2]);
        CHECK(memcmp(rf[0], o[2], len) == 0, "[%s] large xor_gen trial %d differs",
              dw_isa_name(isa), trial);
        memcpy(o[2], d[0], len); /* in place: dst == src[0] */
        dw_xor_acc(len, d[1], o[2]);
        for (size_t x = 0; x < len; x++)
            if (o[2][x] != (uint8_t)(d[0][x] ^ d[1][x])) {
                CHECK(0, "[%s] large xor_acc trial %d differs at %zu", dw_isa_name(isa), trial, x);
                break;
            }
    }
}

int main(void) {
    if (dw_init(getenv("DWCORE_FORCE_ISA")) != DW_OK) {
        fprintf(stderr, "dw_init failed\n");
        return 2;
    }
    printf("detected %s, active %s\n", dw_isa_name(dw_cpu_detect()), dw_isa_name(dw_active_isa()));
    /* Known answers: 2*0x80 = 0x1d; inverses. */
    CHECK(dw_gf_mul(2, 0x80) == 0x1d, "gf_mul(2, 0x80) != 0x1d");
    for (int a = 1; a < 256; a++)
        CHECK(dw_gf_mul((uint8_t)a, dw_gf_inv((uint8_t)a)) == 1, "inverse of %d wrong", a);
    for (int isa = 0; isa < DW_ISA_COUNT; isa++)
        if (dw_isa_supported((dw_isa)isa)) {
            test_encode((dw_isa)isa);
            test_large((dw_isa)isa);
        }
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("selftest: all checks passed\n");
    return 0;
}
