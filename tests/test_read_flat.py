"""``_native.read_flat`` and ``read_segments``: the planned, verified healthy reads
of row layouts.

Cross-checked against a Python model of the same mapping on device files built
here (random geometry, ranges that start and end inside blocks), and through
the pool on plain files, where a corrupt block must still read back right.
"""

from __future__ import annotations

import errno
import os
import warnings

import numpy as np
import pytest

from dwcore._native import read_flat, read_segments
from dwcore.checksum import crc32c_blocks
from dwcore.devices import read_superblock
from dwcore.errors import InvalidArgumentError
from dwcore.pool import Pool, PoolDegradedWarning


class _Flat:
    """Device files laid out as read_flat expects, with the expected extent bytes."""

    def __init__(self, tmp_path, rng, nd: int, k: int, block: int, rpc: int, total: int) -> None:
        self.nd, self.k, self.block, self.rpc, self.total = nd, k, block, rpc, total
        period = int(rng.integers(1, 5))
        self.devmap = np.array(
            [rng.permutation(nd)[:k] for _ in range(period)], dtype=np.int32
        ).reshape(period, k)
        self.bases = [int(rng.integers(0, 3)) * 4096 + 512 for _ in range(nd)]
        self.table_off = total * block + 4096
        self.blocks = rng.integers(0, 256, size=(nd, total * block), dtype=np.uint8)
        self.paths = []
        for dev in range(nd):
            path = tmp_path / f"dev{dev}"
            image = bytearray(self.bases[dev] + self.table_off + 4 * total)
            at = self.bases[dev]
            image[at : at + total * block] = self.blocks[dev].tobytes()
            crcs = crc32c_blocks(self.blocks[dev], block).astype("<u4").tobytes()
            image[at + self.table_off : at + self.table_off + 4 * total] = crcs
            path.write_bytes(bytes(image))
            self.paths.append(path)
        self.fds = [os.open(p, os.O_RDONLY) for p in self.paths]

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)

    def expected(self, first: int, rows: int) -> bytes:
        """The data of rows first..first+rows: per stripe segment, member after member."""
        out = bytearray()
        g, end = first, first + rows
        b, period = self.block, len(self.devmap)
        while g < end:
            s, r = divmod(g, self.rpc)
            n = min(self.rpc - r, end - g)
            for d in range(self.k):
                dev = int(self.devmap[s % period][d])
                out += self.blocks[dev, g * b : (g + n) * b].tobytes()
            g += n
        return bytes(out)

    def read(self, first: int, rows: int, offset: int, end: int, fds=None) -> tuple[int, bytes]:
        dst = bytearray(end - offset)
        rc = read_flat(
            dst, offset, end, first, rows, self.rpc, self.block, self.k, self.devmap,
            list(self.fds if fds is None else fds), self.bases, self.table_off,
        )  # fmt: skip
        return rc, bytes(dst)


@pytest.mark.parametrize("seed", range(6))
def test_read_flat_matches_the_model(tmp_path, seed) -> None:
    rng = np.random.default_rng(seed)
    nd = int(rng.integers(2, 7))
    k = int(rng.integers(1, nd + 1))
    block = int(rng.choice([512, 1024, 4096]))
    rpc = int(rng.integers(1, 9))
    total = 40
    flat = _Flat(tmp_path, rng, nd, k, block, rpc, total)
    try:
        for _ in range(60):
            first = int(rng.integers(0, total))
            rows = int(rng.integers(1, total - first + 1))
            want = flat.expected(first, rows)
            a = int(rng.integers(0, len(want)))
            z = int(rng.integers(a, len(want) + 1))
            if rng.random() < 0.2:
                a, z = 0, len(want)  # whole extents too
            rc, got = flat.read(first, rows, a, z)
            assert rc == 0
            assert got == want[a:z]
    finally:
        flat.close()


@pytest.mark.parametrize("bad", [2, 65, 200])
def test_many_bad_blocks_in_one_piece_give_ebadmsg(tmp_path, bad: int) -> None:
    """Every block of a long piece failing its checksum (a zeroed stretch of a device):
    EBADMSG and nothing written outside dst.  The verifier once kept room for one bad
    block index only and overwrote the stack (a segfault in Adaptive reads)."""
    rng = np.random.default_rng(bad)
    flat = _Flat(tmp_path, rng, nd=2, k=1, block=512, rpc=256, total=256)
    try:
        want = flat.expected(0, 256)
        dev = int(flat.devmap[0][0])
        with open(flat.paths[dev], "r+b") as f:
            f.seek(flat.bases[dev] + 3 * 512)
            f.write(bytes(512 * bad))  # zeros: every one of these blocks is bad
        for a, z in [(0, len(want)), (100, 512 * (bad + 5) + 7)]:
            rc, _ = flat.read(0, 256, a, z)
            assert rc == errno.EBADMSG
        segments = np.array([[256, dev, 0]], dtype=np.int64)
        guard = bytearray(len(want) + 64)
        dst = memoryview(guard)[32 : 32 + len(want)]
        rc = read_segments(dst, 0, len(want), segments, 512, 1, list(flat.fds), flat.bases,
                           flat.table_off)  # fmt: skip
        assert rc == errno.EBADMSG
        assert guard[:32] == bytes(32) and guard[-32:] == bytes(32)
    finally:
        flat.close()


