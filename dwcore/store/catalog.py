"""The catalog: compartments, tiers, object versions, extents and snapshots in SQLite.

One file, ``catalog.sqlite3`` in the instance root, in WAL mode with
``synchronous=FULL``: a transaction is durable when its commit returns.
Schema and MVCC rules: :mod:`dwcore.store.schema`.  All changes to objects
go through :meth:`Catalog.apply`, one transaction for a batch of changes
(group commit), one new generation per transaction.

Keeping and freeing extents (copy-on-write)
-------------------------------------------
When a version stops being current (overwritten, deleted, rolled back) it
gets ``deleted_gen``; it is *held* while a snapshot whose scope covers it
was taken at a generation where it was live.  A version nobody holds is
purged in the same transaction, and each of its extents that no remaining
version references is removed and returned to the caller, who frees it in
its pool **after** the commit (so a crash in between leaks rows, which
``fsck`` reclaims, and never frees rows the catalog still points at).
Deleting a snapshot purges the versions only it held.

Thread-safe: one connection behind a lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dwcore.errors import (
    AlreadyExistsError,
    CompartmentNotEmptyError,
    DWError,
    InvalidArgumentError,
    NotFoundError,
)
from dwcore.pool import Extent
from dwcore.store.models import CompartmentInfo, ExtentRef, ObjectInfo, SnapshotInfo
from dwcore.store.schema import migrate

__all__ = [
    "CATALOG_DB",
    "Catalog",
    "DeleteChange",
    "PutChange",
    "Scope",
]

#: The catalog's file name inside the instance root.
CATALOG_DB = "catalog.sqlite3"

_VCOLS = (
    "v.id, v.compartment_id, c.name AS cname, v.key, v.partition, v.size, v.hash, v.owner, "
    "v.metadata, v.created, v.pool, v.created_gen, v.deleted_gen"
)
_FROM = " FROM versions v JOIN compartments c ON c.id = v.compartment_id "
_CURRENT_WITH_EXTENTS = (
    "SELECT v.id, c.name, v.key, v.partition, v.size, v.hash, v.owner, v.metadata, v.created, "
    "v.pool, v.created_gen, ve.extent_id, ve.offset, e.pool, e.handle "
    "FROM versions v JOIN compartments c ON c.id = v.compartment_id "
    "LEFT JOIN version_extents ve ON ve.version_id = v.id "
    "LEFT JOIN extents e ON e.id = ve.extent_id "
    "WHERE v.compartment_id = ? AND v.key = ? AND v.deleted_gen IS NULL ORDER BY ve.seq"
)
_LIVE_AT = " v.created_gen <= :g AND (v.deleted_gen IS NULL OR v.deleted_gen > :g) "
_HELD = (
    "SELECT 1 FROM snapshots s WHERE s.generation >= :cg AND s.generation < :dg AND ("
    "s.kind = 'instance' OR (s.kind = 'pool' AND s.pool = :pool) "
    "OR (s.kind = 'compartment' AND s.compartment_id = :cid) "
    "OR (s.kind = 'object' AND s.compartment_id = :cid AND s.key = :key)) "
)


@dataclass(frozen=True)
class Scope:
    """What a snapshot (or a query) covers: ``instance``, a pool, a compartment or one object."""

    kind: str
    compartment_id: int | None = None
    key: str | None = None
    pool: str | None = None

    def sql(self, alias: str = "v") -> tuple[str, dict[str, Any]]:
        """A condition on versions (table alias ``alias``) and its named parameters."""
        if self.kind == "instance":
            return "1", {}
        if self.kind == "pool":
            return f"{alias}.pool = :s_pool", {"s_pool": self.pool}
        if self.kind == "compartment":
            return f"{alias}.compartment_id = :s_cid", {"s_cid": self.compartment_id}
        return (
            f"{alias}.compartment_id = :s_cid AND {alias}.key = :s_key",
            {"s_cid": self.compartment_id, "s_key": self.key},
        )


@dataclass
class PutChange:
    """A new current version of ``key``: new extents written by the caller, or shared ones.

    ``extents`` are ``(extent, object offset)`` pairs already durable in
    ``pool``; ``shared`` are ``(extent row id, object offset)`` of extents the
    catalog already has (a roll-back).
    """

    compartment_id: int
    key: str
    partition: int
    size: int
    content_hash: bytes
    owner: str
    metadata: dict[str, str]
    created: float
    pool: str
    extents: list[tuple[Extent, int]] = field(default_factory=list)
    shared: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class DeleteChange:
    """``key`` stops being current (``missing_ok``: no error when it does not exist)."""

    compartment_id: int
    key: str
    missing_ok: bool = False


Change = PutChange | DeleteChange


_T = TypeVar("_T")

#: Bound parameters per statement: SQLite's lowest default limit (older builds: 999).
_MAX_PARAMS = 999


def _batchable(changes: Sequence[Change]) -> bool:
    """Whether :meth:`Catalog._put_many` may commit ``changes``: several puts of new
    extents, each key once (a key twice in one batch needs the puts in order)."""
    if len(changes) < 2:
        return False
    keys = set()
    for ch in changes:
        if not isinstance(ch, PutChange) or ch.shared:
            return False
        keys.add((ch.compartment_id, ch.key))
    return len(keys) == len(changes)


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_rows(tx: sqlite3.Connection, into: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``INSERT INTO {into} VALUES (...), (...)``: as few statements as the limit allows."""
    if not rows:
        return
    width = len(rows[0])
    group = "(" + ",".join("?" * width) + ")"
    for part in _chunks(rows, max(1, _MAX_PARAMS // width)):
        tx.execute(
            f"INSERT INTO {into} VALUES {','.join([group] * len(part))}",
            [v for row in part for v in row],
        )


class _NewIds:
    """Row ids for the versions and extents one transaction inserts, above every id
    present when it began.  Version ids also stay above every id ever handed out (the
    ``version_hwm`` row of ``meta``): a purged version's id is never given to another
    version, so a version id (in audit records, say) names one version for good."""

    __slots__ = ("_extent", "_hwm", "_version")

    def __init__(self, tx: sqlite3.Connection) -> None:
        row = tx.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM versions), "
            "(SELECT coalesce(max(id), 0) FROM extents), "
            "(SELECT value FROM meta WHERE key = 'version_hwm')"
        ).fetchone()
        self._hwm = int(row[2] or 0)
        self._version, self._extent = max(int(row[0]), self._hwm), int(row[1])

    def version(self) -> int:
        self._version += 1
        return self._version

    def extent(self) -> int:
        self._extent += 1
        return self._extent

    def save(self, tx: sqlite3.Connection) -> None:
        """Record the highest version id handed out (in the same transaction)."""
        if self._version > self._hwm:
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('version_hwm', ?)",
                (self._version,),
            )


