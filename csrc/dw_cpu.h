/* dw_cpu.h - CPU feature detection and kernel dispatch control.
 *
 * Every kernel family has a portable scalar version (the reference, always
 * compiled) and SIMD versions compiled per file with their own flags.  One
 * instruction set is chosen for all families: the best the CPU supports
 * (CPUID *and* XGETBV, so the OS must have enabled the YMM state), unless the
 * caller forces one.  Switching is a few pointer stores; callers must not
 * switch while kernels run on other threads.
 */
#ifndef DW_CPU_H
#define DW_CPU_H

#include "dw_status.h"

/* Instruction-set levels, each including the ones before it:
 *   scalar  portable C
 *   ssse3   SSSE3 (byte shuffles)
 *   sse42   + SSE4.2 and PCLMULQDQ (crc32 instruction, carry-less multiply)
 *   avx2    + AVX2 (and VPCLMULQDQ where dw_cpu_has_vpclmulqdq() says so)
 * A kernel family without a variant at some level uses the best one below. */
typedef enum dw_isa {
    DW_ISA_SCALAR = 0,
    DW_ISA_SSSE3 = 1,
    DW_ISA_SSE42 = 2,
    DW_ISA_AVX2 = 3,
    DW_ISA_COUNT = 4
} dw_isa;

/* The best instruction set this CPU and OS can run (cached after first call). */
dw_isa dw_cpu_detect(void);

/* Whether `isa` was compiled in and can run here. */
int dw_isa_supported(dw_isa isa);

/* Whether the CPU has VPCLMULQDQ on 256-bit vectors (an extra inside the
 * avx2 level; families that use it check this too). */
int dw_cpu_has_vpclmulqdq(void);

/* "scalar", "ssse3", "sse42", "avx2"; NULL for an unknown value. */
const char *dw_isa_name(dw_isa isa);

/* Parse a name (case-insensitive).  DW_EINVAL for an unknown name. */
dw_status dw_isa_from_name(const char *name, dw_isa *out);

/* Point every kernel family at `isa`.  DW_EUNSUPPORTED if it cannot run here. */
dw_status dw_set_isa(dw_isa isa);

/* The instruction set the kernels currently use. */
dw_isa dw_active_isa(void);

/* Select the kernels once: `force` is NULL/"" for the best available, or the
 * name of an instruction set (the DWCORE_FORCE_ISA value).  Idempotent. */
dw_status dw_init(const char *force);

#endif /* DW_CPU_H */
