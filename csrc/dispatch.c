/* dispatch.c - the active kernel table and the validating public wrappers. */
#include "dw_cpu.h"
#include "dw_ec.h"
#include "dw_gf.h"
#include "dw_impl.h"
#include "dw_raid.h"

static const dw_kernels kernels_base = {
    dw_ec_encode_base, dw_gf_vect_mul_base, dw_gf_vect_mad_base,
    dw_xor_gen_base,   dw_pq_gen_base,      dw_pqr_gen_base,
};
#if defined(DW_HAVE_X86)
static const dw_kernels kernels_ssse3 = {
    dw_ec_encode_ssse3, dw_gf_vect_mul_ssse3, dw_gf_vect_mad_ssse3,
    dw_xor_gen_ssse3,   dw_pq_gen_ssse3,      dw_pqr_gen_ssse3,
};
static const dw_kernels kernels_avx2 = {
    dw_ec_encode_avx2, dw_gf_vect_mul_avx2, dw_gf_vect_mad_avx2,
    dw_xor_gen_avx2,   dw_pq_gen_avx2,      dw_pqr_gen_avx2,
};
#endif

/* Starts on the scalar kernels so a caller that never runs dw_init still
 * gets correct results. */
dw_kernels dw_active_kernels = {
    dw_ec_encode_base, dw_gf_vect_mul_base, dw_gf_vect_mad_base,
    dw_xor_gen_base,   dw_pq_gen_base,      dw_pqr_gen_base,
};
static dw_isa active_isa = DW_ISA_SCALAR;

dw_status dw_set_isa(dw_isa isa) {
    if (!dw_isa_supported(isa)) return DW_EUNSUPPORTED;
    const dw_kernels *table = &kernels_base;
#if defined(DW_HAVE_X86)
    if (isa == DW_ISA_SSSE3 || isa == DW_ISA_SSE42) table = &kernels_ssse3;
    if (isa == DW_ISA_AVX2) table = &kernels_avx2;
#endif
    dw_active_kernels = *table;
    for (size_t i = 0; i < sizeof dw_family_selectors / sizeof dw_family_selectors[0]; i++)
        if (dw_family_selectors[i]) dw_family_selectors[i](isa);
    active_isa = isa;
    return DW_OK;
}

dw_isa dw_active_isa(void) { return active_isa; }

dw_status dw_init(const char *force) {
    if (force != NULL && force[0] != '\0') {
        dw_isa isa;
        dw_status st = dw_isa_from_name(force, &isa);
        if (st != DW_OK) return st;
        return dw_set_isa(isa);
    }
    return dw_set_isa(dw_cpu_detect());
}

/* ------------------------------------------------------------------------ */

dw_status dw_ec_encode(size_t len, int k, int rows, const uint8_t *tbls,
                       const uint8_t *const *data, uint8_t *const *coding) {
    if (k < 1 || k > DW_MAX_SHARDS || rows < 1 || rows > DW_MAX_SHARDS) return DW_EINVAL;
    if (tbls == NULL || data == NULL || coding == NULL) return DW_ENULL;
    for (int j = 0; j < k; j++)
        if (data[j] == NULL) return DW_ENULL;
    for (int i = 0; i < rows; i++)
        if (coding[i] == NULL) return DW_ENULL;
    if (len) dw_active_kernels.ec_encode(len, k, rows, tbls, data, coding);
    return DW_OK;
}

dw_status dw_gf_vect_mul(size_t len, const uint8_t *tbl, const uint8_t *src, uint8_t *dst) {
    if (tbl == NULL || src == NULL || dst == NULL) return DW_ENULL;
    if (len) dw_active_kernels.vect_mul(len, tbl, src, dst);
    return DW_OK;
}

dw_status dw_gf_vect_mad(size_t len, const uint8_t *tbl, const uint8_t *src, uint8_t *dst) {
    if (tbl == NULL || src == NULL || dst == NULL) return DW_ENULL;
    if (len) dw_active_kernels.vect_mad(len, tbl, src, dst);
    return DW_OK;
}

dw_status dw_xor_gen(int nsrc, size_t len, const uint8_t *const *src, uint8_t *dst) {
    if (nsrc < 1) return DW_EINVAL;
    if (src == NULL || dst == NULL) return DW_ENULL;
    if (len) dw_active_kernels.xor_gen(nsrc, len, src, dst);
    return DW_OK;
}

dw_status dw_xor_acc(size_t len, const uint8_t *src, uint8_t *dst) {
    if (src == NULL || dst == NULL) return DW_ENULL;
    const uint8_t *const srcs[2] = {dst, src};
    if (len) dw_active_kernels.xor_gen(2, len, srcs, dst);
    return DW_OK;
}

dw_status dw_pq_gen(int k, size_t len, const uint8_t *const *data, uint8_t *p, uint8_t *q) {
    if (k < 1 || k > DW_RAID_MAX_DATA) return DW_EINVAL;
    if (data == NULL || p == NULL || q == NULL) return DW_ENULL;
    if (len) dw_active_kernels.pq_gen(k, len, data, p, q);
    return DW_OK;
}

dw_status dw_pqr_gen(int k, size_t len, const uint8_t *const *data, uint8_t *p, uint8_t *q,
                     uint8_t *r) {
    if (k < 1 || k > DW_RAID_MAX_DATA) return DW_EINVAL;
    if (data == NULL || p == NULL || q == NULL || r == NULL) return DW_ENULL;
    if (len) dw_active_kernels.pqr_gen(k, len, data, p, q, r);
    return DW_OK;
}
