"""The catalog's SQLite schema, its version and the migrations between versions.

The version is ``PRAGMA user_version``; every migration applied is also a
row of the ``migrations`` table (version, description, time).  A catalog of
a newer version than :data:`SCHEMA_VERSION` is refused with
:class:`~dwcore.errors.UnsupportedFormatError`.

MVCC by catalog generation: every committed change gets the next generation
``g`` (``meta.generation``).  A version row has ``created_gen`` and
``deleted_gen`` (NULL while current); it is *live at G* when
``created_gen <= G < coalesce(deleted_gen, infinity)``.  Extents are rows of
their own, referenced by versions through ``version_extents`` (a roll-back
makes a new version that shares the old one's extents).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from dwcore.errors import UnsupportedFormatError

__all__ = ["SCHEMA_VERSION", "migrate"]

#: The schema this dwcore writes.
SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied REAL NOT NULL
);
CREATE TABLE tiers (
    name TEXT PRIMARY KEY,
    pool TEXT NOT NULL
);
CREATE TABLE compartments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    acl TEXT NOT NULL DEFAULT '{}',
    partitions INTEGER NOT NULL,
    tier TEXT NOT NULL,
    created REAL NOT NULL,
    created_gen INTEGER NOT NULL,
    deleted_gen INTEGER
);
CREATE UNIQUE INDEX compartments_live ON compartments(name) WHERE deleted_gen IS NULL;
CREATE TABLE versions (
    id INTEGER PRIMARY KEY,
    compartment_id INTEGER NOT NULL REFERENCES compartments(id),
    key TEXT NOT NULL,
    partition INTEGER NOT NULL,
    size INTEGER NOT NULL,
    hash BLOB NOT NULL,
    owner TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created REAL NOT NULL,
    pool TEXT NOT NULL,
    created_gen INTEGER NOT NULL,
    deleted_gen INTEGER
);
CREATE UNIQUE INDEX versions_live ON versions(compartment_id, key) WHERE deleted_gen IS NULL;
CREATE INDEX versions_key ON versions(compartment_id, key, created_gen);
CREATE INDEX versions_created ON versions(created_gen);
CREATE INDEX versions_deleted ON versions(deleted_gen) WHERE deleted_gen IS NOT NULL;
CREATE TABLE extents (
    id INTEGER PRIMARY KEY,
    pool TEXT NOT NULL,
    handle BLOB NOT NULL,
    length INTEGER NOT NULL
);
CREATE INDEX extents_pool ON extents(pool);
CREATE TABLE version_extents (
    version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    extent_id INTEGER NOT NULL REFERENCES extents(id),
    offset INTEGER NOT NULL,
    PRIMARY KEY (version_id, seq)
) WITHOUT ROWID;
CREATE INDEX version_extents_extent ON version_extents(extent_id);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    compartment_id INTEGER REFERENCES compartments(id),
    key TEXT,
    pool TEXT,
    generation INTEGER NOT NULL,
    description TEXT NOT NULL,
    owner TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX snapshots_generation ON snapshots(generation);
CREATE INDEX snapshots_created ON snapshots(created);
INSERT INTO meta (key, value) VALUES ('generation', 0);
"""

#: Migration ``n`` takes a catalog from version ``n - 1`` to ``n``.
_MIGRATIONS: dict[int, tuple[str, str]] = {
    1: ("compartments, tiers, versions, extents and snapshots", _V1),
}


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the catalog in ``conn`` to :data:`SCHEMA_VERSION`; returns the version found.

    Runs inside the caller's transaction.  A newer catalog is refused.
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise UnsupportedFormatError(
            f"{path}: the catalog has schema version {found}, newer than this dwcore reads "
            f"({SCHEMA_VERSION}); upgrade dwcore to open this instance"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        description, script = _MIGRATIONS[version]
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO migrations (version, description, applied) VALUES (?, ?, ?)",
            (version, description, time.time()),
        )
        conn.execute(f"PRAGMA user_version={version}")
    return found
