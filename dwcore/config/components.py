"""Building what a validated configuration describes (what ``Instance`` will compose).

* :func:`open_pools` — open each configured pool, or create it where none
  exists yet, and check that an existing pool matches its configuration;
* :func:`open_audit_log` — the audit log with the configured group-fsync interval;
* :func:`auth_policy` — the :class:`dwcore.auth.AuthPolicy` of ``[security]``;
* :func:`memory_monitor` — a :class:`dwcore.memory.MemoryMonitor` with the
  thresholds and admission settings of ``[resources]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dwcore.config.checks import instance_root, pool_device_paths, pool_directory
from dwcore.config.schema import DwConfig, PoolConfig
from dwcore.errors import ConfigError
from dwcore.memory import MemoryMonitor

if TYPE_CHECKING:
    from dwcore.audit import AuditLog
    from dwcore.auth import AuthPolicy
    from dwcore.pool import Pool

__all__ = ["auth_policy", "memory_monitor", "open_audit_log", "open_pools", "root_of"]


def root_of(config: DwConfig, base: str | os.PathLike[str]) -> Path:
    """The instance root of ``config`` loaded from a file in directory ``base``."""
    return instance_root(config, Path(base))


def _open_or_create(index: int, pool: PoolConfig, root: Path) -> Pool:
    from dwcore.pool import Pool
    from dwcore.pool.manifest import MANIFEST_NAME

    directory = pool_directory(pool, root)
    if (directory / MANIFEST_NAME).exists():
        opened = Pool.open(directory)
        layout = opened.layout
        mismatch = []
        if layout.level != pool.level:
            mismatch.append(f"level is {layout.level}, configured {pool.level}")
        if layout.n_devices != pool.device_count:
            mismatch.append(f"{layout.n_devices} devices, configured {pool.device_count}")
        if pool.chunk_size is not None and layout.chunk_size != pool.chunk_size:
            mismatch.append(f"chunk_size is {layout.chunk_size}, configured {pool.chunk_size}")
        if mismatch:
            opened.close()
            raise ConfigError(
                f"pools[{index}] ({pool.name!r}): the pool in {directory} does not match the "
                f"configuration: {'; '.join(mismatch)}; a pool's layout cannot change — fix the "
                f"configuration or point path at another directory"
            )
        return opened
    devices: int | list[str] = (
        pool.devices
        if isinstance(pool.devices, int)
        else [str(p) for p in pool_device_paths(pool, root)]
    )
    return Pool.create(
        directory,
        pool.level,
        devices,
        device_size=pool.device_size,
        chunk_size=pool.chunk_size,
        block_size=pool.block_size,
        **pool.options,
    )


def open_pools(config: DwConfig, root: str | os.PathLike[str]) -> dict[str, Pool]:
    """Every configured pool by name, opened (or created when new) under ``root``.

    On an error the pools opened so far are closed again.
    """
    pools: dict[str, Pool] = {}
    try:
        for i, pool in enumerate(config.pools):
            pools[pool.name] = _open_or_create(i, pool, Path(root))
    except BaseException:
        for opened in pools.values():
            opened.close()
        raise
    return pools


def open_audit_log(config: DwConfig, root: str | os.PathLike[str], **kwargs: Any) -> AuditLog:
    """The instance's audit log, fsyncing in groups every ``audit.fsync_interval_ms``."""
    from dwcore.audit import AuditLog
    from dwcore.paths import AUDIT_DIR

    interval = config.audit.fsync_interval_ms / 1000
    return AuditLog(Path(root) / AUDIT_DIR, fsync_interval=interval, **kwargs)


def auth_policy(config: DwConfig) -> AuthPolicy:
    """The security policy of ``[security]``."""
    policy: AuthPolicy = config.security.to_policy()
    return policy


def memory_monitor(config: DwConfig) -> MemoryMonitor:
    """A memory monitor for ``[resources]``, driving the process-wide admission
    controller that :func:`dwcore.memory.admit` uses (configured here).  Start it
    with :meth:`~dwcore.memory.MemoryMonitor.start`."""
    return MemoryMonitor.from_settings(config.resources)
