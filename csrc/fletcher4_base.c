/* fletcher4_base.c - ZFS's Fletcher-4 in portable C (the reference every
 * SIMD variant is checked against), and the algebra that joins partial
 * states: interleaved SIMD lanes, and consecutive runs.
 *
 * Over n words w_0 .. w_{n-1} from zeros, word w_i is counted
 *     a: 1,  b: (n-i),  c: C(n-i+1, 2),  d: C(n-i+2, 3)
 * times (C = binomial), all modulo 2^64.  That is what lets SIMD variants
 * sum interleaved lanes and merge them at the end (see fletcher4_avx2.c),
 * and lets a checksum continue from a previous state. */
#include "checksum_impl.h"

void dw_fletcher4_base(const uint8_t *p, size_t nwords, uint64_t out[4]) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i < nwords; i++, p += 4) {
        a += dw_load32(p);
        b += a;
        c += b;
        d += c;
    }
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
}

/* C(n+1, 2) and C(n+2, 3) modulo 2^64 for any n (exact division first). */
static uint64_t tri(uint64_t n) {
    return (n & 1) ? n * ((n + 1) / 2) : (n / 2) * (n + 1);
}

static uint64_t tet(uint64_t n) {
    uint64_t x = n, y = n + 1, z = n + 2;
    if (x % 2 == 0) x /= 2;
    else y /= 2;
    if (x % 3 == 0) x /= 3;
    else if (y % 3 == 0) y /= 3;
    else z /= 3;
    return x * y * z;
}

void dw_fletcher4_concat(const uint64_t prev[4], uint64_t nwords, const uint64_t next[4],
                         uint64_t out[4]) {
    const uint64_t a0 = prev[0], b0 = prev[1], c0 = prev[2], d0 = prev[3];
    const uint64_t n = nwords, t2 = tri(n), t3 = tet(n);
    const uint64_t r[4] = {
        a0 + next[0],
        b0 + n * a0 + next[1],
        c0 + n * b0 + t2 * a0 + next[2],
        d0 + n * c0 + t2 * b0 + t3 * a0 + next[3],
    };
    memcpy(out, r, sizeof r);
}
