"""XOR, P+Q and P+Q+R parity and recovery against the reference, on every ISA."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np
import pytest
import reference as ref
from buffers import LENGTHS, misaligned, misaligned_rows

from dwcore import ec
from dwcore.errors import DataLossError, TooFewShardsError

U8 = np.uint8
ORDERS = ref.ORDERS
KS = (1, 2, 3, 4, 5, 7, 8, 13, 31)


def random_data(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    return rng.integers(0, 256, (k, n), dtype=U8)


def erase(shards: Sequence[np.ndarray], missing: Sequence[int]) -> list[np.ndarray | None]:
    return [None if i in missing else s for i, s in enumerate(shards)]


def assert_shards_equal(got: Sequence[object], expected: Sequence[np.ndarray], what: str) -> None:
    assert len(got) == len(expected), what
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_array_equal(
            np.frombuffer(g, dtype=U8) if not isinstance(g, np.ndarray) else g,  # type: ignore[call-overload]
            e,
            err_msg=f"{what}: shard {i}",
        )


# --------------------------------------------------------------------------
# The reference's two routes to P/Q agree (md gen_syndrome port vs the sums)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 17, 255])
def test_reference_md_port_equals_defining_sums(k: int, rng: np.random.Generator) -> None:
    data = random_data(rng, k, 37)
    p, q = ref.md_gen_syndrome(data)
    p2, q2 = ref.pq_parity(data, "md")
    np.testing.assert_array_equal(p, p2)
    np.testing.assert_array_equal(q, q2)
    # zfs order is md order over the reversed data
    _, qz = ref.pq_parity(data, "zfs")
    np.testing.assert_array_equal(qz, ref.md_gen_syndrome(data[::-1])[1])


def test_reference_anvin_recovery_round_trips(rng: np.random.Generator) -> None:
    k = 9
    data = random_data(rng, k, 40)
    p, q = ref.md_gen_syndrome(data)
    for a, b in combinations(range(k), 2):
        lost = erase(list(data), (a, b))
        da, db = ref.md_recov_2data(a, b, lost, p, q)
        np.testing.assert_array_equal(da, data[a])
        np.testing.assert_array_equal(db, data[b])
    for a in range(k):
        da, p2 = ref.md_recov_datap(a, erase(list(data), (a,)), q)
        np.testing.assert_array_equal(da, data[a])
        np.testing.assert_array_equal(p2, p)


# --------------------------------------------------------------------------
# Parity generation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("length", LENGTHS)
def test_xor_parity(isa: str, length: int, rng: np.random.Generator) -> None:
    for k in KS:
        data = random_data(rng, k, length)
        p = ec.xor_parity(data)
        assert p.dtype == U8 and p.shape == (length,)
        np.testing.assert_array_equal(p, ref.xor_parity(data), err_msg=f"k={k}")
        out = bytearray(length)
        ec.xor_parity_into(list(data), out)
        np.testing.assert_array_equal(np.frombuffer(out, dtype=U8), ref.xor_parity(data))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("length", LENGTHS)
def test_pq_parity(isa: str, length: int, order: str, rng: np.random.Generator) -> None:
    for k in KS:
        data = random_data(rng, k, length)
        p, q = ec.pq_parity(data, order=order)
        ep, eq = ref.pq_parity(data, order)
        np.testing.assert_array_equal(p, ep, err_msg=f"P k={k}")
        np.testing.assert_array_equal(q, eq, err_msg=f"Q k={k}")
        if order == "md":
            mp, mq = ref.md_gen_syndrome(data)
            np.testing.assert_array_equal(p, mp, err_msg=f"P vs md gen_syndrome k={k}")
            np.testing.assert_array_equal(q, mq, err_msg=f"Q vs md gen_syndrome k={k}")
        p2, q2 = np.zeros(length, U8), np.zeros(length, U8)
        ec.pq_parity_into(list(data), p2, q2, order=order)
        np.testing.assert_array_equal(p2, ep)
        np.testing.assert_array_equal(q2, eq)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("length", LENGTHS)
def test_pqr_parity(isa: str, length: int, order: str, rng: np.random.Generator) -> None:
    for k in KS:
        data = random_data(rng, k, length)
        p, q, r = ec.pqr_parity(data, order=order)
        ep, eq, er = ref.pqr_parity(data, order)
        np.testing.assert_array_equal(p, ep, err_msg=f"P k={k}")
        np.testing.assert_array_equal(q, eq, err_msg=f"Q k={k}")
        np.testing.assert_array_equal(r, er, err_msg=f"R k={k}")
        outs = [bytearray(length) for _ in range(3)]
        ec.pqr_parity_into(data, *outs, order=order)
        for got, exp in zip(outs, (ep, eq, er), strict=True):
            np.testing.assert_array_equal(np.frombuffer(got, dtype=U8), exp)


def test_default_orders(rng: np.random.Generator) -> None:
    """pq defaults to md order, pqr to zfs order (documented contract)."""
    data = random_data(rng, 5, 40)
    np.testing.assert_array_equal(ec.pq_parity(data)[1], ref.pq_parity(data, "md")[1])
    _, q, r = ec.pqr_parity(data)
    np.testing.assert_array_equal(q, ref.pqr_parity(data, "zfs")[1])
    np.testing.assert_array_equal(r, ref.pqr_parity(data, "zfs")[2])
    # and the two orders really differ for k >= 2
    assert not np.array_equal(ec.pq_parity(data, "md")[1], ec.pq_parity(data, "zfs")[1])


def test_parity_golden_values() -> None:
    """Hand-computed: D0=1, D1=1, D2=1 -> Q = 1^2^4 = 7, R = 1^4^16 = 0x15 (md)."""
    data = [b"\x01", b"\x01", b"\x01"]
    p, q = ec.pq_parity(data, "md")
    assert (p[0], q[0]) == (1, 7)
    _, _, r = ec.pqr_parity(data, "md")
    assert r[0] == 0x15
    # one byte 0x80 in data disk 1: Q = 2 * 0x80 = 0x1d (the reduction)
    p, q = ec.pq_parity([b"\x00", b"\x80"], "md")
    assert (p[0], q[0]) == (0x80, 0x1D)
    p, q = ec.pq_parity([b"\x80", b"\x00"], "zfs")
    assert q[0] == 0x1D


@pytest.mark.parametrize("length", [1, 33, 4097])
def test_max_data_blocks(isa: str, length: int, rng: np.random.Generator) -> None:
    """k = 255: the last coefficient 2^254 (and 4^254) before they repeat."""
    data = random_data(rng, 255, length)
    for order in ORDERS:
        np.testing.assert_array_equal(ec.pq_parity(data, order)[1], ref.pq_parity(data, order)[1])
        got = ec.pqr_parity(data, order)
        for g, e in zip(got, ref.pqr_parity(data, order), strict=True):
            np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(ec.xor_parity(data), ref.xor_parity(data))


@pytest.mark.parametrize("length", [1, 17, 33, 65, 129, 4097])
def test_parity_misaligned(isa: str, length: int, rng: np.random.Generator) -> None:
    k = 6
    data = random_data(rng, k, length)
    ep, eq, er = ref.pqr_parity(data, "md")
    for offset in range(1, 64):
        din = misaligned_rows(data, [(offset + 11 * j) % 64 for j in range(k)])
        p, q, r = (misaligned(length, (offset + 3 * i + 1) % 64) for i in range(3))
        ec.xor_parity_into(din, p)
        np.testing.assert_array_equal(p, ep, err_msg=f"xor offset {offset}")
        ec.pq_parity_into(din, p, q, order="md")
        np.testing.assert_array_equal(q, eq, err_msg=f"pq offset {offset}")
        ec.pqr_parity_into(din, p, q, r, order="md")
        np.testing.assert_array_equal(r, er, err_msg=f"pqr offset {offset}")


LARGE = [65536, 65536 + 1, 65536 + 31, 65536 + 64 + 5, 2 * 65536 + 17]
"""From 64 KiB the SIMD kernels switch to streaming (aligned) stores."""


@pytest.mark.parametrize("length", LARGE)
def test_large_parity_misaligned(isa: str, length: int, rng: np.random.Generator) -> None:
    """Streaming-store paths: outputs at equal and at different misalignments."""
    k = 5
    data = random_data(rng, k, length)
    for order in ORDERS:
        ep, eq, er = ref.pqr_parity(data, order)
        din = misaligned_rows(data, [3, 0, 17, 32, 63])
        for offsets in [(0, 0, 0), (5, 5, 5), (31, 31, 31), (1, 2, 3), (0, 16, 48), (33, 1, 33)]:
            p, q, r = (misaligned(length, off) for off in offsets)
            what = f"{order} n={length} outputs at {offsets}"
            ec.xor_parity_into(din, p)
            np.testing.assert_array_equal(p, ep, err_msg=f"xor {what}")
            ec.pq_parity_into(din, p, q, order=order)
            np.testing.assert_array_equal(p, ep, err_msg=f"pq P {what}")
            np.testing.assert_array_equal(q, eq, err_msg=f"pq Q {what}")
            ec.pqr_parity_into(din, p, q, r, order=order)
            for got, exp, name in ((p, ep, "P"), (q, eq, "Q"), (r, er, "R")):
                np.testing.assert_array_equal(got, exp, err_msg=f"pqr {name} {what}")


@pytest.mark.parametrize("length", [65536 + 7, 2 * 65536 + 33])
def test_large_recovery_misaligned(isa: str, length: int, rng: np.random.Generator) -> None:
    k = 6
    data = random_data(rng, k, length)
    for order in ORDERS:
        for kind in ("xor", "pq", "pqr"):
            shards = stripe(kind, data, order)
            n = len(shards)
            patterns = [p for p in ref.erasure_patterns(n, n - k) if p][
                :: 3 if kind == "pqr" else 1
            ]
            for j, missing in enumerate(patterns):
                offsets = [(j * 5 + 13 * i) % 64 for i in range(n)]
                placed = misaligned_rows(np.stack(shards), offsets)
                for i in missing:
                    placed[i][:] = 0
                recover_into(kind, placed, missing, order)
                assert_shards_equal(placed, shards, f"{kind} {order} n={length} {missing}")


def test_parity_does_not_write_outside_outputs(isa: str, rng: np.random.Generator) -> None:
    for length in (1, 15, 31, 33, 100, 4097):
        data = random_data(rng, 5, length)
        canvas = rng.integers(0, 256, (3, length + 128), dtype=U8)
        before = canvas.copy()
        outs = [canvas[i, 64 : 64 + length] for i in range(3)]
        ec.pqr_parity_into(data, *outs)
        ec.pq_parity_into(data, outs[0], outs[1])
        ec.xor_parity_into(data, outs[0])
        np.testing.assert_array_equal(canvas[:, :64], before[:, :64])
        np.testing.assert_array_equal(canvas[:, 64 + length :], before[:, 64 + length :])


# --------------------------------------------------------------------------
# Recovery: exhaustive patterns
# --------------------------------------------------------------------------

Recover = Callable[..., list[np.ndarray]]


def stripe(kind: str, data: np.ndarray, order: str) -> list[np.ndarray]:
    if kind == "xor":
        return [*data, ref.xor_parity(data)]
    if kind == "pq":
        return [*data, *ref.pq_parity(data, order)]
    return [*data, *ref.pqr_parity(data, order)]


KINDS: dict[str, tuple[int, Recover]] = {
    "xor": (1, lambda shards, order: ec.xor_recover(shards)),
    "pq": (2, lambda shards, order: ec.pq_recover(shards, order=order)),
    "pqr": (3, lambda shards, order: ec.pqr_recover(shards, order=order)),
}


def recover_into(kind: str, work: Sequence[object], missing: Sequence[int], order: str) -> None:
    if kind == "xor":
        ec.xor_recover_into(work, missing)
    elif kind == "pq":
        ec.pq_recover_into(work, missing, order=order)
    else:
        ec.pqr_recover_into(work, missing, order=order)


def check_recovery(kind: str, k: int, order: str, length: int, rng: np.random.Generator) -> None:
    tolerated, recover = KINDS[kind]
    data = random_data(rng, k, length)
    shards = stripe(kind, data, order)
    for missing in ref.erasure_patterns(k + tolerated, tolerated):
        got = recover(erase(shards, missing), order)
        assert len(got) == k + tolerated
        for i in missing:
            if not np.array_equal(got[i], shards[i]):
                pytest.fail(f"{kind} {order} k={k} n={length} missing={missing}: shard {i} wrong")
        for i in range(k + tolerated):
            if i not in missing and not np.array_equal(got[i], shards[i]):
                pytest.fail(f"{kind} {order} k={k} missing={missing}: survivor {i} changed")


@pytest.mark.parametrize("k", range(1, 11))
def test_xor_recover_exhaustive(isa: str, k: int, rng: np.random.Generator) -> None:
    for length in (1, 67):
        check_recovery("xor", k, "md", length, rng)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("k", range(1, 11))
def test_pq_recover_exhaustive(isa: str, k: int, order: str, rng: np.random.Generator) -> None:
    for length in (1, 67):
        check_recovery("pq", k, order, length, rng)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("k", range(1, 11))
def test_pqr_recover_exhaustive(isa: str, k: int, order: str, rng: np.random.Generator) -> None:
    for length in (1, 67):
        check_recovery("pqr", k, order, length, rng)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["xor", "pq", "pqr"])
@pytest.mark.parametrize("k", [11, 16, 24, 40])
def test_recover_exhaustive_slow(isa: str, kind: str, k: int, rng: np.random.Generator) -> None:
    for order in ORDERS:
        check_recovery(kind, k, order, 33, rng)


@pytest.mark.parametrize("length", [1, 31, 33, 4095, 4096, 4097, 8192 + 17, 12289])
def test_raid6_recovery_long_buffers(isa: str, length: int, rng: np.random.Generator) -> None:
    """Two-data and data+P recovery across the kernel's internal 4 KiB slices."""
    k = 7
    for order in ORDERS:
        data = random_data(rng, k, length)
        shards = stripe("pq", data, order)
        for missing in [(0, 1), (0, 6), (2, 5), (3, k), (6, k), (0, k + 1), (k, k + 1)]:
            got = ec.pq_recover(erase(shards, missing), order=order)
            assert_shards_equal(got, shards, f"{order} n={length} missing={missing}")
            # md's own recovery formulas give the same bytes
            if order == "md" and missing[1] < k:
                da, db = ref.md_recov_2data(*missing, erase(list(data), missing), *shards[k:])
                np.testing.assert_array_equal(got[missing[0]], da)
                np.testing.assert_array_equal(got[missing[1]], db)


