/* dw_impl.h - internal: the per-ISA kernel variants and the dispatch table.
 * Not part of the public C API.  Variants assume their arguments were
 * validated by the public wrappers in dispatch.c. */
#ifndef DW_IMPL_H
#define DW_IMPL_H

#include <stddef.h>
#include <stdint.h>

typedef void (*dw_ec_encode_fn)(size_t len, int k, int rows, const uint8_t *tbls,
                                const uint8_t *const *data, uint8_t *const *coding);
typedef void (*dw_vect_fn)(size_t len, const uint8_t *tbl, const uint8_t *src, uint8_t *dst);
typedef void (*dw_xor_gen_fn)(int nsrc, size_t len, const uint8_t *const *src, uint8_t *dst);
typedef void (*dw_pq_gen_fn)(int k, size_t len, const uint8_t *const *data, uint8_t *p,
                             uint8_t *q);
typedef void (*dw_pqr_gen_fn)(int k, size_t len, const uint8_t *const *data, uint8_t *p,
                              uint8_t *q, uint8_t *r);

typedef struct dw_kernels {
    dw_ec_encode_fn ec_encode;
    dw_vect_fn vect_mul;
    dw_vect_fn vect_mad;
    dw_xor_gen_fn xor_gen;
    dw_pq_gen_fn pq_gen;
    dw_pqr_gen_fn pqr_gen;
} dw_kernels;

/* The active table (dispatch.c). */
extern dw_kernels dw_active_kernels;

/* Kernel families with their own dispatch (checksums, ...) register a
 * selector here; dw_set_isa calls each with the new level.  A family's
 * selector is defined in its own dispatch file (dw_family_selectors lives in
 * families.c, so adding a family touches only that list). */
#include "dw_cpu.h"
typedef void (*dw_family_select_fn)(dw_isa isa);
extern const dw_family_select_fn dw_family_selectors[4];

#define DW_DECLARE_VARIANTS(isa)                                                              \
    void dw_ec_encode_##isa(size_t len, int k, int rows, const uint8_t *tbls,                \
                            const uint8_t *const *data, uint8_t *const *coding);              \
    void dw_gf_vect_mul_##isa(size_t len, const uint8_t *tbl, const uint8_t *src,             \
                              uint8_t *dst);                                                  \
    void dw_gf_vect_mad_##isa(size_t len, const uint8_t *tbl, const uint8_t *src,             \
                              uint8_t *dst);                                                  \
    void dw_xor_gen_##isa(int nsrc, size_t len, const uint8_t *const *src, uint8_t *dst);     \
    void dw_pq_gen_##isa(int k, size_t len, const uint8_t *const *data, uint8_t *p,           \
                         uint8_t *q);                                                         \
    void dw_pqr_gen_##isa(int k, size_t len, const uint8_t *const *data, uint8_t *p,          \
                          uint8_t *q, uint8_t *r);

DW_DECLARE_VARIANTS(base)
#if defined(DW_HAVE_X86)
DW_DECLARE_VARIANTS(ssse3)
DW_DECLARE_VARIANTS(avx2)
#endif

/* GF(2^8) multiply by 2 of one byte (generator 2, polynomial 0x11D). */
static inline uint8_t dw_gf_mul2_byte(uint8_t v) {
    return (uint8_t)((v << 1) ^ ((v & 0x80) ? 0x1d : 0));
}

#endif /* DW_IMPL_H */
