"""A literal port of OpenZFS ``vdev_raidz_map_alloc`` (module/zfs/vdev_raidz.c), for tests.

Written statement by statement from the C (variable names kept: b, s, f, o,
q, r, bc, tot, acols, scols, coff, rm_nskip, rm_skipstart), independently of
:mod:`dwcore.raid.raidz`, so the golden maps in the tests come from here.
Offsets are in bytes as in ZFS (``rc_offset``); the tests divide by the
sector size.  Also a pure-Python ZFS-order parity (P, Q = Horner by 2,
R = Horner by 4 over the data columns, short columns as zeros).
"""

from __future__ import annotations


def map_alloc(io_offset: int, io_size: int, ashift: int, dcols: int, nparity: int) -> dict:
    """``rm`` as a dict: cols [(devidx, offset bytes, size bytes)], nskip, skipstart, bigcols."""
    b = io_offset >> ashift
    s = io_size >> ashift
    f = b % dcols
    o = (b // dcols) << ashift
    q = s // (dcols - nparity)
    r = s - q * (dcols - nparity)
    bc = 0 if r == 0 else r + nparity
    tot = s + nparity * (q + (0 if r == 0 else 1))
    if q == 0:
        acols = bc
        scols = min(dcols, ((bc + nparity) // (nparity + 1)) * (nparity + 1))
    else:
        acols = dcols
        scols = dcols
    assert acols <= scols
    cols = []
    asize = 0
    for c in range(scols):
        col = f + c
        coff = o
        if col >= dcols:
            col -= dcols
            coff += 1 << ashift
        if c >= acols:
            size = 0
        elif c < bc:
            size = (q + 1) << ashift
        else:
            size = q << ashift
        asize += size
        cols.append([col, coff, size])
    assert asize == tot << ashift
    rm_nskip = ((tot + nparity) // (nparity + 1)) * (nparity + 1) - tot
    rm_skipstart = bc
    assert acols >= 2 or nparity == 0
    if nparity == 1 and (io_offset & (1 << 20)):
        devidx, oo = cols[0][0], cols[0][1]
        cols[0][0], cols[0][1] = cols[1][0], cols[1][1]
        cols[1][0], cols[1][1] = devidx, oo
        if rm_skipstart == 0:
            rm_skipstart = 1
    return {
        "cols": [tuple(c) for c in cols[:acols]],
        "scols": [tuple(c) for c in cols],
        "nskip": rm_nskip,
        "skipstart": rm_skipstart,
        "bigcols": bc,
        "tot": tot,
    }


def skip_sectors(rm: dict, ashift: int) -> list[tuple[int, int]]:
    """(device, sector) of each skip sector: column (skipstart + i) mod scols, after its data."""
    out = []
    scols = rm["scols"]
    for i in range(rm["nskip"]):
        dev, off, size = scols[(rm["skipstart"] + i) % len(scols)]
        out.append((dev, (off + size) >> ashift))
    return out


def _mul2(x: int) -> int:
    x <<= 1
    return (x ^ 0x11D) & 0xFF if x & 0x100 else x


def zfs_parity(data_cols: list[bytes], rows: int, sector: int, nparity: int) -> list[bytes]:
    """P[, Q[, R]] of data columns (each ``size`` sectors ≤ rows) in ZFS order, byte by byte."""
    length = rows * sector
    p = bytearray(length)
    q = bytearray(length)
    r = bytearray(length)
    for col in data_cols:
        padded = col + bytes(length - len(col))
        for i in range(length):
            d = padded[i]
            p[i] ^= d
            q[i] = _mul2(q[i]) ^ d
            r[i] = _mul2(_mul2(r[i])) ^ d
    return [bytes(p), bytes(q), bytes(r)][:nparity]
