"""Tests of dwcore.devices: file, block, RAM and fault-injecting devices, superblocks, probe."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from dwcore.checksum import crc32c
from dwcore.devices import (
    FORMAT_VERSION,
    METADATA_SIZE,
    MIN_DEVICE_SIZE,
    SUPERBLOCK_SIZE,
    BlockDevice,
    Device,
    DeviceBoundsError,
    DeviceClosedError,
    DeviceInUseError,
    DeviceIOError,
    FaultyDevice,
    FileDevice,
    ForeignDeviceError,
    MissingSuperblockError,
    RamDevice,
    ResilientDevice,
    Superblock,
    SuperblockFlags,
    check_member,
    check_unused,
    data_area,
    probe,
    read_superblock,
    read_superblock_copies,
    superblock_offsets,
    write_superblock,
)
from dwcore.errors import CorruptionError, DWError, InvalidArgumentError, UnsupportedFormatError
from dwcore.resilience.breaker import BreakerState

MiB = 1 << 20
DEV_SIZE = 4 * MiB + 12345  # deliberately not a multiple of any block size


# -- fixtures ---------------------------------------------------------------------


def _loop_device(path: str) -> str | None:
    """Attach ``path`` to a loop device; None (with no side effect) where impossible."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        return None
    try:
        out = subprocess.run(
            ["losetup", "-f", "--show", path], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.startswith("/dev/") else None


@pytest.fixture
def loop_path(tmp_path) -> Iterator[str]:
    """A 4 MiB loop device (skipped with the reason where one cannot be made)."""
    backing = tmp_path / "loop.img"
    backing.write_bytes(b"")
    os.truncate(backing, 4 * MiB)
    dev = _loop_device(str(backing))
    if dev is None:
        pytest.skip("no loop device: needs root and a working losetup")
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True, timeout=10)


def _make(kind: str, tmp_path, request) -> Device:
    if kind == "ram":
        return RamDevice(DEV_SIZE)
    if kind == "file":
        return FileDevice.create(tmp_path / "dev.img", DEV_SIZE)
    if kind == "block-file":
        path = tmp_path / "blk.img"
        FileDevice.create(path, DEV_SIZE).close()
        dev = BlockDevice.open(path)
        if not dev.direct:
            dev.close()
            pytest.skip(f"the file system under {tmp_path} refuses O_DIRECT")
        return dev
    if kind == "block-loop":
        return BlockDevice.open(request.getfixturevalue("loop_path"))
    if kind == "faulty":
        return FaultyDevice(RamDevice(DEV_SIZE))
    raise AssertionError(kind)


@pytest.fixture(params=["ram", "file", "block-file", "block-loop", "faulty"])
def device(request, tmp_path) -> Iterator[Device]:
    dev = _make(request.param, tmp_path, request)
    yield dev
    dev.close()


def _image(dev: Device) -> bytes:
    return dev.pread(0, dev.size)


# -- round trips ------------------------------------------------------------------


def test_round_trip_odd_offsets(device, rng) -> None:
    size = device.size
    ref = bytearray(_image(device))
    for _ in range(60):
        length = int(rng.integers(0, 3 * 4096 + 7))
        offset = int(rng.integers(0, size - length + 1))
        data = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()
        assert device.pwrite(offset, data) == length
        ref[offset : offset + length] = data
    # The edges of the device, and a write from a misaligned read-only view.
    device.pwrite(size - 3, b"end")
    ref[size - 3 :] = b"end"
    backing = bytes(range(256)) * 40
    device.pwrite(4096, memoryview(backing)[1:8193])
    ref[4096 : 4096 + 8192] = backing[1:8193]
    device.sync()
    assert _image(device) == ref
    for _ in range(40):
        length = int(rng.integers(1, 9000))
        offset = int(rng.integers(0, size - length + 1))
        assert device.pread(offset, length) == ref[offset : offset + length]
        buf = np.zeros(length + 3, dtype=np.uint8)
        assert device.preadinto(offset, memoryview(buf)[3:]) == length
        assert buf[3:].tobytes() == ref[offset : offset + length]
    # Aligned requests into an aligned buffer (the O_DIRECT fast path on block devices).
    aligned = np.zeros(8192 + 4096, dtype=np.uint8)
    start = (-aligned.ctypes.data) % 4096
    view = memoryview(aligned)[start : start + 8192]
    device.preadinto(8192, view)
    assert bytes(view) == ref[8192 : 8192 + 8192]
    device.pwrite(8192, view)
    assert device.pread(0, 0) == b""
    assert device.preadinto(0, bytearray()) == 0
    assert device.pwrite(size, b"") == 0


def test_vectored_io(device, rng) -> None:
    """pwritev / preadvinto equal writing and reading the concatenation."""
    size = device.size
    ref = bytearray(_image(device))
    for _ in range(30):
        parts = [rng.bytes(int(rng.integers(0, 9000))) for _ in range(int(rng.integers(0, 6)))]
        total = sum(len(p) for p in parts)
        offset = int(rng.integers(0, size - total + 1))
        bufs = [memoryview(p) if i % 2 else np.frombuffer(p, np.uint8) for i, p in enumerate(parts)]
        assert device.pwritev(offset, bufs) == total
        ref[offset : offset + total] = b"".join(parts)
        sinks = [np.zeros(len(p), np.uint8) for p in parts]
        assert device.preadvinto(offset, sinks) == total
        assert b"".join(x.tobytes() for x in sinks) == ref[offset : offset + total]
    assert _image(device) == ref
    with pytest.raises(DeviceBoundsError):
        device.pwritev(size - 3, [b"ab", b"cd"])
    with pytest.raises(DeviceBoundsError):
        device.preadvinto(size - 3, [bytearray(2), bytearray(2)])
    with pytest.raises(InvalidArgumentError, match="writable"):
        device.preadvinto(0, [bytearray(2), b"ro"])
    assert _image(device) == ref


