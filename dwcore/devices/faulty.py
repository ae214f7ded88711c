"""A fault-injecting device for tests: wraps any device and misbehaves on request.

:class:`FaultyDevice` passes requests to an inner device and can:

* **fail** — :meth:`~FaultyDevice.fail_now`, :meth:`~FaultyDevice.fail_after`
  (``n`` more operations succeed, then every later one fails) and
  :meth:`~FaultyDevice.fail_range` (requests touching a byte range fail), for
  reads, writes or both.  Failures raise
  :class:`~dwcore.devices.errors.DeviceIOError` with ``errno`` ``EIO``; a
  failed write changes nothing.  ``sync`` fails while writes fail.
* **corrupt** — :meth:`~FaultyDevice.corrupt` makes reads of a range return
  wrong bytes without touching the inner device; with ``persistent=True`` the
  stored bytes themselves are changed ("bit rot"), as a decaying medium would.
* **be slow** — ``latency`` seconds per request and ``bandwidth`` bytes per
  second (sleeps, so rebuild-time tests can measure throughput).
* **lose power** — every write since the last successful :meth:`sync` is
  remembered with the bytes it replaced.  :meth:`~FaultyDevice.power_cut`
  keeps any subset of those writes, decided per 4 KiB page (so one write can
  be torn), deterministically for a seed, by rewriting the inner device;
  afterwards nothing is unsynced and the device is used as if just reopened.

:meth:`~FaultyDevice.heal` clears injected failures and transient
corruption (persistent bit rot stays, as on a disk).  The device's ``path``
is the inner device's, so errors name the real device.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from dwcore.devices.base import Device
from dwcore.devices.errors import DeviceIOError
from dwcore.errors import InvalidArgumentError

__all__ = ["CorruptMode", "FaultKind", "FaultyDevice", "IOStats", "PowerCut"]

FaultKind = Literal["read", "write", "any"]
CorruptMode = Literal["flip", "bit", "random", "zero"]
#: ``keep(write_index, offset, length) -> bool`` decides one page-sized piece.
KeepFn = Callable[[int, int, int], bool]

_KINDS = ("read", "write", "any")
_MODES = ("flip", "bit", "random", "zero")


@dataclass
class IOStats:
    """Requests a :class:`FaultyDevice` has seen (including failed ones)."""

    reads: int = 0
    writes: int = 0
    syncs: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


@dataclass(frozen=True)
class PowerCut:
    """What :meth:`FaultyDevice.power_cut` did: ``(offset, length)`` pieces of
    unsynced writes that survived and that were lost, in write order."""

    kept: list[tuple[int, int]] = field(default_factory=list)
    lost: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Trigger:
    kind: str
    remaining: int


@dataclass(frozen=True)
class _Overlay:
    start: int
    end: int
    mode: str
    seed: int


def _kinds(kind: str) -> tuple[str, ...]:
    if kind not in _KINDS:
        raise InvalidArgumentError(f"kind must be one of {_KINDS}, got {kind!r}")
    return ("read", "write") if kind == "any" else (kind,)


def _corrupted(data: bytes | memoryview, mode: str, seed: int, start: int) -> bytes:
    """``data`` (which begins ``start`` bytes into a corrupted range) made wrong.

    ``flip`` inverts every byte, ``bit`` flips the lowest bit of the range's
    first byte only, ``random`` xors every byte with a nonzero pseudo-random
    value drawn from ``seed`` (so every byte differs), ``zero`` zeroes.
    """
    arr = np.frombuffer(data, dtype=np.uint8).copy()
    if mode == "flip":
        arr ^= 0xFF
    elif mode == "bit":
        if start == 0 and arr.size:
            arr[0] ^= 1
    elif mode == "random":
        rng = np.random.default_rng(seed)
        mask = rng.integers(1, 256, size=start + arr.size, dtype=np.uint8)[start:]
        arr ^= mask
    else:
        arr[:] = 0
    return arr.tobytes()


class FaultyDevice(Device):
    """Wraps ``inner`` and injects faults; see the module documentation.

    ``latency`` (seconds per request) and ``bandwidth`` (bytes per second,
    ``None`` for unlimited) may be changed at any time through the
    attributes of the same name.  ``page_size`` is the power-cut granularity.
    ``close_inner`` closes the inner device with this one.

    Unsynced writes are kept in memory (their data and the pages they
    replaced) until :meth:`sync`, so tests should sync now and then.
    """

    def __init__(
        self,
        inner: Device,
        *,
        latency: float = 0.0,
        bandwidth: float | None = None,
        page_size: int = 4096,
        close_inner: bool = True,
    ) -> None:
        if page_size <= 0:
            raise InvalidArgumentError(f"page_size must be positive, got {page_size}")
        super().__init__(inner.path, inner.size)
        self.inner = inner
        self.latency = latency
        self.bandwidth = bandwidth
        self.page_size = page_size
        self.close_inner = close_inner
        self.stats = IOStats()
        self._lock = threading.Lock()  # fault state and counters
        self._wlock = threading.Lock()  # write tracking against power cuts
        self._failing: set[str] = set()
        self._triggers: list[_Trigger] = []
        self._ranges: list[tuple[int, int, tuple[str, ...]]] = []
        self._overlays: list[_Overlay] = []
        self._pre: dict[int, bytes] = {}  # page index -> bytes before the first unsynced write
        self._log: list[tuple[int, bytes]] = []  # unsynced writes in order

    def describe(self) -> str:
        return f"FaultyDevice({self.inner.describe()})"

    # -- configuring faults -------------------------------------------------

    def fail_now(self, kind: FaultKind = "any") -> None:
        """Fail every request of ``kind`` from now on (until :meth:`heal`)."""
        with self._lock:
            self._failing.update(_kinds(kind))

    def fail_after(self, n_ops: int, kind: FaultKind = "any") -> None:
        """Let ``n_ops`` more requests of ``kind`` succeed, then fail that kind for good.

        ``"any"`` counts reads and writes together and then fails both.
        Syncs are not counted (they fail once writes fail).
        """
        if not isinstance(n_ops, int) or n_ops < 0:
            raise InvalidArgumentError(f"n_ops must be an int >= 0, got {n_ops!r}")
        _kinds(kind)
        with self._lock:
            if n_ops == 0:
                self._failing.update(_kinds(kind))
            else:
                self._triggers.append(_Trigger(kind, n_ops))

    def fail_range(self, offset: int, length: int, kind: FaultKind = "read") -> None:
        """Fail requests of ``kind`` that touch ``[offset, offset + length)`` (bad sectors)."""
        self._check_range(offset, length)
        with self._lock:
            self._ranges.append((offset, offset + length, _kinds(kind)))

    def corrupt(
        self,
        offset: int,
        length: int,
        mode: CorruptMode = "flip",
        *,
        persistent: bool = False,
        seed: int = 0,
    ) -> None:
        """Make reads of ``[offset, offset + length)`` return wrong bytes.

        Transient (default): the inner device keeps the right bytes, only what
        reads return is changed, until :meth:`heal`.  ``persistent``: the
        stored bytes are changed now (bit rot; no sync needed, and a power
        cut does not undo it).  See ``mode`` values in :func:`_corrupted`.
        """
        if mode not in _MODES:
            raise InvalidArgumentError(f"mode must be one of {_MODES}, got {mode!r}")
        self._check_range(offset, length)
        if length == 0:
            return
        if not persistent:
            with self._lock:
                self._overlays.append(_Overlay(offset, offset + length, mode, seed))
            return
        with self._wlock:
            bad = _corrupted(self.inner.pread(offset, length), mode, seed, 0)
            self.inner.pwrite(offset, bad)
            ps = self.page_size
            for page in range(offset // ps, (offset + length - 1) // ps + 1):
                if page in self._pre:  # rot the saved pre-image too
                    start = page * ps
                    img = bytearray(self._pre[page])
                    lo, hi = max(offset, start), min(offset + length, start + len(img))
                    img[lo - start : hi - start] = bad[lo - offset : hi - offset]
                    self._pre[page] = bytes(img)

    def heal(self) -> None:
        """Clear injected failures, pending ``fail_after`` counts and transient corruption."""
        with self._lock:
            self._failing.clear()
            self._triggers.clear()
            self._ranges.clear()
            self._overlays.clear()

    @property
    def unsynced_writes(self) -> int:
        """How many writes a power cut could lose now."""
        return len(self._log)

    # -- power cut ------------------------------------------------------------

    def power_cut(
        self, seed: int = 0, keep: Literal["random", "none", "all"] | KeepFn = "random"
    ) -> PowerCut:
        """Cut the power: keep some unsynced writes, lose the rest.

        Each unsynced write is cut at page boundaries (absolute offsets,
        multiples of ``page_size``); each piece survives or not: all
        (``"all"``), none (``"none"``), a coin toss drawn from ``seed``
        (``"random"``; the same seed and writes give the same result), or
        ``keep(write_index, offset, length)``.  The inner device then holds
        the synced bytes with the kept pieces applied in write order, and is
        synced.
        """
        if not callable(keep) and keep not in ("random", "none", "all"):
            raise InvalidArgumentError(
                f"keep must be 'random', 'none', 'all' or a callable, got {keep!r}"
            )
        rng = random.Random(seed)
        ps = self.page_size
        result = PowerCut()
        with self._wlock:
            pieces: list[tuple[int, int, bytes]] = []
            for index, (off, data) in enumerate(self._log):
                pos, end = off, off + len(data)
                while pos < end:
                    stop = min((pos // ps + 1) * ps, end)
                    if keep == "all":
                        kept = True
                    elif keep == "none":
                        kept = False
                    elif keep == "random":
                        kept = rng.random() < 0.5
                    else:
                        kept = bool(keep(index, pos, stop - pos))
                    if kept:
                        pieces.append((pos, stop, data[pos - off : stop - off]))
                        result.kept.append((pos, stop - pos))
                    else:
                        result.lost.append((pos, stop - pos))
                    pos = stop
            for page, img in sorted(self._pre.items()):
                self.inner.pwrite(page * ps, img)
            for pos, _stop, chunk in pieces:
                self.inner.pwrite(pos, chunk)
            self.inner.sync()
            self._pre.clear()
            self._log.clear()
        return result

    # -- I/O ----------------------------------------------------------------

    def _before(self, kind: str, offset: int | None, length: int) -> None:
        """Count the request, then raise if a fault applies to it."""
        with self._lock:
            if kind == "read":
                self.stats.reads += 1
                self.stats.bytes_read += length
            elif kind == "write":
                self.stats.writes += 1
                self.stats.bytes_written += length
            else:
                self.stats.syncs += 1
            if kind != "sync":
                for trig in list(self._triggers):
                    if trig.kind in (kind, "any"):
                        if trig.remaining == 0:
                            self._failing.update(_kinds(trig.kind))
                            self._triggers.remove(trig)
                        else:
                            trig.remaining -= 1
            failing = ("write" if kind == "sync" else kind) in self._failing
            if not failing and offset is not None:
                end = offset + length
                failing = any(
                    kind in kinds and start < end and offset < stop
                    for start, stop, kinds in self._ranges
                )
        if failing:
            what = f"{kind} of {length} bytes at offset {offset}" if offset is not None else kind
            raise DeviceIOError(
                f"{self._path}: injected I/O error on {what}",
                self._path,
                offset=offset,
                length=None if offset is None else length,
            )

    def _delay(self, nbytes: int) -> None:
        wait = self.latency + (nbytes / self.bandwidth if self.bandwidth else 0.0)
        if wait > 0:
            time.sleep(wait)

    def _read_into(self, offset: int, view: memoryview) -> None:
        n = view.nbytes
        self._before("read", offset, n)
        self._delay(n)
        self.inner.preadinto(offset, view)
        with self._lock:
            overlays = [o for o in self._overlays if o.start < offset + n and offset < o.end]
        for o in overlays:
            lo, hi = max(o.start, offset), min(o.end, offset + n)
            piece = view[lo - offset : hi - offset]
            piece[:] = _corrupted(piece, o.mode, o.seed, lo - o.start)

    def _write(self, offset: int, view: memoryview) -> None:
        n = view.nbytes
        self._before("write", offset, n)
        self._delay(n)
        ps, size = self.page_size, self._size
        with self._wlock:
            for page in range(offset // ps, (offset + n - 1) // ps + 1):
                if page not in self._pre:
                    start = page * ps
                    self._pre[page] = self.inner.pread(start, min(ps, size - start))
            self.inner.pwrite(offset, view)
            self._log.append((offset, bytes(view)))

    def _sync(self) -> None:
        self._before("sync", None, 0)
        self._delay(0)
        with self._wlock:
            self.inner.sync()
            self._pre.clear()
            self._log.clear()

    def _close(self) -> None:
        if self.close_inner:
            self.inner.close()
