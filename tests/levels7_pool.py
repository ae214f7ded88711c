"""Pool-level helpers for the issue 7 levels (``raid-levels.md`` §0.5 through the pool).

The §0.5 suite of ``test_pool_conformance.py`` finds stripes on the devices
by assuming stripe s sits at ``s·C``; several issue-7 layouts do not (1E and
MD10 put copies at other offsets, RAID 100 stripes are top chunks).  These
helpers decide instead, from the layout and the pool's documented row
mapping, exactly which extents a failure set must lose:

* row g of the pool is row ``g mod (C/B)`` of stripe ``g div (C/B)``: block
  ``g mod (C/B)`` of every member chunk of that stripe;
* inside the rows of one stripe (a segment of n rows at byte ``offset`` of
  the extent) data index d holds extent bytes
  ``[offset + d·n·B, offset + (d+1)·n·B)``; blocks past the extent's length
  are zero padding the reader knows, never erasures.

A row is lost when the members erased by F, padding excepted, are more than
its codec (or, for grouped codecs, one of its groups) tolerates, or for
mirrors when a used data index has every copy on F.  An extent must read
back iff none of its rows is lost — and then byte-identical.
"""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from pool_helpers import KiB, MiB, Ref, Rig, fill, sizes_for

from dwcore.devices import data_area
from dwcore.pool import Pool
from dwcore.raid import Codec, Layout, RoleKind, StripeMap

BLOCK = 4096
DEV_SIZE = 8 * MiB
SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")
DATA_OFFSET = data_area(DEV_SIZE).offset


