"""The 29 RAID levels by name (``raid-levels.md`` §7) and the layout factory."""

from __future__ import annotations

import inspect
from typing import Any

from dwcore.errors import DWError, InvalidArgumentError
from dwcore.raid.adaptive import Adaptive
from dwcore.raid.base import DEFAULT_CHUNK_SIZE, Layout
from dwcore.raid.beyond import Beyond
from dwcore.raid.composed import Raid01, Raid03, Raid50, Raid60, Raid100
from dwcore.raid.declustered import Declustered, Fr
from dwcore.raid.dedicated import Raid3, Raid4
from dwcore.raid.dp import Dp
from dwcore.raid.enhanced import Raid1E, Raid5E, Raid5EE, Raid6E
from dwcore.raid.hamming import Raid2
from dwcore.raid.md10 import Md10
from dwcore.raid.mirror import Raid1
from dwcore.raid.nested import Raid10
from dwcore.raid.parity import Raid5, Raid6
from dwcore.raid.raid7 import Raid7
from dwcore.raid.raidz import RaidZ1, RaidZ2, RaidZ3
from dwcore.raid.striping import Raid0
from dwcore.raid.symmetrix import RaidS
from dwcore.raid.unraid import Unraid

#: The canonical level names, in the order of ``raid-levels.md`` §7.
LEVELS: tuple[str, ...] = (
    "0", "1", "2", "3", "4", "5", "6",
    "10", "01", "03", "50", "60", "100",
    "1E", "5E", "5EE", "6E",
    "Z1", "Z2", "Z3",
    "DP", "S", "7", "FR",
    "MD10", "ADAPTIVE", "BEYOND", "UNRAID", "DECLUSTERED",
)  # fmt: skip

_IMPLEMENTED: dict[str, type[Layout]] = {
    "0": Raid0,
    "1": Raid1,
    "5": Raid5,
    "6": Raid6,
    "10": Raid10,
    "2": Raid2,
    "3": Raid3,
    "4": Raid4,
    "01": Raid01,
    "03": Raid03,
    "50": Raid50,
    "60": Raid60,
    "100": Raid100,
    "1E": Raid1E,
    "5E": Raid5E,
    "5EE": Raid5EE,
    "6E": Raid6E,
    "MD10": Md10,
    "DP": Dp,
    "S": RaidS,
    "Z1": RaidZ1,
    "Z2": RaidZ2,
    "Z3": RaidZ3,
    "UNRAID": Unraid,
    "DECLUSTERED": Declustered,
    "FR": Fr,
    "7": Raid7,
    "BEYOND": Beyond,
    "ADAPTIVE": Adaptive,
}

#: Levels this version can build, in LEVELS order.
AVAILABLE: tuple[str, ...] = tuple(name for name in LEVELS if name in _IMPLEMENTED)

# Spellings beyond "RAID<name>" (matched after upper-casing and dropping
# spaces, '-' and '_'; a leading "RAID" is also dropped).
_ALIASES: dict[str, str] = {
    "STRIPE": "0",
    "STRIPING": "0",
    "MIRROR": "1",
    "MIRRORING": "1",
    "1+0": "10",
    "0+1": "01",
    "0+3": "03",
    "53": "03",
    "5+0": "50",
    "6+0": "60",
    "1+0+0": "100",
    "10+0": "100",
    "Z": "Z1",
    "RDP": "DP",
    "NETAPPDP": "DP",
    "MDRAID10": "MD10",
    "LINUXRAID10": "MD10",
    "AUTORAID": "ADAPTIVE",
    "BEYONDRAID": "BEYOND",
    "DROBO": "BEYOND",
    "DRAID": "DECLUSTERED",
    "PARITYDECLUSTERING": "DECLUSTERED",
}


class LevelUnavailableError(DWError):
    """A canonical RAID level that this version of dwcore cannot build yet."""

    def __init__(self, level: str) -> None:
        super().__init__(
            f"level {level} is not available in this version (available: {', '.join(AVAILABLE)})"
        )
        self.level = level