def test_pwritev_batch(device, rng) -> None:
    """A batch of gathered writes equals its pwritev calls in order (later ones win)."""
    size = device.size
    ref = bytearray(_image(device))
    for _ in range(20):
        batch = []
        for _ in range(int(rng.integers(0, 4))):
            parts = [rng.bytes(int(rng.integers(0, 5000))) for _ in range(int(rng.integers(0, 4)))]
            total = sum(len(p) for p in parts)
            offset = int(rng.integers(0, size - total + 1))
            batch.append((offset, [np.frombuffer(p, np.uint8) for p in parts]))
            ref[offset : offset + total] = b"".join(parts)
        assert device.pwritev_batch(batch) == sum(sum(len(b) for b in bufs) for _, bufs in batch)
    assert _image(device) == ref
    with pytest.raises(DeviceBoundsError):  # checked before anything is written
        device.pwritev_batch([(0, [b"new"]), (size - 3, [b"ab", b"cd"])])
    assert _image(device) == ref


def test_unsynced_tracks_writes_since_the_last_sync(device) -> None:
    device.sync()
    assert not device.unsynced
    device.pwrite(0, b"x")
    assert device.unsynced
    device.sync()
    assert not device.unsynced
    device.pwritev(10, [b"a", b"b"])
    assert device.unsynced
    device.sync()
    device.pwritev_batch([(20, [b"c"])])
    assert device.unsynced
    device.sync()
    device.pread(0, 4)
    assert not device.unsynced  # reads leave nothing to flush


def test_a_failed_sync_leaves_the_writes_unsynced(faulty) -> None:
    faulty.pwrite(0, b"data")
    faulty.fail_now("write")  # syncs fail once writes do
    with pytest.raises(DeviceIOError):
        faulty.sync()
    assert faulty.unsynced
    faulty.heal()
    faulty.sync()
    assert not faulty.unsynced


def test_vectored_io_short_transfers(tmp_path, monkeypatch) -> None:
    """A file device resumes short vectored transfers inside the buffer they stopped in."""
    dev = FileDevice.create(tmp_path / "short.img", DEV_SIZE)
    real_w, real_r = os.pwritev, os.preadv

    def short_w(fd, bufs, offset):
        return real_w(fd, [memoryview(bufs[0])[:3]], offset)

    def short_r(fd, bufs, offset):
        return real_r(fd, [memoryview(bufs[0])[:5]], offset)

    parts = [b"0123456789", b"", b"abcdefghij" * 3, b"XYZ"]
    monkeypatch.setattr(os, "pwritev", short_w)
    assert dev.pwritev(100, parts) == 43
    monkeypatch.setattr(os, "preadv", short_r)
    sinks = [bytearray(10), bytearray(0), bytearray(30), bytearray(3)]
    assert dev.preadvinto(100, sinks) == 43
    assert b"".join(sinks) == b"".join(parts)
    monkeypatch.undo()
    assert dev.pread(100, 43) == b"".join(parts)
    dev.close()


def test_other_buffer_types(device) -> None:
    arr = np.arange(1000, dtype=np.uint32)
    device.pwrite(777, arr)
    out = np.empty(1000, dtype=np.uint32)
    device.preadinto(777, out)
    assert (out == arr).all()
    with pytest.raises(InvalidArgumentError, match="writable"):
        device.preadinto(0, b"abc")
    with pytest.raises(InvalidArgumentError, match="bytes-like"):
        device.pwrite(0, "text")
    with pytest.raises(InvalidArgumentError, match="offset must be an int"):
        device.pread(1.5, 3)


@pytest.mark.parametrize(
    ("offset", "length"), [(-1, 1), (0, -1), (DEV_SIZE, 1), (DEV_SIZE - 1, 2), (0, DEV_SIZE + 1)]
)
def test_bounds(device, offset, length) -> None:
    with pytest.raises(DeviceBoundsError, match=r"outside the device") as info:
        device.pread(offset, length)
    assert isinstance(info.value, InvalidArgumentError)
    assert info.value.device == device.path
    if length >= 0:
        with pytest.raises(DeviceBoundsError):
            device.pwrite(offset, b"x" * length)
        with pytest.raises(DeviceBoundsError):
            device.preadinto(offset, bytearray(length))


def test_closed(device) -> None:
    device.pwrite(0, b"abc")
    with device as same:
        assert same is device
    assert device.closed
    device.close()  # twice is fine
    for call in (
        lambda: device.pread(0, 1),
        lambda: device.pwrite(0, b"a"),
        lambda: device.preadinto(0, bytearray(1)),
        device.sync,
    ):
        with pytest.raises(DeviceClosedError, match="closed"):
            call()
    assert "closed" in repr(device) and str(device.size) in device.describe()


def test_concurrent_disjoint_io(device, rng) -> None:
    """Threads write interleaved 1000-byte pieces (sharing 4 KiB blocks) and read them back."""
    nthreads, pieces, piece = 8, 40, 1000
    payloads = [
        rng.integers(0, 256, size=pieces * piece, dtype=np.uint8).tobytes() for _ in range(nthreads)
    ]
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(pieces):
                off = (i * nthreads + t) * piece
                device.pwrite(off, payloads[t][i * piece : (i + 1) * piece])
            for i in range(pieces):
                off = (i * nthreads + t) * piece
                assert device.pread(off, piece) == payloads[t][i * piece : (i + 1) * piece]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for t in range(nthreads):
        for i in range(pieces):
            off = (i * nthreads + t) * piece
            assert device.pread(off, piece) == payloads[t][i * piece : (i + 1) * piece]


def test_close_waits_for_requests_in_flight() -> None:
    dev = FaultyDevice(RamDevice(8192), latency=0.2)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(dev.pread(0, 4)))
    reader.start()
    deadline = time.monotonic() + 10
    while dev.stats.reads == 0 and time.monotonic() < deadline:  # the read is in flight
        time.sleep(0.001)
    dev.close()  # must not pull the memory from under the read
    reader.join()
    assert got == [bytes(4)] and dev.closed and dev.inner.closed


# -- file, block and RAM specifics ---------------------------------------------------


