/* ec_avx2.c - Reed-Solomon kernels for AVX2 (this file alone gets -mavx2). */
#define DW_VEC_AVX2 1
#include "dw_impl.h"
#include "simd_vec.h"
#include "ec_simd.inc"
