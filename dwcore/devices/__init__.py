"""Devices: the storage a pool stripes over (files, block devices, RAM).

* :class:`Device` — the interface: ``size``, ``pread``, ``preadinto``,
  ``pwrite``, ``sync``, ``close``, ``path``, ``describe()``; a context
  manager; thread-safe positional I/O.
* :class:`FileDevice` (sparse files), :class:`BlockDevice` (``/dev/...``,
  ``O_DIRECT`` where aligned), :class:`RamDevice`.
* :class:`FaultyDevice` — wraps any device to inject I/O errors, corruption,
  slowness and power cuts in tests.
* :class:`ResilientDevice` — wraps any device to retry transient errors and
  fail a dead one fast (:class:`DeviceDeadError`) through a circuit breaker.
* Superblocks (:mod:`dwcore.devices.superblock`): :class:`Superblock`,
  :func:`write_superblock`, :func:`read_superblock`, :func:`data_area`.
* :func:`probe` / :func:`check_unused` — is a disk already in use?

>>> from dwcore.devices import RamDevice
>>> with RamDevice(1 << 20) as dev:
...     dev.pwrite(4093, b"hello")
...     dev.pread(4093, 5)
5
b'hello'
"""

from __future__ import annotations

from dwcore.devices.base import Device
from dwcore.devices.block import BlockDevice
from dwcore.devices.errors import (
    DeviceBoundsError,
    DeviceClosedError,
    DeviceDeadError,
    DeviceError,
    DeviceInUseError,
    DeviceIOError,
    ForeignDeviceError,
)
from dwcore.devices.faulty import FaultyDevice, IOStats, PowerCut
from dwcore.devices.file import FileDevice
from dwcore.devices.probe import Signature, check_unused, probe, probe_bytes
from dwcore.devices.ram import RamDevice
from dwcore.devices.resilient import ResilientDevice
from dwcore.devices.superblock import (
    FORMAT_VERSION,
    METADATA_SIZE,
    MIN_DEVICE_SIZE,
    SUPERBLOCK_SIZE,
    DataArea,
    MissingSuperblockError,
    Superblock,
    SuperblockCopies,
    SuperblockFlags,
    check_member,
    data_area,
    read_superblock,
    read_superblock_copies,
    superblock_offsets,
    write_superblock,
)

__all__ = [
    "FORMAT_VERSION",
    "METADATA_SIZE",
    "MIN_DEVICE_SIZE",
    "SUPERBLOCK_SIZE",
    "BlockDevice",
    "DataArea",
    "Device",
    "DeviceBoundsError",
    "DeviceClosedError",
    "DeviceDeadError",
    "DeviceError",
    "DeviceIOError",
    "DeviceInUseError",
    "FaultyDevice",
    "FileDevice",
    "ForeignDeviceError",
    "IOStats",
    "MissingSuperblockError",
    "PowerCut",
    "RamDevice",
    "ResilientDevice",
    "Signature",
    "Superblock",
    "SuperblockCopies",
    "SuperblockFlags",
    "check_member",
    "check_unused",
    "data_area",
    "probe",
    "probe_bytes",
    "read_superblock",
    "read_superblock_copies",
    "superblock_offsets",
    "write_superblock",
]
