/* raid_avx2.c - XOR and P+Q(+R) parity kernels for AVX2 (this file alone gets -mavx2). */
#define DW_VEC_AVX2 1
#include "dw_impl.h"
#include "simd_vec.h"
#include "raid_simd.inc"
