"""Golden values for the levels of issue #8, worked out by hand from ``raid-levels.md``.

RAID-DP, p = 5 (§5): one byte per block, data ``D[r][c] = (r << 4) | (1 << c)``
for rows r = 0..3 and data columns c = 0..n-1.  Row parity ``RP[r]`` is the
XOR of row r; block (r, col), col ∈ 0..4 (col 4 = row parity), is on
diagonal ``(r + col) mod 5``; the diagonal device stores diagonals 0..3.

n = 4 (no virtual disk)::

    RP[r] = (r<<4 four times: 0) | 0b1111          = 0x0F for every row
    d0 = D00 ^ RP1 ^ D23 ^ D32 = 01^0F^28^34        = 0x12
    d1 = D01 ^ D10 ^ RP2 ^ D33 = 02^11^0F^38        = 0x24
    d2 = D02 ^ D11 ^ D20 ^ RP3 = 04^12^21^0F        = 0x38
    d3 = D03 ^ D12 ^ D21 ^ D30 = 08^14^22^31        = 0x0F
    d4 (not stored) = RP0 ^ D13 ^ D22 ^ D31 = 0F^18^24^32 = 0x01

n = 3 (column 3 is a virtual zero disk)::

    RP[r] = r<<4 (three times) | 0b111 = 07, 17, 27, 37
    d0 = D00 ^ RP1 ^ 0 ^ D32   = 01^17^34           = 0x22
    d1 = D01 ^ D10 ^ RP2 ^ 0   = 02^11^27           = 0x34
    d2 = D02 ^ D11 ^ D20 ^ RP3 = 04^12^21^37        = 0x00
    d3 = 0 ^ D12 ^ D21 ^ D30   = 14^22^31           = 0x07

Diagonal membership for p = 5 (cells (row, col)), from ``(r + col) mod 5``.
"""

from __future__ import annotations

#: (n, p) -> (data[r][c], row parity per row, stored diagonal parity per diagonal)
DP_P5: dict[tuple[int, int], tuple[list[list[int]], list[int], list[int]]] = {
    (4, 5): (
        [[0x01, 0x02, 0x04, 0x08], [0x11, 0x12, 0x14, 0x18],
         [0x21, 0x22, 0x24, 0x28], [0x31, 0x32, 0x34, 0x38]],
        [0x0F, 0x0F, 0x0F, 0x0F],
        [0x12, 0x24, 0x38, 0x0F],
    ),
    (3, 5): (
        [[0x01, 0x02, 0x04], [0x11, 0x12, 0x14], [0x21, 0x22, 0x24], [0x31, 0x32, 0x34]],
        [0x07, 0x17, 0x27, 0x37],
        [0x22, 0x34, 0x00, 0x07],
    ),
}  # fmt: skip

#: p = 5: the cells (row, col) of each diagonal 0..4 (4 = the one never stored).
DP_P5_DIAGONALS: list[list[tuple[int, int]]] = [
    [(0, 0), (1, 4), (2, 3), (3, 2)],
    [(0, 1), (1, 0), (2, 4), (3, 3)],
    [(0, 2), (1, 1), (2, 0), (3, 4)],
    [(0, 3), (1, 2), (2, 1), (3, 0)],
    [(0, 4), (1, 3), (2, 2), (3, 1)],
]

#: RAID-DP placement, n = 4 (N = 6, p = 5), chunk C: chunk number -> (device, offset in C).
#: i = c mod 16, s = c div 16, r = i div 4, j = i mod 4, offset (4s + r)·C.
DP_N4_CHUNKS: dict[int, tuple[int, int]] = {
    0: (0, 0), 1: (1, 0), 3: (3, 0), 4: (0, 1), 7: (3, 1), 10: (2, 2), 15: (3, 3),
    16: (0, 4), 17: (1, 4), 21: (1, 5), 31: (3, 7), 32: (0, 8), 50: (2, 12),
}  # fmt: skip

#: Smallest prime ≥ max(3, n+1) for n = 1..12.
DP_PRIMES: dict[int, int] = {
    1: 3, 2: 3, 3: 5, 4: 5, 5: 7, 6: 7, 7: 11, 8: 11, 9: 11, 10: 11, 11: 13, 12: 13,
}  # fmt: skip
