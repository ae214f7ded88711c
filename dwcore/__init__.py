"""dwcore: a performance-first embeddable storage engine with SIMD C kernels.

The public surface grows layer by layer (see DESIGN.md); today it is the
native core: erasure coding and RAID parity (:mod:`dwcore.ec`), block
checksums and content hashes (:mod:`dwcore.checksum`), the crash-safe block
allocator (:mod:`dwcore.alloc`) and the instruction-set control of the
kernels (:mod:`dwcore.native`); the object store's embedding API is
:class:`dwcore.Instance` (:mod:`dwcore.store`) with copy-on-write snapshots
(:mod:`dwcore.snapshots`).
"""

from importlib.metadata import PackageNotFoundError, version

from dwcore import alloc, checksum, ec, errors, native
from dwcore.alloc import BlockAllocator
from dwcore.errors import (
    CorruptionError,
    DataLossError,
    DWError,
    InvalidArgumentError,
    NoSpaceError,
    TooFewShardsError,
    UnsupportedFormatError,
    UnsupportedISAError,
)
from dwcore.pool import Pool


def __getattr__(name: str) -> object:
    """``dwcore.Instance`` is imported on first use (it pulls in auth, audit and config)."""
    if name == "Instance":
        from dwcore.store import Instance

        return Instance
    raise AttributeError(f"module 'dwcore' has no attribute {name!r}")


try:
    __version__ = version("dwcore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "BlockAllocator",
    "CorruptionError",
    "DWError",
    "DataLossError",
    "Instance",
    "InvalidArgumentError",
    "NoSpaceError",
    "Pool",
    "TooFewShardsError",
    "UnsupportedFormatError",
    "UnsupportedISAError",
    "__version__",
    "alloc",
    "checksum",
    "ec",
    "errors",
    "native",
]
