"""Roles, permissions and resources: the vocabulary of the authorization decision.

Resources form a hierarchy: ``instance`` contains every ``pool:<name>`` and
``compartment:<name>``; a compartment contains its objects
``object:<compartment>/<key>``.  A role is a set of permissions (actions
such as ``pool.create``, wildcards such as ``pool.*``, or ``*``); a role is
assigned to a user on a scope (a resource), and grants its permissions on
that scope and everything inside it.  Restore permissions nest:
``restore.instance`` covers every restore, ``restore.compartment`` covers
``restore.own`` inside the compartment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dwcore.errors import InvalidArgumentError

__all__ = [
    "ACTIONS",
    "DEFAULT_ROLES",
    "PRIVILEGED",
    "Decision",
    "Resource",
    "covers",
    "covers_permission",
    "is_privileged",
    "validate_permission",
]

#: Every action the decision point knows.
ACTIONS: frozenset[str] = frozenset(
    {
        "instance.read",
        "config.read",
        "config.write",
        "audit.read",
        "audit.verify",
        "user.read",
        "user.manage",
        "role.read",
        "role.manage",
        "role.grant",
        "key.read",
        "key.manage",
        "key.own",
        "pool.read",
        "pool.create",
        "pool.delete",
        "pool.manage",
        "compartment.read",
        "compartment.create",
        "compartment.delete",
        "compartment.manage",
        "object.read",
        "object.write",
        "object.delete",
        "snapshot.read",
        "snapshot.create",
        "snapshot.delete",
        "backup.read",
        "backup.create",
        "backup.delete",
        "restore.own",
        "restore.compartment",
        "restore.pool",
        "restore.instance",
    }
)

#: Actions whose every decision is audited, and whose denial opens an incident.
PRIVILEGED: frozenset[str] = frozenset(
    {
        "config.write",
        "audit.verify",
        "user.manage",
        "role.manage",
        "role.grant",
        "key.manage",
        "pool.create",
        "pool.delete",
        "pool.manage",
        "compartment.create",
        "compartment.delete",
        "compartment.manage",
        "snapshot.delete",
        "backup.delete",
        "restore.compartment",
        "restore.pool",
        "restore.instance",
    }
)

_READS = frozenset(a for a in ACTIONS if a.endswith(".read"))

#: The four built-in roles; they cannot be changed or deleted.
DEFAULT_ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "operator": frozenset(
        {
            "instance.read",
            "config.read",
            "audit.read",
            "user.read",
            "role.read",
            "key.own",
            "pool.*",
            "compartment.*",
            "object.read",
            "snapshot.*",
            "backup.*",
            "restore.own",
            "restore.compartment",
            "restore.pool",
        }
    ),
    "user": frozenset(
        {
            "instance.read",
            "key.own",
            "compartment.read",
            "object.read",
            "object.write",
            "object.delete",
            "snapshot.read",
            "restore.own",
        }
    ),
    "auditor": _READS - {"object.read"} | {"audit.verify"},
}

#: A permission also grants the actions listed for it (restore nesting).
_IMPLIES: dict[str, frozenset[str]] = {
    "restore.instance": frozenset({"restore.pool", "restore.compartment", "restore.own"}),
    "restore.compartment": frozenset({"restore.own"}),
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_KINDS = ("instance", "pool", "compartment", "object")


def is_privileged(action: str) -> bool:
    """Whether decisions on *action* are always audited."""
    return action in PRIVILEGED


def validate_permission(permission: str) -> str:
    """*permission* if it is a known action, ``<area>.*`` of a known area, or ``*``."""
    if permission == "*" or permission in ACTIONS:
        return permission
    if permission.endswith(".*") and any(a.startswith(permission[:-1]) for a in ACTIONS):
        return permission
    areas = sorted({a.split(".")[0] for a in ACTIONS})
    raise InvalidArgumentError(
        f"unknown permission {permission!r}: use an action such as pool.read, "
        f"'<area>.*' or '*' (areas: {', '.join(areas)})"
    )


def covers(granted: str, action: str) -> bool:
    """Whether the permission *granted* allows *action* (wildcards and restore nesting)."""
    if granted == "*" or granted == action:
        return True
    if granted.endswith(".*") and action.startswith(granted[:-1]):
        return True
    return action in _IMPLIES.get(granted, frozenset())


@dataclass(frozen=True)
class Resource:
    """``instance``, ``pool:<name>``, ``compartment:<name>`` or ``object:<compartment>/<key>``."""

    kind: str
    name: str = ""
    key: str = ""

    @classmethod
    def parse(cls, text: str | Resource) -> Resource:
        """Parse the textual form; the error says which forms exist."""
        if isinstance(text, Resource):
            return text
        usage = (
            "use instance, pool:<name>, compartment:<name> or object:<compartment>/<key> "
            "(names: letters, digits, '.', '_', '-')"
        )
        if text == "instance":
            return cls("instance")
        kind, sep, rest = text.partition(":")
        if not sep or kind not in _KINDS[1:]:
            raise InvalidArgumentError(f"not a resource: {text!r}; {usage}")
        if kind == "object":
            compartment, slash, key = rest.partition("/")
            if not slash or not key or not _NAME.fullmatch(compartment):
                raise InvalidArgumentError(f"not an object resource: {text!r}; {usage}")
            return cls("object", compartment, key)
        if not _NAME.fullmatch(rest):
            raise InvalidArgumentError(f"bad {kind} name in {text!r}; {usage}")
        return cls(kind, rest)

    def __str__(self) -> str:
        if self.kind == "instance":
            return "instance"
        if self.kind == "object":
            return f"object:{self.name}/{self.key}"
        return f"{self.kind}:{self.name}"

    def contains(self, other: Resource) -> bool:
        """Whether *other* is this resource or inside it."""
        if self.kind == "instance" or self == other:
            return True
        return self.kind == "compartment" and other.kind == "object" and other.name == self.name


@dataclass(frozen=True)
class Decision:
    """The outcome of one authorization: allowed or not, and why."""

    allowed: bool
    principal: str
    action: str
    resource: str
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def covers_permission(held: str, wanted: str) -> bool:
    """Whether holding permission *held* includes all of permission *wanted* (wildcards too).

    Used against privilege escalation: nobody grants a permission they do not
    hold in full.
    """
    if wanted == "*":
        return held == "*"
    if wanted.endswith(".*"):
        return held in ("*", wanted)
    return covers(held, wanted)