def test_file_device_create_open(tmp_path) -> None:
    path = tmp_path / "d.img"
    with FileDevice.create(path, 1 << 30) as dev:
        assert dev.size == 1 << 30
        dev.pwrite(123456789, b"x")
        dev.sync()
    assert os.stat(path).st_blocks * 512 < 1 << 20  # sparse
    with pytest.raises(DeviceIOError, match="cannot open") as info:
        FileDevice.create(path, 4096)
    assert info.value.errno == errno.EEXIST and isinstance(info.value, OSError)
    with FileDevice.open(path) as dev:
        assert dev.pread(123456789, 1) == b"x"
        with pytest.raises(DeviceInUseError, match="already open"):
            FileDevice.open(path)
    with FileDevice.open(path, readonly=True) as ro:
        assert ro.readonly and ro.pread(123456789, 1) == b"x"
        with pytest.raises(InvalidArgumentError, match="read-only"):
            ro.pwrite(0, b"y")
    with FileDevice.create(path, 8192, overwrite=True) as dev:
        assert dev.size == 8192 and dev.pread(0, 8192) == bytes(8192)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="size"):
            FileDevice.create(tmp_path / "bad.img", bad)
    with pytest.raises(DeviceIOError, match="cannot open"):
        FileDevice.open(tmp_path / "missing.img")
    with pytest.raises(DeviceIOError, match="directory"):
        FileDevice.open(tmp_path)
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        FileDevice.open("/dev/null", lock=False)


def test_absurd_sizes_change_nothing(tmp_path) -> None:
    path = tmp_path / "huge.img"
    with pytest.raises(DeviceIOError, match="cannot size") as info:
        FileDevice.create(path, 1 << 62)
    assert info.value.errno == errno.EFBIG and not path.exists()
    with pytest.raises(InvalidArgumentError, match="size must be"):
        FileDevice.create(path, 1 << 70)
    assert not path.exists()
    with pytest.raises(InvalidArgumentError, match="RAM device"):
        RamDevice(1 << 62)
    with pytest.raises(InvalidArgumentError, match="neither a block device"):
        BlockDevice.open("/dev/null", lock=False)
    with pytest.raises(DeviceIOError, match="cannot open"):
        BlockDevice.open(tmp_path / "missing")


def test_overwrite_refuses_an_open_device(tmp_path) -> None:
    path = tmp_path / "busy.img"
    with FileDevice.create(path, 8192) as dev:
        dev.pwrite(0, b"precious")
        with pytest.raises(DeviceInUseError):
            FileDevice.create(path, 4096, overwrite=True)
        assert dev.pread(0, 8) == b"precious" and os.path.getsize(path) == 8192


def test_file_device_truncated_underneath(tmp_path) -> None:
    path = tmp_path / "d.img"
    with FileDevice.create(path, 65536) as dev:
        os.truncate(path, 1000)
        with pytest.raises(DeviceIOError, match="truncated"):
            dev.pread(2000, 100)


def test_block_device_on_loop(loop_path) -> None:
    with BlockDevice.open(loop_path) as dev:
        assert dev.size == 4 * MiB
        assert dev.block_size in (512, 1024, 2048, 4096)
        assert dev.direct and "O_DIRECT" in dev.describe()
        dev.pwrite(dev.block_size - 1, b"straddle")
        dev.sync()
        assert dev.pread(dev.block_size - 1, 8) == b"straddle"


def test_block_device_buffered_and_file_tail(tmp_path) -> None:
    path = tmp_path / "b.img"
    FileDevice.create(path, 3 * 4096 + 100).close()
    with BlockDevice.open(path, direct=False) as dev:
        assert not dev.direct and "buffered" in dev.describe()
        dev.pwrite(10, b"abc")
        assert dev.pread(10, 3) == b"abc"
    with BlockDevice.open(path) as dev:
        assert dev.block_size == 4096
        dev.pwrite(3 * 4096 + 90, b"0123456789")  # the partial last block
        assert dev.pread(3 * 4096 + 88, 12) == b"\0\0" + b"0123456789"
        assert dev.pread(10, 3) == b"abc"


def test_ram_device() -> None:
    with RamDevice(10_000, name="scratch") as dev:
        assert dev.path == "ram:scratch"
        assert dev.pread(0, 10_000) == bytes(10_000)
        dev.pwrite(9_998, b"ok")
        dev.sync()  # a no-op
        assert dev.pread(9_998, 2) == b"ok"
    assert RamDevice(1).path != RamDevice(1).path
    for bad in (0, -1, 2.0):
        with pytest.raises(InvalidArgumentError, match="size"):
            RamDevice(bad)


# -- fault injection --------------------------------------------------------------


@pytest.fixture
def faulty() -> Iterator[FaultyDevice]:
    dev = FaultyDevice(RamDevice(64 * 4096))
    yield dev
    dev.close()


def test_fail_now(faulty) -> None:
    faulty.pwrite(0, b"data")
    faulty.fail_now("read")
    with pytest.raises(DeviceIOError, match="injected I/O error on read") as info:
        faulty.pread(0, 4)
    assert info.value.errno == errno.EIO and info.value.device == faulty.path
    assert info.value.offset == 0 and info.value.length == 4
    faulty.pwrite(0, b"more")  # writes still work
    faulty.sync()
    faulty.heal()
    assert faulty.pread(0, 4) == b"more"
    faulty.fail_now("write")
    with pytest.raises(DeviceIOError, match="write"):
        faulty.pwrite(0, b"xxxx")
    with pytest.raises(DeviceIOError, match="sync"):
        faulty.sync()
    assert faulty.pread(0, 4) == b"more"  # the failed write changed nothing
    faulty.heal()
    faulty.fail_now()
    for call in (lambda: faulty.pread(0, 1), lambda: faulty.pwrite(0, b"1")):
        with pytest.raises(DeviceIOError):
            call()
    with pytest.raises(InvalidArgumentError, match="kind"):
        faulty.fail_now("sometimes")


@pytest.mark.parametrize("kind", ["read", "write", "any"])
def test_fail_after_counts(faulty, kind) -> None:
    faulty.fail_after(5, kind)
    done = 0
    for i in range(5):  # five operations of the counted kind(s) succeed
        if kind == "read" or (kind == "any" and i % 2):
            faulty.pread(0, 1)
        else:
            faulty.pwrite(0, b"x")
        done += 1
    # Operations not counted by the trigger keep working.
    if kind == "read":
        faulty.pwrite(0, b"y")
    if kind == "write":
        faulty.pread(0, 1)
    with pytest.raises(DeviceIOError):
        if kind == "write":
            faulty.pwrite(0, b"z")
        else:
            faulty.pread(0, 1)
    with pytest.raises(DeviceIOError):  # and it stays failed
        if kind == "write":
            faulty.pwrite(0, b"z")
        else:
            faulty.pread(0, 1)
    assert done == 5
    faulty.heal()
    faulty.pread(0, 1)
    faulty.fail_after(0, "read")
    with pytest.raises(DeviceIOError):
        faulty.pread(0, 1)
    with pytest.raises(InvalidArgumentError, match="n_ops"):
        faulty.fail_after(-1)


