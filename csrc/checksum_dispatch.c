/* checksum_dispatch.c - the checksum family's own dispatch (a selector that
 * dw_set_isa calls through families.c) and the validating public wrappers of
 * dw_checksum.h. */
#include "checksum_impl.h"
#include "dw_checksum.h"

static const dw_checksum_kernels kernels_base = {
    dw_crc32c_base, dw_crc32c_blocks_base, dw_fletcher4_base, "scalar", "scalar",
};

/* Starts on the scalar kernels so a caller that never runs dw_init still
 * gets correct results. */
dw_checksum_kernels dw_checksum_active = {
    dw_crc32c_base, dw_crc32c_blocks_base, dw_fletcher4_base, "scalar", "scalar",
};

void dw_checksum_select(dw_isa isa) {
    dw_crc32c_init_tables();
    dw_checksum_kernels k = kernels_base;
    (void)isa; /* only the scalar kernels exist off x86 */
#if defined(DW_HAVE_X86)
    if (isa >= DW_ISA_SSE42) {
        k.crc32c = dw_crc32c_sse42;
        k.crc32c_blocks = dw_crc32c_blocks_sse42;
        k.crc32c_name = "sse42";
    }
    if (isa >= DW_ISA_AVX2) {
        if (dw_cpu_has_vpclmulqdq()) {
            k.crc32c = dw_crc32c_vpclmul;
            k.crc32c_blocks = dw_crc32c_blocks_vpclmul;
            k.crc32c_name = "vpclmul";
        }
        k.fletcher4 = dw_fletcher4_avx2;
        k.fletcher4_name = "avx2";
    }
#endif
    dw_checksum_active = k;
}

const char *dw_crc32c_impl(void) { return dw_checksum_active.crc32c_name; }
const char *dw_fletcher4_impl(void) { return dw_checksum_active.fletcher4_name; }

uint32_t dw_crc32c(uint32_t crc, const void *buf, size_t len) {
    if (buf == NULL) return crc;
    return dw_checksum_active.crc32c(crc, (const uint8_t *)buf, len);
}

uint32_t dw_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
    /* The inversions at both ends cancel: A || B's CRC is A's CRC moved over
     * len_b zero bytes, plus B's. */
    uint32_t shift = dw_crc32c_xpow(len_b);         /* x^len_b   */
    for (int i = 0; i < 3; i++) shift = dw_crc32c_mulmod(shift, shift); /* x^(8 len_b) */
    return dw_crc32c_mulmod(shift, crc_a) ^ crc_b;
}

dw_status dw_crc32c_blocks(const void *buf, size_t block_size, size_t nblocks, uint32_t *out) {
    if (block_size == 0) return DW_EINVAL;
    if (nblocks == 0) return DW_OK;
    if (buf == NULL || out == NULL) return DW_ENULL;
    dw_checksum_active.crc32c_blocks((const uint8_t *)buf, block_size, nblocks, out);
    return DW_OK;
}

dw_status dw_verify_blocks(const void *buf, size_t block_size, size_t nblocks,
                           const uint32_t *expected, uint64_t *bad, size_t *nbad) {
    if (nbad == NULL) return DW_ENULL;
    *nbad = 0;
    if (block_size == 0) return DW_EINVAL;
    if (nblocks == 0) return DW_OK;
    if (buf == NULL || expected == NULL || bad == NULL) return DW_ENULL;
    enum { BATCH = 256 }; /* CRCs computed per pass, on the stack */
    uint32_t crcs[BATCH];
    const uint8_t *p = (const uint8_t *)buf;
    size_t found = 0;
    for (size_t first = 0; first < nblocks; first += BATCH) {
        const size_t n = nblocks - first < BATCH ? nblocks - first : BATCH;
        dw_checksum_active.crc32c_blocks(p + first * block_size, block_size, n, crcs);
        for (size_t i = 0; i < n; i++)
            if (crcs[i] != expected[first + i]) bad[found++] = first + i;
    }
    *nbad = found;
    return DW_OK;
}

dw_status dw_fletcher4(const void *buf, size_t len, const uint64_t *init, uint64_t *out) {
    if (out == NULL || (buf == NULL && len > 0)) return DW_ENULL;
    if (len % 4) return DW_EINVAL;
    uint64_t fresh[4] = {0, 0, 0, 0};
    if (len) dw_checksum_active.fletcher4((const uint8_t *)buf, len / 4, fresh);
    if (init != NULL) dw_fletcher4_concat(init, len / 4, fresh, out);
    else memcpy(out, fresh, sizeof fresh);
    return DW_OK;
}

dw_status dw_fletcher4_blocks(const void *buf, size_t block_size, size_t nblocks, uint64_t *out) {
    if (block_size == 0 || block_size % 4) return DW_EINVAL;
    if (nblocks == 0) return DW_OK;
    if (buf == NULL || out == NULL) return DW_ENULL;
    const uint8_t *p = (const uint8_t *)buf;
    for (size_t i = 0; i < nblocks; i++, p += block_size)
        dw_checksum_active.fletcher4(p, block_size / 4, out + 4 * i);
    return DW_OK;
}
