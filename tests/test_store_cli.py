"""``dwcore put|get|ls|rm|fsck`` and ``dwcore snapshot ...`` through typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import fast_root, make
from typer.testing import CliRunner

from dwcore.cli import app


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("DWCORE_ROOT", raising=False)
    with fast_root(tmp_path) as r:
        make(r).close()
        yield r


def run(root: Path, *args: str, input: bytes | None = None, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--root", str(root)], input=input)
    assert result.exit_code == code, result.output
    return result.output


def test_put_get_ls_rm(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"file bytes" * 1000)
    out = run(root, "put", "docs", "a/b.bin", str(src), "--meta", "type=bin")
    assert "docs/a/b.bin: 10000 bytes, blake3" in out
    run(root, "put", "docs", "c.txt", "-", input=b"from stdin")
    dest = tmp_path / "out.bin"
    run(root, "get", "docs", "a/b.bin", "-o", str(dest))
    assert dest.read_bytes() == src.read_bytes()
    assert run(root, "get", "docs", "c.txt") == "from stdin"
    assert run(root, "get", "docs", "c.txt", "--offset", "5", "--length", "3") == "std"
    assert run(root, "ls").split("\t")[0] == "docs"
    listing = run(root, "ls", "docs")
    assert "a/b.bin" in listing and "c.txt" in listing
    page = json.loads(run(root, "ls", "docs", "--json", "--limit", "1"))
    assert page["next_start_after"] == "a/b.bin"
    assert page["objects"][0]["metadata"] == {"type": "bin"}
    assert "deleted docs/c.txt" in run(root, "rm", "docs", "c.txt")
    assert "does not exist" in run(root, "get", "docs", "c.txt", code=1)
    assert "still holds 1 object" in run(root, "rm", "docs", code=1)
    assert "key" in run(root, "put", "docs", "../x", "-", input=b"", code=1)
    assert "ok" in run(root, "fsck", "--deep")
    report = json.loads(run(root, "fsck", "--json"))
    assert report["ok"] and report["objects"] == 1


def test_commands_refuse_a_root_without_instance(tmp_path: Path) -> None:
    assert "no dwcore instance" in run(tmp_path / "none", "ls", code=1)
    assert "no dwcore instance" in run(tmp_path / "none", "snapshot", "list", code=1)


def test_snapshot_commands(root: Path, tmp_path: Path) -> None:
    run(root, "put", "docs", "d/a.txt", "-", input=b"one")
    run(root, "put", "docs", "b.jpg", "-", input=b"jpeg" * 100)
    out = run(root, "snapshot", "create", "compartment:docs", "-m", "first")
    assert out.startswith("snapshot 1 of compartment:docs")
    run(root, "put", "docs", "d/a.txt", "-", input=b"two!")
    run(root, "rm", "docs", "b.jpg")
    listing = run(root, "snapshot", "list", "--space")
    assert "compartment:docs" in listing and "first" in listing and "403 B" in listing
    assert json.loads(run(root, "snapshot", "list", "--json"))[0]["id"] == 1
    diff = run(root, "snapshot", "diff", "1")
    assert "- docs/b.jpg" in diff and "M docs/d/a.txt" in diff
    assert "0 added, 1 removed, 1 modified" in diff
    assert run(root, "snapshot", "browse", "1").split() == ["400", "B", "b.jpg", "dir", "d/"]
    assert "docs/b.jpg" in run(root, "snapshot", "search", "1", "*.jpg", "--min-size", "100")
    assert run(root, "snapshot", "search", "1", "*.jpg", "--max-size", "1KiB").strip()
    assert run(root, "snapshot", "search", "1", "*", "--since", "2999-01-01") == ""
    assert run(root, "snapshot", "cat", "1", "docs", "d/a.txt") == "one"
    assert "1 restored, 0 removed" in run(root, "snapshot", "rollback", "1", "docs", "b.jpg")
    assert run(root, "get", "docs", "b.jpg") == "jpeg" * 100
    assert "rolled back" in run(root, "snapshot", "rollback", "1")
    assert run(root, "get", "docs", "d/a.txt") == "one"
    assert "deleted snapshot 1" in run(root, "snapshot", "delete", "1")
    assert "does not exist" in run(root, "snapshot", "cat", "1", "docs", "b.jpg", code=1)
    assert "ISO 8601" in run(root, "snapshot", "list", "--since", "yesterday", code=1)
