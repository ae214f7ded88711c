"""Helpers for the object-store and snapshot tests: small instances, users, audit reads."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dwcore.audit import query
from dwcore.auth import Principal
from dwcore.store import Instance

#: A small, fast pool: RAID 6 on six 16 MiB files with 16 KiB chunks.
SMALL_POOL: dict[str, Any] = {
    "name": "main",
    "level": "6",
    "devices": 6,
    "device_size": "16MiB",
    "chunk_size": "16KiB",
}
#: Cheap password hashing so users are quick to make.
FAST_SECURITY: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 8,
    "argon2_parallelism": 1,
    "min_password_length": 8,
}
CONFIG: dict[str, Any] = {"pools": [SMALL_POOL], "security": FAST_SECURITY}
PASSWORD = "correct horse battery staple"


def _ram_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


@contextmanager
def fast_root(tmp_path: Path) -> Iterator[Path]:
    """A directory for an instance: on tmpfs when there is one (fsync there costs nothing,
    so tests that sync thousands of times stay fast), else under ``tmp_path``."""
    ram = _ram_dir()
    if ram is None:
        yield tmp_path / "root"
        return
    base = tempfile.mkdtemp(prefix="dwcore-store-test-", dir=ram)
    try:
        yield Path(base) / "root"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def make(root: Path, **kw: Any) -> Instance:
    """A new instance with the small pool in ``root``."""
    return Instance.create(root, CONFIG, check_resources=False, **kw)


def reopen(root: Path, **kw: Any) -> Instance:
    """Open the instance in ``root`` without the resource checks."""
    return Instance.open(root, check_resources=False, **kw)


def user(inst: Instance, name: str, *roles: str, scope: str = "instance") -> Principal:
    """A user with ``roles`` on ``scope``, as the principal a login would give."""
    inst.auth.create_user(inst.local_owner, name, PASSWORD, roles=roles, scope=scope)
    return inst.auth.authenticate_password(name, PASSWORD)


def audit_records(inst: Instance, **filters: Any) -> list[Any]:
    """Audit records of the instance matching ``filters`` (after a flush)."""
    inst.audit.flush()
    return list(query(inst.audit.directory, **filters))
