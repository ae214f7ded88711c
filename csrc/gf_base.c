/* gf_base.c - GF(2^8) scalar arithmetic, matrices and table construction. */
#include <string.h>

#include "dw_gf.h"

static uint8_t gf_exp_tbl[512];
static uint8_t gf_log_tbl[256];
static int gf_ready;

/* The tables are tiny and deterministic; build them before first use. */
static void gf_build(void) {
    unsigned x = 1;
    for (int i = 0; i < 255; i++) {
        gf_exp_tbl[i] = (uint8_t)x;
        gf_exp_tbl[i + 255] = (uint8_t)x;
        gf_log_tbl[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100) x ^= DW_GF_POLY;
    }
    gf_exp_tbl[510] = gf_exp_tbl[0];
    gf_exp_tbl[511] = gf_exp_tbl[1];
    gf_log_tbl[0] = 0;
    __atomic_store_n(&gf_ready, 1, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void gf_ctor(void) { gf_build(); }

static inline void gf_ensure(void) {
    if (!__atomic_load_n(&gf_ready, __ATOMIC_ACQUIRE)) gf_build();
}

uint8_t dw_gf_mul(uint8_t a, uint8_t b) {
    gf_ensure();
    if (a == 0 || b == 0) return 0;
    return gf_exp_tbl[gf_log_tbl[a] + gf_log_tbl[b]];
}

uint8_t dw_gf_inv(uint8_t a) {
    gf_ensure();
    if (a == 0) return 0;
    return gf_exp_tbl[255 - gf_log_tbl[a]];
}

uint8_t dw_gf_exp(unsigned n) {
    gf_ensure();
    return gf_exp_tbl[n % 255];
}

uint8_t dw_gf_log(uint8_t a) {
    gf_ensure();
    return gf_log_tbl[a];
}

uint8_t dw_gf_pow(uint8_t a, unsigned n) {
    gf_ensure();
    if (n == 0) return 1;
    if (a == 0) return 0;
    return gf_exp_tbl[(unsigned)((gf_log_tbl[a] * (unsigned long long)n) % 255)];
}

dw_status dw_gf_gen_cauchy1_matrix(uint8_t *a, int k, int m) {
    if (a == NULL) return DW_ENULL;
    if (k < 1 || m < 0 || k + m > DW_MAX_SHARDS) return DW_EINVAL;
    const int rows = k + m;
    memset(a, 0, (size_t)rows * (size_t)k);
    for (int i = 0; i < k; i++) a[i * k + i] = 1;
    for (int i = k; i < rows; i++)
        for (int j = 0; j < k; j++) a[i * k + j] = dw_gf_inv((uint8_t)(i ^ j));
    return DW_OK;
}

dw_status dw_gf_invert_matrix(uint8_t *in, uint8_t *out, int n) {
    if (in == NULL || out == NULL) return DW_ENULL;
    if (n < 1 || n > DW_MAX_SHARDS) return DW_EINVAL;
    memset(out, 0, (size_t)n * (size_t)n);
    for (int i = 0; i < n; i++) out[i * n + i] = 1;

    for (int col = 0; col < n; col++) {
        /* Find a pivot at or below the diagonal and swap it up. */
        int piv = col;
        while (piv < n && in[piv * n + col] == 0) piv++;
        if (piv == n) return DW_ESINGULAR;
        if (piv != col) {
            for (int j = 0; j < n; j++) {
                uint8_t t = in[piv * n + j];
                in[piv * n + j] = in[col * n + j];
                in[col * n + j] = t;
                t = out[piv * n + j];
                out[piv * n + j] = out[col * n + j];
                out[col * n + j] = t;
            }
        }
        /* Scale the pivot row to 1. */
        const uint8_t s = dw_gf_inv(in[col * n + col]);
        for (int j = 0; j < n; j++) {
            in[col * n + j] = dw_gf_mul(in[col * n + j], s);
            out[col * n + j] = dw_gf_mul(out[col * n + j], s);
        }
        /* Eliminate the column from every other row. */
        for (int i = 0; i < n; i++) {
            const uint8_t f = in[i * n + col];
            if (i == col || f == 0) continue;
            for (int j = 0; j < n; j++) {
                in[i * n + j] ^= dw_gf_mul(f, in[col * n + j]);
                out[i * n + j] ^= dw_gf_mul(f, out[col * n + j]);
            }
        }
    }
    return DW_OK;
}

void dw_gf_vect_mul_init(uint8_t c, uint8_t *tbl32) {
    for (int x = 0; x < 16; x++) {
        tbl32[x] = dw_gf_mul(c, (uint8_t)x);
        tbl32[16 + x] = dw_gf_mul(c, (uint8_t)(x << 4));
    }
}

void dw_gf_init_tables(int k, int rows, const uint8_t *a, uint8_t *tbls) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < k; j++)
            dw_gf_vect_mul_init(a[i * k + j], tbls + ((size_t)i * k + j) * DW_GF_TBL_BYTES);
}
