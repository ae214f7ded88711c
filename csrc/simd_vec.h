/* simd_vec.h - one vocabulary for the 128-bit (SSSE3) and 256-bit (AVX2)
 * kernels.  A kernel file defines DW_VEC_AVX2 or DW_VEC_SSSE3, includes this
 * header and then a *_simd.inc template; the template is compiled once per
 * instruction set with that file's flags.  Internal to csrc/. */
#ifndef DW_SIMD_VEC_H
#define DW_SIMD_VEC_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#if defined(DW_VEC_AVX2)
typedef __m256i vec_t;
#define VEC_BYTES 32
#define DW_SFX(name) name##_avx2
#define vloadu(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define vstoreu(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))
#define vstream(p, v) _mm256_stream_si256((__m256i *)(void *)(p), (v))
#define vxor(a, b) _mm256_xor_si256((a), (b))
#define vand(a, b) _mm256_and_si256((a), (b))
#define vzero() _mm256_setzero_si256()
#define vset1(c) _mm256_set1_epi8((char)(c))
#define vshuf(tbl, idx) _mm256_shuffle_epi8((tbl), (idx))
#define vsrl4(a) _mm256_srli_epi64((a), 4)
#define vadd8(a, b) _mm256_add_epi8((a), (b))
#define vcmpneg(a) _mm256_cmpgt_epi8(_mm256_setzero_si256(), (a))
/* A 16-byte nibble table broadcast to both lanes: one load uop. */
#define vtbl(p) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#elif defined(DW_VEC_SSSE3)
typedef __m128i vec_t;
#define VEC_BYTES 16
#define DW_SFX(name) name##_ssse3
#define vloadu(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define vstoreu(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))
#define vstream(p, v) _mm_stream_si128((__m128i *)(void *)(p), (v))
#define vxor(a, b) _mm_xor_si128((a), (b))
#define vand(a, b) _mm_and_si128((a), (b))
#define vzero() _mm_setzero_si128()
#define vset1(c) _mm_set1_epi8((char)(c))
#define vshuf(tbl, idx) _mm_shuffle_epi8((tbl), (idx))
#define vsrl4(a) _mm_srli_epi64((a), 4)
#define vadd8(a, b) _mm_add_epi8((a), (b))
#define vcmpneg(a) _mm_cmpgt_epi8(_mm_setzero_si128(), (a))
#define vtbl(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#else
#error "define DW_VEC_AVX2 or DW_VEC_SSSE3 before including simd_vec.h"
#endif

#define DW_INLINE static inline __attribute__((always_inline))

/* Multiply every byte by 2 in GF(2^8)/0x11D without tables: bytes with the
 * top bit set get the reduction 0x1d.  AVX2 selects it with one blend on
 * the sign bit; SSSE3 (no blend) uses a signed compare and a mask. */
DW_INLINE vec_t vmul2(vec_t v, vec_t poly) {
#if defined(DW_VEC_AVX2)
    return vxor(vadd8(v, v), _mm256_blendv_epi8(_mm256_setzero_si256(), poly, v));
#else
    return vxor(vadd8(v, v), vand(vcmpneg(v), poly));
#endif
}

#endif /* DW_SIMD_VEC_H */
