"""Where an instance lives: the root directory and the well-known names inside it.

The command line (and anything else that opens an instance) finds the root
with :func:`resolve_root`: an explicit ``--root DIR``, else the
``$DWCORE_ROOT`` environment variable, else ``./dwcore-data``.  Components
keep their state under that root by the names below, so every command and
the future ``Instance`` agree on them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "AUDIT_DIR",
    "AUTH_DB",
    "CONFIG_FILE",
    "DEFAULT_ROOT",
    "ROOT_ENV",
    "fsync_dir",
    "resolve_root",
]

#: Environment variable naming the instance root when ``--root`` is not given.
ROOT_ENV = "DWCORE_ROOT"
#: Root used when neither ``--root`` nor ``$DWCORE_ROOT`` is set (relative to the cwd).
DEFAULT_ROOT = "dwcore-data"
#: Users, roles, API keys and sessions (SQLite), inside the root.
AUTH_DB = "auth.sqlite3"
#: Directory of the audit log's day files, inside the root.
AUDIT_DIR = "audit"
#: The instance configuration file, inside the root.
CONFIG_FILE = "dwcore.toml"


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The instance root: *root* if given, else ``$DWCORE_ROOT``, else ``./dwcore-data``.

    An empty string (``--root ""`` or ``DWCORE_ROOT=``) counts as not given.
    ``~`` is expanded and the result is absolute (relative paths are taken
    from the current directory), so messages name an unambiguous location.
    The directory is not created here.
    """
    chosen: str | os.PathLike[str] | None = root
    if chosen is None or os.fspath(chosen) == "":
        chosen = os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    return Path(chosen).expanduser().absolute()


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make the entries of ``directory`` (files created, renamed, removed) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
