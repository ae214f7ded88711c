"""Finding plugins: the ``dwcore.plugins`` entry-point group of installed distributions.

A distribution offers plugins by declaring, in its ``pyproject.toml``::

    [project.entry-points."dwcore.plugins"]
    myfs = "mypackage.plugin:MyFsPlugin"

The entry point's name must be the plugin's name.  dwcore's own file, block
and RAM devices are declared the same way.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

__all__ = ["GROUP", "describe_entry_point", "discover"]

#: The entry-point group plugins register under.
GROUP = "dwcore.plugins"


def discover(group: str = GROUP) -> list[EntryPoint]:
    """The entry points of ``group`` in every installed distribution, sorted by name.

    An entry point seen twice with the same target (a distribution reachable
    through two ``sys.path`` entries) is listed once.
    """
    seen: set[tuple[str, str]] = set()
    found: list[EntryPoint] = []
    for ep in entry_points(group=group):
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            found.append(ep)
    found.sort(key=lambda ep: (ep.name, ep.value))
    return found


def describe_entry_point(ep: EntryPoint) -> str:
    """``name = module:attr`` and, when known, the distribution that declares it."""
    dist = getattr(ep, "dist", None)
    owner = f" (from {dist.name} {dist.version})" if dist is not None else ""
    return f"{ep.name} = {ep.value}{owner}"
