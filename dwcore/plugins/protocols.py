"""What a plugin of each category must implement.

Every plugin may subclass :class:`Plugin` (the hooks all plugins share) and
the abstract class of its category.  Subclassing is not required: the
validation suite checks the *methods*, so a class that defines them without
inheriting passes too.  :data:`REQUIRED_METHODS` lists, per category, the
methods a plugin must define; :func:`missing_methods` names the ones a class
lacks (or leaves abstract).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dwcore.devices import Device
from dwcore.plugins.metadata import Capability, Category, info_of

__all__ = [
    "REQUIRED_METHODS",
    "DestinationPlugin",
    "FeaturePlugin",
    "IntelligencePlugin",
    "InterfacePlugin",
    "MetadataPlugin",
    "OrchestrationPlugin",
    "OtherPlugin",
    "Plugin",
    "SecurityPlugin",
    "StoragePlugin",
    "missing_methods",
]


class Plugin(ABC):  # noqa: B024 - the hooks have defaults; categories add abstract methods
    """Hooks every plugin shares; all have defaults.

    A plugin is built with no arguments when it is loaded (its ``__init__``
    is timed as its init duration); heavy work belongs in the category's
    methods, which receive what they need.
    """

    def capabilities(self) -> Sequence[Capability]:
        """The capabilities this plugin offers now (default: those it declared)."""
        info = info_of(self)
        return tuple(info.capabilities) if info is not None else ()

    def transient_errors(
        self,
    ) -> Sequence[type[BaseException] | Callable[[BaseException], bool]]:
        """Errors of this plugin worth retrying: exception classes, or predicates of an
        exception.  The manager adds them to :data:`dwcore.resilience.TRANSIENT`."""
        return ()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the plugin holds; called when its manager closes."""


class StoragePlugin(Plugin):
    """Provides devices a pool can stripe over (files, block devices, RAM, ...)."""

    @abstractmethod
    def open_device(
        self, path: str, size: int | None = None, create: bool = False, **opts: Any
    ) -> Device:
        """Open (or with ``create``, make) the device at ``path`` of ``size`` bytes."""


class MetadataPlugin(Plugin):
    """Keeps the catalog (compartments, objects, versions) of an instance."""

    @abstractmethod
    def open_catalog(self, root: str, **opts: Any) -> object:
        """Open or create the catalog kept under the directory ``root``."""


class InterfacePlugin(Plugin):
    """Serves the instance over some protocol (REST, S3, web UI, ...)."""

    @abstractmethod
    def start(self, host: str, port: int) -> None:
        """Start serving on ``host``:``port``."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving and release the socket."""


class SecurityPlugin(Plugin):
    """Authenticates principals (an external directory, a token issuer, ...)."""

    @abstractmethod
    def authenticate(self, credentials: Mapping[str, str]) -> str | None:
        """The principal the credentials prove, or None when they prove nothing."""


class DestinationPlugin(Plugin):
    """A place backups are written to (a directory, S3, SFTP, ...)."""

    @abstractmethod
    def open_destination(self, url: str, **opts: Any) -> object:
        """Open the destination at ``url``."""


class FeaturePlugin(Plugin):
    """An optional feature switched on for an instance."""

    @abstractmethod
    def enable(self, root: str) -> None:
        """Turn the feature on for the instance under ``root``."""

    @abstractmethod
    def disable(self) -> None:
        """Turn the feature off."""


class OrchestrationPlugin(Plugin):
    """Coordinates several instances (membership, leases)."""

    @abstractmethod
    def join(self, node_id: str) -> None:
        """Join the cluster as ``node_id``."""

    @abstractmethod
    def leave(self) -> None:
        """Leave the cluster."""


class IntelligencePlugin(Plugin):
    """Turns metrics into advice (tiering, failure prediction, ...)."""

    @abstractmethod
    def analyze(self, metrics: Mapping[str, float]) -> Sequence[str]:
        """Recommendations drawn from ``metrics`` (one line each)."""


class OtherPlugin(Plugin):
    """A plugin that fits no other category; only the shared hooks apply."""


#: The class a plugin of each category may subclass.
CATEGORY_CLASSES: dict[Category, type[Plugin]] = {
    Category.STORAGE: StoragePlugin,
    Category.METADATA: MetadataPlugin,
    Category.INTERFACE: InterfacePlugin,
    Category.SECURITY: SecurityPlugin,
    Category.DESTINATION: DestinationPlugin,
    Category.FEATURE: FeaturePlugin,
    Category.ORCHESTRATION: OrchestrationPlugin,
    Category.INTELLIGENCE: IntelligencePlugin,
    Category.OTHER: OtherPlugin,
}

#: Methods a plugin of each category must define (the abstract methods above).
REQUIRED_METHODS: dict[Category, tuple[str, ...]] = {
    cat: tuple(sorted(cls.__abstractmethods__)) for cat, cls in CATEGORY_CLASSES.items()
}


def missing_methods(cls: type, category: Category) -> list[str]:
    """The methods of ``category`` that ``cls`` does not define or leaves abstract."""
    missing = []
    for name in REQUIRED_METHODS[category]:
        attr = getattr(cls, name, None)
        if attr is None or not callable(attr) or getattr(attr, "__isabstractmethod__", False):
            missing.append(name)
    return missing