def test_fail_range(faulty) -> None:
    faulty.fail_range(8192, 100, "read")
    faulty.pread(0, 8192)
    faulty.pread(8292, 100)
    with pytest.raises(DeviceIOError, match="offset 8000"):
        faulty.pread(8000, 200)
    faulty.pwrite(8192, b"w")  # only reads fail there
    faulty.fail_range(0, 10, "write")
    with pytest.raises(DeviceIOError):
        faulty.pwrite(5, b"abcdefgh")
    faulty.pread(0, 10)
    faulty.heal()
    faulty.pread(8000, 200)


@pytest.mark.parametrize("mode", ["flip", "bit", "random", "zero"])
def test_corrupt_transient(faulty, rng, mode) -> None:
    data = rng.integers(1, 256, size=3 * 4096, dtype=np.uint8).tobytes()
    faulty.pwrite(0, data)
    faulty.corrupt(100, 5000, mode, seed=7)
    got = faulty.pread(0, len(data))
    assert got[:100] == data[:100] and got[5100:] == data[5100:]
    bad = got[100:5100]
    if mode == "bit":
        assert bad[0] == data[100] ^ 1 and bad[1:] == data[101:5100]
    else:
        assert all(a != b for a, b in zip(bad, data[100:5100], strict=True))  # every byte differs
    # Reads of part of the range see the same bytes; the inner device is untouched.
    assert faulty.pread(2000, 50) == got[2000:2050]
    buf = bytearray(30)
    faulty.preadinto(90, buf)
    assert bytes(buf) == got[90:120]
    assert faulty.inner.pread(0, len(data)) == data
    faulty.heal()
    assert faulty.pread(0, len(data)) == data
    with pytest.raises(InvalidArgumentError, match="mode"):
        faulty.corrupt(0, 1, "melt")


def test_corrupt_persistent_bit_rot(faulty) -> None:
    faulty.pwrite(0, b"\x00" * 16)
    faulty.sync()
    faulty.corrupt(4, 4, "flip", persistent=True)
    expect = b"\x00" * 4 + b"\xff" * 4 + b"\x00" * 8
    assert faulty.inner.pread(0, 16) == expect
    faulty.heal()  # rot is not healed
    assert faulty.pread(0, 16) == expect
    faulty.pwrite(4096, b"unsynced")  # a power cut does not undo the rot
    faulty.corrupt(0, 2, "flip", persistent=True)
    faulty.pwrite(8, b"later")
    faulty.power_cut(keep="none")
    assert faulty.pread(0, 16) == b"\xff\xff" + expect[2:]


def test_latency_and_bandwidth() -> None:
    with FaultyDevice(RamDevice(1 << 20), latency=0.02) as dev:
        start = time.monotonic()
        for _ in range(5):
            dev.pread(0, 10)
        assert time.monotonic() - start >= 5 * 0.02 * 0.9
    with FaultyDevice(RamDevice(1 << 20), bandwidth=4 << 20) as dev:
        start = time.monotonic()
        dev.pwrite(0, bytes(1 << 20))  # 1 MiB at 4 MiB/s: at least 0.25 s
        dev.pread(0, 1 << 19)
        assert time.monotonic() - start >= 0.375 * 0.9
        dev.bandwidth = None
        assert dev.stats.bytes_written == 1 << 20 and dev.stats.reads == 1


def _fill(dev: FaultyDevice, rng, count: int) -> list[tuple[int, bytes]]:
    """``count`` unsynced, non-overlapping writes (some page-straddling, some sub-page)."""
    writes = []
    for i in range(count):
        off = i * 3 * 4096 + int(rng.integers(0, 4096))
        data = rng.integers(1, 256, size=int(rng.integers(1, 2 * 4096 + 500)), dtype=np.uint8)
        dev.pwrite(off, data.tobytes())
        writes.append((off, data.tobytes()))
    return writes


def test_power_cut_none_and_all(faulty, rng) -> None:
    faulty.pwrite(0, b"synced")
    faulty.sync()
    before = _image(faulty)
    writes = _fill(faulty, rng, 10)
    assert faulty.unsynced_writes == 10
    result = faulty.power_cut(keep="none")
    assert not result.kept and sum(n for _, n in result.lost) == sum(len(d) for _, d in writes)
    assert _image(faulty) == before and faulty.unsynced_writes == 0
    writes = _fill(faulty, rng, 10)
    after = _image(faulty)
    faulty.power_cut(keep="all")
    assert _image(faulty) == after
    faulty.pwrite(0, b"again")  # usable afterwards, tracking from a clean slate
    faulty.power_cut(keep="none")
    assert _image(faulty) == after


