/* cpu.c - CPU feature detection (CPUID + XGETBV). */
#include <stddef.h>
#include <strings.h>

#include "dw_cpu.h"

#if defined(DW_HAVE_X86)
#include <cpuid.h>

static unsigned long long dw_xgetbv0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int has_vpclmul;

static dw_isa detect_x86(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return DW_ISA_SCALAR;
    const int has_ssse3 = (ecx >> 9) & 1;
    const int has_sse42 = (ecx >> 20) & 1;
    const int has_pclmul = (ecx >> 1) & 1;
    const int has_osxsave = (ecx >> 27) & 1;
    const int has_avx = (ecx >> 28) & 1;
    dw_isa best = DW_ISA_SCALAR;
    if (!has_ssse3) return best;
    best = DW_ISA_SSSE3;
    if (!(has_sse42 && has_pclmul)) return best;
    best = DW_ISA_SSE42;
    if (!(has_osxsave && has_avx)) return best;
    /* The OS must save XMM (bit 1) and YMM (bit 2) state across switches. */
    if ((dw_xgetbv0() & 0x6) != 0x6) return best;
    if (__get_cpuid_max(0, NULL) < 7) return best;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if ((ebx >> 5) & 1) {
        best = DW_ISA_AVX2;
        has_vpclmul = (ecx >> 10) & 1;
    }
    return best;
}
#endif

dw_isa dw_cpu_detect(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
#if defined(DW_HAVE_X86)
        v = (int)detect_x86();
#else
        v = (int)DW_ISA_SCALAR;
#endif
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return (dw_isa)v;
}

int dw_cpu_has_vpclmulqdq(void) {
#if defined(DW_HAVE_X86)
    return dw_cpu_detect() == DW_ISA_AVX2 && has_vpclmul;
#else
    return 0;
#endif
}

int dw_isa_supported(dw_isa isa) {
    if ((int)isa < 0 || isa >= DW_ISA_COUNT) return 0;
    return isa <= dw_cpu_detect();
}

static const char *const isa_names[DW_ISA_COUNT] = {"scalar", "ssse3", "sse42", "avx2"};

const char *dw_isa_name(dw_isa isa) {
    if ((int)isa < 0 || isa >= DW_ISA_COUNT) return NULL;
    return isa_names[isa];
}

dw_status dw_isa_from_name(const char *name, dw_isa *out) {
    if (name == NULL || out == NULL) return DW_ENULL;
    for (int i = 0; i < DW_ISA_COUNT; i++) {
        if (strcasecmp(name, isa_names[i]) == 0) {
            *out = (dw_isa)i;
            return DW_OK;
        }
    }
    /* Common spellings of the portable path. */
    if (strcasecmp(name, "base") == 0 || strcasecmp(name, "none") == 0) {
        *out = DW_ISA_SCALAR;
        return DW_OK;
    }
    return DW_EINVAL;
}
