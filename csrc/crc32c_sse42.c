/* crc32c_sse42.c - CRC-32C with the crc32 instruction in three streams fused
 * with 128-bit PCLMULQDQ folding (this file alone gets -msse4.2 -mpclmul).
 * The kernel is the template crc32c_simd.inc. */
#include "crc32c_simd.inc"
