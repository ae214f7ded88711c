"""Plugin metadata: categories, capabilities, ``@plugin_info`` and the schema they follow.

A plugin class carries a :class:`PluginInfo` (set by :func:`plugin_info`)
naming it, its category, version, author, the capabilities it offers, the
other plugins it needs and the plugin API version it was written against.
:func:`check_info` checks that metadata against the schema and returns every
problem as text; it never trusts the types it is given, because the metadata
comes from third-party code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from dwcore.errors import InvalidArgumentError

__all__ = [
    "API_VERSION",
    "Capability",
    "Category",
    "PluginInfo",
    "Requirement",
    "api_compatible",
    "check_capability",
    "check_info",
    "info_of",
    "parse_requirement",
    "parse_version",
    "plugin_info",
]

#: Version of the plugin API this dwcore offers.  A plugin declaring
#: ``api_version="M.N"`` loads when M equals this major and N is at most this
#: minor (a newer minor may add methods the plugin could call).
API_VERSION = "1.0"

#: Attribute of a plugin class that holds its :class:`PluginInfo`.
INFO_ATTR = "__dwcore_plugin__"

NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
#: ``category.plugin.action``; the action may have dotted parts of its own.
CAPABILITY_RE = re.compile(r"[a-z]+\.[a-z][a-z0-9_-]{0,63}\.[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
VERSION_RE = re.compile(
    r"(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})(?:\.(0|[1-9]\d{0,8}))?(?:[-+][0-9A-Za-z.-]{1,32})?"
)
_REQ_RE = re.compile(r"\s*([a-z][a-z0-9_-]{0,63})\s*(?:(>=|==)\s*([0-9][0-9A-Za-z.+-]*))?\s*")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

MAX_CAPABILITY_ID = 128
MAX_DISPLAY_NAME = 80
MAX_DESCRIPTION = 1000
MAX_AUTHOR = 200
MAX_CAPABILITIES = 64
MAX_REQUIRES = 32


class Category(str, enum.Enum):
    """What kind of plugin this is; each category has a protocol in :mod:`.protocols`."""

    STORAGE = "storage"
    METADATA = "metadata"
    INTERFACE = "interface"
    SECURITY = "security"
    DESTINATION = "destination"
    FEATURE = "feature"
    ORCHESTRATION = "orchestration"
    INTELLIGENCE = "intelligence"
    OTHER = "other"


@dataclass(frozen=True)
class Capability:
    """Something a plugin can do, e.g. ``storage.file.open_device``.

    ``id`` is ``category.plugin.action`` where ``category`` is this
    capability's category and ``plugin`` the plugin's name.
    """

    id: str
    display_name: str
    description: str
    category: Category


@dataclass(frozen=True)
class Requirement:
    """A dependency on another plugin: its name and an optional version bound."""

    name: str
    op: str = ""
    version: str = ""

    def satisfied_by(self, version: str) -> bool:
        """True if a plugin at ``version`` meets this requirement."""
        if not self.op:
            return True
        have, want = parse_version(version), parse_version(self.version)
        return have == want if self.op == "==" else have >= want

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.version}"


@dataclass(frozen=True)
class PluginInfo:
    """The metadata ``@plugin_info`` attaches to a plugin class (unchecked until loaded)."""

    name: Any
    description: Any
    author: Any
    version: Any
    category: Any
    capabilities: tuple[Any, ...] = ()
    requires: tuple[Any, ...] = ()
    api_version: Any = API_VERSION

    @property
    def plugin_id(self) -> str:
        """``category.name``, e.g. ``storage.file``."""
        cat = self.category.value if isinstance(self.category, Category) else self.category
        return f"{cat}.{self.name}"


_C = TypeVar("_C", bound=type)


def plugin_info(
    name: str,
    description: str,
    author: str,
    version: str,
    category: Category | str,
    *,
    capabilities: Iterable[Capability] = (),
    requires: Iterable[str] = (),
    api_version: str = API_VERSION,
) -> Callable[[_C], _C]:
    """Class decorator declaring a plugin's metadata.

    ``category`` is a :class:`Category` or its value; ``requires`` lists other
    plugins by name, optionally with ``>=`` or ``==`` and a version
    (``"file>=1.0"``); ``api_version`` is the dwcore plugin API the class was
    written for.  Nothing is checked here — a plugin's module must import even
    when its metadata is wrong, so that the manager can reject it with a
    message — the checks run when the plugin is loaded.
    """
    try:
        cat: Any = Category(category)
    except (ValueError, TypeError):
        cat = category

    def decorate(cls: _C) -> _C:
        info = PluginInfo(
            name=name,
            description=description,
            author=author,
            version=version,
            category=cat,
            capabilities=_as_tuple(capabilities),
            requires=_as_tuple(requires),
            api_version=api_version,
        )
        setattr(cls, INFO_ATTR, info)
        return cls

    return decorate


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


def info_of(obj: Any) -> PluginInfo | None:
    """The :class:`PluginInfo` of a plugin class (or instance), or None."""
    info = getattr(obj, INFO_ATTR, None)
    return info if isinstance(info, PluginInfo) else None


def parse_version(text: str) -> tuple[int, int, int]:
    """``"1.2"`` or ``"1.2.3-rc1"`` -> ``(1, 2, 3)`` (pre-release tags are ignored)."""
    m = VERSION_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidArgumentError(
            f"version must look like MAJOR.MINOR or MAJOR.MINOR.PATCH, got {_show(text)}"
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def parse_requirement(text: Any) -> Requirement:
    """``"name"``, ``"name>=1.2"`` or ``"name==1.2.3"`` -> :class:`Requirement`."""
    m = _REQ_RE.fullmatch(text) if isinstance(text, str) and len(text) <= 200 else None
    if m is None:
        raise InvalidArgumentError(
            f"requirement must be a plugin name, optionally with >= or == and a version "
            f"(e.g. 'file>=1.0'), got {_show(text)}"
        )
    name, op, version = m.group(1), m.group(2) or "", m.group(3) or ""
    if op:
        parse_version(version)
    return Requirement(name, op, version)


def api_compatible(wanted: str, offered: str = API_VERSION) -> bool:
    """True if a plugin written for API ``wanted`` runs on API ``offered``."""
    w, o = parse_version(wanted), parse_version(offered)
    return w[0] == o[0] and w[1] <= o[1]


def _show(value: Any, limit: int = 60) -> str:
    """A short, printable rendering of a hostile value for error messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})"


