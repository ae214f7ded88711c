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

#: RAID-Z maps, ashift 12: (N, p, data sectors s, parent sector b) -> (columns as
#: (device, sector, size in sectors), parity first; skip sectors as (device, sector)).
#: Frozen from ``raidz_reference.map_alloc`` (the port of ``vdev_raidz_map_alloc``);
#: checked by hand against the spec formula:
#: * (5, 1, 3, 7): f = 2, o = 1, q = 0, r = 3, bc = 4, tot = 4, scols = 4; column 3
#:   wraps to device 0 at sector 2; no skip;
#: * (4, 1, 5, 256): parent byte offset 1 MiB → Z1 swaps columns 0 and 1; q = 1, r = 2,
#:   bc = 3, tot = 7, asize 8: one skip at column 3 (device 3) after its 1 sector;
#: * (3, 1, 2, 256): r = 0 so skipstart 0 becomes 1 after the swap, and the skip stays
#:   on device 1 sector 86 (where column 0 would have put it);
#: * (8, 2, 12, 33): q = 2, r = 0, tot = 16, asize 18: skips on columns 0 and 1;
#: * (6, 2, 1, 0): q = 0 small block, acols = scols = 3.
RAIDZ_MAPS: dict[
    tuple[int, int, int, int], tuple[list[tuple[int, int, int]], list[tuple[int, int]]]
] = {
    (5, 1, 3, 7): ([(2, 1, 1), (3, 1, 1), (4, 1, 1), (0, 2, 1)], []),
    (4, 1, 5, 256): ([(1, 64, 2), (0, 64, 2), (2, 64, 2), (3, 64, 1)], [(3, 65)]),
    (3, 1, 2, 256): ([(2, 85, 1), (1, 85, 1), (0, 86, 1)], [(1, 86)]),
    (4, 1, 5, 255): ([(3, 63, 2), (0, 64, 2), (1, 64, 2), (2, 64, 1)], [(2, 65)]),
    (6, 2, 1, 0): ([(0, 0, 1), (1, 0, 1), (2, 0, 1)], []),
    (6, 2, 4, 13): ([(1, 2, 1), (2, 2, 1), (3, 2, 1), (4, 2, 1), (5, 2, 1), (0, 3, 1)], []),
    (6, 2, 8, 100): ([(4, 16, 2), (5, 16, 2), (0, 17, 2), (1, 17, 2), (2, 17, 2), (3, 17, 2)], []),
    (8, 2, 12, 33): (
        [(1, 4, 2), (2, 4, 2), (3, 4, 2), (4, 4, 2), (5, 4, 2), (6, 4, 2), (7, 4, 2), (0, 5, 2)],
        [(1, 6), (2, 6)],
    ),
    (8, 3, 1, 5): ([(5, 0, 1), (6, 0, 1), (7, 0, 1), (0, 1, 1)], []),
    (8, 3, 5, 17): (
        [(1, 2, 1), (2, 2, 1), (3, 2, 1), (4, 2, 1), (5, 2, 1), (6, 2, 1), (7, 2, 1), (0, 3, 1)],
        [],
    ),
    (8, 3, 10, 262143): (
        [(7, 32767, 2), (0, 32768, 2), (1, 32768, 2), (2, 32768, 2), (3, 32768, 2),
         (4, 32768, 2), (5, 32768, 2), (6, 32768, 2)],
        [],
    ),
    (11, 3, 32, 1000): (
        [(10, 90, 4), (0, 91, 4), (1, 91, 4), (2, 91, 4), (3, 91, 4), (4, 91, 4), (5, 91, 4),
         (6, 91, 4), (7, 91, 4), (8, 91, 4), (9, 91, 4)],
        [],
    ),
    (5, 1, 4, 0): ([(0, 0, 1), (1, 0, 1), (2, 0, 1), (3, 0, 1), (4, 0, 1)], [(0, 1)]),
    (3, 2, 1, 2): ([(2, 0, 1), (0, 1, 1), (1, 1, 1)], []),
    (4, 3, 2, 9): ([(1, 2, 2), (2, 2, 2), (3, 2, 2), (0, 3, 2)], []),
    (7, 1, 6, 515): (
        [(4, 73, 1), (5, 73, 1), (6, 73, 1), (0, 74, 1), (1, 74, 1), (2, 74, 1), (3, 74, 1)],
        [(4, 74)],
    ),
}  # fmt: skip
