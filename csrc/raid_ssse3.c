/* raid_ssse3.c - XOR and P+Q(+R) parity kernels for SSSE3 (this file alone gets -mssse3). */
#define DW_VEC_SSSE3 1
#include "dw_impl.h"
#include "simd_vec.h"
#include "raid_simd.inc"
