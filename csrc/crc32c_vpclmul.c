/* crc32c_vpclmul.c - CRC-32C with the crc32 instruction in three streams
 * fused with 256-bit VPCLMULQDQ folding (this file alone gets -mavx2
 * -mvpclmulqdq -mpclmul).  The kernel is the template crc32c_simd.inc. */
#define CRC_VEC_256 1
#include "crc32c_simd.inc"
