"""Memory-pressure levels and the thresholds that separate them."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from dwcore.errors import InvalidArgumentError

__all__ = ["KEEP_FRACTION", "Level", "Thresholds"]


class Level(enum.IntEnum):
    """How close the process is to its memory limit (ordered: compare with ``<``)."""

    NORMAL = 0
    ELEVATED = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """The level's name in lower case, as shown to users."""
        return self.name.lower()


#: Share of a cache's entries to keep at each level: trim, halve, clear.
KEEP_FRACTION: dict[Level, float] = {
    Level.NORMAL: 1.0,
    Level.ELEVATED: 0.75,
    Level.HIGH: 0.5,
    Level.CRITICAL: 0.0,
}


@dataclass(frozen=True)
class Thresholds:
    """Fractions of the memory limit where each level starts (``0 < elevated < high <
    critical <= 1``); defaults 70 %, 85 % and 95 %."""

    elevated: float = 0.70
    high: float = 0.85
    critical: float = 0.95

    def __post_init__(self) -> None:
        for name in ("elevated", "high", "critical"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidArgumentError(f"{name} must be a fraction, got {value!r}")
            if math.isnan(value) or not 0 < value <= 1:
                raise InvalidArgumentError(f"{name} must be a fraction in (0, 1], got {value!r}")
        if not self.elevated < self.high < self.critical:
            raise InvalidArgumentError(
                f"thresholds must rise: elevated ({self.elevated}) < high ({self.high}) < "
                f"critical ({self.critical})"
            )

    def level(self, ratio: float) -> Level:
        """The level of a process using ``ratio`` of its limit."""
        if ratio >= self.critical:
            return Level.CRITICAL
        if ratio >= self.high:
            return Level.HIGH
        if ratio >= self.elevated:
            return Level.ELEVATED
        return Level.NORMAL