def test_power_cut_random_pages_old_or_new(rng) -> None:
    results = []
    for seed in (1, 2, 1):
        with FaultyDevice(RamDevice(64 * 4096)) as dev:
            dev.pwrite(0, bytes(range(256)) * 256)  # 64 KiB of old contents
            dev.sync()
            old = _image(dev)
            local = np.random.default_rng(99)
            writes = _fill(dev, local, 16)
            cut = dev.power_cut(seed=seed)
            img = _image(dev)
            results.append((img, cut))
            torn = 0
            for off, data in writes:
                states = set()
                pos = off
                while pos < off + len(data):
                    stop = min((pos // 4096 + 1) * 4096, off + len(data))
                    piece = img[pos:stop]
                    new = data[pos - off : stop - off]
                    assert piece in (new, old[pos:stop]), "a page is neither old nor new"
                    states.add(piece == new)
                    pos = stop
                torn += len(states) == 2
            untouched = np.ones(len(img), dtype=bool)
            for off, data in writes:
                untouched[off : off + len(data)] = False
            arr, oarr = np.frombuffer(img, np.uint8), np.frombuffer(old, np.uint8)
            assert (arr[untouched] == oarr[untouched]).all()
            assert cut.kept and cut.lost and torn  # seeds 1 and 2 give a real mix
    assert results[0] == results[2]  # same seed, same outcome
    assert results[0][0] != results[1][0]


def test_power_cut_callable_and_overlapping(faulty) -> None:
    faulty.pwrite(0, b"A" * 8192)
    faulty.sync()
    faulty.pwrite(0, b"B" * 8192)  # write 0: two pages
    faulty.pwrite(4096, b"C" * 100)  # write 1 overlaps page 1
    seen: list[tuple[int, int, int]] = []

    def keep(index: int, offset: int, length: int) -> bool:
        seen.append((index, offset, length))
        return (index, offset) in {(0, 4096), (1, 4096)}

    faulty.power_cut(keep=keep)
    assert seen == [(0, 0, 4096), (0, 4096, 4096), (1, 4096, 100)]
    assert faulty.pread(0, 8192) == b"A" * 4096 + b"C" * 100 + b"B" * 3996
    with pytest.raises(InvalidArgumentError, match="keep"):
        faulty.power_cut(keep="some")


def test_failed_sync_keeps_writes_at_risk(faulty) -> None:
    faulty.pwrite(0, b"x" * 10)
    faulty.fail_now("write")
    with pytest.raises(DeviceIOError):
        faulty.sync()
    faulty.heal()
    assert faulty.unsynced_writes == 1
    faulty.power_cut(keep="none")
    assert faulty.pread(0, 10) == bytes(10)


def test_power_cut_on_file_then_reopen(tmp_path) -> None:
    path = tmp_path / "f.img"
    with FaultyDevice(FileDevice.create(path, 1 << 20)) as dev:
        dev.pwrite(0, b"durable")
        dev.sync()
        dev.pwrite(100, b"volatile")
        dev.power_cut(keep="none")
    with FileDevice.open(path) as dev:
        assert dev.pread(0, 7) == b"durable" and dev.pread(100, 8) == bytes(8)


# -- superblocks ------------------------------------------------------------------


def _sb(size: int = 8 * MiB, **changes) -> Superblock:
    kw = dict(
        pool_id=uuid.UUID(int=0x1234),
        device_index=2,
        device_count=5,
        layout="raid6",
        layout_params={"k": 3, "m": 2, "algorithm": "left-symmetric"},
        chunk_size=65536,
    )
    kw.update(changes)
    return Superblock.for_device(size, **kw)


def test_superblock_round_trip_every_field() -> None:
    sb = _sb(
        generation=42,
        flags=SuperblockFlags.CLEAN | SuperblockFlags.REBUILDING,
        rebuild_offset=4096,
        created_ns=111,
        updated_ns=222,
    )
    raw = sb.encode()
    assert len(raw) == SUPERBLOCK_SIZE and raw[:8] == b"DWCORESB"
    assert struct.unpack_from("<I", raw, 4092)[0] == crc32c(raw[:4092])
    back = Superblock.decode(raw)
    assert back == sb
    assert back.pool_id == uuid.UUID(int=0x1234) and back.device_id == sb.device_id
    assert (back.device_index, back.device_count, back.layout) == (2, 5, "raid6")
    assert back.layout_params == {"k": 3, "m": 2, "algorithm": "left-symmetric"}
    assert (back.chunk_size, back.generation, back.rebuild_offset) == (65536, 42, 4096)
    assert back.flags == SuperblockFlags.CLEAN | SuperblockFlags.REBUILDING
    assert (back.created_ns, back.updated_ns) == (111, 222)
    assert (back.data_offset, back.data_size, back.device_size) == (MiB, 6 * MiB, 8 * MiB)
    assert back.version == FORMAT_VERSION
    odd = sb.bumped(flags=SuperblockFlags(1 << 40 | 1))  # unknown bits survive
    assert int(Superblock.decode(odd.encode()).flags) == 1 << 40 | 1
    bumped = sb.bumped(flags=SuperblockFlags.NONE)
    assert bumped.generation == 43 and bumped.updated_ns >= sb.updated_ns
    assert Superblock.decode(bumped.encode() + b"trailing") == bumped


def _recrc(raw: bytearray) -> bytes:
    struct.pack_into("<I", raw, 4092, crc32c(bytes(raw[:4092])))
    return bytes(raw)


def test_superblock_decode_errors() -> None:
    raw = _sb().encode()
    with pytest.raises(CorruptionError, match="truncated"):
        Superblock.decode(raw[:4000])
    with pytest.raises(MissingSuperblockError, match="bad magic"):
        Superblock.decode(b"XX" + raw[2:])
    with pytest.raises(MissingSuperblockError, match="blank"):
        Superblock.decode(bytes(4096))
    for pos in (8, 20, 100, 170, 4092):
        bad = bytearray(raw)
        bad[pos] ^= 0x10
        with pytest.raises(CorruptionError, match="checksum") as info:
            Superblock.decode(bad, "dev7 primary")
        assert "dev7 primary" in str(info.value)
        assert not isinstance(info.value, MissingSuperblockError)
    newer = bytearray(raw)
    struct.pack_into("<I", newer, 8, FORMAT_VERSION + 1)
    with pytest.raises(UnsupportedFormatError, match="newer"):
        Superblock.decode(_recrc(newer))
    impossible = bytearray(raw)
    struct.pack_into("<I", impossible, 48, 9)  # index 9 of 5 devices
    with pytest.raises(CorruptionError, match="invalid contents"):
        Superblock.decode(_recrc(impossible))
    garbled = bytearray(raw)
    garbled[164] = ord("[")
    with pytest.raises(CorruptionError, match="invalid contents"):
        Superblock.decode(_recrc(garbled))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"device_index": 5}, "device_index"),
        ({"device_count": 0}, "device_index"),
        ({"chunk_size": 3000}, "power of two"),
        ({"layout": ""}, "layout"),
        ({"layout": "x" * 33}, "layout"),
        ({"layout_params": {"x": object()}}, "JSON"),
        ({"layout_params": {"x": "y" * 5000}}, "more than"),
        ({"generation": 0}, "generation"),
        ({"generation": -1}, "generation"),
        ({"device_index": 1 << 40}, "device_index"),
    ],
)
def test_superblock_validation(changes, match) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        _sb(**changes)


def test_data_area_and_offsets() -> None:
    assert data_area(8 * MiB) == (MiB, 6 * MiB)
    assert superblock_offsets(8 * MiB + 5000) == (0, 7 * MiB)
    assert data_area(8 * MiB + 5000) == (MiB, 6 * MiB)
    assert data_area(MIN_DEVICE_SIZE).size == MiB
    with RamDevice(5 * MiB) as dev:
        assert data_area(dev) == (METADATA_SIZE, 3 * MiB)
    with pytest.raises(InvalidArgumentError, match="too small"):
        data_area(MIN_DEVICE_SIZE - 1)


