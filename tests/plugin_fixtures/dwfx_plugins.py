"""Plugins a third party might ship, good and broken, for the plugin tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dwcore.devices import Device, RamDevice
from dwcore.plugins import (
    Capability,
    Category,
    FeaturePlugin,
    IntelligencePlugin,
    StoragePlugin,
    plugin_info,
)

INIT_LOG: list[str] = []
CLOSED: list[str] = []


def _cap(name: str, action: str, category: Category = Category.STORAGE) -> Capability:
    return Capability(f"{category.value}.{name}.{action}", action.title(), "", category)


@plugin_info(
    "goodstore",
    "Memory devices with a name prefix.",
    "Example Corp",
    "1.2.0",
    Category.STORAGE,
    capabilities=[_cap("goodstore", "open_device")],
)
class GoodStorage(StoragePlugin):
    def __init__(self) -> None:
        INIT_LOG.append("goodstore")

    def open_device(
        self, path: str, size: int | None = None, create: bool = False, **opts: Any
    ) -> Device:
        return RamDevice(size or 1 << 20, name=f"good-{path}")

    def close(self) -> None:
        CLOSED.append("goodstore")


@plugin_info(
    "goodfeature",
    "A feature that needs goodstore.",
    "Example Corp",
    "0.3",
    "feature",
    capabilities=[_cap("goodfeature", "enable", Category.FEATURE)],
    requires=["goodstore>=1.1"],
)
class GoodFeature(FeaturePlugin):
    def __init__(self) -> None:
        INIT_LOG.append("goodfeature")

    def enable(self, root: str) -> None:
        self.root = root

    def disable(self) -> None:
        self.root = ""


@plugin_info("ducktyped", "Implements the protocol without inheriting.", "X", "1.0", "intelligence")
class DuckTyped:
    def analyze(self, metrics: Mapping[str, float]) -> Sequence[str]:
        return [f"{k} is high" for k, v in metrics.items() if v > 0.9]


@plugin_info("nomethod", "Forgot open_device.", "X", "1.0", Category.STORAGE)
class MissingMethod(StoragePlugin):
    pass


@plugin_info("nomethodduck", "Forgot analyze.", "X", "1.0", Category.INTELLIGENCE)
class MissingMethodDuck:
    analyse = None  # misspelt, and not callable


@plugin_info("initfails", "Raises in __init__.", "X", "1.0", Category.OTHER)
class RaisesInInit:
    def __init__(self) -> None:
        raise RuntimeError("cannot reach license server")


@plugin_info("exitsininit", "Calls sys.exit in __init__.", "X", "1.0", Category.OTHER)
class ExitsInInit:
    def __init__(self) -> None:
        raise SystemExit(3)


@plugin_info("needsinitfails", "Depends on a plugin that fails init.", "X", "1.0", "other",
             requires=["initfails"])  # fmt: skip
class NeedsInitFails:
    pass


@plugin_info("cyclea", "Half of a cycle.", "X", "1.0", "other", requires=["cycleb"])
class CycleA:
    pass


@plugin_info("cycleb", "Other half of a cycle.", "X", "1.0", "other", requires=["cyclea"])
class CycleB:
    pass


@plugin_info("needscycle", "Depends on a cycle member.", "X", "1.0", "other", requires=["cyclea"])
class NeedsCycle:
    pass


@plugin_info("needsghost", "Depends on nothing installed.", "X", "1.0", "other",
             requires=["ghost"])  # fmt: skip
class NeedsGhost:
    pass


@plugin_info("needsnewer", "Needs goodstore 9.", "X", "1.0", "other", requires=["goodstore>=9.0"])
class NeedsNewer:
    pass


@plugin_info("futureapi", "Written for plugin API 2.", "X", "1.0", "other", api_version="2.0")
class FutureApi:
    pass


@plugin_info("newerminor", "Written for plugin API 1.9.", "X", "1.0", "other", api_version="1.9")
class NewerMinor:
    pass


@plugin_info("hugedesc", "x" * 100_000, "X", "1.0", "other")
class HugeDescription:
    pass


@plugin_info("ctrlchars", "Looks fine\x1b[2J\x00", "X", "1.0", "other")
class ControlChars:
    pass


@plugin_info("wrongtypes", 42, ["X"], 1.0, "other")  # type: ignore[arg-type]
class WrongTypes:
    pass


@plugin_info("badcategory", "Unknown category.", "X", "1.0", "teleportation")
class BadCategory:
    pass


@plugin_info("Bad Name!", "Upper case and spaces.", "X", "1.0", "other")
class BadName:
    pass


@plugin_info(
    "badcap",
    "A capability that names another plugin and category.",
    "X",
    "1.0",
    Category.OTHER,
    capabilities=[Capability("storage.file.open_device", "Steal", "", Category.OTHER)],
)
class BadCapability:
    pass


@plugin_info("badcapshape", "Capability not dotted.", "X", "1.0", "other",
             capabilities=[Capability("open", "Open", "", Category.OTHER)])  # fmt: skip
class BadCapabilityShape:
    pass


@plugin_info("notcap", "Capability is a dict.", "X", "1.0", "other",
             capabilities=[{"id": "other.notcap.x"}])  # type: ignore[list-item]  # fmt: skip
class NotACapability:
    pass


@plugin_info("hostileshake", "Handshake reports a bad capability.", "X", "1.0", "other")
class HostileHandshake:
    def __init__(self) -> None:
        self.closed = False

    def capabilities(self) -> Sequence[Capability]:
        return [Capability("other.hostileshake.x" + "\n" * 3, "X", "", Category.OTHER)]

    def close(self) -> None:
        CLOSED.append("hostileshake")


@plugin_info("raisingshake", "Handshake raises.", "X", "1.0", "other")
class RaisingHandshake:
    def capabilities(self) -> Sequence[Capability]:
        raise ValueError("no capabilities today")


@plugin_info("badreq", "Malformed requirement.", "X", "1.0", "other", requires=["good store>>1"])
class BadRequirement:
    pass


@plugin_info("selfreq", "Requires itself.", "X", "1.0", "other", requires=["selfreq"])
class SelfRequirement:
    pass


class NoInfo:
    """A class without @plugin_info."""


def not_a_class() -> None:
    """An entry point naming a function."""


class HostileStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


@plugin_info("hostilestr", "Raises an exception whose str() raises.", "X", "1.0", "other")
class RaisesHostile:
    def __init__(self) -> None:
        raise HostileStr()


@plugin_info("goodstore", "A second plugin claiming goodstore.", "Y", "1.0", "storage")
class DuplicateGood(StoragePlugin):
    def open_device(
        self, path: str, size: int | None = None, create: bool = False, **opts: Any
    ) -> Device:
        return RamDevice(size or 1 << 20)


@plugin_info("advice", "Advice.", "Example Corp", "1.0", Category.INTELLIGENCE)
class Advice(IntelligencePlugin):
    def analyze(self, metrics: Mapping[str, float]) -> Sequence[str]:
        return []


class QuotaExceeded(Exception):
    """What a remote destination raises when it throttles."""


class CodedError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _slow_down(exc: BaseException) -> bool:
    return getattr(exc, "code", "") == "SlowDown"


@plugin_info("throttled", "Declares its transient errors.", "X", "1.0", "other")
class DeclaresTransient:
    def transient_errors(self) -> Sequence[Any]:
        return [QuotaExceeded, _slow_down]


@plugin_info("badtransient", "Declares a non-exception as transient.", "X", "1.0", "other")
class BadTransient:
    def transient_errors(self) -> Sequence[Any]:
        return [int]
