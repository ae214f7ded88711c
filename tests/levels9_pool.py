"""Pool helpers shared by the issue 9 level tests (``raid-levels.md`` §0.5 through the pool)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from levels7_pool import Built, extent_lost, seed_of

from dwcore.errors import DataLossError
from dwcore.pool import Extent, Pool


def check_set(
    b: Built,
    pool: Pool,
    failed: frozenset[int],
    rng: np.random.Generator,
    lost: Callable[[Extent, frozenset[int]], bool] | None = None,
    reads: int = 100,
) -> list[str]:
    """Read every extent of ``b`` with ``failed`` lost: byte-identical where its rows are
    decodable (``lost``, default ``levels7_pool.extent_lost``), DataLossError naming a
    failed device where not; with a survivable F also ``reads`` random unaligned
    sub-reads.  Returns the problems."""
    problems = []
    for ext, data in b.ref:
        must = extent_lost(b.layout, b.rpc, ext, failed) if lost is None else lost(ext, failed)
        try:
            got = pool.read(ext)
        except DataLossError as exc:
            if not must:
                problems.append(f"F={sorted(failed)}: {ext!r} raised {exc}")
            elif not set(exc.failed) & failed:
                problems.append(f"F={sorted(failed)}: error names {exc.failed}")
            continue
        if must:
            problems.append(f"F={sorted(failed)}: {ext!r} read although lost")
        elif got != data:
            problems.append(f"F={sorted(failed)}: {ext!r} WRONG BYTES")
    if b.layout.survives(failed):
        items = list(b.ref)
        for _ in range(reads):
            ext, data = items[int(rng.integers(0, len(items)))]
            off = int(rng.integers(0, len(data)))
            n = int(rng.integers(0, len(data) - off + 1))
            if pool.read(ext, off, n) != data[off : off + n]:
                problems.append(f"F={sorted(failed)}: sub-read wrong")
    return problems


def crash(b: Built, seed: int) -> None:
    """Freeze the devices, cut power on each (seeded), drop the pool as a crash would."""
    for w in b.rig.wrappers:
        w.fail_now("any")
    for i, w in enumerate(b.rig.wrappers):
        w.power_cut(seed=seed_of("cut9", seed, i), keep="random")
    b.pool.close(sync=False)
