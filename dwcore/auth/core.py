"""State and helpers shared by the parts of :class:`~dwcore.auth.AuthService`.

The database, policy, clock, audit log and hasher; audit helpers; look-ups
of users and roles; the seeding of the built-in roles.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from dwcore.audit import AuditLog, Category, Clock, Outcome, SystemClock
from dwcore.auth.models import Assignment, UserInfo
from dwcore.auth.passwords import PasswordHasher
from dwcore.auth.policy import AuthPolicy
from dwcore.auth.principal import Principal
from dwcore.auth.rbac import DEFAULT_ROLES
from dwcore.auth.store import AuthDB
from dwcore.auth.tokens import (
    KEY_SCHEME,
    digest,
)
from dwcore.errors import (
    InvalidArgumentError,
    NotFoundError,
)
from dwcore.paths import AUDIT_DIR, AUTH_DB

__all__ = ["BAD_LOGIN", "KEY_NAME", "ROLE_NAME", "USER_NAME", "AuthCore", "utc", "utc_or_none"]

#: Valid names of users, roles and API keys.
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@-]{0,63}")
MAX_PASSWORD = 4096
BAD_LOGIN = "invalid user name or password"


def utc(ts: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, timezone.utc)


def utc_or_none(ts: float | None) -> datetime | None:
    """:func:`utc`, passing ``None`` through."""
    return None if ts is None else utc(ts)


_T = TypeVar("_T", bound="AuthCore")


class AuthCore:
    """The state every part of the auth service works on."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        policy: AuthPolicy | None = None,
        *,
        clock: Clock | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.root = Path(root)
        self.policy = policy or AuthPolicy()
        self.clock: Clock = clock or SystemClock()
        self._own_audit = audit is None
        self.audit = audit if audit is not None else AuditLog(self.root / AUDIT_DIR, clock=clock)
        self.hasher = PasswordHasher(self.policy)
        self._dummy_key_digest = digest(KEY_SCHEME, secrets.token_urlsafe(32))
        #: user id -> (auth database version, grants): see Authorization._grants
        self._grant_cache: dict[int | None, tuple[tuple[int, int], list[Any]]] = {}
        try:
            self.db = AuthDB(self.root / AUTH_DB)
            try:
                self._seed_roles()
            except BaseException:
                self.db.close()
                raise
        except BaseException:
            if self._own_audit:
                self.audit.close()
            raise

    def close(self) -> None:
        """Close the database (and the audit log if this service opened it)."""
        self.db.close()
        if self._own_audit:
            self.audit.close()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _audit(
        self,
        category: Category,
        action: str,
        who: Principal | str,
        resource: str,
        outcome: Outcome,
        details: dict[str, Any] | None = None,
        *,
        durable: bool = False,
    ) -> None:
        extra = dict(details or {})
        if isinstance(who, Principal):
            extra.update(who.audit_details())
            who = who.name
        self.audit.record(category, action, who, resource, outcome, extra, durable=durable)

    def _changed(self, actor: Principal, action: str, resource: str, **details: Any) -> None:
        """Audit a successful change of security state, durably."""
        self._audit(
            Category.ADMINISTRATION,
            action,
            actor,
            resource,
            Outcome.SUCCESS,
            details,
            durable=True,
        )

    def _seed_roles(self) -> None:
        now = self._now()
        with self.db.transaction() as tx:
            for name, perms in DEFAULT_ROLES.items():
                tx.execute(
                    "INSERT OR IGNORE INTO roles (name, builtin, description, created) "
                    "VALUES (?, 1, ?, ?)",
                    (name, f"built-in {name} role", now),
                )
                tx.execute("UPDATE roles SET builtin = 1 WHERE name = ?", (name,))
                tx.execute("DELETE FROM role_permissions WHERE role = ?", (name,))
                tx.executemany(
                    "INSERT INTO role_permissions (role, permission) VALUES (?, ?)",
                    [(name, p) for p in sorted(perms)],
                )

    def _check_password(self, password: str) -> None:
        if not isinstance(password, str):
            raise InvalidArgumentError("a password must be a string")
        if len(password) < self.policy.min_password_length:
            raise InvalidArgumentError(
                f"the password is too short ({len(password)} characters); use at least "
                f"{self.policy.min_password_length} (security.min_password_length)"
            )
        if len(password) > MAX_PASSWORD:
            raise InvalidArgumentError(
                f"the password is too long ({len(password)} characters); use at most {MAX_PASSWORD}"
            )

    @staticmethod
    def _check_user_name(name: str) -> None:
        if not isinstance(name, str) or not USER_NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"bad user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-', "
                f"starting with a letter or digit"
            )

    def _user_row(self, name: str) -> Any:
        row = self.db.one("SELECT * FROM users WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(f"no user named {name!r}; `dwcore user list` shows the users")
        return row

    def _role_row(self, name: str) -> Any:
        row = self.db.one("SELECT * FROM roles WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(f"no role named {name!r}; `dwcore role list` shows the roles")
        return row

    def _role_permissions(self, role: str) -> list[str]:
        rows = self.db.all(
            "SELECT permission FROM role_permissions WHERE role = ? ORDER BY permission", (role,)
        )
        return [r["permission"] for r in rows]

    def _revoke_sessions(self, tx: Any, user_id: int, now: float) -> int:
        cur = tx.execute(
            "UPDATE sessions SET revoked = ? WHERE user_id = ? AND revoked IS NULL",
            (now, user_id),
        )
        return int(cur.rowcount)

    def get_user(self, name: str) -> UserInfo:
        """A user and its role assignments."""
        row = self._user_row(name)
        return UserInfo(
            row["name"], bool(row["disabled"]), utc(row["created"]), self._assignments(row["id"])
        )

    def _assignments(self, user_id: int) -> tuple[Assignment, ...]:
        rows = self.db.all(
            "SELECT role, scope FROM role_assignments WHERE user_id = ? ORDER BY role, scope",
            (user_id,),
        )
        return tuple(Assignment(r["role"], r["scope"]) for r in rows)
