"""An independent port of ``raid-levels.md`` §6 (Declustered) placement for the tests.

Written from the spec text alone (not from :mod:`dwcore.raid.declustered`):
SplitMix64, the chained Fisher–Yates base permutations, the slice/group
geometry and the distributed spares.  Used as the golden reference for the
layout, the U-interleaved data mapping (:func:`locate`) and the
rebuild-spread metric over a full permutation period (vectorised with
numpy), and for the failure matrix's expectations (:func:`extent_lost`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")

M64 = (1 << 64) - 1


class SplitMix64:
    """``next()`` of the spec: state starts at the seed."""

    def __init__(self, seed: int) -> None:
        self.x = seed & M64

    def next(self) -> int:
        self.x = (self.x + 0x9E3779B97F4A7C15) & M64
        z = self.x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def nperms_for(children: int) -> int:
    return 256 if children < 32 else 512


def base_perms(children: int, seed: int) -> list[list[int]]:
    """base[i] = base[i-1] shuffled (Fisher–Yates from the top), base[-1] = identity."""
    rng = SplitMix64(seed)
    prev = list(range(children))
    out = []
    for _ in range(nperms_for(children)):
        row = list(prev)
        for j in range(children - 1, 0, -1):
            k = rng.next() % (j + 1)
            row[j], row[k] = row[k], row[j]
        out.append(row)
        prev = row
    return out


def perm(base: list[list[int]], children: int, t: int) -> list[int]:
    b = base[(t // children) % len(base)]
    return [(b[x] + t % children) % children for x in range(children)]


def geometry(children: int, width: int, spares: int) -> tuple[int, int, int]:
    """(n active, groups per slice, rows per slice)."""
    n = children - spares
    lcm = math.lcm(width, n)
    return n, lcm // width, lcm // n


def group(
    base: list[list[int]], children: int, width: int, spares: int, height: int, gamma: int
) -> list[tuple[int, int]]:
    """``(device, device offset)`` of the W columns of group γ (column order)."""
    n, gps, rps = geometry(children, width, spares)
    t, gi = divmod(gamma, gps)
    p = perm(base, children, t)
    pos0, row0 = (gi * width) % n, (gi * width) // n
    out = []
    for w in range(width):
        pos, row = pos0 + w, row0
        if pos >= n:
            pos, row = pos - n, row + 1
        out.append((p[pos], (t * rps + row) * height))
    return out


def all_perms(children: int, seed: int) -> np.ndarray:
    """perm_t for every slice t of one full period: shape (nperms·C, C)."""
    base = np.array(base_perms(children, seed), dtype=np.int64)
    slices = len(base) * children
    t = np.arange(slices)
    return (base[(t // children) % len(base)] + (t % children)[:, None]) % children


def positions(children: int, width: int, spares: int) -> np.ndarray:
    """Position of column w of group gi of a slice: shape (gps, W)."""
    n, gps, _ = geometry(children, width, spares)
    out = np.empty((gps, width), dtype=np.int64)
    for gi in range(gps):
        for w in range(width):
            out[gi, w] = (gi * width + w) % n
    return out


def cooccurrence(children: int, width: int, spares: int, seed: int) -> np.ndarray:
    """co[a, b]: groups of one full period holding a column on both a and b (a ≠ b);
    co[a, a]: columns device a holds."""
    perms = all_perms(children, seed)
    pos = positions(children, width, spares)
    co = np.zeros((children, children), dtype=np.int64)
    for lo in range(0, len(perms), 2048):
        devs = perms[lo : lo + 2048][:, pos].reshape(-1, width)  # (groups, W)
        onehot = np.zeros((len(devs), children), dtype=np.float32)
        np.put_along_axis(onehot, devs, 1.0, axis=1)
        co += (onehot.T @ onehot).astype(np.int64)
    return co


def rebuild_spread(children: int, width: int, spares: int, seed: int) -> dict[str, float]:
    """§6's metric over one full period: for each single failure f, the units each survivor
    reads (the other W-1 columns of every group f is in); mean over f of max/min, and the
    mean share of a survivor's columns it reads (≈ α = (W-1)/(C-1))."""
    co = cooccurrence(children, width, spares, seed)
    ratios, shares, per = [], [], []
    for f in range(children):
        reads = np.array([co[f, s] for s in range(children) if s != f], dtype=np.float64)
        held = np.array([co[s, s] for s in range(children) if s != f], dtype=np.float64)
        ratios.append(reads.max() / reads.min())
        shares.append(float((reads / held).mean()))
        per.append(float(reads.mean()))
    return {
        "spread": float(np.mean(ratios)),
        "share": float(np.mean(shares)),
        "alpha": (width - 1) / (children - 1),
        "units_per_survivor": float(np.mean(per)),
        "units_lost": float(np.mean([co[f, f] for f in range(children)])),
    }


