"""A Hypothesis state machine: the store and its snapshots against a dict model.

Random puts, deletes, snapshots of the instance / a compartment / an object,
snapshot deletions and roll-backs; after every step the current objects,
every snapshot's contents (bytes read back) and each snapshot's diff with now
match the model; at the end fsck finds nothing and, once everything is
deleted, every pool row is free again (no extent leaked or freed early).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from store_helpers import make

from dwcore.errors import NotFoundError

COMPARTMENTS = ("a", "b")
KEYS = ("k1", "k2", "d/k3", "d/e/k4")
TARGETS = ("instance", "compartment:a", "compartment:b", "object:a/k1", "pool:main")

Obj = tuple[str, str]
SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")


def _sizes() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=64),
        st.integers(0, 255).flatmap(lambda b: st.sampled_from([5000, 70_000]).map(
            lambda n, b=b: bytes([b]) * n
        )),
    )  # fmt: skip


class StoreMachine(RuleBasedStateMachine):
    snapshots = Bundle("snapshots")

    def __init__(self) -> None:
        super().__init__()
        ram = "/dev/shm" if Path("/dev/shm").is_dir() else None
        self.dir = tempfile.mkdtemp(prefix="dwcore-model-", dir=ram)
        self.inst = make(Path(self.dir) / "root")
        for c in COMPARTMENTS:
            self.inst.create_compartment(c)
        self.base_rows = self.inst.pools["main"].status().used
        self.model: dict[Obj, bytes] = {}
        self.views: dict[int, dict[Obj, bytes]] = {}
        self.targets: dict[int, str] = {}

    @staticmethod
    def _view(model: dict[Obj, bytes], target: str) -> dict[Obj, bytes]:
        if target in ("instance", "pool:main"):
            return dict(model)
        kind, _, rest = target.partition(":")
        if kind == "compartment":
            return {k: v for k, v in model.items() if k[0] == rest}
        comp, _, key = rest.partition("/")
        return {k: v for k, v in model.items() if k == (comp, key)}

    @rule(c=st.sampled_from(COMPARTMENTS), k=st.sampled_from(KEYS), data=_sizes())
    def put(self, c: str, k: str, data: bytes) -> None:
        self.inst.put(c, k, data)
        self.model[(c, k)] = data

    @rule(c=st.sampled_from(COMPARTMENTS), k=st.sampled_from(KEYS))
    def delete(self, c: str, k: str) -> None:
        if (c, k) in self.model:
            self.inst.delete(c, k)
            del self.model[(c, k)]
        else:
            with pytest.raises(NotFoundError):
                self.inst.delete(c, k)

    @rule(target=snapshots, what=st.sampled_from(TARGETS))
    def snap(self, what: str) -> int:
        if what == "object:a/k1" and ("a", "k1") not in self.model:
            what = "compartment:a"
        info = self.inst.snapshots.create(what)
        self.views[info.id] = self._view(self.model, what)
        self.targets[info.id] = what
        return info.id

    @rule(sid=consumes(snapshots))
    def unsnap(self, sid: int) -> None:
        self.inst.snapshots.delete(sid)
        del self.views[sid]

    @rule(sid=snapshots, c=st.sampled_from(COMPARTMENTS), k=st.sampled_from(KEYS))
    def rollback_object(self, sid: int, c: str, k: str) -> None:
        if sid not in self.views:
            return
        view, target = self.views[sid], self.targets[sid]
        if target.startswith("compartment:") and target != f"compartment:{c}":
            return
        if target.startswith("object:") and target != f"object:{c}/{k}":
            return
        if (c, k) in view:
            self.inst.snapshots.rollback(sid, c, k)
            self.model[(c, k)] = view[(c, k)]
        else:
            with pytest.raises(NotFoundError):
                self.inst.snapshots.rollback(sid, c, k)

    @rule(sid=snapshots, c=st.sampled_from(COMPARTMENTS))
    def rollback_compartment(self, sid: int, c: str) -> None:
        if sid not in self.views or self.targets[sid].startswith("object:"):
            return
        target = self.targets[sid]
        if target.startswith("compartment:") and target != f"compartment:{c}":
            return
        self.inst.snapshots.rollback(sid, c)
        for key in [k for k in self.model if k[0] == c]:
            del self.model[key]
        self.model.update({k: v for k, v in self.views[sid].items() if k[0] == c})

    @invariant()
    def objects_match(self) -> None:
        for c in COMPARTMENTS:
            keys = [k for (cc, k) in sorted(self.model) if cc == c]
            assert self.inst.list(c).keys == sorted(keys)
            for k in keys:
                assert self.inst.get(c, k) == self.model[(c, k)]

    @invariant()
    def snapshots_match(self) -> None:
        assert sorted(s.id for s in self.inst.snapshots.list()) == sorted(self.views)
        for sid, view in self.views.items():
            found = self.inst.snapshots.search(sid, "*")
            assert sorted((o.compartment, o.key) for o in found) == sorted(view)
            for o in found:
                assert (
                    self.inst.snapshots.read(sid, o.compartment, o.key)
                    == view[(o.compartment, o.key)]
                )
            now = self._view(self.model, self.targets[sid])
            diff = self.inst.snapshots.diff(sid)
            assert {(e.compartment, e.key) for e in diff.added} == set(now) - set(view)
            assert {(e.compartment, e.key) for e in diff.removed} == set(view) - set(now)
            assert {(e.compartment, e.key) for e in diff.modified} == {
                k for k in set(view) & set(now) if view[k] != now[k]
            }

    def teardown(self) -> None:
        try:
            report = self.inst.fsck(deep=True)
            assert report.ok and report.leaked_rows == {"main": 0}, report
            for sid in list(self.views):
                self.inst.snapshots.delete(sid)
            for c, k in list(self.model):
                self.inst.delete(c, k)
            assert self.inst.pools["main"].status().used == self.base_rows
            assert self.inst.catalog.counts()["extents"] == 0
        finally:
            self.inst.close()
            shutil.rmtree(self.dir, ignore_errors=True)


# each example builds an instance: fewer examples by default, the profile's count when slow
StoreMachine.TestCase.settings = settings(
    settings.default,
    stateful_step_count=30,
    max_examples=settings.default.max_examples if SLOW else 10,
)
test_store_against_model = StoreMachine.TestCase
