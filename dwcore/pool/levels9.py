"""Pool classes of the issue 9 levels that extend the row engine.

* Declustered and RAID FR — :class:`dwcore.pool.draid.DeclusteredPool`
  (rebuild into distributed spare space, copy-back);
* RAID 7 — :class:`dwcore.pool.writeback.Raid7Pool` (journaled write-back
  cache);
* Beyond — :class:`dwcore.pool.growth.BeyondPool` (zones over mixed-size
  devices, growth by adding devices);
* Adaptive — :class:`dwcore.pool.migration.AdaptivePool` (mirror/parity
  migration by write heat).

:meth:`dwcore.pool.pool.Pool._class_for` asks :func:`pool_class` for the
class of a layout that no other hook claims.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dwcore.pool.pool import Pool

__all__ = ["pool_class"]


def pool_class(layout: Any) -> type[Pool] | None:
    """The pool class ``layout`` needs, or None for the plain engine."""
    from dwcore.raid.declustered import Declustered

    if isinstance(layout, Declustered):
        from dwcore.pool.draid import DeclusteredPool

        return DeclusteredPool
    if getattr(layout, "adaptive", False):
        from dwcore.pool.migration import AdaptivePool

        return AdaptivePool
    if getattr(layout, "zoned", False):
        from dwcore.pool.growth import BeyondPool

        return BeyondPool
    if getattr(layout, "write_back", False):
        from dwcore.pool.writeback import Raid7Pool

        return Raid7Pool
    return None
