"""Golden RAID 5/6 placement: a port of Linux md's ``raid5_compute_sector``.

The port follows md (``drivers/md/raid5.c``): addresses in 512-byte
sectors, ``chunk_number = sector div sectors_per_chunk``, data index
``dd_idx = chunk_number mod data_disks``, ``stripe = chunk_number div
data_disks``, then the parity disk(s) and the data disk from md's algorithm
switch; the device sector is ``stripe * sectors_per_chunk + chunk_offset``.
It is written independently of ``dwcore.raid`` (no shared code) and only
covers what dwcore builds: RAID 5 with md's four rotating algorithms and
RAID 6 left-symmetric.

``GOLDEN`` holds literal tables produced once by this port and frozen here:
for each ``(level, n_devices, algorithm)`` one row per stripe, over two
rotation periods, of ``(data devices in logical order..., P device[, Q device])``.
"""

from __future__ import annotations

# md's algorithm numbers (include/linux/raid/pq.h / raid5.h).
ALGORITHM_LEFT_ASYMMETRIC = 0
ALGORITHM_RIGHT_ASYMMETRIC = 1
ALGORITHM_LEFT_SYMMETRIC = 2
ALGORITHM_RIGHT_SYMMETRIC = 3

MD_ALGORITHMS = {
    "left-asymmetric": ALGORITHM_LEFT_ASYMMETRIC,
    "right-asymmetric": ALGORITHM_RIGHT_ASYMMETRIC,
    "left-symmetric": ALGORITHM_LEFT_SYMMETRIC,
    "right-symmetric": ALGORITHM_RIGHT_SYMMETRIC,
}

SECTOR = 512


def raid5_compute_sector(
    r_sector: int, level: int, raid_disks: int, algorithm: int, sectors_per_chunk: int
) -> tuple[int, int, int, int]:
    """md's mapping of array sector -> (device sector, dd_idx, pd_idx, qd_idx).

    ``qd_idx`` is -1 for RAID 5.
    """
    max_degraded = 2 if level == 6 else 1
    data_disks = raid_disks - max_degraded
    chunk_number, chunk_offset = divmod(r_sector, sectors_per_chunk)
    stripe, dd_idx = divmod(chunk_number, data_disks)
    stripe2 = stripe
    pd_idx = qd_idx = -1
    if level == 5:
        if algorithm == ALGORITHM_LEFT_ASYMMETRIC:
            pd_idx = data_disks - stripe2 % raid_disks
            if dd_idx >= pd_idx:
                dd_idx += 1
        elif algorithm == ALGORITHM_RIGHT_ASYMMETRIC:
            pd_idx = stripe2 % raid_disks
            if dd_idx >= pd_idx:
                dd_idx += 1
        elif algorithm == ALGORITHM_LEFT_SYMMETRIC:
            pd_idx = data_disks - stripe2 % raid_disks
            dd_idx = (pd_idx + 1 + dd_idx) % raid_disks
        elif algorithm == ALGORITHM_RIGHT_SYMMETRIC:
            pd_idx = stripe2 % raid_disks
            dd_idx = (pd_idx + 1 + dd_idx) % raid_disks
        else:
            raise ValueError(f"algorithm {algorithm} not ported")
    elif level == 6:
        if algorithm != ALGORITHM_LEFT_SYMMETRIC:
            raise ValueError(f"RAID 6 algorithm {algorithm} not ported")
        pd_idx = raid_disks - 1 - stripe2 % raid_disks
        qd_idx = (pd_idx + 1) % raid_disks
        dd_idx = (pd_idx + 2 + dd_idx) % raid_disks
    else:
        raise ValueError(f"level {level} not ported")
    new_sector = stripe * sectors_per_chunk + chunk_offset
    return new_sector, dd_idx, pd_idx, qd_idx


def md_table(level: int, n: int, algorithm: str, stripes: int) -> list[tuple[int, ...]]:
    """Rows ``(data devices..., P[, Q])`` for stripes 0..stripes-1 from the port."""
    k = n - (2 if level == 6 else 1)
    spc = 8  # any chunk size: the table is in chunks
    rows = []
    for s in range(stripes):
        devs = []
        pq: tuple[int, ...] = ()
        for d in range(k):
            _, dd, pd, qd = raid5_compute_sector(
                (s * k + d) * spc, level, n, MD_ALGORITHMS[algorithm], spc
            )
            devs.append(dd)
            pq = (pd,) if level == 5 else (pd, qd)
        rows.append((*devs, *pq))
    return rows


# fmt: off
GOLDEN: dict[tuple[str, int, str], list[tuple[int, ...]]] = {
    ("5", 4, "left-symmetric"): [
        (0, 1, 2, 3),
        (3, 0, 1, 2),
        (2, 3, 0, 1),
        (1, 2, 3, 0),
        (0, 1, 2, 3),
        (3, 0, 1, 2),
        (2, 3, 0, 1),
        (1, 2, 3, 0),
    ],
    ("5", 5, "left-symmetric"): [
        (0, 1, 2, 3, 4),
        (4, 0, 1, 2, 3),
        (3, 4, 0, 1, 2),
        (2, 3, 4, 0, 1),
        (1, 2, 3, 4, 0),
        (0, 1, 2, 3, 4),
        (4, 0, 1, 2, 3),
        (3, 4, 0, 1, 2),
        (2, 3, 4, 0, 1),
        (1, 2, 3, 4, 0),
    ],
    ("5", 4, "left-asymmetric"): [
        (0, 1, 2, 3),
        (0, 1, 3, 2),
        (0, 2, 3, 1),
        (1, 2, 3, 0),
        (0, 1, 2, 3),
        (0, 1, 3, 2),
        (0, 2, 3, 1),
        (1, 2, 3, 0),
    ],
    ("5", 4, "right-symmetric"): [
        (1, 2, 3, 0),
        (2, 3, 0, 1),
        (3, 0, 1, 2),
        (0, 1, 2, 3),
        (1, 2, 3, 0),
        (2, 3, 0, 1),
        (3, 0, 1, 2),
        (0, 1, 2, 3),
    ],
    ("5", 4, "right-asymmetric"): [
        (1, 2, 3, 0),
        (0, 2, 3, 1),
        (0, 1, 3, 2),
        (0, 1, 2, 3),
        (1, 2, 3, 0),
        (0, 2, 3, 1),
        (0, 1, 3, 2),
        (0, 1, 2, 3),
    ],
    ("6", 5, "left-symmetric"): [
        (1, 2, 3, 4, 0),
        (0, 1, 2, 3, 4),
        (4, 0, 1, 2, 3),
        (3, 4, 0, 1, 2),
        (2, 3, 4, 0, 1),
        (1, 2, 3, 4, 0),
        (0, 1, 2, 3, 4),
        (4, 0, 1, 2, 3),
        (3, 4, 0, 1, 2),
        (2, 3, 4, 0, 1),
    ],
    ("6", 6, "left-symmetric"): [
        (1, 2, 3, 4, 5, 0),
        (0, 1, 2, 3, 4, 5),
        (5, 0, 1, 2, 3, 4),
        (4, 5, 0, 1, 2, 3),
        (3, 4, 5, 0, 1, 2),
        (2, 3, 4, 5, 0, 1),
        (1, 2, 3, 4, 5, 0),
        (0, 1, 2, 3, 4, 5),
        (5, 0, 1, 2, 3, 4),
        (4, 5, 0, 1, 2, 3),
        (3, 4, 5, 0, 1, 2),
        (2, 3, 4, 5, 0, 1),
    ],
}
# fmt: on
