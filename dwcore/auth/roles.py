"""Role administration: custom roles, their permissions, and role assignments on scopes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dwcore.auth.authz import Authorization
from dwcore.auth.core import ROLE_NAME
from dwcore.auth.models import RoleInfo
from dwcore.auth.principal import Principal
from dwcore.auth.rbac import (
    Resource,
    validate_permission,
)
from dwcore.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
)

__all__ = ["RoleAdmin"]


class RoleAdmin(Authorization):
    """Roles and assignments, guarded against privilege escalation."""

    def list_roles(self, actor: Principal) -> list[RoleInfo]:
        """Every role with its permissions (needs ``role.read``)."""
        self.require(actor, "role.read")
        rows = self.db.all("SELECT * FROM roles ORDER BY builtin DESC, name")
        return [
            RoleInfo(
                r["name"],
                bool(r["builtin"]),
                r["description"],
                tuple(self._role_permissions(r["name"])),
            )
            for r in rows
        ]

    def create_role(
        self,
        actor: Principal,
        name: str,
        permissions: Iterable[str] = (),
        description: str = "",
    ) -> RoleInfo:
        """A custom role; one can only put in it what one holds (``role.manage``)."""
        if not isinstance(name, str) or not ROLE_NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"bad role name {name!r}: 1-32 lower-case letters, digits, '_' or '-', "
                f"starting with a letter"
            )
        perms = sorted({validate_permission(p) for p in permissions})
        self.require(actor, "role.manage")
        self._check_grantable(actor, "role.manage", perms)
        with self.db.transaction() as tx:
            if tx.execute("SELECT 1 FROM roles WHERE name = ?", (name,)).fetchone():
                raise AlreadyExistsError(f"role {name!r} already exists")
            tx.execute(
                "INSERT INTO roles (name, builtin, description, created) VALUES (?, 0, ?, ?)",
                (name, description, self._now()),
            )
            tx.executemany(
                "INSERT INTO role_permissions (role, permission) VALUES (?, ?)",
                [(name, p) for p in perms],
            )
        self._changed(actor, "role.create", f"role:{name}", permissions=perms)
        return RoleInfo(name, False, description, tuple(perms))

    def _custom_role(self, name: str) -> Any:
        row = self._role_row(name)
        if row["builtin"]:
            raise InvalidArgumentError(
                f"{name!r} is a built-in role and cannot be changed; create a custom role"
            )
        return row

    def delete_role(self, actor: Principal, name: str) -> None:
        """Delete a custom role that nobody holds (``role.manage``)."""
        self._custom_role(name)
        self.require(actor, "role.manage")
        with self.db.transaction() as tx:
            held = tx.execute(
                "SELECT COUNT(*) FROM role_assignments WHERE role = ?", (name,)
            ).fetchone()[0]
            if held:
                raise InvalidArgumentError(
                    f"role {name!r} is assigned {held} time(s); revoke it from its users first"
                )
            tx.execute("DELETE FROM roles WHERE name = ?", (name,))
        self._changed(actor, "role.delete", f"role:{name}")

    def grant_permission(self, actor: Principal, role: str, permission: str) -> None:
        """Add a permission to a custom role; one can only add what one holds."""
        self._custom_role(role)
        perm = validate_permission(permission)
        self.require(actor, "role.manage")
        self._check_grantable(actor, "role.manage", [perm])
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO role_permissions (role, permission) VALUES (?, ?)",
                (role, perm),
            )
        self._changed(actor, "role.grant_permission", f"role:{role}", permission=perm)

    def revoke_permission(self, actor: Principal, role: str, permission: str) -> None:
        """Remove a permission from a custom role (``role.manage``)."""
        self._custom_role(role)
        self.require(actor, "role.manage")
        with self.db.transaction() as tx:
            cur = tx.execute(
                "DELETE FROM role_permissions WHERE role = ? AND permission = ?",
                (role, permission),
            )
            if not cur.rowcount:
                raise NotFoundError(f"role {role!r} does not have permission {permission!r}")
        self._changed(actor, "role.revoke_permission", f"role:{role}", permission=permission)

    def assign_role(
        self, actor: Principal, user: str, role: str, scope: str | Resource = "instance"
    ) -> None:
        """Give *user* *role* on *scope*.

        Guarded against escalation: the actor needs ``role.grant`` on the
        scope, must hold every permission of the role there, and cannot grant
        itself anything.
        """
        res = Resource.parse(scope)
        row = self._user_row(user)
        perms = self._role_permissions(self._role_row(role)["name"])
        self.require(actor, "role.grant", res)
        if row["id"] == actor.user_id or user == actor.name:
            self._refuse(actor, "role.grant", str(res), "one cannot grant a role to oneself")
        for perm in perms:
            if not self._holds(actor, perm, res):
                self._refuse(
                    actor,
                    "role.grant",
                    str(res),
                    f"role {role} includes {perm}, more than {actor.name} holds on {res}",
                )
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO role_assignments "
                "(user_id, role, scope, granted_by, created) VALUES (?, ?, ?, ?, ?)",
                (row["id"], role, str(res), actor.name, self._now()),
            )
        self._changed(actor, "role.assign", f"user:{user}", role=role, scope=str(res))

    def unassign_role(
        self, actor: Principal, user: str, role: str, scope: str | Resource = "instance"
    ) -> None:
        """Take *role* on *scope* away from *user* (``role.grant`` on the scope)."""
        res = Resource.parse(scope)
        row = self._user_row(user)
        self.require(actor, "role.grant", res)
        with self.db.transaction() as tx:
            cur = tx.execute(
                "DELETE FROM role_assignments WHERE user_id = ? AND role = ? AND scope = ?",
                (row["id"], role, str(res)),
            )
            if not cur.rowcount:
                raise NotFoundError(f"user {user!r} does not hold role {role!r} on {res}")
        self._changed(actor, "role.unassign", f"user:{user}", role=role, scope=str(res))
