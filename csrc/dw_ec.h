/* dw_ec.h - Reed-Solomon region kernels (dispatched to the active ISA).
 *
 * Buffers are caller-owned, of any length and any alignment.  Inputs are
 * never written.  Outputs must not overlap inputs except where stated.
 * Nothing here allocates.
 */
#ifndef DW_EC_H
#define DW_EC_H

#include <stddef.h>
#include <stdint.h>

#include "dw_status.h"

/* coding[i][x] = sum_j a[i][j] * data[j][x] for i < rows, x < len, where the
 * coefficients come as split-nibble tables (dw_gf_init_tables: coefficient
 * (i, j) at tbls + (i*k + j)*32).  1 <= k <= 256, 1 <= rows <= 256.
 * Every data pointer must be non-NULL.  Byte-identical to ISA-L's
 * ec_encode_data for the same tables. */
dw_status dw_ec_encode(size_t len, int k, int rows, const uint8_t *tbls,
                       const uint8_t *const *data, uint8_t *const *coding);

/* dst = c * src (tbl = dw_gf_vect_mul_init(c)); dst may equal src exactly. */
dw_status dw_gf_vect_mul(size_t len, const uint8_t *tbl, const uint8_t *src, uint8_t *dst);

/* dst ^= c * src; dst must not overlap src. */
dw_status dw_gf_vect_mad(size_t len, const uint8_t *tbl, const uint8_t *src, uint8_t *dst);

#endif /* DW_EC_H */
