/* raid_base.c - portable scalar XOR, P+Q and P+Q+R parity: the reference.
 * Q and R are computed by Horner's rule from the highest data index down
 * (as lib/raid6 gen_syndrome does), so only multiply-by-2 is needed.  The
 * bulk works on 64-bit words (eight GF(2^8) lanes at once, plain C, no
 * intrinsics); ragged ends go byte by byte. */
#include <string.h>

#include "dw_impl.h"

#define LANES_HI 0x8080808080808080ull
#define LANES_LO7 0xfefefefefefefefeull

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store64(uint8_t *p, uint64_t v) { memcpy(p, &v, sizeof v); }

/* Multiply each byte lane by 2 in GF(2^8)/0x11D: shift, then reduce the
 * lanes whose top bit fell out (0x01 * 0x1d per lane cannot carry). */
static inline uint64_t mul2_lanes(uint64_t v) {
    const uint64_t reduce = ((v & LANES_HI) >> 7) * 0x1d;
    return ((v << 1) & LANES_LO7) ^ reduce;
}

void dw_xor_gen_base(int nsrc, size_t len, const uint8_t *const *src, uint8_t *dst) {
    /* dst may equal src[0] exactly (dw_xor_acc relies on it). */
    size_t x = 0;
    for (; x + 8 <= len; x += 8) {
        uint64_t v = 0;
        for (int j = 0; j < nsrc; j++)
            if (src[j]) v ^= load64(src[j] + x);
        store64(dst + x, v);
    }
    for (; x < len; x++) {
        uint8_t v = 0;
        for (int j = 0; j < nsrc; j++)
            if (src[j]) v ^= src[j][x];
        dst[x] = v;
    }
}

void dw_pq_gen_base(int k, size_t len, const uint8_t *const *data, uint8_t *p, uint8_t *q) {
    size_t x = 0;
    for (; x + 8 <= len; x += 8) {
        uint64_t pv = 0, qv = 0;
        for (int d = k - 1; d >= 0; d--) {
            const uint64_t v = data[d] ? load64(data[d] + x) : 0;
            pv ^= v;
            qv = mul2_lanes(qv) ^ v;
        }
        store64(p + x, pv);
        store64(q + x, qv);
    }
    for (; x < len; x++) {
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
    size_t x = 0;
    for (; x + 8 <= len; x += 8) {
        uint64_t pv = 0, qv = 0, rv = 0;
        for (int d = k - 1; d >= 0; d--) {
            const uint64_t v = data[d] ? load64(data[d] + x) : 0;
            pv ^= v;
            qv = mul2_lanes(qv) ^ v;
            rv = mul2_lanes(mul2_lanes(rv)) ^ v;
        }
        store64(p + x, pv);
        store64(q + x, qv);
        store64(r + x, rv);
    }
    for (; x < len; x++) {
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
