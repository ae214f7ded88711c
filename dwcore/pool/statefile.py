"""Small JSON state files of a pool's engines, checksummed and replaced atomically.

A placement engine that keeps its map beside the pool (Beyond's zone table,
Adaptive's extent map) saves it with :func:`write_state` after the devices
synced: the JSON body, a newline and its CRC-32, written to a temporary file,
fsynced, renamed over the old one and the directory fsynced, so a power cut
leaves the old map or the new one.  :func:`read_state` refuses a damaged
file or a newer format with a clear error.
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

from dwcore.errors import InvalidArgumentError

__all__ = ["read_state", "write_state"]


def read_state(path: str, what: str, version: int) -> dict[str, Any] | None:
    """The state saved at ``path`` (None when there is none yet).

    ``what`` names the file in errors ("zone table"); a file whose ``version``
    is above ``version`` is refused.
    """
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        raw = f.read()
    body, _, crc = raw.rpartition(b"\n")
    if not crc.isdigit() or zlib.crc32(body) != int(crc):
        raise InvalidArgumentError(f"{path}: {what} is damaged (checksum mismatch)")
    state: dict[str, Any] = json.loads(body)
    if state.get("version", 0) > version:
        raise InvalidArgumentError(f"{path}: {what} version is newer than dwcore")
    return state


def write_state(path: str, state: dict[str, Any]) -> None:
    """Replace the state at ``path`` atomically and durably (see the module docs)."""
    body = json.dumps(state, separators=(",", ":")).encode()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(body + b"\n" + str(zlib.crc32(body)).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
