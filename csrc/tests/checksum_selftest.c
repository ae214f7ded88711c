/* checksum_selftest.c - standalone C self-test of the checksum kernels
 * (dw_checksum.h): RFC 3720 CRC-32C vectors, every compiled instruction set
 * against the scalar kernels on odd lengths and misaligned buffers, running
 * values, combine, the batch calls and a hand-derived Fletcher-4.  Exit
 * status 0 on success.  The thorough cross-checks (pure-Python references,
 * ISA-L, guard pages) live in tests/test_checksum.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw_checksum.h"
#include "dw_cpu.h"

#include "testutil.h"


enum { MAXLEN = 200000 };
static uint8_t buf[MAXLEN + 64];

static void test_vectors(dw_isa isa) {
    uint8_t v[32];
    const struct {
        int kind;
        uint32_t crc;
    } rfc[] = {{0, 0x8A9136AA}, {1, 0x62A8AB43}, {2, 0x46DD794E}, {3, 0x113FDB5C}};
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        for (int j = 0; j < 32; j++)
            v[j] = rfc[i].kind == 0 ? 0 : rfc[i].kind == 1 ? 0xFF : rfc[i].kind == 2 ? j : 31 - j;
        CHECK(dw_crc32c(0, v, 32) == rfc[i].crc, "[%s] RFC 3720 vector %zu", dw_isa_name(isa), i);
    }
    CHECK(dw_crc32c(0, "123456789", 9) == 0xE3069283u, "[%s] check value", dw_isa_name(isa));
    CHECK(dw_crc32c(0x1234, NULL, 0) == 0x1234, "[%s] empty input", dw_isa_name(isa));
    /* Words 1, 2, 3, 4 give a, b, c, d = 10, 20, 35, 56. */
    const uint32_t words[4] = {1, 2, 3, 4};
    uint64_t f[4];
    CHECK(dw_fletcher4(words, 16, NULL, f) == DW_OK && f[0] == 10 && f[1] == 20 && f[2] == 35 &&
              f[3] == 56,
          "[%s] fletcher4 of 1,2,3,4", dw_isa_name(isa));
}

static void test_against_scalar(dw_isa isa) {
    static const size_t lens[] = {1,    7,    8,    15,   16,   63,   64,    65,    71,   72,
                                  73,   127,  159,  160,  161,  199,  200,   201,   1099, 1100,
                                  1101, 4095, 4096, 4097, 23607, 23609, 27201, 65537, MAXLEN};
    for (size_t t = 0; t < 3 * sizeof lens / sizeof lens[0]; t++) {
        const size_t len = lens[t % (sizeof lens / sizeof lens[0])];
        const size_t off = rnd32() % 64;
        const uint32_t init = rnd32();
        for (size_t x = 0; x < len; x++) buf[off + x] = (uint8_t)rnd32();
        dw_set_isa(DW_ISA_SCALAR);
        const uint32_t ref = dw_crc32c(init, buf + off, len);
        uint64_t fref[4], fgot[4];
        dw_fletcher4(buf + off, len & ~(size_t)3, NULL, fref);
        dw_set_isa(isa);
        CHECK(dw_crc32c(init, buf + off, len) == ref, "[%s] crc32c len=%zu off=%zu",
              dw_isa_name(isa), len, off);
        dw_fletcher4(buf + off, len & ~(size_t)3, NULL, fgot);
        CHECK(memcmp(fref, fgot, sizeof fref) == 0, "[%s] fletcher4 len=%zu off=%zu",
              dw_isa_name(isa), len & ~(size_t)3, off);
        /* Running values and combine, split at a random point. */
        const size_t cut = rnd32() % (len + 1);
        const uint32_t a = dw_crc32c(init, buf + off, cut);
        CHECK(dw_crc32c(a, buf + off + cut, len - cut) == ref, "[%s] chained crc32c len=%zu cut=%zu",
              dw_isa_name(isa), len, cut);
        CHECK(dw_crc32c_combine(a, dw_crc32c(0, buf + off + cut, len - cut), len - cut) == ref,
              "[%s] crc32c_combine len=%zu cut=%zu", dw_isa_name(isa), len, cut);
        const size_t fcut = cut & ~(size_t)3;
        uint64_t fa[4];
        dw_fletcher4(buf + off, fcut, NULL, fa);
        dw_fletcher4(buf + off + fcut, (len & ~(size_t)3) - fcut, fa, fa);
        CHECK(memcmp(fa, fref, sizeof fa) == 0, "[%s] chained fletcher4 len=%zu cut=%zu",
              dw_isa_name(isa), len, fcut);
    }
}

