"""``dwcore user|role|key|audit`` through typer's CliRunner, against a temporary root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dwcore.audit import query, verify
from dwcore.auth import AuthPolicy, AuthService, Principal
from dwcore.cli import app

PW = "a long enough password"
FAST = AuthPolicy(argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1)
ME = Principal.local_owner().name


#: Cheap hashing for the tests, through the instance's own configuration file.
FAST_TOML = """[security]
argon2_time_cost = 1
argon2_memory_cost = 8
argon2_parallelism = 1
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DWCORE_ROOT", raising=False)
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / "dwcore.toml").write_text(FAST_TOML)
    return inst


def run(root: Path, *args: str, input: str | None = None, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--root", str(root)], input=input)
    assert result.exit_code == code, result.output
    return result.stderr if code == 1 else result.stdout


def add(root: Path, name: str, *extra: str) -> None:
    run(root, "user", "add", name, "--password-stdin", *extra, input=PW + "\n")


def test_user_lifecycle(root: Path) -> None:
    add(root, "alice", "--role", "operator")
    out = run(root, "user", "list")
    assert "alice" in out and "operator@instance" in out and "active" in out
    run(root, "user", "passwd", "alice", "--password-stdin", input="another long password\n")
    with AuthService(root, FAST) as svc:
        svc.authenticate_password("alice", "another long password")
        assert svc.db.one("SELECT password_hash FROM users")["password_hash"].startswith(
            "$argon2id$v=19$m=8,t=1,p=1$"  # the policy came from dwcore.toml
        )
    run(root, "user", "disable", "alice")
    assert "disabled" in run(root, "user", "list")
    run(root, "user", "enable", "alice")
    run(root, "user", "grant", "alice", "auditor", "--scope", "pool:tank")
    assert "auditor@pool:tank" in run(root, "user", "list")
    run(root, "user", "revoke", "alice", "auditor", "--scope", "pool:tank")
    assert "auditor@pool:tank" not in run(root, "user", "list")
    run(root, "user", "delete", "alice", "--yes")
    assert "alice" not in run(root, "user", "list")


def test_password_prompt_hidden_and_confirmed(root: Path) -> None:
    result = CliRunner().invoke(
        app, ["user", "add", "bob", "--root", str(root)], input=f"{PW}\n{PW}\n"
    )
    assert result.exit_code == 0, result.output
    assert PW not in result.output  # hidden input is not echoed
    result = CliRunner().invoke(
        app,
        ["user", "add", "carol", "--root", str(root)],
        input=f"{PW}\nother thing!!\n{PW}\n{PW}\n",
    )
    assert result.exit_code == 0 and "do not match" in result.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "add", "dave", "--password-stdin"), "short\n", "too short"),
        (("user", "add", "dave", "--password-stdin"), "", "no password on stdin"),
        (("user", "add", "dave", "--password-stdin", "--role", "wizard"), PW + "\n", "no role"),
        (("user", "passwd", "ghost", "--password-stdin"), PW + "\n", "no user named 'ghost'"),
        (("user", "grant", "ghost", "admin"), None, "no user"),
        (("user", "grant", "x", "admin", "--scope", "bucket:x"), None, "resource"),
        (("role", "create", "Bad Name"), None, "bad role name"),
        (("role", "delete", "admin"), None, "built-in"),
        (("role", "grant-permission", "user", "pool.read"), None, "built-in"),
        (("key", "revoke", "dwk_000000000000"), None, "no API key"),
        (("key", "create", "ghost"), None, "no user"),
    ],
)
def test_errors_exit_1_with_a_message(
    root: Path, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    add(root, "x")
    err = run(root, *args, input=stdin, code=1)
    assert err.startswith("error:") and message in err


def test_duplicate_user(root: Path) -> None:
    add(root, "alice")
    err = run(root, "user", "add", "alice", "--password-stdin", input=PW + "\n", code=1)
    assert "already exists" in err


def test_roles(root: Path) -> None:
    add(root, "alice")
    out = run(root, "role", "list")
    for name in ("admin", "operator", "user", "auditor"):
        assert name in out
    run(root, "role", "create", "backup-runner", "-p", "backup.*", "--description", "nightly")
    run(root, "role", "grant-permission", "backup-runner", "restore.pool")
    out = run(root, "role", "list")
    assert "backup-runner" in out and "restore.pool" in out and "custom" in out
    run(root, "role", "revoke-permission", "backup-runner", "restore.pool")
    run(root, "role", "delete", "backup-runner")
    assert "backup-runner" not in run(root, "role", "list")


def test_keys_shown_once(root: Path) -> None:
    add(root, "alice", "--role", "user")
    result = CliRunner().invoke(app, ["key", "create", "alice", "--root", str(root)])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("dwk_") and "not shown again" in result.stderr
    prefix = key.split("_")[1]
    listing = run(root, "key", "list")
    assert prefix in listing and key.split("_", 2)[2] not in listing and "active" in listing
    rotated = run(root, "key", "rotate", prefix).strip()
    assert rotated.startswith("dwk_") and rotated != key
    assert "rotating" in run(root, "key", "list", "--user", "alice")
    with AuthService(root) as svc:
        assert svc.authenticate_key(key).name == "alice"  # overlap window
        assert svc.authenticate_key(rotated).name == "alice"
    run(root, "key", "revoke", rotated)
    assert "revoked" in run(root, "key", "list")
    with AuthService(root) as svc, pytest.raises(Exception, match="revoked"):
        svc.authenticate_key(rotated)


def test_cli_actions_are_audited_as_the_local_owner(root: Path) -> None:
    add(root, "alice", "--role", "user")
    run(root, "user", "disable", "alice")
    got = list(query(root / "audit", category="administration", principal=ME))
    assert [r.action for r in got] == ["user.create", "role.assign", "user.disable"]
    assert all(r.details["via"] == "local" for r in got)


def test_audit_verify_and_query(root: Path) -> None:
    add(root, "alice", "--role", "user")
    assert "intact" in run(root, "audit", "verify")
    lines = run(root, "audit", "query", "--json", "--action", "user.*").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["action"] for r in records] == ["user.manage", "user.create"]
    plain = run(root, "audit", "query", "--category", "administration", "--limit", "1")
    assert len(plain.splitlines()) == 1 and "user.create" in plain
    assert run(root, "audit", "query", "--principal", "nobody") == ""
    assert run(root, "audit", "query", "--since", "2999-01-01") == ""
    err = run(root, "audit", "query", "--since", "yesterday", code=1)
    assert "--since" in err
    err = run(root, "audit", "query", "--category", "gossip", code=1)
    assert "category" in err
    reads = list(query(root / "audit", action="audit.read"))
    assert reads and reads[0].principal == ME  # reading the log is itself audited


