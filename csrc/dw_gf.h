/* dw_gf.h - GF(2^8) arithmetic over the polynomial 0x11D (x^8+x^4+x^3+x^2+1),
 * generator 2: the field of Linux md RAID-6, ZFS RAID-Z and Intel ISA-L.
 *
 * Scalar helpers used to build coding matrices and multiplication tables.
 * Nothing here is on a hot path; the region kernels live in dw_ec.h.
 */
#ifndef DW_GF_H
#define DW_GF_H

#include <stddef.h>
#include <stdint.h>

#include "dw_status.h"

#define DW_GF_POLY 0x11D
#define DW_GF_TBL_BYTES 32 /* split-nibble table size per coefficient */
#define DW_MAX_SHARDS 256  /* k + m for Reed-Solomon */

uint8_t dw_gf_mul(uint8_t a, uint8_t b);
/* Multiplicative inverse; dw_gf_inv(0) is 0 (no inverse exists). */
uint8_t dw_gf_inv(uint8_t a);
/* 2^n for any n >= 0 (period 255). */
uint8_t dw_gf_exp(unsigned n);
/* log_2(a) for a != 0; 0 for a == 0. */
uint8_t dw_gf_log(uint8_t a);
uint8_t dw_gf_pow(uint8_t a, unsigned n);

/* The (k+m) x k systematic Cauchy matrix of ISA-L's gf_gen_cauchy1_matrix:
 * identity on top, then a[i][j] = inv((k+i) ^ j).  `a` holds (k+m)*k bytes,
 * row-major.  DW_EINVAL unless 1 <= k, 0 <= m and k + m <= 256. */
dw_status dw_gf_gen_cauchy1_matrix(uint8_t *a, int k, int m);

/* Invert the n x n row-major matrix `in` into `out` by Gauss-Jordan
 * elimination.  `in` is clobbered (used as the work matrix).
 * DW_ESINGULAR if it has no inverse. */
dw_status dw_gf_invert_matrix(uint8_t *in, uint8_t *out, int n);

/* Split-nibble table of one coefficient c, ISA-L layout: bytes 0..15 are
 * c*x for x = 0..15, bytes 16..31 are c*(x<<4). */
void dw_gf_vect_mul_init(uint8_t c, uint8_t *tbl32);

/* Tables for `rows` x `k` coefficients (row-major in `a`): 32 bytes per
 * coefficient, coefficient (i, j) at tbls + (i*k + j)*32 (ISA-L's
 * ec_init_tables layout, so tables are interchangeable with ISA-L's). */
void dw_gf_init_tables(int k, int rows, const uint8_t *a, uint8_t *tbls);

#endif /* DW_GF_H */
