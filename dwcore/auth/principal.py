"""Who is acting: a user (by password, session or API key) or the local owner."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Literal

__all__ = ["Principal"]


@dataclass(frozen=True)
class Principal:
    """An authenticated actor.

    ``kind`` is ``"user"`` or ``"local_owner"``; ``via`` says how it
    authenticated (``password``, ``session``, ``api_key`` or ``local``) and
    ``credential`` names the session id or key prefix used.  Roles are not
    copied here: every decision reads the current assignments, so a revoked
    role takes effect at once.

    Principals come from :class:`~dwcore.auth.AuthService`'s
    ``authenticate_*`` methods or :meth:`local_owner`; never build one from
    request data, since the decision point trusts what it is given.
    """

    name: str
    kind: Literal["user", "local_owner"] = "user"
    user_id: int | None = None
    via: str = "password"
    credential: str | None = None

    @classmethod
    def local_owner(cls, os_user: str | None = None) -> Principal:
        """The operator of an embedded instance (the OS user): allowed everything, audited.

        Named ``local:<os user>``; user names cannot contain ``:``, so it
        never collides with a user.
        """
        try:
            who = os_user or getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers)
            who = "unknown"
        return cls(name=f"local:{who}", kind="local_owner", via="local")

    @property
    def is_local_owner(self) -> bool:
        """Whether this is the local owner."""
        return self.kind == "local_owner"

    def audit_details(self) -> dict[str, str]:
        """How the principal authenticated, for audit records."""
        out = {"via": self.via}
        if self.credential:
            out["credential"] = self.credential
        return out
