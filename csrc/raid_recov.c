/* raid_recov.c - RAID-6 two-failure recovery (H. Peter Anvin, "The
 * mathematics of RAID-6"; the formulas of Linux lib/raid6/recov.c), built on
 * the dispatched P+Q and region-multiply kernels.  The lost members' buffers
 * serve as scratch, so nothing is allocated. */
#include "dw_ec.h"
#include "dw_gf.h"
#include "dw_impl.h"
#include "dw_raid.h"

/* Work in slices that stay in L1 (and so the combine step's scratch fits on the stack). */
#define RECOV_SLICE 4096

dw_status dw_raid6_recov_2data(int k, size_t len, int a, int b, uint8_t *const *data,
                               const uint8_t *p, const uint8_t *q) {
    if (k < 2 || k > DW_RAID_MAX_DATA || a < 0 || b <= a || b >= k) return DW_EINVAL;
    if (data == NULL || p == NULL || q == NULL || data[a] == NULL || data[b] == NULL)
        return DW_ENULL;
    for (int d = 0; d < k; d++)
        if (data[d] == NULL) return DW_ENULL;
    if (len == 0) return DW_OK;

    uint8_t *dx = data[a], *dy = data[b];
    /* Pxy = P + P', Qxy = Q + Q' (P', Q' of the survivors, lost members as zero);
     * Dx = A*Pxy + B*Qxy;  Dy = Dx + Pxy, with A = 2^(b-a) / (2^(b-a) + 1) and
     * B = 1 / (2^a + 2^b). */
    const uint8_t gb_a = dw_gf_exp((unsigned)(b - a));
    const uint8_t coef_a = dw_gf_mul(gb_a, dw_gf_inv((uint8_t)(gb_a ^ 1)));
    const uint8_t coef_b = dw_gf_inv((uint8_t)(dw_gf_exp((unsigned)a) ^ dw_gf_exp((unsigned)b)));
    uint8_t tbl_a[DW_GF_TBL_BYTES], tbl_b[DW_GF_TBL_BYTES];
    dw_gf_vect_mul_init(coef_a, tbl_a);
    dw_gf_vect_mul_init(coef_b, tbl_b);

    /* One slice at a time, every step while the slice is in L1: one pass over the
     * survivors instead of one per step. */
    const uint8_t *srcs[DW_RAID_MAX_DATA];
    uint8_t tmp[RECOV_SLICE];
    for (size_t off = 0; off < len; off += RECOV_SLICE) {
        const size_t n = len - off < RECOV_SLICE ? len - off : RECOV_SLICE;
        for (int d = 0; d < k; d++) srcs[d] = (d == a || d == b) ? NULL : data[d] + off;
        uint8_t *x = dx + off, *y = dy + off;
        dw_active_kernels.pq_gen(k, n, srcs, x, y);                              /* P', Q' */
        dw_active_kernels.xor_gen(2, n, (const uint8_t *const[]){x, p + off}, x); /* Pxy    */
        dw_active_kernels.xor_gen(2, n, (const uint8_t *const[]){y, q + off}, y); /* Qxy    */
        dw_active_kernels.vect_mul(n, tbl_a, x, tmp);                            /* A*Pxy  */
        dw_active_kernels.vect_mad(n, tbl_b, y, tmp);                   /* ... + B*Qxy = Dx */
        dw_active_kernels.xor_gen(2, n, (const uint8_t *const[]){tmp, x}, y);     /* Dy     */
        dw_active_kernels.xor_gen(1, n, (const uint8_t *const[]){tmp}, x);        /* Dx     */
    }
    return DW_OK;
}

dw_status dw_raid6_recov_datap(int k, size_t len, int a, uint8_t *const *data, uint8_t *p,
                               const uint8_t *q) {
    if (k < 1 || k > DW_RAID_MAX_DATA || a < 0 || a >= k) return DW_EINVAL;
    if (data == NULL || p == NULL || q == NULL) return DW_ENULL;
    for (int d = 0; d < k; d++)
        if (data[d] == NULL) return DW_ENULL;
    if (len == 0) return DW_OK;

    uint8_t *dx = data[a];
    uint8_t tbl[DW_GF_TBL_BYTES];
    dw_gf_vect_mul_init(dw_gf_inv(dw_gf_exp((unsigned)a)), tbl);
    /* Per L1-sized slice: Q' of the survivors into dx, P' into p; Dx = (Q + Q') / 2^a,
     * then P = P' + Dx. */
    const uint8_t *srcs[DW_RAID_MAX_DATA];
    for (size_t off = 0; off < len; off += RECOV_SLICE) {
        const size_t n = len - off < RECOV_SLICE ? len - off : RECOV_SLICE;
        for (int d = 0; d < k; d++) srcs[d] = d == a ? NULL : data[d] + off;
        uint8_t *x = dx + off, *pp = p + off;
        dw_active_kernels.pq_gen(k, n, srcs, pp, x);
        dw_active_kernels.xor_gen(2, n, (const uint8_t *const[]){x, q + off}, x);
        dw_active_kernels.vect_mul(n, tbl, x, x);
        dw_active_kernels.xor_gen(2, n, (const uint8_t *const[]){pp, x}, pp);
    }
    return DW_OK;
}