def canonical(name: str | int) -> str:
    """The canonical name (an entry of :data:`LEVELS`) of a level spelling.

    Case-insensitive; accepts "raid5", "RAID-6", "1+0", "raidz2", "z2",
    "md10", "rdp", "dRAID", ... and plain integers (``5``).  Unknown names
    raise :class:`~dwcore.errors.InvalidArgumentError` listing the valid ones.
    """
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise InvalidArgumentError(f"RAID level must be a name such as '5', got {name!r}")
    key = str(name).upper()
    for ch in " -_":
        key = key.replace(ch, "")
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("RAID") and key != "RAID":
        key = key[4:]
    key = _ALIASES.get(key, key)
    if key in LEVELS:
        return key
    raise InvalidArgumentError(f"unknown RAID level {name!r}; valid levels: {', '.join(LEVELS)}")


def is_available(name: str | int) -> bool:
    """True if this version can build level ``name`` (any accepted spelling)."""
    return canonical(name) in _IMPLEMENTED


def layout(
    name: str | int, n_devices: int, chunk_size: int | None = None, **options: Any
) -> Layout:
    """Build the layout of level ``name`` over ``n_devices`` devices.

    ``chunk_size`` is the stripe unit in bytes (a power of two ≥ 4 KiB;
    default: the level's ``DEFAULT_CHUNK`` where it has one — Declustered
    16 MiB, FR 256 KiB, Adaptive 64 KiB — else 512 KiB as in md).  Level
    options:

    * ``"5"``: ``algorithm`` — ``"left-symmetric"`` (default, md's default),
      ``"left-asymmetric"``, ``"right-symmetric"``, ``"right-asymmetric"``;
    * ``"10"``: ``copies`` — devices per mirror group (default 2);
    * ``"2"``: ``secded`` — add the overall-parity device (N = 8, 16, 32);
    * ``"01"``: ``copies`` — replicas (default 2); ``"03"``: ``width`` — devices
      per RAID-0 member (default 2); ``"50"``, ``"60"``: ``groups`` (default 2);
    * ``"100"``: ``arrays``, ``copies`` (default 2 each), ``top_chunk_size``
      (default 16 × chunk);
    * ``"MD10"``: ``layout`` — mdadm's ``"n2"``, ``"f2"``, ``"o2"``, ``"n2f2"``
      ... (or ``near``, ``far``, ``offset``), ``far_sets`` — ``"original"`` or
      ``"improved"``; ``size`` binds far copies to a data area (pools do it);
    * ``"5EE"``: ``compacted``; ``"5E"``, ``"6E"``: ``absent``, ``reshape_from``,
      ``position`` — the spare-space state, set by :mod:`dwcore.pool.spare`.

    Raises :class:`LevelUnavailableError` for a canonical level not built in
    this version and :class:`~dwcore.errors.InvalidArgumentError` for unknown
    names, unknown options or out-of-range values.
    """
    level = canonical(name)
    cls = _IMPLEMENTED.get(level)
    if cls is None:
        raise LevelUnavailableError(level)
    unknown = sorted(set(options) - set(cls.OPTIONS))
    if unknown:
        allowed = ", ".join(cls.OPTIONS) if cls.OPTIONS else "none"
        raise InvalidArgumentError(
            f"unknown option(s) for RAID {level}: {', '.join(unknown)} (allowed: {allowed})"
        )
    if chunk_size is None:
        chunk_size = getattr(cls, "DEFAULT_CHUNK", DEFAULT_CHUNK_SIZE)
    return cls(n_devices, chunk_size, **options)


def layout_class(name: str | int) -> type[Layout]:
    """The :class:`Layout` subclass implementing level ``name``."""
    level = canonical(name)
    cls = _IMPLEMENTED.get(level)
    if cls is None:
        raise LevelUnavailableError(level)
    return cls


def level_options(name: str | int) -> dict[str, Any]:
    """The options level ``name`` accepts, with their defaults."""
    cls = layout_class(name)
    sig = inspect.signature(cls.__init__)
    return {opt: sig.parameters[opt].default for opt in cls.OPTIONS}
