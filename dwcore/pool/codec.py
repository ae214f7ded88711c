"""Codec operations on the members of one stripe, over numpy buffers (no copies).

A stripe's members come in codec shard order (``dwcore.raid.StripeMap``):
data 0..k-1, then P, Q — or, for mirrors, every copy of data 0, then of
data 1, ...  These helpers compute redundancy (:func:`encode`), decide what
an erasure set loses (:func:`lost_members`) and rebuild erased members in
place (:func:`reconstruct`), for the codecs ``none``, ``mirror``, ``xor``,
``pq-md``, their grouped forms ``xor-groups`` / ``pq-md-groups`` (each
group of :meth:`StripeMap.subgroups` on its own), ``hamming`` (RAID 2:
checks are XORs of data subsets, erasures solved by GF(2) elimination in
:func:`dwcore.raid.hamming.solve`) and ``rdp`` (row-diagonal
parity: the chain of XOR steps of :func:`dwcore.raid.dp.rdp_schedule`,
which also recovers a subset of the erased members when not all of them can
be).  Every buffer of one call has the same length.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence

import numpy as np

from dwcore.ec import (
    ReedSolomon,
    pq_parity_into,
    pq_recover_into,
    pqr_parity_into,
    pqr_recover_into,
    xor_parity_into,
    xor_recover_into,
)
from dwcore.raid import Codec, RoleKind, StripeMap
from dwcore.raid.dp import rdp_geometry, rdp_schedule
from dwcore.raid.hamming import check_masks, solve

__all__ = [
    "data_member_index",
    "encode",
    "lost_members",
    "mismatched_rows",
    "needed_members",
    "reconstruct",
    "sources",
]


def data_member_index(sm: StripeMap) -> list[list[int]]:
    """For each data index d, the member indices that carry it (copies for mirrors)."""
    out: list[list[int]] = [[] for _ in range(sm.k)]
    for j, m in enumerate(sm.members):
        d = m.role.data_index
        if d is not None:
            out[d].append(j)
    return out


def _parity_slots(sm: StripeMap) -> list[int]:
    kinds = (RoleKind.P, RoleKind.Q, RoleKind.R, RoleKind.PARITY)
    return [j for j, m in enumerate(sm.members) if m.role.kind in kinds]


def _rdp_apply(sm: StripeMap, bufs: Sequence[np.ndarray], erased: Collection[int]) -> set[int]:
    """Run the RDP chain for ``erased`` over ``bufs``; returns the members it cannot solve."""
    n, p = rdp_geometry(sm)
    steps, unsolved = rdp_schedule(n, p, frozenset(erased))
    for target, srcs in steps:
        xor_parity_into([bufs[x] for x in srcs], bufs[target])
    return set(unsolved)


@functools.lru_cache(maxsize=32)
def _rs(k: int, m: int) -> ReedSolomon:
    return ReedSolomon(k, m)


def _rs_of(sm: StripeMap) -> ReedSolomon:
    return _rs(sm.k, len(sm.members) - sm.k)


def _grouped(sm: StripeMap) -> bool:
    return sm.codec.group_codec is not None


def _per_group(
    sm: StripeMap, erased: Collection[int], fn: Callable[[StripeMap, set[int]], set[int]]
) -> set[int]:
    """``fn(group, its erased members)`` for each group of a grouped codec, the results
    in the stripe's member positions."""
    out: set[int] = set()
    for idx, sub in sm.subgroups():
        local = {i for i, j in enumerate(idx) if j in erased}
        out |= {idx[i] for i in fn(sub, local)}
    return out


def _hamming_checks(sm: StripeMap, data: Sequence[np.ndarray], out: Sequence[np.ndarray]) -> None:
    """RAID 2: each check member is the XOR of the data members its mask names."""
    for mask, dst in zip(check_masks(sm.k, len(sm.members) - sm.k), out, strict=True):
        xor_parity_into([data[d] for d in range(sm.k) if mask >> d & 1], dst)


