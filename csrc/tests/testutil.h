/* testutil.h - what the standalone C self-tests share: a deterministic
 * xorshift generator and a CHECK macro that counts failures. */
#ifndef DW_TESTUTIL_H
#define DW_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>

static unsigned long long test_rng = 0x9E3779B97F4A7C15ull;

static inline uint64_t test_next(void) {
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return test_rng;
}

static inline uint8_t rnd8(void) { return (uint8_t)(test_next() >> 24); }
static inline uint32_t rnd32(void) { return (uint32_t)(test_next() >> 16); }

static int failures;
#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

#endif /* DW_TESTUTIL_H */
