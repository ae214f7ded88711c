"""ctypes binding to Intel ISA-L (Debian's ``libisal2``), the reference dwcore races.

Only the calls the benchmarks and cross-checks need are bound: the Cauchy
matrix, matrix inversion, encode tables and ``ec_encode_data`` for
Reed-Solomon, ``pq_gen``/``xor_gen`` for RAID 5/6 parity and ``crc32_iscsi``.
ISA-L's per-instruction-set entry points (``ec_encode_data_base``,
``pq_gen_avx2``, ...) take the same arguments as the dispatching functions;
:meth:`Isal.has_symbol` says which the library exports, and the ``symbol``
argument of the ``prepare_*`` methods calls one of them instead.
Each wrapper validates its arguments and builds the ctypes pointer arrays per
call; the ``prepare_*`` variants build them once and return a
:class:`PreparedCall` so a timed loop pays only ctypes' own call cost.

The library is loaded once (:func:`load_isal`); where it is missing,
:class:`IsalUnavailableError` says how to install it.

>>> isal = load_isal()                               # doctest: +SKIP
>>> hex(isal.crc32c(b"123456789"))                   # doctest: +SKIP
'0xe3069283'
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence

import numpy as np

from dwcore.bench.buffers import aligned_empty
from dwcore.errors import DWError, InvalidArgumentError

__all__ = [
    "INSTALL_HINT",
    "RAID_ALIGN",
    "Isal",
    "IsalError",
    "IsalUnavailableError",
    "PreparedCall",
    "aligned_empty",
    "isal_available",
    "load_isal",
]

#: Shared-object names tried in order.
LIBRARY_NAMES = ("libisal.so.2", "libisal.so")
#: What to tell a user whose machine lacks the library.
INSTALL_HINT = "apt-get install libisal2"
#: Alignment (bytes) and length multiple ISA-L's pq_gen/xor_gen require.
RAID_ALIGN = 32
#: Largest buffer length ISA-L's ``int len`` arguments can carry.
_MAX_LEN = 2**31 - 1
#: Bytes of split-nibble table per GF(2^8) coefficient.
_TABLE_BYTES = 32

Buffers = Sequence[object] | np.ndarray


class IsalUnavailableError(DWError):
    """ISA-L's shared library could not be loaded on this machine."""


class IsalError(DWError):
    """ISA-L rejected a call (singular matrix, unsupported length or count)."""


class PreparedCall:
    """One ISA-L call with every argument converted up front.

    Calling the object runs the kernel once; it keeps the buffers it points
    at alive.  Raises :class:`IsalError` if ISA-L returns a failure code.
    """

    __slots__ = ("_args", "_fn", "_keep", "_what")

    def __init__(self, fn: object, args: tuple[object, ...], keep: object, what: str) -> None:
        self._fn = fn
        self._args = args
        self._keep = keep
        self._what = what

    def __call__(self) -> None:
        if self._fn(*self._args):  # type: ignore[operator]
            raise IsalError(f"ISA-L {self._what} failed")


def _as_bytes_view(buf: object, name: str, writable: bool) -> np.ndarray:
    """A zero-copy 1-D uint8 view of a contiguous buffer."""
    if isinstance(buf, np.ndarray):
        if not buf.flags.c_contiguous:
            raise InvalidArgumentError(f"{name} must be C-contiguous")
        arr = buf.reshape(-1).view(np.uint8)
    else:
        try:
            arr = np.frombuffer(buf, dtype=np.uint8)  # type: ignore[call-overload]
        except (TypeError, ValueError, BufferError) as exc:
            raise InvalidArgumentError(
                f"{name} must be a contiguous bytes-like buffer: {exc}"
            ) from exc
    if writable and not arr.flags.writeable:
        raise InvalidArgumentError(f"{name} must be writable (bytearray or numpy array)")
    return arr


def _rows(bufs: Buffers, count: int, name: str, writable: bool) -> list[np.ndarray]:
    """``count`` equal-length rows from a 2-D array or a sequence of buffers."""
    if isinstance(bufs, np.ndarray):
        if bufs.ndim != 2 or bufs.shape[0] != count:
            raise InvalidArgumentError(
                f"{name} must be a ({count}, n) array, got shape {bufs.shape}"
            )
        rows = [_as_bytes_view(bufs[i], f"{name}[{i}]", writable) for i in range(count)]
    else:
        if isinstance(bufs, (bytes, bytearray, memoryview, str)) or len(bufs) != count:
            raise InvalidArgumentError(f"{name} must be a sequence of {count} buffers")
        rows = [_as_bytes_view(b, f"{name}[{i}]", writable) for i, b in enumerate(bufs)]
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise InvalidArgumentError(f"{name} buffers differ in length: {sorted(lengths)}")
    return rows