def _hamming_apply(sm: StripeMap, bufs: Sequence[np.ndarray], erased: Collection[int]) -> set[int]:
    """RAID 2 erasure decode by GF(2) elimination; returns the members left undetermined."""
    steps, lost = solve(sm.k, len(sm.members) - sm.k, frozenset(erased))
    if lost:
        return set(erased)
    for target, srcs in steps:
        xor_parity_into([bufs[x] for x in srcs], bufs[target])
    return set()


def encode(sm: StripeMap, bufs: Sequence[np.ndarray]) -> None:
    """Fill the parity members of ``bufs`` from its data members (mirrors: nothing to do)."""
    if _grouped(sm):
        for idx, sub in sm.subgroups():
            encode(sub, [bufs[j] for j in idx])
        return
    if sm.codec is Codec.HAMMING:
        _hamming_checks(sm, bufs[: sm.k], bufs[sm.k :])
        return
    if sm.codec is Codec.RDP:
        _rdp_apply(sm, bufs, range(sm.k, len(sm.members)))
    elif sm.codec is Codec.XOR:
        (p,) = _parity_slots(sm)
        xor_parity_into(list(bufs[: sm.k]), bufs[p])
    elif sm.codec is Codec.PQ_MD:
        p, q = _parity_slots(sm)
        pq_parity_into(list(bufs[: sm.k]), bufs[p], bufs[q], order="md")
    elif sm.codec is Codec.PQ_ZFS:
        p, q = _parity_slots(sm)
        pq_parity_into(list(bufs[: sm.k]), bufs[p], bufs[q], order="zfs")
    elif sm.codec is Codec.PQR_ZFS:
        p, q, r = _parity_slots(sm)
        pqr_parity_into(list(bufs[: sm.k]), bufs[p], bufs[q], bufs[r], order="zfs")
    elif sm.codec is Codec.PQR_MD:
        p, q, r = _parity_slots(sm)
        pqr_parity_into(list(bufs[: sm.k]), bufs[p], bufs[q], bufs[r], order="md")
    elif sm.codec is Codec.RS_CAUCHY:
        _rs_of(sm).encode_into(list(bufs[: sm.k]), [bufs[j] for j in _parity_slots(sm)])


def sources(sm: StripeMap, erased: Collection[int], j: int) -> int | None:
    """For a mirror, a live copy to restore member ``j`` from (None when every copy is lost)."""
    d = sm.members[j].role.data_index
    for i, m in enumerate(sm.members):
        if i not in erased and m.role.data_index == d:
            return i
    return None


def lost_members(sm: StripeMap, erased: Collection[int]) -> set[int]:
    """The erased members that cannot be reconstructed from the others."""
    if not erased:
        return set()
    if _grouped(sm):
        return _per_group(sm, erased, lost_members)
    if sm.codec is Codec.HAMMING:
        lost = solve(sm.k, len(sm.members) - sm.k, frozenset(erased))[1]
        return set(erased) if lost else set()
    if sm.codec is Codec.MIRROR:
        return {j for j in erased if sources(sm, erased, j) is None}
    if sm.codec is Codec.RDP:
        n, p = rdp_geometry(sm)
        return set(rdp_schedule(n, p, frozenset(erased))[1])
    if sm.codec is Codec.NONE or len(erased) > sm.parity_limit:
        return set(erased)
    return set()


def needed_members(sm: StripeMap, erased: Collection[int]) -> set[int]:
    """The members a read of every data member must load when ``erased`` are gone:
    each datum's first live copy, and every live member of what reconstructs the
    erased ones (for grouped codecs only the groups that lost a member; the others
    need just their data)."""
    erased = set(erased)
    if not erased:
        return {copies[0] for copies in data_member_index(sm)}
    if _grouped(sm):
        return _per_group(sm, erased, needed_members)
    return set(range(len(sm.members))) - erased


