"""Authentication: passwords with lockout, sessions, API keys."""

from __future__ import annotations

import math
import secrets
from datetime import timedelta
from typing import Any

from dwcore.audit import Category, Outcome
from dwcore.auth.authz import Authorization
from dwcore.auth.core import BAD_LOGIN, USER_NAME
from dwcore.auth.lockout import LockoutState, after_failure, remaining
from dwcore.auth.models import NewSession
from dwcore.auth.principal import Principal
from dwcore.auth.tokens import (
    KEY_SCHEME,
    digest,
    digests_match,
    new_session_token,
    parse_api_key,
    session_digest,
)
from dwcore.errors import (
    AccountLockedError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
)

__all__ = ["Authentication"]


class Authentication(Authorization):
    """Check credentials and turn them into a :class:`Principal`."""

    def _lockout(self, name: str) -> LockoutState | None:
        row = self.db.one("SELECT * FROM login_failures WHERE name = ?", (name,))
        if row is None:
            return None
        return LockoutState(
            row["failures"], row["window_start"], row["locked_until"], row["lockouts"]
        )

    def _login_failed(self, name: str, now: float, reason: str) -> None:
        if USER_NAME.fullmatch(name):
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
        who = name if USER_NAME.fullmatch(name) else "unknown"
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
        if not ok or row is None:
            self._login_failed(str(name), now, "bad credentials")
            raise AuthenticationError(BAD_LOGIN)
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
        if reason is not None or row is None:
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
