"""Snapshots: create (O(1)), list, diff, browse, search, read, rollback, delete, copy-on-write,
space accounting; authorization and audit of the store and snapshot operations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from store_helpers import CONFIG, SMALL_POOL, audit_records, fast_root, make, reopen, user

from dwcore.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from dwcore.store import Instance


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Instance]:
    with fast_root(tmp_path) as root, make(root) as i:
        i.create_compartment("c")
        yield i


def rows_in_use(inst: Instance) -> int:
    return inst.pools["main"].status().used


def test_snapshot_shows_the_past_and_survives_reopen(tmp_path: Path) -> None:
    with fast_root(tmp_path) as root:
        with make(root) as inst:
            inst.create_compartment("c")
            inst.put("c", "a", b"A1")
            inst.put("c", "d/b", b"B1" * 5000)
            s1 = inst.snapshots.create("compartment:c", "before")
            inst.put("c", "a", b"A2")
            inst.delete("c", "d/b")
            inst.put("c", "new", b"N")
            assert inst.snapshots.read(s1.id, None, "a") == b"A1"
            assert inst.snapshots.read(s1.id, "c", "d/b", 2, 4) == b"B1B1"
            assert inst.get("c", "a") == b"A2"
            with pytest.raises(NotFoundError, match="not in snapshot"):
                inst.snapshots.read(s1.id, None, "new")
        with reopen(root) as inst:
            assert inst.snapshots.read(s1.id, None, "d/b") == b"B1" * 5000
            assert inst.snapshots.list()[0].description == "before"
            assert inst.snapshots.preview(s1.id, None, "d/b", 3) == b"B1B"
            with inst.snapshots.read_stream(s1.id, None, "d/b", chunk_size=999) as stream:
                assert b"".join(stream) == b"B1" * 5000


def test_snapshot_targets_and_listing(inst: Instance) -> None:
    inst.create_compartment("other")
    inst.put("c", "k", b"1")
    inst.put("other", "k", b"2")
    t0 = time.time()
    s_inst = inst.snapshots.create("instance", "all")
    s_pool = inst.snapshots.create("pool:main")
    s_comp = inst.snapshots.create("compartment:other")
    s_obj = inst.snapshots.create("object:c/k")
    assert [s.target for s in inst.snapshots.list()] == [
        "instance", "pool:main", "compartment:other", "object:c/k",
    ]  # fmt: skip
    assert [s.id for s in inst.snapshots.list("compartment:other")] == [s_comp.id]
    assert [s.id for s in inst.snapshots.list("object:c/k")] == [s_obj.id]
    assert inst.snapshots.list(since=t0 + 3600) == []
    later = datetime.fromtimestamp(t0 + 3600, timezone.utc)
    assert len(inst.snapshots.list(until=later)) == 4
    for bad in ("pool", "bucket:x", "object:c", "object:c/../x"):
        with pytest.raises(InvalidArgumentError):
            inst.snapshots.create(bad)
    with pytest.raises(NotFoundError):
        inst.snapshots.create("pool:nope")
    with pytest.raises(NotFoundError):
        inst.snapshots.create("object:c/missing")
    inst.put("c", "k", b"changed")
    inst.put("other", "k", b"changed")
    assert inst.snapshots.read(s_inst.id, "other", "k") == b"2"
    assert inst.snapshots.read(s_pool.id, "c", "k") == b"1"
    assert inst.snapshots.read(s_comp.id, "other", "k") == b"2"
    assert inst.snapshots.read(s_obj.id) == b"1"
    with pytest.raises(InvalidArgumentError, match="shows nothing"):
        inst.snapshots.read(s_comp.id, "c", "k")
    with pytest.raises(InvalidArgumentError, match="name the compartment"):
        inst.snapshots.read(s_inst.id, None, "k")


def test_snapshot_creation_is_constant_cost(inst: Instance) -> None:
    for i in range(300):
        inst.put("c", f"k{i}", b"x")
    before = inst.catalog.counts()
    inst.snapshots.create("instance")
    after = inst.catalog.counts()
    assert after["snapshots"] == before["snapshots"] + 1
    assert {k: v for k, v in after.items() if k != "snapshots"} == {
        k: v for k, v in before.items() if k != "snapshots"
    }


def test_diff_between_snapshots_and_with_now(inst: Instance) -> None:
    inst.put("c", "same", b"s")
    inst.put("c", "mod", b"m1")
    inst.put("c", "gone", b"g" * 10)
    s1 = inst.snapshots.create("compartment:c")
    inst.put("c", "mod", b"m2-longer")
    inst.delete("c", "gone")
    inst.put("c", "added", b"a" * 7)
    inst.put("c", "flash", b"f")
    inst.delete("c", "flash")  # came and went between the snapshots: no entry
    inst.put("c", "same", b"s")  # same content again: not a modification
    s2 = inst.snapshots.create("compartment:c")
    d = inst.snapshots.diff(s1.id, s2.id)
    assert [(e.key, e.old_size, e.new_size) for e in d.added] == [("added", None, 7)]
    assert [(e.key, e.old_size, e.new_size) for e in d.removed] == [("gone", 10, None)]
    assert [(e.key, e.old_size, e.new_size) for e in d.modified] == [("mod", 2, 9)]
    assert d.bytes_added == 7 and d.bytes_removed == 10
    assert [e.key for e in inst.snapshots.diff(s2.id, s1.id).added] == ["gone"]
    assert len(inst.snapshots.diff(s2.id)) == 0
    inst.put("c", "after", b"x")
    assert [e.key for e in inst.snapshots.diff(s2.id).added] == ["after"]
    assert [e.change for e in inst.snapshots.diff(s1.id).entries] == [
        "added", "added", "removed", "modified",
    ]  # fmt: skip


def test_browse_and_search(inst: Instance) -> None:
    for key, size in [
        ("docs/a.txt", 10), ("docs/b.jpg", 2000), ("docs/sub/c.jpg", 30),
        ("img/x.jpg", 5000), ("top.txt", 1),
    ]:  # fmt: skip
        inst.put("c", key, b"x" * size)
    t_mid = time.time()
    s = inst.snapshots.create("instance")
    inst.put("c", "docs/late.jpg", b"l")
    top = inst.snapshots.browse(s.id, "c")
    assert [(e.name, e.is_dir, e.size) for e in top] == [
        ("docs/", True, None), ("img/", True, None), ("top.txt", False, 1),
    ]  # fmt: skip
    docs = inst.snapshots.browse(s.id, "c", "docs/")
    assert [e.name for e in docs] == ["a.txt", "b.jpg", "sub/"]
    assert [e.path for e in inst.snapshots.browse(s.id, "c", "docs/sub/")] == ["docs/sub/c.jpg"]
    assert [e.name for e in inst.snapshots.browse(s.id)] == ["c"]
    jpgs = inst.snapshots.search(s.id, "*.jpg")
    assert [o.key for o in jpgs] == ["docs/b.jpg", "docs/sub/c.jpg", "img/x.jpg"]
    big = inst.snapshots.search(s.id, "*.jpg", min_size=1000, max_size=4000)
    assert [o.key for o in big] == ["docs/b.jpg"]
    assert inst.snapshots.search(s.id, "docs/?.*", "c", max_size=100)[0].key == "docs/a.txt"
    assert inst.snapshots.search(s.id, "*", since=t_mid + 3600) == []
    assert len(inst.snapshots.search(s.id, "*", until=t_mid + 3600)) == 5
    with pytest.raises(InvalidArgumentError, match="min_size"):
        inst.snapshots.search(s.id, "*", min_size=-1)


def test_rollback_object_and_compartment_share_extents_and_can_be_undone(
    inst: Instance,
) -> None:
    inst.put("c", "a", b"a1" * 4000)
    inst.put("c", "b", b"b1")
    s1 = inst.snapshots.create("compartment:c")
    inst.put("c", "a", b"a2")
    inst.delete("c", "b")
    inst.put("c", "n", b"new")
    used = rows_in_use(inst)
    res = inst.snapshots.rollback(s1.id, key="a")
    assert (res.restored, res.removed) == (1, 0)
    assert inst.get("c", "a") == b"a1" * 4000
    assert rows_in_use(inst) < used  # nothing copied; "a2" was freed
    then = inst.snapshots.head(s1.id, None, "a")
    now = inst.head("c", "a")
    assert now.version_id != then.version_id
    assert inst.catalog.version(now.version_id).extents[0].id == then.extents[0].id
    s2 = inst.snapshots.create("compartment:c", "before full rollback")
    res = inst.snapshots.rollback(s1.id)
    assert (res.restored, res.removed) == (1, 1)
    assert inst.list("c").keys == ["a", "b"]
    assert inst.get("c", "b") == b"b1"
    inst.snapshots.rollback(s2.id)  # undo
    assert inst.list("c").keys == ["a", "n"]
    assert inst.get("c", "n") == b"new"
    assert inst.fsck().ok
    with pytest.raises(NotFoundError):
        inst.snapshots.rollback(s1.id, key="n")


def test_copy_on_write_frees_with_the_last_snapshot(inst: Instance) -> None:
    base = rows_in_use(inst)
    inst.put("c", "k", b"v1" * 20_000)
    one = rows_in_use(inst) - base
    s1 = inst.snapshots.create("compartment:c")
    s2 = inst.snapshots.create("object:c/k")
    inst.put("c", "k", b"v2" * 20_000)
    inst.delete("c", "k")
    assert rows_in_use(inst) - base == 1 * one  # v1 kept, v2 freed on delete
    assert inst.snapshots.space(s1.id) == 0  # s2 holds the same bytes
    assert inst.snapshots.delete(s1.id) == 0
    assert inst.snapshots.space(s2.id) == 40_000
    assert inst.snapshots.read(s2.id) == b"v1" * 20_000
    # rows of v1 are never handed out while a snapshot holds them
    for i in range(20):
        inst.put("c", f"fill{i}", bytes([i]) * 40_000)
    assert inst.snapshots.read(s2.id) == b"v1" * 20_000
    rep = inst.fsck()
    assert rep.ok and rep.leaked_rows == {"main": 0}
    for i in range(20):
        inst.delete("c", f"fill{i}")
    assert inst.snapshots.delete(s2.id) == 40_000
    assert rows_in_use(inst) == base
    assert inst.catalog.counts()["versions"] == 0
    with pytest.raises(NotFoundError):
        inst.snapshots.read(s2.id)


def test_space_accounting_counts_only_exclusive_bytes(inst: Instance) -> None:
    inst.put("c", "a", b"a" * 1000)
    inst.put("c", "b", b"b" * 300)
    s1 = inst.snapshots.create("instance")
    inst.put("c", "a", b"A" * 10)
    s2 = inst.snapshots.create("instance")
    inst.delete("c", "b")
    inst.put("c", "a", b"Z")
    assert inst.snapshots.space(s1.id) == 1000  # only s1 saw the first "a"
    assert inst.snapshots.space(s2.id) == 10  # "b" is shared by s1 and s2
    inst.snapshots.delete(s1.id)
    assert inst.snapshots.space(s2.id) == 310


def test_snapshots_keep_a_deleted_compartment(inst: Instance) -> None:
    inst.create_compartment("tmp")
    inst.put("tmp", "k", b"kept")
    s = inst.snapshots.create("instance")
    inst.delete("tmp", "k")
    inst.delete_compartment("tmp")
    assert inst.snapshots.read(s.id, "tmp", "k") == b"kept"
    assert [e.name for e in inst.snapshots.browse(s.id)] == ["c", "tmp"]
    with pytest.raises(NotFoundError, match="did not exist"):
        inst.snapshots.read(s.id, "never", "k")


# ---------------------------------------------------------------- authorization


def test_a_user_without_rights_is_denied_changes_nothing_and_is_audited(inst: Instance) -> None:
    inst.put("c", "k", b"secret")
    snap = inst.snapshots.create("compartment:c")
    nobody = user(inst, "nobody")
    reader = user(inst, "reader", "auditor")  # reads everything but object data
    counts = inst.catalog.counts()
    gen = inst.catalog.generation
    attempts = [
        lambda p: inst.put("c", "k", b"evil", principal=p),
        lambda p: inst.get("c", "k", principal=p),
        lambda p: inst.get_stream("c", "k", principal=p),
        lambda p: inst.delete("c", "k", principal=p),
        lambda p: inst.create_compartment("x", principal=p),
        lambda p: inst.delete_compartment("c", principal=p),
        lambda p: inst.snapshots.create("instance", principal=p),
        lambda p: inst.snapshots.delete(snap.id, principal=p),
        lambda p: inst.snapshots.rollback(snap.id, principal=p),
        lambda p: inst.fsck(principal=p),
    ]
    for attempt in attempts:
        for who in (nobody, reader):
            with pytest.raises(PermissionDeniedError, match=who.name):
                attempt(who)
    with pytest.raises(PermissionDeniedError):
        inst.list("c", principal=nobody)
    with pytest.raises(PermissionDeniedError):
        inst.snapshots.read(snap.id, None, "k", principal=reader)
    assert inst.catalog.counts() == counts and inst.catalog.generation == gen
    assert inst.get("c", "k") == b"secret"
    denied = audit_records(inst, principal="nobody", outcome="denied")
    assert {r.action for r in denied} >= {
        "object.write",
        "object.read",
        "object.delete",
        "snapshot.create",
        "snapshot.delete",
        "pool.manage",
    }
    assert inst.list("c", principal=reader).keys == ["k"]


def test_roles_and_compartment_acl_grant_access(inst: Instance) -> None:
    inst.create_compartment("shared", acl={"guest": ["object.read", "compartment.read"]})
    inst.put("shared", "doc", b"hello")
    inst.put("c", "doc", b"private")
    alice = user(inst, "alice", "user", scope="compartment:c")
    guest = user(inst, "guest")
    info = inst.put("c", "mine", b"by alice", principal=alice)
    assert info.owner == "alice"
    assert inst.get("c", "mine", principal=alice) == b"by alice"
    with pytest.raises(PermissionDeniedError):
        inst.put("shared", "x", b"", principal=alice)
    assert inst.get("shared", "doc", principal=guest) == b"hello"
    assert inst.list("shared", principal=guest).keys == ["doc"]
    with pytest.raises(PermissionDeniedError):
        inst.put("shared", "doc", b"overwrite", principal=guest)
    with pytest.raises(PermissionDeniedError):
        inst.get("c", "doc", principal=guest)
    inst.set_compartment_acl("shared", {})
    with pytest.raises(PermissionDeniedError):
        inst.get("shared", "doc", principal=guest)
    recs = audit_records(inst, principal="alice", action="object.put")
    assert [r.resource for r in recs] == ["object:c/mine"]
    with pytest.raises(InvalidArgumentError, match="unknown permission"):
        inst.set_compartment_acl("shared", {"guest": ["object.steal"]})


def test_snapshot_operations_are_audited(inst: Instance) -> None:
    inst.put("c", "k", b"v")
    s = inst.snapshots.create("compartment:c", "d")
    inst.snapshots.read(s.id, None, "k")
    inst.snapshots.diff(s.id)
    inst.snapshots.delete(s.id)
    actions = [r.action for r in audit_records(inst, action="snapshot.*")]
    for a in ("snapshot.create", "snapshot.read", "snapshot.diff", "snapshot.delete"):
        assert a in actions


def test_tiers_place_versions_in_pools_and_pool_snapshots_follow_them(tmp_path: Path) -> None:
    archive = {**SMALL_POOL, "name": "archive", "level": "5", "devices": 4}
    config = {**CONFIG, "pools": [SMALL_POOL, archive]}
    with fast_root(tmp_path) as root:
        with Instance.create(root, config, check_resources=False) as inst:
            inst.set_tier("cold", "archive")
            assert inst.tiers() == {"hot": "main", "warm": "main", "cold": "archive"}
            inst.create_compartment("live")
            inst.create_compartment("old", tier="cold")
            assert inst.put("live", "k", b"hot data").pool == "main"
            assert inst.put("old", "k", b"cold data").pool == "archive"
            snap = inst.snapshots.create("pool:archive")
            inst.delete("old", "k")
            inst.delete("live", "k")
            assert [(o.compartment, o.key) for o in inst.snapshots.search(snap.id)] == [
                ("old", "k")
            ]
            assert inst.snapshots.read(snap.id, "old", "k") == b"cold data"
            with pytest.raises(NotFoundError):
                inst.snapshots.read(snap.id, "live", "k")
            with pytest.raises(NotFoundError, match="not configured"):
                inst.set_tier("warm", "nowhere")
        with reopen(root) as inst:
            assert inst.tiers()["cold"] == "archive"
            assert inst.snapshots.read(snap.id, "old", "k") == b"cold data"
            assert inst.fsck(deep=True).ok
