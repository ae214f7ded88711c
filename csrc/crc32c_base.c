/* crc32c_base.c - portable CRC-32C: slicing-by-8 tables (the reference every
 * hardware variant is checked against), GF(2) arithmetic modulo the
 * Castagnoli polynomial, and the folding/shifting constants the SIMD
 * variants use.  All tables are computed once, at load time. */
#include "checksum_impl.h"

uint32_t dw_crc32c_table[8][256];
uint32_t dw_crc32c_shift8[DW_CRC_SHIFT8_MAX + 1];
uint64_t dw_crc32c_fold[DW_CRC_FOLD_MAX + 1][2];

/* a*b mod P with both operands reflected (bit 31 is x^0). */
uint32_t dw_crc32c_mulmod(uint32_t a, uint32_t b) {
    uint32_t prod = 0;
    for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
        if (a & m) prod ^= b;
        b = (b >> 1) ^ (DW_CRC32C_POLY & (0u - (b & 1u))); /* b *= x */
    }
    return prod;
}

/* x^(2^k) mod P for k < 64, built with the tables. */
static uint32_t xpow2k[64];

uint32_t dw_crc32c_xpow(uint64_t n) {
    uint32_t r = 1u << 31; /* x^0 */
    for (int k = 0; n != 0; k++, n >>= 1)
        if (n & 1) r = dw_crc32c_mulmod(r, xpow2k[k]);
    return r;
}

static int tables_ready;

void dw_crc32c_init_tables(void) {
    if (__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) return;
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++) c = (c >> 1) ^ (DW_CRC32C_POLY & (0u - (c & 1u)));
        dw_crc32c_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++) {
            const uint32_t prev = dw_crc32c_table[k - 1][b];
            dw_crc32c_table[k][b] = (prev >> 8) ^ dw_crc32c_table[0][prev & 0xff];
        }
    xpow2k[0] = 1u << 30; /* x^1 */
    for (int k = 1; k < 64; k++) xpow2k[k] = dw_crc32c_mulmod(xpow2k[k - 1], xpow2k[k - 1]);
    /* shift8[m] = x^(64m - 33): start at m = 1 and multiply by x^64. */
    const uint32_t x64 = dw_crc32c_xpow(64);
    dw_crc32c_shift8[0] = 0;
    dw_crc32c_shift8[1] = dw_crc32c_xpow(31);
    for (int m = 2; m <= DW_CRC_SHIFT8_MAX; m++)
        dw_crc32c_shift8[m] = dw_crc32c_mulmod(dw_crc32c_shift8[m - 1], x64);
    dw_crc32c_fold[0][0] = dw_crc32c_fold[0][1] = 0;
    for (int j = 1; j <= DW_CRC_FOLD_MAX; j++) {
        dw_crc32c_fold[j][0] = dw_crc32c_xpow(128u * (unsigned)j + 31);
        dw_crc32c_fold[j][1] = dw_crc32c_xpow(128u * (unsigned)j - 33);
    }
    __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

/* Tables are ready before any caller can reach a kernel. */
__attribute__((constructor)) static void crc32c_tables_ctor(void) { dw_crc32c_init_tables(); }

/* Bytes as a little-endian word whatever the host order (a single load on
 * little-endian hosts). */
static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The raw register update (no inversions). */
static uint32_t crc32c_raw(uint32_t crc, const uint8_t *p, size_t n) {
    const uint32_t(*t)[256] = (const uint32_t(*)[256])dw_crc32c_table;
    for (; n && ((uintptr_t)p & 7); n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    for (; n >= 8; n -= 8, p += 8) {
        const uint32_t lo = crc ^ le32(p), hi = le32(p + 4);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return crc;
}

uint32_t dw_crc32c_base(uint32_t crc, const uint8_t *p, size_t n) {
    return ~crc32c_raw(~crc, p, n);
}

void dw_crc32c_blocks_base(const uint8_t *p, size_t block_size, size_t nblocks, uint32_t *out) {
    for (size_t i = 0; i < nblocks; i++, p += block_size) out[i] = ~crc32c_raw(~0u, p, block_size);
}
