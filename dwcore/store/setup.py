"""The configuration a new instance starts from, and writing it as ``dwcore.toml``.

The embedded default is one pool, ``main``: RAID 6 over :data:`DEFAULT_DEVICES`
sparse files under ``<root>/pools/main`` of :data:`DEFAULT_DEVICE_SIZE` bytes
each (1 GiB of user space), shrunk to what fits when the disk has less free
(:func:`default_config`).  All three tiers (hot, warm, cold) map to the first
pool until set otherwise.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dwcore.config import DwConfig
from dwcore.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_DEVICES",
    "DEFAULT_DEVICE_SIZE",
    "DEFAULT_POOL",
    "config_data",
    "default_config",
    "to_toml",
]

#: Name of the pool of the embedded default.
DEFAULT_POOL = "main"
#: Devices of the default pool (RAID 6: four data, two parity).
DEFAULT_DEVICES = 6
#: Bytes per device of the default pool (sparse files: nothing is used until written).
DEFAULT_DEVICE_SIZE = 256 << 20
#: Smallest device size the default will shrink to.
_MIN_FIT = 16 << 20
#: Free disk the configuration checks keep in reserve by default.
_RESERVE = 1 << 30


def _free_bytes(root: Path) -> int:
    p = root
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def default_pool(root: Path) -> dict[str, Any]:
    """The default pool's table: RAID 6 on six device files, as large as fits up to 256 MiB."""
    room = (_free_bytes(root) - _RESERVE) // DEFAULT_DEVICES
    size = max(_MIN_FIT, min(DEFAULT_DEVICE_SIZE, room) >> 20 << 20)
    return {
        "name": DEFAULT_POOL,
        "level": "6",
        "devices": DEFAULT_DEVICES,
        "device_size": size,
        "chunk_size": 64 << 10,
    }


def default_config(root: Path) -> dict[str, Any]:
    """The configuration of ``Instance.create(root)`` without a config."""
    return {"instance": {"name": "dwcore"}, "pools": [default_pool(root)]}


def config_data(config: DwConfig | Mapping[str, Any] | None, root: Path) -> dict[str, Any]:
    """Plain TOML-ready data for ``config`` (a mapping, a :class:`DwConfig` or None),
    with the default pool added when it names none."""
    if config is None:
        return default_config(root)
    if isinstance(config, DwConfig):
        data: dict[str, Any] = config.model_dump(exclude_defaults=True)
    elif isinstance(config, Mapping):
        data = {k: v for k, v in config.items()}
    else:
        raise InvalidArgumentError(
            f"config must be a mapping or a dwcore.config.DwConfig, got {type(config).__name__}"
        )
    if not data.get("pools"):
        data["pools"] = [default_pool(root)]
    return data


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidArgumentError(f"cannot write {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items()) + "}"
    raise InvalidArgumentError(f"cannot write a {type(v).__name__} to TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """``data`` (tables of scalars, lists and inline tables; arrays of tables) as TOML."""
    lines: list[str] = []
    for name, table in data.items():
        if isinstance(table, Mapping):
            lines.append(f"[{name}]")
            lines += [f"{json.dumps(str(k))} = {_value(v)}" for k, v in table.items()]
            lines.append("")
        elif isinstance(table, (list, tuple)) and all(isinstance(t, Mapping) for t in table):
            for t in table:
                lines.append(f"[[{name}]]")
                lines += [f"{json.dumps(str(k))} = {_value(v)}" for k, v in t.items()]
                lines.append("")
        else:
            lines.insert(0, f"{json.dumps(str(name))} = {_value(table)}")
    return "\n".join(lines)


def write_config(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` as TOML, atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("# dwcore instance configuration (see `dwcore config validate`)\n")
        fh.write(to_toml(data))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
