"""User administration: list, set passwords, disable, delete."""

from __future__ import annotations

from dwcore.auth.authn import Authentication
from dwcore.auth.models import UserInfo
from dwcore.auth.principal import Principal

__all__ = ["UserAdmin"]


class UserAdmin(Authentication):
    """Administrative operations on users (``user.read``/``user.manage``)."""

    def list_users(self, actor: Principal) -> list[UserInfo]:
        """Every user (needs ``user.read``)."""
        self.require(actor, "user.read")
        names = [r["name"] for r in self.db.all("SELECT name FROM users ORDER BY name")]
        return [self.get_user(n) for n in names]

    def set_password(self, actor: Principal, name: str, password: str) -> None:
        """Set a user's password (``user.manage``); ends the user's sessions."""
        self._check_password(password)
        row = self._user_row(name)
        self.require(actor, "user.manage")
        self._store_password(actor, row, password)

    def disable_user(self, actor: Principal, name: str, disabled: bool = True) -> None:
        """Disable (or with ``disabled=False`` enable) a user; disabling ends its sessions."""
        row = self._user_row(name)
        self.require(actor, "user.manage")
        now = self._now()
        with self.db.transaction() as tx:
            tx.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), row["id"]))
            ended = self._revoke_sessions(tx, row["id"], now) if disabled else 0
        action = "user.disable" if disabled else "user.enable"
        self._changed(actor, action, f"user:{name}", sessions_revoked=ended)

    def delete_user(self, actor: Principal, name: str) -> None:
        """Delete a user with its keys, sessions and role assignments."""
        row = self._user_row(name)
        self.require(actor, "user.manage")
        if row["id"] == actor.user_id:
            self._refuse(actor, "user.manage", f"user:{name}", "one cannot delete oneself")
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM users WHERE id = ?", (row["id"],))
        self._changed(actor, "user.delete", f"user:{name}")
