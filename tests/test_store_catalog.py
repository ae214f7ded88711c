"""The SQLite catalog: plugin registration, schema versions, MVCC by generation, sharing."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from dwcore.errors import UnsupportedFormatError
from dwcore.plugins import Category, MetadataPlugin, PluginManager, discover
from dwcore.pool import Extent
from dwcore.store import CATALOG_DB, Catalog
from dwcore.store.catalog import DeleteChange, PutChange, Scope
from dwcore.store.schema import SCHEMA_VERSION

TAG = b"\x01" * 8


def ext(first: int, length: int = 100) -> Extent:
    return Extent(TAG, first, 1, length)


def put(cat: Catalog, cid: int, key: str, *exts: Extent) -> object:
    size = sum(e.length for e in exts)
    change = PutChange(
        cid, key, 0, size, b"\0" * 32, "o", {}, 0.0, "main",
        extents=[(e, i * 100) for i, e in enumerate(exts)],
    )  # fmt: skip
    (res,), freed = cat.apply([change])
    return res, freed


def test_sqlite_catalog_is_a_metadata_plugin_from_the_entry_points(tmp_path: Path) -> None:
    eps = {ep.name: ep.value for ep in discover()}
    assert eps["sqlite"] == "dwcore.store.plugin:SqliteMetadataPlugin"
    manager = PluginManager([ep for ep in discover() if ep.name == "sqlite"])
    assert manager.load_all().ok
    assert manager.loaded("sqlite").info.category is Category.METADATA
    cat = manager.get("sqlite", MetadataPlugin).open_catalog(str(tmp_path))
    assert isinstance(cat, Catalog) and cat.path == tmp_path / CATALOG_DB
    cat.close()


def test_wal_full_sync_schema_version_and_migrations(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    assert cat.schema_version == SCHEMA_VERSION
    assert cat._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cat._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    rows = cat._conn.execute("SELECT version FROM migrations").fetchall()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    cat.close()
    Catalog(tmp_path / "c.db").close()  # reopening migrates nothing


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Catalog(tmp_path / "c.db").close()
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UnsupportedFormatError, match="newer than this dwcore reads"):
        Catalog(tmp_path / "c.db")


def test_generations_and_live_at(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    comp = cat.create_compartment("c", "o", partitions=16, tier="hot", acl={}, now=0.0)
    g0 = cat.generation
    put(cat, comp.id, "k", ext(1))
    g1 = cat.generation
    assert g1 == g0 + 1
    snap = cat.create_snapshot(Scope("compartment", comp.id), "", "o", 0.0)
    assert snap.generation == g1 and cat.generation == g1  # a snapshot is no change
    _, freed = put(cat, comp.id, "k", ext(2))
    assert freed == []  # the snapshot holds the first version's extent
    g2 = cat.generation
    (_,), freed = cat.apply([DeleteChange(comp.id, "k")])
    assert freed == [("main", ext(2))]  # no snapshot saw the second version
    assert cat.lookup(comp.id, "k") is None
    assert cat.lookup(comp.id, "k", g1).extents[0].extent == ext(1)
    assert cat.lookup(comp.id, "k", g0) is None
    assert cat.lookup(comp.id, "k", g2) is None  # purged: nothing can ask for it
    _, freed = cat.delete_snapshot(snap.id)
    assert freed == [("main", ext(1))]
    assert cat.counts() == {
        "compartments": 1, "objects": 0, "versions": 0, "extents": 0, "snapshots": 0,
    }  # fmt: skip
    cat.close()


def test_a_failed_change_does_not_spoil_its_batch(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    comp = cat.create_compartment("c", "o", partitions=16, tier="hot", acl={}, now=0.0)
    good = PutChange(comp.id, "a", 0, 100, b"\0" * 32, "o", {}, 0.0, "main", [(ext(1), 0)])
    results, _ = cat.apply([DeleteChange(comp.id, "missing"), good])
    assert "does not exist" in str(results[0])
    assert cat.lookup(comp.id, "a") is not None
    cat.close()


def test_a_lone_failed_change_commits_nothing_and_the_generation_stays(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    comp = cat.create_compartment("c", "o", partitions=16, tier="hot", acl={}, now=0.0)
    put(cat, comp.id, "k", ext(1))
    g = cat.generation
    results, freed = cat.apply([DeleteChange(comp.id, "missing")])
    assert "does not exist" in str(results[0]) and freed == []
    assert cat.generation == g
    gone = PutChange(comp.id + 99, "x", 0, 1, b"\0" * 32, "o", {}, 0.0, "main", [(ext(2), 0)])
    (err,), freed = cat.apply([gone])
    assert "does not exist" in str(err) and freed == []
    assert cat.generation == g and cat.counts()["extents"] == 1
    info, _ = put(cat, comp.id, "k2", ext(3))
    assert info.generation == g + 1 == cat.generation
    cat.close()


def test_a_put_returns_what_a_look_up_reads_back(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    comp = cat.create_compartment("c", "o", partitions=16, tier="hot", acl={}, now=0.0)
    change = PutChange(
        comp.id, "k/é", 5, 300, bytes(range(32)), "owner", {"b": "2", "a": "1"}, 1234.5, "main",
        extents=[(ext(1), 0), (ext(2), 100), (ext(3), 200)],
    )  # fmt: skip
    (made,), _ = cat.apply([change])
    found = cat.lookup(comp.id, "k/é")
    assert found is not None
    assert made == dataclasses.replace(found, extents=())
    assert [(r.extent, r.offset) for r in found.extents] == change.extents
    assert cat.lookup(comp.id, "k/é", found.generation) == found  # the general query agrees
    cat.close()


def test_the_generation_is_read_again_after_a_transaction_fails(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    comp = cat.create_compartment("c", "o", partitions=16, tier="hot", acl={}, now=0.0)
    put(cat, comp.id, "a", ext(1))
    g = cat.generation
    bad = PutChange(comp.id, "b", 0, 1, None, "o", {}, 0.0, "main", [(ext(2), 0)])  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):  # hash NOT NULL: the whole transaction goes
        cat.apply([bad])
    assert cat.generation == g
    put(cat, comp.id, "c", ext(3))
    assert cat.generation == g + 1
    cat.close()


def test_check_finds_and_removes_unreferenced_extent_rows(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    cat._conn.execute(
        "INSERT INTO extents (pool, handle, length) VALUES ('main', ?, 100)", (bytes(ext(9)),)
    )
    problems, repaired, freed = cat.check(repair=False)
    assert problems == ["1 extent row(s) referenced by no version"] and not freed
    problems, repaired, freed = cat.check(repair=True)
    assert not problems and repaired and freed == [("main", ext(9))]
    cat.close()


def test_a_batch_of_puts_commits_exactly_what_one_put_at_a_time_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The multi-row path of a group commit's batch against the savepoint path, on
    twin catalogs: same results (ids included), same frees, same versions at every
    generation, through overwrites, snapshots holding old versions and a compartment
    deleted meanwhile."""
    import random

    from dwcore.store import catalog as catalog_module

    rnd = random.Random(11)
    cats = [Catalog(tmp_path / "batch.db"), Catalog(tmp_path / "one.db")]
    comps = [[c.create_compartment(n, "o", partitions=16, tier="hot", acl={}, now=0.0)
              for n in ("a", "b", "gone")] for c in cats]  # fmt: skip
    real = catalog_module._batchable
    first = 1
    errors = frees = 0

    def apply(i: int, changes: list) -> tuple:
        monkeypatch.setattr(catalog_module, "_batchable", real if i == 0 else lambda _c: False)
        return cats[i].apply(changes)

    for step in range(30):
        if step == 12:  # deleted under the writers (they checked it before writing)
            for cat in cats:
                cat._conn.execute("UPDATE compartments SET deleted_gen = 1 WHERE name = 'gone'")
        batch = []
        keys = rnd.sample(range(40), rnd.randint(2, 9))
        for k in keys:
            exts = [ext(first + j, rnd.randint(1, 100)) for j in range(rnd.randint(0, 3))]
            first += len(exts)
            cidx = rnd.choice((0, 1, 2))
            batch.append((cidx, f"k{k}", exts, {"n": str(step)} if rnd.random() < 0.3 else {}))
        outs = []
        for i in range(2):
            changes = [
                PutChange(comps[i][cidx].id, key, 0, sum(e.length for e in exts),
                          bytes([step]) * 32, "o", meta, float(step), "main",
                          extents=[(e, 100 * j) for j, e in enumerate(exts)])
                for cidx, key, exts, meta in batch
            ]  # fmt: skip
            results, freed = apply(i, changes)
            outs.append(([str(r) if isinstance(r, Exception) else r for r in results],
                         sorted(freed, key=lambda f: (f[0], f[1].first_row))))  # fmt: skip
        assert outs[0] == outs[1]
        errors += sum(isinstance(r, str) for r in outs[0][0])
        frees += len(outs[0][1])
        if step % 7 == 3:
            for i, cat in enumerate(cats):
                cat.create_snapshot(Scope("compartment", comps[i][0].id), "", "o", 0.0)
    assert errors and frees  # the deleted compartment and unheld overwrites were met
    assert cats[0].generation == cats[1].generation
    for gen in range(cats[0].generation + 1):
        for n in range(3):
            for k in range(40):
                found = [c.lookup(comps[i][n].id, f"k{k}", gen) for i, c in enumerate(cats)]
                assert found[0] == found[1]
    assert cats[0].counts() == cats[1].counts()
    for cat in cats:
        cat.close()


def test_a_purged_versions_id_is_never_given_to_another(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.db")
    comp = cat.create_compartment("c", "o", partitions=16, tier="hot", acl={}, now=0.0)
    first, _ = put(cat, comp.id, "a", ext(1))
    newest, _ = put(cat, comp.id, "b", ext(2))
    (_,), freed = cat.apply([DeleteChange(comp.id, "b")])  # purged: no snapshot holds it
    assert freed == [("main", ext(2))]
    again, _ = put(cat, comp.id, "b", ext(3))
    assert again.version_id > newest.version_id > first.version_id
    cat.close()
    cat = Catalog(tmp_path / "c.db")  # the high-water mark is durable
    (_,), _ = cat.apply([DeleteChange(comp.id, "b")])
    later, _ = put(cat, comp.id, "c", ext(4))
    assert later.version_id > again.version_id
    cat.close()
