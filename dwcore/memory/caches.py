"""The registry of caches that give memory back under pressure.

A cache registers ``shrink(level) -> bytes_freed`` under a name.  When the
pressure level rises, :meth:`CacheRegistry.shrink` calls every callback;
:data:`~dwcore.memory.levels.KEEP_FRACTION` is the suggested share to keep
(elevated: trim to 3/4, high: halve, critical: clear).  A bound method is held
weakly, so a cache that is garbage-collected drops out by itself.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable
from types import MethodType

from dwcore.errors import InvalidArgumentError
from dwcore.memory.levels import KEEP_FRACTION, Level

__all__ = ["CACHES", "CacheRegistry", "ShrinkFn"]

#: ``shrink(level) -> bytes freed``.
ShrinkFn = Callable[[Level], int]


class CacheRegistry:
    """Named shrink callbacks; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Callable[[], ShrinkFn | None]] = {}

    def register(self, name: str, shrink: ShrinkFn) -> None:
        """Add ``shrink`` under ``name`` (names are unique; a dead weak entry is replaced)."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"cache name must be a non-empty string, got {name!r}")
        if not callable(shrink):
            raise InvalidArgumentError(f"shrink must be callable, got {shrink!r}")
        ref: Callable[[], ShrinkFn | None]
        if isinstance(shrink, MethodType):
            ref = weakref.WeakMethod(shrink)
        else:

            def ref() -> ShrinkFn:
                return shrink

        with self._lock:
            old = self._entries.get(name)
            if old is not None and old() is not None:
                raise InvalidArgumentError(f"a cache named {name!r} is already registered")
            self._entries[name] = ref

    def unregister(self, name: str) -> None:
        """Remove the cache ``name`` (unknown names are ignored)."""
        with self._lock:
            self._entries.pop(name, None)

    def names(self) -> list[str]:
        """Names of the live registered caches, sorted."""
        with self._lock:
            return sorted(n for n, ref in self._entries.items() if ref() is not None)

    def shrink(self, level: Level) -> dict[str, int]:
        """Ask every cache to shrink for ``level``; bytes freed per cache name.

        A callback that raises is reported with a warning and counts 0; the
        others still run.
        """
        with self._lock:
            for name in [n for n, ref in self._entries.items() if ref() is None]:
                del self._entries[name]
            entries = list(self._entries.items())
        freed: dict[str, int] = {}
        for name, ref in entries:
            fn = ref()
            if fn is None:
                continue
            try:
                got = fn(level)
            except Exception as exc:  # one broken cache must not stop the others
                warnings.warn(
                    f"cache {name!r} failed to shrink: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                got = 0
            freed[name] = got if isinstance(got, int) and got > 0 else 0
        return freed


def _shrink_decode_plans(level: Level) -> int:
    from dwcore.ec import _matrix

    return _matrix.shrink_plan_caches(KEEP_FRACTION[level])


#: The process-wide registry; the erasure codes' decode-plan cache is in it.
CACHES = CacheRegistry()
CACHES.register("ec.decode_plans", _shrink_decode_plans)
