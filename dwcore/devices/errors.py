"""Errors raised by :mod:`dwcore.devices`; each names the device at fault."""

from __future__ import annotations

import errno as _errno

from dwcore.errors import DWError, InvalidArgumentError

__all__ = [
    "DeviceBoundsError",
    "DeviceClosedError",
    "DeviceDeadError",
    "DeviceError",
    "DeviceIOError",
    "DeviceInUseError",
    "ForeignDeviceError",
]


class DeviceError(DWError):
    """Base class of device errors; ``device`` is the device's path or description."""

    def __init__(self, message: str, device: str = "") -> None:
        super().__init__(message)
        self.device = device


class DeviceIOError(DeviceError, OSError):
    """An I/O operation on a device failed (a real ``OSError`` or an injected fault).

    It is also an :class:`OSError`, so ``errno`` is set (``EIO`` for injected
    faults) and code that handles ``OSError`` keeps working.  ``offset`` and
    ``length`` locate the failed request (``None`` for ``sync``).
    """

    def __init__(
        self,
        message: str,
        device: str = "",
        *,
        errno: int = _errno.EIO,
        offset: int | None = None,
        length: int | None = None,
    ) -> None:
        OSError.__init__(self, errno, message)
        self.device = device
        self.offset = offset
        self.length = length

    def __str__(self) -> str:
        return str(self.strerror)


class DeviceClosedError(DeviceError):
    """An operation was attempted on a closed device."""


class DeviceBoundsError(DeviceError, InvalidArgumentError):
    """A request reaches outside the device (or has a negative offset or length)."""


class DeviceInUseError(DeviceError):
    """A device holds a file system, a partition table or a dwcore superblock
    (see :func:`dwcore.devices.superblock.check_unused`), or is locked by another opener."""


class ForeignDeviceError(DeviceError):
    """A device's superblock belongs to another pool, or names another device index."""


class DeviceDeadError(DeviceIOError):
    """A device failed so persistently that its circuit breaker opened.

    Raised at once, without touching the device, by
    :class:`~dwcore.devices.resilient.ResilientDevice` until the breaker lets a
    probe through; ``reason`` is the last error the device gave.  Its
    ``errno`` is ``ENODEV``, so retry policies that retry ``EIO`` leave it alone.
    """

    def __init__(self, message: str, device: str = "", *, reason: str = "") -> None:
        super().__init__(message, device, errno=_errno.ENODEV)
        self.reason = reason
