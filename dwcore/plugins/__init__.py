"""Plugins: discovery through the ``dwcore.plugins`` entry-point group, validation, loading.

* :func:`plugin_info` — class decorator declaring name, description, author,
  version, :class:`Category`, :class:`Capability` list, required plugins and
  the plugin API version (:data:`API_VERSION`).
* One abstract class per category states what a plugin must implement:
  :class:`StoragePlugin` (``open_device``), :class:`MetadataPlugin`,
  :class:`InterfacePlugin`, :class:`SecurityPlugin`,
  :class:`DestinationPlugin`, :class:`FeaturePlugin`,
  :class:`OrchestrationPlugin`, :class:`IntelligencePlugin`,
  :class:`OtherPlugin`.
* :class:`PluginManager` — runs the validation suite on every entry point,
  loads the plugins that pass in dependency order, and reports a
  :class:`Handshake` per plugin and a :class:`Rejection` per broken one.

dwcore's file, block and RAM devices are storage plugins registered the same
way a third party's are (:mod:`dwcore.plugins.builtin.storage`).

>>> from dwcore.plugins import PluginManager, StoragePlugin
>>> ram = PluginManager().get("ram", StoragePlugin)
>>> with ram.open_device("scratch", size=1 << 20) as dev:
...     dev.size
1048576
"""

from __future__ import annotations

from dwcore.errors import PluginError
from dwcore.plugins.discovery import GROUP, discover
from dwcore.plugins.manager import Handshake, LoadedPlugin, LoadReport, PluginManager, Rejection
from dwcore.plugins.metadata import (
    API_VERSION,
    Capability,
    Category,
    PluginInfo,
    api_compatible,
    plugin_info,
)
from dwcore.plugins.protocols import (
    REQUIRED_METHODS,
    DestinationPlugin,
    FeaturePlugin,
    IntelligencePlugin,
    InterfacePlugin,
    MetadataPlugin,
    OrchestrationPlugin,
    OtherPlugin,
    Plugin,
    SecurityPlugin,
    StoragePlugin,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "REQUIRED_METHODS",
    "Capability",
    "Category",
    "DestinationPlugin",
    "FeaturePlugin",
    "Handshake",
    "IntelligencePlugin",
    "InterfacePlugin",
    "LoadReport",
    "LoadedPlugin",
    "MetadataPlugin",
    "OrchestrationPlugin",
    "OtherPlugin",
    "Plugin",
    "PluginError",
    "PluginInfo",
    "PluginManager",
    "Rejection",
    "SecurityPlugin",
    "StoragePlugin",
    "api_compatible",
    "discover",
    "plugin_info",
]
