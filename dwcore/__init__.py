"""dwcore: a performance-first embeddable storage engine with SIMD C kernels.

The public surface grows layer by layer (see DESIGN.md); today it is the
erasure-coding and parity kernels (:mod:`dwcore.ec`) and the instruction-set
control of the native core (:mod:`dwcore.native`).
"""

from importlib.metadata import PackageNotFoundError, version

from dwcore import errors, native
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

try:
    __version__ = version("dwcore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CorruptionError",
    "DWError",
    "DataLossError",
    "InvalidArgumentError",
    "NoSpaceError",
    "TooFewShardsError",
    "UnsupportedFormatError",
    "UnsupportedISAError",
    "__version__",
    "errors",
    "native",
]