static void test_blocks(dw_isa isa) {
    static const size_t sizes[] = {1, 60, 512, 4096, 4100};
    uint32_t crcs[64], exp[64];
    uint64_t bad[64], f4[64 * 4], one[4];
    dw_set_isa(isa);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const size_t bs = sizes[s], n = 40;
        for (size_t x = 0; x < bs * n + 1; x++) buf[x] = (uint8_t)rnd32();
        CHECK(dw_crc32c_blocks(buf + 1, bs, n, crcs) == DW_OK, "crc32c_blocks status");
        for (size_t i = 0; i < n; i++) {
            CHECK(crcs[i] == dw_crc32c(0, buf + 1 + i * bs, bs), "[%s] block %zu of %zu bytes",
                  dw_isa_name(isa), i, bs);
            exp[i] = crcs[i] ^ (i % 7 == 3);
        }
        size_t nbad = 99;
        CHECK(dw_verify_blocks(buf + 1, bs, n, exp, bad, &nbad) == DW_OK, "verify status");
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            if (i % 7 == 3) CHECK(want < nbad && bad[want++] == i, "[%s] verify misses block %zu",
                                  dw_isa_name(isa), i);
        CHECK(nbad == want, "[%s] verify found %zu, expected %zu", dw_isa_name(isa), nbad, want);
        if (bs % 4 == 0) {
            CHECK(dw_fletcher4_blocks(buf + 1, bs, n, f4) == DW_OK, "fletcher4_blocks status");
            for (size_t i = 0; i < n; i++) {
                dw_fletcher4(buf + 1 + i * bs, bs, NULL, one);
                CHECK(memcmp(one, f4 + 4 * i, sizeof one) == 0, "[%s] fletcher4 block %zu",
                      dw_isa_name(isa), i);
            }
        }
    }
    size_t nbad;
    CHECK(dw_crc32c_blocks(buf, 0, 1, crcs) == DW_EINVAL, "block_size 0");
    CHECK(dw_verify_blocks(NULL, 4, 1, exp, bad, &nbad) == DW_ENULL, "NULL buf");
    CHECK(dw_fletcher4(buf, 3, NULL, one) == DW_EINVAL, "fletcher4 length 3");
    CHECK(dw_fletcher4_blocks(buf, 6, 1, f4) == DW_EINVAL, "fletcher4 block_size 6");
}

int main(void) {
    if (dw_init(NULL) != DW_OK) {
        fprintf(stderr, "dw_init failed\n");
        return 2;
    }
    const dw_isa best = dw_cpu_detect();
    for (int i = 0; i < DW_ISA_COUNT; i++) {
        const dw_isa isa = (dw_isa)i;
        if (!dw_isa_supported(isa)) continue;
        dw_set_isa(isa);
        test_vectors(isa);
        test_against_scalar(isa);
        test_blocks(isa);
        printf("checksum %-6s crc32c=%s fletcher4=%s ok\n", dw_isa_name(isa), dw_crc32c_impl(),
               dw_fletcher4_impl());
    }
    dw_set_isa(best);
    if (failures) {
        fprintf(stderr, "%d checksum self-test failure(s)\n", failures);
        return 1;
    }
    return 0;
}