def locate(
    base: list[list[int]],
    children: int,
    data: int,
    parity: int,
    spares: int,
    height: int,
    unit: int,
    address: int,
) -> tuple[int, int]:
    """``(device, device offset)`` of logical data address L (§6): ``γ = L div (D·H)``,
    ``e = L mod (D·H)``, ``ui = e div U``, data column ``P + (ui mod D)``, offset inside the
    column ``(ui div D)·U + e mod U``."""
    gamma, e = divmod(address, data * height)
    ui = e // unit
    dev, off = group(base, children, data + parity, spares, height, gamma)[parity + ui % data]
    return dev, off + (ui // data) * unit + e % unit


def used_columns(
    k: int, block: int, unit: int, rpc: int, ext: Any
) -> Iterator[tuple[int, int, set[int]]]:
    """``(stripe, row in chunk, data columns holding extent bytes)`` for every row of ``ext``
    under the U-interleaved mapping: column d of an extent's row ρ holds data iff its first
    unit (logical byte ``ρ·k·B + d·U``) is below the length."""
    for i in range(ext.rows):
        g = ext.first_row + i
        yield g // rpc, g % rpc, {d for d in range(k) if i * k * block + d * unit < ext.length}


def extent_lost(
    layout: Any,
    rpc: int,
    block: int,
    ext: Any,
    failed: frozenset[int],
    maps: dict[int, Any] | None = None,
) -> bool:
    """True when some row of ``ext`` has more than P erased columns among its parity and
    used data columns (every Declustered code is MDS).  ``maps`` caches stripe maps."""
    maps = {} if maps is None else maps
    for s, _r, used in used_columns(layout.k, block, layout.unit, rpc, ext):
        sm = maps.get(s)
        if sm is None:
            sm = maps[s] = layout.stripe(s)
        erased = sum(
            1
            for m in sm.members
            if m.device in failed and (m.role.data_index is None or m.role.data_index in used)
        )
        if erased > layout.parity:
            return True
    return False


def check_set(b: Any, pool: Any, failed: frozenset[int], rng: np.random.Generator) -> list[str]:
    """``levels9_pool.check_set`` with this module's :func:`extent_lost` (the U-interleaved
    mapping) and 1 000 sub-reads with DWCORE_SLOW_TESTS=1."""
    from levels9_pool import check_set as check

    maps = b.__dict__.setdefault("stripe_maps", {})

    def lost(ext: Any, f: frozenset[int]) -> bool:
        return extent_lost(b.layout, b.rpc, pool.block_size, ext, f, maps)

    return check(b, pool, failed, rng, lost, 1000 if SLOW else 100)


def spare_moves(
    base: list[list[int]], children: int, spares: int, t: int, failures: list[int]
) -> dict[int, int]:
    """Where each failed device's column of slice t lives after ``failures`` were rebuilt
    into spare space one after the other (§6: "write it to the first free spare
    position's device"): spare position j of the slice is ``perm_t[C-1-j]``; a position
    is free when its device has not failed and holds no other rebuilt column.  A column
    already rebuilt onto a device that fails later is rebuilt again the same way; a
    device that is itself a spare position of the slice holds no column there."""
    p = perm(base, children, t)
    pos = [p[children - 1 - j] for j in range(spares)]
    active = set(p[: children - spares])
    gone: set[int] = set()
    where: dict[int, int] = {}
    for f in failures:
        gone.add(f)
        again = [g for g, d in where.items() if d == f]  # in the order they were placed
        for g in again:
            del where[g]
        for g in [*again, *([f] if f in active else [])]:
            taken = set(where.values())
            where[g] = next(d for d in pos if d not in gone and d not in taken)
    return where


def lost_span(
    layout: Any, rpc: int, block: int, ext: Any, failed: frozenset[int]
) -> tuple[int, int] | None:
    """The byte range ``[lo, hi)`` of ``ext`` spanning every unit that cannot be read with
    ``failed`` lost (§6 mapping: unit q·D + d of a row is on data column d), or None."""
    k, u = layout.k, layout.unit
    upr = block // u
    lo, hi = None, 0
    for i in range(ext.rows):
        g = ext.first_row + i
        s = g // rpc
        sm = layout.stripe(s)
        used = {d for d in range(k) if i * k * block + d * u < ext.length}
        erased = [
            m
            for m in sm.members
            if m.device in failed and (m.role.data_index is None or m.role.data_index in used)
        ]
        if len(erased) <= layout.parity:
            continue
        for m in erased:
            d = m.role.data_index
            if d is None:
                continue
            for q in range(upr):
                at = i * k * block + (q * k + d) * u
                if at < ext.length:
                    lo = at if lo is None else min(lo, at)
                    hi = max(hi, min(ext.length, at + u))
    return None if lo is None else (lo, hi)
