"""Reading an object version's bytes from its extents: a range at once, or as a stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import TracebackType

from dwcore.errors import InvalidArgumentError, NotFoundError
from dwcore.pool import Pool
from dwcore.store.models import ObjectInfo

__all__ = ["ObjectStream", "check_range", "read_range"]


def check_range(info: ObjectInfo, offset: int, length: int | None) -> tuple[int, int]:
    """``(offset, end)`` of a valid byte range of ``info``; InvalidArgumentError otherwise."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgumentError(f"offset must be an int >= 0, got {offset!r}")
    if offset > info.size:
        raise InvalidArgumentError(
            f"offset {offset} is past the end of {info.key!r} ({info.size} bytes)"
        )
    if length is None:
        return offset, info.size
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise InvalidArgumentError(f"length must be an int >= 0 or None, got {length!r}")
    return offset, min(info.size, offset + length)


def _pieces(
    pools: Mapping[str, Pool], info: ObjectInfo, offset: int, end: int, chunk: int
) -> Iterator[bytes]:
    for ref in info.extents:
        lo, hi = max(offset, ref.offset), min(end, ref.offset + ref.length)
        if lo >= hi:
            continue
        pool = pools.get(ref.pool)
        if pool is None:
            raise NotFoundError(f"{info.key!r} is stored in pool {ref.pool!r}, which is not open")
        while lo < hi:
            n = min(chunk, hi - lo)
            yield pool.read(ref.extent, lo - ref.offset, n)
            lo += n


def read_range(
    pools: Mapping[str, Pool], info: ObjectInfo, offset: int = 0, length: int | None = None
) -> bytes:
    """Bytes ``[offset, offset + length)`` of the version ``info`` (clipped to its size)."""
    start, end = check_range(info, offset, length)
    parts = list(_pieces(pools, info, start, end, 1 << 62))
    return parts[0] if len(parts) == 1 else b"".join(parts)


class ObjectStream:
    """An iterator over a version's bytes in pieces; :meth:`read` for file-like use.

    It holds the version's extents pinned until exhausted or closed.
    """

    def __init__(
        self,
        pools: Mapping[str, Pool],
        info: ObjectInfo,
        offset: int,
        length: int | None,
        chunk_size: int,
        release: Callable[[], None],
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidArgumentError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
        start, end = check_range(info, offset, length)
        self.info = info
        self._release: Callable[[], None] | None = release
        self._it = _pieces(pools, info, start, end, chunk_size)
        self._buf = b""

    def __iter__(self) -> ObjectStream:
        return self

    def __next__(self) -> bytes:
        if self._buf:
            out, self._buf = self._buf, b""
            return out
        if self._release is None:
            raise StopIteration
        try:
            return next(self._it)
        except StopIteration:
            self.close()
            raise
        except BaseException:
            self.close()
            raise

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that remain when ``n < 0``); ``b""`` at the end."""
        parts = []
        have = 0
        for piece in self:
            parts.append(piece)
            have += len(piece)
            if 0 <= n <= have:
                break
        data = b"".join(parts)
        if 0 <= n < len(data):
            data, self._buf = data[:n], data[n:]
        return data

    def close(self) -> None:
        """Release the version (idempotent)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
