"""The one authorization decision point: deny by default, audited, guarded against escalation."""

from __future__ import annotations

from collections.abc import Iterable

from dwcore.audit import Category, Outcome
from dwcore.auth.core import AuthCore
from dwcore.auth.principal import Principal
from dwcore.auth.rbac import (
    ACTIONS,
    Decision,
    Resource,
    covers,
    covers_permission,
    is_privileged,
)
from dwcore.errors import (
    InvalidArgumentError,
    PermissionDeniedError,
)

__all__ = ["Authorization"]

#: Users whose grants are kept between decisions (all are dropped when it fills).
_GRANT_CACHE_USERS = 1024


class Authorization(AuthCore):
    """``authorize``/``require`` and the checks behind every grant."""

    def _grants(self, principal: Principal) -> list[tuple[str, Resource, str]]:
        """(role, scope, permission) for every permission the user holds.

        Kept per user until the auth database changes (any commit, from any
        connection): a role, assignment or account change applies to the next
        decision, and a request in between pays one pragma instead of a join."""
        version = self.db.version()
        cache = self._grant_cache
        hit = cache.get(principal.user_id)
        if hit is not None and hit[0] == version:
            return hit[1]
        rows = self.db.all(
            "SELECT a.role, a.scope, p.permission FROM role_assignments a "
            "JOIN users u ON u.id = a.user_id "
            "JOIN role_permissions p ON p.role = a.role "
            "WHERE u.id = ? AND u.disabled = 0",
            (principal.user_id,),
        )
        grants = [(r["role"], Resource.parse(r["scope"]), r["permission"]) for r in rows]
        if len(cache) >= _GRANT_CACHE_USERS:
            cache.clear()
        cache[principal.user_id] = (version, grants)
        return grants

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

    def _check_grantable(self, actor: Principal, action: str, permissions: Iterable[str]) -> None:
        for perm in permissions:
            if not self._holds(actor, perm, Resource("instance")):
                self._refuse(
                    actor,
                    action,
                    "instance",
                    f"{perm} is more than {actor.name} holds on the instance",
                )
