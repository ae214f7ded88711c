"""Engine state records on the devices (dwcore.pool.devstate): format, choice, crashes."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from dwcore.devices import FaultyDevice, RamDevice
from dwcore.errors import InvalidArgumentError
from dwcore.pool import devstate
from dwcore.pool.devstate import Area, RecordStore, metadata_areas, pack, unpack

MiB = 1 << 20
POOL = uuid.UUID(int=0x1234)
AREAS = (Area(4096, 256 * 1024), Area(4096 + 256 * 1024, 256 * 1024))


def store(pool: uuid.UUID = POOL, kind: int = devstate.KIND_ZONE_TABLE) -> RecordStore:
    return RecordStore(pool, kind, lambda d: AREAS)


def test_pack_round_trip() -> None:
    arrays = {
        "a": np.arange(5, dtype="<u8"),
        "b": np.array([1.5, -2.25], dtype="<f8"),
        "c": np.zeros(0, dtype=np.uint8),
        "d": np.array([7, 8, 9], dtype=">u4"),  # big-endian in: stored little-endian
    }
    meta, got = unpack(pack({"x": 1, "y": "z"}, arrays))
    assert meta == {"x": 1, "y": "z"}
    for name, arr in arrays.items():
        assert got[name].tolist() == arr.tolist()
    assert got["d"].dtype == np.dtype("<u4")
    raw = pack({}, {"a": np.arange(3, dtype="<u4")})
    for bad in (raw[:-1], raw + b"x", b"\x05\x00\x00\x00{", b""):
        with pytest.raises(InvalidArgumentError, match="does not parse"):
            unpack(bad)


def test_newest_record_of_this_pool_and_kind() -> None:
    dev = RamDevice(2 * MiB)
    s = store()
    for payload in (b"one", b"two" * 1000, b"three"):
        _gen, done, errors = s.write([(0, dev)], payload)
        assert done == [0] and not errors
    rec = store().load([(0, dev)])
    assert rec is not None and (rec.generation, rec.payload) == (3, b"three")
    # both areas hold a record: generation 3 and the one before it
    assert sorted(r.generation for r in store().scan([(0, dev)])) == [2, 3]
    assert store(uuid.UUID(int=99)).load([(0, dev)]) is None  # another pool's
    assert store(kind=devstate.KIND_ADAPTIVE_MAP).load([(0, dev)]) is None  # another kind
    # a damaged newest record (payload or header) is passed over for the older one
    newest = next(r for r in store().scan([(0, dev)]) if r.generation == 3)
    at = AREAS[newest.area].offset
    dev.pwrite(at + devstate.HEADER_SIZE + 1, b"\xff")
    rec = store().load([(0, dev)])
    assert rec is not None and (rec.generation, rec.payload) == (2, b"two" * 1000)
    dev.pwrite(at + devstate.HEADER_SIZE + 1, b"\x00")
    dev.pwrite(at + 20, b"\xff")
    rec = store().load([(0, dev)])
    assert rec is not None and rec.generation == 2


def test_a_torn_record_leaves_the_previous_one() -> None:
    """Power cut while a multi-page record is being written (unsynced pages kept or lost at
    random): the device reads back the new record or the previous one, whole."""
    rng = np.random.default_rng(5)
    old = rng.bytes(50_000)  # incompressible: many pages
    seen = set()
    for seed in range(40):
        inner = RamDevice(2 * MiB)
        dev = FaultyDevice(inner, close_inner=False)
        s = store()
        s.write([(0, dev)], b"zero")
        s.write([(0, dev)], old)
        dev.sync()
        new = rng.bytes(50_000)
        s.write([(0, dev)], new)
        dev.power_cut(seed=seed, keep="all" if seed % 8 == 0 else "random")
        rec = store().load([(0, inner)])
        assert rec is not None
        assert (rec.generation, rec.payload) in ((2, old), (3, new))
        seen.add(rec.generation)
    assert seen == {2, 3}


def test_settle_keeps_the_committed_generation() -> None:
    """A record written but never committed (the caller's own commit did not happen):
    after ``settle`` on the committed one, the next record overwrites the uncommitted one,
    never the committed one."""
    dev = RamDevice(2 * MiB)
    s = store()
    s.write([(0, dev)], b"committed")
    s.write([(0, dev)], b"never committed")
    again = store()
    found = again.scan([(0, dev)])
    committed = next(r for r in found if r.payload == b"committed")
    again.settle(committed, found)
    gen, _, _ = again.write([(0, dev)], b"next")
    assert gen == 3  # numbers are never reused
    assert sorted((r.generation, r.payload) for r in store().scan([(0, dev)])) == [
        (1, b"committed"),
        (3, b"next"),
    ]


def test_a_record_too_big_is_refused_and_nothing_written() -> None:
    dev = RamDevice(2 * MiB)
    s = store()
    with pytest.raises(InvalidArgumentError, match="does not fit"):
        s.write([(0, dev)], np.random.default_rng(1).bytes(300 * 1024))
    assert store().load([(0, dev)]) is None and s.generation == 0


def test_metadata_areas_follow_each_superblock() -> None:
    head, tail = metadata_areas(10 * MiB + 12345)
    assert (head.offset, head.size) == (4096, MiB - 4096)
    assert (tail.offset, tail.size) == (9 * MiB + 4096, MiB - 4096)
