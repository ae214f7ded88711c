"""dwcore.auth: passwords, lockout, sessions, API keys, RBAC and escalation guards."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dwcore.audit import AuditLog, ManualClock, query
from dwcore.auth import AuthPolicy, AuthService, Principal, Resource
from dwcore.auth.passwords import PasswordHasher
from dwcore.auth.policy import OWASP_MIN
from dwcore.errors import (
    AccountLockedError,
    AlreadyExistsError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)

FAST = AuthPolicy(
    argon2_time_cost=1,
    argon2_memory_cost=8,
    argon2_parallelism=1,
    pbkdf2_iterations=1000,
    lockout_threshold=3,
    lockout_window_s=60,
    lockout_base_s=10,
    lockout_max_s=40,
    session_idle_s=600,
    session_absolute_s=3600,
    api_key_default_ttl_days=30,
    key_rotation_overlap_s=3600,
)
PW = "correct horse battery"
OWNER = Principal.local_owner("tester")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 5, 1, 12, tzinfo=timezone.utc))


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit"


@pytest.fixture
def svc(tmp_path: Path, clock: ManualClock, audit_dir: Path) -> Iterator[AuthService]:
    log = AuditLog(audit_dir, clock=clock, background=False)
    service = AuthService(tmp_path, FAST, clock=clock, audit=log)
    yield service
    service.close()
    log.close()


def make(svc: AuthService, name: str, *roles: str, scope: str = "instance") -> Principal:
    svc.create_user(OWNER, name, PW, roles=roles, scope=scope)
    return svc.authenticate_password(name, PW)


def records(svc: AuthService, **filters: str) -> list:
    svc.audit.flush()
    return list(query(svc.audit.directory, **filters))


# ------------------------------------------------------------------- policy


def test_defaults_meet_owasp() -> None:
    policy = AuthPolicy()
    assert policy.hash_scheme == "argon2id" and policy.meets_owasp()
    assert policy.argon2_memory_cost >= OWASP_MIN["argon2_memory_cost"] == 19456
    assert policy.argon2_time_cost >= 2
    assert policy.pbkdf2_iterations >= 600_000
    assert AuthPolicy(hash_scheme="pbkdf2-sha256").meets_owasp()
    assert not FAST.meets_owasp()


def test_policy_field_names_are_the_config_keys() -> None:
    assert [f.name for f in dataclasses.fields(AuthPolicy)] == [
        "hash_scheme", "argon2_time_cost", "argon2_memory_cost", "argon2_parallelism",
        "pbkdf2_iterations", "lockout_threshold", "lockout_window_s", "lockout_base_s",
        "lockout_max_s", "session_idle_s", "session_absolute_s", "api_key_default_ttl_days",
        "key_rotation_overlap_s", "min_password_length",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("hash_scheme", "md5", "hash_scheme"),
        ("pbkdf2_iterations", 10, "pbkdf2_iterations"),
        ("lockout_threshold", 0, "lockout_threshold"),
        ("session_idle_s", True, "session_idle_s"),
        ("min_password_length", 4, "min_password_length"),
        ("lockout_max_s", 5, "lockout_max_s"),
    ],
)
def test_policy_rejects_bad_values(field: str, value: object, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        AuthPolicy(**{field: value})  # type: ignore[arg-type]


# ----------------------------------------------------------------- passwords


@pytest.mark.parametrize("scheme", ["argon2id", "pbkdf2-sha256"])
def test_hash_and_verify(scheme: str) -> None:
    hasher = PasswordHasher(dataclasses.replace(FAST, hash_scheme=scheme))  # type: ignore[arg-type]
    stored = hasher.hash(PW)
    assert PW not in stored and stored.startswith("$argon2id$" if scheme == "argon2id" else "$pbk")
    assert hasher.verify(stored, PW)
    assert not hasher.verify(stored, PW + "x")
    assert hasher.hash(PW) != stored  # salted
    assert not hasher.needs_rehash(stored)
    assert not hasher.verify("$pbkdf2-sha256$garbage", PW)
    assert not hasher.verify("nonsense", PW)


def test_pbkdf2_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = PasswordHasher(dataclasses.replace(FAST, hash_scheme="pbkdf2-sha256"))
    stored = hasher.hash(PW)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert hasher.verify(stored, PW) and not hasher.verify(stored, "wrong password!")
    assert len(calls) == 2


def test_wrong_password_and_unknown_user_look_alike(
    svc: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(svc, "alice", "user")
    hashed: list[str] = []
    real = svc.hasher.verify

    def spy(stored: str, password: str) -> bool:
        hashed.append(stored)
        return real(stored, password)

    monkeypatch.setattr(svc.hasher, "verify", spy)
    with pytest.raises(AuthenticationError) as wrong:
        svc.authenticate_password("alice", "not the password")
    with pytest.raises(AuthenticationError) as unknown:
        svc.authenticate_password("mallory", "not the password")
    assert str(wrong.value) == str(unknown.value) == "invalid user name or password"
    assert len(hashed) == 2  # the unknown user still cost a hash check
    assert hashed[1].startswith("$argon2id$")


def test_rehash_on_login_after_policy_change(
    tmp_path: Path, clock: ManualClock, svc: AuthService
) -> None:
    make(svc, "alice", "user")
    before = svc.db.one("SELECT password_hash FROM users WHERE name='alice'")["password_hash"]
    svc.close()
    stronger = dataclasses.replace(FAST, hash_scheme="pbkdf2-sha256", pbkdf2_iterations=2000)
    with AuthService(tmp_path, stronger, clock=clock, audit=svc.audit) as again:
        again.authenticate_password("alice", PW)
        after = again.db.one("SELECT password_hash FROM users WHERE name='alice'")["password_hash"]
        assert before.startswith("$argon2id$") and after.startswith("$pbkdf2-sha256$i=2000$")
        again.authenticate_password("alice", PW)  # the new hash works


def test_password_rules(svc: AuthService) -> None:
    with pytest.raises(InvalidArgumentError, match="too short"):
        svc.create_user(OWNER, "bob", "short")
    with pytest.raises(InvalidArgumentError, match="user name"):
        svc.create_user(OWNER, "bad:name", PW)
    svc.create_user(OWNER, "bob", PW)
    with pytest.raises(AlreadyExistsError):
        svc.create_user(OWNER, "bob", PW)


# ------------------------------------------------------------------ lockout


def test_lockout_and_exponential_backoff(svc: AuthService, clock: ManualClock) -> None:
    make(svc, "alice", "user")

    def fail_until_locked() -> AccountLockedError:
        for _ in range(FAST.lockout_threshold):
            with pytest.raises(AuthenticationError):
                svc.authenticate_password("alice", "wrong password!")
        with pytest.raises(AccountLockedError) as locked:
            svc.authenticate_password("alice", PW)  # even the right password waits
        return locked.value

    first = fail_until_locked()
    assert first.retry_after_s == 10
    clock.advance(10)
    second = fail_until_locked()
    assert second.retry_after_s == 20  # doubled
    clock.advance(20)
    assert fail_until_locked().retry_after_s == 40
    clock.advance(40)
    assert fail_until_locked().retry_after_s == 40  # capped at lockout_max_s
    clock.advance(40)
    svc.authenticate_password("alice", PW)  # success resets the back-off
    assert fail_until_locked().retry_after_s == 10
    incidents = records(svc, action="auth.lockout")
    assert len(incidents) == 5 and incidents[0].category.value == "security_incident"
    assert incidents[0].principal == "alice"


def test_failures_outside_the_window_do_not_lock(svc: AuthService, clock: ManualClock) -> None:
    make(svc, "alice", "user")
    for _ in range(5):
        with pytest.raises(AuthenticationError) as exc:
            svc.authenticate_password("alice", "wrong password!")
        assert not isinstance(exc.value, AccountLockedError)
        clock.advance(31)  # two failures per 60 s window at most
    svc.authenticate_password("alice", PW)


def test_unknown_names_lock_out_too(svc: AuthService) -> None:
    for _ in range(FAST.lockout_threshold):
        with pytest.raises(AuthenticationError):
            svc.authenticate_password("ghost", "wrong password!")
    with pytest.raises(AccountLockedError):
        svc.authenticate_password("ghost", "wrong password!")


def test_failed_logins_are_audited(svc: AuthService) -> None:
    make(svc, "alice", "user")
    with pytest.raises(AuthenticationError):
        svc.authenticate_password("alice", "wrong password!")
    [fail] = records(svc, category="authentication", outcome="failure")
    assert fail.principal == "alice" and fail.details["reason"] == "bad credentials"
    assert (
        "wrong password!"
        not in svc.audit.directory.joinpath(
            next(p.name for p in svc.audit.directory.glob("audit-*"))
        ).read_text()
    )


def test_disabled_user_cannot_log_in(svc: AuthService) -> None:
    make(svc, "alice", "user")
    svc.disable_user(OWNER, "alice")
    with pytest.raises(AuthenticationError, match="disabled"):
        svc.authenticate_password("alice", PW)
    svc.disable_user(OWNER, "alice", disabled=False)
    svc.authenticate_password("alice", PW)


# ----------------------------------------------------------------- sessions


def test_session_idle_and_absolute_expiry(svc: AuthService, clock: ManualClock) -> None:
    make(svc, "alice", "user")
    s = svc.login("alice", PW)
    assert s.token.startswith("dws_") and s.principal.via == "session"
    for _ in range(6):  # activity keeps it alive past the idle limit...
        clock.advance(FAST.session_idle_s - 1)
        assert svc.authenticate_session(s.token).name == "alice"
    clock.advance(FAST.session_absolute_s - 6 * (FAST.session_idle_s - 1))
    with pytest.raises(AuthenticationError, match="at most"):  # ...but not past the absolute one
        svc.authenticate_session(s.token)
    idle = svc.login("alice", PW)
    clock.advance(FAST.session_idle_s)
    with pytest.raises(AuthenticationError, match="idle"):
        svc.authenticate_session(idle.token)


def test_session_revocation(svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    a, b, c = (svc.login("alice", PW) for _ in range(3))
    svc.logout(a.token)
    with pytest.raises(AuthenticationError, match="revoked"):
        svc.authenticate_session(a.token)
    svc.revoke_session(alice, b.session_id)  # one's own
    with pytest.raises(AuthenticationError, match="revoked"):
        svc.authenticate_session(b.token)
    bob = make(svc, "bob", "user")
    with pytest.raises(PermissionDeniedError):
        svc.revoke_session(bob, c.session_id)  # not bob's
    assert svc.authenticate_session(c.token).name == "alice"
    with pytest.raises(AuthenticationError, match="invalid session"):
        svc.authenticate_session("dws_forged")


@pytest.mark.parametrize("how", ["passwd", "disable", "change"])
def test_password_change_or_disable_ends_sessions(svc: AuthService, how: str) -> None:
    make(svc, "alice", "user")
    s = svc.login("alice", PW)
    if how == "passwd":
        svc.set_password(OWNER, "alice", PW + " 2")
    elif how == "disable":
        svc.disable_user(OWNER, "alice")
    else:
        svc.change_password("alice", PW, PW + " 2")
    with pytest.raises(AuthenticationError):
        svc.authenticate_session(s.token)


def test_change_password_needs_the_old_one(svc: AuthService) -> None:
    make(svc, "alice", "user")
    with pytest.raises(AuthenticationError):
        svc.change_password("alice", "not the password", PW + " new")
    svc.authenticate_password("alice", PW)


# ----------------------------------------------------------------- API keys


def test_key_format_and_use(svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    new = svc.create_api_key(alice, name="ci")
    scheme, prefix, secret = new.key.split("_", 2)
    assert (scheme, prefix) == ("dwk", new.prefix) and len(secret) == 43  # 256 bits
    p = svc.authenticate_key(new.key)
    assert (p.name, p.via, p.credential) == ("alice", "api_key", new.prefix)
    [info] = svc.list_api_keys(alice)
    assert info.prefix == new.prefix and not hasattr(info, "key")
    assert new.expires == svc.clock.now() + __import__("datetime").timedelta(days=30)


def test_wrong_and_malformed_keys(svc: AuthService, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = make(svc, "alice", "user")
    new = svc.create_api_key(alice)
    tampered = new.key[:-1] + ("A" if new.key[-1] != "A" else "B")
    calls: list[object] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(a) or real(a, b))
    with pytest.raises(AuthenticationError, match="invalid API key"):
        svc.authenticate_key(tampered)
    unknown = f"dwk_{'0' * 12}_{new.key.split('_', 2)[2]}"
    with pytest.raises(AuthenticationError, match="invalid API key"):
        svc.authenticate_key(unknown)
    assert len(calls) == 2  # constant-time compare, also for an unknown prefix
    with pytest.raises(AuthenticationError, match="malformed"):
        svc.authenticate_key("dwk_nothing")


def test_key_expiry(svc: AuthService, clock: ManualClock) -> None:
    alice = make(svc, "alice", "user")
    new = svc.create_api_key(alice, ttl_days=1)
    clock.advance(86400 - 1)
    svc.authenticate_key(new.key)
    clock.advance(1)
    with pytest.raises(AuthenticationError, match="expired"):
        svc.authenticate_key(new.key)
    with pytest.raises(InvalidArgumentError, match="expired"):
        svc.rotate_api_key(alice, new.prefix)


def test_key_rotation_overlap(svc: AuthService, clock: ManualClock) -> None:
    alice = make(svc, "alice", "user")
    old = svc.create_api_key(alice)
    new = svc.rotate_api_key(alice, old.prefix)
    assert new.prefix != old.prefix
    clock.advance(FAST.key_rotation_overlap_s - 1)
    assert svc.authenticate_key(old.key).name == "alice"  # both valid in the overlap
    assert svc.authenticate_key(new.key).name == "alice"
    clock.advance(1)
    with pytest.raises(AuthenticationError, match="rotated"):
        svc.authenticate_key(old.key)
    assert svc.authenticate_key(new.key).name == "alice"
    with pytest.raises(InvalidArgumentError, match="already rotated"):
        svc.rotate_api_key(alice, old.prefix)
    states = {k.prefix: k.state(clock.now()) for k in svc.list_api_keys(alice)}
    assert states == {old.prefix: "expired", new.prefix: "active"}


def test_key_revocation(svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    new = svc.create_api_key(alice)
    svc.revoke_api_key(alice, new.prefix)
    with pytest.raises(AuthenticationError, match="revoked"):
        svc.authenticate_key(new.key)
    with pytest.raises(InvalidArgumentError, match="revoked"):
        svc.rotate_api_key(alice, new.prefix)
    with pytest.raises(NotFoundError):
        svc.revoke_api_key(alice, "dwk_000000000000")


def test_keys_of_disabled_or_deleted_users(svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    new = svc.create_api_key(alice)
    svc.disable_user(OWNER, "alice")
    with pytest.raises(AuthenticationError, match="disabled"):
        svc.authenticate_key(new.key)
    svc.delete_user(OWNER, "alice")
    with pytest.raises(AuthenticationError, match="invalid API key"):
        svc.authenticate_key(new.key)


def test_keys_of_others_need_key_manage(svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    make(svc, "bob", "user")
    with pytest.raises(PermissionDeniedError):
        svc.create_api_key(alice, "bob")
    bobs = svc.create_api_key(OWNER, "bob")
    with pytest.raises(PermissionDeniedError):
        svc.revoke_api_key(alice, bobs.prefix)
    with pytest.raises(PermissionDeniedError):
        svc.list_api_keys(alice, "bob")
    assert svc.list_api_keys(alice) == []  # only her own


# ---------------------------------------------------------- secrets at rest


def test_no_secret_in_clear_in_the_database(tmp_path: Path, svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    key = svc.create_api_key(alice).key
    session = svc.login("alice", PW).token
    rotated = svc.rotate_api_key(alice, key.split("_")[1]).key
    blobs = b"".join(p.read_bytes() for p in tmp_path.glob("auth.sqlite3*"))
    assert b"alice" in blobs  # the reading works
    for secret in (PW, key, key.split("_", 2)[2], session, session[4:], rotated):
        assert secret.encode() not in blobs, secret
    audit = b"".join(p.read_bytes() for p in (tmp_path / "audit").glob("audit-*"))
    for secret in (PW, key.split("_", 2)[2], session[4:]):
        assert secret.encode() not in audit


def test_database_file_is_private(tmp_path: Path, svc: AuthService) -> None:
    assert (tmp_path / "auth.sqlite3").stat().st_mode & 0o077 == 0


# --------------------------------------------------------------------- RBAC


def test_default_roles(svc: AuthService) -> None:
    roles = {r.name: r for r in svc.list_roles(OWNER)}
    assert {"admin", "operator", "user", "auditor"} <= set(roles)
    assert all(roles[n].builtin for n in ("admin", "operator", "user", "auditor"))
    assert roles["admin"].permissions == ("*",)


def test_deny_by_default(svc: AuthService) -> None:
    nobody = make(svc, "nobody")
    for action, resource in [
        ("object.read", "object:c/k"),
        ("pool.read", "pool:tank"),
        ("instance.read", "instance"),
    ]:
        assert not svc.authorize(nobody, action, resource)


def test_resource_hierarchy(svc: AuthService) -> None:
    photos = make(svc, "photos", "user", scope="compartment:photos")
    assert svc.authorize(photos, "object.write", "object:photos/2026/a.jpg")
    assert svc.authorize(photos, "compartment.read", "compartment:photos")
    assert not svc.authorize(photos, "object.write", "object:docs/a.txt")
    assert not svc.authorize(photos, "compartment.read", "compartment:docs")
    assert not svc.authorize(photos, "compartment.read", "instance")
    op = make(svc, "tankop", "operator", scope="pool:tank")
    assert svc.authorize(op, "pool.manage", "pool:tank")
    assert not svc.authorize(op, "pool.manage", "pool:other")


def test_operator_cannot_restore_the_instance(svc: AuthService) -> None:
    op = make(svc, "op", "operator")
    assert svc.authorize(op, "restore.pool", "pool:tank")
    assert svc.authorize(op, "restore.compartment", "compartment:photos")
    with pytest.raises(PermissionDeniedError, match=r"restore\.instance"):
        svc.require(op, "restore.instance", "instance")
    [incident] = records(svc, action="authz.denied_privileged")
    assert incident.principal == "op" and incident.details["action"] == "restore.instance"
    admin = make(svc, "root", "admin")
    assert svc.authorize(admin, "restore.instance", "instance")


def test_restore_own_needs_ownership(svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    assert svc.authorize(alice, "restore.own", "object:c/k", owner="alice")
    assert not svc.authorize(alice, "restore.own", "object:c/k", owner="bob")
    assert not svc.authorize(alice, "restore.own", "object:c/k")
    assert not svc.authorize(alice, "restore.compartment", "compartment:c")
    op = make(svc, "op", "operator")  # restore.compartment covers restore.own
    assert svc.authorize(op, "restore.own", "object:c/k", owner="bob")


def test_auditor_reads_but_changes_nothing(svc: AuthService) -> None:
    make(svc, "alice", "user")
    aud = make(svc, "aud", "auditor")
    assert svc.authorize(aud, "audit.read", "instance")
    assert svc.authorize(aud, "pool.read", "pool:tank")
    assert [u.name for u in svc.list_users(aud)] == ["alice", "aud"]
    assert svc.list_roles(aud)
    for change in (
        lambda: svc.create_user(aud, "eve", PW),
        lambda: svc.set_password(aud, "alice", PW + "!"),
        lambda: svc.disable_user(aud, "alice"),
        lambda: svc.delete_user(aud, "alice"),
        lambda: svc.create_role(aud, "spy", ["audit.read"]),
        lambda: svc.assign_role(aud, "alice", "auditor"),
        lambda: svc.create_api_key(aud, "alice"),
    ):
        with pytest.raises(PermissionDeniedError):
            change()
    for action, resource in [
        ("object.read", "object:c/k"),
        ("object.write", "object:c/k"),
        ("pool.create", "pool:tank"),
        ("config.write", "instance"),
        ("restore.own", "object:c/k"),
    ]:
        assert not svc.authorize(aud, action, resource, owner="aud")


def test_every_privileged_decision_and_every_denial_is_audited(svc: AuthService) -> None:
    op = make(svc, "op", "operator")
    svc.audit.flush()
    before = len(records(svc, category="authorization"))
    svc.authorize(op, "pool.create", "pool:tank")  # privileged, allowed
    svc.authorize(op, "pool.read", "pool:tank")  # plain read, allowed: not here
    svc.authorize(op, "object.write", "object:c/k")  # denied: always
    got = records(svc, category="authorization")[before:]
    assert [(r.action, r.outcome.value) for r in got] == [
        ("pool.create", "success"),
        ("object.write", "denied"),
    ]
    assert not records(svc, action="authz.denied_privileged")  # object.write is not privileged


def test_unknown_action_or_resource(svc: AuthService) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown action"):
        svc.authorize(OWNER, "pool.explode", "instance")
    with pytest.raises(InvalidArgumentError, match="resource"):
        svc.authorize(OWNER, "pool.read", "bucket:x")
    assert Resource.parse("object:c/a/b").key == "a/b"


def test_local_owner_is_audited_as_such(svc: AuthService) -> None:
    assert svc.authorize(OWNER, "pool.delete", "pool:tank")
    [rec] = records(svc, action="pool.delete")
    assert rec.principal == "local:tester" and rec.details["via"] == "local"


# -------------------------------------------------------- escalation guards


def test_user_cannot_grant_itself_a_role(svc: AuthService) -> None:
    alice = make(svc, "alice", "user")
    with pytest.raises(PermissionDeniedError):
        svc.assign_role(alice, "alice", "admin")
    svc.create_role(OWNER, "granter", ["role.grant", "object.*"])
    svc.assign_role(OWNER, "alice", "granter")
    with pytest.raises(PermissionDeniedError, match="oneself"):
        svc.assign_role(alice, "alice", "user")
    assert {a.role for a in svc.get_user("alice").roles} == {"user", "granter"}
    assert records(svc, action="authz.escalation_refused")


def test_cannot_grant_more_than_one_holds(svc: AuthService) -> None:
    svc.create_role(OWNER, "delegate", ["role.grant", "object.*", "compartment.read"])
    alice = make(svc, "alice", "delegate", scope="compartment:photos")
    make(svc, "bob")
    with pytest.raises(PermissionDeniedError, match="more than"):
        svc.assign_role(alice, "bob", "operator", "compartment:photos")
    with pytest.raises(PermissionDeniedError):
        svc.assign_role(alice, "bob", "user", "compartment:docs")  # outside her scope
    svc.create_role(OWNER, "reader", ["object.read"])
    svc.assign_role(alice, "bob", "reader", "compartment:photos")  # within what she holds
    assert svc.get_user("bob").roles[0].scope == "compartment:photos"
    with pytest.raises(PermissionDeniedError):
        svc.assign_role(alice, "bob", "reader", "instance")  # wider than her scope


def test_operator_cannot_make_itself_admin(svc: AuthService) -> None:
    op = make(svc, "op", "operator")
    make(svc, "friend")
    for attempt in (
        lambda: svc.assign_role(op, "friend", "admin"),
        lambda: svc.create_role(op, "mine", ["*"]),
        lambda: svc.create_user(op, "sock", PW, roles=["admin"]),
        lambda: svc.set_password(op, "friend", PW + "!"),
    ):
        with pytest.raises(PermissionDeniedError):
            attempt()


def test_custom_roles(svc: AuthService) -> None:
    role = svc.create_role(OWNER, "backup-runner", ["backup.*", "snapshot.read"], "runs backups")
    assert role.permissions == ("backup.*", "snapshot.read")
    svc.grant_permission(OWNER, "backup-runner", "restore.pool")
    runner = make(svc, "runner", "backup-runner")
    assert svc.authorize(runner, "backup.create", "instance")
    assert svc.authorize(runner, "restore.pool", "pool:tank")
    assert not svc.authorize(runner, "restore.instance", "instance")
    with pytest.raises(InvalidArgumentError, match="assigned"):
        svc.delete_role(OWNER, "backup-runner")
    svc.unassign_role(OWNER, "runner", "backup-runner")
    assert not svc.authorize(runner, "backup.create", "instance")  # takes effect at once
    svc.delete_role(OWNER, "backup-runner")
    with pytest.raises(InvalidArgumentError, match="built-in"):
        svc.grant_permission(OWNER, "user", "pool.delete")
    with pytest.raises(InvalidArgumentError, match="built-in"):
        svc.delete_role(OWNER, "admin")
    with pytest.raises(InvalidArgumentError, match="unknown permission"):
        svc.create_role(OWNER, "weird", ["pool.explode"])
    with pytest.raises(NotFoundError):
        svc.assign_role(OWNER, "runner", "no-such-role")


def test_role_manager_cannot_widen_roles(svc: AuthService) -> None:
    svc.create_role(OWNER, "rolemgr", ["role.manage", "role.read", "object.read"])
    svc.create_role(OWNER, "empty")
    mgr = make(svc, "mgr", "rolemgr")
    svc.grant_permission(mgr, "empty", "object.read")
    with pytest.raises(PermissionDeniedError, match="more than"):
        svc.grant_permission(mgr, "empty", "pool.delete")
    with pytest.raises(PermissionDeniedError, match="more than"):
        svc.grant_permission(mgr, "empty", "object.*")


def test_admin_changes_are_audited_durably(svc: AuthService) -> None:
    svc.create_user(OWNER, "alice", PW, roles=["user"])
    got = [(r.category.value, r.action, r.resource) for r in records(svc, principal="local:*")]
    assert ("administration", "user.create", "user:alice") in got
    assert ("administration", "role.assign", "user:alice") in got


def test_state_survives_reopening(tmp_path: Path, clock: ManualClock, svc: AuthService) -> None:
    make(svc, "alice", "operator")
    key = svc.create_api_key(OWNER, "alice").key
    with AuthService(tmp_path, FAST, clock=clock, audit=svc.audit) as again:
        p = again.authenticate_key(key)
        assert again.authorize(p, "pool.create", "pool:tank")


def test_service_opens_its_own_audit_log(tmp_path: Path, clock: ManualClock) -> None:
    with AuthService(tmp_path, FAST, clock=clock) as service:
        service.create_user(OWNER, "alice", PW)
    got = query(tmp_path / "audit", category="administration", action="user.*")
    assert [r.action for r in got] == ["user.create"]


def test_newer_database_schema_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    import sqlite3

    from dwcore.errors import UnsupportedFormatError

    with AuthService(tmp_path, FAST, clock=clock):
        pass
    con = sqlite3.connect(tmp_path / "auth.sqlite3")
    con.execute("PRAGMA user_version=99")
    con.close()
    with pytest.raises(UnsupportedFormatError, match="upgrade dwcore"):
        AuthService(tmp_path, FAST, clock=clock)
    with AuditLog(tmp_path / "audit", clock=clock, background=False):
        pass  # the failed service released the audit log it had opened


def test_pbkdf2_policy_end_to_end(tmp_path: Path, clock: ManualClock) -> None:
    policy = dataclasses.replace(FAST, hash_scheme="pbkdf2-sha256")
    with AuthService(tmp_path, policy, clock=clock) as service:
        service.create_user(OWNER, "alice", PW)
        assert service.authenticate_password("alice", PW).name == "alice"
        stored = service.db.one("SELECT password_hash FROM users")["password_hash"]
        assert stored.startswith("$pbkdf2-sha256$i=1000$")


def test_grant_changes_apply_to_the_next_decision(svc: AuthService, tmp_path: Path) -> None:
    """Decisions reuse a user's grants while the auth database is unchanged; any
    change, through this service or another connection (another process), applies
    to the very next decision."""
    bob = make(svc, "bob", "user")
    assert svc.authorize(bob, "object.write", "object:c/k").allowed
    assert svc.authorize(bob, "object.write", "object:c/k").allowed  # from the cache
    svc.unassign_role(OWNER, "bob", "user")
    assert not svc.authorize(bob, "object.write", "object:c/k").allowed
    svc.assign_role(OWNER, "bob", "user", "compartment:c")
    assert svc.authorize(bob, "object.write", "object:c/k").allowed
    assert not svc.authorize(bob, "object.write", "object:d/k").allowed
    svc.create_role(OWNER, "writer", ["object.read", "object.write"])
    svc.assign_role(OWNER, "bob", "writer")
    svc.unassign_role(OWNER, "bob", "user", "compartment:c")
    assert svc.authorize(bob, "object.write", "object:d/k").allowed
    svc.revoke_permission(OWNER, "writer", "object.write")
    assert not svc.authorize(bob, "object.write", "object:c/k").allowed
    assert svc.authorize(bob, "object.read", "object:c/k").allowed
    other = AuthService(tmp_path, FAST, audit=AuditLog(tmp_path / "audit2", background=False))
    try:
        other.disable_user(OWNER, "bob")  # another connection to the same database
    finally:
        other.close()
        other.audit.close()
    assert not svc.authorize(bob, "object.read", "object:c/k").allowed
