"""Golden placement for issue 7's levels that md defines: RAID 4.

``raid4_compute_sector`` is the level-4 branch of Linux md's
``raid5_compute_sector`` (``drivers/md/raid5.c``: ``case 4: pd_idx =
data_disks``; the data index is not moved), in 512-byte sectors, written
independently of ``dwcore.raid``.  ``GOLDEN4`` holds its output frozen for
two stripes per N: ``(data devices in logical order..., P device)``.
(md raid10 — MD10 and RAID 1E — is in ``md10_reference.py``.)
"""

from __future__ import annotations

SECTOR = 512


def raid4_compute_sector(
    r_sector: int, raid_disks: int, sectors_per_chunk: int
) -> tuple[int, int, int]:
    """md's mapping for level 4: array sector -> (device sector, dd_idx, pd_idx)."""
    data_disks = raid_disks - 1
    chunk_number, chunk_offset = divmod(r_sector, sectors_per_chunk)
    stripe, dd_idx = divmod(chunk_number, data_disks)
    pd_idx = data_disks
    new_sector = stripe * sectors_per_chunk + chunk_offset
    return new_sector, dd_idx, pd_idx


def md4_table(n: int, stripes: int) -> list[tuple[int, ...]]:
    """Rows ``(data devices..., P)`` for stripes 0..stripes-1 from the port."""
    spc = 8
    rows = []
    for s in range(stripes):
        devs, pd = [], -1
        for d in range(n - 1):
            _, dd, pd = raid4_compute_sector((s * (n - 1) + d) * spc, n, spc)
            devs.append(dd)
        rows.append((*devs, pd))
    return rows


# fmt: off
GOLDEN4: dict[int, list[tuple[int, ...]]] = {
    3: [(0, 1, 2), (0, 1, 2)],
    4: [(0, 1, 2, 3), (0, 1, 2, 3)],
    5: [(0, 1, 2, 3, 4), (0, 1, 2, 3, 4)],
}
# fmt: on
