/* fletcher4_avx2.c - ZFS's Fletcher-4 with AVX2 (this file alone gets -mavx2).
 *
 * Four interleaved streams, as ZFS's SIMD variants do: lane j of each 256-bit
 * accumulator sums the words j, j+4, j+8, ... (16 bytes are widened to four
 * 64-bit lanes per step, then a += w; b += a; c += b; d += c lane-wise), and
 * the lanes are merged once at the end.  Words left over after the last
 * whole group of four continue the merged state (dw_fletcher4_concat).
 *
 * The merge.  After T groups, lane j has counted the word of group t (word
 * 4t + j) 1, s, C(s+1, 2), C(s+2, 3) times in its a, b, c, d, where
 * s = T - t.  In order, with n = 4T words, that word is counted 1, m,
 * C(m+1, 2), C(m+2, 3) times, m = n - (4t + j) = 4s - j.  Each of those is a
 * polynomial in s with integer coefficients in the basis 1, s, C(s+1, 2),
 * C(s+2, 3), which gives (A, B, C, D = the lanes' a, b, c, d):
 *   a = sum A
 *   b = 4 sum B - (A1 + 2 A2 + 3 A3)
 *   c = 16 sum C - (6 B0 + 10 B1 + 14 B2 + 18 B3) + (A2 + 3 A3)
 *   d = 64 sum D - (48 C0 + 64 C1 + 80 C2 + 96 C3) + (4 B0 + 10 B1 + 20 B2 + 34 B3) - A3
 * (the coefficients are read off at s = 0, -1, -2, -3, where that basis is
 * triangular), all modulo 2^64. */
#include <immintrin.h>

#include "checksum_impl.h"

/* Below this many words the lane merge costs more than the SIMD loop saves. */
#define F4_AVX2_MIN_WORDS 32

void dw_fletcher4_avx2(const uint8_t *p, size_t nwords, uint64_t out[4]) {
    if (nwords < F4_AVX2_MIN_WORDS) {
        dw_fletcher4_base(p, nwords, out);
        return;
    }
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    size_t groups = nwords / 4;
    for (; groups >= 2; groups -= 2, p += 32) {
        const __m256i w0 = _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i *)(const void *)p));
        const __m256i w1 =
            _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i *)(const void *)(p + 16)));
        a = _mm256_add_epi64(a, w0);
        b = _mm256_add_epi64(b, a);
        c = _mm256_add_epi64(c, b);
        d = _mm256_add_epi64(d, c);
        a = _mm256_add_epi64(a, w1);
        b = _mm256_add_epi64(b, a);
        c = _mm256_add_epi64(c, b);
        d = _mm256_add_epi64(d, c);
    }
    if (groups) {
        const __m256i w = _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i *)(const void *)p));
        a = _mm256_add_epi64(a, w);
        b = _mm256_add_epi64(b, a);
        c = _mm256_add_epi64(c, b);
        d = _mm256_add_epi64(d, c);
        p += 16;
    }
    uint64_t la[4], lb[4], lc[4], ld[4];
    _mm256_storeu_si256((__m256i *)(void *)la, a);
    _mm256_storeu_si256((__m256i *)(void *)lb, b);
    _mm256_storeu_si256((__m256i *)(void *)lc, c);
    _mm256_storeu_si256((__m256i *)(void *)ld, d);
    out[0] = la[0] + la[1] + la[2] + la[3];
    out[1] = 4 * (lb[0] + lb[1] + lb[2] + lb[3]) - (la[1] + 2 * la[2] + 3 * la[3]);
    out[2] = 16 * (lc[0] + lc[1] + lc[2] + lc[3]) -
             (6 * lb[0] + 10 * lb[1] + 14 * lb[2] + 18 * lb[3]) + (la[2] + 3 * la[3]);
    out[3] = 64 * (ld[0] + ld[1] + ld[2] + ld[3]) -
             (48 * lc[0] + 64 * lc[1] + 80 * lc[2] + 96 * lc[3]) +
             (4 * lb[0] + 10 * lb[1] + 20 * lb[2] + 34 * lb[3]) - la[3];
    const size_t rest = nwords % 4;
    if (rest) {
        uint64_t tail[4];
        dw_fletcher4_base(p, rest, tail);
        dw_fletcher4_concat(out, rest, tail, out);
    }
}
