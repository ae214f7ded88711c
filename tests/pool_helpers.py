"""Helpers for the pool conformance suite (``raid-levels.md`` §0.5).

Everything here talks to the pool only through its public API
(``dwcore.pool``) and to the devices through :class:`FaultyDevice`; where the
suite needs to know *where* an extent's bytes live (to corrupt one member, or
to decide which extents a failure set must lose), it finds them on the raw
device images by content, so it does not depend on the engine's internal
block maps:

* the data is seeded random, so the first 32 bytes of every block-sized piece
  of an extent are unique across the whole pool;
* every device block (``block_size`` aligned on the device) is indexed by its
  first 32 bytes; a piece found there is stored at that device offset.

Parity blocks (P, Q) never match a needle, so a located piece is always a data
block or a mirror copy.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dwcore.devices import FaultyDevice, RamDevice
from dwcore.errors import DataLossError, DWError

KiB = 1 << 10
MiB = 1 << 20
NEEDLE = 32  # bytes of a piece used to find it on the devices

#: The five levels of this version with (n_devices, level options) per
#: configuration: ``DEFAULT`` runs by default, ``ALL`` with DWCORE_SLOW_TESTS=1.
LEVELS = ("0", "1", "5", "6", "10")
DEFAULT_CONFIGS: dict[str, list[tuple[int, dict[str, Any]]]] = {
    "0": [(2, {}), (5, {}), (8, {})],
    "1": [(2, {}), (3, {}), (5, {})],
    "5": [(3, {}), (5, {}), (8, {})],
    "6": [(4, {}), (6, {}), (8, {})],
    "10": [(4, {}), (6, {}), (8, {})],
}
ALL_CONFIGS: dict[str, list[tuple[int, dict[str, Any]]]] = {
    "0": [(n, {}) for n in range(2, 9)],
    "1": [(n, {}) for n in range(2, 9)],
    "5": [(n, {}) for n in range(3, 9)]
    + [(n, {"algorithm": a}) for n in (4, 7) for a in ("la", "rs", "ra")],
    "6": [(n, {}) for n in range(4, 9)],
    "10": [(4, {}), (6, {}), (8, {}), (6, {"copies": 3})],
}


def chunk_for(n: int) -> int:
    """A small chunk that varies with N (4, 8 or 16 KiB) so several chunk sizes are covered."""
    return (4 * KiB, 8 * KiB, 16 * KiB)[n % 3]


# -- devices --------------------------------------------------------------------


@dataclass
class Rig:
    """A pool's devices: inner RAM devices and the fault-injecting wrappers the pool uses.

    Wrappers never close their inner device (``close_inner=False``), so the
    bytes survive a pool's close and can be re-wrapped for :meth:`Pool.open`.
    """

    path: str
    inners: list[Any]
    wrappers: list[FaultyDevice] = field(default_factory=list)

    @classmethod
    def ram(cls, path: str, n: int, size: int) -> Rig:
        inners = [RamDevice(size, name=f"{os.path.basename(path)}-{i}") for i in range(n)]
        rig = cls(path, inners)
        rig.rewrap()
        return rig

    @property
    def size(self) -> int:
        return self.inners[0].size

    def rewrap(self) -> list[FaultyDevice]:
        """Fresh wrappers over the same inner devices (after a crash or a close)."""
        self.wrappers = [FaultyDevice(d, close_inner=False) for d in self.inners]
        return self.wrappers

    def replace_inner(self, i: int, size: int | None = None) -> FaultyDevice:
        """A blank device for slot ``i`` (returns its wrapper; the rig now uses it)."""
        self.inners[i] = RamDevice(size or self.size, name=f"{os.path.basename(self.path)}-r{i}")
        self.wrappers[i] = FaultyDevice(self.inners[i], close_inner=False)
        return self.wrappers[i]

    def fail(self, failed: Iterable[int]) -> None:
        for i in failed:
            self.wrappers[i].fail_now("any")

    def heal(self) -> None:
        for w in self.wrappers:
            w.heal()

    def images(self) -> list[bytes]:
        return [d.pread(0, d.size) for d in self.inners]

    def close(self) -> None:
        for d in self.inners:
            d.close()


@dataclass
class Image:
    """A saved copy of a pool (device bytes and the files under its path)."""

    devices: list[bytes]
    files: dict[str, bytes]

    @classmethod
    def save(cls, rig: Rig) -> Image:
        return cls(rig.images(), read_tree(rig.path))

    def restore(self, rig: Rig) -> None:
        for d, img in zip(rig.inners, self.devices, strict=True):
            d.pwrite(0, img)
        shutil.rmtree(rig.path, ignore_errors=True)
        os.makedirs(rig.path, exist_ok=True)
        for rel, data in self.files.items():
            p = os.path.join(rig.path, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)


def read_tree(path: str) -> dict[str, bytes]:
    """Every regular file under ``path`` (relative name -> bytes)."""
    out: dict[str, bytes] = {}
    if not os.path.isdir(path):
        return out
    for root, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = f.read()
    return out


def quiet_close(pool: Any) -> None:
    """Close a pool whose devices we are about to discard or restore; errors do not matter here."""
    with contextlib.suppress(DWError, OSError):
        pool.close()


# -- reference data ---------------------------------------------------------------


def sizes_for(rng: np.random.Generator, count: int, chunk: int, large: Sequence[int]) -> list[int]:
    """``count`` sizes from 1 B to 3·C (edge sizes first), then the ``large`` ones."""
    edge = [1, 2, 31, 32, 33, 4095, 4096, 4097, chunk - 1, chunk, chunk + 1, 3 * chunk]
    rnd = rng.integers(1, 3 * chunk + 1, size=max(0, count - len(edge))).tolist()
    return edge[:count] + rnd + list(large)


@dataclass
class Ref:
    """The reference: every live extent and the bytes it must read back as."""

    items: dict[bytes, tuple[Any, bytes]] = field(default_factory=dict)

    def add(self, ext: Any, data: bytes) -> None:
        self.items[bytes(ext)] = (ext, data)

    def remove(self, ext: Any) -> None:
        del self.items[bytes(ext)]

    def __iter__(self) -> Iterator[tuple[Any, bytes]]:
        return iter(list(self.items.values()))

    def __len__(self) -> int:
        return len(self.items)


def fill(pool: Any, rng: np.random.Generator, sizes: Iterable[int], ref: Ref | None = None) -> Ref:
    ref = ref if ref is not None else Ref()
    for n in sizes:
        data = rng.bytes(int(n))
        ref.add(pool.write(data), data)
    return ref


def sub_reads(rng: np.random.Generator, size: int, count: int) -> list[tuple[int, int]]:
    out = []
    for _ in range(count):
        off = int(rng.integers(0, size))
        out.append((off, int(rng.integers(0, size - off + 1))))
    return out


def check_all(pool: Any, ref: Ref, rng: np.random.Generator | None = None, subs: int = 0) -> None:
    """Every extent reads back byte-identical (and ``subs`` random unaligned sub-reads in all)."""
    for ext, data in ref:
        got = pool.read(ext)
        assert got == data, f"extent of {len(data)} bytes read back wrong"
    if rng is not None and subs and len(ref):
        items = list(ref)
        for _ in range(subs):
            ext, data = items[int(rng.integers(0, len(items)))]
            ((off, n),) = sub_reads(rng, len(data), 1)
            got = pool.read(ext, off, n)
            assert got == data[off : off + n], f"sub-read [{off}, +{n}) of {len(data)} B wrong"


# -- where the bytes live -------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A piece of an extent found on a device (device offset of its device block)."""

    device: int
    offset: int


