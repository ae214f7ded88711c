"""Golden md raid10 placement: a port of Linux md's ``__raid10_find_phys`` and ``calc_sectors``.

Written from ``drivers/md/raid10.c`` in md's own units (512-byte sectors,
``chunk_shift``/``chunk_mask``, ``sector_div``), independently of
``dwcore.raid.md10`` (no shared code).  ``setup_geo`` decodes the layout
word: near copies in bits 0-7, far copies in bits 8-15, far_offset in bit 16,
the far-set variant in bits 17-18 (0: one set of all disks, 2: sets of
near·far disks with the last absorbing the remainder).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Geo:
    """md's ``struct geom`` (the fields the mapping uses)."""

    raid_disks: int
    near_copies: int
    far_copies: int
    far_offset: int
    far_set_size: int
    chunk_shift: int
    stride: int  # sectors

    @property
    def chunk_mask(self) -> int:
        return (1 << self.chunk_shift) - 1


def layout_word(near: int, far: int, offset: bool, variant: int = 0) -> int:
    """mdadm's layout number for ``n<near>``/``f<far>``/``o<far>`` (and a far-set variant)."""
    return near | (far << 8) | ((1 << 16) if offset else 0) | (variant << 17)


def setup_geo(layout: int, raid_disks: int, chunk_sectors: int) -> Geo:
    """The decoding part of md's ``setup_geo`` (stride is filled in by :func:`calc_sectors`)."""
    nc = layout & 255
    fc = (layout >> 8) & 255
    fo = layout & (1 << 16)
    variant = layout >> 17
    if variant == 0:
        fss = raid_disks
    elif variant == 2:
        fss = fc * nc
    else:
        raise ValueError(f"far-set variant {variant} not ported")
    shift = chunk_sectors.bit_length() - 1
    return Geo(raid_disks, nc, fc, 1 if fo else 0, fss, shift, 0)


