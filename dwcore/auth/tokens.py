"""API keys and session tokens: generated from 256 random bits, stored only as hashes.

An API key reads ``dwk_<prefix>_<secret>``: the 12-hex-digit prefix is public
and finds the key's row; the secret (32 random bytes, base64url) is stored
as a SHA-256 digest, which is enough for a secret of that entropy, and
compared in constant time.  A session token ``dws_<secret>`` is found by its
digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from dwcore.errors import AuthenticationError

__all__ = [
    "KEY_SCHEME",
    "SESSION_SCHEME",
    "digest",
    "digests_match",
    "new_api_key",
    "new_session_token",
    "parse_api_key",
    "session_digest",
]

KEY_SCHEME = "dwk"
SESSION_SCHEME = "dws"
_SECRET_BYTES = 32
_KEY = re.compile(r"dwk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def _secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode().rstrip("=")


def digest(kind: str, secret: str) -> str:
    """SHA-256 (hex) of a secret, separated by *kind* so a key never matches a session."""
    return hashlib.sha256(f"dwcore-{kind}\0{secret}".encode()).hexdigest()


def digests_match(a: str, b: str) -> bool:
    """Constant-time equality of two digests."""
    return hmac.compare_digest(a.encode(), b.encode())


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: ``(key, prefix, digest of the secret)``; show *key* once, store the rest."""
    prefix = secrets.token_hex(6)
    secret = _secret()
    return f"{KEY_SCHEME}_{prefix}_{secret}", prefix, digest(KEY_SCHEME, secret)


def parse_api_key(key: str) -> tuple[str, str]:
    """``(prefix, secret)`` of a key; :class:`AuthenticationError` if it is not one."""
    m = _KEY.fullmatch(key.strip())
    if m is None:
        raise AuthenticationError(
            "malformed API key: expected dwk_<12 hex digits>_<43 base64url characters>"
        )
    return m.group(1), m.group(2)


def new_session_token() -> tuple[str, str]:
    """A fresh session token and the digest to store."""
    secret = _secret()
    return f"{SESSION_SCHEME}_{secret}", digest(SESSION_SCHEME, secret)


def session_digest(token: str) -> str:
    """The stored digest of a session token (any string; a bad one matches nothing)."""
    secret = token.strip()
    if secret.startswith(SESSION_SCHEME + "_"):
        secret = secret[len(SESSION_SCHEME) + 1 :]
    return digest(SESSION_SCHEME, secret)