class Locator:
    """Finds extents' blocks on raw device images by content (module docstring)."""

    def __init__(self, images: Sequence[bytes], block_size: int) -> None:
        self.block_size = block_size
        self.index: dict[bytes, list[Block]] = {}
        for dev, img in enumerate(images):
            view = memoryview(img)
            for off in range(0, len(img) - NEEDLE + 1, block_size):
                key = bytes(view[off : off + NEEDLE])
                if key.count(key[:1]) == NEEDLE:  # all one byte (zeros): never a needle
                    continue
                self.index.setdefault(key, []).append(Block(dev, off))

    def pieces(self, data: bytes) -> list[list[Block] | None]:
        """For each block-sized piece of ``data``: where it is stored (None if unknown)."""
        out: list[list[Block] | None] = []
        for pos in range(0, len(data), self.block_size):
            needle = data[pos : pos + NEEDLE]
            out.append(self.index.get(needle) if len(needle) == NEEDLE else None)
        return out


def stripe_of(layout: Any, base: int, blk: Block) -> int:
    return (blk.offset - base) // layout.device_bytes_per_stripe


def infer_base(layout: Any, blocks: Iterable[Block], data_offset: int) -> int | None:
    """The device offset where the layout's stripe 0 starts.

    Tries ``data_offset + j·C`` for j in one rotation period and keeps the one
    where every located data block sits on a device holding data (not parity)
    in its stripe; for layouts where every stripe looks alike any j works and
    ``data_offset`` is returned.
    """
    blocks = list(blocks)
    c = layout.device_bytes_per_stripe
    for j in range(max(1, layout.period)):
        base = data_offset + j * c
        ok = True
        for b in blocks[:400]:
            s = (b.offset - base) // c
            if s < 0:
                ok = False
                break
            sm = layout.stripe(s)
            roles = [m.role.data_index for m in sm.on_device(b.device)]
            if not any(r is not None for r in roles):
                ok = False
                break
        if ok:
            return base
    return None