def test_read_flat_fails_on_a_bad_block_or_a_missing_device(tmp_path) -> None:
    rng = np.random.default_rng(7)
    flat = _Flat(tmp_path, rng, nd=4, k=3, block=512, rpc=4, total=16)
    try:
        want = flat.expected(0, 16)
        assert flat.read(0, 16, 0, len(want)) == (0, want)
        dev = int(flat.devmap[0][1])  # member 1 of stripe 0: rows 0..3 of dev
        with open(flat.paths[dev], "r+b") as f:
            f.seek(flat.bases[dev] + 2 * 512 + 100)
            f.write(b"\xff\x00\xee")
        rc, _ = flat.read(0, 16, 0, len(want))
        assert rc == errno.EBADMSG
        # a range that reads only other blocks still succeeds
        rc, got = flat.read(0, 16, 0, 512 * 4)
        assert (rc, got) == (0, want[: 512 * 4])
        # a bad block is caught even when only part of it is asked for (an edge)
        start = 4 * 512 + 2 * 512 + 90  # member 1 of stripe 0 starts at byte 4*512
        rc, _ = flat.read(0, 16, start, start + 20)
        assert rc == errno.EBADMSG
        fds = list(flat.fds)
        fds[int(flat.devmap[0][0])] = -1
        rc, _ = flat.read(0, 4, 0, 512 * 4, fds)
        assert rc == errno.ENODEV
        # a device the range does not touch may lack one
        rc, got = flat.read(0, 4, 512 * 8, 512 * 12, fds)  # member 2, not the corrupt one
        assert (rc, got) == (0, want[512 * 8 : 512 * 12])
    finally:
        flat.close()


def test_read_flat_rejects_bad_arguments(tmp_path) -> None:
    rng = np.random.default_rng(3)
    flat = _Flat(tmp_path, rng, nd=3, k=2, block=512, rpc=2, total=8)
    args = dict(first=0, rows=8, rows_per_chunk=2, block=512, k=2, devmap=flat.devmap)
    try:
        base = (flat.fds, flat.bases, flat.table_off)
        with pytest.raises(InvalidArgumentError, match="not inside"):
            read_flat(bytearray(10), 0, 8 * 2 * 512 + 1, *args.values(), *base)
        with pytest.raises(InvalidArgumentError, match="dst holds"):
            read_flat(bytearray(10), 0, 11, *args.values(), *base)
        with pytest.raises(InvalidArgumentError, match="bases"):
            read_flat(bytearray(10), 0, 10, *args.values(), flat.fds, [0], flat.table_off)
        bad = flat.devmap.copy()
        bad[0, 0] = 3
        with pytest.raises(InvalidArgumentError, match="device index"):
            read_flat(bytearray(10), 0, 10, 0, 8, 2, 512, 2, bad, *base)
        with pytest.raises(InvalidArgumentError, match="period"):
            read_flat(bytearray(10), 0, 10, 0, 8, 2, 512, 2, np.zeros(3, np.int32), *base)
        with pytest.raises(InvalidArgumentError, match="must be > 0"):
            read_flat(bytearray(10), 0, 10, 0, 8, 2, 0, 2, flat.devmap, *base)
        with pytest.raises(InvalidArgumentError, match="writable"):
            read_flat(b"read-only!", 0, 10, *args.values(), *base)
    finally:
        flat.close()