def seed_of(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def cfg_id(level: str, n: int, opts: dict[str, Any]) -> str:
    extra = "-".join(f"{k}={v}" for k, v in opts.items())
    return f"raid{level}-n{n}" + (f"-{extra}" if extra else "")


def segments(rpc: int, first: int, rows: int) -> Iterator[tuple[int, int, int, int]]:
    """``(stripe, row in chunk, rows, byte offset in the extent)``: the pool's row mapping."""
    g, end, off = first, first + rows, 0
    while g < end:
        s, r = divmod(g, rpc)
        n = min(rpc - r, end - g)
        yield s, r, n, off
        off += n
        g += n


def hamming_codewords(k: int, m: int) -> list[tuple[int, ...]]:
    """Every codeword of RAID 2's code as member bits (data 0..k-1, then checks), from the
    spec's rule written out: positions 1..N, checks at 2^i (XOR of the data positions with
    bit i), data at the other positions in order; an (m-1)+1 secded code adds the overall
    parity of all positions."""
    r = m if (1 << m) - 1 == k + m else m - 1
    data_pos = [p for p in range(1, 1 << r) if p & (p - 1)]
    out = []
    for word in range(1 << k):
        d = [word >> i & 1 for i in range(k)]
        checks = [sum(d[j] for j, p in enumerate(data_pos) if p >> i & 1) & 1 for i in range(r)]
        if m > r:
            checks.append((sum(d) + sum(checks)) & 1)
        out.append((*d, *checks))
    return out


def _row_lost(sm: StripeMap, used: set[int], failed: frozenset[int]) -> bool:
    """True when a row whose used data indices are ``used`` cannot be read with F lost."""
    members = sm.members

    def erased(j: int) -> bool:
        m = members[j]
        if m.device not in failed or m.role.kind is RoleKind.SPARE:
            return False
        d = m.role.data_index
        return d is None or d in used

    if sm.codec is Codec.MIRROR:
        return any(
            all(members[j].device in failed for j, m in enumerate(members) if m.role.of == d)
            for d in used
        )
    if sm.codec is Codec.NONE:
        return any(erased(j) for j in range(len(members)))
    if sm.codec is Codec.HAMMING:
        if not used:
            return False
        gone = {j for j, m in enumerate(members) if m.device in failed}
        words = hamming_codewords(sm.k, len(members) - sm.k)
        return any(any(w) and all(j in gone for j, bit in enumerate(w) if bit) for w in words)
    if sm.codec.group_codec is not None:
        tol = sm.codec.parity_count
        return any(sum(1 for j in idx if erased(j)) > tol for idx in sm.groups)
    return sum(1 for j in range(len(members)) if erased(j)) > sm.codec.parity_count


def used_blocks(layout: Layout, rpc: int, ext: Any) -> Iterator[tuple[int, int, set[int]]]:
    """``(stripe, row in chunk, data indices holding extent bytes)`` for every row of ``ext``.

    Plain levels: the engine's member-by-member mapping.  Interleaved levels
    (RAID 3: byte x of a row's k·B bytes on member x mod k; RAID 2: k-byte
    groups to one byte of each member) hold data in a member's block of row
    ρ of the extent iff its first logical byte is below the length.
    """
    b, k = BLOCK, layout.k
    kind = getattr(layout, "interleave", None)
    for s, r, n, off in segments(rpc, ext.first_row, ext.rows):
        for i in range(n):
            if kind == "byte":
                used = {d for d in range(k) if (off + i) * k * b + d < ext.length}
            elif kind == "bit":
                used = set(range(k)) if (off + i) * k * b < ext.length else set()
            else:
                base = off * k * b
                used = {d for d in range(k) if base + d * n * b + i * b < ext.length}
            yield s, r + i, used


def extent_lost(
    layout: Layout, rpc: int, ext: Any, failed: frozenset[int], padding_known: bool = True
) -> bool:
    """True when some row of ``ext`` cannot be read with the devices ``failed`` lost.

    ``padding_known=False``: every data member of every row counts as used
    (how the interleaved levels read: whole rows).
    """
    for s, _r, used in used_blocks(layout, rpc, ext):
        if not padding_known:
            used = set(range(layout.k))
        if _row_lost(layout.stripe(s), used, failed):
            return True
    return False


class Built:
    """A filled pool on RAM devices behind fault-injecting wrappers, and its reference."""

    def __init__(
        self,
        tmp_path: Any,
        level: str,
        n: int,
        opts: dict[str, Any],
        *,
        count: int | None = None,
        chunk: int | None = None,
        name: str = "pool",
        pool_class: Any = Pool,
        create_kw: dict[str, Any] | None = None,
    ) -> None:
        # pool_class / create_kw: a Pool subclass whose create takes more (RAID 7's journal=)
        self.level, self.n, self.opts = level, n, opts
        self.chunk = chunk or (4 * KiB, 8 * KiB, 16 * KiB)[n % 3]
        self.path = str(tmp_path / name)
        os.makedirs(self.path, exist_ok=True)
        self.rig = Rig.ram(self.path, n, DEV_SIZE)
        self.pool = pool_class.create(
            self.path,
            level,
            self.rig.wrappers,
            DEV_SIZE,
            chunk_size=self.chunk,
            block_size=BLOCK,
            **opts,
            **(create_kw or {}),
        )
        self.layout = self.pool.layout
        self.rpc = self.chunk // BLOCK
        self.rng = np.random.default_rng(seed_of(level, n, sorted(opts.items()), name))
        period = max(1, self.layout.period)
        if count is None:
            count = max(30, 2 * period * self.rpc + 8)
        large = (7 * self.layout.k * BLOCK + 5, 150 * KiB + 3)
        self.ref = fill(self.pool, self.rng, sizes_for(self.rng, count, self.chunk, large))
        self.pool.sync()

    def stripes_of(self, ext: Any) -> set[int]:
        return {r // self.rpc for r in range(ext.first_row, ext.first_row + ext.rows)}

    def coverage(self) -> set[int]:
        out: set[int] = set()
        for ext, _ in self.ref:
            out |= self.stripes_of(ext)
        return out

    def reopen(self) -> Pool:
        self.pool = Pool.open(self.path, devices=self.rig.rewrap())
        return self.pool

    def lost(self, ext: Any, failed: frozenset[int]) -> tuple[bool, bool]:
        """``(must raise, may raise)`` for reading ``ext`` with ``failed`` lost."""
        must = extent_lost(self.layout, self.rpc, ext, failed)
        if getattr(self.layout, "interleave", None) is None:
            return must, must
        return must, extent_lost(self.layout, self.rpc, ext, failed, padding_known=False)

    def blocks(self, ext: Any) -> Iterator[tuple[int, list[tuple[int, int]]]]:
        """Per used data block of ``ext``: ``(data index, [(device, absolute offset)])``,
        every copy (mirrors) or the one data member."""
        for s, r, used in used_blocks(self.layout, self.rpc, ext):
            sm = self.layout.stripe(s)
            for d in sorted(used):
                where = [
                    (m.device, DATA_OFFSET + m.device_offset + r * BLOCK)
                    for m in sm.data_members(d)
                ]
                yield d, where

    def survivable_set(self, rng: np.random.Generator, size: int) -> frozenset[int]:
        cands = [
            frozenset(c)
            for c in itertools.combinations(range(self.n), size)
            if self.layout.survives(c)
        ]
        return cands[int(rng.integers(0, len(cands)))]


def failure_sets(n: int, fmax: int) -> list[frozenset[int]]:
    return [frozenset(c) for k in range(fmax + 1) for c in itertools.combinations(range(n), k)]


def overwrite_some(pool: Pool, ref: Ref, rng: np.random.Generator, frac: float = 0.1) -> None:
    """Write new extents for a fraction of the reference and free the old ones."""
    items = list(ref)
    pick = rng.choice(len(items), size=max(1, int(len(items) * frac)), replace=False)
    for i in pick:
        old, data = items[int(i)]
        new = rng.bytes(len(data) if rng.random() < 0.5 else int(rng.integers(1, 48 * KiB)))
        ref.add(pool.write(new), new)
        pool.free(old)
        ref.remove(old)


def data_area_bytes(image: bytes, pool: Pool) -> bytes:
    """A device image's data area: the stripes and the checksum table after them."""
    lo = DATA_OFFSET
    hi = lo + pool.checksum_table_offset + (pool.checksum_table_offset // BLOCK) * 4
    return image[lo:hi]


def member_stripes(layout: Layout, device: int, offsets: Iterable[int]) -> set[int]:
    """The stripes owning the given device offsets (absolute, inside the data area)."""
    return {layout.member_at(device, off - DATA_OFFSET)[0].index for off in offsets}