def test_recover_max_data_blocks(rng: np.random.Generator) -> None:
    k = 255
    data = random_data(rng, k, 35)
    for order in ORDERS:
        pq = stripe("pq", data, order)
        for missing in [(0, 254), (0, 255), (254, 256), (100, 200)]:
            assert_shards_equal(ec.pq_recover(erase(pq, missing), order=order), pq, f"pq {missing}")
        pqr = stripe("pqr", data, order)
        for missing in [(0, 127, 254), (0, 255, 257), (1, 2, 256), (253, 254, 255)]:
            got = ec.pqr_recover(erase(pqr, missing), order=order)
            assert_shards_equal(got, pqr, f"pqr {order} {missing}")


@pytest.mark.parametrize("order", ORDERS)
def test_recover_into(isa: str, order: str, rng: np.random.Generator) -> None:
    k, n = 6, 4099
    data = random_data(rng, k, n)
    for kind in ("xor", "pq", "pqr"):
        tolerated = KINDS[kind][0]
        shards = stripe(kind, data, order)
        for missing in ref.erasure_patterns(k + tolerated, tolerated):
            work = [s.copy() for s in shards]
            for i in missing:
                work[i][:] = 0xEE
            recover_into(kind, work, missing, order)
            assert_shards_equal(work, shards, f"{kind}_recover_into {order} missing={missing}")


