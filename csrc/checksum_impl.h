/* checksum_impl.h - internal: the checksum kernel variants, their dispatch
 * table and the CRC-32C constants they share.  Not part of the public C API
 * (that is dw_checksum.h).  Variants assume validated arguments. */
#ifndef DW_CHECKSUM_IMPL_H
#define DW_CHECKSUM_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dw_cpu.h"

/* CRC-32C, reflected (bit 31 of a 32-bit value is the coefficient of x^0). */
#define DW_CRC32C_POLY 0x82F63B78u

/* A CRC-32C update with the standard semantics of dw_crc32c (the variants
 * invert the register on the way in and out themselves, so the public
 * wrapper is a single tail call). */
typedef uint32_t (*dw_crc32c_fn)(uint32_t crc, const uint8_t *p, size_t n);
/* The CRC-32C (from 0) of each of `nblocks` blocks. */
typedef void (*dw_crc32c_blocks_fn)(const uint8_t *p, size_t block_size, size_t nblocks,
                                    uint32_t *out);
/* Fletcher-4 from zeros over `nwords` 32-bit words: out = a, b, c, d. */
typedef void (*dw_fletcher4_fn)(const uint8_t *p, size_t nwords, uint64_t out[4]);

typedef struct dw_checksum_kernels {
    dw_crc32c_fn crc32c;
    dw_crc32c_blocks_fn crc32c_blocks;
    dw_fletcher4_fn fletcher4;
    const char *crc32c_name;
    const char *fletcher4_name;
} dw_checksum_kernels;

extern dw_checksum_kernels dw_checksum_active;

/* The family's selector (checksum_dispatch.c), listed in families.c. */
void dw_checksum_select(dw_isa isa);

/* ---- CRC-32C constants (filled once at load time, crc32c_base.c) ------- */

/* Slicing-by-8 tables: T[k][b] is the CRC register contribution of byte b
 * followed by k zero bytes. */
extern uint32_t dw_crc32c_table[8][256];

/* Shifting a 32-bit CRC register forward over 8*m zero bytes with a
 * carry-less multiply: clmul(crc, dw_crc32c_shift8[m]) is a 64-bit value
 * whose crc32q from 0 is the shifted register.  Entry m is x^(64m-33) mod P
 * (m >= 1; entry 0 unused). */
#define DW_CRC_SHIFT8_MAX 2048
extern uint32_t dw_crc32c_shift8[DW_CRC_SHIFT8_MAX + 1];

/* Folding a 128-bit lane forward by 128*j bits: the low qword is multiplied
 * by fold[j][0] = x^(128j+31) mod P and the high qword by
 * fold[j][1] = x^(128j-33) mod P (1 <= j <= DW_CRC_FOLD_MAX). */
#define DW_CRC_FOLD_MAX 16
extern uint64_t dw_crc32c_fold[DW_CRC_FOLD_MAX + 1][2];

/* x^n mod P, and a*b mod P (reflected), for combining arbitrary lengths. */
uint32_t dw_crc32c_xpow(uint64_t n);
uint32_t dw_crc32c_mulmod(uint32_t a, uint32_t b);

/* Fills the tables above (idempotent; also run by a load-time constructor). */
void dw_crc32c_init_tables(void);

/* ---- Fletcher-4 helpers (fletcher4_base.c) ---------------------------- */

/* out = the state after `prev` followed by `nwords` words whose Fletcher-4
 * from zeros is `next` (out may alias either). */
void dw_fletcher4_concat(const uint64_t prev[4], uint64_t nwords, const uint64_t next[4],
                         uint64_t out[4]);

/* ---- variants -------------------------------------------------------- */

uint32_t dw_crc32c_base(uint32_t crc, const uint8_t *p, size_t n);
void dw_crc32c_blocks_base(const uint8_t *p, size_t block_size, size_t nblocks, uint32_t *out);
void dw_fletcher4_base(const uint8_t *p, size_t nwords, uint64_t out[4]);

#if defined(DW_HAVE_X86)
uint32_t dw_crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n);
void dw_crc32c_blocks_sse42(const uint8_t *p, size_t block_size, size_t nblocks, uint32_t *out);
uint32_t dw_crc32c_vpclmul(uint32_t crc, const uint8_t *p, size_t n);
void dw_crc32c_blocks_vpclmul(const uint8_t *p, size_t block_size, size_t nblocks,
                              uint32_t *out);
void dw_fletcher4_avx2(const uint8_t *p, size_t nwords, uint64_t out[4]);
#endif

/* Unaligned little-endian-agnostic loads (native order, as the hardware
 * crc32 instruction and ZFS's native Fletcher-4 read them). */
static inline uint64_t dw_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint32_t dw_load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif /* DW_CHECKSUM_IMPL_H */
