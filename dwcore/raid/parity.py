"""RAID 5 and RAID 6 with Linux md's rotating parity (``raid-levels.md`` §1).

Both follow md's ``raid5_compute_sector``: chunk c is data index
``d = c mod k`` of stripe ``s = c div k``; every member of stripe s sits at
device offset ``s·C``; the parity device(s) rotate with period N.

* RAID 5 (k = N-1, codec ``xor``): md's ALGORITHM_LEFT_SYMMETRIC by default
  (``pd = k - s mod N``, ``dev = (pd+1+d) mod N``); §1's optional
  left-asymmetric, right-symmetric and right-asymmetric rotations are
  available through ``algorithm=``.
* RAID 6 (k = N-2, codec ``pq-md``): left-symmetric,
  ``pd = N-1 - s mod N``, ``qd = (pd+1) mod N``, ``dev = (pd+2+d) mod N``;
  Q uses md's coefficients ``g^d`` with d the logical data index.
"""

from __future__ import annotations

from dwcore.ec.parity import MAX_DATA, MAX_XOR_DATA
from dwcore.errors import InvalidArgumentError
from dwcore.raid.base import (
    DEFAULT_CHUNK_SIZE,
    Codec,
    Layout,
    Member,
    P,
    Q,
    Role,
    StripeMap,
)

#: RAID 5 rotations of md (``mdadm --layout``), long names with md's short aliases.
RAID5_ALGORITHMS = ("left-symmetric", "left-asymmetric", "right-symmetric", "right-asymmetric")
_ALGORITHM_ALIASES = {
    "ls": "left-symmetric",
    "la": "left-asymmetric",
    "rs": "right-symmetric",
    "ra": "right-asymmetric",
}


def _check_max_data(level: str, k: int, limit: int, n_parity: int) -> None:
    if k > limit:
        raise InvalidArgumentError(
            f"RAID {level} supports at most {limit} data devices "
            f"(n_devices ≤ {limit + n_parity}), got n_devices={k + n_parity}"
        )


class Raid5(Layout):
    """RAID 5: N ≥ 3 devices, one rotating XOR parity chunk per stripe."""

    level = "5"
    OPTIONS = ("algorithm",)

    def __init__(
        self,
        n_devices: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        algorithm: str = "left-symmetric",
    ) -> None:
        name = algorithm.lower() if isinstance(algorithm, str) else ""
        name = _ALGORITHM_ALIASES.get(name, name)
        if name not in RAID5_ALGORITHMS:
            raise InvalidArgumentError(
                f"algorithm must be one of {', '.join(RAID5_ALGORITHMS)} "
                f"(or ls, la, rs, ra), got {algorithm!r}"
            )
        self.algorithm: str = name
        super().__init__(n_devices, chunk_size)
        _check_max_data(self.level, self.k, MAX_XOR_DATA, 1)

    @property
    def options(self) -> dict[str, str]:
        return {"algorithm": self.algorithm}

    @property
    def min_devices(self) -> int:
        return 3

    @property
    def fault_tolerance(self) -> int:
        return 1

    @property
    def codec(self) -> Codec:
        return Codec.XOR

    @property
    def k(self) -> int:
        return self.n_devices - 1

    @property
    def m(self) -> int:
        return 1

    @property
    def period(self) -> int:
        return self.n_devices

    def parity_device(self, s: int) -> int:
        """The device holding P of stripe ``s``."""
        n = self.n_devices
        if self.algorithm.startswith("left"):
            return self.k - s % n
        return s % n

    def data_device(self, s: int, d: int) -> int:
        """The device holding data index ``d`` of stripe ``s``."""
        pd = self.parity_device(s)
        if self.algorithm.endswith("-symmetric"):
            return (pd + 1 + d) % self.n_devices
        return d + 1 if d >= pd else d

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        off = s * c
        members = [Member(self.data_device(s, d), off, c, Role.data(d)) for d in range(self.k)]
        members.append(Member(self.parity_device(s), off, c, P))
        return StripeMap(s, Codec.XOR, self.k, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= 1


class Raid6(Layout):
    """RAID 6: N ≥ 4 devices, rotating P and Q (md left-symmetric) per stripe."""

    level = "6"

    def __init__(self, n_devices: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(n_devices, chunk_size)
        _check_max_data(self.level, self.k, MAX_DATA, 2)

    @property
    def min_devices(self) -> int:
        return 4

    @property
    def fault_tolerance(self) -> int:
        return 2

    @property
    def codec(self) -> Codec:
        return Codec.PQ_MD

    @property
    def k(self) -> int:
        return self.n_devices - 2

    @property
    def m(self) -> int:
        return 2

    @property
    def period(self) -> int:
        return self.n_devices

    def parity_device(self, s: int) -> int:
        """The device holding P of stripe ``s``."""
        return self.n_devices - 1 - s % self.n_devices

    def q_device(self, s: int) -> int:
        """The device holding Q of stripe ``s``."""
        return (self.parity_device(s) + 1) % self.n_devices

    def data_device(self, s: int, d: int) -> int:
        """The device holding data index ``d`` of stripe ``s``."""
        return (self.parity_device(s) + 2 + d) % self.n_devices

    def stripe(self, s: int) -> StripeMap:
        s = self._check_stripe(s)
        c = self.chunk_size
        off = s * c
        members = [Member(self.data_device(s, d), off, c, Role.data(d)) for d in range(self.k)]
        members.append(Member(self.parity_device(s), off, c, P))
        members.append(Member(self.q_device(s), off, c, Q))
        return StripeMap(s, Codec.PQ_MD, self.k, tuple(members))

    def _survives(self, failed: frozenset[int]) -> bool:
        return len(failed) <= 2
