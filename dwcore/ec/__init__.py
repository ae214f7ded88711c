"""Erasure codes over the native GF(2^8) kernels.

* :class:`ReedSolomon` — systematic k+m Reed-Solomon with ISA-L's Cauchy
  matrix (byte-identical to ``ec_encode_data``);
* XOR, P+Q and P+Q+R parity in Linux md or ZFS order, with recovery.

Shards are equal-length buffers: bytes, bytearray, memoryview, mmap or numpy
arrays (uint8), or a 2-D ``(count, length)`` uint8 array.  Outputs are numpy
uint8 arrays; ``*_into`` variants write into caller buffers with no copies.
"""

from dwcore._native import gf_exp, gf_inv, gf_mul
from dwcore.ec.parity import (
    pq_parity,
    pq_parity_into,
    pq_recover,
    pq_recover_into,
    pqr_parity,
    pqr_parity_into,
    pqr_recover,
    pqr_recover_into,
    xor_parity,
    xor_parity_into,
    xor_recover,
    xor_recover_into,
)
from dwcore.ec.reed_solomon import MAX_SHARDS, ReedSolomon, cauchy_matrix
from dwcore.errors import DataLossError, TooFewShardsError

__all__ = [
    "MAX_SHARDS",
    "DataLossError",
    "ReedSolomon",
    "TooFewShardsError",
    "cauchy_matrix",
    "gf_exp",
    "gf_inv",
    "gf_mul",
    "pq_parity",
    "pq_parity_into",
    "pq_recover",
    "pq_recover_into",
    "pqr_parity",
    "pqr_parity_into",
    "pqr_recover",
    "pqr_recover_into",
    "xor_parity",
    "xor_parity_into",
    "xor_recover",
    "xor_recover_into",
]
