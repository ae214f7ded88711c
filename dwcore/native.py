"""Which SIMD instruction set the native kernels use.

The best set the CPU supports is chosen once at import (CPUID and XGETBV);
``DWCORE_FORCE_ISA=scalar|ssse3|avx2`` in the environment pins one, and
:func:`force_isa` switches temporarily (for tests and benchmarks that compare
paths in one process).  Switching is global: do not switch while other
threads are running kernels.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dwcore import _native

__all__ = [
    "active_isa",
    "available_isas",
    "detected_isa",
    "force_isa",
    "isa_names",
    "set_isa",
]

_switch_lock = threading.RLock()


def detected_isa() -> str:
    """The best instruction set this CPU and OS support ("scalar", "ssse3", "avx2")."""
    return _native.detected_isa()


def active_isa() -> str:
    """The instruction set the kernels use now."""
    return _native.active_isa()


def available_isas() -> list[str]:
    """Instruction sets that can run here, slowest first."""
    return _native.available_isas()


def isa_names() -> list[str]:
    """Every instruction set this build knows, slowest first."""
    return _native.isa_names()


def set_isa(name: str) -> None:
    """Use instruction set ``name`` for every kernel from now on.

    Raises :class:`~dwcore.errors.InvalidArgumentError` for an unknown name and
    :class:`~dwcore.errors.UnsupportedISAError` when the CPU cannot run it.
    """
    with _switch_lock:
        _native.set_isa(name)


@contextmanager
def force_isa(name: str) -> Iterator[str]:
    """Use instruction set ``name`` inside the ``with`` block, then restore."""
    with _switch_lock:
        previous = _native.active_isa()
        _native.set_isa(name)
        try:
            yield name
        finally:
            _native.set_isa(previous)
