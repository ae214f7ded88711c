/* ec_base.c - portable scalar Reed-Solomon kernels: the reference that every
 * SIMD variant is checked against.  Uses the same split-nibble tables. */
#include <string.h>

#include "dw_gf.h"
#include "dw_impl.h"

static inline uint8_t tbl_mul(const uint8_t *tbl, uint8_t x) {
    return (uint8_t)(tbl[x & 0x0f] ^ tbl[16 + (x >> 4)]);
}

void dw_ec_encode_base(size_t len, int k, int rows, const uint8_t *tbls,
                       const uint8_t *const *data, uint8_t *const *coding) {
    for (int i = 0; i < rows; i++) {
        const uint8_t *row = tbls + (size_t)i * k * DW_GF_TBL_BYTES;
        uint8_t *out = coding[i];
        for (size_t x = 0; x < len; x++) {
            uint8_t s = 0;
            for (int j = 0; j < k; j++) s ^= tbl_mul(row + (size_t)j * DW_GF_TBL_BYTES, data[j][x]);
            out[x] = s;
        }
    }
}

void dw_gf_vect_mul_base(size_t len, const uint8_t *tbl, const uint8_t *src, uint8_t *dst) {
    for (size_t x = 0; x < len; x++) dst[x] = tbl_mul(tbl, src[x]);
}

void dw_gf_vect_mad_base(size_t len, const uint8_t *tbl, const uint8_t *src, uint8_t *dst) {
    for (size_t x = 0; x < len; x++) dst[x] ^= tbl_mul(tbl, src[x]);
}
