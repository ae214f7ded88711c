"""Configuration: one ``dwcore.toml``, validated before start-up.

* :func:`validate_file` — a :class:`ValidationReport` of every error and
  warning, each naming the key (``pools[0].chunk_size``), the value and what
  is allowed; unknown keys are errors with a did-you-mean.  The resource
  checks (free disk for the pools, memory, the open-file limit) run when the
  schema passes.
* :func:`load_config` — the validated :class:`DwConfig` or
  :class:`~dwcore.errors.ConfigError`.
* The tables: :class:`InstanceConfig`, :class:`PoolConfig`,
  :class:`SecurityConfig` (the fields of :class:`dwcore.auth.AuthPolicy`),
  :class:`AuditConfig`, :class:`ResourcesConfig`.
* :mod:`dwcore.config.components` builds what the file describes: pools,
  the audit log, the security policy, the memory monitor.

A minimal file::

    [instance]
    name = "lab"

    [[pools]]
    name = "main"
    level = "raid6"
    devices = 6
    device_size = "64GiB"
    chunk_size = "256KiB"
"""

from __future__ import annotations

from dwcore.config.checks import Probes, check_resources
from dwcore.config.components import (
    auth_policy,
    memory_monitor,
    open_audit_log,
    open_pools,
    root_of,
)
from dwcore.config.loader import MAX_FILE_BYTES, load_config, validate_data, validate_file
from dwcore.config.report import Issue, ValidationReport
from dwcore.config.schema import (
    AuditConfig,
    DwConfig,
    InstanceConfig,
    PoolConfig,
    ResourcesConfig,
    SecurityConfig,
)
from dwcore.config.units import format_size, parse_size
from dwcore.errors import ConfigError

__all__ = [
    "MAX_FILE_BYTES",
    "AuditConfig",
    "ConfigError",
    "DwConfig",
    "InstanceConfig",
    "Issue",
    "PoolConfig",
    "Probes",
    "ResourcesConfig",
    "SecurityConfig",
    "ValidationReport",
    "auth_policy",
    "check_resources",
    "format_size",
    "load_config",
    "memory_monitor",
    "open_audit_log",
    "open_pools",
    "parse_size",
    "root_of",
    "validate_data",
    "validate_file",
]
