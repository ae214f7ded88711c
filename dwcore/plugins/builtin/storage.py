"""The built-in storage plugins: file, block-device and RAM devices.

They are thin: each turns :meth:`~dwcore.plugins.StoragePlugin.open_device`
into the constructor of its :mod:`dwcore.devices` class, and refuses options
it does not know, naming the ones it accepts.
"""

from __future__ import annotations

from typing import Any

from dwcore.devices import BlockDevice, Device, FileDevice, RamDevice
from dwcore.errors import InvalidArgumentError
from dwcore.plugins.metadata import Capability, Category, plugin_info
from dwcore.plugins.protocols import StoragePlugin

__all__ = ["BlockStoragePlugin", "FileStoragePlugin", "RamStoragePlugin"]

_AUTHOR = "dwcore"


def _cap(plugin: str, action: str, display: str, description: str) -> Capability:
    return Capability(f"storage.{plugin}.{action}", display, description, Category.STORAGE)


def _options(given: dict[str, Any], allowed: dict[str, Any], plugin: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        names = ", ".join(sorted(allowed)) or "none"
        raise InvalidArgumentError(
            f"storage plugin {plugin!r} does not take option(s) {', '.join(unknown)} "
            f"(allowed: {names})"
        )
    return {**allowed, **given}


def _check_size(dev: Device, size: int | None) -> Device:
    if size is not None and dev.size < size:
        have = dev.size
        dev.close()
        raise InvalidArgumentError(
            f"{dev.path}: device has {have} bytes, less than the {size} bytes asked for"
        )
    return dev


@plugin_info(
    name="file",
    description="A regular (sparse) file used as a device.",
    author=_AUTHOR,
    version="1.0.0",
    category=Category.STORAGE,
    capabilities=[
        _cap("file", "open_device", "Open a file device", "Open an existing file as a device."),
        _cap("file", "create_device", "Create a file device", "Create a sparse file of a size."),
    ],
)
class FileStoragePlugin(StoragePlugin):
    """Files as devices (:class:`~dwcore.devices.FileDevice`).

    Options: ``overwrite`` (create over an existing file), ``readonly`` and
    ``lock`` (open).
    """

    def open_device(
        self, path: str, size: int | None = None, create: bool = False, **opts: Any
    ) -> Device:
        """Open the file at ``path`` or, with ``create``, make a sparse one of ``size`` bytes."""
        if create:
            o = _options(opts, {"overwrite": False}, "file")
            if size is None:
                raise InvalidArgumentError("size is required to create a file device")
            return FileDevice.create(path, size, overwrite=bool(o["overwrite"]))
        o = _options(opts, {"readonly": False, "lock": True}, "file")
        return _check_size(
            FileDevice.open(path, readonly=bool(o["readonly"]), lock=bool(o["lock"])), size
        )


@plugin_info(
    name="block",
    description="A block device (/dev/...) with O_DIRECT I/O where requests are aligned.",
    author=_AUTHOR,
    version="1.0.0",
    category=Category.STORAGE,
    capabilities=[
        _cap("block", "open_device", "Open a block device", "Open /dev/... read-write."),
    ],
)
class BlockStoragePlugin(StoragePlugin):
    """Block devices (:class:`~dwcore.devices.BlockDevice`).  Options: ``direct``, ``lock``."""

    def open_device(
        self, path: str, size: int | None = None, create: bool = False, **opts: Any
    ) -> Device:
        """Open the block device at ``path``; it must hold at least ``size`` bytes."""
        if create:
            raise InvalidArgumentError(
                f"{path}: block devices cannot be created; open an existing one (create=False)"
            )
        o = _options(opts, {"direct": True, "lock": True}, "block")
        return _check_size(
            BlockDevice.open(path, direct=bool(o["direct"]), lock=bool(o["lock"])), size
        )


@plugin_info(
    name="ram",
    description="Memory used as a device, for tests and caches; contents vanish on close.",
    author=_AUTHOR,
    version="1.0.0",
    category=Category.STORAGE,
    capabilities=[
        _cap("ram", "create_device", "Create a RAM device", "Allocate a device in memory."),
    ],
)
class RamStoragePlugin(StoragePlugin):
    """RAM devices (:class:`~dwcore.devices.RamDevice`); ``path`` names the device."""

    def open_device(
        self, path: str, size: int | None = None, create: bool = False, **opts: Any
    ) -> Device:
        """A new RAM device of ``size`` bytes named ``path`` (a ``ram:`` prefix is dropped).

        RAM devices are always new, so ``create`` changes nothing.
        """
        _options(opts, {}, "ram")
        if size is None:
            raise InvalidArgumentError("size is required for a RAM device")
        name = path.removeprefix("ram:") if path else None
        return RamDevice(size, name=name or None)