def _text(errors: list[str], key: str, value: Any, limit: int, *, empty: bool = False) -> None:
    if not isinstance(value, str):
        errors.append(f"{key} must be a string, got {_show(value)}")
    elif not value and not empty:
        errors.append(f"{key} must not be empty")
    elif len(value) > limit:
        errors.append(f"{key} is {len(value)} characters long, at most {limit} are allowed")
    elif _CONTROL_RE.search(value):
        errors.append(f"{key} contains control characters, which are not allowed: {_show(value)}")


def check_capability(cap: Any, plugin_name: str, where: str = "capability") -> list[str]:
    """Problems with one capability of plugin ``plugin_name`` (empty if none)."""
    if not isinstance(cap, Capability):
        return [f"{where} must be a dwcore.plugins.Capability, got {_show(cap)}"]
    errors: list[str] = []
    if not isinstance(cap.category, Category):
        errors.append(
            f"{where}.category must be one of {', '.join(c.value for c in Category)}, "
            f"got {_show(cap.category)}"
        )
    if not isinstance(cap.id, str) or len(cap.id) > MAX_CAPABILITY_ID:
        errors.append(
            f"{where}.id must be a string of at most {MAX_CAPABILITY_ID} characters, "
            f"got {_show(cap.id)}"
        )
    elif not CAPABILITY_RE.fullmatch(cap.id):
        errors.append(
            f"{where}.id {_show(cap.id)} must look like 'category.plugin.action' "
            "(lower-case letters, digits, '_' and '-')"
        )
    else:
        cat, owner = cap.id.split(".")[:2]
        if isinstance(cap.category, Category) and cat != cap.category.value:
            errors.append(
                f"{where}.id {cap.id!r} starts with {cat!r}, not its category "
                f"{cap.category.value!r}"
            )
        if owner != plugin_name:
            errors.append(
                f"{where}.id {cap.id!r} names plugin {owner!r}; it must name its own plugin "
                f"{plugin_name!r}"
            )
    _text(errors, f"{where}.display_name", cap.display_name, MAX_DISPLAY_NAME)
    _text(errors, f"{where}.description", cap.description, MAX_DESCRIPTION, empty=True)
    return errors


def check_info(info: Any) -> list[str]:
    """Every way ``info`` departs from the metadata schema (empty when it is valid)."""
    if not isinstance(info, PluginInfo):
        return [f"metadata must be set with @dwcore.plugins.plugin_info, got {_show(info)}"]
    errors: list[str] = []
    if not isinstance(info.name, str) or not NAME_RE.fullmatch(info.name):
        errors.append(
            f"name must be 1 to 64 characters: a lower-case letter, then lower-case letters, "
            f"digits, '_' or '-', got {_show(info.name)}"
        )
    if not isinstance(info.category, Category):
        errors.append(
            f"category must be one of {', '.join(c.value for c in Category)}, "
            f"got {_show(info.category)}"
        )
    for key in ("version", "api_version"):
        value = getattr(info, key)
        if not isinstance(value, str) or not VERSION_RE.fullmatch(value):
            errors.append(
                f"{key} must look like MAJOR.MINOR or MAJOR.MINOR.PATCH (e.g. '1.2.0'), "
                f"got {_show(value)}"
            )
    _text(errors, "description", info.description, MAX_DESCRIPTION)
    _text(errors, "author", info.author, MAX_AUTHOR)
    name = info.name if isinstance(info.name, str) else ""
    if len(info.capabilities) > MAX_CAPABILITIES:
        errors.append(
            f"capabilities lists {len(info.capabilities)} entries, at most "
            f"{MAX_CAPABILITIES} are allowed"
        )
    else:
        seen: set[str] = set()
        for i, cap in enumerate(info.capabilities):
            errors += check_capability(cap, name, f"capabilities[{i}]")
            cid = getattr(cap, "id", None)
            if isinstance(cid, str) and cid in seen:
                errors.append(f"capabilities[{i}].id {cid!r} is declared twice")
            if isinstance(cid, str):
                seen.add(cid)
    if len(info.requires) > MAX_REQUIRES:
        errors.append(
            f"requires lists {len(info.requires)} entries, at most {MAX_REQUIRES} are allowed"
        )
    else:
        for i, req in enumerate(info.requires):
            try:
                parsed = parse_requirement(req)
            except InvalidArgumentError as exc:
                errors.append(f"requires[{i}]: {exc}")
                continue
            if parsed.name == name:
                errors.append(f"requires[{i}]: a plugin cannot require itself ({name!r})")
    return errors