def calc_sectors(geo: Geo, size: int) -> tuple[int, Geo]:
    """md's ``calc_sectors``: (dev_sectors, geo with stride) for ``size`` sectors per device."""
    copies = geo.near_copies * geo.far_copies
    size = size >> geo.chunk_shift
    size = size // geo.far_copies
    size = size * geo.raid_disks
    size = size // geo.near_copies
    size = size * copies
    size = -(-size // geo.raid_disks)  # DIV_ROUND_UP_SECTOR_T
    dev_sectors = size << geo.chunk_shift
    if geo.far_offset:
        stride = 1 << geo.chunk_shift
    else:
        size = size // geo.far_copies
        stride = size << geo.chunk_shift
    return dev_sectors, Geo(
        geo.raid_disks,
        geo.near_copies,
        geo.far_copies,
        geo.far_offset,
        geo.far_set_size,
        geo.chunk_shift,
        stride,
    )


def raid10_find_phys(geo: Geo, r_sector: int) -> list[tuple[int, int]]:
    """md's ``__raid10_find_phys``: ``(devnum, addr)`` for every copy, in slot order."""
    last_far_set_start = (geo.raid_disks // geo.far_set_size) - 1
    last_far_set_start *= geo.far_set_size
    last_far_set_size = geo.far_set_size
    last_far_set_size += geo.raid_disks % geo.far_set_size

    chunk = r_sector >> geo.chunk_shift
    sector = r_sector & geo.chunk_mask
    chunk *= geo.near_copies
    stripe = chunk
    dev = stripe % geo.raid_disks
    stripe //= geo.raid_disks
    if geo.far_offset:
        stripe *= geo.far_copies
    sector += stripe << geo.chunk_shift

    out: list[tuple[int, int]] = []
    for _n in range(geo.near_copies):
        d = dev
        s = sector
        out.append((d, s))
        for _f in range(1, geo.far_copies):
            st = d // geo.far_set_size
            d += geo.near_copies
            if (geo.raid_disks % geo.far_set_size) and (d > last_far_set_start):
                d -= last_far_set_start
                d %= last_far_set_size
                d += last_far_set_start
            else:
                d %= geo.far_set_size
                d += geo.far_set_size * st
            s += geo.stride
            out.append((d, s))
        dev += 1
        if dev >= geo.raid_disks:
            dev = 0
            sector += geo.chunk_mask + 1
    return out


def md10_table(
    n: int, near: int, far: int, offset: bool, variant: int, dev_chunks: int, chunks: int
) -> list[tuple[tuple[int, int], ...]]:
    """For logical chunks 0..chunks-1: every copy as ``(device, device chunk)``."""
    spc = 8  # 4 KiB chunks; the table is in chunks
    geo = setup_geo(layout_word(near, far, offset, variant), n, spc)
    _, geo = calc_sectors(geo, dev_chunks * spc)
    return [tuple((d, s // spc) for d, s in raid10_find_phys(geo, x * spc)) for x in range(chunks)]


# Frozen output of md10_table (n, near, far, offset, variant, dev_chunks) -> rows, for
# logical chunks 0 .. 2N-1 (two near-row periods).  They agree with md's documented
# pictures: n2 on 3 disks "A A B / B C C", f2 on 4 disks the far copies shifted one
# disk in the second half, o2 "A B C / C A B".
# fmt: off
GOLDEN: dict[tuple[int, int, int, bool, int, int], list[tuple[tuple[int, int], ...]]] = {
    (4, 2, 1, False, 0, 8): [
        ((0, 0), (1, 0)),
        ((2, 0), (3, 0)),
        ((0, 1), (1, 1)),
        ((2, 1), (3, 1)),
        ((0, 2), (1, 2)),
        ((2, 2), (3, 2)),
        ((0, 3), (1, 3)),
        ((2, 3), (3, 3)),
    ],
    (3, 2, 1, False, 0, 8): [
        ((0, 0), (1, 0)),
        ((2, 0), (0, 1)),
        ((1, 1), (2, 1)),
        ((0, 2), (1, 2)),
        ((2, 2), (0, 3)),
        ((1, 3), (2, 3)),
    ],
    (5, 2, 1, False, 0, 8): [
        ((0, 0), (1, 0)),
        ((2, 0), (3, 0)),
        ((4, 0), (0, 1)),
        ((1, 1), (2, 1)),
        ((3, 1), (4, 1)),
        ((0, 2), (1, 2)),
        ((2, 2), (3, 2)),
        ((4, 2), (0, 3)),
        ((1, 3), (2, 3)),
        ((3, 3), (4, 3)),
    ],
    (4, 1, 2, False, 0, 8): [
        ((0, 0), (1, 4)),
        ((1, 0), (2, 4)),
        ((2, 0), (3, 4)),
        ((3, 0), (0, 4)),
        ((0, 1), (1, 5)),
        ((1, 1), (2, 5)),
        ((2, 1), (3, 5)),
        ((3, 1), (0, 5)),
    ],
    (3, 1, 2, False, 0, 12): [
        ((0, 0), (1, 6)),
        ((1, 0), (2, 6)),
        ((2, 0), (0, 6)),
        ((0, 1), (1, 7)),
        ((1, 1), (2, 7)),
        ((2, 1), (0, 7)),
    ],
    (3, 1, 2, True, 0, 8): [
        ((0, 0), (1, 1)),
        ((1, 0), (2, 1)),
        ((2, 0), (0, 1)),
        ((0, 2), (1, 3)),
        ((1, 2), (2, 3)),
        ((2, 2), (0, 3)),
    ],
    (4, 1, 3, True, 0, 9): [
        ((0, 0), (1, 1), (2, 2)),
        ((1, 0), (2, 1), (3, 2)),
        ((2, 0), (3, 1), (0, 2)),
        ((3, 0), (0, 1), (1, 2)),
        ((0, 3), (1, 4), (2, 5)),
        ((1, 3), (2, 4), (3, 5)),
        ((2, 3), (3, 4), (0, 5)),
        ((3, 3), (0, 4), (1, 5)),
    ],
    (5, 2, 2, False, 0, 8): [
        ((0, 0), (2, 4), (1, 0), (3, 4)),
        ((2, 0), (4, 4), (3, 0), (0, 4)),
        ((4, 0), (1, 4), (0, 1), (2, 5)),
        ((1, 1), (3, 5), (2, 1), (4, 5)),
        ((3, 1), (0, 5), (4, 1), (1, 5)),
        ((0, 2), (2, 6), (1, 2), (3, 6)),
        ((2, 2), (4, 6), (3, 2), (0, 6)),
        ((4, 2), (1, 6), (0, 3), (2, 7)),
        ((1, 3), (3, 7), (2, 3), (4, 7)),
        ((3, 3), (0, 7), (4, 3), (1, 7)),
    ],
    (5, 1, 2, False, 2, 8): [
        ((0, 0), (1, 4)),
        ((1, 0), (0, 4)),
        ((2, 0), (3, 4)),
        ((3, 0), (4, 4)),
        ((4, 0), (2, 4)),
        ((0, 1), (1, 5)),
        ((1, 1), (0, 5)),
        ((2, 1), (3, 5)),
        ((3, 1), (4, 5)),
        ((4, 1), (2, 5)),
    ],
}
# fmt: on
