/* raid_base.c - portable scalar XOR, P+Q and P+Q+R parity: the reference.
 * Q and R are computed by Horner's rule from the highest data index down
 * (as lib/raid6 gen_syndrome does), so only multiply-by-2 is needed. */
#include <string.h>

#include "dw_impl.h"

void dw_xor_gen_base(int nsrc, size_t len, const uint8_t *const *src, uint8_t *dst) {
    /* dst may equal src[0] exactly (dw_xor_acc relies on it). */
    for (size_t x = 0; x < len; x++) {
        uint8_t v = 0;
        for (int j = 0; j < nsrc; j++)
            if (src[j]) v ^= src[j][x];
        dst[x] = v;
    }
}

void dw_pq_gen_base(int k, size_t len, const uint8_t *const *data, uint8_t *p, uint8_t *q) {
    for (size_t x = 0; x < len; x++) {
        uint8_t pv = 0, qv = 0;
        for (int d = k - 1; d >= 0; d--) {
            const uint8_t v = data[d] ? data[d][x] : 0;
            pv ^= v;
            qv = (uint8_t)(dw_gf_mul2_byte(qv) ^ v);
        }
        p[x] = pv;
        q[x] = qv;
    }
}

void dw_pqr_gen_base(int k, size_t len, const uint8_t *const *data, uint8_t *p, uint8_t *q,
                     uint8_t *r) {
    for (size_t x = 0; x < len; x++) {
        uint8_t pv = 0, qv = 0, rv = 0;
        for (int d = k - 1; d >= 0; d--) {
            const uint8_t v = data[d] ? data[d][x] : 0;
            pv ^= v;
            qv = (uint8_t)(dw_gf_mul2_byte(qv) ^ v);
            rv = (uint8_t)(dw_gf_mul2_byte(dw_gf_mul2_byte(rv)) ^ v);
        }
        p[x] = pv;
        q[x] = qv;
        r[x] = rv;
    }
}
