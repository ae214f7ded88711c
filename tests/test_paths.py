"""dwcore.paths: the instance root is --root, else $DWCORE_ROOT, else ./dwcore-data."""

from __future__ import annotations

from pathlib import Path

import pytest

from dwcore import paths


def test_explicit_root_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DWCORE_ROOT", str(tmp_path / "env"))
    assert paths.resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert paths.resolve_root(str(tmp_path / "arg")) == tmp_path / "arg"


def test_environment_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DWCORE_ROOT", str(tmp_path / "env"))
    assert paths.resolve_root(None) == tmp_path / "env"
    assert paths.resolve_root("") == tmp_path / "env"


def test_default_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DWCORE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.resolve_root() == tmp_path / "dwcore-data"
    monkeypatch.setenv("DWCORE_ROOT", "")  # empty counts as unset
    assert paths.resolve_root() == tmp_path / "dwcore-data"


def test_relative_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.resolve_root("inst") == tmp_path / "inst"
    assert paths.resolve_root("~/inst") == tmp_path / "home" / "inst"
    assert paths.resolve_root("inst").is_absolute()


def test_well_known_names() -> None:
    assert (paths.AUTH_DB, paths.AUDIT_DIR, paths.CONFIG_FILE) == (
        "auth.sqlite3",
        "audit",
        "dwcore.toml",
    )