def test_audit_verify_finds_tampering(root: Path) -> None:
    add(root, "alice", "--role", "user")
    [day] = sorted((root / "audit").glob("audit-*.jsonl"))
    lines = day.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[1])
    obj["principal"] = "mallory"
    lines[1] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    day.write_bytes(b"".join(lines))
    out = run(root, "audit", "verify", code=2)
    assert f"{day.name}:2 seq 2: edited" in out
    incidents = list(query(root / "audit", action="audit.verify_failed"))
    assert incidents and incidents[0].principal == ME
    assert not verify(root / "audit").ok


def test_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_root = tmp_path / "from-env"
    monkeypatch.setenv("DWCORE_ROOT", str(env_root))
    result = CliRunner().invoke(app, ["user", "add", "erin", "--password-stdin"], input=PW + "\n")
    assert result.exit_code == 0, result.output
    assert (env_root / "auth.sqlite3").exists()
    assert "erin" in CliRunner().invoke(app, ["user", "list"]).stdout


@pytest.mark.parametrize(
    "args",
    [("user", "list"), ("role", "list"), ("key", "list"), ("audit", "verify"), ("audit", "query")],
)
def test_a_mistyped_root_is_not_an_empty_instance(tmp_path: Path, args: tuple[str, ...]) -> None:
    typo = tmp_path / "typo"
    err = run(typo, *args, code=1)
    assert "check --root" in err
    assert not typo.exists()  # nothing was created there


def test_security_policy_from_the_instance_config(root: Path) -> None:
    (root / "dwcore.toml").write_text(FAST_TOML + "min_password_length = 30\n")
    err = run(root, "user", "add", "alice", "--password-stdin", input=PW + "\n", code=1)
    assert "at least 30" in err and "security.min_password_length" in err
    run(root, "user", "add", "alice", "--password-stdin", input=PW + " and then some\n")
    (root / "dwcore.toml").write_text("[security]\nmin_pasword_length = 30\n")
    err = run(root, "user", "list", code=1)
    assert "did you mean 'min_password_length'" in err
