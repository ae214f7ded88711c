"""Checksums: CRC-32C per instruction set against ISA-L and google_crc32c, batches, Fletcher-4.

Names follow the suite's ``{op}[{impl}-{size}]`` convention:

* ``crc32c[{isa}-{size}]`` — ``dwcore.checksum.crc32c`` on a dwcore
  instruction set; ``crc32c[isal-{size}]`` — ISA-L's ``crc32_iscsi``
  through ctypes; ``crc32c[google-{size}]`` — ``google_crc32c.value``.
  Sizes 64B, 4K, 1M in cache and 1M-cold (rotating through 256 MiB).  At
  64 B these are Python call costs (ctypes dominates ISA-L's); from 4 KiB up
  the kernels dominate.
* ``crc32c_blocks[{impl}-4Kx256]`` — the 256 CRCs of a 1 MiB buffer of 4 KiB
  blocks: one ``crc32c_blocks`` call, or a Python loop of
  ``google_crc32c.value`` per block (``google``); ``-cold`` rotates buffers.
* ``fletcher4[{isa}-{size}]`` — ZFS Fletcher-4, scalar and AVX2 (4K, 1M).

``extra_info["bytes"]`` is the payload per call, so GB/s = bytes / mean time.
``dwcore bench --only checksum`` measures the same things interleaved, with
the kernels in C loops, and judges the targets.
"""

from __future__ import annotations

import ctypes
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from dwcore import checksum
from dwcore.bench.arena import Arena, hot_set
from dwcore.bench.checksum import isal_crc32_iscsi_address
from dwcore.bench.isal import INSTALL_HINT, isal_available, load_isal
from dwcore.native import available_isas, force_isa

try:
    import google_crc32c
except ImportError:  # pragma: no cover - depends on the environment
    google_crc32c = None

#: Buffer sizes by id: (bytes, rotate through the 256 MiB arena).
CRC_SIZES: dict[str, tuple[int, bool]] = {
    "64B": (64, False),
    "4K": (4 << 10, False),
    "1M": (1 << 20, False),
    "1M-cold": (1 << 20, True),
}
BLOCK = 4 << 10
BLOCKS_BUFFER = 1 << 20

_NO_ISAL = pytest.mark.skipif(
    not isal_available(), reason=f"ISA-L is not installed: {INSTALL_HINT}"
)
_NO_GOOGLE = pytest.mark.skipif(google_crc32c is None, reason="google_crc32c is not installed")


def _cases(sizes: Sequence[str], extra: Sequence[tuple[str, Any]] = ()) -> list[Any]:
    """(impl, size_id) for every dwcore ISA that runs here and the ``extra``
    comparisons (skipped with a reason where missing); those only hold bytes,
    so they run in cache only."""
    impls = [(isa, []) for isa in available_isas()] + [(n, [m]) for n, m in extra]
    return [
        pytest.param(impl, size_id, id=f"{impl}-{size_id}", marks=marks)
        for impl, marks in impls
        for size_id in sizes
        if impl in available_isas() or not size_id.endswith("cold")
    ]


def _buffers(
    arena: Callable[[], Arena], size_id: str, sizes: dict[str, tuple[int, bool]]
) -> list[np.ndarray]:
    size, cold = sizes[size_id]
    if cold:
        return [s.reshape(-1) for s in arena().sets(1, size)]
    return [hot_set(1, size, seed=11).reshape(-1)]


@pytest.fixture
def lazy_arena(request: pytest.FixtureRequest) -> Callable[[], Arena]:
    """The suite's shared 256 MiB arena, built only when a cold case needs it."""
    return lambda: request.getfixturevalue("arena")


def _run(
    benchmark: Any, name: str, nbytes: int, impl: str, calls: Sequence[Callable[[], object]]
) -> None:
    benchmark.name = name
    benchmark.group = name.split("[")[0] + " " + name.split("-", 1)[1].rstrip("]")
    benchmark.extra_info.update(bytes=nbytes, impl=impl)
    rotation = itertools.cycle(calls)

    def step() -> None:
        next(rotation)()

    if impl in available_isas():
        with force_isa(impl):
            benchmark(step)
    else:
        benchmark(step)


@pytest.mark.parametrize(
    ("impl", "size_id"), _cases(list(CRC_SIZES), [("isal", _NO_ISAL), ("google", _NO_GOOGLE)])
)
def test_crc32c(benchmark: Any, lazy_arena: Callable[[], Arena], impl: str, size_id: str) -> None:
    """CRC-32C of one buffer."""
    bufs = _buffers(lazy_arena, size_id, CRC_SIZES)
    size = CRC_SIZES[size_id][0]
    expected = checksum.crc32c(bufs[0])
    calls: list[Callable[[], object]]
    if impl == "isal":
        isal = load_isal()
        fn = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32)(
            isal_crc32_iscsi_address(isal)
        )
        addresses = [b.ctypes.data for b in bufs]  # .ctypes costs a microsecond per access
        assert fn(addresses[0], size, 0xFFFFFFFF) ^ 0xFFFFFFFF == expected
        calls = [lambda a=a: fn(a, size, 0xFFFFFFFF) for a in addresses]
    elif impl == "google":  # it takes bytes only: in cache
        raw = bufs[0].tobytes()
        assert google_crc32c.value(raw) == expected
        calls = [lambda: google_crc32c.value(raw)]
    else:
        calls = [lambda b=b: checksum.crc32c(b) for b in bufs]
    _run(benchmark, f"crc32c[{impl}-{size_id}]", size, impl, calls)


@pytest.mark.parametrize(
    ("impl", "size_id"), _cases(["4Kx256", "4Kx256-cold"], [("google", _NO_GOOGLE)])
)
def test_crc32c_blocks(
    benchmark: Any, lazy_arena: Callable[[], Arena], impl: str, size_id: str
) -> None:
    """The CRC-32C of each 4 KiB block of a 1 MiB buffer."""
    sizes = {size_id: (BLOCKS_BUFFER, size_id.endswith("cold"))}
    bufs = _buffers(lazy_arena, size_id, sizes)
    calls: list[Callable[[], object]]
    if impl == "google":
        data = bufs[0].tobytes()
        starts = range(0, BLOCKS_BUFFER, BLOCK)
        value = google_crc32c.value
        expected = checksum.crc32c_blocks(bufs[0], BLOCK).tolist()
        assert [value(data[i : i + BLOCK]) for i in starts] == expected
        calls = [lambda: [value(data[i : i + BLOCK]) for i in starts]]
    else:
        calls = [lambda b=b: checksum.crc32c_blocks(b, BLOCK) for b in bufs]
    _run(benchmark, f"crc32c_blocks[{impl}-{size_id}]", BLOCKS_BUFFER, impl, calls)


@pytest.mark.parametrize(("impl", "size_id"), _cases(["4K", "1M"]))
def test_fletcher4(benchmark: Any, impl: str, size_id: str) -> None:
    """ZFS Fletcher-4 of one buffer."""
    size = CRC_SIZES[size_id][0]
    buf = hot_set(1, size, seed=12).reshape(-1)
    with force_isa("scalar"):
        expected = checksum.fletcher4(buf)
    with force_isa(impl):
        assert checksum.fletcher4(buf) == expected
    _run(benchmark, f"fletcher4[{impl}-{size_id}]", size, impl, [lambda: checksum.fletcher4(buf)])
