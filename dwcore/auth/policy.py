"""The security policy: password hashing, lockout, session and API key lifetimes.

The field names are the keys of the ``[security]`` table of ``dwcore.toml``.
Defaults follow the OWASP Password Storage and Session Management cheat
sheets (argon2id with 64 MiB, t=3, p=4; PBKDF2-HMAC-SHA256 with 600,000
iterations).  Every field is checked on construction; an error names the
field, the value and the allowed range.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from dwcore.errors import InvalidArgumentError

__all__ = ["OWASP_MIN", "AuthPolicy"]

HashScheme = Literal["argon2id", "pbkdf2-sha256"]

#: OWASP minimums: argon2id m >= 19 MiB with t >= 2; PBKDF2-HMAC-SHA256 >= 600,000.
OWASP_MIN = {
    "argon2_memory_cost": 19456,
    "argon2_time_cost": 2,
    "pbkdf2_iterations": 600_000,
}

# Allowed ranges (inclusive).  The lower bounds of the hashing costs are low
# enough for tests; production configurations get the defaults.
_RANGES: dict[str, tuple[int, int]] = {
    "argon2_time_cost": (1, 100),
    "argon2_memory_cost": (8, 4 * 1024 * 1024),
    "argon2_parallelism": (1, 64),
    "pbkdf2_iterations": (1000, 10_000_000),
    "lockout_threshold": (1, 1000),
    "lockout_window_s": (1, 7 * 86400),
    "lockout_base_s": (1, 86400),
    "lockout_max_s": (1, 30 * 86400),
    "session_idle_s": (60, 30 * 86400),
    "session_absolute_s": (60, 365 * 86400),
    "api_key_default_ttl_days": (1, 3650),
    "key_rotation_overlap_s": (0, 30 * 86400),
    "min_password_length": (8, 1024),
}


@dataclass(frozen=True)
class AuthPolicy:
    """Tunable security parameters, secure by default."""

    hash_scheme: HashScheme = "argon2id"
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536  # KiB
    argon2_parallelism: int = 4
    pbkdf2_iterations: int = 600_000
    lockout_threshold: int = 5
    lockout_window_s: int = 900
    lockout_base_s: int = 30
    lockout_max_s: int = 3600
    session_idle_s: int = 1800
    session_absolute_s: int = 43200
    api_key_default_ttl_days: int = 90
    key_rotation_overlap_s: int = 86400
    min_password_length: int = 12

    def __post_init__(self) -> None:
        if self.hash_scheme not in ("argon2id", "pbkdf2-sha256"):
            raise InvalidArgumentError(
                f"security.hash_scheme = {self.hash_scheme!r}: use 'argon2id' or 'pbkdf2-sha256'"
            )
        for f in fields(self):
            if f.name not in _RANGES:
                continue
            value = getattr(self, f.name)
            low, high = _RANGES[f.name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise InvalidArgumentError(
                    f"security.{f.name} = {value!r}: must be an integer from {low} to {high}"
                )
        if self.argon2_memory_cost < 8 * self.argon2_parallelism:
            raise InvalidArgumentError(
                f"security.argon2_memory_cost = {self.argon2_memory_cost}: must be at least "
                f"8 KiB per lane (argon2_parallelism = {self.argon2_parallelism})"
            )
        if self.lockout_max_s < self.lockout_base_s:
            raise InvalidArgumentError(
                f"security.lockout_max_s = {self.lockout_max_s}: must be >= lockout_base_s "
                f"({self.lockout_base_s})"
            )
        if self.session_absolute_s < self.session_idle_s:
            raise InvalidArgumentError(
                f"security.session_absolute_s = {self.session_absolute_s}: must be >= "
                f"session_idle_s ({self.session_idle_s})"
            )

    def meets_owasp(self) -> bool:
        """Whether the password hashing costs meet OWASP's current minimums."""
        if self.hash_scheme == "argon2id":
            return (
                self.argon2_memory_cost >= OWASP_MIN["argon2_memory_cost"]
                and self.argon2_time_cost >= OWASP_MIN["argon2_time_cost"]
            )
        return self.pbkdf2_iterations >= OWASP_MIN["pbkdf2_iterations"]
