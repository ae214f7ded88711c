"""The pool manifest: ``pool.json`` in the pool directory.

It records what :meth:`dwcore.pool.Pool.open` needs before it can read any
device: the pool id, the layout parameters, block and device sizes, the
geometry derived from them, and each member's path and administrative state
(``online``, ``failed``, ``rebuilding``).  The devices' superblocks remain
the authority on membership (pool id, index, generation); the manifest is
written atomically (temporary file, fsync, rename, fsync of the directory)
after every membership change.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from dwcore.errors import CorruptionError, UnsupportedFormatError

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "Manifest"]

MANIFEST_NAME = "pool.json"
MANIFEST_VERSION = 1


@dataclass
class Manifest:
    """Contents of ``pool.json``."""

    pool_id: str
    layout: dict[str, Any]
    block_size: int
    device_size: int
    usable: int
    rows: int
    devices: list[str]
    states: list[str]
    generation: int = 1
    version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str) -> None:
        """Write atomically to ``directory/pool.json``."""
        path = os.path.join(directory, MANIFEST_NAME)
        tmp = path + ".tmp"
        data = json.dumps(asdict(self), indent=1, sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @classmethod
    def load(cls, directory: str) -> Manifest:
        """Read ``directory/pool.json``; CorruptionError / UnsupportedFormatError when unusable."""
        path = os.path.join(directory, MANIFEST_NAME)
        try:
            with open(path, "rb") as f:
                raw = json.loads(f.read())
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise CorruptionError(f"{path}: unreadable pool manifest: {exc}") from None
        if not isinstance(raw, dict):
            raise CorruptionError(f"{path}: pool manifest is not a JSON object")
        if raw.get("version", 0) > MANIFEST_VERSION:
            raise UnsupportedFormatError(
                f"{path}: manifest version {raw.get('version')} is newer than this dwcore reads "
                f"({MANIFEST_VERSION}); upgrade dwcore"
            )
        try:
            m = cls(**raw)
        except TypeError as exc:
            raise CorruptionError(f"{path}: invalid pool manifest: {exc}") from None
        if len(m.devices) != len(m.states):
            raise CorruptionError(f"{path}: invalid pool manifest: device and state lists differ")
        return m
