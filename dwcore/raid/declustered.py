"""Declustered parity with distributed spare space (``raid-levels.md`` §6), and RAID FR.

**Declustered** follows OpenZFS dRAID's placement as the spec writes it out:

* ``C`` children (the devices), groups of width ``W = D + P`` (P parity
  columns first, then D data columns), ``Sp`` distributed spares, ``n = C - Sp``
  active columns per row, row height ``H`` = the chunk size;
* ``nperms`` (256 for C < 32, else 512) chained base permutations: base[i] is
  base[i-1] (base[-1] the identity) shuffled by Fisher–Yates driven by
  SplitMix64 seeded with ``seed`` (stored with the layout parameters in every
  superblock); slice t uses ``perm_t[x] = (base[(t div C) mod nperms][x] +
  t mod C) mod C``;
* a slice holds ``gps = lcm(W, n)/W`` groups in ``rps = lcm(W, n)/n`` rows;
  group γ (= stripe γ) is group ``γ mod gps`` of slice ``γ div gps``; its
  column w sits at position ``pos0 + w`` (wrapping to the next row), on device
  ``perm_t[pos]`` at device offset ``(t·rps + ρ)·H``;
* the spare j of slice t is device ``perm_t[C-1-j]`` over the slice's rows.

A group is one stripe of the row engine: its members are the W columns in
codec order (data 0..D-1, then P[, Q[, R]] or the Reed–Solomon parities), so
every row of B bytes (the pool's block size) at the same offset of the W
columns is one codeword.

**Data mapping** (§6): logical data address L → group ``γ = L div (D·H)``,
``e = L mod (D·H)``, unit ``ui = e div U``, data column ``P + (ui mod D)``,
offset inside the column ``(ui div D)·U + e mod U`` — U-interleaved rows, U
(``unit``, default 4 KiB) dividing the pool's block size B.  An extent's
rows are a run of this address space (byte x of an extent starting at row g
is ``L = g·D·B + x``), so every row of B bytes holds D·B consecutive logical
bytes; :class:`dwcore.pool.draid.DeclusteredPool` permutes them on the way in
and out.  ``unit = 0`` is the column-contiguous mapping of pools made before
this format (the engine's: a segment's bytes fill data column 0, then 1 ...),
kept so that they still read: such a pool's saved parameters have no
``unit`` and it opens with ``unit = 0``.

**Distributed spares.**  ``spared`` lists, per spare slot j, the device that
was rebuilt into that slot (-1 for a free slot).  In slice t every spared
device that holds columns there (an *active* one) is redirected, at the same
device offsets, to a spare position of that slice.  Which one is the
``spare_rule``:

* ``"first-free"`` (§6, pools made by this version): the first *free* spare
  position of the slice (position order j = 0, 1, ...: not a spared device,
  not holding another spared device's column), the devices taken in the order
  they were spared (slot order).  Columns already placed never move when a
  later device is spared: a device's column moves again only when the device
  holding it is itself spared (then it goes to the first free position too).
  A copy-back that would let a later device's column slide onto a place still
  in use leaves a *ghost* in the slot (``-2 - f``): it keeps reserving the
  positions ``f`` had (empty) so that nothing else moves in that transition;
  the next transition drops it (the columns that slide then land on free
  places), and a new failure can take a ghost's slot the same way.  Trailing
  ghosts change nothing and are dropped at once.  When no ghost can go (every
  drop would slide a column onto a place in use) a new failure finds no spare
  place: ``rebuild()`` refuses with InvalidArgumentError, nothing moves, and
  the failed device's replacement is rebuilt in place.  (States that list an
  *heir* past the last slot — the i-th such entry taking the i-th ghost's
  hole — are still read; no new heir is made: a review found a sequence of
  failures and replacements where heirs lost data.)
* ``"slot"`` (pools saved without ``spare_rule``, which keep reading exactly
  as before): first to its own slot's device ``perm_t[C-1-j]`` when that
  device is not itself spared, then (slot order) to the first spare position
  that is neither spared nor taken.

There are always enough positions: a spared device that is a spare position of
slice t holds nothing there.  A change of ``spared`` (rebuild into spare,
copy-back onto a replacement) is a *transition*: ``target`` is the new state;
stripes below ``moved`` already use it, and so do the groups the *priority
passes* ``passes`` have moved.  Each pass entry ``(lost, level, boundary)``
ranks a group by how many of its columns (placed by ``spared``) sit on the
devices ``lost`` — the redundancy it has lost — and stands for "every group
of rank > level, and those of rank = level below ``boundary``, are moved":
:mod:`dwcore.pool.draid` moves the groups that lost the most redundancy first
(§6: rebuild-critical first), rank by rank down to 2, then all the others in
stripe order (boundary ``moved``).  A device lost during a transition adds an
entry with the larger lost set.  Layouts saved with the older single
``critical`` boundary (all P redundancy on the devices being moved) open as
one such entry.

**RAID FR** (IBM Distributed RAID, an interpretation, §5) is a profile of the
same engine with IBM's parameters: ``raid="raid5"|"raid6"`` (P = 1 or 2),
``stripewidth`` W, ``rebuildareas`` Sp (1–4), N ≤ 128, and copy-back onto a
replacement started by :meth:`~dwcore.pool.Pool.replace_device` itself.

Parity: P = 1 (``xor``), 2 (``pq-md``: P+Q, Linux order) or 3 (``pqr-md``:
P+Q+R, Linux order extended with generator 4), or ``code="rs"``: Reed–Solomon
Cauchy D+P with P ≤ 3, D ≤ 8 (``rs-cauchy``, :class:`dwcore.ec.ReedSolomon`).

Defaults (§6, §5): Declustered row height H = 16 MiB (``DEFAULT_HEIGHT``),
RAID FR chunk 256 KiB (``FR_DEFAULT_CHUNK``), U = 4 KiB (``DEFAULT_UNIT``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    Codec,
    Layout,
    Member,
    P,
    Q,
    R,
    Role,
    StripeMap,
    check_int,
)

__all__ = [
    "DEFAULT_HEIGHT",
    "DEFAULT_SEED",
    "DEFAULT_UNIT",
    "FR_DEFAULT_CHUNK",
    "LEGACY_SPARE_RULE",
    "SPARE_RULE",
    "Declustered",
    "Fr",
    "base_permutations",
    "splitmix64",
]

#: Seed of the permutation generator when none is given ("dwcoreDR").
DEFAULT_SEED = 0x6477636F72654452
_MASK64 = (1 << 64) - 1
#: dRAID's child limit (one byte on disk).
MAX_CHILDREN = 255
#: §6: row height H (the chunk of a group column) when none is given (dRAID's 16 MiB).
DEFAULT_HEIGHT = 16 << 20
#: §5: RAID FR's chunk (IBM ``-strip`` 256 KiB) when none is given.
FR_DEFAULT_CHUNK = 256 << 10
#: §6: the sector/chunk unit U of the data mapping.
DEFAULT_UNIT = 4096
#: Largest Reed–Solomon code of §6 (8+3).
MAX_RS_DATA, MAX_RS_PARITY = 8, 3
#: §6's spare-position rule ("first free spare position"), used by new pools.
SPARE_RULE = "first-free"
#: The rule of pools saved before ``spare_rule`` existed (own slot's position first).
LEGACY_SPARE_RULE = "slot"
_SPARE_RULES = (SPARE_RULE, LEGACY_SPARE_RULE)

#: One priority pass of a transition: ``(lost devices, level, boundary)``.
Pass = tuple[frozenset[int], int, int]


def splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step: ``(new state, output)``."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


@functools.lru_cache(maxsize=16)
def base_permutations(children: int, nperms: int, seed: int) -> np.ndarray:
    """The ``nperms × children`` chained base permutations (module documentation)."""
    out = np.empty((nperms, children), dtype=np.int64)
    row = list(range(children))
    state = seed & _MASK64
    for i in range(nperms):
        for j in range(children - 1, 0, -1):
            state, r = splitmix64(state)
            k = r % (j + 1)
            row[j], row[k] = row[k], row[j]
        out[i] = row
    out.setflags(write=False)
    return out


def _spared_tuple(
    name: str, value: object, n_devices: int, slots: int, ghosts: bool = False
) -> tuple[int, ...]:
    """A spare state: device per slot, -1 free, ``-2 - f`` a ghost of ``f`` (``ghosts``,
    the first-free rule, where free slots are dropped: only the order counts); trailing
    free slots and ghosts are dropped (they change no placement)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidArgumentError(f"{name} must be a list of device indices, got {value!r}")
    low = -1 - n_devices if ghosts else -1
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v < n_devices:
            raise InvalidArgumentError(
                f"{name} entries must be device indices in 0..{n_devices - 1} or -1"
                f"{' (or -2-f for a ghost)' if ghosts else ''}, got {v!r}"
            )
        out.append(v)
    if ghosts:
        # first-free rule: the order is all that counts, a free slot places nothing
        out = [v for v in out if v != -1]
    while out and out[-1] < 0:
        out.pop()
    # with ghosts, entries past the last slot are heirs: the i-th one takes the i-th
    # ghost's place (module documentation)
    heirs = sum(1 for v in out[:slots] if v <= -2) if ghosts else 0
    if len(out) > slots + heirs:
        raise InvalidArgumentError(f"{name} lists {len(out)} spare slots, the layout has {slots}")
    used = [v for v in out if v >= 0]
    if len(set(used)) != len(used):
        raise InvalidArgumentError(f"{name} lists a device twice: {out}")
    return tuple(out)


