/* dw_raid.h - RAID parity kernels: XOR (RAID 5), P+Q (RAID 6), P+Q+R
 * (RAID-Z3 / triple parity), and RAID-6 two-failure recovery.
 *
 * Coefficients follow Linux md (lib/raid6): data index d = 0 is the first
 * data chunk of the stripe and
 *     P = sum D_d,   Q = sum 2^d * D_d,   R = sum 4^d * D_d.
 * ZFS RAID-Z order (Q = sum 2^(n-1-i) * D_i) is the same code with the data
 * pointer list reversed.
 *
 * A NULL data pointer stands for an all-zero block (the RAID-Z short column
 * and the recovery "missing member" convention).  Buffers are caller-owned,
 * any length, any alignment; outputs must not overlap inputs.  No kernel
 * allocates.  1 <= k <= 255 data blocks for P+Q and P+Q+R (2^255 == 1).
 */
#ifndef DW_RAID_H
#define DW_RAID_H

#include <stddef.h>
#include <stdint.h>

#include "dw_status.h"

#define DW_RAID_MAX_DATA 255

/* dst = src[0] ^ ... ^ src[nsrc-1]; nsrc >= 1, NULL sources are zero. */
dw_status dw_xor_gen(int nsrc, size_t len, const uint8_t *const *src, uint8_t *dst);

/* dst ^= src (read-modify-write parity delta). */
dw_status dw_xor_acc(size_t len, const uint8_t *src, uint8_t *dst);

/* P and Q over k data blocks (md order). */
dw_status dw_pq_gen(int k, size_t len, const uint8_t *const *data, uint8_t *p, uint8_t *q);

/* P, Q and R over k data blocks (md order; R uses generator 4). */
dw_status dw_pqr_gen(int k, size_t len, const uint8_t *const *data, uint8_t *p, uint8_t *q,
                     uint8_t *r);

/* RAID-6 recovery of two lost data blocks a < b (Anvin, "The mathematics of
 * RAID-6"; lib/raid6/recov.c).  data[a] and data[b] are the output buffers
 * (their contents are ignored and overwritten); the others are survivors.
 * p and q are the stripe's parity.  Byte-identical to what md recovers. */
dw_status dw_raid6_recov_2data(int k, size_t len, int a, int b, uint8_t *const *data,
                               const uint8_t *p, const uint8_t *q);

/* RAID-6 recovery of data block a and P from Q: data[a] and p are outputs. */
dw_status dw_raid6_recov_datap(int k, size_t len, int a, uint8_t *const *data, uint8_t *p,
                               const uint8_t *q);

#endif /* DW_RAID_H */
