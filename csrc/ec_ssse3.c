/* ec_ssse3.c - Reed-Solomon kernels for SSSE3 (this file alone gets -mssse3). */
#define DW_VEC_SSSE3 1
#include "dw_impl.h"
#include "simd_vec.h"
#include "ec_simd.inc"