@pytest.mark.parametrize("seed", range(4))
def test_read_segments_matches_the_model(tmp_path, seed) -> None:
    """Members anywhere on any device (gaps, out of order): the bytes and the checks
    follow the segment table."""
    rng = np.random.default_rng(100 + seed)
    nd, k, block, total = 4, int(rng.integers(1, 4)), 512, 64
    flat = _Flat(tmp_path, rng, nd, 1, block, 1, total)  # device files and their tables
    try:
        for _ in range(40):
            cursor = [int(x) for x in rng.integers(0, 4, size=nd)]
            table, want = [], bytearray()
            for _ in range(int(rng.integers(1, 5))):
                n = int(rng.integers(1, 4))
                row = [n]
                for _ in range(k):
                    dev = int(rng.integers(0, nd))
                    if cursor[dev] + n > total:
                        dev = min(range(nd), key=lambda d: cursor[d])
                    if cursor[dev] + n > total:
                        break
                    row += (dev, cursor[dev])
                    at = cursor[dev] * block
                    want += flat.blocks[dev, at : at + n * block].tobytes()
                    cursor[dev] += n + int(rng.integers(0, 3))
                if len(row) < 1 + 2 * k:
                    break
                table.append(row)
            if not table:
                continue
            want = want[: sum(r[0] for r in table) * k * block]
            a = int(rng.integers(0, len(want)))
            z = int(rng.integers(a, len(want) + 1))
            dst = bytearray(z - a)
            segs = np.array(table, dtype=np.int64)
            rc = read_segments(dst, a, z, segs, block, k, flat.fds, flat.bases, flat.table_off)
            assert rc == 0
            assert bytes(dst) == bytes(want[a:z])
            # members on device -1 are left as they were, for the caller to fill
            holes = segs.copy()
            hole = np.zeros((len(table), k), dtype=bool)
            hole[rng.random(hole.shape) < 0.4] = True
            holes[:, 1::2][hole] = -1
            expect = bytearray(want)
            at = 0
            for i, row in enumerate(table):
                for d in range(k):
                    n = row[0] * block
                    if hole[i, d]:
                        expect[at : at + n] = b"\xa5" * n
                    at += n
            dst = bytearray(b"\xa5" * (z - a))
            rc = read_segments(dst, a, z, holes, block, k, flat.fds, flat.bases, flat.table_off)
            assert rc == 0
            assert bytes(dst) == bytes(expect[a:z])
        with pytest.raises(InvalidArgumentError, match="int64 rows"):
            read_segments(bytearray(1), 0, 1, np.zeros((1, 3), np.int32), block, 1,
                          flat.fds, flat.bases, flat.table_off)  # fmt: skip
        with pytest.raises(InvalidArgumentError, match="out of range"):
            read_segments(bytearray(1), 0, 1, np.array([[1, 9, 0]]), block, 1,
                          flat.fds, flat.bases, flat.table_off)  # fmt: skip
    finally:
        flat.close()


def _check_ranges(pool: Pool, blobs: list[bytes], exts: list, rng) -> None:
    """Every extent whole and five random ranges of it read back right."""
    for blob, ext in zip(blobs, exts, strict=True):
        assert pool.read(ext) == blob
        for _ in range(5):
            a = int(rng.integers(0, len(blob)))
            z = int(rng.integers(a, len(blob) + 1))
            assert pool.read(ext, a, z - a) == blob[a:z]


_ROW_LAYOUTS = [("0", 3), ("1", 2), ("5", 4), ("6", 5), ("10", 4), ("50", 6), ("1E", 3)]
_ROW_LAYOUTS += [("MD10", 4), ("DECLUSTERED", 8), ("FR", 8), ("Z1", 4), ("Z2", 5), ("Z3", 6)]
_ROW_LAYOUTS += [("BEYOND", 4), ("ADAPTIVE", 4)]


@pytest.mark.parametrize(("level", "n"), _ROW_LAYOUTS)
def test_pool_reads_of_plain_files_match_and_repair(tmp_path, monkeypatch, level, n) -> None:
    """Through the pool on plain files (the native path), every range reads right, and
    a block corrupted on a device reads right too and is rewritten."""
    import dwcore.pool.pool as pool_module

    calls = [0]
    for name in ("read_flat", "read_segments"):
        real = getattr(pool_module, name)

        def counted(*args, _real=real):
            calls[0] += 1
            return _real(*args)

        monkeypatch.setattr(pool_module, name, counted)
    rng = np.random.default_rng(n)
    opts = {"MD10": {"far": 2}, "BEYOND": {"zone_size": 1 << 20}}.get(level, {})
    pool = Pool.create(tmp_path / "p", level, n, 16 << 20, chunk_size=16 << 10, **opts)
    try:
        blobs = [rng.bytes(int(rng.integers(1, 200_000))) for _ in range(12)]
        exts = [pool.write(b) for b in blobs]
        _check_ranges(pool, blobs, exts, rng)
        assert calls[0] >= 6 * len(blobs)  # the healthy reads took the native path
        if level == "0":
            return  # nothing to repair from
        # corrupt each run of the extent in turn: the read returns the right bytes, and
        # repairs the blocks it read (the redundancy it does not read, scrub repairs)
        big = max(range(len(blobs)), key=lambda i: len(blobs[i]))
        repaired_by_read = 0
        for dev, at, _ in pool.physical(exts[big]):
            base = read_superblock(pool.devices[dev]).data_offset
            pool.devices[dev].pwrite(base + at + 10, os.urandom(16))
            assert pool.read(exts[big]) == blobs[big]
            assert pool.read(exts[big], 5, 100) == blobs[big][5:105]
            if pool.scrub(repair=False).clean:
                repaired_by_read += 1
            assert pool.scrub(repair=True).unrepaired == 0
            assert pool.scrub(repair=False).clean
        assert repaired_by_read >= 1
        # degraded as far as the level allows: every range still reads right
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PoolDegradedWarning)
            for dev in range(pool.layout.fault_tolerance):
                pool.fail_device(dev)
        _check_ranges(pool, blobs, exts, rng)
    finally:
        pool.close()
