"""RAM devices: an anonymous memory map used as a disk, for tests and caches.

Memory is allocated lazily by the kernel (untouched pages cost nothing and
read as zeros), so a large :class:`RamDevice` is cheap until written.
Contents vanish on :meth:`~dwcore.devices.base.Device.close`.
"""

from __future__ import annotations

import itertools
import mmap

from dwcore.devices.base import Device
from dwcore.errors import InvalidArgumentError

__all__ = ["RamDevice"]

_names = itertools.count()


class RamDevice(Device):
    """A device of ``size`` bytes held in memory; its path is ``ram:NAME``.

    :meth:`sync` is a no-op: there is nothing more durable to flush to, and a
    completed write is already visible to every reader.  To test what a power
    cut does to unsynced writes, wrap it in
    :class:`~dwcore.devices.faulty.FaultyDevice`.
    """

    def __init__(self, size: int, name: str | None = None) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise InvalidArgumentError(f"size must be a positive int (bytes), got {size!r}")
        label = name if name is not None else str(next(_names))
        super().__init__(f"ram:{label}", size)
        self._in_memory = True
        try:
            self._map = mmap.mmap(-1, size)
        except (OSError, OverflowError, ValueError) as exc:
            raise InvalidArgumentError(
                f"cannot allocate a RAM device of {size} bytes: {exc}"
            ) from None
        self._view = memoryview(self._map)

    def _read(self, offset: int, length: int) -> bytes:
        return bytes(self._view[offset : offset + length])

    def _read_into(self, offset: int, view: memoryview) -> None:
        view[:] = self._view[offset : offset + view.nbytes]

    def _write(self, offset: int, view: memoryview) -> None:
        self._view[offset : offset + view.nbytes] = view

    def _sync(self) -> None:
        """Nothing to do: RAM has no slower, more durable tier behind it."""

    def _close(self) -> None:
        self._view.release()
        self._map.close()