def test_superblock_on_device_and_copies() -> None:
    with RamDevice(8 * MiB) as dev:
        with pytest.raises(MissingSuperblockError, match="holds no dwcore superblock"):
            read_superblock(dev)
        sb = _sb()
        write_superblock(dev, sb)
        assert dev.pread(0, 4096) == sb.encode() == dev.pread(7 * MiB, 4096)
        copies = read_superblock_copies(dev)
        assert copies.primary == copies.backup == sb and not copies.needs_repair
        assert read_superblock(dev) == sb
        # A newer generation in one copy wins, whichever copy it is.
        newer = sb.bumped()
        dev.pwrite(7 * MiB, newer.encode())
        assert read_superblock(dev) == newer and read_superblock_copies(dev).needs_repair
        write_superblock(dev, sb.bumped(generation=10))
        dev.pwrite(0, newer.encode())
        assert read_superblock(dev).generation == 10
        # One corrupted copy: the other is used.
        write_superblock(dev, newer)
        dev.pwrite(200, b"\xff")
        copies = read_superblock_copies(dev)
        assert copies.primary is None and isinstance(copies.primary_error, CorruptionError)
        assert read_superblock(dev) == newer and copies.needs_repair
        dev.pwrite(7 * MiB + 200, b"\xff")
        with pytest.raises(CorruptionError, match="no valid superblock copy"):
            read_superblock(dev)
        # A newer format in either copy is refused, never downgraded.
        write_superblock(dev, newer)
        raw = bytearray(newer.encode())
        struct.pack_into("<I", raw, 8, FORMAT_VERSION + 1)
        dev.pwrite(7 * MiB, _recrc(raw))
        with pytest.raises(UnsupportedFormatError):
            read_superblock(dev)
    with RamDevice(4 * MiB) as small, pytest.raises(InvalidArgumentError, match="8388608"):
        write_superblock(small, sb)


def test_superblock_torn_write_survived() -> None:
    """A power cut in the middle of rewriting the primary leaves a usable superblock."""
    for seed in range(6):
        with FaultyDevice(RamDevice(8 * MiB), page_size=512) as dev:
            old = _sb()
            write_superblock(dev, old)
            new = old.bumped(layout_params={"k": 4, "m": 2})
            dev.pwrite(0, new.encode())  # primary rewritten, not synced, then power lost
            dev.power_cut(seed=seed)
            assert read_superblock(dev) in (old, new)
            # The primary is durable; the backup is torn by a power cut.
            newest = new.bumped()
            write_superblock(dev, newest, which="primary")
            write_superblock(dev, newest, which="backup", sync=False)
            dev.power_cut(seed=seed)
            assert read_superblock(dev) == newest
    # A crash between the copies: the primary is written and synced, the backup write fails.
    with FaultyDevice(RamDevice(8 * MiB)) as dev:
        write_superblock(dev, old)
        dev.fail_after(1, "write")
        with pytest.raises(DeviceIOError):
            write_superblock(dev, old.bumped())
        dev.heal()
        dev.power_cut()
        copies = read_superblock_copies(dev)
        assert read_superblock(dev).generation == 2 and copies.backup == old
        with pytest.raises(InvalidArgumentError, match="which"):
            write_superblock(dev, old, which="middle")


def test_truncated_device_file(tmp_path) -> None:
    path = tmp_path / "m.img"
    with FileDevice.create(path, 8 * MiB) as dev:
        write_superblock(dev, _sb())
    os.truncate(path, 6 * MiB)
    with FileDevice.open(path) as dev, pytest.raises(CorruptionError, match="truncated"):
        read_superblock(dev)
    os.truncate(path, 100 * 1024)
    with FileDevice.open(path) as dev:
        copies = read_superblock_copies(dev)
        assert copies.primary is not None and "too small" in str(copies.backup_error)
        with pytest.raises(CorruptionError, match="truncated"):
            read_superblock(dev)
    os.truncate(path, 100)
    with FileDevice.open(path) as dev, pytest.raises(CorruptionError, match="too small"):
        read_superblock(dev)


def test_foreign_pool_detection() -> None:
    sb = _sb()
    mine, other = uuid.UUID(int=0x1234), uuid.uuid4()
    assert sb.belongs_to(mine) and sb.belongs_to(mine, 2)
    assert not sb.belongs_to(other) and not sb.belongs_to(mine, 3)
    check_member(sb, mine, 2, "d2.img")
    with pytest.raises(ForeignDeviceError, match=f"belongs to pool {mine}") as info:
        check_member(sb, other, device="d2.img")
    assert info.value.device == "d2.img" and isinstance(info.value, DWError)
    with pytest.raises(ForeignDeviceError, match="expected device 0"):
        check_member(sb, mine, 0)


# -- probe -------------------------------------------------------------------------


def _signed(tmp_path, name: str, size: int, marks: list[tuple[int, bytes]]) -> str:
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in marks:
            f.seek(off)
            f.write(data)
    return str(path)


@pytest.mark.parametrize(
    ("kind", "marks"),
    [
        ("ext4", [(1080, b"\x53\xef")]),
        ("xfs", [(0, b"XFSB")]),
        ("btrfs", [(65600, b"_BHRfS_M")]),
        ("swap", [(4086, b"SWAPSPACE2")]),
        ("luks", [(0, b"LUKS\xba\xbe")]),
        ("gpt", [(510, b"\x55\xaa"), (450, b"\xee"), (512, b"EFI PART")]),
        ("mbr", [(510, b"\x55\xaa"), (450, b"\x83")]),
        ("ntfs", [(3, b"NTFS    "), (510, b"\x55\xaa")]),
    ],
)
def test_probe_signatures(tmp_path, kind, marks) -> None:
    path = _signed(tmp_path, "disk.img", 4 * MiB, marks)
    found = probe(path)
    assert [s.kind for s in found] == [kind]
    with pytest.raises(DeviceInUseError, match="--force"):
        check_unused(path)
    assert check_unused(path, force=True) == found


