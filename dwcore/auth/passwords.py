"""Password hashing: argon2id (argon2-cffi) or PBKDF2-HMAC-SHA256, compared in constant time.

Hashes are self-describing strings: argon2's PHC format
(``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) and
``$pbkdf2-sha256$i=<iterations>$<salt>$<hash>`` (unpadded base64), so a
stored hash always says how to check it, and :meth:`PasswordHasher.needs_rehash`
tells when the policy has moved on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dwcore.auth.policy import AuthPolicy

__all__ = ["PasswordHasher"]

_PBKDF2 = "$pbkdf2-sha256$"
_SALT_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class PasswordHasher:
    """Hash and check passwords under an :class:`AuthPolicy`."""

    def __init__(self, policy: AuthPolicy) -> None:
        self.policy = policy
        self._argon2 = argon2.PasswordHasher(
            time_cost=policy.argon2_time_cost,
            memory_cost=policy.argon2_memory_cost,
            parallelism=policy.argon2_parallelism,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        """A fresh salted hash of *password* with the policy's scheme and costs."""
        if self.policy.hash_scheme == "argon2id":
            return self._argon2.hash(password)
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = self._pbkdf2(password, salt, self.policy.pbkdf2_iterations)
        return f"{_PBKDF2}i={self.policy.pbkdf2_iterations}${_b64(salt)}${_b64(digest)}"

    def verify(self, stored: str, password: str) -> bool:
        """Whether *password* matches *stored*; the comparison is constant-time."""
        if stored.startswith(_PBKDF2):
            parsed = self._parse_pbkdf2(stored)
            if parsed is None:
                return False
            iterations, salt, expected = parsed
            return hmac.compare_digest(self._pbkdf2(password, salt, iterations), expected)
        try:
            return self._argon2.verify(stored, password)  # constant-time inside libargon2
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether *stored* uses another scheme or other costs than the policy."""
        if stored.startswith(_PBKDF2):
            parsed = self._parse_pbkdf2(stored)
            return (
                self.policy.hash_scheme != "pbkdf2-sha256"
                or parsed is None
                or parsed[0] != self.policy.pbkdf2_iterations
            )
        if self.policy.hash_scheme != "argon2id":
            return True
        try:
            return self._argon2.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a real check, for unknown users (uniform timing)."""
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self.hash(secrets.token_urlsafe(16))
        self.verify(self._dummy, password)

    @staticmethod
    def _pbkdf2(password: str, salt: bytes, iterations: int) -> bytes:
        return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)

    @staticmethod
    def _parse_pbkdf2(stored: str) -> tuple[int, bytes, bytes] | None:
        try:
            params, salt, digest = stored[len(_PBKDF2) :].split("$")
            if not params.startswith("i="):
                return None
            return int(params[2:]), _unb64(salt), _unb64(digest)
        except ValueError:
            return None
