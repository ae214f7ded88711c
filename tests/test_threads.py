"""Concurrent use from several threads (the kernels run without the GIL).

One shared ReedSolomon (whose decode-table cache is shared state) and the
parity functions are hammered by 4 threads with buffers above the 2 KiB
no-GIL threshold; every result is compared with one computed beforehand on a
single thread.  No timing is measured.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np

from dwcore import ec

THREADS = 4
U8 = np.uint8


def run_threads(worker: Callable[[int], list[str]]) -> list[str]:
    barrier = threading.Barrier(THREADS)

    def start(t: int) -> list[str]:
        barrier.wait()  # all threads enter the kernels together
        return worker(t)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(start, range(THREADS)))
    return [e for r in results for e in r]


def test_shared_reed_solomon_from_threads() -> None:
    k, m, n = 8, 4, 8192 + 77
    rs = ec.ReedSolomon(k, m)
    rng = np.random.default_rng(99)
    stripes = [rng.integers(0, 256, (k, n), dtype=U8) for _ in range(THREADS * 2)]
    expected = [rs.encode(s) for s in stripes]
    patterns = list(combinations(range(k + m), m))[::3]  # many distinct decode plans

    def worker(t: int) -> list[str]:
        errors: list[str] = []
        local = np.random.default_rng(t)
        out = np.empty((m, n), dtype=U8)
        for it in range(60):
            si = int(local.integers(len(stripes)))
            data, parity = stripes[si], expected[si]
            if it % 2 == 0:
                rs.encode_into(data, out)
                if not np.array_equal(out, parity):
                    errors.append(f"thread {t} encode_into stripe {si}")
                if not np.array_equal(rs.encode(data), parity):
                    errors.append(f"thread {t} encode stripe {si}")
            missing = patterns[(t * 37 + it) % len(patterns)]
            shards = [*data, *parity]
            got = rs.reconstruct([None if i in missing else s for i, s in enumerate(shards)])
            for i in missing:
                if not np.array_equal(got[i], shards[i]):
                    errors.append(f"thread {t} reconstruct {missing} shard {i}")
            work = np.stack(shards)
            work[list(missing)] = 0
            rs.reconstruct_into(work, missing)
            if not np.array_equal(work, np.stack(shards)):
                errors.append(f"thread {t} reconstruct_into {missing}")
        return errors

    errors = run_threads(worker)
    assert not errors, errors[:10]


def test_parity_from_threads() -> None:
    k, n = 10, 4096 + 33
    rng = np.random.default_rng(5)
    stripes = [rng.integers(0, 256, (k, n), dtype=U8) for _ in range(THREADS)]
    expected = []
    for s in stripes:
        p, q, r = ec.pqr_parity(s, order="md")
        expected.append((p.copy(), q.copy(), r.copy()))

    def worker(t: int) -> list[str]:
        errors: list[str] = []
        data = stripes[t]
        ep, eq, er = expected[t]
        p, q, r = (np.empty(n, U8) for _ in range(3))
        for it in range(80):
            ec.xor_parity_into(data, p)
            ec.pq_parity_into(data, p, q, order="md")
            if not (np.array_equal(p, ep) and np.array_equal(q, eq)):
                errors.append(f"thread {t} pq iteration {it}")
            ec.pqr_parity_into(data, p, q, r, order="md")
            if not np.array_equal(r, er):
                errors.append(f"thread {t} pqr iteration {it}")
            a, b = sorted({it % k, (it * 7 + t) % k} | {(it + 1) % k})[:2]
            shards = [*data, ep, eq]
            got = ec.pq_recover([None if i in (a, b) else s for i, s in enumerate(shards)])
            if not (np.array_equal(got[a], data[a]) and np.array_equal(got[b], data[b])):
                errors.append(f"thread {t} pq_recover ({a}, {b})")
            got3 = ec.pqr_recover(
                [None if i in (a, b, k + 1) else s for i, s in enumerate([*data, ep, eq, er])],
                order="md",
            )
            if not np.array_equal(got3[a], data[a]):
                errors.append(f"thread {t} pqr_recover ({a}, {b}, Q)")
        return errors

    errors = run_threads(worker)
    assert not errors, errors[:10]


def test_many_codes_from_threads() -> None:
    """Threads building their own codes (and the shared parity-code caches) at once."""
    rng = np.random.default_rng(11)
    shapes = [(3, 2), (6, 3), (10, 4), (12, 6)]
    data = {s: rng.integers(0, 256, (s[0], 2048 + 5), dtype=U8) for s in shapes}
    expected = {s: ec.ReedSolomon(*s).encode(d) for s, d in data.items()}

    def worker(t: int) -> list[str]:
        errors: list[str] = []
        for it in range(40):
            shape = shapes[(t + it) % len(shapes)]
            rs = ec.ReedSolomon(*shape)
            if not np.array_equal(rs.encode(data[shape]), expected[shape]):
                errors.append(f"thread {t} {shape}")
            k = 3 + (t + it) % 20
            block = data[(12, 6)][:k] if k <= 12 else np.resize(data[(12, 6)], (k, 2048 + 5))
            shards = [*block, *ec.pq_parity(block, order="zfs")]
            got = ec.pq_recover([None, *shards[1:-1], None], order="zfs")
            if not np.array_equal(got[0], shards[0]):
                errors.append(f"thread {t} pq_recover k={k}")
        return errors

    errors = run_threads(worker)
    assert not errors, errors[:10]
