"""A model of what a crashed writer acknowledged, and the checks run after reopening.

The writer (``tests/store_crash_worker.py`` or an in-process loop) announces
each operation before it starts (``begin``) and after it returns (``ack``).
:class:`Model` replays those lines: ``state`` is the objects' content hashes
after the last acknowledged operation, ``snaps`` what every acknowledged
snapshot showed.  After a crash the instance must show ``state`` — or, for
the one operation in flight, the state it would have made — and every
snapshot exactly what it showed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import blake3

from dwcore.errors import NotFoundError
from dwcore.store import Instance

COMPARTMENT = "c"
KEYS = [f"k{i}" for i in range(12)] + ["dir/a", "dir/b", "dir/sub/c"]


def payload(rng: random.Random) -> bytes:
    """Object bytes: mostly small, some spanning several stripes, a few empty."""
    size = rng.choice([0, 1, 100, 4096, 5000, 20_000, 70_000, 200_000])
    return rng.randbytes(size)


@dataclass
class Model:
    """Acknowledged state, and the operation in flight (``pending``) when the writer died."""

    state: dict[str, str] = field(default_factory=dict)
    snaps: dict[int, dict[str, str]] = field(default_factory=dict)
    pending: dict[str, Any] | None = None

    def begin(self, op: dict[str, Any]) -> None:
        """The writer starts ``op``."""
        self.pending = op

    def ack(self, op: dict[str, Any]) -> None:
        """``op`` returned: apply it."""
        self.state, self.snaps = self.after(op)
        self.pending = None

    def after(self, op: dict[str, Any]) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
        """State and snapshots once ``op`` has taken effect."""
        state, snaps = dict(self.state), dict(self.snaps)
        kind = op["op"]
        if kind == "put":
            state[op["key"]] = op["hash"]
        elif kind == "delete":
            state.pop(op["key"], None)
        elif kind == "snap" and "id" in op:
            snaps[op["id"]] = dict(state)
        elif kind == "unsnap":
            snaps.pop(op["id"], None)
        elif kind == "rollback":
            state = dict(snaps[op["id"]])
        return state, snaps


def choose(rng: random.Random, model: Model) -> dict[str, Any]:
    """The next operation for a writer in ``model``'s state."""
    roll = rng.random()
    if roll < 0.15 and len(model.snaps) < 6:
        return {"op": "snap"}
    if roll < 0.2 and model.snaps:
        return {"op": "unsnap", "id": rng.choice(sorted(model.snaps))}
    if roll < 0.25 and model.snaps:
        return {"op": "rollback", "id": rng.choice(sorted(model.snaps))}
    if roll < 0.42 and model.state:
        return {"op": "delete", "key": rng.choice(sorted(model.state))}
    return {"op": "put", "key": rng.choice(KEYS)}


def perform(inst: Instance, op: dict[str, Any], data: bytes | None) -> dict[str, Any]:
    """Run ``op`` on ``inst``; returns the acknowledged form (a snapshot gets its id)."""
    kind = op["op"]
    if kind == "put":
        assert data is not None
        inst.put(COMPARTMENT, op["key"], data)
    elif kind == "delete":
        inst.delete(COMPARTMENT, op["key"])
    elif kind == "snap":
        info = inst.snapshots.create(f"compartment:{COMPARTMENT}", "crash test")
        return {**op, "id": info.id}
    elif kind == "unsnap":
        inst.snapshots.delete(op["id"])
    elif kind == "rollback":
        inst.snapshots.rollback(op["id"])
    return op


def current(inst: Instance) -> dict[str, str]:
    """Key -> blake3 of the bytes read back (not the catalog's hash)."""
    return {
        o.key: blake3.blake3(inst.get(COMPARTMENT, o.key)).hexdigest()
        for o in inst.iter_objects(COMPARTMENT)
    }


def in_snapshot(inst: Instance, snapshot_id: int) -> dict[str, str]:
    """Key -> blake3 of the bytes read back from a snapshot."""
    found = inst.snapshots.search(snapshot_id, "*", limit=100_000)
    return {
        o.key: blake3.blake3(inst.snapshots.read(snapshot_id, None, o.key)).hexdigest()
        for o in found
    }


def verify(inst: Instance, model: Model) -> None:
    """After a crash and reopen: fsck is clean after repair, the objects and every
    snapshot show exactly what was acknowledged (or what the operation in flight made)."""
    report = inst.fsck()
    assert report.ok, report.problems
    again = inst.fsck(deep=True)
    assert again.ok and again.leaked_rows == {"main": 0}, again
    allowed = [(model.state, model.snaps)]
    if model.pending is not None:
        allowed.append(model.after(model.pending))
    state = current(inst)
    assert any(state == s for s, _ in allowed), (state, allowed, model.pending)
    on_disk = {s.id for s in inst.snapshots.list()}
    acked = set(model.snaps)
    extra = on_disk - acked
    missing = acked - on_disk
    pending = model.pending or {}
    if pending.get("op") == "unsnap":
        assert missing <= {pending["id"]} and not extra
    elif pending.get("op") == "snap":
        assert not missing and len(extra) <= 1
        for sid in extra:  # the snapshot in flight committed: it shows the state it saw
            assert in_snapshot(inst, sid) == model.state
    else:
        assert not missing and not extra, (missing, extra)
    for sid, shown in model.snaps.items():
        if sid in on_disk:
            assert in_snapshot(inst, sid) == shown, sid
    for key in state:
        try:
            inst.head(COMPARTMENT, key)
        except NotFoundError:  # pragma: no cover - listed keys exist
            raise AssertionError(key) from None
