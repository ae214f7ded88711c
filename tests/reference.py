"""Slow, independent GF(2^8) reference for the dwcore kernel tests.

Everything here is built from first principles and shares no code or tables
with dwcore:

* multiplication is a carry-less (shift and xor) product reduced modulo the
  polynomial 0x11D (x^8 + x^4 + x^3 + x^2 + 1); the 256 x 256 product table
  used for vectorised work is generated from that definition;
* inverses are found by searching that table;
* matrices are inverted by plain Gauss-Jordan elimination;
* RAID-6 P/Q follow Linux md's ``gen_syndrome`` (lib/raid6/int.uc) step by
  step, and two-failure recovery follows H. Peter Anvin, "The mathematics of
  RAID-6" (lib/raid6/recov.c);
* P/Q/R are also computed by their defining sums (no Horner), in Linux md
  order (coefficient g^d for data index d) and ZFS RAID-Z order (g^(n-1-i)).

Buffers are numpy ``uint8`` arrays; a stripe is a sequence of equal-length
1-D arrays or a 2-D ``(count, length)`` array.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

POLY = 0x11D
ORDERS = ("md", "zfs")

U8 = NDArray[np.uint8]


# --------------------------------------------------------------------------
# Scalar field arithmetic
# --------------------------------------------------------------------------


def gf_mul_bitwise(a: int, b: int) -> int:
    """Product of ``a`` and ``b`` in GF(2^8)/0x11D by shift-and-xor."""
    if not (0 <= a < 256 and 0 <= b < 256):
        raise ValueError(f"operands must be bytes, got {a}, {b}")
    product = 0
    for bit in range(8):  # carry-less multiply: a 15-bit polynomial
        if (b >> bit) & 1:
            product ^= a << bit
    for bit in range(14, 7, -1):  # reduce from the top bit down
        if (product >> bit) & 1:
            product ^= POLY << (bit - 8)
    return product


def _build_mul_table() -> U8:
    """All 65536 products, vectorised but by the same shift-and-xor rule."""
    a = np.arange(256, dtype=np.uint32)[:, None]
    b = np.arange(256, dtype=np.uint32)[None, :]
    product = np.zeros((256, 256), dtype=np.uint32)
    for bit in range(8):
        product ^= np.where((b >> bit) & 1, a << bit, 0).astype(np.uint32)
    for bit in range(14, 7, -1):
        product ^= np.where((product >> bit) & 1, POLY << (bit - 8), 0).astype(np.uint32)
    assert int(product.max()) < 256
    return product.astype(np.uint8)


MUL: U8 = _build_mul_table()
"""``MUL[a, b]`` is a·b; ``MUL[c][buf]`` multiplies a whole buffer by c."""


def _build_inv_table() -> U8:
    inv = np.zeros(256, dtype=np.uint8)
    for a in range(1, 256):
        (hits,) = np.nonzero(MUL[a] == 1)
        assert len(hits) == 1, f"{a} must have exactly one inverse"
        inv[a] = hits[0]
    return inv


INV: U8 = _build_inv_table()
"""``INV[a]`` is a^-1 for a != 0; ``INV[0]`` is 0 (no inverse)."""


def gf_mul(a: int, b: int) -> int:
    return int(MUL[a, b])


def gf_inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return int(INV[a])


def gf_pow(a: int, n: int) -> int:
    """a^n by repeated multiplication (n >= 0)."""
    result = 1
    for _ in range(n % 255 if a else n):
        result = int(MUL[result, a])
    return result


def gf_div(a: int, b: int) -> int:
    return gf_mul(a, gf_inv(b))


# --------------------------------------------------------------------------
# Buffers
# --------------------------------------------------------------------------


def as_rows(buffers: Sequence[object] | U8) -> list[U8]:
    """Equal-length buffers (anything with the buffer protocol) as uint8 rows."""
    rows = [np.frombuffer(memoryview(b).cast("B"), dtype=np.uint8) for b in buffers]  # type: ignore[arg-type]
    if len({r.size for r in rows}) > 1:
        raise ValueError("buffers differ in length")
    return rows


def mul_region(c: int, buf: U8) -> U8:
    return MUL[c][buf]


def xor_all(rows: Sequence[U8], length: int) -> U8:
    acc = np.zeros(length, dtype=np.uint8)
    for row in rows:
        acc ^= row
    return acc


def dot_rows(coefficients: Sequence[int], rows: Sequence[U8], length: int) -> U8:
    """Σ coefficients[j] · rows[j] over GF(2^8)."""
    acc = np.zeros(length, dtype=np.uint8)
    for c, row in zip(coefficients, rows, strict=True):
        if c:
            acc ^= MUL[c][row]
    return acc


# --------------------------------------------------------------------------
# Matrices
# --------------------------------------------------------------------------


def cauchy_matrix(k: int, m: int) -> U8:
    """ISA-L ``gf_gen_cauchy1_matrix``: identity on top, then inv((k+i) ^ j)."""
    if not (k >= 1 and m >= 0 and k + m <= 256):
        raise ValueError(f"bad shape k={k} m={m}")
    a = np.zeros((k + m, k), dtype=np.uint8)
    for i in range(k):
        a[i, i] = 1
    for i in range(m):
        for j in range(k):
            a[k + i, j] = gf_inv((k + i) ^ j)
    return a


def mat_mul(a: U8, b: U8) -> U8:
    """GF(2^8) matrix product."""
    n, inner = a.shape
    inner2, p = b.shape
    assert inner == inner2
    out = np.zeros((n, p), dtype=np.uint8)
    for i in range(n):
        for t in range(inner):
            if a[i, t]:
                out[i] ^= MUL[a[i, t]][b[t]]
    return out


class SingularMatrixError(ValueError):
    pass


def mat_inv(matrix: U8) -> U8:
    """Gauss-Jordan inverse over GF(2^8); SingularMatrixError if none."""
    n = matrix.shape[0]
    assert matrix.shape == (n, n)
    work = np.concatenate([matrix.astype(np.uint8), np.eye(n, dtype=np.uint8)], axis=1)
    for col in range(n):
        pivots = np.nonzero(work[col:, col])[0]
        if pivots.size == 0:
            raise SingularMatrixError(f"singular at column {col}")
        piv = col + int(pivots[0])
        if piv != col:
            work[[col, piv]] = work[[piv, col]]
        work[col] = MUL[INV[work[col, col]]][work[col]]
        for row in range(n):
            f = work[row, col]
            if row != col and f:
                work[row] ^= MUL[f][work[col]]
    return np.ascontiguousarray(work[:, n:])


def matrix_rank(matrix: U8) -> int:
    work = matrix.astype(np.uint8).copy()
    rows, cols = work.shape
    rank = 0
    for col in range(cols):
        pivots = np.nonzero(work[rank:, col])[0]
        if pivots.size == 0:
            continue
        piv = rank + int(pivots[0])
        work[[rank, piv]] = work[[piv, rank]]
        work[rank] = MUL[INV[work[rank, col]]][work[rank]]
        for row in range(rows):
            f = work[row, col]
            if row != rank and f:
                work[row] ^= MUL[f][work[rank]]
        rank += 1
        if rank == rows:
            break
    return rank


# --------------------------------------------------------------------------
# Reed-Solomon (systematic Cauchy)
# --------------------------------------------------------------------------


def rs_encode(k: int, m: int, data: Sequence[object] | U8) -> U8:
    """The m parity shards of k data shards: (m, n) array."""
    rows = as_rows(data)
    assert len(rows) == k
    n = rows[0].size
    matrix = cauchy_matrix(k, m)
    return np.stack([dot_rows(matrix[k + i].tolist(), rows, n) for i in range(m)]).reshape(m, n)


def rs_decode(k: int, m: int, shards: Sequence[U8 | None]) -> list[U8]:
    """All k+m shards from any k survivors (None marks a missing shard)."""
    assert len(shards) == k + m
    present = [i for i, s in enumerate(shards) if s is not None]
    if len(present) < k:
        raise ValueError(f"{k + m - len(present)} missing, tolerates {m}")
    chosen = present[:k]
    matrix = cauchy_matrix(k, m)
    survivors = as_rows([shards[i] for i in chosen])  # type: ignore[misc]
    n = survivors[0].size
    decode = mat_inv(matrix[chosen])
    data = [dot_rows(decode[j].tolist(), survivors, n) for j in range(k)]
    parity = rs_encode(k, m, data) if m else np.zeros((0, n), dtype=np.uint8)
    return [*data, *list(parity)]


# --------------------------------------------------------------------------
# RAID parity: defining sums
# --------------------------------------------------------------------------


def _coefficient_index(d: int, count: int, order: str) -> int:
    if order == "md":
        return d
    if order == "zfs":
        return count - 1 - d
    raise ValueError(f"unknown order {order!r}")


def xor_parity(data: Sequence[object] | U8) -> U8:
    rows = as_rows(data)
    return xor_all(rows, rows[0].size)


def syndrome(data: Sequence[object] | U8, generator: int, order: str = "md") -> U8:
    """Σ generator^e(d) · D_d with e(d) = d (md) or n-1-d (zfs), by direct sum."""
    rows = as_rows(data)
    n = rows[0].size
    coefficients = [
        gf_pow(generator, _coefficient_index(d, len(rows), order)) for d in range(len(rows))
    ]
    return dot_rows(coefficients, rows, n)


def pq_parity(data: Sequence[object] | U8, order: str = "md") -> tuple[U8, U8]:
    return xor_parity(data), syndrome(data, 2, order)


def pqr_parity(data: Sequence[object] | U8, order: str = "zfs") -> tuple[U8, U8, U8]:
    return xor_parity(data), syndrome(data, 2, order), syndrome(data, 4, order)


# --------------------------------------------------------------------------
# Linux md lib/raid6: gen_syndrome (int.uc) and recovery (recov.c)
# --------------------------------------------------------------------------


def _md_shlbyte(v: U8) -> U8:
    """SHLBYTE: every byte shifted left by one, the carry dropped."""
    return (v << 1).astype(np.uint8)


def _md_mask(v: U8) -> U8:
    """MASK: 0xff in every byte whose top bit is set, else 0x00."""
    return np.where(v & 0x80, 0xFF, 0x00).astype(np.uint8)


def md_gen_syndrome(data: Sequence[object] | U8) -> tuple[U8, U8]:
    """Port of md's ``raid6_int1_gen_syndrome``: ptrs = data..., P, Q.

    z0 is the highest data disk; P and Q start as its block, then for each
    lower disk z: wp ^= wd; wq = 2·wq ^ wd, with the multiply by 2 done as
    SHLBYTE and MASK & 0x1d, exactly as in int.uc.
    """
    dptr = as_rows(data)
    disks = len(dptr) + 2
    z0 = disks - 3  # highest data disk
    wq = dptr[z0].copy()
    wp = dptr[z0].copy()
    nbytes_1d = np.uint8(0x1D)
    for z in range(z0 - 1, -1, -1):
        wd = dptr[z]
        wp ^= wd
        w2 = _md_mask(wq)
        w1 = _md_shlbyte(wq)
        w2 &= nbytes_1d
        w1 ^= w2
        wq = w1 ^ wd
    return wp, wq


def _md_exi(x: int) -> int:
    """raid6_gfexi[x] = inv(2^x + 1) (mktables.c)."""
    return gf_inv(gf_pow(2, x) ^ 1)


def md_recov_2data(
    faila: int, failb: int, data: Sequence[U8 | None], p: U8, q: U8
) -> tuple[U8, U8]:
    """``raid6_2data_recov_intx1``: data blocks a < b lost; returns (D_a, D_b)."""
    assert 0 <= faila < failb < len(data)
    # Compute syndrome with zero for the missing data pages.
    zero = np.zeros(p.size, dtype=np.uint8)
    dp, dq = md_gen_syndrome([zero if i in (faila, failb) else d for i, d in enumerate(data)])  # type: ignore[misc]
    pbmul = MUL[_md_exi(failb - faila)]
    qmul = MUL[gf_inv(gf_pow(2, faila) ^ gf_pow(2, failb))]
    px = p ^ dp
    qx = qmul[q ^ dq]
    db = pbmul[px] ^ qx  # reconstructed B
    da = db ^ px  # reconstructed A
    return da, db


def md_recov_datap(faila: int, data: Sequence[U8 | None], q: U8) -> tuple[U8, U8]:
    """``raid6_datap_recov_intx1``: data block a and P lost; returns (D_a, P)."""
    zero = np.zeros(q.size, dtype=np.uint8)
    dp, dq = md_gen_syndrome([zero if i == faila else d for i, d in enumerate(data)])  # type: ignore[misc]
    qmul = MUL[gf_inv(gf_pow(2, faila))]
    da = qmul[q ^ dq]
    return da, dp ^ da


def pq_recover(shards: Sequence[U8 | None], order: str = "md") -> list[U8]:
    """Reference P+Q recovery: k data, P, Q with up to two None, any mix."""
    k = len(shards) - 2
    missing = [i for i, s in enumerate(shards) if s is None]
    if len(missing) > 2:
        raise ValueError("more than two missing")
    # Work in md order: the zfs layout is the md code over reversed data.
    data: list[U8 | None] = list(shards[:k])
    if order == "zfs":
        data.reverse()
    elif order != "md":
        raise ValueError(f"unknown order {order!r}")
    p, q = shards[k], shards[k + 1]
    lost = [i for i, d in enumerate(data) if d is None]
    if len(lost) == 2:
        assert p is not None and q is not None
        data[lost[0]], data[lost[1]] = md_recov_2data(lost[0], lost[1], data, p, q)
    elif len(lost) == 1 and p is None:
        assert q is not None
        data[lost[0]], p = md_recov_datap(lost[0], data, q)
    elif len(lost) == 1:  # RAID-5 style from P (Q may be missing too)
        assert p is not None
        data[lost[0]] = p ^ xor_all([d for d in data if d is not None], p.size)
    full = [d for d in data if d is not None]
    assert len(full) == k
    new_p, new_q = md_gen_syndrome(full)
    if p is not None:
        assert np.array_equal(p, new_p)
    if order == "zfs":
        full.reverse()
    return [*full, new_p, new_q]


def pqr_recover(shards: Sequence[U8 | None], order: str = "zfs") -> list[U8]:
    """Reference P+Q+R recovery by solving the linear system of the survivors."""
    k = len(shards) - 3
    missing = [i for i, s in enumerate(shards) if s is None]
    if len(missing) > 3:
        raise ValueError("more than three missing")
    n = next(s for s in shards if s is not None).size
    generator_rows = np.zeros((k + 3, k), dtype=np.uint8)
    generator_rows[:k] = np.eye(k, dtype=np.uint8)
    for row, g in ((k, 1), (k + 1, 2), (k + 2, 4)):
        for d in range(k):
            generator_rows[row, d] = gf_pow(g, _coefficient_index(d, k, order))
    present = [i for i in range(k + 3) if shards[i] is not None]
    # Pick k independent surviving rows.
    chosen: list[int] = []
    for i in present:
        if matrix_rank(generator_rows[[*chosen, i]]) == len(chosen) + 1:
            chosen.append(i)
        if len(chosen) == k:
            break
    assert len(chosen) == k, "P/Q/R code must be MDS for k <= 255"
    decode = mat_inv(generator_rows[chosen])
    survivors = [shards[i] for i in chosen]
    data = [dot_rows(decode[j].tolist(), survivors, n) for j in range(k)]  # type: ignore[arg-type]
    return [*data, *pqr_parity(data, order)]


def xor_recover(shards: Sequence[U8 | None]) -> list[U8]:
    missing = [i for i, s in enumerate(shards) if s is None]
    if len(missing) > 1:
        raise ValueError("more than one missing")
    present = [s for s in shards if s is not None]
    n = present[0].size
    out = [s if s is not None else xor_all(present, n) for s in shards]
    return out


def erasure_patterns(count: int, max_missing: int) -> list[tuple[int, ...]]:
    """Every set of at most ``max_missing`` indices out of ``count`` (incl. none)."""
    return [c for e in range(max_missing + 1) for c in combinations(range(count), e)]
