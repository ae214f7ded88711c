"""``dwcore user|role|key ...``: manage users, roles and API keys of an instance.

Every command takes ``--root DIR`` (default ``$DWCORE_ROOT``, else
``./dwcore-data``) and acts as the local owner (``local:<os user>``), which
the audit log records.  Passwords are read from a hidden prompt with
confirmation, or from one line of stdin with ``--password-stdin``.  API keys
are printed once.  The security policy and the audit log's fsync interval
come from ``<root>/dwcore.toml`` when it exists (``[security]``,
``[audit]``).  Errors print one line and exit with status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dwcore.audit.log import AuditLog
from dwcore.auth.policy import AuthPolicy
from dwcore.auth.principal import Principal
from dwcore.auth.service import AuthService
from dwcore.errors import DWError, InvalidArgumentError
from dwcore.paths import AUTH_DB, CONFIG_FILE, resolve_root

__all__ = ["key_app", "role_app", "user_app"]

user_app = typer.Typer(help="Users: passwords and role assignments.", no_args_is_help=True)
role_app = typer.Typer(
    help="Roles: built-in and custom, with their permissions.", no_args_is_help=True
)
key_app = typer.Typer(help="API keys: create (shown once), rotate, revoke.", no_args_is_help=True)

RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Instance root (default: $DWCORE_ROOT, else ./dwcore-data).",
        show_default=False,
    ),
]
UserArg = Annotated[str, typer.Argument(help="User name.")]
RoleArg = Annotated[str, typer.Argument(help="Role name.")]
ScopeOpt = Annotated[
    str,
    typer.Option(
        "--scope",
        help="Where the role applies: instance, pool:<name>, compartment:<name>, "
        "object:<compartment>/<key>.",
    ),
]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
]
PrefixArg = Annotated[str, typer.Argument(help="The key's prefix (or the whole key).")]


def fail(exc: BaseException) -> NoReturn:
    """Print one error line and exit with status 1."""
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(str(exc))}", highlight=False
    )
    raise typer.Exit(1) from exc


@contextmanager
def opened(root: Path | None, *, create: bool = False) -> Iterator[tuple[AuthService, Principal]]:
    """The auth service of the instance at *root*, and the local owner acting on it.

    Only commands that add something (*create*) start a new auth database; the
    others refuse a root without one, so a mistyped ``--root`` is not taken
    for an empty instance.
    """
    where = resolve_root(root)
    if not create and not (where / AUTH_DB).exists():
        fail(
            InvalidArgumentError(
                f"no users, roles or keys at {where} (no {AUTH_DB}); check --root or "
                f"$DWCORE_ROOT, or start with `dwcore user add`"
            )
        )
    audit: AuditLog | None = None
    try:
        policy, audit = configured(where)
        service = AuthService(where, policy, audit=audit)
    except (DWError, OSError) as exc:
        if audit is not None:
            audit.close()
        fail(exc)
    try:
        yield service, Principal.local_owner()
    except (DWError, OSError) as exc:
        service.close()
        if audit is not None:
            audit.close()
        fail(exc)
    else:
        service.close()
        if audit is not None:
            audit.close()


def configured(root: Path) -> tuple[AuthPolicy | None, AuditLog | None]:
    """The ``[security]`` policy and the audit log of ``<root>/dwcore.toml``, if there is one.

    Without the file: the default policy and an audit log the service opens.
    An invalid file raises :class:`~dwcore.errors.ConfigError`.
    """
    path = root / CONFIG_FILE
    if not path.exists():
        return None, None
    from dwcore.config import auth_policy, load_config, open_audit_log

    config = load_config(path, resources=False)
    return auth_policy(config), open_audit_log(config, root)


def read_password(from_stdin: bool) -> str:
    """A new password from stdin or from a hidden prompt asked twice."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail(InvalidArgumentError("--password-stdin: no password on stdin"))
        return line.rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _out() -> Console:
    return Console(highlight=False)


# ------------------------------------------------------------------- users


@user_app.command("add")
def user_add(
    name: UserArg,
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="Role to assign (repeat).")
    ] = None,
    scope: ScopeOpt = "instance",
    password_stdin: StdinOpt = False,
    root: RootOpt = None,
) -> None:
    """Add a user with a password and, optionally, roles."""
    password = read_password(password_stdin)
    with opened(root, create=True) as (svc, me):
        info = svc.create_user(me, name, password, roles=role or [], scope=scope)
        roles = ", ".join(f"{a.role}@{a.scope}" for a in info.roles) or "no roles"
        _out().print(f"created user {info.name} ({roles})")


@user_app.command("list")
def user_list(root: RootOpt = None) -> None:
    """List users, their state and roles."""
    with opened(root) as (svc, me):
        table = Table("user", "state", "roles", "created")
        for u in svc.list_users(me):
            table.add_row(
                u.name,
                "disabled" if u.disabled else "active",
                ", ".join(f"{a.role}@{a.scope}" for a in u.roles),
                u.created.strftime("%Y-%m-%d %H:%M:%SZ"),
            )
        _out().print(table)


@user_app.command("passwd")
def user_passwd(name: UserArg, password_stdin: StdinOpt = False, root: RootOpt = None) -> None:
    """Set a user's password (ends the user's sessions)."""
    password = read_password(password_stdin)
    with opened(root) as (svc, me):
        svc.set_password(me, name, password)
        _out().print(f"password of {name} changed; its sessions were ended")


@user_app.command("disable")
def user_disable(name: UserArg, root: RootOpt = None) -> None:
    """Disable a user: no logins, keys or sessions work until it is enabled."""
    with opened(root) as (svc, me):
        svc.disable_user(me, name)
        _out().print(f"disabled {name}")


