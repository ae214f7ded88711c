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

import math
import os
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from dwcore.audit import AuditLog, Category, Clock, Outcome, SystemClock
from dwcore.auth.lockout import LockoutState, after_failure, remaining
from dwcore.auth.models import ApiKeyInfo, Assignment, NewApiKey, NewSession, RoleInfo, UserInfo
from dwcore.auth.passwords import PasswordHasher
from dwcore.auth.policy import AuthPolicy
from dwcore.auth.principal import Principal
from dwcore.auth.rbac import (
    ACTIONS,
    DEFAULT_ROLES,
    Decision,
    Resource,
    covers,
    covers_permission,
    is_privileged,
    validate_permission,
)
from dwcore.auth.store import AuthDB
from dwcore.auth.tokens import (
    KEY_SCHEME,
    digest,
    digests_match,
    new_api_key,
    new_session_token,
    parse_api_key,
    session_digest,
)
from dwcore.errors import (
    AccountLockedError,
    AlreadyExistsError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from dwcore.paths import AUDIT_DIR, AUTH_DB

__all__ = ["AuthService"]

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@-]{0,63}")
_MAX_PASSWORD = 4096
_BAD_LOGIN = "invalid user name or password"


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _opt_dt(ts: float | None) -> datetime | None:
    return None if ts is None else _dt(ts)