def _new_info(ch: PutChange, compartment: str, vid: int, gen: int, meta: str) -> ObjectInfo:
    """The version a put inserts, as :meth:`Catalog.lookup` would read it back (without
    its extents); ``meta`` is the metadata column as stored."""
    return ObjectInfo(
        compartment=compartment,
        key=ch.key,
        version_id=vid,
        size=ch.size,
        content_hash=bytes(ch.content_hash).hex(),
        owner=ch.owner,
        metadata={} if meta == "{}" else json.loads(meta),
        created=ch.created,
        generation=gen,
        pool=ch.pool,
        partition=ch.partition,
        extents=(),
    )


class Catalog:
    """The SQLite catalog of one instance; see the module documentation."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.RLock()
        self._closed = False
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._compartments: dict[str, CompartmentInfo] = {}
        self._tiers: dict[str, str] | None = None
        self._gen: int | None = None  # the last committed generation, once read
        self._gen_pending: int | None = None  # the one the open transaction writes
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            with self._tx() as tx:
                migrate(tx, self.path)
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _check(self) -> None:
        if self._closed:
            raise InvalidArgumentError(f"the catalog {self.path} is closed")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check()
            self._conn.execute("BEGIN IMMEDIATE")
            self._gen_pending = None
            try:
                yield self._conn
            except BaseException:
                self._gen = self._gen_pending = None  # read again from the database
                self._conn.execute("ROLLBACK")
                self._compartments.clear()
                self._tiers = None
                raise
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                self._gen = self._gen_pending = None
                raise
            if self._gen_pending is not None:
                self._gen = self._gen_pending

    def _all(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._check()
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        with self._lock:
            self._check()
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def _bump(self, tx: sqlite3.Connection) -> int:
        """The next generation, written in ``tx`` (the last committed one is kept in
        memory: the catalog's lock serialises every transaction of this connection)."""
        if self._gen is None:
            self._gen = int(
                tx.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            )
        gen = self._gen + 1
        tx.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (gen,))
        self._gen_pending = gen
        return gen

    @property
    def generation(self) -> int:
        """The generation of the last committed change."""
        row = self._one("SELECT value FROM meta WHERE key = 'generation'")
        assert row is not None
        return int(row[0])

    @property
    def schema_version(self) -> int:
        """The schema version of the catalog file."""
        row = self._one("PRAGMA user_version")
        assert row is not None
        return int(row[0])

    # --------------------------------------------------------------- tiers

    def tiers(self) -> dict[str, str]:
        """Tier name -> pool name."""
        with self._lock:
            if self._tiers is None:
                rows = self._all("SELECT name, pool FROM tiers")
                self._tiers = {r["name"]: r["pool"] for r in rows}
            return dict(self._tiers)

    def set_tier(self, tier: str, pool: str) -> None:
        """Map ``tier`` (hot, warm or cold) to ``pool``."""
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO tiers (name, pool) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET pool = excluded.pool",
                (tier, pool),
            )
            self._tiers = None

    # -------------------------------------------------------- compartments

    @staticmethod
    def _compartment(row: sqlite3.Row) -> CompartmentInfo:
        acl = {k: tuple(v) for k, v in json.loads(row["acl"]).items()}
        return CompartmentInfo(
            id=row["id"],
            name=row["name"],
            owner=row["owner"],
            acl=acl,
            partitions=row["partitions"],
            tier=row["tier"],
            created=row["created"],
            generation=row["created_gen"],
        )

    def create_compartment(
        self,
        name: str,
        owner: str,
        *,
        partitions: int,
        tier: str,
        acl: dict[str, tuple[str, ...]],
        now: float,
    ) -> CompartmentInfo:
        """Add a compartment; AlreadyExistsError if one of that name exists."""
        with self._tx() as tx:
            if tx.execute(
                "SELECT 1 FROM compartments WHERE name = ? AND deleted_gen IS NULL", (name,)
            ).fetchone():
                raise AlreadyExistsError(f"compartment {name!r} already exists")
            gen = self._bump(tx)
            cur = tx.execute(
                "INSERT INTO compartments (name, owner, acl, partitions, tier, created, "
                "created_gen) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, owner, json.dumps(acl, sort_keys=True), partitions, tier, now, gen),
            )
            row = tx.execute("SELECT * FROM compartments WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._compartment(row)

    def compartment(self, name: str) -> CompartmentInfo:
        """The current compartment called ``name``; NotFoundError if there is none."""
        with self._lock:
            info = self._compartments.get(name)
            if info is not None:
                return info
            row = self._one(
                "SELECT * FROM compartments WHERE name = ? AND deleted_gen IS NULL", (name,)
            )
            if row is None:
                raise NotFoundError(
                    f"compartment {name!r} does not exist; create it first "
                    f"(Instance.create_compartment or `dwcore put --create`)"
                )
            info = self._compartment(row)
            self._compartments[name] = info
            return info

    def compartment_at(self, name: str, gen: int) -> CompartmentInfo | None:
        """The compartment called ``name`` that existed at generation ``gen``, if any."""
        row = self._one(
            "SELECT * FROM compartments WHERE name = ? AND created_gen <= ? "
            "AND (deleted_gen IS NULL OR deleted_gen > ?) ORDER BY id DESC LIMIT 1",
            (name, gen, gen),
        )
        return None if row is None else self._compartment(row)

    def compartment_by_id(self, cid: int) -> CompartmentInfo:
        """The compartment with row id ``cid`` (current or deleted)."""
        row = self._one("SELECT * FROM compartments WHERE id = ?", (cid,))
        if row is None:
            raise NotFoundError(f"no compartment with id {cid}")
        return self._compartment(row)

    def list_compartments(self, gen: int | None = None) -> list[CompartmentInfo]:
        """Compartments existing now (or at generation ``gen``), by name."""
        if gen is None:
            rows = self._all("SELECT * FROM compartments WHERE deleted_gen IS NULL ORDER BY name")
        else:
            rows = self._all(
                "SELECT * FROM compartments WHERE created_gen <= ? "
                "AND (deleted_gen IS NULL OR deleted_gen > ?) ORDER BY name",
                (gen, gen),
            )
        return [self._compartment(r) for r in rows]

    def delete_compartment(self, name: str) -> CompartmentInfo:
        """Mark the compartment deleted; CompartmentNotEmptyError while it holds objects."""
        with self._tx() as tx:
            row = tx.execute(
                "SELECT * FROM compartments WHERE name = ? AND deleted_gen IS NULL", (name,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"compartment {name!r} does not exist")
            count = tx.execute(
                "SELECT count(*) FROM versions WHERE compartment_id = ? AND deleted_gen IS NULL",
                (row["id"],),
            ).fetchone()[0]
            if count:
                raise CompartmentNotEmptyError(
                    f"compartment {name!r} still holds {count} object(s); delete them first"
                )
            gen = self._bump(tx)
            tx.execute("UPDATE compartments SET deleted_gen = ? WHERE id = ?", (gen, row["id"]))
            self._compartments.pop(name, None)
        return self._compartment(row)

    def set_acl(self, name: str, acl: dict[str, tuple[str, ...]]) -> CompartmentInfo:
        """Replace the ACL of compartment ``name``."""
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE compartments SET acl = ? WHERE name = ? AND deleted_gen IS NULL",
                (json.dumps(acl, sort_keys=True), name),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"compartment {name!r} does not exist")
            self._compartments.pop(name, None)
        return self.compartment(name)

    # ------------------------------------------------------------- reading

    def _object(self, row: sqlite3.Row, extents: bool) -> ObjectInfo:
        refs: tuple[ExtentRef, ...] = ()
        if extents:
            refs = tuple(
                ExtentRef(r["extent_id"], r["pool"], Extent.from_bytes(r["handle"]), r["offset"])
                for r in self._conn.execute(
                    "SELECT ve.extent_id, ve.offset, e.pool, e.handle FROM version_extents ve "
                    "JOIN extents e ON e.id = ve.extent_id WHERE ve.version_id = ? "
                    "ORDER BY ve.seq",
                    (row["id"],),
                )
            )
        return ObjectInfo(
            compartment=row["cname"],
            key=row["key"],
            version_id=row["id"],
            size=row["size"],
            content_hash=bytes(row["hash"]).hex(),
            owner=row["owner"],
            metadata={} if row["metadata"] == "{}" else json.loads(row["metadata"]),
            created=row["created"],
            generation=row["created_gen"],
            pool=row["pool"],
            partition=row["partition"],
            extents=refs,
        )

    def lookup(
        self,
        cid: int,
        key: str,
        gen: int | None = None,
        *,
        extents: bool = True,
        scope: Scope | None = None,
    ) -> ObjectInfo | None:
        """The version of ``key`` current now (or live at ``gen``), inside ``scope`` if given."""
        if gen is None and scope is None and extents:
            return self._current(cid, key)
        cond, params = (scope or Scope("instance")).sql()
        params = {**params, "cid": cid, "key": key}
        with self._lock:
            self._check()
            if gen is None:
                sql = (
                    f"SELECT {_VCOLS}{_FROM}WHERE v.compartment_id = :cid AND v.key = :key "
                    f"AND v.deleted_gen IS NULL AND {cond}"
                )
            else:
                params["g"] = gen
                sql = (
                    f"SELECT {_VCOLS}{_FROM}WHERE v.compartment_id = :cid AND v.key = :key AND "
                    f"{_LIVE_AT} AND {cond}"
                )
            row = self._conn.execute(sql, params).fetchone()
            return None if row is None else self._object(row, extents)

    def _current(self, cid: int, key: str) -> ObjectInfo | None:
        """:meth:`lookup` of the current version with its extents, in one query (the
        path of every read)."""
        with self._lock:
            self._check()
            cur = self._conn.cursor()
            cur.row_factory = None  # plain tuples: this runs on every get
            rows = cur.execute(_CURRENT_WITH_EXTENTS, (cid, key)).fetchall()
        if not rows:
            return None
        vid, cname, key, partition, size, digest, owner, meta, created, pool, gen = rows[0][:11]
        return ObjectInfo(
            compartment=cname,
            key=key,
            version_id=vid,
            size=size,
            content_hash=bytes(digest).hex(),
            owner=owner,
            metadata={} if meta == "{}" else json.loads(meta),
            created=created,
            generation=gen,
            pool=pool,
            partition=partition,
            extents=tuple(
                ExtentRef(r[11], r[13], Extent.from_bytes(r[14]), r[12])
                for r in rows
                if r[11] is not None
            ),
        )

    def version(self, version_id: int) -> ObjectInfo | None:
        """The version with id ``version_id`` (with extents), if the catalog still has it."""
        with self._lock:
            self._check()
            row = self._conn.execute(
                f"SELECT {_VCOLS}{_FROM}WHERE v.id = ?", (version_id,)
            ).fetchone()
            return None if row is None else self._object(row, True)

    def list_objects(
        self,
        cid: int,
        *,
        prefix: str = "",
        start_after: str | None = None,
        start_at: str | None = None,
        end: str | None = None,
        limit: int = 1000,
        gen: int | None = None,
        scope: Scope | None = None,
        extra: str = "",
        extra_params: dict[str, Any] | None = None,
    ) -> list[ObjectInfo]:
        """Versions current (or live at ``gen``) in compartment ``cid``, by key.

        Keys start with ``prefix``, are after ``start_after``, at or after
        ``start_at`` and before ``end`` (the end of the prefix range when None).
        """
        from dwcore.store.keys import prefix_end

        cond, params = (scope or Scope("instance")).sql()
        params = {**params, **(extra_params or {}), "cid": cid, "lo": prefix, "n": limit}
        where = ["v.compartment_id = :cid", "v.key >= :lo", cond]
        if start_after is not None:
            where.append("v.key > :after")
            params["after"] = start_after
        if start_at is not None:
            where.append("v.key >= :at")
            params["at"] = start_at
        hi = end if end is not None else prefix_end(prefix) if prefix else None
        if hi is not None:
            where.append("v.key < :hi")
            params["hi"] = hi
        if gen is None:
            where.append("v.deleted_gen IS NULL")
        else:
            where.append(_LIVE_AT)
            params["g"] = gen
        if extra:
            where.append(extra)
        sql = f"SELECT {_VCOLS}{_FROM}WHERE {' AND '.join(where)} ORDER BY v.key LIMIT :n"
        with self._lock:
            self._check()
            rows = self._conn.execute(sql, params).fetchall()
            return [self._object(r, False) for r in rows]

    def history(self, cid: int, key: str) -> list[ObjectInfo]:
        """Every version of ``key`` the catalog still keeps, oldest first."""
        with self._lock:
            self._check()
            rows = self._conn.execute(
                f"SELECT {_VCOLS}{_FROM}WHERE v.compartment_id = ? AND v.key = ? "
                f"ORDER BY v.created_gen, v.id",
                (cid, key),
            ).fetchall()
            return [self._object(r, False) for r in rows]

    def search(
        self,
        scope: Scope,
        gen: int,
        *,
        pattern: str = "*",
        min_size: int | None = None,
        max_size: int | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[ObjectInfo]:
        """Versions live at ``gen`` in ``scope`` whose key matches the glob ``pattern``."""
        cond, params = scope.sql()
        params = {**params, "g": gen, "pat": pattern, "n": limit}
        where = [cond, _LIVE_AT, "v.key GLOB :pat"]
        for name, value, op, col in (
            ("min_size", min_size, ">=", "size"),
            ("max_size", max_size, "<=", "size"),
            ("since", since, ">=", "created"),
            ("until", until, "<", "created"),
        ):
            if value is not None:
                where.append(f"v.{col} {op} :{name}")
                params[name] = value
        sql = f"SELECT {_VCOLS}{_FROM}WHERE {' AND '.join(where)} ORDER BY c.name, v.key LIMIT :n"
        with self._lock:
            self._check()
            return [self._object(r, False) for r in self._conn.execute(sql, params).fetchall()]

    def changed_keys(self, scope: Scope, low: int, high: int) -> list[tuple[int, str]]:
        """``(compartment id, key)`` of every version in ``scope`` created or deleted in
        generations ``(low, high]``: the keys whose state may differ between them."""
        cond, params = scope.sql()
        params = {**params, "lo": low, "hi": high}
        # the generation indexes, so the cost follows the changes, not the objects in scope
        sql = (
            f"SELECT v.compartment_id, v.key FROM versions v INDEXED BY versions_created "
            f"WHERE v.created_gen > :lo AND v.created_gen <= :hi AND {cond} UNION "
            f"SELECT v.compartment_id, v.key FROM versions v INDEXED BY versions_deleted "
            f"WHERE v.deleted_gen > :lo AND v.deleted_gen <= :hi AND {cond} ORDER BY 1, 2"
        )
        return [(r[0], r[1]) for r in self._all(sql, params)]

    def live_extents(self, pool: str) -> list[Extent]:
        """Every extent of ``pool`` the catalog references (for ``Pool.reconcile``)."""
        return [
            Extent.from_bytes(r[0])
            for r in self._all("SELECT handle FROM extents WHERE pool = ?", (pool,))
        ]

    def counts(self) -> dict[str, int]:
        """Numbers of compartments, current objects, kept versions, extents and snapshots."""
        q = {
            "compartments": "SELECT count(*) FROM compartments WHERE deleted_gen IS NULL",
            "objects": "SELECT count(*) FROM versions WHERE deleted_gen IS NULL",
            "versions": "SELECT count(*) FROM versions",
            "extents": "SELECT count(*) FROM extents",
            "snapshots": "SELECT count(*) FROM snapshots",
        }
        return {k: int(self._all(sql)[0][0]) for k, sql in q.items()}

    # ------------------------------------------------------------ changing

    def apply(
        self, changes: Sequence[Change]
    ) -> tuple[list[ObjectInfo | DWError | None], list[tuple[str, Extent]]]:
        """Commit ``changes`` in one transaction at one new generation.

        Returns one result per change (the new version for a put, the removed
        version or None for a delete, or the :class:`DWError` that change
        met, which leaves the others committed) and the ``(pool, extent)``
        pairs no version references any more, for the caller to free after
        this returns.
        """
        results: list[ObjectInfo | DWError | None] = []
        freed: list[tuple[str, Extent]] = []
        if len(changes) == 1:  # no savepoint: its error rolls the whole transaction back
            try:
                with self._tx() as tx:
                    ids = _NewIds(tx)
                    results.append(self._change(tx, changes[0], self._bump(tx), ids, freed))
                    ids.save(tx)
            except DWError as exc:
                return [exc], []
            return results, freed
        if _batchable(changes):
            with self._tx() as tx:
                ids = _NewIds(tx)
                puts: Sequence[PutChange] = changes  # type: ignore[assignment]
                many = self._put_many(tx, puts, self._bump(tx), ids, freed)
                ids.save(tx)
                return many, freed
        with self._tx() as tx:
            ids = _NewIds(tx)
            gen = self._bump(tx)
            for i, change in enumerate(changes):
                tx.execute(f"SAVEPOINT c{i}")
                try:
                    results.append(self._change(tx, change, gen, ids, freed))
                except DWError as exc:
                    tx.execute(f"ROLLBACK TO c{i}")
                    results.append(exc)
                tx.execute(f"RELEASE c{i}")
            ids.save(tx)
        return results, freed

    def _put_many(
        self,
        tx: sqlite3.Connection,
        changes: Sequence[PutChange],
        gen: int,
        ids: _NewIds,
        freed: list[tuple[str, Extent]],
    ) -> list[ObjectInfo | DWError | None]:
        """:meth:`_put` of many new versions of distinct keys in a few statements: one
        look-up of their compartments and one of their current versions, then one
        multi-row insert per table.  (A group commit's leader runs this while other
        writers hold the GIL: every statement it saves is a GIL hand-off it does not
        wait for.)  Results as :meth:`apply`, in order."""
        results: list[ObjectInfo | DWError | None] = [None] * len(changes)
        cids = sorted({c.compartment_id for c in changes})
        names = dict(
            tx.execute(
                f"SELECT id, name FROM compartments WHERE deleted_gen IS NULL AND id IN "
                f"({','.join('?' * len(cids))})",
                cids,
            ).fetchall()
        )
        todo: list[int] = []
        for i, ch in enumerate(changes):
            if ch.compartment_id in names:
                todo.append(i)
                continue
            try:
                self._require_live(tx, ch.compartment_id)  # raises, with the usual message
            except DWError as exc:
                results[i] = exc
        if not todo:
            return results
        for part in _chunks(todo, _MAX_PARAMS // 2):
            pairs = [x for i in part for x in (changes[i].compartment_id, changes[i].key)]
            for row in tx.execute(
                f"WITH k(cid, key) AS (VALUES {','.join(['(?,?)'] * len(part))}) "
                f"SELECT {_VCOLS} FROM k CROSS JOIN versions v ON v.compartment_id = k.cid "
                f"AND v.key = k.key AND v.deleted_gen IS NULL "
                f"JOIN compartments c ON c.id = v.compartment_id",
                pairs,
            ).fetchall():
                self._retire_row(tx, row, gen, freed)
        vrows: list[tuple[Any, ...]] = []
        erows: list[tuple[Any, ...]] = []
        links: list[tuple[int, int, int, int]] = []
        for i in todo:
            ch = changes[i]
            vid = ids.version()
            meta = json.dumps(ch.metadata, sort_keys=True)
            vrows.append(
                (vid, ch.compartment_id, ch.key, ch.partition, ch.size, ch.content_hash,
                 ch.owner, meta, ch.created, ch.pool, gen)
            )  # fmt: skip
            for seq, (ext, offset) in enumerate(ch.extents):
                eid = ids.extent()
                erows.append((eid, ch.pool, bytes(ext), ext.length))
                links.append((vid, seq, eid, offset))
            results[i] = _new_info(ch, names[ch.compartment_id], vid, gen, meta)
        _insert_rows(
            tx,
            "versions (id, compartment_id, key, partition, size, hash, owner, metadata, "
            "created, pool, created_gen)",
            vrows,
        )
        _insert_rows(tx, "extents (id, pool, handle, length)", erows)
        _insert_rows(tx, "version_extents (version_id, seq, extent_id, offset)", links)
        return results

    def _change(
        self,
        tx: sqlite3.Connection,
        change: Change,
        gen: int,
        ids: _NewIds,
        freed: list[tuple[str, Extent]],
    ) -> ObjectInfo | None:
        if isinstance(change, PutChange):
            return self._put(tx, change, gen, ids, freed)
        return self._delete(tx, change, gen, freed)

    def _require_live(self, tx: sqlite3.Connection, cid: int) -> str:
        row = tx.execute(
            "SELECT name, deleted_gen FROM compartments WHERE id = ?", (cid,)
        ).fetchone()
        if row is None or row["deleted_gen"] is not None:
            name = row["name"] if row is not None else f"#{cid}"
            raise NotFoundError(f"compartment {name!r} does not exist (deleted meanwhile?)")
        return str(row["name"])

    def _retire(
        self,
        tx: sqlite3.Connection,
        key_where: str,
        params: tuple[Any, ...],
        gen: int,
        freed: list[tuple[str, Extent]],
    ) -> sqlite3.Row | None:
        row = tx.execute(
            f"SELECT {_VCOLS}{_FROM}WHERE {key_where} AND v.deleted_gen IS NULL", params
        ).fetchone()
        if row is None:
            return None
        self._retire_row(tx, row, gen, freed)
        return row

    def _retire_row(
        self, tx: sqlite3.Connection, row: sqlite3.Row, gen: int, freed: list[tuple[str, Extent]]
    ) -> None:
        """End the current version ``row`` (``_VCOLS``) at ``gen``; purge it if unheld."""
        tx.execute("UPDATE versions SET deleted_gen = ? WHERE id = ?", (gen, row["id"]))
        self._purge_unheld(
            tx,
            row["id"],
            (row["created_gen"], gen, row["pool"], row["compartment_id"], row["key"]),
            freed,
        )

    def _maybe_purge(
        self, tx: sqlite3.Connection, version_id: int, freed: list[tuple[str, Extent]]
    ) -> bool:
        """Delete a deleted version no snapshot holds, and the extents only it used
        (appended to ``freed``).  True when it was deleted."""
        v = tx.execute("SELECT * FROM versions WHERE id = ?", (version_id,)).fetchone()
        if v is None or v["deleted_gen"] is None:
            return False
        return self._purge_unheld(
            tx,
            version_id,
            (v["created_gen"], v["deleted_gen"], v["pool"], v["compartment_id"], v["key"]),
            freed,
        )

    def _purge_unheld(
        self,
        tx: sqlite3.Connection,
        version_id: int,
        life: tuple[int, int, str, int, str],
        freed: list[tuple[str, Extent]],
    ) -> bool:
        """:meth:`_maybe_purge` of a version whose (created_gen, deleted_gen, pool,
        compartment id, key) the caller already has."""
        cg, dg, pool, cid, key = life
        held = tx.execute(
            _HELD + "LIMIT 1", {"cg": cg, "dg": dg, "pool": pool, "cid": cid, "key": key}
        ).fetchone()
        if held:
            return False
        rows = tx.execute(
            "SELECT DISTINCT ve.extent_id, e.pool, e.handle FROM version_extents ve "
            "JOIN extents e ON e.id = ve.extent_id WHERE ve.version_id = ?",
            (version_id,),
        ).fetchall()
        tx.execute("DELETE FROM version_extents WHERE version_id = ?", (version_id,))
        tx.execute("DELETE FROM versions WHERE id = ?", (version_id,))
        for eid, epool, handle in rows:
            if tx.execute(
                "SELECT 1 FROM version_extents WHERE extent_id = ? LIMIT 1", (eid,)
            ).fetchone():
                continue
            tx.execute("DELETE FROM extents WHERE id = ?", (eid,))
            freed.append((epool, Extent.from_bytes(handle)))
        return True

    def _put(
        self,
        tx: sqlite3.Connection,
        ch: PutChange,
        gen: int,
        ids: _NewIds,
        freed: list[tuple[str, Extent]],
    ) -> ObjectInfo:
        cname = self._require_live(tx, ch.compartment_id)
        self._retire(
            tx, "v.compartment_id = ? AND v.key = ?", (ch.compartment_id, ch.key), gen, freed
        )
        meta = json.dumps(ch.metadata, sort_keys=True)
        vid = ids.version()
        tx.execute(
            "INSERT INTO versions (id, compartment_id, key, partition, size, hash, owner, "
            "metadata, created, pool, created_gen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                vid,
                ch.compartment_id,
                ch.key,
                ch.partition,
                ch.size,
                ch.content_hash,
                ch.owner,
                meta,
                ch.created,
                ch.pool,
                gen,
            ),
        )
        seq = 0
        for eid, offset in ch.shared:
            tx.execute(
                "INSERT INTO version_extents (version_id, seq, extent_id, offset) "
                "VALUES (?, ?, ?, ?)",
                (vid, seq, eid, offset),
            )
            seq += 1
        for ext, offset in ch.extents:
            new_eid = ids.extent()
            tx.execute(
                "INSERT INTO extents (id, pool, handle, length) VALUES (?, ?, ?, ?)",
                (new_eid, ch.pool, bytes(ext), ext.length),
            )
            tx.execute(
                "INSERT INTO version_extents (version_id, seq, extent_id, offset) "
                "VALUES (?, ?, ?, ?)",
                (vid, seq, new_eid, offset),
            )
            seq += 1
        return _new_info(ch, cname, vid, gen, meta)

    def _delete(
        self, tx: sqlite3.Connection, ch: DeleteChange, gen: int, freed: list[tuple[str, Extent]]
    ) -> ObjectInfo | None:
        name = self._require_live(tx, ch.compartment_id)
        row = self._retire(
            tx, "v.compartment_id = ? AND v.key = ?", (ch.compartment_id, ch.key), gen, freed
        )
        if row is None:
            if ch.missing_ok:
                return None
            raise NotFoundError(f"object {ch.key!r} does not exist in compartment {name!r}")
        return self._object(row, False)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the catalog's lock: no other thread changes it inside the block."""
        with self._lock:
            yield

    def rollback_changes(
        self,
        target_cid: int,
        source_cid: int,
        key: str | None,
        scope: Scope,
        gen: int,
        now: float,
        owner: str,
    ) -> list[Change]:
        """The changes that make compartment ``target_cid`` (or its object ``key``) show what
        the snapshot of ``scope`` at ``gen`` showed of compartment ``source_cid``: new
        versions sharing the old extents, and deletes.  Call under :meth:`locked`."""
        if key is not None:
            keys = [key]
        elif source_cid == target_cid:
            keys = [
                k
                for _, k in self.changed_keys(
                    Scope("compartment", source_cid), gen, self.generation
                )
            ]
        else:
            old = {o.key for o in self._iter_keys(source_cid, gen)}
            new = {o.key for o in self._iter_keys(target_cid, None)}
            keys = sorted(old | new)
        changes: list[Change] = []
        for k in keys:
            then = self.lookup(source_cid, k, gen, scope=scope)
            current = self.lookup(target_cid, k, extents=False)
            if then is None:
                if current is not None and (scope.kind != "pool" or current.pool == scope.pool):
                    changes.append(DeleteChange(target_cid, k, missing_ok=True))
                continue
            if current is not None and (
                current.version_id == then.version_id
                or (current.content_hash, current.metadata) == (then.content_hash, then.metadata)
            ):
                continue
            changes.append(
                PutChange(
                    compartment_id=target_cid,
                    key=k,
                    partition=then.partition,
                    size=then.size,
                    content_hash=bytes.fromhex(then.content_hash),
                    owner=owner,
                    metadata=dict(then.metadata),
                    created=now,
                    pool=then.pool,
                    shared=[(r.id, r.offset) for r in then.extents],
                )
            )
        return changes

    def _iter_keys(self, cid: int, gen: int | None) -> Iterator[ObjectInfo]:
        after: str | None = None
        while True:
            page = self.list_objects(cid, start_after=after, limit=1000, gen=gen)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].key

    # ----------------------------------------------------------- snapshots

    def _snapshot(self, row: sqlite3.Row) -> SnapshotInfo:
        cname = row["cname"]
        kind = row["kind"]
        if kind == "instance":
            target = "instance"
        elif kind == "pool":
            target = f"pool:{row['pool']}"
        elif kind == "compartment":
            target = f"compartment:{cname}"
        else:
            target = f"object:{cname}/{row['key']}"
        return SnapshotInfo(
            id=row["id"],
            kind=kind,
            target=target,
            compartment_id=row["compartment_id"],
            compartment=cname,
            key=row["key"],
            pool=row["pool"],
            generation=row["generation"],
            description=row["description"],
            owner=row["owner"],
            created=row["created"],
        )

    _SNAP = (
        "SELECT s.*, c.name AS cname FROM snapshots s "
        "LEFT JOIN compartments c ON c.id = s.compartment_id "
    )

    def create_snapshot(
        self, scope: Scope, description: str, owner: str, now: float
    ) -> SnapshotInfo:
        """Record the current generation for ``scope``: O(1), nothing is copied."""
        with self._tx() as tx:
            if scope.compartment_id is not None:
                self._require_live(tx, scope.compartment_id)
            gen = int(tx.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            cur = tx.execute(
                "INSERT INTO snapshots (kind, compartment_id, key, pool, generation, description, "
                "owner, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    scope.kind,
                    scope.compartment_id,
                    scope.key,
                    scope.pool,
                    gen,
                    description,
                    owner,
                    now,
                ),
            )
            row = tx.execute(self._SNAP + "WHERE s.id = ?", (cur.lastrowid,)).fetchone()
        return self._snapshot(row)

    def snapshot(self, snapshot_id: int) -> SnapshotInfo:
        """The snapshot ``snapshot_id``; NotFoundError if there is none."""
        row = self._one(self._SNAP + "WHERE s.id = ?", (snapshot_id,))
        if row is None:
            raise NotFoundError(
                f"snapshot {snapshot_id} does not exist (see `dwcore snapshot list`)"
            )
        return self._snapshot(row)

    def list_snapshots(
        self,
        *,
        kind: str | None = None,
        compartment_id: int | None = None,
        key: str | None = None,
        pool: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SnapshotInfo]:
        """Snapshots, oldest first, filtered by target and creation time ``[since, until)``."""
        where, params = ["1"], []
        for col, value in (
            ("s.kind", kind),
            ("s.compartment_id", compartment_id),
            ("s.key", key),
            ("s.pool", pool),
        ):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if since is not None:
            where.append("s.created >= ?")
            params.append(since)
        if until is not None:
            where.append("s.created < ?")
            params.append(until)
        rows = self._all(self._SNAP + f"WHERE {' AND '.join(where)} ORDER BY s.id", params)
        return [self._snapshot(r) for r in rows]

    def delete_snapshot(self, snapshot_id: int) -> tuple[SnapshotInfo, list[tuple[str, Extent]]]:
        """Remove a snapshot and purge the versions only it held; returns the extents to free."""
        freed: list[tuple[str, Extent]] = []
        with self._tx() as tx:
            row = tx.execute(self._SNAP + "WHERE s.id = ?", (snapshot_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"snapshot {snapshot_id} does not exist")
            info = self._snapshot(row)
            tx.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))
            cond, params = self.scope_of(info).sql()
            params = {**params, "g": info.generation}
            ids = [
                r[0]
                for r in tx.execute(
                    f"SELECT v.id FROM versions v WHERE v.deleted_gen > :g "
                    f"AND v.created_gen <= :g AND {cond}",
                    params,
                ).fetchall()
            ]
            for vid in ids:
                self._maybe_purge(tx, vid, freed)
        return info, freed

    @staticmethod
    def scope_of(info: SnapshotInfo) -> Scope:
        """The scope a snapshot covers."""
        return Scope(info.kind, info.compartment_id, info.key, info.pool)

    def exclusive_bytes(self, info: SnapshotInfo) -> int:
        """Bytes of extents that only this snapshot keeps (freed if it were deleted)."""
        cond, params = self.scope_of(info).sql()
        params = {**params, "g": info.generation}
        total = 0
        with self._lock:
            self._check()
            rows = self._conn.execute(
                f"SELECT DISTINCT e.id, e.length FROM versions v "
                f"JOIN version_extents ve ON ve.version_id = v.id "
                f"JOIN extents e ON e.id = ve.extent_id "
                f"WHERE v.deleted_gen > :g AND v.created_gen <= :g AND {cond}",
                params,
            ).fetchall()
            for eid, length in rows:
                users = self._conn.execute(
                    "SELECT v.* FROM version_extents ve JOIN versions v ON v.id = ve.version_id "
                    "WHERE ve.extent_id = ?",
                    (eid,),
                ).fetchall()
                if any(self._held_by_other(v, info.id) for v in users):
                    continue
                total += length
        return total

    def _held_by_other(self, v: sqlite3.Row, snapshot_id: int) -> bool:
        if v["deleted_gen"] is None:
            return True
        row = self._conn.execute(
            _HELD + "AND s.id != :sid LIMIT 1",
            {
                "cg": v["created_gen"],
                "dg": v["deleted_gen"],
                "pool": v["pool"],
                "cid": v["compartment_id"],
                "key": v["key"],
                "sid": snapshot_id,
            },
        ).fetchone()
        return row is not None

    # ---------------------------------------------------------------- fsck

    def check(self, repair: bool) -> tuple[list[str], list[str], list[tuple[str, Extent]]]:
        """Consistency checks: ``(problems left, problems repaired, extents to free)``.

        SQLite's own integrity check, version-extent links to missing extents,
        extents no version references (removed with ``repair``; returned to be
        freed), extent handles that do not decode, live versions whose extents
        do not add up to their size.
        """
        problems: list[str] = []
        repaired: list[str] = []
        freed: list[tuple[str, Extent]] = []
        with self._lock:
            self._check()
            res = [r[0] for r in self._conn.execute("PRAGMA integrity_check").fetchall()]
            if res != ["ok"]:
                problems.extend(f"catalog: {line}" for line in res)
            for r in self._conn.execute(
                "SELECT ve.version_id, ve.extent_id FROM version_extents ve "
                "LEFT JOIN extents e ON e.id = ve.extent_id WHERE e.id IS NULL"
            ):
                problems.append(f"version {r[0]} points at missing extent row {r[1]}")
            for r in self._conn.execute("SELECT id, pool, handle, length FROM extents"):
                try:
                    ext = Extent.from_bytes(r["handle"])
                except DWError as exc:
                    problems.append(f"extent row {r['id']}: {exc}")
                    continue
                if ext.length != r["length"]:
                    problems.append(f"extent row {r['id']}: length {r['length']} != handle")
            for r in self._conn.execute(
                "SELECT v.id, v.key, v.size, coalesce(sum(e.length), 0) AS total "
                "FROM versions v LEFT JOIN version_extents ve ON ve.version_id = v.id "
                "LEFT JOIN extents e ON e.id = ve.extent_id GROUP BY v.id HAVING total != v.size"
            ):
                problems.append(
                    f"version {r['id']} of {r['key']!r}: extents hold {r['total']} bytes, "
                    f"size is {r['size']}"
                )
            orphans = self._conn.execute(
                "SELECT e.id, e.pool, e.handle FROM extents e WHERE NOT EXISTS "
                "(SELECT 1 FROM version_extents ve WHERE ve.extent_id = e.id)"
            ).fetchall()
        if orphans:
            text = f"{len(orphans)} extent row(s) referenced by no version"
            if repair:
                with self._tx() as tx:
                    for r in orphans:
                        tx.execute("DELETE FROM extents WHERE id = ?", (r["id"],))
                        freed.append((r["pool"], Extent.from_bytes(r["handle"])))
                repaired.append(text + ": removed")
            else:
                problems.append(text)
        return problems, repaired, freed