@pytest.mark.parametrize("length", [1, 33, 97, 4097])
def test_recover_misaligned(isa: str, length: int, rng: np.random.Generator) -> None:
    k = 5
    data = random_data(rng, k, length)
    for offset in range(1, 64, 3):
        order = ORDERS[offset % 2]
        for kind in ("xor", "pq", "pqr"):
            tolerated = KINDS[kind][0]
            shards = stripe(kind, data, order)
            n = k + tolerated
            missing = tuple(sorted({offset % n, (offset * 7 + 1) % n, (offset + 2) % n}))
            missing = missing[:tolerated]
            placed = misaligned_rows(np.stack(shards), [(offset + 9 * i) % 64 for i in range(n)])
            got = KINDS[kind][1](erase(placed, missing), order)
            assert_shards_equal(got, shards, f"{kind} {order} offset {offset} missing {missing}")
            for i in missing:
                placed[i][:] = 0x3C
            recover_into(kind, placed, missing, order)
            assert_shards_equal(placed, shards, f"{kind}_into {order} offset {offset} {missing}")


def test_recover_into_2d_array(rng: np.random.Generator) -> None:
    k, n = 5, 100
    data = random_data(rng, k, n)
    for order in ORDERS:
        full = np.stack(stripe("pq", data, order))
        for missing in [(0, 1), (2, k), (1, k + 1), (k, k + 1)]:
            work = full.copy()
            work[list(missing)] = 0
            ec.pq_recover_into(work, missing, order=order)
            np.testing.assert_array_equal(work, full, err_msg=f"pq {order} {missing}")
        full = np.stack(stripe("pqr", data, order))
        for missing in [(0, 1, 2), (2, k, k + 2), (k, k + 1, k + 2)]:
            work = full.copy()
            work[list(missing)] = 0
            ec.pqr_recover_into(work, missing, order=order)
            np.testing.assert_array_equal(work, full, err_msg=f"pqr {order} {missing}")


