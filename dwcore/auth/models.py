"""What the auth service returns: users, roles, keys and sessions as plain records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dwcore.auth.principal import Principal

__all__ = ["ApiKeyInfo", "Assignment", "NewApiKey", "NewSession", "RoleInfo", "UserInfo"]


@dataclass(frozen=True)
class Assignment:
    """A role held on a scope."""

    role: str
    scope: str


@dataclass(frozen=True)
class UserInfo:
    """A user as listed (no secret)."""

    name: str
    disabled: bool
    created: datetime
    roles: tuple[Assignment, ...]


@dataclass(frozen=True)
class RoleInfo:
    """A role and its permissions."""

    name: str
    builtin: bool
    description: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listed (the secret is never stored, so never shown again)."""

    prefix: str
    user: str
    name: str
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    rotated_to: str | None

    def state(self, now: datetime) -> str:
        """``active``, ``rotating`` (valid until the overlap ends), ``expired`` or ``revoked``."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "rotating" if self.rotated_to else "active"


@dataclass(frozen=True)
class NewApiKey:
    """A freshly made key: ``key`` is shown once and cannot be recovered."""

    key: str
    prefix: str
    user: str
    name: str
    expires: datetime | None


@dataclass(frozen=True)
class NewSession:
    """A freshly opened session: ``token`` goes to the client, only its digest is kept."""

    token: str
    session_id: str
    principal: Principal
    idle_expires: datetime
    absolute_expires: datetime
