"""Users, roles, API keys, sessions and the authorization decision point.

``AuthService(root)`` is the facade (:mod:`dwcore.auth.service`); its
:meth:`~AuthService.authorize` / :meth:`~AuthService.require` is the one
place every layer asks "may this principal do this action on this
resource?".  :class:`AuthPolicy` holds the tunables (the ``[security]``
table of the configuration).  Secrets are stored only as argon2id/PBKDF2
hashes or SHA-256 digests.
"""

from dwcore.auth.models import ApiKeyInfo, Assignment, NewApiKey, NewSession, RoleInfo, UserInfo
from dwcore.auth.policy import AuthPolicy
from dwcore.auth.principal import Principal
from dwcore.auth.rbac import ACTIONS, DEFAULT_ROLES, PRIVILEGED, Decision, Resource
from dwcore.auth.service import AuthService

__all__ = [
    "ACTIONS",
    "DEFAULT_ROLES",
    "PRIVILEGED",
    "ApiKeyInfo",
    "Assignment",
    "AuthPolicy",
    "AuthService",
    "Decision",
    "NewApiKey",
    "NewSession",
    "Principal",
    "Resource",
    "RoleInfo",
    "UserInfo",
]
