"""The pool engine: extents striped over devices by a RAID layout.

>>> import tempfile
>>> from dwcore.pool import Pool
>>> with Pool.create(tempfile.mkdtemp() + "/p", "5", 4, 8 << 20, chunk_size=16384) as pool:
...     ext = pool.write(b"hello")
...     pool.read(ext)
b'hello'

See :mod:`dwcore.pool.pool` for the on-disk geometry, write-hole safety,
checksums, degraded operation and rebuild.
"""

from dwcore.pool.extent import EXTENT_SIZE, Extent
from dwcore.pool.pool import DeviceSpec, Pool, PoolDegradedWarning, PoolDeviceInUseError
from dwcore.pool.status import DeviceInfo, DeviceState, Mismatch, PoolStatus, ScrubReport

__all__ = [
    "EXTENT_SIZE",
    "DeviceInfo",
    "DeviceSpec",
    "DeviceState",
    "Extent",
    "Mismatch",
    "Pool",
    "PoolDegradedWarning",
    "PoolDeviceInUseError",
    "PoolStatus",
    "ScrubReport",
]