class AuthService:
    """Users, roles, API keys, sessions and authorization for one instance root."""

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
        try:
            self.db = AuthDB(self.root / AUTH_DB)
        except BaseException:
            if self._own_audit:
                self.audit.close()
            raise
        self.hasher = PasswordHasher(self.policy)
        self._dummy_key_digest = digest(KEY_SCHEME, secrets.token_urlsafe(32))
        self._seed_roles()

    def close(self) -> None:
        """Close the database (and the audit log if this service opened it)."""
        self.db.close()
        if self._own_audit:
            self.audit.close()

    def __enter__(self) -> AuthService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------- helpers

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
        if len(password) > _MAX_PASSWORD:
            raise InvalidArgumentError(
                f"the password is too long ({len(password)} characters); use at most "
                f"{_MAX_PASSWORD}"
            )

    @staticmethod
    def _check_user_name(name: str) -> None:
        if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
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

    # ------------------------------------------------------- authorization

    def _grants(self, principal: Principal) -> list[tuple[str, Resource, str]]:
        """(role, scope, permission) for every permission the user holds."""
        rows = self.db.all(
            "SELECT a.role, a.scope, p.permission FROM role_assignments a "
            "JOIN users u ON u.id = a.user_id "
            "JOIN role_permissions p ON p.role = a.role "
            "WHERE u.id = ? AND u.disabled = 0",
            (principal.user_id,),
        )
        return [(r["role"], Resource.parse(r["scope"]), r["permission"]) for r in rows]

    def _decide(
        self, principal: Principal, action: str, res: Resource, owner: str | None
    ) -> tuple[bool, str]:
        if principal.is_local_owner:
            return True, "local owner"
        if principal.user_id is None:
            return False, "not an authenticated user"
        ownership_missing = False
        for role, scope, perm in self._grants(principal):
            if not (scope.contains(res) and covers(perm, action)):
                continue
            if perm == action == "restore.own" and owner != principal.name:
                ownership_missing = True  # an owner of None never matches
                continue
            return True, f"role {role} on {scope} grants {perm}"
        if ownership_missing:
            return False, f"restore.own applies only to what {principal.name} owns"
        return False, f"no role of {principal.name} grants {action} on {res}"

    def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str | Resource,
        *,
        owner: str | None = None,
    ) -> Decision:
        """The one decision point: may *principal* do *action* on *resource*?

        Deny by default.  *owner* is the owner of the resource where that
        matters (``restore.own``).  Decisions on privileged actions are
        audited, denials always; a denied privileged action also opens a
        security incident.
        """
        if action not in ACTIONS:
            raise InvalidArgumentError(
                f"unknown action {action!r}; known actions: {', '.join(sorted(ACTIONS))}"
            )
        res = Resource.parse(resource)
        allowed, reason = self._decide(principal, action, res, owner)
        decision = Decision(allowed, principal.name, action, str(res), reason)
        if is_privileged(action) or not allowed:
            self._audit(
                Category.AUTHORIZATION,
                action,
                principal,
                str(res),
                Outcome.SUCCESS if allowed else Outcome.DENIED,
                {"reason": reason},
            )
        if not allowed and is_privileged(action):
            self.audit.incident(
                "authz.denied_privileged",
                principal.name,
                str(res),
                {"action": action, "reason": reason, **principal.audit_details()},
                outcome=Outcome.DENIED,
            )
        return decision

    def require(
        self,
        principal: Principal,
        action: str,
        resource: str | Resource = "instance",
        *,
        owner: str | None = None,
    ) -> Decision:
        """:meth:`authorize`, raising :class:`PermissionDeniedError` on a denial."""
        decision = self.authorize(principal, action, resource, owner=owner)
        if not decision.allowed:
            raise PermissionDeniedError(
                f"{principal.name} may not {action} on {decision.resource}: {decision.reason}; "
                f"an administrator can grant a role that allows it"
            )
        return decision

    def _holds(self, principal: Principal, permission: str, scope: Resource) -> bool:
        if principal.is_local_owner:
            return True
        return any(
            s.contains(scope) and covers_permission(perm, permission)
            for _role, s, perm in self._grants(principal)
        )

    def _refuse(self, actor: Principal, action: str, resource: str, why: str) -> None:
        self._audit(
            Category.AUTHORIZATION, action, actor, resource, Outcome.DENIED, {"reason": why}
        )
        self.audit.incident(
            "authz.escalation_refused",
            actor.name,
            resource,
            {"action": action, "reason": why, **actor.audit_details()},
            outcome=Outcome.DENIED,
        )
        raise PermissionDeniedError(f"{actor.name} may not {action} on {resource}: {why}")

    # ------------------------------------------------------ authentication

    def _lockout(self, name: str) -> LockoutState | None:
        row = self.db.one("SELECT * FROM login_failures WHERE name = ?", (name,))
        if row is None:
            return None
        return LockoutState(
            row["failures"], row["window_start"], row["locked_until"], row["lockouts"]
        )

    def _login_failed(self, name: str, now: float, reason: str) -> None:
        if _USER_NAME.fullmatch(name):
            state, locked_for = after_failure(self._lockout(name), now, self.policy)
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT OR REPLACE INTO login_failures "
                    "(name, failures, window_start, locked_until, lockouts) VALUES (?,?,?,?,?)",
                    (name, state.failures, state.window_start, state.locked_until, state.lockouts),
                )
                horizon = now - self.policy.lockout_window_s - self.policy.lockout_max_s
                tx.execute(
                    "DELETE FROM login_failures WHERE window_start < ? AND locked_until < ?",
                    (horizon, horizon),
                )
        else:
            locked_for = 0.0
        who = name if _USER_NAME.fullmatch(name) else "unknown"
        self._audit(
            Category.AUTHENTICATION,
            "login",
            who,
            f"user:{who}",
            Outcome.FAILURE,
            {"reason": reason},
        )
        if locked_for:
            self.audit.incident(
                "auth.lockout",
                who,
                f"user:{who}",
                {
                    "failures": self.policy.lockout_threshold,
                    "window_s": self.policy.lockout_window_s,
                    "locked_for_s": locked_for,
                },
            )

    def authenticate_password(self, name: str, password: str) -> Principal:
        """Check a user name and password; the principal, or :class:`AuthenticationError`.

        Unknown users cost the same hash computation as known ones; repeated
        failures lock the name out (:class:`AccountLockedError`, with
        back-off); a hash made with older parameters is replaced.
        """
        now = self._now()
        wait = remaining(self._lockout(name), now) if isinstance(name, str) else 0.0
        if wait > 0:
            self._audit(
                Category.AUTHENTICATION,
                "login",
                name,
                f"user:{name}",
                Outcome.FAILURE,
                {"reason": "locked out", "retry_after_s": math.ceil(wait)},
            )
            raise AccountLockedError(
                f"too many failed logins for {name!r}; try again in {math.ceil(wait)} s",
                wait,
            )
        row = self.db.one("SELECT * FROM users WHERE name = ?", (name,))
        if row is None or not row["password_hash"] or not isinstance(password, str):
            self.hasher.dummy_verify(password if isinstance(password, str) else "")
            ok = False
        else:
            ok = self.hasher.verify(row["password_hash"], password)
        if not ok:
            self._login_failed(str(name), now, "bad credentials")
            raise AuthenticationError(_BAD_LOGIN)
        if row["disabled"]:
            self._audit(
                Category.AUTHENTICATION,
                "login",
                name,
                f"user:{name}",
                Outcome.FAILURE,
                {"reason": "disabled"},
            )
            raise AuthenticationError(
                f"account {name!r} is disabled; an administrator can enable it"
            )
        rehashed = self.hasher.needs_rehash(row["password_hash"])
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM login_failures WHERE name = ?", (name,))
            if rehashed:
                tx.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?",
                    (self.hasher.hash(password), row["id"]),
                )
        principal = Principal(name, "user", row["id"], "password")
        self._audit(
            Category.AUTHENTICATION,
            "login",
            principal,
            f"user:{name}",
            Outcome.SUCCESS,
            {"rehashed": rehashed},
        )
        return principal

    def login(self, name: str, password: str) -> NewSession:
        """Check the password and open a session (see :meth:`open_session`)."""
        return self.open_session(self.authenticate_password(name, password))

    def open_session(self, principal: Principal) -> NewSession:
        """A new session for an authenticated user; the token is returned once."""
        if principal.user_id is None:
            raise InvalidArgumentError("sessions are for users; the local owner needs none")
        token, token_digest = new_session_token()
        session_id = secrets.token_hex(8)
        now = self._now()
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO sessions (id, token_digest, user_id, created, last_seen) "
                "VALUES (?, ?, ?, ?, ?)",
                (session_id, token_digest, principal.user_id, now, now),
            )
        bound = Principal(principal.name, "user", principal.user_id, "session", session_id)
        self._audit(
            Category.AUTHENTICATION, "session.open", bound, f"user:{bound.name}", Outcome.SUCCESS
        )
        start = self.clock.now()
        return NewSession(
            token,
            session_id,
            bound,
            start + timedelta(seconds=self.policy.session_idle_s),
            start + timedelta(seconds=self.policy.session_absolute_s),
        )

    def _session_failed(self, reason: str, session_id: str | None) -> None:
        details: dict[str, Any] = {"reason": reason}
        if session_id:
            details["session"] = session_id
        self._audit(
            Category.AUTHENTICATION, "session.check", "unknown", "session", Outcome.FAILURE, details
        )

    def authenticate_session(self, token: str) -> Principal:
        """The user a session token belongs to; refreshes its idle timer."""
        wanted = session_digest(token) if isinstance(token, str) else ""
        row = self.db.one(
            "SELECT s.*, u.name, u.disabled FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.token_digest = ?",
            (wanted,),
        )
        if row is None or not digests_match(row["token_digest"], wanted):
            self._session_failed("unknown token", None)
            raise AuthenticationError("invalid session token; log in again")
        now = self._now()
        sid = row["id"]
        if row["revoked"] is not None:
            self._session_failed("revoked", sid)
            raise AuthenticationError("the session was revoked; log in again")
        if now - row["created"] >= self.policy.session_absolute_s:
            self._session_failed("absolute expiry", sid)
            raise AuthenticationError(
                f"the session expired (at most {self.policy.session_absolute_s} s after "
                f"login); log in again"
            )
        if now - row["last_seen"] >= self.policy.session_idle_s:
            self._session_failed("idle expiry", sid)
            raise AuthenticationError(
                f"the session expired after {self.policy.session_idle_s} s idle; log in again"
            )
        if row["disabled"]:
            self._session_failed("account disabled", sid)
            raise AuthenticationError(f"account {row['name']!r} is disabled")
        with self.db.transaction() as tx:
            tx.execute("UPDATE sessions SET last_seen = ? WHERE id = ?", (now, sid))
        return Principal(row["name"], "user", row["user_id"], "session", sid)

    def logout(self, token: str) -> None:
        """Revoke the session of *token* (nothing if it is unknown)."""
        wanted = session_digest(token)
        now = self._now()
        with self.db.transaction() as tx:
            row = tx.execute(
                "SELECT s.id, u.name FROM sessions s JOIN users u ON u.id = s.user_id "
                "WHERE token_digest = ?",
                (wanted,),
            ).fetchone()
            if row is None:
                return
            tx.execute("UPDATE sessions SET revoked = ? WHERE id = ?", (now, row["id"]))
        self._audit(
            Category.AUTHENTICATION,
            "session.close",
            row["name"],
            f"user:{row['name']}",
            Outcome.SUCCESS,
            {"session": row["id"]},
        )

    def revoke_session(self, actor: Principal, session_id: str) -> None:
        """Revoke a session by id (one's own, or anyone's with ``user.manage``)."""
        row = self.db.one(
            "SELECT s.id, s.user_id, u.name FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id = ?",
            (session_id,),
        )
        if row is None:
            raise NotFoundError(f"no session {session_id!r}")
        if row["user_id"] != actor.user_id:
            self.require(actor, "user.manage")
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE sessions SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (self._now(), session_id),
            )
        self._changed(actor, "session.revoke", f"user:{row['name']}", session=session_id)

    def authenticate_key(self, key: str) -> Principal:
        """The user an API key acts for; refuses expired, rotated-out and revoked keys."""
        try:
            prefix, secret = parse_api_key(key)
        except AuthenticationError:
            self._audit(
                Category.AUTHENTICATION,
                "key.check",
                "unknown",
                "api_key",
                Outcome.FAILURE,
                {"reason": "malformed"},
            )
            raise
        row = self.db.one(
            "SELECT k.*, u.name AS user, u.disabled FROM api_keys k "
            "JOIN users u ON u.id = k.user_id WHERE k.prefix = ?",
            (prefix,),
        )
        stored = row["secret_digest"] if row is not None else self._dummy_key_digest
        match = digests_match(stored, digest(KEY_SCHEME, secret))
        now = self._now()
        reason = None
        message = "invalid API key"
        if row is None or not match:
            reason = "unknown key or wrong secret"
        elif row["revoked"] is not None:
            reason, message = "revoked", f"API key {KEY_SCHEME}_{prefix} was revoked"
        elif row["expires"] is not None and now >= row["expires"]:
            reason = "expired"
            if row["rotated_to"]:
                message = (
                    f"API key {KEY_SCHEME}_{prefix} was rotated to {KEY_SCHEME}_"
                    f"{row['rotated_to']} and its overlap window has ended; use the new key"
                )
            else:
                message = f"API key {KEY_SCHEME}_{prefix} has expired; create a new one"
        elif row["disabled"]:
            reason, message = "account disabled", f"account {row['user']!r} is disabled"
        if reason is not None:
            self._audit(
                Category.AUTHENTICATION,
                "key.check",
                row["user"] if row is not None and match else "unknown",
                f"api_key:{prefix}",
                Outcome.FAILURE,
                {"reason": reason},
            )
            raise AuthenticationError(message)
        return Principal(row["user"], "user", row["user_id"], "api_key", prefix)

    # ---------------------------------------------------------------- users

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

    def get_user(self, name: str) -> UserInfo:
        """A user and its role assignments."""
        row = self._user_row(name)
        return UserInfo(
            row["name"], bool(row["disabled"]), _dt(row["created"]), self._assignments(row["id"])
        )

    def _assignments(self, user_id: int) -> tuple[Assignment, ...]:
        rows = self.db.all(
            "SELECT role, scope FROM role_assignments WHERE user_id = ? ORDER BY role, scope",
            (user_id,),
        )
        return tuple(Assignment(r["role"], r["scope"]) for r in rows)

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

    def change_password(self, name: str, old_password: str, new_password: str) -> None:
        """A user changes its own password, proving the old one; ends its sessions."""
        self._check_password(new_password)
        principal = self.authenticate_password(name, old_password)
        self._store_password(principal, self._user_row(name), new_password)

    def _store_password(self, actor: Principal, row: Any, password: str) -> None:
        password_hash = self.hasher.hash(password)
        now = self._now()
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE users SET password_hash = ?, password_changed = ? WHERE id = ?",
                (password_hash, now, row["id"]),
            )
            ended = self._revoke_sessions(tx, row["id"], now)
            tx.execute("DELETE FROM login_failures WHERE name = ?", (row["name"],))
        self._changed(actor, "user.passwd", f"user:{row['name']}", sessions_revoked=ended)

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

    # ---------------------------------------------------------------- roles

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

    def _check_grantable(self, actor: Principal, action: str, permissions: Iterable[str]) -> None:
        for perm in permissions:
            if not self._holds(actor, perm, Resource("instance")):
                self._refuse(
                    actor,
                    action,
                    "instance",
                    f"{perm} is more than {actor.name} holds on the instance",
                )

    def create_role(
        self,
        actor: Principal,
        name: str,
        permissions: Iterable[str] = (),
        description: str = "",
    ) -> RoleInfo:
        """A custom role; one can only put in it what one holds (``role.manage``)."""
        if not isinstance(name, str) or not _ROLE_NAME.fullmatch(name):
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

    # ------------------------------------------------------------- API keys

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
        if not _KEY_NAME.fullmatch(name):
            raise InvalidArgumentError(f"bad key name {name!r}: 1-64 letters, digits, ' _.@-'")
        row = self._user_row(user)
        self._require_key_rights(actor, user)
        with self.db.transaction() as tx:
            key, prefix, expires = self._insert_key(tx, row["id"], name, ttl)
        self._changed(actor, "key.create", f"api_key:{prefix}", user=user, name=name)
        return NewApiKey(key, prefix, user, name, _dt(expires))

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
                _dt(r["created"]),
                _opt_dt(r["expires"]),
                _opt_dt(r["revoked"]),
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
            old_valid_until=_dt(min(row["expires"] or overlap_end, overlap_end)).isoformat(),
        )
        return NewApiKey(key, new_prefix, row["user"], row["name"], _dt(expires))

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
