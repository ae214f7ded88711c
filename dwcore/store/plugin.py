"""The embedded catalog as a metadata plugin: SQLite in the instance root.

Registered in the ``dwcore.plugins`` entry-point group as ``sqlite``, the
way a third-party catalog would be; :class:`~dwcore.store.Instance` opens
its catalog through it.
"""

from __future__ import annotations

import os
from typing import Any

from dwcore.errors import InvalidArgumentError
from dwcore.plugins.metadata import Capability, Category, plugin_info
from dwcore.plugins.protocols import MetadataPlugin
from dwcore.store.catalog import CATALOG_DB, Catalog

__all__ = ["SqliteMetadataPlugin"]


@plugin_info(
    name="sqlite",
    description="The embedded catalog: SQLite in WAL mode with full synchronous commits.",
    author="dwcore",
    version="1.0.0",
    category=Category.METADATA,
    capabilities=[
        Capability(
            "metadata.sqlite.open_catalog",
            "Open the SQLite catalog",
            "Open or create catalog.sqlite3 in an instance root.",
            Category.METADATA,
        ),
    ],
)
class SqliteMetadataPlugin(MetadataPlugin):
    """Opens :class:`~dwcore.store.catalog.Catalog` (``<root>/catalog.sqlite3``); no options."""

    def open_catalog(self, root: str, **opts: Any) -> Catalog:
        """Open or create the catalog kept under the directory ``root``."""
        if opts:
            raise InvalidArgumentError(
                f"the sqlite catalog takes no options, got {', '.join(sorted(opts))}"
            )
        return Catalog(os.path.join(root, CATALOG_DB))