def reconstruct(sm: StripeMap, bufs: Sequence[np.ndarray], erased: Collection[int]) -> set[int]:
    """Rebuild the erased members of ``bufs`` in place; returns those that are lost.

    When anything is lost for an MDS parity codec every erased member is left
    as is (and reported lost); for mirrors each member is restored
    independently, and ``rdp`` restores whatever its chain reaches.
    """
    erased = set(erased)
    if not erased:
        return set()
    if _grouped(sm):
        gone: set[int] = set()
        for idx, sub in sm.subgroups():
            local = {i for i, j in enumerate(idx) if j in erased}
            if local:
                views = [bufs[j] for j in idx]
                gone |= {idx[i] for i in reconstruct(sub, views, local)}
        return gone
    if sm.codec is Codec.HAMMING:
        return _hamming_apply(sm, bufs, erased)
    if sm.codec is Codec.RDP:
        return _rdp_apply(sm, bufs, erased)
    lost = lost_members(sm, erased)
    if sm.codec is Codec.MIRROR:
        for j in erased - lost:
            src = sources(sm, erased, j)
            assert src is not None
            bufs[j][:] = bufs[src]
        return lost
    if lost:
        return lost
    order = sorted(erased)
    if sm.codec is Codec.XOR:
        xor_recover_into(list(bufs), order)
    elif sm.codec is Codec.PQ_MD:
        pq_recover_into(list(bufs), order, order="md")
    elif sm.codec is Codec.PQ_ZFS:
        pq_recover_into(list(bufs), order, order="zfs")
    elif sm.codec is Codec.PQR_ZFS:
        pqr_recover_into(list(bufs), order, order="zfs")
    elif sm.codec is Codec.PQR_MD:
        pqr_recover_into(list(bufs), order, order="md")
    elif sm.codec is Codec.RS_CAUCHY:
        _rs_of(sm).reconstruct_into(list(bufs), order)
    return set()


def mismatched_rows(sm: StripeMap, bufs: Sequence[np.ndarray], block: int) -> dict[int, np.ndarray]:
    """Redundancy check: for each redundancy member, the rows that disagree with the data.

    Parity codecs recompute P (and Q) from the data; mirrors compare every
    copy with the first copy of its data index.  Returns member index ->
    row indices (only members with a mismatch).
    """
    rows = len(bufs[0]) // block
    out: dict[int, np.ndarray] = {}
    if _grouped(sm):
        for idx, sub in sm.subgroups():
            for i, bad in mismatched_rows(sub, [bufs[j] for j in idx], block).items():
                out[idx[i]] = bad
        return out
    if sm.codec is Codec.MIRROR:
        for copies in data_member_index(sm):
            ref = bufs[copies[0]].reshape(rows, block)
            for j in copies[1:]:
                bad = np.nonzero((bufs[j].reshape(rows, block) != ref).any(axis=1))[0]
                if len(bad):
                    out[j] = bad
        return out
    slots = _parity_slots(sm)
    if not slots:
        return out
    fresh = [np.empty_like(bufs[0]) for _ in slots]
    if sm.codec is Codec.HAMMING:
        _hamming_checks(sm, bufs[: sm.k], fresh)
    elif sm.codec is Codec.RDP:
        scratch = list(bufs[: sm.k]) + fresh
        encode(sm, scratch)
    elif sm.codec is Codec.XOR:
        xor_parity_into(list(bufs[: sm.k]), fresh[0])
    elif sm.codec in (Codec.PQ_ZFS, Codec.PQR_ZFS, Codec.PQR_MD, Codec.RS_CAUCHY):
        encode(sm, list(bufs[: sm.k]) + fresh)
    else:
        pq_parity_into(list(bufs[: sm.k]), fresh[0], fresh[1], order="md")
    for j, f in zip(slots, fresh, strict=True):
        bad = np.nonzero((bufs[j].reshape(rows, block) != f.reshape(rows, block)).any(axis=1))[0]
        if len(bad):
            out[j] = bad
    return out
