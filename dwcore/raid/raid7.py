"""RAID 7 (``raid-levels.md`` §5): RAID 4 placement behind a write-back cache.

Storage Computer's RAID 7 is hardware: a central cache with its own
real-time OS in front of striped data and one dedicated parity drive.  What
dwcore implements is its data semantics: the placement is RAID 4's (block
striping over devices 0..N-2, XOR parity on device N-1, md's level 4; min 3
devices, capacity (N-1)·S, tolerance 1) and writes are acknowledged from a
write-back cache (:mod:`dwcore.pool.writeback`) with these options:

* ``cache_bytes`` — dirty bytes held before writers wait for destaging
  (default 64 MiB);
* ``cache_mode`` — ``"journaled"`` (default: every acknowledged write is
  first appended to a write-ahead journal on a log device and fsynced, so it
  survives a power cut: the ``journal=`` device given to
  :meth:`~dwcore.pool.writeback.Raid7Pool.create`, which should be on another
  disk than the members, like a ZFS SLOG, or by default the file-backed log
  ``cache.journal`` in the pool directory; when the journal fails or is
  missing the pool runs write-through, reported in ``status()``, until
  ``replace_journal``) or ``"volatile"`` (RAM only: acknowledged writes not
  yet destaged are lost on a power cut; opt-in, and the pool warns and
  reports it);
* ``max_dirty_s`` — the age at which a dirty extent is destaged by the
  background destager (default 5 s);
* ``journal_on`` — where a journaled cache keeps its journal: ``"log"``
  (default: a log device, as above) or ``"members"`` (mirrored on two
  members' metadata areas, devices 0 and 1: about 1 MiB, so larger writes are
  written through).  Listed in :attr:`Raid7.options` only when not the
  default, so pools with a log device keep the parameters older dwcore reads.
"""

from __future__ import annotations

from typing import Any

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import DEFAULT_CHUNK_SIZE, check_int
from dwcore.raid.dedicated import Raid4

__all__ = ["CACHE_MODES", "JOURNAL_PLACES", "Raid7"]

#: The cache modes of §5 RAID 7.
CACHE_MODES = ("journaled", "volatile")
#: Where a journaled cache keeps its journal (§5: a log device, or mirrored on members).
JOURNAL_PLACES = ("log", "members")


class Raid7(Raid4):
    """RAID 4 placement with a write-back cache (module documentation)."""

    level = "7"
    OPTIONS = ("cache_bytes", "cache_mode", "max_dirty_s", "journal_on")
    #: The pool keeps a write-back cache in front of the row engine.
    write_back = True

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        cache_bytes: int = 64 << 20,
        cache_mode: str = "journaled",
        max_dirty_s: float = 5.0,
        journal_on: str = "log",
    ) -> None:
        self.cache_bytes = check_int("cache_bytes", cache_bytes, 4096)
        mode = cache_mode.lower() if isinstance(cache_mode, str) else ""
        if mode not in CACHE_MODES:
            raise InvalidArgumentError(
                f"cache_mode must be 'journaled' or 'volatile', got {cache_mode!r}"
            )
        self.cache_mode = mode
        if (
            isinstance(max_dirty_s, bool)
            or not isinstance(max_dirty_s, (int, float))
            or not 0 < max_dirty_s <= 3600
        ):
            raise InvalidArgumentError(
                f"max_dirty_s must be in (0, 3600] seconds, got {max_dirty_s!r}"
            )
        self.max_dirty_s = float(max_dirty_s)
        place = journal_on.lower() if isinstance(journal_on, str) else ""
        if place not in JOURNAL_PLACES:
            raise InvalidArgumentError(f"journal_on must be 'log' or 'members', got {journal_on!r}")
        if place == "members" and mode == "volatile":
            raise InvalidArgumentError("a volatile RAID 7 cache has no journal; journal_on given")
        self.journal_on = place
        super().__init__(n_devices, chunk_size)

    @property
    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "cache_bytes": self.cache_bytes,
            "cache_mode": self.cache_mode,
            "max_dirty_s": self.max_dirty_s,
        }
        if self.journal_on != "log":
            opts["journal_on"] = self.journal_on
        return opts