def test_probe_dwcore_and_empty(tmp_path) -> None:
    blank = _signed(tmp_path, "blank.img", 8 * MiB, [])
    assert probe(blank) == [] and check_unused(blank) == []
    assert probe(_signed(tmp_path, "tiny.img", 10, [])) == []
    bare_mbr = _signed(tmp_path, "boot.img", 4 * MiB, [(510, b"\x55\xaa")])
    assert probe(bare_mbr) == []  # a boot signature without partitions
    sb = _sb()
    raw = sb.encode()
    both = _signed(tmp_path, "member.img", 8 * MiB, [(0, raw), (7 * MiB, raw)])
    (sig,) = probe(both)
    assert sig.kind == "dwcore" and str(sb.pool_id) in sig.detail and "device 2 of 5" in sig.detail
    tail_only = _signed(tmp_path, "tail.img", 8 * MiB, [(7 * MiB, raw)])
    (sig,) = probe(tail_only)
    assert sig.kind == "dwcore" and sig.offset == 7 * MiB
    damaged = _signed(tmp_path, "damaged.img", 8 * MiB, [(0, raw[:100] + b"!" + raw[101:])])
    (sig,) = probe(damaged)
    assert sig.kind == "dwcore" and "damaged" in sig.detail
    with pytest.raises(DeviceIOError, match="cannot open"):
        probe(tmp_path / "nope.img")


def test_probe_loop_device(loop_path) -> None:
    with BlockDevice.open(loop_path) as dev:
        write_superblock(dev, _sb(dev.size))
    assert [s.kind for s in probe(loop_path)] == ["dwcore"]


# ------------------------------------------------- batched system calls (pool fast path)


def test_pwritev_many_and_preadv_many(tmp_path, rng) -> None:
    from dwcore._native import preadv_many, pwritev_many

    paths = [tmp_path / f"f{i}" for i in range(3)]
    fds = []
    for p in paths:
        fd = os.open(p, os.O_RDWR | os.O_CREAT)
        os.ftruncate(fd, 1 << 20)
        fds.append(fd)
    try:
        ref = [bytearray(1 << 20) for _ in fds]
        reqs = []
        for _ in range(40):
            f = int(rng.integers(0, 3))
            parts = [rng.bytes(int(rng.integers(0, 3000))) for _ in range(int(rng.integers(1, 5)))]
            total = sum(len(x) for x in parts)
            off = int(rng.integers(0, (1 << 20) - total))
            views = [
                np.frombuffer(x, np.uint8) if i % 2 else memoryview(x) for i, x in enumerate(parts)
            ]
            reqs.append((fds[f], off, views))
            ref[f][off : off + total] = b"".join(parts)
        assert pwritev_many(reqs) == [0] * len(reqs)
        for fd, r in zip(fds, ref, strict=True):
            assert os.pread(fd, 1 << 20, 0) == r
        # more buffers than one system call takes (IOV_MAX)
        many = [bytes([i % 251]) * 3 for i in range(2500)]
        assert pwritev_many([(fds[0], 1000, many)]) == [0]
        sinks = [bytearray(3) for _ in many]
        assert preadv_many([(fds[0], 1000, sinks)]) == [0]
        assert sinks == [bytearray(x) for x in many]
        # a failed request reports its errno and does not stop the others
        errs = pwritev_many([(fds[1], 0, [b"abc"]), (-1, 0, [b"x"]), (fds[2], 5, [b"de"])])
        assert errs[0] == 0 and errs[1] == errno.EBADF and errs[2] == 0
        assert os.pread(fds[1], 3, 0) == b"abc" and os.pread(fds[2], 2, 5) == b"de"
        # reading past the end of the file is an error, not a short read
        assert preadv_many([(fds[0], (1 << 20) - 2, [bytearray(4)])]) == [errno.EIO]
        with pytest.raises(InvalidArgumentError, match="writable"):
            preadv_many([(fds[0], 0, [b"read-only"])])
        with pytest.raises(InvalidArgumentError, match="contiguous"):
            pwritev_many([(fds[0], 0, [np.zeros(8, np.uint8)[::2]])])
        with pytest.raises(InvalidArgumentError, match="offset"):
            pwritev_many([(fds[0], -1, [b"x"])])
    finally:
        for fd in fds:
            os.close(fd)


def test_enter_raw_only_where_every_request_may_bypass_the_device(tmp_path) -> None:
    plain = FileDevice.create(tmp_path / "a.img", DEV_SIZE)
    fd = plain.enter_raw(True)
    assert fd == plain.fileno
    plain.leave_raw(True)
    assert plain.unsynced
    assert FaultyDevice(RamDevice(4096)).enter_raw(True) is None  # sees every request
    wrapped = ResilientDevice(plain)
    assert wrapped.enter_raw(False) == plain.fileno
    wrapped.leave_raw(False)
    while wrapped.breaker.state is BreakerState.CLOSED:
        wrapped.breaker.allow()
        wrapped.breaker.record_failure(OSError(5, "EIO"))
    assert wrapped.enter_raw(True) is None  # an open breaker: requests go through it
    wrapped.close()


def test_enter_raw_sync_lets_the_caller_flush(tmp_path) -> None:
    """A plain file hands out its descriptor for a flush by the caller and counts as
    synced from then on; a failed flush puts the writes back to unsynced and comes
    back as the error to report (the breaker of a resilient device records it).
    Devices that must see their flushes hand out nothing."""
    plain = FileDevice.create(tmp_path / "a.img", DEV_SIZE)
    plain.pwrite(0, b"x" * 4096)
    assert plain.unsynced
    fd = plain.enter_raw_sync()
    assert fd == plain.fileno and not plain.unsynced
    assert plain.leave_raw_sync(0) is None and not plain.unsynced
    plain.pwrite(0, b"y" * 4096)
    plain.enter_raw_sync()
    err = plain.leave_raw_sync(errno.EIO)
    assert isinstance(err, DeviceIOError) and err.errno == errno.EIO
    assert "sync" in str(err) and plain.unsynced
    assert FaultyDevice(RamDevice(4096)).enter_raw_sync() is None
    assert RamDevice(4096).enter_raw_sync() is None
    wrapped = ResilientDevice(plain)
    assert wrapped.enter_raw_sync() == plain.fileno
    wrapped.leave_raw_sync(errno.EIO)
    assert wrapped.breaker.last_failure
    wrapped.close()
    with pytest.raises(DeviceClosedError):
        plain.enter_raw_sync()


