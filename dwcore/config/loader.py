"""Reading and validating ``dwcore.toml``.

:func:`validate_file` never raises for a bad file: it returns a
:class:`~dwcore.config.report.ValidationReport` with every problem (syntax,
schema, then — when the schema passed — the resource checks and advice).
:func:`load_config` returns the validated configuration or raises
:class:`~dwcore.errors.ConfigError` carrying that report.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dwcore.config.checks import Probes, check_resources
from dwcore.config.report import ValidationReport, issues_from_pydantic
from dwcore.config.schema import DwConfig
from dwcore.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["MAX_FILE_BYTES", "load_config", "validate_data", "validate_file"]

#: A configuration file larger than this is refused unread (1 MiB).
MAX_FILE_BYTES = 1 << 20
#: OWASP's argon2id minimums (memory in KiB, passes).
_ARGON2_MIN_MEMORY, _ARGON2_MIN_TIME = 19456, 2


def _advice(config: DwConfig, report: ValidationReport) -> None:
    """Warnings about valid but risky settings."""
    for i, pool in enumerate(config.pools):
        if pool.level == "0" and pool.device_count > 1:
            report.warning(
                f"pools[{i}].level",
                "RAID 0 has no redundancy: losing any device loses the whole pool",
                pool.level,
            )
    sec = config.security
    if sec.hash_scheme == "argon2id" and (
        sec.argon2_memory_cost < _ARGON2_MIN_MEMORY or sec.argon2_time_cost < _ARGON2_MIN_TIME
    ):
        report.warning(
            "security.argon2_memory_cost",
            f"below OWASP's argon2id minimum (memory >= {_ARGON2_MIN_MEMORY} KiB with "
            f"time_cost >= {_ARGON2_MIN_TIME})",
            sec.argon2_memory_cost,
        )


def validate_data(
    data: Any,
    base: str | os.PathLike[str] = ".",
    *,
    source: str = "",
    resources: bool = True,
    probes: Probes | None = None,
) -> ValidationReport:
    """Validate parsed TOML ``data``; relative paths are taken from ``base``."""
    report = ValidationReport(source=source)
    try:
        config = DwConfig.model_validate(data)
    except ValidationError as exc:
        report.errors.extend(issues_from_pydantic(exc, DwConfig))
        return report
    report.config = config
    _advice(config, report)
    if resources:
        check_resources(config, Path(base), report, probes)
    return report


def validate_file(
    path: str | os.PathLike[str], *, resources: bool = True, probes: Probes | None = None
) -> ValidationReport:
    """Read and validate the file at ``path``; every problem is in the report."""
    p = Path(path)
    report = ValidationReport(source=str(p))
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            report.error("(file)", f"is {size} bytes; a configuration file may hold at most 1 MiB")
            return report
        raw = p.read_bytes()
    except OSError as exc:
        report.error("(file)", f"cannot read {p}: {exc.strerror or exc}")
        return report
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.error("(file)", f"is not UTF-8 text (byte {exc.start}); TOML files are UTF-8")
        return report
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        report.error("(file)", f"is not valid TOML: {exc}")
        return report
    checked = validate_data(
        data, p.parent.absolute(), source=str(p), resources=resources, probes=probes
    )
    return checked


def load_config(
    path: str | os.PathLike[str], *, resources: bool = True, probes: Probes | None = None
) -> DwConfig:
    """The validated configuration in ``path``; :class:`~dwcore.errors.ConfigError` if invalid.

    Warnings do not stop loading; they are on the error's report when it is raised.
    """
    report = validate_file(path, resources=resources, probes=probes)
    if not report.ok:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise ConfigError(f"{path}: {first}{more}", report)
    config: DwConfig = report.config
    return config