def _common_length(groups: Sequence[Sequence[np.ndarray]], names: str) -> int:
    lengths = {len(r) for rows in groups for r in rows}
    if len(lengths) != 1:
        raise InvalidArgumentError(f"{names} must all have the same length: {sorted(lengths)}")
    n = lengths.pop()
    if n > _MAX_LEN:
        raise InvalidArgumentError(f"buffer length {n} exceeds ISA-L's limit of {_MAX_LEN}")
    return n


def _pointer_array(rows: Sequence[np.ndarray]) -> ctypes.Array[ctypes.c_void_p]:
    return (ctypes.c_void_p * len(rows))(*(r.ctypes.data for r in rows))


def _data_rows(data: Buffers, name: str = "data") -> list[np.ndarray]:
    count = data.shape[0] if isinstance(data, np.ndarray) and data.ndim == 2 else len(data)
    return _rows(data, count, name, writable=False)


class Isal:
    """The loaded ISA-L library with typed, argument-checked wrappers.

    Obtain the shared instance with :func:`load_isal`.
    """

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        #: Where the shared library was loaded from.
        self.path = path
        self._lib = lib
        self._variants: dict[str, object] = {}
        vp, pvp, cint, u8p = (
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_void_p,
        )
        self._cauchy = self._bind(lib, "gf_gen_cauchy1_matrix", None, u8p, cint, cint)
        self._invert = self._bind(lib, "gf_invert_matrix", cint, u8p, u8p, cint)
        self._init_tables = self._bind(lib, "ec_init_tables", None, cint, cint, u8p, u8p)
        self._encode = self._bind(lib, "ec_encode_data", None, cint, cint, cint, u8p, pvp, pvp)
        self._pq_gen = self._bind(lib, "pq_gen", cint, cint, cint, pvp)
        self._xor_gen = self._bind(lib, "xor_gen", cint, cint, cint, pvp)
        self._crc32_iscsi = self._bind(
            lib, "crc32_iscsi", ctypes.c_uint32, vp, cint, ctypes.c_uint32
        )

    def _bind(self, lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> object:
        try:
            fn = getattr(lib, name)
        except AttributeError as exc:
            raise IsalUnavailableError(
                f"{self.path} lacks {name}; install a complete ISA-L ({INSTALL_HINT})"
            ) from exc
        fn.restype = restype
        fn.argtypes = argtypes
        return fn

    def has_symbol(self, name: str) -> bool:
        """Whether the library exports ``name`` (e.g. ``"ec_encode_data_base"``)."""
        return hasattr(self._lib, name)

    def _variant(self, name: str, like: object) -> object:
        """``name`` bound with the prototype of ``like``, a dispatching function it replaces.

        Calling a variant the CPU cannot run kills the process (SIGILL): the
        caller checks the CPU first.
        """
        fn = self._variants.get(name)
        if fn is None:
            fn = self._bind(self._lib, name, like.restype, *like.argtypes)  # type: ignore[attr-defined]
            self._variants[name] = fn
        return fn

    # ------------------------------------------------------------------
    # Reed-Solomon
    # ------------------------------------------------------------------

    def gf_gen_cauchy1_matrix(self, k: int, m: int) -> np.ndarray:
        """The (k+m) x k systematic Cauchy generator matrix (identity on top)."""
        if k < 1 or m < 0 or k + m > 256:
            raise InvalidArgumentError(f"need 1 <= k and k + m <= 256, got k={k}, m={m}")
        out = np.zeros((k + m, k), dtype=np.uint8)
        self._cauchy(out.ctypes.data, k + m, k)  # type: ignore[operator]
        return out

    def gf_invert_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The inverse of a square GF(2^8) matrix; raises :class:`IsalError` if singular."""
        work = np.array(matrix, dtype=np.uint8, order="C", copy=True)
        if work.ndim != 2 or work.shape[0] != work.shape[1] or work.shape[0] == 0:
            raise InvalidArgumentError(f"matrix must be square, got shape {work.shape}")
        out = np.zeros_like(work)
        if self._invert(work.ctypes.data, out.ctypes.data, work.shape[0]):  # type: ignore[operator]
            raise IsalError(f"the {work.shape[0]}x{work.shape[0]} matrix is singular")
        return out

    def ec_init_tables(self, k: int, rows: int, coeffs: np.ndarray) -> np.ndarray:
        """Split-nibble tables (rows * k * 32 bytes) for a (rows, k) coefficient matrix."""
        a = np.ascontiguousarray(coeffs, dtype=np.uint8)
        if a.shape != (rows, k):
            raise InvalidArgumentError(f"coeffs must have shape ({rows}, {k}), got {a.shape}")
        tables = np.zeros(rows * k * _TABLE_BYTES, dtype=np.uint8)
        self._init_tables(k, rows, a.ctypes.data, tables.ctypes.data)  # type: ignore[operator]
        return tables

    def _encode_args(
        self, tables: np.ndarray | bytes, data: Buffers, out: Buffers
    ) -> tuple[tuple[object, ...], object]:
        din = _data_rows(data)
        k = len(din)
        rows_out = out.shape[0] if isinstance(out, np.ndarray) and out.ndim == 2 else len(out)
        dout = _rows(out, rows_out, "out", writable=True)
        n = _common_length((din, dout), "data and out")
        tbl = _as_bytes_view(tables, "tables", writable=False)
        if len(tbl) != k * rows_out * _TABLE_BYTES:
            raise InvalidArgumentError(
                f"tables hold {len(tbl)} bytes; k={k}, rows={rows_out} needs "
                f"{k * rows_out * _TABLE_BYTES}"
            )
        pin, pout = _pointer_array(din), _pointer_array(dout)
        args = (
            ctypes.c_int(n),
            ctypes.c_int(k),
            ctypes.c_int(rows_out),
            ctypes.c_void_p(tbl.ctypes.data),
            pin,
            pout,
        )
        return args, (din, dout, tbl, tables, data, out)

    def ec_encode_data(self, tables: np.ndarray | bytes, data: Buffers, out: Buffers) -> None:
        """``out[i] = sum_j a[i][j] * data[j]`` with ``tables`` from :meth:`ec_init_tables`.

        ``data`` is k equal-length buffers or a (k, n) array, ``out`` rows
        writable buffers or a (rows, n) array; no alignment is required.
        """
        args, _keep = self._encode_args(tables, data, out)
        self._encode(*args)  # type: ignore[operator]

    def prepare_encode(
        self,
        tables: np.ndarray | bytes,
        data: Buffers,
        out: Buffers,
        symbol: str = "ec_encode_data",
    ) -> PreparedCall:
        """:meth:`ec_encode_data` with its pointer arrays built once, for timed loops.

        ``symbol`` names another entry point with the same arguments, such as
        ``"ec_encode_data_base"`` (ISA-L's scalar code) or ``"ec_encode_data_avx2"``.
        """
        args, keep = self._encode_args(tables, data, out)
        fn = self._encode if symbol == "ec_encode_data" else self._variant(symbol, self._encode)
        return PreparedCall(fn, args, keep, symbol)

    # ------------------------------------------------------------------
    # RAID parity
    # ------------------------------------------------------------------

    @staticmethod
    def _raid_rows(
        data: Buffers, outs: Sequence[object], out_names: Sequence[str]
    ) -> list[np.ndarray]:
        din = _data_rows(data)
        if len(din) < 2:
            raise InvalidArgumentError(f"ISA-L needs at least 2 data buffers, got {len(din)}")
        dout = [
            _as_bytes_view(o, name, writable=True) for o, name in zip(outs, out_names, strict=True)
        ]
        everything = [*din, *dout]
        n = _common_length((everything,), "data and parity buffers")
        if n % RAID_ALIGN:
            raise InvalidArgumentError(
                f"ISA-L pq_gen/xor_gen need a length that is a multiple of {RAID_ALIGN}, got {n}"
            )
        for i, r in enumerate(everything):
            if r.ctypes.data % RAID_ALIGN:
                raise InvalidArgumentError(
                    f"ISA-L pq_gen/xor_gen need {RAID_ALIGN}-byte aligned buffers; buffer {i} "
                    f"starts at offset {r.ctypes.data % RAID_ALIGN} (allocate with aligned_empty)"
                )
        return everything

    def _raid_args(
        self, data: Buffers, outs: Sequence[object], out_names: Sequence[str]
    ) -> tuple[tuple[object, ...], object]:
        rows = self._raid_rows(data, outs, out_names)
        args = (ctypes.c_int(len(rows)), ctypes.c_int(len(rows[0])), _pointer_array(rows))
        return args, (rows, data, outs)

    def pq_gen(self, data: Buffers, p: object, q: object) -> None:
        """P = xor of the data, Q = sum 2^j * data[j] (Linux md order).

        Buffers must be 32-byte aligned and their length a multiple of 32
        (use :func:`aligned_empty`); at least 2 data buffers.
        """
        args, _keep = self._raid_args(data, (p, q), ("p", "q"))
        if self._pq_gen(*args):  # type: ignore[operator]
            raise IsalError("ISA-L pq_gen rejected its arguments")

    def prepare_pq(
        self, data: Buffers, p: object, q: object, symbol: str = "pq_gen"
    ) -> PreparedCall:
        """:meth:`pq_gen` with its pointer array built once, for timed loops.

        ``symbol`` names another entry point with the same arguments (``"pq_gen_base"``, ...).
        """
        args, keep = self._raid_args(data, (p, q), ("p", "q"))
        fn = self._pq_gen if symbol == "pq_gen" else self._variant(symbol, self._pq_gen)
        return PreparedCall(fn, args, keep, symbol)

    def xor_gen(self, data: Buffers, out: object) -> None:
        """``out`` = xor of the data buffers (same rules as :meth:`pq_gen`)."""
        args, _keep = self._raid_args(data, (out,), ("out",))
        if self._xor_gen(*args):  # type: ignore[operator]
            raise IsalError("ISA-L xor_gen rejected its arguments")

    def prepare_xor(self, data: Buffers, out: object, symbol: str = "xor_gen") -> PreparedCall:
        """:meth:`xor_gen` with its pointer array built once, for timed loops.

        ``symbol`` names another entry point with the same arguments (``"xor_gen_base"``, ...).
        """
        args, keep = self._raid_args(data, (out,), ("out",))
        fn = self._xor_gen if symbol == "xor_gen" else self._variant(symbol, self._xor_gen)
        return PreparedCall(fn, args, keep, symbol)

    # ------------------------------------------------------------------
    # CRC-32C
    # ------------------------------------------------------------------

    def crc32_iscsi(self, buf: object, init: int) -> int:
        """ISA-L's raw CRC-32C update: no pre- or post-inversion of the register.

        ``crc32_iscsi(b, 0xFFFFFFFF) ^ 0xFFFFFFFF`` is the standard CRC-32C.
        """
        if not 0 <= init <= 0xFFFFFFFF:
            raise InvalidArgumentError(f"init must be a 32-bit unsigned value, got {init}")
        view = _as_bytes_view(buf, "buf", writable=False)
        crc = init
        for start in range(0, len(view), _MAX_LEN):
            chunk = view[start : start + _MAX_LEN]
            crc = self._crc32_iscsi(chunk.ctypes.data, len(chunk), crc)  # type: ignore[operator]
        return int(crc)

    def crc32c(self, buf: object, crc: int = 0) -> int:
        """Standard CRC-32C (Castagnoli, iSCSI); pass a previous result to continue it.

        ``crc32c(b"123456789") == 0xE3069283`` and
        ``crc32c(b, crc32c(a)) == crc32c(a + b)``.
        """
        if not 0 <= crc <= 0xFFFFFFFF:
            raise InvalidArgumentError(f"crc must be a 32-bit unsigned value, got {crc}")
        return self.crc32_iscsi(buf, crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def _mapped_path(name: str) -> str:
    """The file the dynamic loader mapped for ``name`` (Linux), else ``name``."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if path.rsplit("/", 1)[-1].startswith(name):
                    return path
    except OSError:
        pass
    return name


@functools.cache
def _load() -> Isal:
    errors = []
    for name in LIBRARY_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
            continue
        return Isal(lib, _mapped_path(name))
    raise IsalUnavailableError(
        f"ISA-L is not installed ({'; '.join(errors)}); install it with `{INSTALL_HINT}`"
    )


def load_isal() -> Isal:
    """The process-wide ISA-L binding, loaded on first use.

    Raises :class:`IsalUnavailableError` (with the install command) when
    ``libisal.so.2`` cannot be found.
    """
    return _load()


def isal_available() -> bool:
    """Whether :func:`load_isal` succeeds on this machine."""
    try:
        load_isal()
    except IsalUnavailableError:
        return False
    return True
