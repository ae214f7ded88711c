"""The security facade: users, passwords, sessions, API keys, roles and the decision point.

``AuthService(root)`` keeps its state in ``<root>/auth.sqlite3`` and audits
to an :class:`~dwcore.audit.AuditLog` (its own in ``<root>/audit`` unless one
is passed in, as the future ``Instance`` will).  Every administrative method
takes the acting :class:`Principal` first and passes through
:meth:`AuthService.require`, the one decision point: deny by default, every
decision on a privileged action audited, every denial audited, a denied
privileged action opening a security incident.
"""

from __future__ import annotations

from collections.abc import Iterable

from dwcore.auth.keys import KeyAdmin
from dwcore.auth.models import UserInfo
from dwcore.auth.principal import Principal
from dwcore.auth.roles import RoleAdmin
from dwcore.auth.users import UserAdmin
from dwcore.errors import AlreadyExistsError

__all__ = ["AuthService"]


class AuthService(UserAdmin, RoleAdmin, KeyAdmin):
    """Users, roles, API keys, sessions and authorization for one instance root.

    ``AuthService(root, policy=AuthPolicy(), clock=..., audit=AuditLog | None)``;
    close it (or use it as a context manager).  Parts: authentication
    (:mod:`~dwcore.auth.authn`), the decision point (:mod:`~dwcore.auth.authz`),
    users (:mod:`~dwcore.auth.users`), roles (:mod:`~dwcore.auth.roles`), API
    keys (:mod:`~dwcore.auth.keys`).
    """

    def create_user(
        self,
        actor: Principal,
        name: str,
        password: str,
        *,
        roles: Iterable[str] = (),
        scope: str = "instance",
    ) -> UserInfo:
        """Add a user with a password, and assign *roles* on *scope* (escalation rules apply)."""
        self._check_user_name(name)
        self._check_password(password)
        roles = list(roles)
        for role in roles:
            self._role_row(role)
        self.require(actor, "user.manage")
        password_hash = self.hasher.hash(password)
        now = self._now()
        with self.db.transaction() as tx:
            if tx.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AlreadyExistsError(f"user {name!r} already exists")
            tx.execute(
                "INSERT INTO users (name, password_hash, created, password_changed) "
                "VALUES (?, ?, ?, ?)",
                (name, password_hash, now, now),
            )
            tx.execute("DELETE FROM login_failures WHERE name = ?", (name,))
        self._changed(actor, "user.create", f"user:{name}")
        for role in roles:
            self.assign_role(actor, name, role, scope)
        return self.get_user(name)