@user_app.command("enable")
def user_enable(name: UserArg, root: RootOpt = None) -> None:
    """Enable a disabled user."""
    with opened(root) as (svc, me):
        svc.disable_user(me, name, disabled=False)
        _out().print(f"enabled {name}")


@user_app.command("delete")
def user_delete(
    name: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    root: RootOpt = None,
) -> None:
    """Delete a user with its keys, sessions and role assignments."""
    if not yes:
        typer.confirm(f"Delete user {name} with its keys and sessions?", abort=True)
    with opened(root) as (svc, me):
        svc.delete_user(me, name)
        _out().print(f"deleted {name}")


@user_app.command("grant")
def user_grant(
    name: UserArg, role: RoleArg, scope: ScopeOpt = "instance", root: RootOpt = None
) -> None:
    """Assign ROLE to a user on a scope."""
    with opened(root) as (svc, me):
        svc.assign_role(me, name, role, scope)
        _out().print(f"granted {role} on {scope} to {name}")


@user_app.command("revoke")
def user_revoke(
    name: UserArg, role: RoleArg, scope: ScopeOpt = "instance", root: RootOpt = None
) -> None:
    """Take ROLE on a scope away from a user."""
    with opened(root) as (svc, me):
        svc.unassign_role(me, name, role, scope)
        _out().print(f"revoked {role} on {scope} from {name}")


# ------------------------------------------------------------------- roles


@role_app.command("list")
def role_list(root: RootOpt = None) -> None:
    """List roles and their permissions."""
    with opened(root) as (svc, me):
        table = Table("role", "kind", "permissions", "description")
        for r in svc.list_roles(me):
            kind = "built-in" if r.builtin else "custom"
            table.add_row(r.name, kind, " ".join(r.permissions), r.description)
        _out().print(table)


@role_app.command("create")
def role_create(
    name: RoleArg,
    permission: Annotated[
        list[str] | None,
        typer.Option("--permission", "-p", help="Permission, e.g. pool.read or backup.* (repeat)."),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the role is for.")] = "",
    root: RootOpt = None,
) -> None:
    """Create a custom role."""
    with opened(root, create=True) as (svc, me):
        info = svc.create_role(me, name, permission or [], description)
        _out().print(f"created role {info.name}: {' '.join(info.permissions) or 'no permissions'}")


@role_app.command("delete")
def role_delete(name: RoleArg, root: RootOpt = None) -> None:
    """Delete a custom role nobody holds."""
    with opened(root) as (svc, me):
        svc.delete_role(me, name)
        _out().print(f"deleted role {name}")


@role_app.command("grant-permission")
def role_grant_permission(
    name: RoleArg,
    permission: Annotated[str, typer.Argument(help="e.g. pool.read, backup.* or restore.pool.")],
    root: RootOpt = None,
) -> None:
    """Add a permission to a custom role."""
    with opened(root) as (svc, me):
        svc.grant_permission(me, name, permission)
        _out().print(f"role {name} now grants {permission}")


@role_app.command("revoke-permission")
def role_revoke_permission(
    name: RoleArg,
    permission: Annotated[str, typer.Argument(help="A permission the role has.")],
    root: RootOpt = None,
) -> None:
    """Remove a permission from a custom role."""
    with opened(root) as (svc, me):
        svc.revoke_permission(me, name, permission)
        _out().print(f"role {name} no longer grants {permission}")


# -------------------------------------------------------------------- keys


@key_app.command("create")
def key_create(
    user: Annotated[str, typer.Argument(help="The user the key acts as.")],
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "default",
    ttl_days: Annotated[
        int | None,
        typer.Option(
            "--ttl-days", help="Days until it expires (default: the policy's).", show_default=False
        ),
    ] = None,
    root: RootOpt = None,
) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    with opened(root) as (svc, me):
        new = svc.create_api_key(me, user, name=name, ttl_days=ttl_days)
        expires = new.expires.strftime("%Y-%m-%d %H:%M:%SZ") if new.expires else "never"
        Console(stderr=True, highlight=False).print(
            f"API key {new.prefix} for {new.user}, expires {expires}. "
            f"Store it now: it is not shown again."
        )
        typer.echo(new.key)


@key_app.command("list")
def key_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    root: RootOpt = None,
) -> None:
    """List API keys (prefixes and states; never the secrets)."""
    with opened(root) as (svc, me):
        now = svc.clock.now()
        table = Table("prefix", "user", "name", "state", "expires", "rotated to")
        for k in svc.list_api_keys(me, user):
            table.add_row(
                k.prefix,
                k.user,
                k.name,
                k.state(now),
                k.expires.strftime("%Y-%m-%d %H:%M:%SZ") if k.expires else "never",
                k.rotated_to or "",
            )
        _out().print(table)


@key_app.command("rotate")
def key_rotate(prefix: PrefixArg, root: RootOpt = None) -> None:
    """Make a successor key; the old one stays valid for the rotation overlap window."""
    with opened(root) as (svc, me):
        new = svc.rotate_api_key(me, prefix)
        overlap = svc.policy.key_rotation_overlap_s
        Console(stderr=True, highlight=False).print(
            f"new API key {new.prefix}; the old key works for {overlap} s more. "
            f"Store it now: it is not shown again."
        )
        typer.echo(new.key)


@key_app.command("revoke")
def key_revoke(prefix: PrefixArg, root: RootOpt = None) -> None:
    """Revoke an API key at once."""
    with opened(root) as (svc, me):
        svc.revoke_api_key(me, prefix)
        _out().print(f"revoked {prefix}")