def classify(
    layout: Any,
    base: int,
    block_size: int,
    pieces: list[list[Block] | None],
    failed: frozenset[int],
) -> str:
    """What reading an extent must do with ``failed`` lost: "read", "raise" or "either".

    * "read": every located piece has a live copy or sits in a stripe that is
      recoverable (``StripeMap.recoverable``), and every piece was located;
    * "raise": some piece has every copy lost and its row cannot be decoded
      even when the row's unused (padding) data blocks count as known — so no
      engine can return it;
    * "either": in between (a row only decodable by treating padding as
      known zeros, or pieces that could not be located): the read may return
      the right bytes or raise DataLossError, never anything else.
    """
    c = layout.device_bytes_per_stripe
    rows: dict[tuple[int, int], list[list[Block]]] = {}
    lost_pieces: list[tuple[int, int]] = []
    must_read = True
    for occ in pieces:
        if occ is None:
            must_read = False
            continue
        rel = occ[0].offset - base
        key = (rel // c, (rel % c) // block_size)
        rows.setdefault(key, []).append(occ)
        if any(b.device not in failed for b in occ):
            continue
        if not layout.stripe(key[0]).recoverable(failed):
            must_read = False
        lost_pieces.append(key)
    for key in lost_pieces:
        sm = layout.stripe(key[0])
        if sm.codec.parity_count == 0:
            return "raise"  # mirror (every copy lost) or none
        used_lost = sum(1 for occ in rows[key] if all(b.device in failed for b in occ))
        parity_lost = sum(1 for m in sm.parity_members if m.device in failed)
        if used_lost + parity_lost > sm.codec.parity_count:
            return "raise"
    return "read" if must_read else "either"


def failure_sets(n: int, fmax: int) -> list[frozenset[int]]:
    return [frozenset(c) for k in range(fmax + 1) for c in itertools.combinations(range(n), k)]


def names_failed(exc: DataLossError, failed: Iterable[int], describes: Sequence[str]) -> bool:
    """``exc`` names at least one failed device: by index in ``.failed`` or in its message."""
    f = set(failed)
    if f & set(exc.failed):
        return True
    msg = str(exc)
    return any(describes[i] in msg for i in f)
