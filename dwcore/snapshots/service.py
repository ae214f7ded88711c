"""Snapshots of an instance: create, list, diff, browse, search, read, roll back, delete.

A snapshot records a catalog generation and a target (an object, a
compartment, a pool — the objects stored in it — or the whole instance):
creating one costs one catalog row whatever the number of objects.  What it
shows is every version of its target live at that generation; the catalog
keeps those versions and their extents (copy-on-write) until the last
snapshot holding them is deleted (:mod:`dwcore.store.catalog`).

Authorization: ``snapshot.create`` / ``snapshot.read`` / ``snapshot.delete``
on the target (``instance``, ``pool:<name>``, ``compartment:<name>``,
``object:<compartment>/<key>``); reading an object's bytes also needs
``object.read`` on it, and a roll-back ``object.write``.  Every call is
audited.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dwcore.audit import Category
from dwcore.auth import Principal
from dwcore.errors import DWError, InvalidArgumentError, NotFoundError
from dwcore.snapshots.models import BrowseEntry, DiffEntry, RollbackResult, SnapshotDiff
from dwcore.store.catalog import PutChange, Scope
from dwcore.store.keys import check_compartment_name, check_key, prefix_end
from dwcore.store.models import ObjectInfo, SnapshotInfo
from dwcore.store.stream import ObjectStream

if TYPE_CHECKING:
    from dwcore.store.instance import Instance

__all__ = ["Snapshots", "parse_target"]

_MAX_DESCRIPTION = 1000
_MAX_RESULTS = 100_000


def parse_target(target: str) -> tuple[str, str | None, str | None]:
    """``(kind, name, key)`` of ``instance``, ``pool:<name>``, ``compartment:<name>`` or
    ``object:<compartment>/<key>``; InvalidArgumentError naming the forms otherwise."""
    usage = "use instance, pool:<name>, compartment:<name> or object:<compartment>/<key>"
    if not isinstance(target, str):
        raise InvalidArgumentError(f"a snapshot target is text; {usage}")
    if target == "instance":
        return "instance", None, None
    kind, sep, rest = target.partition(":")
    if not sep or kind not in ("pool", "compartment", "object"):
        raise InvalidArgumentError(f"not a snapshot target: {target!r}; {usage}")
    if kind == "object":
        name, slash, key = rest.partition("/")
        if not slash:
            raise InvalidArgumentError(f"not an object target: {target!r}; {usage}")
        return kind, check_compartment_name(name), check_key(key)
    return kind, check_compartment_name(rest), None


def _epoch(when: datetime | float | None, what: str) -> float | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise InvalidArgumentError(f"{what} must be timezone-aware (e.g. UTC)")
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise InvalidArgumentError(f"{what} must be a datetime or epoch seconds, got {when!r}")
    return float(when)


def _size(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{what} must be an int >= 0 bytes, got {value!r}")
    return value


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_RESULTS:
        raise InvalidArgumentError(f"limit must be 1..{_MAX_RESULTS}, got {limit!r}")
    return limit


class Snapshots:
    """The snapshots of one :class:`~dwcore.store.Instance` (``instance.snapshots``)."""

    def __init__(self, instance: Instance) -> None:
        self._inst = instance
        self._cat = instance.catalog

    # ------------------------------------------------------------- helpers

    def _who(self, principal: Principal | None) -> Principal:
        return self._inst._who(principal)

    def _get(self, snapshot: int | SnapshotInfo) -> SnapshotInfo:
        if isinstance(snapshot, SnapshotInfo):
            snapshot = snapshot.id
        if isinstance(snapshot, bool) or not isinstance(snapshot, int):
            raise InvalidArgumentError(f"a snapshot is named by its id (int), got {snapshot!r}")
        return self._cat.snapshot(snapshot)

    def _allow(self, who: Principal, action: str, info: SnapshotInfo) -> None:
        self._inst._allow(who, action, info.target)

    def _audit(self, who: Principal, action: str, resource: str, **details: Any) -> None:
        durable = action in ("snapshot.create", "snapshot.delete", "snapshot.rollback")
        category = Category.DATA_CHANGE if durable else Category.DATA_ACCESS
        self._inst._record(category, action, who, resource, details=details, durable=durable)

    def _compartment_at(self, info: SnapshotInfo, compartment: str | None) -> tuple[int, str]:
        """The compartment (id, name) a read inside ``info`` refers to."""
        if info.kind in ("compartment", "object"):
            assert info.compartment_id is not None and info.compartment is not None
            if compartment is not None and compartment != info.compartment:
                raise InvalidArgumentError(
                    f"snapshot {info.id} is of {info.target}; it shows nothing of compartment "
                    f"{compartment!r}"
                )
            return info.compartment_id, info.compartment
        if compartment is None:
            raise InvalidArgumentError(
                f"snapshot {info.id} is of {info.target}: name the compartment to look in"
            )
        found = self._cat.compartment_at(check_compartment_name(compartment), info.generation)
        if found is None:
            raise NotFoundError(
                f"compartment {compartment!r} did not exist when snapshot {info.id} was taken"
            )
        return found.id, found.name

    # ------------------------------------------------------ create and list

    def create(
        self, target: str = "instance", description: str = "", principal: Principal | None = None
    ) -> SnapshotInfo:
        """Snapshot ``target`` now (O(1): records the generation) with a description."""
        who = self._who(principal)
        kind, name, key = parse_target(target)
        if not isinstance(description, str) or len(description) > _MAX_DESCRIPTION:
            raise InvalidArgumentError(
                f"description must be text of at most {_MAX_DESCRIPTION} characters"
            )
        with self._inst._rw.shared():
            self._inst._check_open()
            self._inst._allow(who, "snapshot.create", target)
            if kind == "pool":
                assert name is not None
                self._inst._pool(name)
                scope = Scope("pool", pool=name)
            elif kind in ("compartment", "object"):
                assert name is not None
                comp = self._cat.compartment(name)
                if key is not None and self._cat.lookup(comp.id, key, extents=False) is None:
                    raise NotFoundError(f"object {key!r} does not exist in compartment {name!r}")
                scope = Scope(kind, comp.id, key)
            else:
                scope = Scope("instance")
            info = self._cat.create_snapshot(scope, description, who.name, time.time())
            self._audit(
                who, "snapshot.create", target, snapshot=info.id, generation=info.generation
            )
            return info

    def get(self, snapshot: int | SnapshotInfo, principal: Principal | None = None) -> SnapshotInfo:
        """The snapshot with this id."""
        who = self._who(principal)
        info = self._get(snapshot)
        self._allow(who, "snapshot.read", info)
        return info

    def list(
        self,
        target: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        principal: Principal | None = None,
    ) -> list[SnapshotInfo]:
        """Snapshots (oldest first) of ``target`` (all when None) taken in ``[since, until)``."""
        who = self._who(principal)
        lo, hi = _epoch(since, "since"), _epoch(until, "until")
        filters: dict[str, Any] = {}
        if target is not None:
            kind, name, key = parse_target(target)
            filters["kind"] = kind
            if kind == "pool":
                filters["pool"] = name
            elif kind in ("compartment", "object"):
                assert name is not None
                filters["compartment_id"] = self._cat.compartment(name).id
                if key is not None:
                    filters["key"] = key
        with self._inst._rw.shared():
            self._inst._check_open()
            self._inst._allow(who, "snapshot.read", target or "instance")
            out = self._cat.list_snapshots(since=lo, until=hi, **filters)
            self._audit(who, "snapshot.list", target or "instance", count=len(out))
            return out

    def delete(self, snapshot: int | SnapshotInfo, principal: Principal | None = None) -> int:
        """Delete a snapshot; returns the bytes freed (extents no one else held)."""
        who = self._who(principal)
        with self._inst._rw.shared():
            self._inst._check_open()
            info = self._get(snapshot)
            self._allow(who, "snapshot.delete", info)
            _, freed = self._cat.delete_snapshot(info.id)
            self._inst._pins.free(freed)
            total = sum(ext.length for _, ext in freed)
            self._audit(who, "snapshot.delete", info.target, snapshot=info.id, freed_bytes=total)
            return total

    def space(self, snapshot: int | SnapshotInfo, principal: Principal | None = None) -> int:
        """Bytes only this snapshot holds: what deleting it would free."""
        who = self._who(principal)
        with self._inst._rw.shared():
            self._inst._check_open()
            info = self._get(snapshot)
            self._allow(who, "snapshot.read", info)
            return self._cat.exclusive_bytes(info)

    # ------------------------------------------------------------ inspect

    def diff(
        self,
        a: int | SnapshotInfo,
        b: int | SnapshotInfo | None = None,
        principal: Principal | None = None,
    ) -> SnapshotDiff:
        """What changed from snapshot ``a`` to snapshot ``b`` (or to now), within ``a``'s
        target: keys added, removed and modified, with sizes.  Costs in proportion to the
        versions created or deleted between them, not to the number of objects."""
        who = self._who(principal)
        with self._inst._rw.shared():
            self._inst._check_open()
            first = self._get(a)
            self._allow(who, "snapshot.read", first)
            second = None if b is None else self._get(b)
            if second is not None:
                self._allow(who, "snapshot.read", second)
            scope = self._cat.scope_of(first)
            g1 = first.generation
            g2 = self._cat.generation if second is None else second.generation
            out = SnapshotDiff(first.id, None if second is None else second.id, g1, g2)
            with self._cat.locked():
                for cid, key in self._cat.changed_keys(scope, min(g1, g2), max(g1, g2)):
                    old = self._cat.lookup(cid, key, g1, extents=False, scope=scope)
                    new = self._cat.lookup(cid, key, g2, extents=False, scope=scope)
                    cname = (old or new).compartment if (old or new) else ""
                    if old is None and new is not None:
                        out.added.append(DiffEntry(cname, key, "added", None, new.size))
                    elif new is None and old is not None:
                        out.removed.append(DiffEntry(cname, key, "removed", old.size, None))
                    elif (
                        old is not None
                        and new is not None
                        and (old.content_hash != new.content_hash or old.metadata != new.metadata)
                    ):
                        out.modified.append(DiffEntry(cname, key, "modified", old.size, new.size))
            self._audit(
                who,
                "snapshot.diff",
                first.target,
                a=first.id,
                b=None if second is None else second.id,
                changes=len(out),
            )
            return out

    def browse(
        self,
        snapshot: int | SnapshotInfo,
        compartment: str | None = None,
        prefix: str = "",
        principal: Principal | None = None,
        *,
        limit: int = 1000,
    ) -> list[BrowseEntry]:
        """The entries one level below ``prefix`` (``/`` separates levels) as of the
        snapshot: sub-prefixes (``is_dir``) and objects, in key order.  Without a
        compartment, an instance or pool snapshot lists its compartments."""
        who = self._who(principal)
        _limit(limit)
        if not isinstance(prefix, str):
            raise InvalidArgumentError("prefix must be text")
        with self._inst._rw.shared():
            self._inst._check_open()
            info = self._get(snapshot)
            self._allow(who, "snapshot.read", info)
            if compartment is None and info.kind in ("instance", "pool"):
                comps = self._cat.list_compartments(gen=info.generation)
                return [BrowseEntry(c.name, c.name + "/", True, None, None) for c in comps][:limit]
            cid, _ = self._compartment_at(info, compartment)
            entries = list(self._walk(info, cid, prefix, limit))
            self._audit(who, "snapshot.browse", info.target, snapshot=info.id, prefix=prefix)
            return entries

    def _walk(self, info: SnapshotInfo, cid: int, prefix: str, limit: int) -> Iterator[BrowseEntry]:
        scope = self._cat.scope_of(info)
        cursor: str | None = None
        end = prefix_end(prefix) if prefix else None
        count = 0
        while count < limit:
            rows = self._cat.list_objects(
                cid,
                prefix=prefix,
                start_at=cursor,
                end=end,
                limit=1,
                gen=info.generation,
                scope=scope,
            )
            if not rows:
                return
            obj = rows[0]
            rest = obj.key[len(prefix) :]
            head, slash, _ = rest.partition("/")
            if slash:
                sub = prefix + head + "/"
                yield BrowseEntry(head + "/", sub, True, None, None)
                cursor = prefix_end(sub)
                if cursor is None:
                    return
            else:
                yield BrowseEntry(head, obj.key, False, obj.size, obj)
                cursor = obj.key + "\x00"
            count += 1

    def search(
        self,
        snapshot: int | SnapshotInfo,
        pattern: str = "*",
        compartment: str | None = None,
        *,
        min_size: int | None = None,
        max_size: int | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        limit: int = 1000,
        principal: Principal | None = None,
    ) -> list[ObjectInfo]:
        """Objects of the snapshot whose key matches the glob ``pattern`` (``*``, ``?``,
        ``[...]``; ``*`` crosses ``/``), sized in ``[min_size, max_size]`` and written in
        ``[since, until)``."""
        who = self._who(principal)
        if not isinstance(pattern, str) or not pattern:
            raise InvalidArgumentError("pattern must be a non-empty glob such as '*.jpg'")
        lo, hi = _epoch(since, "since"), _epoch(until, "until")
        _size(min_size, "min_size")
        _size(max_size, "max_size")
        _limit(limit)
        with self._inst._rw.shared():
            self._inst._check_open()
            info = self._get(snapshot)
            self._allow(who, "snapshot.read", info)
            scope = self._cat.scope_of(info)
            found: list[ObjectInfo]
            if compartment is not None:
                cid, _ = self._compartment_at(info, compartment)
                found = self._cat.list_objects(
                    cid,
                    limit=limit,
                    gen=info.generation,
                    scope=scope,
                    extra=_search_sql(min_size, max_size, lo, hi),
                    extra_params={
                        "pat": pattern,
                        "min_size": min_size,
                        "max_size": max_size,
                        "since": lo,
                        "until": hi,
                    },
                )
            else:
                found = self._cat.search(
                    scope,
                    info.generation,
                    pattern=pattern,
                    min_size=min_size,
                    max_size=max_size,
                    since=lo,
                    until=hi,
                    limit=limit,
                )
            self._audit(
                who,
                "snapshot.search",
                info.target,
                snapshot=info.id,
                pattern=pattern,
                count=len(found),
            )
            return found

    # -------------------------------------------------------------- read

    def _resolve(
        self,
        who: Principal,
        snapshot: int | SnapshotInfo,
        compartment: str | None,
        key: str | None,
    ) -> tuple[SnapshotInfo, ObjectInfo]:
        info = self._get(snapshot)
        self._allow(who, "snapshot.read", info)
        if key is None:
            if info.kind != "object" or info.key is None:
                raise InvalidArgumentError(f"snapshot {info.id} is of {info.target}: name the key")
            key = info.key
        check_key(key)
        cid, cname = self._compartment_at(info, compartment)
        self._inst._allow(who, "object.read", f"object:{cname}/{key}")
        scope = self._cat.scope_of(info)

        def find() -> ObjectInfo:
            obj = self._cat.lookup(cid, key, info.generation, scope=scope)
            if obj is None:
                raise NotFoundError(
                    f"object {key!r} of compartment {cname!r} is not in snapshot {info.id}"
                )
            return obj

        return info, self._inst.pin_version(find)

    def head(
        self,
        snapshot: int | SnapshotInfo,
        compartment: str | None = None,
        key: str | None = None,
        principal: Principal | None = None,
    ) -> ObjectInfo:
        """The version of ``key`` the snapshot shows (size, hash, metadata)."""
        who = self._who(principal)
        with self._inst._rw.shared():
            self._inst._check_open()
            _, obj = self._resolve(who, snapshot, compartment, key)
            self._inst._pins.unpin([(r.pool, r.extent) for r in obj.extents])
            return obj

    def read(
        self,
        snapshot: int | SnapshotInfo,
        compartment: str | None = None,
        key: str | None = None,
        offset: int = 0,
        length: int | None = None,
        principal: Principal | None = None,
    ) -> bytes:
        """The bytes of ``key`` as the snapshot shows it (a range with offset/length)."""
        who = self._who(principal)
        with self._inst._rw.shared():
            self._inst._check_open()
            info, obj = self._resolve(who, snapshot, compartment, key)
            data = self._inst.pinned_read(obj, offset, length)
            self._audit(
                who,
                "snapshot.read",
                f"object:{obj.compartment}/{obj.key}",
                snapshot=info.id,
                bytes=len(data),
            )
            return data

    def preview(
        self,
        snapshot: int | SnapshotInfo,
        compartment: str | None = None,
        key: str | None = None,
        size: int = 4096,
        principal: Principal | None = None,
    ) -> bytes:
        """The first ``size`` bytes of ``key`` as of the snapshot."""
        return self.read(snapshot, compartment, key, 0, size, principal)

    def read_stream(
        self,
        snapshot: int | SnapshotInfo,
        compartment: str | None = None,
        key: str | None = None,
        principal: Principal | None = None,
        *,
        chunk_size: int = 1 << 20,
    ) -> ObjectStream:
        """A stream of ``key``'s bytes as of the snapshot (close it when done)."""
        who = self._who(principal)
        with self._inst._rw.shared():
            self._inst._check_open()
            info, obj = self._resolve(who, snapshot, compartment, key)
            self._audit(
                who, "snapshot.open", f"object:{obj.compartment}/{obj.key}", snapshot=info.id
            )
            return self._inst.stream_version(obj, 0, None, chunk_size)

    # ----------------------------------------------------------- rollback

    def rollback(
        self,
        snapshot: int | SnapshotInfo,
        compartment: str | None = None,
        key: str | None = None,
        principal: Principal | None = None,
    ) -> RollbackResult:
        """Make the current compartment (or its object ``key``) show what the snapshot
        shows: new versions sharing the old extents (nothing is copied), and deletes of
        what the snapshot did not have.  A roll-back is itself a change, so a snapshot
        taken before it lets it be undone."""
        who = self._who(principal)
        with self._inst._rw.shared():
            self._inst._check_open()
            info = self._get(snapshot)
            self._allow(who, "snapshot.read", info)
            if key is None and info.kind == "object":
                key = info.key
            if key is not None:
                check_key(key)
            src_cid, cname = self._compartment_at(info, compartment)
            target = self._cat.compartment(cname)
            resource = f"object:{cname}/{key}" if key is not None else f"compartment:{cname}"
            self._inst._allow(who, "object.write", resource, target)
            scope = self._cat.scope_of(info)
            if (
                key is not None
                and self._cat.lookup(src_cid, key, info.generation, extents=False, scope=scope)
                is None
            ):
                raise NotFoundError(f"object {key!r} is not in snapshot {info.id}")
            with self._cat.locked():
                changes = self._cat.rollback_changes(
                    target.id, src_cid, key, scope, info.generation, time.time(), who.name
                )
                results = self._inst.commit_changes(changes) if changes else []
            errors = [r for r in results if isinstance(r, DWError)]
            if errors:
                raise errors[0]
            restored = sum(1 for c in changes if isinstance(c, PutChange))
            removed = len(changes) - restored
            self._audit(
                who,
                "snapshot.rollback",
                resource,
                snapshot=info.id,
                restored=restored,
                removed=removed,
            )
            return RollbackResult(info.id, restored, removed)


def _search_sql(
    min_size: int | None, max_size: int | None, since: float | None, until: float | None
) -> str:
    parts = ["v.key GLOB :pat"]
    if min_size is not None:
        parts.append("v.size >= :min_size")
    if max_size is not None:
        parts.append("v.size <= :max_size")
    if since is not None:
        parts.append("v.created >= :since")
    if until is not None:
        parts.append("v.created < :until")
    return " AND ".join(parts)
