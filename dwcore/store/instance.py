"""The embedding API: one dwcore deployment (config, catalog, pools, auth, audit).

>>> import tempfile
>>> from dwcore import Instance
>>> with Instance.create(tempfile.mkdtemp() + "/data") as inst:
...     _ = inst.create_compartment("photos")
...     _ = inst.put("photos", "2024/cat.jpg", b"meow", metadata={"type": "image/jpeg"})
...     inst.get("photos", "2024/cat.jpg")
b'meow'

An instance is a directory: ``dwcore.toml`` (:mod:`dwcore.config`), the
catalog (``catalog.sqlite3``, opened through the ``sqlite`` metadata plugin),
the auth store (``auth.sqlite3``), the audit log (``audit/``) and the pools
(``pools/<name>/``).  :meth:`Instance.create` without a configuration makes
the embedded default (:mod:`dwcore.store.setup`): one RAID 6 pool of six
sparse device files.

Every method takes an optional ``principal``; without one the call acts as
the implicit local owner (:meth:`dwcore.auth.Principal.local_owner`, allowed
everything and audited as such), the operator of an embedded instance.
Every operation passes :meth:`dwcore.auth.AuthService.require` (a
compartment's ACL can grant more, see :class:`CompartmentInfo`) and is
audited: changes of compartments durably, object reads and writes in the
audit log's fsync groups.

Ordering that loses nothing
---------------------------
A put writes its data as extents of at most :data:`EXTENT_BYTES` (a stream
is never held whole in memory), syncs the pool, and only then commits the
version in the catalog (``synchronous=FULL``); it returns after that commit,
so a returned put survives any crash.  A crash before the commit leaves at
most extents no version references, which :meth:`Instance.fsck` frees.

A put's pool sync flushes the devices it wrote, not the pools' allocators
(two more ordered flushes): the catalog is the durable record of every live
extent.  While an instance is open its state directory holds
:data:`ALLOCATORS_UNSYNCED`; a clean close syncs the allocators and removes
it.  Opening an instance that still has it (a crash) first hands each pool
the catalog's extents (:meth:`dwcore.pool.Pool.reconcile`), which restores
rows an allocator forgot and frees rows no version references.
Extents a change stops referencing are freed after its commit, and never
while a snapshot holds them or a reader is reading them.

Concurrent puts and deletes are group-committed (:mod:`dwcore.store.commit`):
one pool sync and one catalog transaction per batch.  ``Instance`` is
thread-safe; one process at a time may open an instance (the audit log is
locked).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import blake3

from dwcore.audit import AuditLog, Category, Outcome
from dwcore.auth import AuthService, Principal
from dwcore.auth.rbac import ACTIONS, PRIVILEGED, covers, validate_permission
from dwcore.config import (
    DwConfig,
    auth_policy,
    load_config,
    memory_monitor,
    open_audit_log,
    root_of,
    validate_data,
)
from dwcore.config.checks import pool_device_paths, pool_directory
from dwcore.devices import Device
from dwcore.errors import (
    AlreadyExistsError,
    ConfigError,
    DWError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from dwcore.paths import CONFIG_FILE, fsync_dir
from dwcore.plugins import MetadataPlugin, PluginManager, discover
from dwcore.pool import Extent, Pool
from dwcore.pool.manifest import MANIFEST_NAME
from dwcore.store.catalog import Catalog, DeleteChange, PutChange
from dwcore.store.commit import GroupCommit, Request, committed
from dwcore.store.fsck import FsckReport
from dwcore.store.hashing import PieceHasher
from dwcore.store.keys import (
    check_compartment_name,
    check_key,
    check_metadata,
    partition_of,
)
from dwcore.store.locks import ExtentPins, SharedLock
from dwcore.store.models import CompartmentInfo, ListPage, ObjectInfo
from dwcore.store.setup import config_data, write_config
from dwcore.store.stream import ObjectStream, read_range

if TYPE_CHECKING:
    from dwcore.snapshots import Snapshots

__all__ = ["DEFAULT_PARTITIONS", "EXTENT_BYTES", "TIERS", "Instance"]

#: Largest extent a put writes: objects are streamed in pieces of this size.
EXTENT_BYTES = 4 << 20

#: Actions the local owner is allowed without a decision record (not privileged).
_OWNER_UNAUDITED = ACTIONS - PRIVILEGED
#: Hash partitions of a new compartment.
DEFAULT_PARTITIONS = 16
#: The storage tiers, fastest first.
TIERS = ("hot", "warm", "cold")
#: The metadata plugin that keeps the catalog.
CATALOG_PLUGIN = "sqlite"
#: Most keys one listing page returns.
MAX_LIST = 10_000
#: Present in the state directory while allocator changes may be unsynced (see above).
ALLOCATORS_UNSYNCED = "allocators.unsynced"
_STR_ERROR = "data is text (str); encode it to bytes first (e.g. data.encode())"


def _load_catalog(root: Path) -> Catalog:
    """Open the catalog through the metadata plugin registered as :data:`CATALOG_PLUGIN`."""
    eps = [ep for ep in discover() if ep.name == CATALOG_PLUGIN]
    manager = PluginManager(eps)
    report = manager.load_all()
    if not report.ok or CATALOG_PLUGIN not in manager.names():
        why = "; ".join(str(r) for r in report.rejected) or "not installed"
        raise ConfigError(
            f"the catalog plugin {CATALOG_PLUGIN!r} could not be loaded: {why}; reinstall dwcore"
        )
    plugin = manager.get(CATALOG_PLUGIN, MetadataPlugin)
    catalog = plugin.open_catalog(str(root))
    if not isinstance(catalog, Catalog):
        raise ConfigError(f"the catalog plugin {CATALOG_PLUGIN!r} returned {catalog!r}")
    return catalog


class Instance:
    """One dwcore deployment; see the module documentation.  Build with :meth:`create` or
    :meth:`open`; close it (or use it as a context manager)."""

    def __init__(
        self,
        root: Path,
        config: DwConfig,
        *,
        devices: Mapping[str, Sequence[Device | str | None]] | None = None,
    ) -> None:
        if not config.pools:
            raise ConfigError(
                f"{root / CONFIG_FILE} configures no pool; an instance needs at least one "
                f"([[pools]])"
            )
        self.root = root
        self.config = config
        self.state_root = root_of(config, root)
        self._owner = Principal.local_owner()
        self._rw = SharedLock()
        self._closed = False
        self._pools: dict[str, Pool] = {}
        #: Pool name -> rows freed when this open recovered from a crash (empty otherwise).
        self.recovered_rows: dict[str, int] = {}
        opened: list[Any] = []
        try:
            self.audit: AuditLog = open_audit_log(config, self.state_root)
            opened.append(self.audit)
            self.auth = AuthService(self.state_root, auth_policy(config), audit=self.audit)
            opened.append(self.auth)
            self.catalog = _load_catalog(self.state_root)
            opened.append(self.catalog)
            self._open_pools(devices or {})
            self._recover_allocators()
            tiers = self.catalog.tiers()
            first = config.pools[0].name
            for tier in TIERS:
                if tier not in tiers:
                    self.catalog.set_tier(tier, first)
        except BaseException:
            for pool in self._pools.values():
                pool.close()
            for thing in reversed(opened):
                thing.close()
            raise
        self._pins = ExtentPins(self._free_now)
        self._commit = GroupCommit(self._run_batch)
        self._snapshots: Snapshots | None = None
        #: Polls memory pressure (``[resources]``): shrinks the registered caches and
        #: throttles or pauses new pool requests as the level rises.
        self.memory_monitor = memory_monitor(config)
        self.memory_monitor.start()

    # ----------------------------------------------------------- lifecycle

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        config: DwConfig | Mapping[str, Any] | None = None,
        *,
        devices: Mapping[str, Sequence[Device | str]] | None = None,
        check_resources: bool = True,
    ) -> Instance:
        """Make a new instance in ``root`` (created if absent) and return it open.

        ``config`` is the content of ``dwcore.toml`` as a mapping or a
        :class:`~dwcore.config.DwConfig`; without pools (or without a config)
        the embedded default pool is used.  ``devices`` maps a pool name to
        the devices to build it on instead of its configured files (tests
        pass fault-injecting devices).  The configuration is validated
        (with the resource checks unless ``check_resources=False``) before
        anything is written.
        """
        path = Path(root).expanduser().absolute()
        if (path / CONFIG_FILE).exists():
            raise AlreadyExistsError(
                f"{path} already holds a dwcore instance ({CONFIG_FILE}); open it instead"
            )
        data = config_data(config, path)
        report = validate_data(
            data, path, source=str(path / CONFIG_FILE), resources=check_resources
        )
        if not report.ok:
            first = report.errors[0]
            raise ConfigError(f"{path / CONFIG_FILE}: {first}", report)
        path.mkdir(parents=True, exist_ok=True)
        write_config(path / CONFIG_FILE, data)
        inst = cls(path, report.config, devices=devices)
        inst._record(
            Category.ADMINISTRATION, "instance.create", inst._owner, "instance", durable=True
        )
        return inst

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        *,
        devices: Mapping[str, Sequence[Device | str | None]] | None = None,
        check_resources: bool = True,
    ) -> Instance:
        """Open the instance in ``root`` (its ``dwcore.toml`` is validated first).

        ``devices`` overrides the devices of the named pools (``None`` for a
        missing member), as for :meth:`dwcore.pool.Pool.open`.
        """
        path = Path(root).expanduser().absolute()
        if not (path / CONFIG_FILE).exists():
            raise NotFoundError(
                f"{path} holds no dwcore instance ({CONFIG_FILE} missing); create one with "
                f"Instance.create or `dwcore put`, or pass --root / set $DWCORE_ROOT"
            )
        config = load_config(path / CONFIG_FILE, resources=check_resources)
        return cls(path, config, devices=devices)

    def _open_pools(self, devices: Mapping[str, Sequence[Device | str | None]]) -> None:
        unknown = set(devices) - {p.name for p in self.config.pools}
        if unknown:
            raise InvalidArgumentError(f"devices given for unknown pool(s) {sorted(unknown)}")
        for pc in self.config.pools:
            directory = pool_directory(pc, self.state_root)
            given = devices.get(pc.name)
            if (directory / MANIFEST_NAME).exists():
                pool = Pool.open(directory, devices=given)
                self._pools[pc.name] = pool
                if (pool.layout.level, pool.layout.n_devices) != (pc.level, pc.device_count):
                    raise ConfigError(
                        f"pool {pc.name!r} in {directory} is RAID {pool.layout.level} on "
                        f"{pool.layout.n_devices} devices, but {CONFIG_FILE} says RAID "
                        f"{pc.level} on {pc.device_count}; a pool's layout cannot change"
                    )
                continue
            if given is not None:
                specs: Any = list(given)
            elif isinstance(pc.devices, int):
                specs = pc.devices
            else:
                specs = [str(p) for p in pool_device_paths(pc, self.state_root)]
            self._pools[pc.name] = Pool.create(
                directory,
                pc.level,
                specs,
                pc.device_size,
                chunk_size=pc.chunk_size,
                block_size=pc.block_size,
                **pc.options,
            )

    def _recover_allocators(self) -> None:
        """After a crash (the marker is still there), reconcile every pool's allocator
        with the catalog; then put the marker down for this session (durably)."""
        marker = self.state_root / ALLOCATORS_UNSYNCED
        if marker.exists():
            for name, pool in self._pools.items():
                self.recovered_rows[name] = pool.reconcile(self.catalog.live_extents(name))
                pool.sync()
            self._record(
                Category.ADMINISTRATION,
                "instance.recover",
                self._owner,
                "instance",
                details={"freed_rows": dict(self.recovered_rows)},
                durable=True,
            )
            return
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(marker.parent)

    def close(self, sync: bool = True) -> None:
        """Wait for running operations, then close pools, catalog, auth and audit log.

        ``sync=False`` closes the pools without syncing them, as a crash
        would (for tests).  Closing twice is a no-op.
        """
        with self._rw.exclusive():
            if self._closed:
                return
            self._closed = True
            try:
                if sync:
                    self._record(Category.ADMINISTRATION, "instance.close", self._owner, "instance")
                for pool in self._pools.values():
                    pool.close(sync=sync)
                if sync:
                    _durable_unlink(self.state_root / ALLOCATORS_UNSYNCED)
            finally:
                self.memory_monitor.stop()
                self.catalog.close()
                self.auth.close()
                self.audit.close()

    def __enter__(self) -> Instance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgumentError(f"the instance in {self.root} is closed")

    @property
    def pools(self) -> dict[str, Pool]:
        """The open pools by name."""
        return dict(self._pools)

    @property
    def snapshots(self) -> Snapshots:
        """Snapshots of this instance (:class:`dwcore.snapshots.Snapshots`)."""
        if self._snapshots is None:
            from dwcore.snapshots import Snapshots

            self._snapshots = Snapshots(self)
        return self._snapshots

    @property
    def local_owner(self) -> Principal:
        """The principal calls without one act as."""
        return self._owner

    # ------------------------------------------------ authorization, audit

    def _who(self, principal: Principal | None) -> Principal:
        if principal is None:
            return self._owner
        if not isinstance(principal, Principal):
            raise InvalidArgumentError(
                f"principal must be a dwcore.auth.Principal, got {type(principal).__name__}"
            )
        return principal

    def _allow(
        self,
        who: Principal,
        action: str,
        resource: str,
        compartment: CompartmentInfo | None = None,
    ) -> None:
        """Allow ``action`` by the compartment's ACL, else by :meth:`AuthService.require`."""
        if who.is_local_owner and action in _OWNER_UNAUDITED:
            return  # what authorize() decides for the owner, without an audit record either
        if compartment is not None:
            perms = compartment.acl.get(who.name, ())
            if not who.is_local_owner and any(covers(p, action) for p in perms):
                return
        self.auth.require(who, action, resource)

    def _record(
        self,
        category: Category,
        action: str,
        who: Principal,
        resource: str,
        outcome: Outcome = Outcome.SUCCESS,
        details: Mapping[str, Any] | None = None,
        *,
        durable: bool = False,
    ) -> None:
        self.audit.record(
            category,
            action,
            who.name,
            resource.encode("utf-8", "backslashreplace").decode("utf-8"),
            outcome,
            {**(details or {}), **who.audit_details()},
            durable=durable,
        )

    def _failed(
        self, category: Category, action: str, who: Principal, resource: str, exc: DWError
    ) -> None:
        if not isinstance(exc, PermissionDeniedError):  # the decision point audited it
            self._record(
                category,
                action,
                who,
                resource,
                Outcome.FAILURE,
                {"error": type(exc).__name__, "message": str(exc)[:500]},
            )

    # --------------------------------------------------------- compartments

    def create_compartment(
        self,
        name: str,
        principal: Principal | None = None,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        tier: str = "hot",
        acl: Mapping[str, Iterable[str]] | None = None,
    ) -> CompartmentInfo:
        """Create compartment ``name`` owned by the principal, with ``partitions`` hash
        partitions, stored in ``tier``, and an ACL granting named principals permissions."""
        who = self._who(principal)
        check_compartment_name(name)
        if (
            isinstance(partitions, bool)
            or not isinstance(partitions, int)
            or not (1 <= partitions <= 4096)
        ):
            raise InvalidArgumentError(f"partitions must be 1..4096, got {partitions!r}")
        if tier not in TIERS:
            raise InvalidArgumentError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
        acl_map = self._check_acl(acl)
        resource = f"compartment:{name}"
        with self._rw.shared():
            self._check_open()
            self._allow(who, "compartment.create", resource)
            try:
                info = self.catalog.create_compartment(
                    name, who.name, partitions=partitions, tier=tier, acl=acl_map, now=time.time()
                )
            except DWError as exc:
                self._failed(Category.ADMINISTRATION, "compartment.create", who, resource, exc)
                raise
            self._record(
                Category.ADMINISTRATION,
                "compartment.create",
                who,
                resource,
                details={"partitions": partitions, "tier": tier},
                durable=True,
            )
            return info

    @staticmethod
    def _check_acl(acl: Mapping[str, Iterable[str]] | None) -> dict[str, tuple[str, ...]]:
        if acl is None:
            return {}
        if not isinstance(acl, Mapping):
            raise InvalidArgumentError("acl must map principal names to lists of permissions")
        out: dict[str, tuple[str, ...]] = {}
        for name, perms in acl.items():
            if not isinstance(name, str) or not name:
                raise InvalidArgumentError(f"acl principal names are text, got {name!r}")
            if isinstance(perms, str):
                raise InvalidArgumentError(f"acl[{name!r}] must be a list of permissions")
            out[name] = tuple(validate_permission(p) for p in perms)
        return out

    def set_compartment_acl(
        self,
        name: str,
        acl: Mapping[str, Iterable[str]],
        principal: Principal | None = None,
    ) -> CompartmentInfo:
        """Replace the ACL of compartment ``name`` (needs ``compartment.manage``)."""
        who = self._who(principal)
        acl_map = self._check_acl(acl)
        resource = f"compartment:{check_compartment_name(name)}"
        with self._rw.shared():
            self._check_open()
            self._allow(who, "compartment.manage", resource)
            info = self.catalog.set_acl(name, acl_map)
            self._record(
                Category.ADMINISTRATION,
                "compartment.acl",
                who,
                resource,
                details={"acl": {k: list(v) for k, v in acl_map.items()}},
                durable=True,
            )
            return info

    def delete_compartment(self, name: str, principal: Principal | None = None) -> None:
        """Delete the empty compartment ``name`` (CompartmentNotEmptyError otherwise).

        Snapshots taken while it existed still show it."""
        who = self._who(principal)
        resource = f"compartment:{check_compartment_name(name)}"
        with self._rw.shared():
            self._check_open()
            self._allow(who, "compartment.delete", resource)
            try:
                self.catalog.delete_compartment(name)
            except DWError as exc:
                self._failed(Category.ADMINISTRATION, "compartment.delete", who, resource, exc)
                raise
            self._record(Category.ADMINISTRATION, "compartment.delete", who, resource, durable=True)

    def list_compartments(self, principal: Principal | None = None) -> list[CompartmentInfo]:
        """Every compartment, by name (needs ``compartment.read`` on the instance)."""
        who = self._who(principal)
        with self._rw.shared():
            self._check_open()
            self._allow(who, "compartment.read", "instance")
            out = self.catalog.list_compartments()
            self._record(
                Category.DATA_ACCESS,
                "compartment.list",
                who,
                "instance",
                details={"count": len(out)},
            )
            return out

    def compartment(self, name: str, principal: Principal | None = None) -> CompartmentInfo:
        """The compartment ``name`` (NotFoundError if it does not exist)."""
        who = self._who(principal)
        resource = f"compartment:{check_compartment_name(name)}"
        with self._rw.shared():
            self._check_open()
            info = self.catalog.compartment(name)
            self._allow(who, "compartment.read", resource, info)
            return info

    def set_tier(self, tier: str, pool: str, principal: Principal | None = None) -> None:
        """Store new versions of ``tier``'s compartments in ``pool`` (needs ``pool.manage``)."""
        who = self._who(principal)
        if tier not in TIERS:
            raise InvalidArgumentError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
        if pool not in self._pools:
            raise NotFoundError(f"pool {pool!r} is not configured (pools: {sorted(self._pools)})")
        with self._rw.shared():
            self._check_open()
            self._allow(who, "pool.manage", f"pool:{pool}")
            self.catalog.set_tier(tier, pool)
            self._record(
                Category.CONFIGURATION,
                "tier.set",
                who,
                f"pool:{pool}",
                details={"tier": tier},
                durable=True,
            )

    def tiers(self) -> dict[str, str]:
        """Tier -> pool name."""
        return self.catalog.tiers()

    # --------------------------------------------------------------- writes

    def _pool(self, name: str) -> Pool:
        try:
            return self._pools[name]
        except KeyError:
            raise NotFoundError(
                f"pool {name!r} is not configured in {self.root / CONFIG_FILE}"
            ) from None

    def _write_data(self, pool: Pool, data: Any) -> tuple[list[tuple[Extent, int]], int, bytes]:
        """Write ``data`` to ``pool`` in extents of at most EXTENT_BYTES: (extents, size, hash)."""
        hasher = PieceHasher()
        written: list[tuple[Extent, int]] = []
        size = 0

        def emit(piece: Any) -> None:
            nonlocal size
            written.append((hasher.update_while(piece, lambda: pool.write(piece)), size))
            size += len(piece)

        try:
            if isinstance(data, str):
                raise InvalidArgumentError(_STR_ERROR)
            try:
                view = memoryview(data)
            except TypeError:
                view = None
            if view is not None:
                view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
                for start in range(0, view.nbytes, EXTENT_BYTES):
                    emit(view[start : start + EXTENT_BYTES])
            else:
                for piece in _pieces(data):
                    emit(piece)
        except BaseException:
            for ext, _ in written:
                pool.free(ext)
            raise
        return written, size, hasher.digest()

    def put(
        self,
        compartment: str,
        key: str,
        data: Any,
        metadata: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> ObjectInfo:
        """Store ``data`` as the new current version of ``key``; returns the version.

        ``data`` is bytes-like, a binary file object (``read``) or an
        iterable of bytes-like pieces; streams are written in extents of
        :data:`EXTENT_BYTES` and never held whole.  When this returns the
        data and the catalog entry are durable.
        """
        who = self._who(principal)
        check_key(key)
        meta = check_metadata(metadata)
        resource = f"object:{check_compartment_name(compartment)}/{key}"
        with self._rw.shared():
            self._check_open()
            comp = self.catalog.compartment(compartment)
            self._allow(who, "object.write", resource, comp)
            pool_name = self.catalog.tiers()[comp.tier]
            pool = self._pool(pool_name)
            try:
                with self._commit.writing() as writer:
                    extents, size, digest = self._write_data(pool, data)
                    change = PutChange(
                        compartment_id=comp.id,
                        key=key,
                        partition=partition_of(key, comp.partitions),
                        size=size,
                        content_hash=digest,
                        owner=who.name,
                        metadata=meta,
                        created=time.time(),
                        pool=pool_name,
                        extents=extents,
                    )
                    try:
                        info: ObjectInfo = self._commit.submit(
                            change, frozenset({pool_name}), writer
                        )
                    except BaseException as exc:
                        if not committed(exc):  # an interrupt after the commit keeps them
                            for ext, _ in extents:
                                pool.free(ext)
                        raise
            except DWError as exc:
                self._failed(Category.DATA_CHANGE, "object.put", who, resource, exc)
                raise
            self._record(
                Category.DATA_CHANGE,
                "object.put",
                who,
                resource,
                details={"size": size, "version": info.version_id},
            )
            return info

    def delete(self, compartment: str, key: str, principal: Principal | None = None) -> ObjectInfo:
        """Delete ``key`` (NotFoundError if it does not exist); returns the removed version.

        Snapshots that show the object keep showing it."""
        who = self._who(principal)
        check_key(key)
        resource = f"object:{check_compartment_name(compartment)}/{key}"
        with self._rw.shared():
            self._check_open()
            comp = self.catalog.compartment(compartment)
            self._allow(who, "object.delete", resource, comp)
            try:
                info: ObjectInfo = self._commit.submit(DeleteChange(comp.id, key))
            except DWError as exc:
                self._failed(Category.DATA_CHANGE, "object.delete", who, resource, exc)
                raise
            self._record(
                Category.DATA_CHANGE,
                "object.delete",
                who,
                resource,
                details={"version": info.version_id},
            )
            return info

    def _run_batch(self, batch: list[Request]) -> None:
        """Group commit: sync the pools the batch wrote to, commit it, free what it released.

        The flush syncs the devices, not the allocators: the catalog is the
        durable record of live extents (ALLOCATORS_UNSYNCED).  (Staging the
        catalog changes on another thread during the flush was measured: the
        hand-off cost more than the overlap saved.)
        """
        for name in sorted(set().union(*(r.pools for r in batch))):
            # the devices in parallel, without blocking the next batch's writes
            self._pools[name].sync(allocator=False)
        results, freed = self.catalog.apply([r.change for r in batch])
        for req, res in zip(batch, results, strict=True):
            if isinstance(res, DWError):
                req.error = res
            else:
                req.result = res
        # committed: a failure from here on must not reach the writers (they would free
        # extents the catalog now references); what it fails to free, fsck finds
        try:
            self._pins.free(freed)
        except Exception as exc:
            warnings.warn(
                f"freeing {len(freed)} released extents failed after a commit ({exc}); "
                f"`dwcore fsck` frees them",
                RuntimeWarning,
                stacklevel=2,
            )

    def commit_changes(self, changes: Sequence[PutChange | DeleteChange]) -> list[Any]:
        """Commit catalog-only changes (roll-backs) in one transaction; frees what they
        release.  Results as :meth:`Catalog.apply`.  Callers check authorization."""
        results, freed = self.catalog.apply(changes)
        self._pins.free(freed)
        return results

    def _free_now(self, pool: str, ext: Extent) -> None:
        p = self._pools.get(pool)
        if p is not None:
            p.free(ext)

    @property
    def group_commit(self) -> GroupCommit:
        """The group committer (its ``batches`` and ``committed`` counters show batching)."""
        return self._commit

    # ---------------------------------------------------------------- reads

    def _resolve(
        self,
        who: Principal,
        compartment: str,
        key: str,
        action: str,
        gen: int | None = None,
    ) -> tuple[ObjectInfo, str]:
        check_key(key)
        resource = f"object:{check_compartment_name(compartment)}/{key}"
        comp = self.catalog.compartment(compartment)
        self._allow(who, action, resource, comp)

        def find() -> ObjectInfo:
            info = self.catalog.lookup(comp.id, key, gen)
            if info is None:
                raise NotFoundError(f"object {key!r} does not exist in compartment {compartment!r}")
            return info

        info = self._pins.resolve(find, lambda i: [(r.pool, r.extent) for r in i.extents])
        return info, resource

    def pinned_read(self, info: ObjectInfo, offset: int, length: int | None) -> bytes:
        """Bytes of a version whose extents are pinned; unpins them (for snapshot reads)."""
        try:
            return read_range(self._pools, info, offset, length)
        finally:
            self._pins.unpin([(r.pool, r.extent) for r in info.extents])

    def pin_version(self, find: Any) -> ObjectInfo:
        """Run ``find`` (returning an :class:`ObjectInfo` with extents) and pin its extents."""
        result: ObjectInfo = self._pins.resolve(
            find, lambda i: [(r.pool, r.extent) for r in i.extents]
        )
        return result

    def stream_version(
        self, info: ObjectInfo, offset: int, length: int | None, chunk_size: int
    ) -> ObjectStream:
        """A stream over a pinned version; it unpins when exhausted or closed."""
        return ObjectStream(
            self._pools,
            info,
            offset,
            length,
            chunk_size,
            lambda: self._pins.unpin([(r.pool, r.extent) for r in info.extents]),
        )

    def get(
        self,
        compartment: str,
        key: str,
        offset: int = 0,
        length: int | None = None,
        principal: Principal | None = None,
    ) -> bytes:
        """The bytes of ``key`` (from ``offset``, ``length`` of them; default all)."""
        who = self._who(principal)
        with self._rw.shared():
            self._check_open()
            try:
                info, resource = self._resolve(who, compartment, key, "object.read")
                data = self.pinned_read(info, offset, length)
            except DWError as exc:
                self._failed(
                    Category.DATA_ACCESS, "object.get", who, f"object:{compartment}/{key}", exc
                )
                raise
            self._record(
                Category.DATA_ACCESS,
                "object.get",
                who,
                resource,
                details={"offset": offset, "bytes": len(data)},
            )
            return data

    def get_stream(
        self,
        compartment: str,
        key: str,
        offset: int = 0,
        length: int | None = None,
        principal: Principal | None = None,
        *,
        chunk_size: int = 1 << 20,
    ) -> ObjectStream:
        """A stream of ``key``'s bytes in pieces of at most ``chunk_size`` (iterate it, or
        ``read(n)``; close it or use it in a ``with``).  The version read is fixed when
        this returns: later puts do not change what the stream yields."""
        who = self._who(principal)
        with self._rw.shared():
            self._check_open()
            info, resource = self._resolve(who, compartment, key, "object.read")
            try:
                stream = self.stream_version(info, offset, length, chunk_size)
            except BaseException:
                self._pins.unpin([(r.pool, r.extent) for r in info.extents])
                raise
            self._record(
                Category.DATA_ACCESS, "object.open", who, resource, details={"offset": offset}
            )
            return stream

    def head(self, compartment: str, key: str, principal: Principal | None = None) -> ObjectInfo:
        """The current version of ``key`` (size, hash, metadata, ...) without its data."""
        who = self._who(principal)
        check_key(key)
        resource = f"object:{check_compartment_name(compartment)}/{key}"
        with self._rw.shared():
            self._check_open()
            comp = self.catalog.compartment(compartment)
            self._allow(who, "object.read", resource, comp)
            info = self.catalog.lookup(comp.id, key)
            if info is None:
                raise NotFoundError(f"object {key!r} does not exist in compartment {compartment!r}")
            self._record(Category.DATA_ACCESS, "object.head", who, resource)
            return info

    def versions(
        self, compartment: str, key: str, principal: Principal | None = None
    ) -> list[ObjectInfo]:
        """Every version of ``key`` still kept (current last; older ones while snapshots hold
        them)."""
        who = self._who(principal)
        check_key(key)
        resource = f"object:{check_compartment_name(compartment)}/{key}"
        with self._rw.shared():
            self._check_open()
            comp = self.catalog.compartment(compartment)
            self._allow(who, "object.read", resource, comp)
            return self.catalog.history(comp.id, key)

    def list(
        self,
        compartment: str,
        prefix: str = "",
        start_after: str | None = None,
        limit: int = 1000,
        principal: Principal | None = None,
    ) -> ListPage:
        """One page of the current objects whose key starts with ``prefix``, after
        ``start_after``, in key order (UTF-8 byte order); at most ``limit`` (1..10000)."""
        who = self._who(principal)
        if not isinstance(prefix, str):
            raise InvalidArgumentError(f"prefix must be text, got {type(prefix).__name__}")
        if start_after is not None and not isinstance(start_after, str):
            raise InvalidArgumentError("start_after must be text or None")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InvalidArgumentError(f"limit must be 1..{MAX_LIST}, got {limit!r}")
        resource = f"compartment:{check_compartment_name(compartment)}"
        with self._rw.shared():
            self._check_open()
            comp = self.catalog.compartment(compartment)
            self._allow(who, "compartment.read", resource, comp)
            rows = self.catalog.list_objects(
                comp.id, prefix=prefix, start_after=start_after, limit=limit + 1
            )
            more = len(rows) > limit
            rows = rows[:limit]
            self._record(
                Category.DATA_ACCESS,
                "object.list",
                who,
                resource,
                details={"prefix": prefix, "count": len(rows)},
            )
            return ListPage(tuple(rows), rows[-1].key if more else None)

    def iter_objects(
        self, compartment: str, prefix: str = "", principal: Principal | None = None
    ) -> Iterator[ObjectInfo]:
        """Every current object under ``prefix``, page by page."""
        after: str | None = None
        while True:
            page = self.list(compartment, prefix, after, MAX_LIST, principal)
            yield from page.objects
            if page.next_start_after is None:
                return
            after = page.next_start_after

    # ----------------------------------------------------------------- fsck

    def fsck(
        self, principal: Principal | None = None, *, repair: bool = True, deep: bool = False
    ) -> FsckReport:
        """Check the catalog and the pools against each other, and repair what is safe.

        Frees pool rows no catalog entry references (what a crash between a
        data write and its commit leaves), marks rows that live objects use
        but the pool had free allocated again, removes catalog extent rows no
        version references, and with ``deep`` reads every kept version and
        checks its blake3 hash.  ``repair=False`` changes nothing and reports
        each of these as a problem.  Runs alone (waits for running operations).
        """
        who = self._who(principal)
        self._allow(who, "pool.manage", "instance")
        report = FsckReport()
        with self._rw.exclusive():
            self._check_open()
            problems, repaired, freed = self.catalog.check(repair)
            report.problems.extend(problems)
            report.repaired.extend(repaired)
            self._pins.free(freed)
            for name, pool in self._pools.items():
                live = self.catalog.live_extents(name) + self._pins.held(name)
                leaked, missing = pool.check_rows(live)
                if repair:
                    try:
                        rows = pool.reconcile(live)
                    except InvalidArgumentError as exc:  # an extent the pool has no record of
                        report.problems.append(f"pool {name}: cannot reconcile: {exc}")
                        rows = 0
                    pool.sync()
                    report.leaked_rows[name] = rows
                    if rows:
                        report.repaired.append(f"pool {name}: freed {rows} leaked row(s)")
                    _, still = pool.check_rows(live)
                    if missing > still:
                        report.repaired.append(
                            f"pool {name}: marked {missing - still} row(s) that objects "
                            f"reference allocated again (the pool had them free)"
                        )
                    missing = still
                else:
                    report.leaked_rows[name] = leaked
                    if leaked:
                        report.problems.append(
                            f"pool {name}: {leaked} allocated row(s) no object references "
                            f"(fsck without --no-repair frees them)"
                        )
                if missing:
                    report.problems.append(
                        f"pool {name}: {missing} row(s) that objects reference are free or "
                        f"unknown to the pool: new writes may overwrite them"
                    )
                if pool.status().degraded:
                    report.warnings.append(f"pool {name} is degraded")
            counts = self.catalog.counts()
            report.objects = counts["objects"]
            report.versions = counts["versions"]
            if deep:
                self._deep_check(report)
        self._record(
            Category.ADMINISTRATION,
            "fsck",
            who,
            "instance",
            Outcome.SUCCESS if report.ok else Outcome.FAILURE,
            {"problems": len(report.problems), "repaired": len(report.repaired)},
            durable=True,
        )
        return report

    def _deep_check(self, report: FsckReport) -> None:
        for comp in self.catalog.list_compartments(gen=self.catalog.generation):
            after: str | None = None
            while True:
                page = self.catalog.list_objects(comp.id, start_after=after, limit=1000)
                for obj in page:
                    for v in self.catalog.history(comp.id, obj.key):
                        self._verify_version(comp.name, v.version_id, report)
                if len(page) < 1000:
                    break
                after = page[-1].key

    def _verify_version(self, compartment: str, version_id: int, report: FsckReport) -> None:
        info = self.catalog.version(version_id)
        if info is None:
            return
        report.verified += 1
        hasher = blake3.blake3()
        try:
            for ref in info.extents:
                hasher.update(self._pool(ref.pool).read(ref.extent))
        except DWError as exc:
            report.problems.append(f"{compartment}/{info.key} v{version_id}: {exc}")
            return
        if hasher.hexdigest() != info.content_hash:
            report.problems.append(f"{compartment}/{info.key} v{version_id}: content hash mismatch")

    def status(self) -> dict[str, Any]:
        """Counts of compartments, objects, versions, extents, snapshots; the generation;
        pool health."""
        with self._rw.shared():
            self._check_open()
            return {
                "root": str(self.root),
                "generation": self.catalog.generation,
                "schema_version": self.catalog.schema_version,
                **self.catalog.counts(),
                "tiers": self.catalog.tiers(),
                "pools": {n: {"degraded": p.status().degraded} for n, p in self._pools.items()},
            }

    def __repr__(self) -> str:
        return f"Instance({str(self.root)!r})"


def _pieces(data: Any) -> Iterator[Any]:
    """Pieces of at most EXTENT_BYTES from a file object or an iterable of bytes-like."""
    buf = bytearray()
    if hasattr(data, "read"):
        while True:
            piece = data.read(EXTENT_BYTES - len(buf))
            if isinstance(piece, str):
                raise InvalidArgumentError("the stream is in text mode; open it in binary mode")
            if not piece:
                break
            buf += piece
            if len(buf) >= EXTENT_BYTES:
                yield buf
                buf = bytearray()
    else:
        try:
            it = iter(data)
        except TypeError:
            raise InvalidArgumentError(
                f"data must be bytes-like, a binary file object or an iterable of bytes, "
                f"got {type(data).__name__}"
            ) from None
        for piece in it:
            if isinstance(piece, str):
                raise InvalidArgumentError(_STR_ERROR)
            view = memoryview(piece).cast("B")
            while view.nbytes:
                take = min(EXTENT_BYTES - len(buf), view.nbytes)
                buf += view[:take]
                view = view[take:]
                if len(buf) >= EXTENT_BYTES:
                    yield buf
                    buf = bytearray()
    if buf:
        yield buf


def _durable_unlink(path: Path) -> None:
    """Remove ``path`` if present and make the removal durable."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)
