"""Layout vocabulary shared by every RAID level (``raid-levels.md`` §0.1).

A layout is a pure, deterministic placement function: no I/O, no state
beyond its parameters.  The logical address space is cut into *stripes*;
:meth:`Layout.stripe` returns a :class:`StripeMap` listing every member of a
stripe as ``(device, device_offset, length, role)`` together with the
:class:`Codec` that relates the members, so a pool can write, read degraded,
rebuild and scrub any level with one generic loop.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from dwcore.errors import InvalidArgumentError

#: Smallest chunk (stripe unit) a layout accepts, in bytes.
MIN_CHUNK_SIZE = 4096
#: Chunk used when the caller gives none: Linux md's default.
DEFAULT_CHUNK_SIZE = 512 * 1024


class RoleKind(str, enum.Enum):
    """What a member of a stripe holds (§0.1)."""

    DATA = "data"
    COPY = "copy"
    P = "P"
    Q = "Q"
    R = "R"
    PARITY = "parity"
    SPARE = "spare"


@dataclass(frozen=True)
class Role:
    """The role of one stripe member.

    ``index`` is the data index d for ``data(d)``, the copy number i for
    ``copy(i)``, the parity row j for ``parity(j)`` and the spare number for
    ``spare``; it is 0 for P, Q and R.  ``of`` is the data index a copy
    replicates (None for every other kind).
    """

    kind: RoleKind
    index: int = 0
    of: int | None = None

    @staticmethod
    def data(d: int) -> Role:
        """``data(d)``: the d-th data chunk of the stripe, in logical order."""
        return Role(RoleKind.DATA, d)

    @staticmethod
    def copy(i: int, of: int) -> Role:
        """``copy(i)`` of data index ``of`` (mirrors: every copy is equal)."""
        return Role(RoleKind.COPY, i, of)

    @staticmethod
    def parity(j: int) -> Role:
        """``parity(j)``: row j of a general (Reed-Solomon) parity matrix."""
        return Role(RoleKind.PARITY, j)

    @staticmethod
    def spare(i: int = 0) -> Role:
        """Reserved spare space (never holds data until a rebuild uses it)."""
        return Role(RoleKind.SPARE, i)

    @property
    def data_index(self) -> int | None:
        """The logical data index this member carries (data or copy), else None."""
        if self.kind is RoleKind.DATA:
            return self.index
        if self.kind is RoleKind.COPY:
            return self.of
        return None

    def __str__(self) -> str:
        if self.kind in (RoleKind.P, RoleKind.Q, RoleKind.R):
            return str(self.kind.value)
        if self.kind is RoleKind.COPY:
            return f"copy({self.index} of {self.of})"
        return f"{self.kind.value}({self.index})"


#: The XOR parity member.
P = Role(RoleKind.P)
#: The second (g = 2) parity member.
Q = Role(RoleKind.Q)
#: The third (g = 4) parity member.
R = Role(RoleKind.R)


class Codec(str, enum.Enum):
    """How the members of a stripe relate (which ``dwcore.ec`` code protects it).

    * ``none`` — data only, nothing can be reconstructed;
    * ``mirror`` — every copy of data index d is byte-identical;
    * ``xor`` — ``P = XOR of data``: :func:`dwcore.ec.xor_parity` / ``xor_recover``;
    * ``pq-md`` — P+Q in Linux md order (``Q = sum 2^d D_d``):
      :func:`dwcore.ec.pq_parity` / ``pq_recover`` with ``order="md"``;
    * ``rdp`` — row-diagonal parity (RAID-DP): members ``data(r·n+j)``, row
      parities ``parity(r)``, diagonals ``parity(p-1+d)``; XOR equations
      solved by :func:`dwcore.raid.dp.rdp_schedule`.
    """

    NONE = "none"
    MIRROR = "mirror"
    XOR = "xor"
    PQ_MD = "pq-md"
    #: Independent ``xor`` groups side by side in one stripe (RAID 50, see
    #: :attr:`StripeMap.groups`); ``parity_count`` is per group.
    XOR_GROUPS = "xor-groups"
    #: Independent ``pq-md`` groups side by side in one stripe (RAID 60).
    PQ_MD_GROUPS = "pq-md-groups"
    #: RAID 2's Hamming code: check members ``parity(j)`` are XORs of data
    #: subsets (:mod:`dwcore.raid.hamming`), erasures solved over GF(2).
    HAMMING = "hamming"
    RDP = "rdp"
    #: RAID-Z2: P+Q in ZFS order (``Q = sum 2^(n-1-i) D_i``), ``order="zfs"``.
    PQ_ZFS = "pq-zfs"
    #: RAID-Z3: P+Q+R in ZFS order (R with generator 4).
    PQR_ZFS = "pqr-zfs"
    #: P+Q+R in Linux md order (``R = sum 4^d D_d``; Declustered P = 3).
    PQR_MD = "pqr-md"
    #: Reed-Solomon with ISA-L's Cauchy matrix (:class:`dwcore.ec.ReedSolomon`): data,
    #: then ``parity(0..m-1)``; MDS, tolerates as many lost members as it has parity
    #: members (``parity_count`` is 0: see :meth:`StripeMap.parity_limit`).
    RS_CAUCHY = "rs-cauchy"

    @property
    def parity_count(self) -> int:
        """Parity members of a parity codec (0 for none and mirror; for ``rdp``, whose
        stripes hold 2·(p-1) parity chunks, the 2 devices' worth it tolerates)."""
        return {
            Codec.XOR: 1,
            Codec.PQ_MD: 2,
            Codec.RDP: 2,
            Codec.PQ_ZFS: 2,
            Codec.PQR_ZFS: 3,
            Codec.PQR_MD: 3,
            Codec.XOR_GROUPS: 1,
            Codec.PQ_MD_GROUPS: 2,
        }.get(self, 0)

    @property
    def group_codec(self) -> Codec | None:
        """For a grouped codec, the codec of each group (None for the others)."""
        return {Codec.XOR_GROUPS: Codec.XOR, Codec.PQ_MD_GROUPS: Codec.PQ_MD}.get(self)


@dataclass(frozen=True)
class Member:
    """One extent of a stripe: ``length`` bytes at ``device_offset`` on ``device``.

    Offsets are relative to the start of the device's data area (§0.1).
    """

    device: int
    device_offset: int
    length: int
    role: Role


@dataclass(frozen=True)
class StripeMap:
    """Every member of stripe ``index`` and the codec that protects them.

    ``members`` are in codec shard order: the data members ``data(0..k-1)``
    (for mirrors: the copies of data 0, then of data 1, ...), then the parity
    members P, Q (``parity(0..m-1)`` for Reed-Solomon), then spares.  This is
    exactly the shard list ``dwcore.ec`` expects, so a pool can pass the
    members' buffers straight to the codec.
    """

    index: int
    codec: Codec
    k: int
    members: tuple[Member, ...]
    #: Grouped codecs only: the member indices of each independent group, in
    #: the group's codec shard order (its data members, then its P[, Q]).
    groups: tuple[tuple[int, ...], ...] = ()

    def subgroups(self) -> tuple[tuple[tuple[int, ...], StripeMap], ...]:
        """Grouped codecs: ``(member indices, the group as a plain stripe)`` per group
        (built once per map: read paths ask for them per stripe they touch)."""
        cached: tuple[tuple[tuple[int, ...], StripeMap], ...] | None = self.__dict__.get(
            "_subgroups"
        )
        if cached is not None:
            return cached
        base = self.codec.group_codec
        if base is None:
            return ()
        out = []
        for idx in self.groups:
            mems = tuple(self.members[j] for j in idx)
            k = sum(1 for m in mems if m.role.kind is RoleKind.DATA)
            sub = tuple(
                Member(m.device, m.device_offset, m.length, Role.data(d) if d < k else m.role)
                for d, m in enumerate(mems)
            )
            out.append((idx, StripeMap(self.index, base, k, sub)))
        self.__dict__["_subgroups"] = result = tuple(out)  # frozen: no __setattr__
        return result

    @property
    def devices(self) -> tuple[int, ...]:
        """The devices holding members, in member order."""
        return tuple(m.device for m in self.members)

    def data_members(self, d: int) -> tuple[Member, ...]:
        """The members that carry data index ``d`` (one, or every mirror copy)."""
        if not 0 <= d < self.k:
            raise InvalidArgumentError(f"data index must be in 0..{self.k - 1}, got {d}")
        index: tuple[tuple[Member, ...], ...] | None = self.__dict__.get("_data_index")
        if index is None:  # built once per map (frozen: no __setattr__)
            index = tuple(
                tuple(m for m in self.members if m.role.data_index == i) for i in range(self.k)
            )
            self.__dict__["_data_index"] = index
        return index[d]

    @property
    def parity_members(self) -> tuple[Member, ...]:
        """The redundancy members (P, Q, R, parity(j)) in codec order."""
        kinds = (RoleKind.P, RoleKind.Q, RoleKind.R, RoleKind.PARITY)
        return tuple(m for m in self.members if m.role.kind in kinds)

    def on_device(self, device: int) -> tuple[Member, ...]:
        """The members this stripe keeps on ``device`` (empty if none)."""
        return tuple(m for m in self.members if m.device == device)

    def lost(self, failed: Iterable[int]) -> tuple[Member, ...]:
        """The members that sit on a device of ``failed``."""
        bad = set(failed)
        return tuple(m for m in self.members if m.device in bad)

    def recoverable(self, failed: Iterable[int]) -> bool:
        """True when every data byte of this stripe survives losing ``failed``.

        Decided by the codec's erasure rule: mirrors need one live copy of each
        data index; ``xor`` and ``pq-md`` are MDS and tolerate as many lost
        data/parity members as they have parity members; ``none`` tolerates
        no lost data member.  Spares never matter.
        """
        bad = set(failed)
        if self.codec.group_codec is not None:
            return all(sub.recoverable(bad) for _idx, sub in self.subgroups())
        if self.codec is Codec.HAMMING:
            from dwcore.raid.hamming import solve

            erased = frozenset(j for j, m in enumerate(self.members) if m.device in bad)
            lost = solve(self.k, len(self.members) - self.k, erased)[1]
            return not any(j < self.k for j in lost)
        if self.codec is Codec.RDP:
            from dwcore.raid.dp import rdp_stripe_lost

            erased = {j for j, m in enumerate(self.members) if m.device in bad}
            return not rdp_stripe_lost(self, erased) & set(range(self.k))
        if self.codec is Codec.MIRROR:
            return all(
                any(m.device not in bad for m in self.data_members(d)) for d in range(self.k)
            )
        lost = [m for m in self.members if m.device in bad and m.role.kind is not RoleKind.SPARE]
        return len(lost) <= self.parity_limit

    @property
    def parity_limit(self) -> int:
        """Lost members an MDS parity codec tolerates (Reed-Solomon: its parity members)."""
        if self.codec is Codec.RS_CAUCHY:
            return sum(1 for m in self.members if m.role.kind is RoleKind.PARITY)
        return self.codec.parity_count


class Location(NamedTuple):
    """Where a logical byte lives: stripe, data index and offset in its chunk."""

    stripe: int
    data_index: int
    offset: int


class Piece(NamedTuple):
    """A run of ``length`` logical bytes inside one data chunk."""

    logical_offset: int
    stripe: int
    data_index: int
    offset: int
    length: int


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``; InvalidArgumentError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be ≥ {minimum}, got {value}")
    return value


def check_sizes(sizes: object, n: int) -> tuple[int, ...] | None:
    """A per-device list of byte counts (``sizes`` of levels over mixed-size devices),
    one per each of ``n`` devices, or None; InvalidArgumentError otherwise."""
    if sizes is None:
        return None
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise InvalidArgumentError(f"sizes must be a list of byte counts, got {sizes!r}")
    if len(sizes) != n:
        raise InvalidArgumentError(f"sizes lists {len(sizes)} sizes for {n} devices")
    return tuple(check_int("sizes", v, 0) for v in sizes)


def check_chunk_size(chunk_size: object) -> int:
    """A chunk must be a power of two of at least 4 KiB (§0.1)."""
    c = check_int("chunk_size", chunk_size, 1)
    if c < MIN_CHUNK_SIZE or c & (c - 1):
        raise InvalidArgumentError(
            f"chunk_size must be a power of two ≥ {MIN_CHUNK_SIZE} bytes (4 KiB), got {c}"
        )
    return c


class Layout(ABC):
    """A RAID level's placement function over ``n_devices`` equal devices.

    Geometry (all in bytes):

    * ``chunk_size`` C — the stripe unit;
    * ``k`` data chunks and ``m`` redundancy members per stripe;
    * each stripe occupies ``device_bytes_per_stripe`` on every device it
      touches (C for the chunk-striped levels) at offset
      ``s * device_bytes_per_stripe``;
    * ``period`` — stripes after which the placement repeats with every
      device offset shifted by ``period * device_bytes_per_stripe``.

    Subclasses set :attr:`level` and :attr:`OPTIONS` and implement
    :meth:`stripe`, :meth:`survives` and the geometry properties.
    """

    #: Canonical level name (``raid-levels.md`` §7).
    level: ClassVar[str]
    #: Keyword options accepted beyond ``n_devices`` and ``chunk_size``.
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.n_devices = check_int("n_devices", n_devices, 1)
        self.chunk_size = check_chunk_size(chunk_size)
        if self.n_devices < self.min_devices:
            raise InvalidArgumentError(
                f"RAID {self.level}{self._option_text()} needs at least {self.min_devices} "
                f"devices, got n_devices={self.n_devices}"
            )

    # -- geometry ---------------------------------------------------------

    @property
    @abstractmethod
    def min_devices(self) -> int:
        """Fewest devices this level (with these options) accepts."""

    @property
    @abstractmethod
    def fault_tolerance(self) -> int:
        """Failures survived whichever devices fail (the guaranteed figure)."""

    @property
    @abstractmethod
    def codec(self) -> Codec:
        """The codec protecting every stripe of this layout."""

    @property
    @abstractmethod
    def k(self) -> int:
        """Data chunks per stripe."""

    @property
    @abstractmethod
    def m(self) -> int:
        """Redundancy members per stripe (parity members, or extra copies)."""

    @property
    @abstractmethod
    def period(self) -> int:
        """Stripes per rotation period."""

    @property
    def device_bytes_per_stripe(self) -> int:
        """Bytes one stripe occupies on each device it touches."""
        return self.chunk_size

    @property
    def data_bytes_per_stripe(self) -> int:
        """Logical (user) bytes per stripe: ``k * C``."""
        return self.k * self.chunk_size

    @property
    def period_bytes(self) -> int:
        """Device bytes per rotation period; S is rounded down to a multiple of it."""
        return self.period * self.device_bytes_per_stripe

    @property
    def options(self) -> dict[str, Any]:
        """The level-specific options (what ``layout(...)`` takes besides N and C)."""
        return {}

    @property
    def params(self) -> dict[str, Any]:
        """Everything needed to rebuild this layout with ``dwcore.raid.layout(**params)``."""
        return {
            "name": self.level,
            "n_devices": self.n_devices,
            "chunk_size": self.chunk_size,
            **self.options,
        }

    def usable_device_size(self, device_size: int | Sequence[int]) -> int:
        """The data-area size S actually used: min over devices, rounded down to the period."""
        if isinstance(device_size, Sequence):
            sizes: Sequence[object] = list(device_size)
            if len(sizes) != self.n_devices:
                raise InvalidArgumentError(
                    f"device_size lists {len(sizes)} sizes for {self.n_devices} devices"
                )
        else:
            sizes = [device_size]
        smallest = min(check_int("device_size", s, 0) for s in sizes)
        return smallest - smallest % self.period_bytes

    def fit(self, usable: int) -> Layout:
        """This layout for a data area of ``usable`` bytes per device.

        Placement of most levels does not depend on the device size and they
        return ``self``; md raid10's far copies do (their stride is a fraction
        of the device), so :class:`~dwcore.raid.md10.Md10` returns a copy bound
        to it.  A pool calls this once at creation and stores the result.
        """
        return self

    def stripe_count(self, device_size: int | Sequence[int]) -> int:
        """Stripes that fit in data areas of ``device_size`` bytes."""
        return self.usable_device_size(device_size) // self.device_bytes_per_stripe

    def capacity(self, device_size: int | Sequence[int]) -> int:
        """Usable logical bytes for per-device data areas of ``device_size`` bytes."""
        return self.stripe_count(device_size) * self.data_bytes_per_stripe

    # -- placement --------------------------------------------------------

    def locate(self, logical_offset: int) -> Location:
        """The stripe, data index and chunk offset of logical byte ``logical_offset``."""
        lo = check_int("logical_offset", logical_offset, 0)
        c, o = divmod(lo, self.chunk_size)
        s, d = divmod(c, self.k)
        return Location(s, d, o)

    def pieces(self, logical_offset: int, length: int) -> Iterator[Piece]:
        """Split ``[logical_offset, logical_offset + length)`` at chunk boundaries."""
        pos = check_int("logical_offset", logical_offset, 0)
        end = pos + check_int("length", length, 0)
        while pos < end:
            s, d, o = self.locate(pos)
            n = min(end - pos, self.chunk_size - o)
            yield Piece(pos, s, d, o, n)
            pos += n

    @abstractmethod
    def stripe(self, s: int) -> StripeMap:
        """All members of stripe ``s`` with their device offsets."""

    def member_at(self, device: int, device_offset: int) -> tuple[StripeMap, Member]:
        """The stripe and member that own byte ``device_offset`` of ``device``'s data area.

        The inverse of :meth:`stripe`, for scrub reports and rebuild.  Raises
        InvalidArgumentError for a byte no member owns.
        """
        dev = check_int("device", device, 0)
        if dev >= self.n_devices:
            raise InvalidArgumentError(f"device must be in 0..{self.n_devices - 1}, got {dev}")
        off = check_int("device_offset", device_offset, 0)
        sm = self.stripe(off // self.device_bytes_per_stripe)
        for mem in sm.on_device(dev):
            if mem.device_offset <= off < mem.device_offset + mem.length:
                return sm, mem
        raise InvalidArgumentError(f"no member owns byte {off} of device {dev}")

    @abstractmethod
    def _survives(self, failed: frozenset[int]) -> bool:
        """The level's exact predicate on a validated failure set."""

    def survives(self, failed: Iterable[int]) -> bool:
        """True iff every logical byte is recoverable with the devices ``failed`` lost."""
        return self._survives(self.failure_set(failed))

    def failure_set(self, failed: Iterable[int]) -> frozenset[int]:
        """``failed`` as a frozenset of device indices, each checked to be in range."""
        out = set()
        for f in failed:
            if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < self.n_devices:
                raise InvalidArgumentError(
                    f"failed device indices must be in 0..{self.n_devices - 1}, got {f!r}"
                )
            out.add(f)
        return frozenset(out)

    def _check_stripe(self, s: int) -> int:
        return check_int("stripe", s, 0)

    def _option_text(self) -> str:
        opts = self.options
        return "" if not opts else " (" + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.params == other.params

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.params.items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