def _passes(value: object, n_devices: int) -> tuple[Pass, ...]:
    """Validated priority-pass entries ``[[lost devices], level, boundary], ...``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidArgumentError(
            f"passes must be a list of [lost, level, boundary], got {value!r}"
        )
    out = []
    for entry in value:
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) != 3:
            raise InvalidArgumentError(f"passes entries are [lost, level, boundary], got {entry!r}")
        lost, level, bound = entry
        devs = _spared_tuple("passes lost", lost, n_devices, n_devices)
        if any(d < 0 for d in devs):
            raise InvalidArgumentError(f"passes lost devices must be indices, got {lost!r}")
        out.append((frozenset(devs), check_int("level", level, 0), check_int("boundary", bound, 0)))
    return tuple(out)


#: Options Declustered and FR share after their own: the data mapping unit, the
#: permutation seed and the saved spare state (one list, so a new state key reaches both).
_SHARED_OPTIONS = (
    "unit",
    "seed",
    "spare_rule",
    "spared",
    "target",
    "moved",
    "passes",
    "critical",
)


class Declustered(Layout):
    """dRAID-style declustered parity groups with distributed spares (module docs)."""

    level = "DECLUSTERED"
    #: The chunk (row height H) :func:`dwcore.raid.layout` and ``Pool.create`` use when
    #: none is given (§6: 16 MiB, as dRAID).
    DEFAULT_CHUNK: ClassVar[int] = DEFAULT_HEIGHT
    OPTIONS: ClassVar[tuple[str, ...]] = ("parity", "data", "spares", "code", *_SHARED_OPTIONS)

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_HEIGHT,
        *,
        parity: int = 1,
        data: int | None = None,
        spares: int = 1,
        code: str = "parity",
        unit: int = DEFAULT_UNIT,
        seed: int = DEFAULT_SEED,
        spare_rule: str = SPARE_RULE,
        spared: Sequence[int] = (),
        target: Sequence[int] | None = None,
        moved: int = 0,
        passes: Sequence[Sequence[Any]] | None = None,
        critical: int = 0,
    ) -> None:
        if code not in ("parity", "rs"):
            raise InvalidArgumentError(
                f"code must be 'parity' (P/Q/R, Linux order) or 'rs' (Reed-Solomon Cauchy), "
                f"got {code!r}"
            )
        self.code = code
        self.parity = check_int("parity", parity, 1)
        if self.parity > 3:
            raise InvalidArgumentError(f"parity must be 1, 2 or 3, got {parity}")
        self.spares = check_int("spares", spares, 0)
        n = check_int("n_devices", n_devices, 1)
        if data is None:
            data = max(1, min(8, n - self.spares - self.parity))
        self.data = check_int("data", data, 1)
        if code == "rs" and self.data > MAX_RS_DATA:
            raise InvalidArgumentError(
                f"Reed-Solomon codes go up to {MAX_RS_DATA}+{MAX_RS_PARITY}, got data={data}"
            )
        self.unit = check_int("unit", unit, 0)
        if self.unit and (self.unit < 512 or self.unit & (self.unit - 1)):
            raise InvalidArgumentError(f"unit must be a power of two >= 512 (or 0), got {unit}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MASK64:
            raise InvalidArgumentError(f"seed must be an integer in 0..2^64-1, got {seed!r}")
        self.seed = seed
        if n > MAX_CHILDREN:
            raise InvalidArgumentError(
                f"RAID {self.level} supports at most {MAX_CHILDREN} devices, got {n_devices}"
            )
        if spare_rule not in _SPARE_RULES:
            raise InvalidArgumentError(
                f"spare_rule must be one of {', '.join(_SPARE_RULES)}, got {spare_rule!r}"
            )
        self.spare_rule = spare_rule
        ghosts = spare_rule == SPARE_RULE
        self.spared = _spared_tuple("spared", spared, n, self.spares, ghosts)
        self.target = (
            None if target is None else _spared_tuple("target", target, n, self.spares, ghosts)
        )
        self.moved = check_int("moved", moved, 0)
        critical = check_int("critical", critical, 0)
        if self.target is None and (self.moved or critical or passes):
            raise InvalidArgumentError(
                "moved, passes and critical must be empty when no transition (target) is pending"
            )
        if passes is not None and critical:
            raise InvalidArgumentError("give passes or the older critical, not both")
        if passes is None:
            # saved by the older format: one critical pass when two or more devices of a
            # P >= 2 layout moved at once (groups with all P redundancy on them)
            new = frozenset(f for f in self.target or () if f >= 0) - set(self.spared)
            legacy = self.parity >= 2 and len(new) >= 2
            passes = [[sorted(new), self.parity, critical]] if legacy else []
        self.passes = _passes(passes, n)
        super().__init__(n_devices, chunk_size)
        if self.unit > self.chunk_size:
            raise InvalidArgumentError(
                f"unit {self.unit} is larger than the row height (chunk_size {self.chunk_size})"
            )
        self.width = self.data + self.parity
        self.active = self.n_devices - self.spares
        lcm = math.lcm(self.width, self.active)
        self.groups_per_slice = lcm // self.width
        self.rows_per_slice = lcm // self.active
        self.nperms = 256 if self.n_devices < 32 else 512
        # column w of group gi of a slice: (position, row)
        self._cols: list[list[tuple[int, int]]] = []
        for gi in range(self.groups_per_slice):
            pos0, row0 = (gi * self.width) % self.active, (gi * self.width) // self.active
            cols = []
            for w in range(self.width):
                pos, row = pos0 + w, row0
                while pos >= self.active:
                    pos, row = pos - self.active, row + 1
                cols.append((pos, row))
            self._cols.append(cols)
        self._redirect_cache: dict[tuple[int, tuple[int, ...]], dict[int, int]] = {}
        self._masks: frozenset[int] | None = None

    # -- geometry ---------------------------------------------------------

    @property
    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "parity": self.parity,
            "data": self.data,
            "spares": self.spares,
            "code": self.code,
            "unit": self.unit,
            "seed": self.seed,
            "spare_rule": self.spare_rule,
            "spared": list(self.spared),
        }
        if self.target is not None:
            out["target"] = list(self.target)
            out["moved"] = self.moved
            out["passes"] = [[sorted(lost), lv, bd] for lost, lv, bd in self.passes]
        return out

    @property
    def min_devices(self) -> int:
        return self.data + self.parity + self.spares

    @property
    def fault_tolerance(self) -> int:
        return self.parity

    @property
    def codec(self) -> Codec:
        if self.code == "rs":
            return Codec.RS_CAUCHY
        return (Codec.XOR, Codec.PQ_MD, Codec.PQR_MD)[self.parity - 1]

    @property
    def parity_roles(self) -> tuple[Role, ...]:
        """Roles of the P parity columns: P[, Q[, R]], or RS ``parity(0..P-1)``."""
        if self.code == "rs":
            return tuple(Role.parity(j) for j in range(self.parity))
        return (P, Q, R)[: self.parity]

    @property
    def k(self) -> int:
        return self.data

    @property
    def m(self) -> int:
        return self.parity

    @property
    def period(self) -> int:
        """Stripes (groups) of one full permutation period: ``nperms·C`` slices."""
        return self.nperms * self.n_devices * self.groups_per_slice

    @property
    def period_bytes(self) -> int:
        """Device bytes of one slice: the data area is rounded down to whole slices."""
        return self.rows_per_slice * self.chunk_size

    def stripe_count(self, device_size: int | Sequence[int]) -> int:
        return self.usable_device_size(device_size) // self.period_bytes * self.groups_per_slice

    @property
    def alpha(self) -> float:
        """Declustering ratio ``(W-1)/(C-1)``: the share of a survivor read by a rebuild."""
        return (self.width - 1) / (self.n_devices - 1)

    # -- the state of the distributed spares ------------------------------

    @property
    def spared_devices(self) -> frozenset[int]:
        """Devices whose columns live in spare space (both states during a transition)."""
        out = {f for f in self.spared if f >= 0}
        if self.target is not None:
            out |= {f for f in self.target if f >= 0}
        return frozenset(out)

    def free_slots(self) -> list[int]:
        """Spare slots not used by ``spared`` (in slot order; a ghost is not free)."""
        return [j for j in range(self.spares) if j >= len(self.spared) or self.spared[j] == -1]

    def with_state(
        self,
        spared: Sequence[int],
        target: Sequence[int] | None = None,
        moved: int = 0,
        passes: Sequence[Pass] = (),
    ) -> Declustered:
        """This layout with another spare state (same geometry and permutations)."""
        opts: dict[str, Any] = {**self.options, "spared": list(spared), "target": target}
        if target is None:
            opts.pop("moved", None)
            opts.pop("passes", None)
        else:
            opts["moved"] = moved
            opts["passes"] = [[sorted(lost), lv, bd] for lost, lv, bd in passes]
        return type(self)(self.n_devices, self.chunk_size, **opts)

    def _live(self, state: Sequence[int]) -> set[int]:
        return {f for f in state if f >= 0}

    def _conflicts(self, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        """True when a transition from spare state ``a`` to ``b`` would write a column
        onto a place that ``a`` still uses (full period): such a move cannot be made
        crash-safe in one transition (it is what :mod:`dwcore.pool.draid` refuses)."""
        live = self._live(b)
        if not live:
            return False
        for t in range(self.nperms * self.n_devices):
            ra, rb = self.redirect(t, a), self.redirect(t, b)
            if ra == rb:
                continue
            perm = self.permutation(t)
            occupied = {ra.get(int(d), int(d)) for d in perm[: self.active]}
            for f, dest in rb.items():
                if dest != ra.get(f, f) and dest in occupied:
                    return True
        return False

    def _split(self, state: Sequence[int]) -> tuple[list[int], dict[int, int]]:
        """A ``first-free`` state as its slots and its heirs (ghost's device -> heir)."""
        main = list(state[: self.spares])
        ghosts = [-2 - v for v in main if v <= -2]
        heirs = {ghosts[k]: v for k, v in enumerate(state[self.spares :]) if v >= 0}
        return main, heirs

    def _join(self, main: list[int], heirs: dict[int, int]) -> tuple[int, ...]:
        """The state of slots ``main`` (all of them taken when there are heirs) and
        ``heirs``: past the last slot, per ghost in slot order its heir or itself (no-op)."""
        over = [heirs.get(-2 - v, v) for v in main if v <= -2] if heirs else []
        return _spared_tuple("state", [*main, *over], self.n_devices, self.spares, True)

    def _tidy(self, state: list[int]) -> tuple[int, ...]:
        """``state`` with every ghost dropped whose reservation can go (the columns that
        then slide into its positions move onto free places); none while a ghost has an
        heir (its slots stay as they are)."""
        main, heirs = self._split(state)
        if heirs:
            return self._join(main, heirs)
        for j, v in enumerate(main):
            if v <= -2:
                trial = list(main)
                trial[j] = -1
                if not self._conflicts(self._join(main, {}), self._join(trial, {})):
                    main = trial
        return self._join(main, {})

    def spare_added(self, devices: Sequence[int]) -> tuple[tuple[int, ...], list[int]]:
        """``(state, left)``: ``spared`` with ``devices`` (in order) rebuilt into spare slots
        and the devices no slot is left for.  With the ``first-free`` rule a device goes
        after every device already in spare space (nothing else moves) or, when the slots
        are full, in a ghost's place if the columns that then move land on free places,
        else as the ghost's heir (module documentation)."""
        if self.spare_rule == LEGACY_SPARE_RULE:
            slots = list(self.spared) + [-1] * (self.spares - len(self.spared))
            left = []
            for f in devices:
                if -1 in slots:
                    slots[slots.index(-1)] = f
                else:
                    left.append(f)
            return _spared_tuple("state", slots, self.n_devices, self.spares), left
        state = tuple(self.spared)
        left = []
        for f in devices:
            if len(state) < self.spares:
                state = (*state, f)  # after every device already in spare space: nothing moves
                continue
            # no room left: a ghost's place (dropped, or taken), where the columns that
            # move then land on free places only; else its heir (only its columns, or the
            # one on it, move: into the ghost's hole, a place nothing uses)
            main, heirs = self._split(state)
            trials = []
            free = [j for j, v in enumerate(main) if v <= -2 and -2 - v not in heirs]
            for j in free:
                if not heirs:
                    trials.append(self._join([*main[:j], *main[j + 1 :], f], {}))
                trials.append(self._join([*main[:j], f, *main[j + 1 :]], heirs))
            for trial in trials:
                if not self._conflicts(state, trial):
                    state = trial
                    break
            else:
                left.append(f)
        return _spared_tuple("state", state, self.n_devices, self.spares, True), left

    def spare_removed(self, devices: Sequence[int]) -> tuple[int, ...]:
        """``spared`` with ``devices`` copied back: their slots free or, with the
        ``first-free`` rule where freeing one would slide another device's column onto a
        place still in use, ghosts (dropped by a later transition once they can go); an
        heir copied back leaves its ghost as it was."""
        gone = set(devices)
        if self.spare_rule == LEGACY_SPARE_RULE:
            return tuple(-1 if f in gone else f for f in self.spared)
        old = tuple(self.spared)
        main, heirs = self._split(old)
        heirs = {g: h for g, h in heirs.items() if h not in gone}
        state = [(-2 - f) if f in gone else f for f in main]
        if heirs:
            return self._join(state, heirs)  # the slots stay taken: nothing slides
        for j, f in enumerate(main):
            if f in gone:
                trial = list(state)
                trial[j] = -1
                if not self._conflicts(old, self._join(trial, {})):
                    state = trial
        return self._join(state, {})

    @property
    def ghosts(self) -> bool:
        """True when ``spared`` holds a ghost (module documentation)."""
        return any(v <= -2 for v in self.spared)

    def tidied(self) -> tuple[int, ...]:
        """``spared`` without the ghosts that can go now."""
        return self._tidy(list(self.spared))

    def slot_of(self, i: int) -> int:
        """The spare slot entry ``i`` of ``spared`` uses: ``i`` itself, or for an heir
        (past the last slot) the slot of the ghost it inherits."""
        if i < self.spares:
            return i
        ghosts = [j for j, v in enumerate(self.spared[: self.spares]) if v <= -2]
        return ghosts[i - self.spares]

    def permutation(self, t: int) -> np.ndarray:
        """``perm_t``: position → device for slice ``t``."""
        c = self.n_devices
        base = base_permutations(c, self.nperms, self.seed)[(t // c) % self.nperms]
        return (base + t % c) % c

    def spare_devices(self, t: int) -> list[int]:
        """The devices of spare positions 0..Sp-1 of slice ``t`` (``perm_t[C-1-j]``)."""
        perm = self.permutation(t)
        return [int(perm[self.n_devices - 1 - j]) for j in range(self.spares)]

    def redirect(self, t: int, state: tuple[int, ...] | None = None) -> dict[int, int]:
        """Spared device → spare device of slice ``t`` under ``state`` (default ``spared``)."""
        state = self.spared if state is None else tuple(state)
        if not any(f >= 0 for f in state):
            return {}
        key = (t, state)
        hit = self._redirect_cache.get(key)
        if hit is not None:
            return hit
        perm = self.permutation(t)
        active = {int(x) for x in perm[: self.active]}
        positions = [int(perm[self.n_devices - 1 - j]) for j in range(self.spares)]
        if self.spare_rule == LEGACY_SPARE_RULE:
            mapping = self._redirect_slot(state, active, positions)
        else:
            mapping = self._redirect_first_free(state, active, positions)
        if len(self._redirect_cache) > 65536:
            self._redirect_cache.clear()
        self._redirect_cache[key] = mapping
        return mapping

    @staticmethod
    def _redirect_slot(
        state: tuple[int, ...], active: set[int], positions: list[int]
    ) -> dict[int, int]:
        """The ``slot`` rule: own slot's position first, then the first one left."""
        failed = {f for f in state if f >= 0}
        mapping: dict[int, int] = {}
        used: set[int] = set()
        second = []
        for j, f in enumerate(state):
            if f < 0 or f not in active:
                continue
            if positions[j] not in failed:
                mapping[f] = positions[j]
                used.add(positions[j])
            else:
                second.append(f)
        for f in second:
            p = next(p for p in positions if p not in failed and p not in used)
            mapping[f] = p
            used.add(p)
        return mapping

    @staticmethod
    def _redirect_first_free(
        state: tuple[int, ...], active: set[int], positions: list[int]
    ) -> dict[int, int]:
        """The ``first-free`` rule (§6), replayed in slot order (module documentation):
        each device added takes the first free position; a column whose position is the
        device added moves to the first free one (ghosts reserve like devices)."""
        failed: set[int] = set()
        place: dict[int, int] = {}  # slot -> spare device holding that slot's column
        sp = len(positions)
        ghosts = [j for j, v in enumerate(state[:sp]) if v <= -2]
        for j, v in enumerate(state):
            if v == -1:
                continue
            if j >= sp:
                # an heir: the i-th past the last slot takes the i-th ghost's hole (its
                # reserved place, or the ghost's own position when it holds no column
                # here): its column, or the column that was on it, moves there — onto
                # a place nothing uses, and nothing else moves.  A ghost heir: a no-op.
                if v < 0:
                    continue
                heir_of = ghosts[j - sp]
                hole = place.pop(heir_of, None)
                reserved = hole is not None
                if hole is None:
                    hole = -2 - state[heir_of]
                failed.add(v)
                on = [i for i, p in place.items() if p == v]
                if on:
                    place[on[0]] = hole
                elif v in active:
                    place[j] = hole
                elif reserved:
                    place[heir_of] = hole
                continue
            f = v if v >= 0 else -2 - v
            failed.add(f)
            for i, p in list(place.items()):
                if p == f:  # its column was on f: lost with f, placed again
                    used = set(place.values())
                    place[i] = next(q for q in positions if q not in failed and q not in used)
            if f in active:
                used = set(place.values())
                place[j] = next(q for q in positions if q not in failed and q not in used)
        return {state[j]: p for j, p in place.items() if state[j] >= 0}

    # -- placement --------------------------------------------------------

    def group_devices(self, s: int, state: tuple[int, ...] | None = None) -> list[int]:
        """Devices of the W columns of group ``s`` (column order) under ``state``."""
        t, gi = divmod(s, self.groups_per_slice)
        perm = self.permutation(t)
        red = self.redirect(t, state)
        out = []
        for pos, _row in self._cols[gi]:
            d = int(perm[pos])
            out.append(red.get(d, d))
        return out

    def state_of(self, s: int) -> tuple[int, ...]:
        """The spare state stripe ``s`` is placed by: ``target`` below ``moved`` and for
        the groups the priority passes have moved (module documentation)."""
        if self.target is None:
            return self.spared
        if s < self.moved:
            return self.target
        if self.passes:
            devs = self.group_devices(s, self.spared)
            for lost, level, bound in self.passes:
                r = sum(1 for d in devs if d in lost)
                if r > level or (r == level and s < bound):
                    return self.target
        return self.spared

    def rank(self, s: int, lost: frozenset[int] | set[int]) -> int:
        """Columns of group ``s`` (placed by ``spared``) on the devices ``lost``: the
        redundancy the group has lost."""
        return sum(1 for d in self.group_devices(s, self.spared) if d in lost)

    def in_target(self, s: int) -> bool:
        """True when stripe ``s`` is already placed by the pending ``target``."""
        return self.target is not None and self.state_of(s) is self.target

    @property
    def newly_spared(self) -> frozenset[int]:
        """Devices a pending transition moves into spare space."""
        if self.target is None:
            return frozenset()
        return frozenset(f for f in self.target if f >= 0) - {f for f in self.spared if f >= 0}

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        t, gi = divmod(s, self.groups_per_slice)
        devs = self.group_devices(s, self.state_of(s))
        h = self.chunk_size
        cols = self._cols[gi]
        members = []
        for d in range(self.data):
            w = self.parity + d
            members.append(
                Member(devs[w], (t * self.rows_per_slice + cols[w][1]) * h, h, Role.data(d))
            )
        for w, role in enumerate(self.parity_roles):
            members.append(Member(devs[w], (t * self.rows_per_slice + cols[w][1]) * h, h, role))
        return StripeMap(s, self.codec, self.data, tuple(members))

    def member_at(self, device: int, device_offset: int) -> tuple[StripeMap, Member]:
        dev = check_int("device", device, 0)
        off = check_int("device_offset", device_offset, 0)
        h = self.chunk_size
        t = off // self.period_bytes
        for gi in range(self.groups_per_slice):
            sm = self.stripe(t * self.groups_per_slice + gi)
            for mem in sm.on_device(dev):
                if mem.device_offset <= off < mem.device_offset + h:
                    return sm, mem
        raise InvalidArgumentError(f"no member owns byte {off} of device {dev}")

    # -- failure predicate ------------------------------------------------

    def group_masks(self) -> frozenset[int]:
        """The distinct device sets (bit masks) of the groups over one full period."""
        if self._masks is None:
            masks: set[int] = set()
            states = [self.spared] + ([self.target] if self.target is not None else [])
            slices = self.nperms * self.n_devices
            for state in states:
                for t in range(slices):
                    perm = self.permutation(t)
                    red = self.redirect(t, state)
                    for cols in self._cols:
                        mask = 0
                        for pos, _row in cols:
                            d = int(perm[pos])
                            mask |= 1 << red.get(d, d)
                        masks.add(mask)
            self._masks = frozenset(masks)
        return self._masks

    def _survives(self, failed: frozenset[int]) -> bool:
        if len(failed - self.spared_devices) <= self.parity:
            return True
        fmask = sum(1 << f for f in failed)
        return all((m & fmask).bit_count() <= self.parity for m in self.group_masks())


_IBM_RAID = {"raid5": 1, "raid6": 2}
_IBM_DEFAULT_WIDTH = {"raid5": 9, "raid6": 12}
_IBM_MIN_WIDTH = {"raid5": 3, "raid6": 5}
#: IBM's -drivecount limit.
FR_MAX_DEVICES = 128


class Fr(Declustered):
    """RAID FR: IBM Distributed RAID parameters on the declustered engine (module docs)."""

    level = "FR"
    #: §5: IBM's 256 KiB strip.
    DEFAULT_CHUNK: ClassVar[int] = FR_DEFAULT_CHUNK
    OPTIONS: ClassVar[tuple[str, ...]] = ("raid", "stripewidth", "rebuildareas", *_SHARED_OPTIONS)
    #: A replacement starts the copy-back at once (mandatory for FR).
    copyback_on_replace = True

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = FR_DEFAULT_CHUNK,
        *,
        raid: str = "raid5",
        stripewidth: int | None = None,
        rebuildareas: int = 1,
        unit: int = DEFAULT_UNIT,
        seed: int = DEFAULT_SEED,
        spare_rule: str = SPARE_RULE,
        spared: Sequence[int] = (),
        target: Sequence[int] | None = None,
        moved: int = 0,
        passes: Sequence[Sequence[Any]] | None = None,
        critical: int = 0,
    ) -> None:
        name = raid.lower() if isinstance(raid, str) else ""
        if name not in _IBM_RAID:
            raise InvalidArgumentError(f"raid must be 'raid5' or 'raid6', got {raid!r}")
        self.raid = name
        areas = check_int("rebuildareas", rebuildareas, 1)
        if areas > 4:
            raise InvalidArgumentError(f"rebuildareas must be 1..4, got {areas}")
        n = check_int("n_devices", n_devices, 1)
        if n < _IBM_MIN_WIDTH[name] + 1:
            raise InvalidArgumentError(
                f"RAID FR (raid={name}) needs at least {_IBM_MIN_WIDTH[name] + 1} devices, "
                f"got n_devices={n}"
            )
        if stripewidth is None:
            stripewidth = max(_IBM_MIN_WIDTH[name], min(_IBM_DEFAULT_WIDTH[name], n - areas))
        width = check_int("stripewidth", stripewidth, _IBM_MIN_WIDTH[name])
        if width > 16:
            raise InvalidArgumentError(f"stripewidth must be ≤ 16, got {width}")
        if n > FR_MAX_DEVICES:
            raise InvalidArgumentError(
                f"RAID FR supports at most {FR_MAX_DEVICES} devices, got {n_devices}"
            )
        if width + areas > n:
            raise InvalidArgumentError(
                f"RAID FR needs stripewidth + rebuildareas ≤ n_devices, got {width} + {areas} > {n}"
            )
        p = _IBM_RAID[name]
        super().__init__(
            n_devices,
            chunk_size,
            parity=p,
            data=width - p,
            spares=areas,
            unit=unit,
            seed=seed,
            spare_rule=spare_rule,
            spared=spared,
            target=target,
            moved=moved,
            passes=passes,
            critical=critical,
        )

    @property
    def options(self) -> dict[str, Any]:
        out = super().options
        for key in ("parity", "data", "spares", "code"):
            out.pop(key)
        return {
            "raid": self.raid,
            "stripewidth": self.width,
            "rebuildareas": self.spares,
            **out,
        }

    @property
    def min_devices(self) -> int:
        return _IBM_MIN_WIDTH[self.raid] + 1
