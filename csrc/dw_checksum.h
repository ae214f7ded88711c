/* dw_checksum.h - block checksums: CRC-32C (Castagnoli) and ZFS's Fletcher-4.
 *
 * CRC-32C is the iSCSI / ext4 / Btrfs CRC (reflected polynomial 0x82F63B78,
 * initial value and final xor 0xFFFFFFFF): dw_crc32c(0, "123456789", 9) is
 * 0xE3069283.  The running value chains like zlib's crc32():
 *     dw_crc32c(dw_crc32c(0, a, na), b, nb) == dw_crc32c(0, a || b, na + nb).
 *
 * Fletcher-4 is exactly ZFS's fletcher_4_native: four 64-bit accumulators
 * (a, b, c, d) over the buffer read as native-endian 32-bit words,
 *     a += w; b += a; c += b; d += c;   (all modulo 2^64)
 * giving zio_cksum_t's words in the order a, b, c, d.
 *
 * Every function is chosen once by instruction set (dw_init / dw_set_isa in
 * dw_cpu.h): CRC-32C uses a table-driven scalar loop below sse42, the crc32
 * instruction in three streams fused with PCLMULQDQ folding from sse42, and
 * 256-bit VPCLMULQDQ folding at avx2 where the CPU has it; Fletcher-4 uses
 * AVX2 at avx2.  All variants give identical results.
 *
 * Buffers are caller-owned, read-only, of any alignment and length (a
 * Fletcher-4 length must be a multiple of 4).  Nothing here allocates, and
 * every function is safe to call from several threads at once (not while
 * another thread switches the instruction set).
 */
#ifndef DW_CHECKSUM_H
#define DW_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "dw_status.h"

/* CRC-32C of buf[0..len), continuing the CRC `crc` (0 to start).  buf may be
 * NULL only when len is 0 (then crc is returned unchanged). */
uint32_t dw_crc32c(uint32_t crc, const void *buf, size_t len);

/* The CRC-32C of A || B from crc_a = CRC-32C(A), crc_b = CRC-32C(B) and
 * len_b = |B| (like zlib's crc32_combine); O(log len_b). */
uint32_t dw_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* out[i] = CRC-32C of block i, buf[i*block_size .. (i+1)*block_size), for
 * i < nblocks (each block starts from 0: independent checksums).
 * DW_EINVAL if block_size is 0, DW_ENULL if buf or out is NULL while
 * nblocks > 0.  out must not overlap buf. */
dw_status dw_crc32c_blocks(const void *buf, size_t block_size, size_t nblocks, uint32_t *out);

/* Compare each block's CRC-32C with expected[i]; write the indices that
 * differ, ascending, to bad[0 .. *nbad) (bad has room for nblocks).  Errors
 * as dw_crc32c_blocks; *nbad is 0 on error. */
dw_status dw_verify_blocks(const void *buf, size_t block_size, size_t nblocks,
                           const uint32_t *expected, uint64_t *bad, size_t *nbad);

/* Fletcher-4 of buf[0..len) continuing from `init` (a, b, c, d; NULL to start
 * from zeros), into out[0..4) = a, b, c, d.  out may equal init.
 * DW_EINVAL if len is not a multiple of 4; DW_ENULL for a NULL out, or a NULL
 * buf with len > 0. */
dw_status dw_fletcher4(const void *buf, size_t len, const uint64_t *init, uint64_t *out);

/* Fletcher-4 of each block: out[4*i .. 4*i+4) = a, b, c, d of block i (from
 * zeros).  DW_EINVAL if block_size is 0 or not a multiple of 4. */
dw_status dw_fletcher4_blocks(const void *buf, size_t block_size, size_t nblocks, uint64_t *out);

/* Which variant each family uses now: "scalar", "sse42", "vpclmul" (CRC)
 * and "scalar", "avx2" (Fletcher-4). */
const char *dw_crc32c_impl(void);
const char *dw_fletcher4_impl(void);

#endif /* DW_CHECKSUM_H */
