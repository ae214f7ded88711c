/* raid_recov.c - RAID-6 two-failure recovery (H. Peter Anvin, "The
 * mathematics of RAID-6"; the formulas of Linux lib/raid6/recov.c), built on
 * the dispatched P+Q and region-multiply kernels.  The lost members' buffers
 * serve as scratch, so nothing is allocated. */
#include "dw_ec.h"
#include "dw_gf.h"
#include "dw_impl.h"
#include "dw_raid.h"

/* Work in slices so the scratch for the combine step fits on the stack. */
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
    /* P' and Q' of the survivors (lost members as zero) into the lost buffers. */
    const uint8_t *srcs[DW_RAID_MAX_DATA];
    for (int d = 0; d < k; d++) srcs[d] = (d == a || d == b) ? NULL : data[d];
    dw_active_kernels.pq_gen(k, len, srcs, dx, dy);

    /* Pxy = P + P', Qxy = Q + Q';  Dx = A*Pxy + B*Qxy;  Dy = Dx + Pxy, with
     * A = 2^(b-a) / (2^(b-a) + 1) and B = 1 / (2^a + 2^b). */
    const uint8_t gb_a = dw_gf_exp((unsigned)(b - a));
    const uint8_t coef_a = dw_gf_mul(gb_a, dw_gf_inv((uint8_t)(gb_a ^ 1)));
    const uint8_t coef_b = dw_gf_inv((uint8_t)(dw_gf_exp((unsigned)a) ^ dw_gf_exp((unsigned)b)));
    uint8_t tbl_a[DW_GF_TBL_BYTES], tbl_b[DW_GF_TBL_BYTES];
    dw_gf_vect_mul_init(coef_a, tbl_a);
    dw_gf_vect_mul_init(coef_b, tbl_b);

    dw_active_kernels.xor_gen(2, len, (const uint8_t *const[]){dx, p}, dx); /* Pxy */
    dw_active_kernels.xor_gen(2, len, (const uint8_t *const[]){dy, q}, dy); /* Qxy */
    uint8_t tmp[RECOV_SLICE];
    for (size_t off = 0; off < len; off += RECOV_SLICE) {
        const size_t n = len - off < RECOV_SLICE ? len - off : RECOV_SLICE;
        dw_active_kernels.vect_mul(n, tbl_a, dx + off, tmp);   /* A*Pxy           */
        dw_active_kernels.vect_mad(n, tbl_b, dy + off, tmp);   /* ... + B*Qxy = Dx */
        dw_active_kernels.xor_gen(2, n, (const uint8_t *const[]){tmp, dx + off}, dy + off);
        dw_active_kernels.xor_gen(1, n, (const uint8_t *const[]){tmp}, dx + off);
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
    const uint8_t *srcs[DW_RAID_MAX_DATA];
    for (int d = 0; d < k; d++) srcs[d] = d == a ? NULL : data[d];
    /* Q' of the survivors into dx, P' into p. */
    dw_active_kernels.pq_gen(k, len, srcs, p, dx);
    /* Dx = (Q + Q') / 2^a, then P = P' + Dx. */
    uint8_t tbl[DW_GF_TBL_BYTES];
    dw_gf_vect_mul_init(dw_gf_inv(dw_gf_exp((unsigned)a)), tbl);
    dw_active_kernels.xor_gen(2, len, (const uint8_t *const[]){dx, q}, dx);
    dw_active_kernels.vect_mul(len, tbl, dx, dx);
    dw_active_kernels.xor_gen(2, len, (const uint8_t *const[]){p, dx}, p);
    return DW_OK;
}
