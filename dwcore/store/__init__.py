"""The object store: instances, compartments, objects and their versions.

* :class:`Instance` (:mod:`.instance`) — the embedding API: create or open a
  deployment, compartments, ``put``/``get``/``open``/``head``/``delete``/
  ``list``, ``fsck``; snapshots through ``instance.snapshots``.
* :class:`Catalog` (:mod:`.catalog`) — the SQLite catalog with MVCC by
  generation, opened through the ``sqlite`` metadata plugin (:mod:`.plugin`).
* Records: :class:`CompartmentInfo`, :class:`ObjectInfo`, :class:`ListPage`,
  :class:`SnapshotInfo`, :class:`FsckReport`.
* Key rules: :func:`check_key` (:mod:`.keys`).
"""

from dwcore.store.catalog import CATALOG_DB, Catalog
from dwcore.store.fsck import FsckReport
from dwcore.store.instance import DEFAULT_PARTITIONS, EXTENT_BYTES, TIERS, Instance
from dwcore.store.keys import MAX_KEY_BYTES, check_key
from dwcore.store.models import CompartmentInfo, ExtentRef, ListPage, ObjectInfo, SnapshotInfo
from dwcore.store.stream import ObjectStream

__all__ = [
    "CATALOG_DB",
    "DEFAULT_PARTITIONS",
    "EXTENT_BYTES",
    "MAX_KEY_BYTES",
    "TIERS",
    "Catalog",
    "CompartmentInfo",
    "ExtentRef",
    "FsckReport",
    "Instance",
    "ListPage",
    "ObjectInfo",
    "ObjectStream",
    "SnapshotInfo",
    "check_key",
]
