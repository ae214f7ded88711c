"""A member absent when the pool opens, back at a later open: stale, never trusted.

The pool writes without the absent member (new extents reuse freed rows), so
its image is old but every block still matches its checksum.  It must come
back MISSING (stale) at the next open, reads must return the new bytes, and
``replace_device`` + ``rebuild`` must take it back.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest

from dwcore.pool import DeviceState, Pool, PoolDegradedWarning

pytestmark = pytest.mark.filterwarnings("ignore::dwcore.pool.PoolDegradedWarning")

KiB = 1024
MiB = 1 << 20

CASES: list[tuple[str, int, int, dict[str, Any]]] = [
    ("1", 3, 8 * MiB, {"chunk_size": 16 * KiB}),
    ("5", 4, 8 * MiB, {"chunk_size": 16 * KiB}),
    ("6", 5, 8 * MiB, {"chunk_size": 16 * KiB}),
    ("10", 4, 8 * MiB, {"chunk_size": 16 * KiB}),
    ("z2", 5, 8 * MiB, {"chunk_size": 16 * KiB}),
    ("unraid", 4, 8 * MiB, {"chunk_size": 16 * KiB}),
    ("beyond", 4, 8 * MiB, {"chunk_size": 16 * KiB, "zone_size": 256 * KiB}),
    ("adaptive", 4, 16 * MiB, {"chunk_size": 16 * KiB, "pex_size": 256 * KiB}),
    ("declustered", 6, 16 * MiB, {"chunk_size": 64 * KiB}),
]


@pytest.mark.parametrize(("level", "n", "size", "opts"), CASES, ids=[c[0] for c in CASES])
def test_member_absent_at_open_comes_back_stale(
    tmp_path: Any, level: str, n: int, size: int, opts: dict[str, Any]
) -> None:
    root = str(tmp_path / "pool")
    rng = np.random.default_rng(7)
    pool = Pool.create(root, level, n, size, **opts)
    paths = [d.path for d in pool.status().devices]
    old = [pool.write(rng.bytes(48 * KiB)) for _ in range(40)]
    pool.sync()
    pool.close()

    away = paths[1] + ".away"
    os.rename(paths[1], away)
    with pytest.warns(PoolDegradedWarning, match="device 1 missing"):
        pool = Pool.open(root)
    for ext in old:
        pool.free(ext)
    pool.sync()
    new = [(pool.write(data), data) for data in (rng.bytes(48 * KiB) for _ in range(40))]
    pool.sync()
    pool.close()

    os.rename(away, paths[1])
    with pytest.warns(PoolDegradedWarning, match="device 1 missing: stale"):
        pool = Pool.open(root)
    try:
        assert pool.status().devices[1].state is DeviceState.MISSING
        for ext, data in new:
            assert pool.read(ext) == data
        # the same device taken back: rebuilt, then trusted again
        pool.replace_device(1, paths[1])
        pool.rebuild()
        assert pool.status().devices[1].state is DeviceState.ONLINE
        for ext, data in new:
            assert pool.read(ext) == data
        assert pool.scrub(repair=False).mismatches == []
    finally:
        pool.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoolDegradedWarning)
        pool = Pool.open(root)  # whole again: no warning
    try:
        assert not pool.status().degraded
        for ext, data in new:
            assert pool.read(ext) == data
    finally:
        pool.close()


def test_beyond_the_tolerance_nothing_goes_stale(tmp_path: Any) -> None:
    """Two of a RAID 5's devices absent at open (beyond its tolerance): the open bumps
    nothing, so when they are back the pool opens whole and every extent reads."""
    root = str(tmp_path / "pool")
    rng = np.random.default_rng(8)
    pool = Pool.create(root, "5", 4, 8 * MiB, chunk_size=16 * KiB)
    paths = [d.path for d in pool.status().devices]
    ref = [(pool.write(data), data) for data in (rng.bytes(40 * KiB) for _ in range(10))]
    pool.sync()
    generation = pool.generation
    pool.close()
    for p in paths[1:3]:
        os.rename(p, p + ".away")
    with pytest.warns(PoolDegradedWarning):
        pool = Pool.open(root)
    assert pool.generation == generation
    pool.close()
    for p in paths[1:3]:
        os.rename(p + ".away", p)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoolDegradedWarning)
        pool = Pool.open(root)
    try:
        assert not pool.status().degraded
        for ext, data in ref:
            assert pool.read(ext) == data
    finally:
        pool.close()


def test_generation_moves_on_before_the_level_writes_at_open(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """RAID 7 replays its journal while it opens, writing rows without the absent member:
    the generation must move on before that, or a crash right after the replay leaves the
    member current, and its stale blocks (checksums matching) would be read as data."""
    root = str(tmp_path / "pool")
    rng = np.random.default_rng(9)
    pool = Pool.create(root, "7", 3, 16 * MiB, chunk_size=8 * KiB, max_dirty_s=600)
    paths = [d.path for d in pool.status().devices]
    old = pool.write(rng.bytes(32 * KiB))
    pool.sync()
    pool.free(old)
    pool.sync()
    pool.close()
    pool = Pool.open(root)
    data = rng.bytes(32 * KiB)
    ext = pool.write(data)  # acknowledged: in the journal, its rows those of `old`
    pool.close(sync=False)  # the process dies: the journal holds it

    def crash(self: Any) -> None:
        raise KeyboardInterrupt("the process dies here")

    away = paths[1] + ".away"
    os.rename(paths[1], away)
    monkeypatch.setattr(Pool, "_commit_membership", crash)
    try:
        pool = Pool.open(root)  # replays without device 1
    except KeyboardInterrupt:
        pass
    else:
        pool.close(sync=False)
    monkeypatch.undo()
    os.rename(away, paths[1])
    pool = Pool.open(root)
    try:
        assert pool.status().devices[1].state is DeviceState.MISSING
        assert pool.read(ext) == data
    finally:
        pool.close()


def test_a_membership_change_cut_short_leaves_every_member_current(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """A crash while a membership change writes the new generation leaves some members
    one generation ahead of the others and of the manifest.  Nothing was stored without
    any of them yet, so all are current: the next open must not call the ones behind
    stale (here that would be three of a RAID 5's four devices)."""
    import dwcore.pool.pool as pool_module

    root = str(tmp_path / "pool")
    rng = np.random.default_rng(10)
    pool = Pool.create(root, "5", 4, 8 * MiB, chunk_size=16 * KiB)
    ref = [(pool.write(data), data) for data in (rng.bytes(40 * KiB) for _ in range(10))]
    pool.sync()
    real = pool_module.write_superblock
    calls = 0

    def cut(device: Any, sb: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt("the process dies here")
        real(device, sb, **kw)

    monkeypatch.setattr(pool_module, "write_superblock", cut)
    with pytest.raises(KeyboardInterrupt):
        pool.fail_device(3)
    monkeypatch.undo()
    pool.close(sync=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoolDegradedWarning)
        pool = Pool.open(root)
    try:
        assert not pool.status().degraded
        for ext, data in ref:
            assert pool.read(ext) == data
    finally:
        pool.close()
