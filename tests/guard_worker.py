"""Run kernels on buffers that touch PROT_NONE guard pages (ISA-L's trick).

Usage: ``python guard_worker.py OP`` with OP one of :data:`OPS`.  Every input
and output buffer is placed so that it ends exactly at the end of its
accessible memory (and, in a second pass, starts right after a guard page):
a kernel that reads or writes a single byte outside its buffers dies with
SIGSEGV.  Results are checked against the pure-Python reference on every
instruction set this CPU can run.  Exit status 0 when all is well, 1 on a
wrong result (described on stderr); a crash is the caller's to report.

Run by test_guard_pages.py in a subprocess so a crash fails one test instead
of killing pytest.
"""

from __future__ import annotations

import faulthandler
import sys
from collections.abc import Callable, Iterator

import numpy as np
import reference as ref
from buffers import GuardedArena

import dwcore.native
from dwcore import ec

LENGTHS = (
    1,
    2,
    15,
    16,
    17,
    31,
    32,
    33,
    63,
    64,
    65,
    127,
    128,
    129,
    4095,
    4096,
    4097,
    8193,
    65536 + 33,
)  # the last one takes the streaming-store paths
SLOTS = 20
U8 = np.uint8

failures: list[str] = []


def note(what: str) -> None:
    """Say which case runs next, so a crash's stderr tail names it."""
    print(f"running {what}", file=sys.stderr, flush=True)


def check(ok: bool, what: str) -> None:
    if not ok:
        failures.append(what)
        print(f"FAIL {what}", file=sys.stderr, flush=True)


def placements(
    arena: GuardedArena,
) -> Iterator[tuple[str, Callable[[int, np.ndarray | None], np.ndarray]]]:
    yield "end", arena.at_end
    yield "start", arena.at_start


def op_rs_encode(arena: GuardedArena, rng: np.random.Generator, isa: str) -> None:
    for k, m in ((1, 1), (3, 2), (4, 4), (5, 5), (10, 4), (4, 9)):
        rs = ec.ReedSolomon(k, m)
        for n in LENGTHS:
            data = rng.integers(0, 256, (k, n), dtype=U8)
            expected = ref.rs_encode(k, m, data)
            for where, place in placements(arena):
                note(f"{isa} rs encode {where} k={k} m={m} n={n}")
                arena.reset()
                din = [place(n, row) for row in data]
                dout = [place(n, None) for _ in range(m)]
                rs.encode_into(din, dout)
                check(
                    np.array_equal(np.stack(dout), expected),
                    f"{isa} rs encode_into {where} k={k} m={m} n={n}",
                )
                check(
                    np.array_equal(rs.encode(din), expected),
                    f"{isa} rs encode {where} k={k} m={m} n={n}",
                )


def op_rs_reconstruct(arena: GuardedArena, rng: np.random.Generator, isa: str) -> None:
    for k, m in ((1, 2), (3, 2), (5, 5), (10, 4), (4, 9)):
        rs = ec.ReedSolomon(k, m)
        for n in LENGTHS:
            data = rng.integers(0, 256, (k, n), dtype=U8)
            shards = [*data, *ref.rs_encode(k, m, data)]
            for where, place in placements(arena):
                for _ in range(3):
                    e = int(rng.integers(1, m + 1))
                    missing = sorted(int(x) for x in rng.choice(k + m, e, replace=False))
                    note(f"{isa} rs reconstruct {where} k={k} m={m} n={n} missing={missing}")
                    arena.reset()
                    work = [place(n, s) for s in shards]
                    for i in missing:
                        work[i][:] = 0
                    rs.reconstruct_into(work, missing)
                    ok = all(np.array_equal(w, s) for w, s in zip(work, shards, strict=True))
                    check(
                        ok, f"{isa} rs reconstruct_into {where} k={k} m={m} n={n} missing={missing}"
                    )
                    got = rs.reconstruct([None if i in missing else w for i, w in enumerate(work)])
                    ok = all(np.array_equal(g, s) for g, s in zip(got, shards, strict=True))
                    check(ok, f"{isa} rs reconstruct {where} k={k} m={m} n={n} missing={missing}")


def op_parity(arena: GuardedArena, rng: np.random.Generator, isa: str) -> None:
    for k in (1, 2, 3, 5, 9):
        for n in LENGTHS:
            data = rng.integers(0, 256, (k, n), dtype=U8)
            for order in ref.ORDERS:
                expected = ref.pqr_parity(data, order)
                for where, place in placements(arena):
                    note(f"{isa} xor/pq/pqr {order} {where} k={k} n={n}")
                    arena.reset()
                    din = [place(n, row) for row in data]
                    p, q, r = (place(n, None) for _ in range(3))
                    ec.xor_parity_into(din, p)
                    check(np.array_equal(p, expected[0]), f"{isa} xor {where} k={k} n={n}")
                    ec.pq_parity_into(din, p, q, order=order)
                    check(np.array_equal(q, expected[1]), f"{isa} pq {order} {where} k={k} n={n}")
                    ec.pqr_parity_into(din, p, q, r, order=order)
                    got = (p, q, r)
                    ok = all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))
                    check(ok, f"{isa} pqr {order} {where} k={k} n={n}")


def recover_one(
    kind: str,
    order: str,
    shards: list[np.ndarray],
    missing: tuple[int, ...],
    place: Callable[[int, np.ndarray | None], np.ndarray],
) -> bool:
    n = len(shards[0])
    work = [place(n, s) for s in shards]
    for i in missing:
        work[i][:] = 0
    if kind == "xor":
        ec.xor_recover_into(work, missing)
    elif kind == "pq":
        ec.pq_recover_into(work, missing, order=order)
    else:
        ec.pqr_recover_into(work, missing, order=order)
    return all(np.array_equal(w, s) for w, s in zip(work, shards, strict=True))


def op_recover(arena: GuardedArena, rng: np.random.Generator, isa: str) -> None:
    lengths = (1, 15, 17, 31, 33, 64, 65, 4095, 4097, 8193, 65536 + 33)
    for k in (1, 2, 4, 7):
        for n in lengths:
            data = rng.integers(0, 256, (k, n), dtype=U8)
            for order in ref.ORDERS:
                stripes = {
                    "xor": [*data, ref.xor_parity(data)],
                    "pq": [*data, *ref.pq_parity(data, order)],
                    "pqr": [*data, *ref.pqr_parity(data, order)],
                }
                for kind, shards in stripes.items():
                    patterns = ref.erasure_patterns(len(shards), len(shards) - k)[1:]
                    for where, place in placements(arena):
                        for missing in patterns:
                            what = f"{isa} {kind} {order} {where} k={k} n={n} missing={missing}"
                            note(f"recover_into {what}")
                            arena.reset()
                            ok = recover_one(kind, order, shards, missing, place)
                            check(ok, f"recover_into {what}")


OPS: dict[str, Callable[[GuardedArena, np.random.Generator, str], None]] = {
    "rs_encode": op_rs_encode,
    "rs_reconstruct": op_rs_reconstruct,
    "parity": op_parity,
    "recover": op_recover,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in OPS:
        print(f"usage: {argv[0]} {{{'|'.join(OPS)}}}", file=sys.stderr)
        return 2
    op = OPS[argv[1]]
    faulthandler.enable()
    arena = GuardedArena(SLOTS, max(LENGTHS))
    for isa in dwcore.native.available_isas():
        print(f"{argv[1]} on {isa}", file=sys.stderr, flush=True)
        with dwcore.native.force_isa(isa):
            op(arena, np.random.default_rng(1234), isa)
    if failures:
        print(f"{len(failures)} failures", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
