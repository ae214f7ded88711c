"""RAID layouts: pure placement functions for the pool engine.

``dwcore.raid.LEVELS`` names the 29 levels of ``raid-levels.md`` §7;
:func:`layout` builds one (levels 0, 1, 5, 6 and 10 in this version; the
others raise :class:`LevelUnavailableError`).  A layout maps logical bytes to
stripes (:meth:`Layout.locate`), a stripe to its members on the devices
(:meth:`Layout.stripe` → :class:`StripeMap`), and decides exactly which
failure sets lose data (:meth:`Layout.survives`).
"""

from dwcore.raid.adaptive import Adaptive
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    Codec,
    Layout,
    Location,
    Member,
    P,
    Piece,
    Q,
    R,
    Role,
    RoleKind,
    StripeMap,
)
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
from dwcore.raid.parity import RAID5_ALGORITHMS, Raid5, Raid6
from dwcore.raid.raid7 import Raid7
from dwcore.raid.raidz import RaidZ, RaidZ1, RaidZ2, RaidZ3
from dwcore.raid.registry import (
    AVAILABLE,
    LEVELS,
    LevelUnavailableError,
    canonical,
    is_available,
    layout,
    layout_class,
    level_options,
)
from dwcore.raid.striping import Raid0
from dwcore.raid.symmetrix import RaidS
from dwcore.raid.unraid import Unraid
from dwcore.raid.volumes import ParityGroup, Span, VolumeLayout

__all__ = [
    "AVAILABLE",
    "DEFAULT_CHUNK_SIZE",
    "LEVELS",
    "MIN_CHUNK_SIZE",
    "RAID5_ALGORITHMS",
    "Adaptive",
    "Beyond",
    "Codec",
    "Declustered",
    "Dp",
    "Fr",
    "Layout",
    "LevelUnavailableError",
    "Location",
    "Md10",
    "Member",
    "P",
    "ParityGroup",
    "Piece",
    "Q",
    "R",
    "Raid0",
    "Raid01",
    "Raid03",
    "Raid1",
    "Raid1E",
    "Raid2",
    "Raid3",
    "Raid4",
    "Raid5",
    "Raid5E",
    "Raid5EE",
    "Raid6",
    "Raid6E",
    "Raid7",
    "Raid10",
    "Raid50",
    "Raid60",
    "Raid100",
    "RaidS",
    "RaidZ",
    "RaidZ1",
    "RaidZ2",
    "RaidZ3",
    "Role",
    "RoleKind",
    "Span",
    "StripeMap",
    "Unraid",
    "VolumeLayout",
    "canonical",
    "is_available",
    "layout",
    "layout_class",
    "level_options",
]
