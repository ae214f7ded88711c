"""Loading plugins: the validation suite, dependency order, init and handshake.

:class:`PluginManager` takes the entry points of the ``dwcore.plugins`` group
(or any list of them) and, for each:

1. resolves the entry point (an import error rejects the plugin);
2. checks it is a class with ``@plugin_info`` metadata that follows the
   schema, that the entry point's name is the plugin's name and no other
   plugin took that name;
3. checks the plugin API version it was written for against
   :data:`~dwcore.plugins.metadata.API_VERSION`;
4. checks the class defines every method of its category's protocol;
5. checks its declared dependencies: present, loadable, at a satisfying
   version, without cycles;
6. builds it (dependencies first), timing ``__init__``, and shakes hands:
   the capabilities it reports are checked against the schema, and the
   errors it declares transient (``transient_errors()``: exception classes
   or predicates) are registered with the retry classifier
   (:data:`dwcore.resilience.TRANSIENT`) until the manager closes.

A plugin that fails any step is rejected with a :class:`Rejection` naming it
and the reason; the others still load.  Plugins that depend on a rejected
plugin are rejected too, saying which dependency failed.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from typing import Any, TypeVar

from dwcore.errors import InvalidArgumentError, PluginError
from dwcore.plugins.discovery import describe_entry_point, discover
from dwcore.plugins.metadata import (
    API_VERSION,
    MAX_CAPABILITIES,
    Capability,
    Category,
    PluginInfo,
    Requirement,
    api_compatible,
    check_capability,
    check_info,
    info_of,
    parse_requirement,
)
from dwcore.plugins.protocols import CATEGORY_CLASSES, missing_methods
from dwcore.resilience.classify import TRANSIENT, TransientRegistry

__all__ = ["Handshake", "LoadReport", "LoadedPlugin", "PluginManager", "Rejection"]

_P = TypeVar("_P")
_MAX_REASON = 300
#: Most transient-error declarations one plugin may make.
MAX_TRANSIENT = 32


@dataclass(frozen=True)
class Handshake:
    """What a plugin tells dwcore when it is loaded."""

    plugin_id: str
    name: str
    version: str
    category: Category
    capabilities: tuple[Capability, ...]
    init_duration_s: float


@dataclass(frozen=True)
class Rejection:
    """A plugin that failed validation or init: its name (or entry point) and why."""

    name: str
    entry_point: str
    reason: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.entry_point}) rejected: {self.reason}"


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin that passed validation: its instance, metadata and handshake."""

    plugin: Any
    info: PluginInfo
    handshake: Handshake
    entry_point: str


@dataclass
class LoadReport:
    """The outcome of :meth:`PluginManager.load_all`."""

    loaded: list[LoadedPlugin] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no plugin was rejected."""
        return not self.rejected


@dataclass
class _Candidate:
    ep: EntryPoint
    where: str
    cls: type
    info: PluginInfo
    requires: list[Requirement]


def _brief(exc: BaseException) -> str:
    """``Type: message`` of an exception raised by plugin code, printable and bounded."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # a hostile __str__
        text = type(exc).__name__
    text = re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", text)
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _brief_value(value: Any) -> str:
    text = re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", repr(value))
    return (text if len(text) <= 60 else text[:57] + "...") + f" ({type(value).__name__})"


