"""API key administration: create (shown once), list, rotate with an overlap window, revoke."""

from __future__ import annotations

from typing import Any

from dwcore.auth.authz import Authorization
from dwcore.auth.core import KEY_NAME, utc, utc_or_none
from dwcore.auth.models import ApiKeyInfo, NewApiKey
from dwcore.auth.principal import Principal
from dwcore.auth.rbac import Resource
from dwcore.auth.tokens import (
    KEY_SCHEME,
    new_api_key,
)
from dwcore.errors import (
    InvalidArgumentError,
    NotFoundError,
)

__all__ = ["KeyAdmin"]


class KeyAdmin(Authorization):
    """API keys of users (own keys: ``key.own``; others': ``key.manage``)."""

    def _key_row(self, prefix: str) -> Any:
        prefix = prefix.removeprefix(f"{KEY_SCHEME}_").split("_")[0]
        row = self.db.one(
            "SELECT k.*, u.name AS user FROM api_keys k JOIN users u ON u.id = k.user_id "
            "WHERE k.prefix = ?",
            (prefix,),
        )
        if row is None:
            raise NotFoundError(
                f"no API key with prefix {prefix!r}; `dwcore key list` shows the keys"
            )
        return row

    def _require_key_rights(self, actor: Principal, owner: str) -> None:
        self.require(actor, "key.own" if owner == actor.name else "key.manage")

    def _insert_key(
        self, tx: Any, user_id: int, name: str, ttl_days: int
    ) -> tuple[str, str, float]:
        key, prefix, secret_digest = new_api_key()
        now = self._now()
        expires = now + ttl_days * 86400
        tx.execute(
            "INSERT INTO api_keys (prefix, secret_digest, user_id, name, created, expires) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (prefix, secret_digest, user_id, name, now, expires),
        )
        return key, prefix, expires

    def create_api_key(
        self,
        actor: Principal,
        user: str | None = None,
        *,
        name: str = "default",
        ttl_days: int | None = None,
    ) -> NewApiKey:
        """A new API key acting as *user* (default: the actor); the key is returned once.

        Own keys need ``key.own``, others' ``key.manage``.  Keys expire after
        *ttl_days* (default ``api_key_default_ttl_days``).
        """
        user = user if user is not None else actor.name
        ttl = self.policy.api_key_default_ttl_days if ttl_days is None else ttl_days
        if not isinstance(ttl, int) or not 1 <= ttl <= 3650:
            raise InvalidArgumentError(f"ttl_days = {ttl!r}: use 1 to 3650 days")
        if not KEY_NAME.fullmatch(name):
            raise InvalidArgumentError(f"bad key name {name!r}: 1-64 letters, digits, ' _.@-'")
        row = self._user_row(user)
        self._require_key_rights(actor, user)
        with self.db.transaction() as tx:
            key, prefix, expires = self._insert_key(tx, row["id"], name, ttl)
        self._changed(actor, "key.create", f"api_key:{prefix}", user=user, name=name)
        return NewApiKey(key, prefix, user, name, utc(expires))

    def list_api_keys(self, actor: Principal, user: str | None = None) -> list[ApiKeyInfo]:
        """Keys of *user* (default: all with ``key.read``, else one's own)."""
        if user is None and not actor.is_local_owner and actor.user_id is not None:
            allowed, _ = self._decide(actor, "key.read", Resource("instance"), None)
            user = None if allowed else actor.name
        if user is None or user != actor.name:
            self.require(actor, "key.read")
        else:
            self.require(actor, "key.own")
        sql = (
            "SELECT k.*, u.name AS user FROM api_keys k JOIN users u ON u.id = k.user_id"
            + (" WHERE u.name = ?" if user is not None else "")
            + " ORDER BY u.name, k.created"
        )
        rows = self.db.all(sql, (user,) if user is not None else ())
        return [
            ApiKeyInfo(
                r["prefix"],
                r["user"],
                r["name"],
                utc(r["created"]),
                utc_or_none(r["expires"]),
                utc_or_none(r["revoked"]),
                r["rotated_to"],
            )
            for r in rows
        ]

    def rotate_api_key(self, actor: Principal, prefix: str) -> NewApiKey:
        """A successor key; the old one stays valid for ``key_rotation_overlap_s`` more."""
        row = self._key_row(prefix)
        self._require_key_rights(actor, row["user"])
        now = self._now()
        if row["revoked"] is not None:
            raise InvalidArgumentError(
                f"API key {row['prefix']} is revoked; create a new key instead of rotating"
            )
        if row["rotated_to"]:
            raise InvalidArgumentError(
                f"API key {row['prefix']} was already rotated to {row['rotated_to']}; "
                f"rotate that one"
            )
        if row["expires"] is not None and now >= row["expires"]:
            raise InvalidArgumentError(
                f"API key {row['prefix']} has expired; create a new key instead of rotating"
            )
        ttl = self.policy.api_key_default_ttl_days
        overlap_end = now + self.policy.key_rotation_overlap_s
        with self.db.transaction() as tx:
            key, new_prefix, expires = self._insert_key(tx, row["user_id"], row["name"], ttl)
            tx.execute(
                "UPDATE api_keys SET rotated_to = ?, expires = MIN(COALESCE(expires, ?), ?) "
                "WHERE id = ?",
                (new_prefix, overlap_end, overlap_end, row["id"]),
            )
        self._changed(
            actor,
            "key.rotate",
            f"api_key:{row['prefix']}",
            new=new_prefix,
            old_valid_until=utc(min(row["expires"] or overlap_end, overlap_end)).isoformat(),
        )
        return NewApiKey(key, new_prefix, row["user"], row["name"], utc(expires))

    def revoke_api_key(self, actor: Principal, prefix: str) -> None:
        """Revoke a key at once."""
        row = self._key_row(prefix)
        self._require_key_rights(actor, row["user"])
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (self._now(), row["id"]),
            )
        self._changed(actor, "key.revoke", f"api_key:{row['prefix']}", user=row["user"])