# --------------------------------------------------------------------------
# One more than tolerated
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xor", "pq", "pqr"])
@pytest.mark.parametrize("k", range(1, 11))
def test_too_many_missing(kind: str, k: int, rng: np.random.Generator) -> None:
    """Every pattern of one more than tolerated (and, for small k, all larger ones)."""
    tolerated, recover = KINDS[kind]
    n = k + tolerated
    data = random_data(rng, k, 20)
    counts = range(tolerated + 1, n) if k <= 4 else [tolerated + 1]  # n missing: test_all_missing
    for order in ORDERS:
        shards = stripe(kind, data, order)
        for e in counts:
            for missing in combinations(range(n), e):
                with pytest.raises(TooFewShardsError) as info:
                    recover(erase(shards, missing), order)
                assert isinstance(info.value, DataLossError)
                work = [s.copy() for s in shards]
                with pytest.raises(TooFewShardsError):
                    recover_into(kind, work, missing, order)
                assert_shards_equal(work, shards, "shards changed on error")


@pytest.mark.parametrize("kind", ["xor", "pq", "pqr"])
def test_all_missing(kind: str) -> None:
    tolerated, recover = KINDS[kind]
    n = 2 + tolerated
    with pytest.raises(TooFewShardsError):
        recover([None] * n, "md")
    with pytest.raises(TooFewShardsError):
        recover_into(kind, [bytearray(4) for _ in range(n)], range(n), "md")
