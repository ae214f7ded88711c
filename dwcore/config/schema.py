"""The schema of ``dwcore.toml``: one pydantic model per table, unknown keys forbidden.

Tables defined now are those whose consumers exist:

* ``[instance]`` — ``name`` and ``root`` (the directory the instance keeps its
  state in; relative to the file's directory, default that directory);
* ``[[pools]]`` — each pool's ``name``, RAID ``level``, ``devices`` (a count of
  files created in the pool directory, or a list of paths), ``device_size``,
  ``chunk_size``, ``block_size``, level ``options`` and optional ``path``;
* ``[security]`` — the fields of :class:`dwcore.auth.AuthPolicy`, same names;
* ``[audit]`` — ``fsync_interval_ms`` of the audit log's group fsync;
* ``[resources]`` — memory-pressure thresholds and admission settings of
  :mod:`dwcore.memory`, ``min_free_disk`` and ``min_open_files`` for the
  start-up resource checks.

The metadata, backup, server and monitoring areas of the design join with
their features.  Values are checked strictly: a string is not a number, NaN
and infinities are refused, and sizes accept units (:mod:`.units`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from dwcore import raid
from dwcore.config.units import format_size, parse_size
from dwcore.errors import DWError

__all__ = [
    "MAX_DEVICE_SIZE",
    "MIN_CHUNK_SIZE",
    "AuditConfig",
    "DwConfig",
    "InstanceConfig",
    "PoolConfig",
    "ResourcesConfig",
    "SecurityConfig",
]

#: Largest device_size (1 PiB), as in :mod:`dwcore.pool`.
MAX_DEVICE_SIZE = 1 << 50
#: Smallest chunk_size: a RAID stripe unit below 4 KiB is refused.
MIN_CHUNK_SIZE = 4096
#: Smallest device_size: two 1 MiB metadata areas and room for data.
MIN_DEVICE_SIZE = 3 << 20
MAX_DEVICES = 255
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_PATH_MAX = 4096

Size = Annotated[int, BeforeValidator(parse_size)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_RE)]
PathText = Annotated[str, Field(min_length=1, max_length=_PATH_MAX)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{what} must not contain control characters")
    return value


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class InstanceConfig(_Table):
    """``[instance]``: what the deployment is called and where its state lives."""

    name: Name = "dwcore"
    root: PathText = "."

    @field_validator("root")
    @classmethod
    def _root(cls, v: str) -> str:
        return _no_control(v, "root")


class PoolConfig(_Table):
    """One ``[[pools]]`` entry: the arguments of :meth:`dwcore.pool.Pool.create`."""

    name: Name
    level: str | int
    devices: (
        Annotated[int, Field(ge=1, le=MAX_DEVICES)]
        | Annotated[list[PathText], Field(min_length=1, max_length=MAX_DEVICES)]
    )
    device_size: Size
    #: None: the level's own default (Declustered 16 MiB, FR 256 KiB, Adaptive 64 KiB,
    #: else 512 KiB), as :meth:`~dwcore.pool.Pool.create` chooses it
    chunk_size: Size | None = None
    block_size: Size = 4096
    options: dict[str, str | int] = Field(default_factory=dict, max_length=16)
    path: PathText | None = None

    @field_validator("level")
    @classmethod
    def _level(cls, v: str | int) -> str:
        try:
            name = raid.canonical(v)
        except DWError as exc:
            raise ValueError(str(exc)) from None
        if not raid.is_available(name):
            raise ValueError(
                f"RAID {name} is not available in this version "
                f"(available: {', '.join(raid.AVAILABLE)})"
            )
        return name

    @field_validator("device_size")
    @classmethod
    def _device_size(cls, v: int) -> int:
        if not MIN_DEVICE_SIZE <= v <= MAX_DEVICE_SIZE:
            raise ValueError(
                f"device_size must be from {format_size(MIN_DEVICE_SIZE)} to "
                f"{format_size(MAX_DEVICE_SIZE)}"
            )
        return v

    @field_validator("chunk_size")
    @classmethod
    def _chunk_size(cls, v: int | None) -> int | None:
        if v is None:
            return v
        if v < MIN_CHUNK_SIZE or v > 1 << 30 or v & (v - 1):
            raise ValueError("chunk_size must be a power of two from 4 KiB to 1 GiB")
        return v

    @field_validator("block_size")
    @classmethod
    def _block_size(cls, v: int) -> int:
        if v < 512 or v > 1 << 30 or v & (v - 1):
            raise ValueError("block_size must be a power of two from 512 bytes to the chunk_size")
        return v

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: int | list[str]) -> int | list[str]:
        if isinstance(v, list):
            for p in v:
                _no_control(p, "device paths")
            if len(set(v)) != len(v):
                raise ValueError("a device path is listed twice")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        return None if v is None else _no_control(v, "path")

    @model_validator(mode="after")
    def _layout(self) -> PoolConfig:
        allowed = raid.level_options(self.level)
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise ValueError(
                f"RAID {self.level} has no option {', '.join(map(repr, unknown))} "
                f"(options: {', '.join(allowed) or 'none'})"
            )
        try:
            lay = raid.layout(self.level, self.device_count, self.chunk_size, **self.options)
        except DWError as exc:
            raise ValueError(str(exc)) from None
        if self.block_size > lay.chunk_size:
            raise ValueError(
                f"block_size ({self.block_size}) must not exceed chunk_size ({lay.chunk_size})"
            )
        return self

    @property
    def device_count(self) -> int:
        """How many devices the pool has."""
        return self.devices if isinstance(self.devices, int) else len(self.devices)


def _min(low: int, high: int) -> Any:
    return Field(ge=low, le=high)


class SecurityConfig(_Table):
    """``[security]``: exactly the fields of :class:`dwcore.auth.AuthPolicy`.

    Stricter than the policy in one place: ``pbkdf2_iterations`` must meet
    OWASP's 600,000 here (the policy allows less for tests).
    """

    hash_scheme: Literal["argon2id", "pbkdf2-sha256"] = "argon2id"
    argon2_time_cost: Annotated[int, _min(1, 100)] = 3
    argon2_memory_cost: Annotated[int, _min(8, 4 * 1024 * 1024)] = 65536
    argon2_parallelism: Annotated[int, _min(1, 64)] = 4
    pbkdf2_iterations: Annotated[int, _min(600_000, 10_000_000)] = 600_000
    lockout_threshold: Annotated[int, _min(1, 1000)] = 5
    lockout_window_s: Annotated[int, _min(1, 7 * 86400)] = 900
    lockout_base_s: Annotated[int, _min(1, 86400)] = 30
    lockout_max_s: Annotated[int, _min(1, 30 * 86400)] = 3600
    session_idle_s: Annotated[int, _min(60, 30 * 86400)] = 1800
    session_absolute_s: Annotated[int, _min(60, 365 * 86400)] = 43200
    api_key_default_ttl_days: Annotated[int, _min(1, 3650)] = 90
    key_rotation_overlap_s: Annotated[int, _min(0, 30 * 86400)] = 86400
    min_password_length: Annotated[int, _min(8, 1024)] = 12

    @model_validator(mode="after")
    def _pairs(self) -> SecurityConfig:
        if self.lockout_max_s < self.lockout_base_s:
            raise ValueError(
                f"lockout_max_s ({self.lockout_max_s}) must be >= lockout_base_s "
                f"({self.lockout_base_s})"
            )
        if self.session_absolute_s < self.session_idle_s:
            raise ValueError(
                f"session_absolute_s ({self.session_absolute_s}) must be >= session_idle_s "
                f"({self.session_idle_s})"
            )
        if self.argon2_memory_cost < 8 * self.argon2_parallelism:
            raise ValueError(
                f"argon2_memory_cost ({self.argon2_memory_cost} KiB) must be at least 8 KiB per "
                f"lane (argon2_parallelism = {self.argon2_parallelism})"
            )
        return self

    def to_policy(self) -> Any:
        """The :class:`dwcore.auth.AuthPolicy` with these settings."""
        from dwcore.auth import AuthPolicy

        return AuthPolicy(**self.model_dump())


class AuditConfig(_Table):
    """``[audit]``: how long an audit record may wait for its group fsync."""

    fsync_interval_ms: Annotated[int, _min(0, 10_000)] = 100


Fraction = Annotated[float, Field(gt=0.0, le=1.0)]


class ResourcesConfig(_Table):
    """``[resources]``: memory pressure (:mod:`dwcore.memory`) and start-up resource checks."""

    memory_elevated: Fraction = 0.70
    memory_high: Fraction = 0.85
    memory_critical: Fraction = 0.95
    memory_check_interval_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 1.0
    admission_high_concurrency: Annotated[int, _min(1, 4096)] = 4
    admission_timeout_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 30.0
    min_free_disk: Size = 1 << 30
    min_open_files: Annotated[int, _min(64, 1 << 24)] = 1024

    @field_validator("min_free_disk")
    @classmethod
    def _free(cls, v: int) -> int:
        if not 0 <= v <= 1 << 60:
            raise ValueError("min_free_disk must be from 0 to 1 EiB")
        return v

    @model_validator(mode="after")
    def _order(self) -> ResourcesConfig:
        if not self.memory_elevated < self.memory_high < self.memory_critical:
            raise ValueError(
                f"memory thresholds must rise: memory_elevated ({self.memory_elevated}) < "
                f"memory_high ({self.memory_high}) < memory_critical ({self.memory_critical})"
            )
        return self


class DwConfig(_Table):
    """The whole ``dwcore.toml``."""

    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    pools: list[PoolConfig] = Field(default_factory=list, max_length=256)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    @model_validator(mode="after")
    def _unique_pools(self) -> DwConfig:
        seen: set[str] = set()
        for pool in self.pools:
            if pool.name in seen:
                raise ValueError(f"pool name {pool.name!r} is used twice")
            seen.add(pool.name)
        return self