class PluginManager:
    """Discovers, validates and loads plugins; see the module documentation.

    ``entry_points`` defaults to :func:`~dwcore.plugins.discovery.discover`
    (the installed ``dwcore.plugins`` group).  ``clock`` times each plugin's
    init (seconds).  ``transient`` is the registry plugins' transient errors
    go to.  Nothing loads until :meth:`load_all`.
    """

    def __init__(
        self,
        entry_points: Iterable[EntryPoint] | None = None,
        *,
        api_version: str = API_VERSION,
        clock: Callable[[], float] = time.perf_counter,
        transient: TransientRegistry = TRANSIENT,
    ) -> None:
        self._eps = list(entry_points) if entry_points is not None else None
        self._api = api_version
        self._clock = clock
        self._transient = transient
        self._declared: list[Any] = []
        self._loaded: dict[str, LoadedPlugin] = {}
        self._report: LoadReport | None = None

    # -- loading --------------------------------------------------------------

    def load_all(self) -> LoadReport:
        """Validate and load every plugin; returns (and keeps) the report."""
        self.close()
        eps = self._eps if self._eps is not None else discover()
        report = LoadReport()
        candidates: dict[str, _Candidate] = {}
        for ep in eps:
            cand = self._check(ep, candidates, report)
            if cand is not None:
                candidates[cand.info.name] = cand
        order = self._resolve(candidates, report)
        for name in order:
            self._start(candidates[name], report)
        report.loaded.sort(key=lambda lp: lp.handshake.plugin_id)
        report.rejected.sort(key=lambda r: r.name)
        self._report = report
        return report

    def _check(
        self, ep: EntryPoint, taken: dict[str, _Candidate], report: LoadReport
    ) -> _Candidate | None:
        where = describe_entry_point(ep)

        def reject(reason: str, name: str = ep.name) -> None:
            report.rejected.append(Rejection(name, where, reason))

        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:
            reject(f"the entry point does not resolve: {_brief(exc)}")
            return None
        if not isinstance(obj, type):
            reject(f"the entry point names a {type(obj).__name__}, not a plugin class")
            return None
        info = info_of(obj)
        if info is None:
            reject(f"class {obj.__qualname__} has no @dwcore.plugins.plugin_info metadata")
            return None
        problems = check_info(info)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            reject("invalid metadata: " + "; ".join(problems[:3]) + more)
            return None
        if ep.name != info.name:
            reject(f"the entry point is named {ep.name!r} but the plugin is named {info.name!r}")
            return None
        if info.name in taken:
            reject(f"the name {info.name!r} is already taken by {taken[info.name].where}")
            return None
        if not api_compatible(info.api_version, self._api):
            reject(
                f"written for plugin API {info.api_version}; this dwcore offers {self._api} "
                f"(a plugin loads when its major version is equal and its minor is not newer)"
            )
            return None
        missing = missing_methods(obj, info.category)
        if missing:
            base = CATEGORY_CLASSES[info.category].__name__
            reject(
                f"does not implement the {info.category.value} protocol ({base}): "
                f"missing {', '.join(missing)}"
            )
            return None
        requires = [parse_requirement(r) for r in info.requires]
        return _Candidate(ep, where, obj, info, requires)

    def _resolve(self, cands: dict[str, _Candidate], report: LoadReport) -> list[str]:
        """Reject unmet dependencies and cycles; the rest in dependency order."""

        def reject(name: str, reason: str) -> None:
            report.rejected.append(Rejection(name, cands.pop(name).where, reason))

        rejected_names = {r.name for r in report.rejected}
        changed = True
        while changed:
            changed = False
            for name in sorted(cands):
                for req in cands[name].requires:
                    dep = cands.get(req.name)
                    if dep is None:
                        why = "was rejected" if req.name in rejected_names else "is not installed"
                        reject(name, f"requires plugin {req.name!r}, which {why}")
                    elif not req.satisfied_by(dep.info.version):
                        reject(
                            name,
                            f"requires {req}, but {req.name} {dep.info.version} is installed",
                        )
                    else:
                        continue
                    rejected_names.add(name)
                    changed = True
                    break
        order: list[str] = []
        state: dict[str, int] = {}  # 1: on the stack, 2: done

        def visit(name: str, stack: list[str]) -> None:
            state[name] = 1
            for req in cands[name].requires:
                if state.get(req.name) == 1:
                    cycle = [*stack[stack.index(req.name) :], req.name]
                    raise _Cycle(cycle)
                if state.get(req.name) is None:
                    visit(req.name, [*stack, req.name])
            state[name] = 2
            order.append(name)

        while True:
            try:
                for name in sorted(cands):
                    if name not in state:
                        visit(name, [name])
                return order
            except _Cycle as cyc:
                path = " -> ".join(cyc.names)
                for name in sorted(set(cyc.names)):
                    reject(name, f"dependency cycle: {path}")
                order.clear()
                state.clear()
                # dependents of the cycle now miss a dependency
                return self._resolve(cands, report) if cands else []

    def _start(self, cand: _Candidate, report: LoadReport) -> None:
        info = cand.info

        def reject(reason: str) -> None:
            report.rejected.append(Rejection(info.name, cand.where, reason))

        for req in cand.requires:
            if req.name not in self._loaded:
                reject(f"requires plugin {req.name!r}, which failed to start")
                return
        start = self._clock()
        try:
            plugin = cand.cls()
        except (Exception, SystemExit) as exc:
            reject(f"raised during init: {_brief(exc)}")
            return
        duration = max(0.0, self._clock() - start)
        try:
            hook = getattr(plugin, "capabilities", None)
            raw = hook() if callable(hook) else info.capabilities
            caps = list(itertools.islice(raw, MAX_CAPABILITIES + 1))
        except Exception as exc:
            self._close_quietly(plugin)
            reject(f"raised during the handshake: {_brief(exc)}")
            return
        try:
            hook = getattr(plugin, "transient_errors", None)
            declared = list(itertools.islice(hook(), MAX_TRANSIENT + 1)) if callable(hook) else []
        except Exception as exc:
            self._close_quietly(plugin)
            reject(f"raised during the handshake: {_brief(exc)}")
            return
        problems = [] if len(caps) <= MAX_CAPABILITIES else ["too many capabilities"]
        for i, cap in enumerate(caps):
            problems += check_capability(cap, info.name, f"capabilities[{i}]")
        if len(declared) > MAX_TRANSIENT:
            problems.append(f"transient_errors lists more than {MAX_TRANSIENT} entries")
        for i, item in enumerate(declared):
            is_exc = isinstance(item, type) and issubclass(item, BaseException)
            if not is_exc and (isinstance(item, type) or not callable(item)):
                problems.append(
                    f"transient_errors[{i}] must be an exception class or a predicate "
                    f"(a function of the exception), got {_brief_value(item)}"
                )
        if problems:
            self._close_quietly(plugin)
            reject("invalid handshake: " + "; ".join(problems[:3]))
            return
        shake = Handshake(
            plugin_id=info.plugin_id,
            name=info.name,
            version=info.version,
            category=info.category,
            capabilities=tuple(caps),
            init_duration_s=duration,
        )
        for item in declared:
            if isinstance(item, type):
                self._transient.register_type(item)
            else:
                self._transient.register_predicate(item)
            self._declared.append(item)
        loaded = LoadedPlugin(plugin, info, shake, cand.where)
        self._loaded[info.name] = loaded
        report.loaded.append(loaded)

    @staticmethod
    def _close_quietly(plugin: Any) -> None:
        close = getattr(plugin, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # the plugin is being rejected already
                return

    # -- using plugins ----------------------------------------------------------

    @property
    def report(self) -> LoadReport:
        """The report of the last :meth:`load_all` (loads on first use)."""
        if self._report is None:
            return self.load_all()
        return self._report

    def names(self) -> list[str]:
        """Names of the loaded plugins, sorted."""
        self.report  # noqa: B018 - loads on first use
        return sorted(self._loaded)

    def loaded(self, name: str) -> LoadedPlugin:
        """The loaded plugin ``name``; a rejected or unknown one raises :class:`PluginError`."""
        report = self.report
        found = self._loaded.get(name)
        if found is not None:
            return found
        for rej in report.rejected:
            if rej.name == name:
                raise PluginError(str(rej))
        known = ", ".join(sorted(self._loaded)) or "none"
        raise PluginError(f"no plugin named {name!r} is installed (loaded plugins: {known})")

    def get(self, name: str, kind: type[_P] | None = None) -> _P:
        """The instance of plugin ``name``; with ``kind``, it must be of that category."""
        lp = self.loaded(name)
        if kind is not None:
            expected = next((c for c, k in CATEGORY_CLASSES.items() if k is kind), None)
            if expected is None:
                raise InvalidArgumentError(f"kind must be a category class, got {kind!r}")
            if lp.info.category is not expected:
                raise PluginError(
                    f"plugin {name!r} is a {lp.info.category.value} plugin, "
                    f"not a {expected.value} plugin"
                )
        return lp.plugin  # type: ignore[no-any-return]

    def by_category(self, category: Category | str) -> list[LoadedPlugin]:
        """Loaded plugins of ``category``, sorted by name."""
        try:
            cat = Category(category)
        except ValueError:
            allowed = ", ".join(c.value for c in Category)
            raise InvalidArgumentError(
                f"category must be one of {allowed}, got {category!r}"
            ) from None
        self.report  # noqa: B018 - loads on first use
        return [lp for _, lp in sorted(self._loaded.items()) if lp.info.category is cat]

    def handshakes(self) -> list[Handshake]:
        """Handshakes of every loaded plugin, sorted by plugin id."""
        return [lp.handshake for lp in self.report.loaded]

    def close(self) -> None:
        """Close every loaded plugin (dependents first), withdraw the transient errors
        they declared, and forget them."""
        for name in reversed(list(self._loaded)):
            self._close_quietly(self._loaded[name].plugin)
        for item in self._declared:
            self._transient.unregister(item)
        self._declared.clear()
        self._loaded.clear()
        self._report = None


class _Cycle(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(" -> ".join(names))
        self.names = names