def test_fdatasync_many(tmp_path) -> None:
    """Every descriptor flushed, one errno each; a failure does not stop the others;
    parallel or not; many callers at once; bad arguments refused."""
    from dwcore._native import fdatasync_many

    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT) for i in range(8)]
    r, w = os.pipe()
    try:
        for fd in fds:
            os.write(fd, b"data")
        assert fdatasync_many([]) == []
        assert fdatasync_many(fds) == [0] * 8
        assert fdatasync_many(fds, parallel=False) == [0] * 8
        closed = os.dup(fds[0])
        os.close(closed)
        mixed = [fds[0], r, fds[1], closed, fds[2]]
        for parallel in (True, False):
            assert fdatasync_many(mixed, parallel) == [0, errno.EINVAL, 0, errno.EBADF, 0]
        results: list[list[int]] = []

        def caller() -> None:
            for _ in range(50):
                results.append(fdatasync_many([*fds[:5], r]))

        threads = [threading.Thread(target=caller) for _ in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert len(results) == 300
        assert all(res == [0] * 5 + [errno.EINVAL] for res in results)
        for bad in ([-1], ["3"], [1 << 40]):
            with pytest.raises(InvalidArgumentError):
                fdatasync_many(bad)
    finally:
        for fd in [*fds, r, w]:
            os.close(fd)


def test_fdatasync_many_works_in_a_forked_child(tmp_path) -> None:
    """The helper threads do not survive fork(): the child starts its own."""
    from dwcore._native import fdatasync_many

    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT) for i in range(4)]
    try:
        assert fdatasync_many(fds) == [0] * 4  # helpers running in the parent
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0 if fdatasync_many(fds) == [0] * 4 else 1
            os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                pytest.fail("fdatasync_many hung in a forked child")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        for fd in fds:
            os.close(fd)


def test_preadv_many_verifies_checksums_right_after_reading(tmp_path, rng) -> None:
    """A 5-tuple request is checked block by block against expected CRC-32Cs (which
    an earlier request of the same call may read); a mismatch fails only that request
    with EBADMSG.  Malformed verification requests are refused before any I/O."""
    from dwcore._native import preadv_many, pwritev_many
    from dwcore.checksum import crc32c_blocks

    b = 4096
    content = rng.bytes(16 * b)
    crcs = np.asarray(crc32c_blocks(content, b), dtype="<u4")
    path = tmp_path / "f"
    path.write_bytes(content + crcs.tobytes())
    fd = os.open(path, os.O_RDONLY)
    try:
        table = np.zeros(16, dtype="<u4")
        head, body, tail = bytearray(b), np.zeros(10 * b, np.uint8), bytearray(b)
        errs = preadv_many(
            [
                (fd, 16 * b, [table]),  # the table first, then runs checked against it
                (fd, 2 * b, [head, body, tail], table[2:14], b),
                (fd, 0, [bytearray(2 * b)], table[0:2], b),
            ]
        )
        assert errs == [0, 0, 0]
        assert bytes(head) + body.tobytes() + bytes(tail) == content[2 * b : 14 * b]
        wrong = crcs.copy()
        wrong[5] ^= 1
        buf = bytearray(4 * b)
        errs = preadv_many([(fd, 4 * b, [buf], wrong[4:8], b), (fd, 0, [bytearray(b)], crcs, b)])
        assert errs == [errno.EBADMSG, 0]
        assert bytes(buf) == content[4 * b : 8 * b]  # the bytes are read; the caller decides
        for bad in (
            (fd, 0, [bytearray(b + 1)], crcs, b),  # not whole blocks
            (fd, 0, [bytearray(4 * b)], crcs[:3], b),  # too few CRCs
            (fd, 0, [bytearray(b)], crcs, 0),  # no block size
            (fd, 0, [bytearray(b)], crcs),  # four fields
        ):
            with pytest.raises(InvalidArgumentError):
                preadv_many([bad])
        with pytest.raises(InvalidArgumentError):
            pwritev_many([(fd, 0, [bytes(b)], crcs, b)])  # writes are not verified
    finally:
        os.close(fd)


def test_preadv_many_reads_right_at_every_alignment(tmp_path, rng) -> None:
    """Destinations 1-31 bytes past their source modulo 64 go through a bounce buffer
    (a slow copy otherwise); every alignment and length must read the same bytes."""
    from dwcore._native import preadv_many

    size = 1 << 20
    content = rng.bytes(size)
    path = tmp_path / "f"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        raw = np.zeros(size + 8192, np.uint8)
        base = -raw.ctypes.data % 4096
        for dst_skew in (0, 1, 8, 16, 31, 32, 48, 63):
            for src_off in (0, 8, 4096, 4096 + 40, 12345):
                for length in (1, 4095, 4096, 65536, 65536 + 4097, 200_000):
                    if src_off + length > size:
                        continue
                    buf = raw[base + dst_skew : base + dst_skew + length]
                    buf[:] = 0
                    assert preadv_many([(fd, src_off, [buf])]) == [0]
                    assert buf.tobytes() == content[src_off : src_off + length]
        # several buffers, some skewed, back to back
        parts = [raw[base + 16 : base + 16 + 70_000], bytearray(5000), raw[base + 90_016 :][:9000]]
        assert preadv_many([(fd, 100, parts)]) == [0]
        assert b"".join(bytes(p) for p in parts) == content[100 : 100 + 84_000]
    finally:
        os.close(fd)


def test_in_memory_devices(tmp_path) -> None:
    """RAM devices and files on tmpfs say their bytes live in memory (the pool then
    keeps their requests on the calling thread); files on a disk do not."""
    from dwcore.devices.file import ram_backed

    assert RamDevice(4096).in_memory
    assert not FaultyDevice(RamDevice(4096)).in_memory  # it may delay requests
    disk = FileDevice.create(tmp_path / "d.img", DEV_SIZE)
    assert disk.in_memory == ram_backed(str(tmp_path))
    assert ResilientDevice(disk).in_memory == disk.in_memory
    disk.close()
    if os.path.isdir("/dev/shm") and ram_backed("/dev/shm"):
        shm = FileDevice.create(f"/dev/shm/dwcore-test-{uuid.uuid4().hex}", DEV_SIZE)
        try:
            assert shm.in_memory
        finally:
            shm.close()
            os.unlink(shm.path)
