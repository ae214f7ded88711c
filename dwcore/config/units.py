"""Byte sizes in the configuration file: ``"1GiB"``, ``"512 MiB"``, ``"64K"`` or an integer.

Units are binary, as in ``dwcore pool create``: ``K``, ``KiB`` and ``KB`` are
1024 bytes, ``M``/``MiB``/``MB`` 1024², and so on up to ``P``.  Only whole
numbers of bytes are sizes.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["format_size", "parse_size"]

_SIZE_RE = re.compile(r"\s*(\d{1,20})\s*([kKmMgGtTpP]?)(i?)([bB]?)\s*")
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(value: Any) -> int:
    """Bytes from an int or a size string; raises ``ValueError`` saying what is allowed."""
    if isinstance(value, bool):
        raise ValueError(f"a size must be a number of bytes or a string like '1GiB', got {value}")
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or len(value) > 40:
        shown = repr(value) if not isinstance(value, str) else repr(value[:40] + "...")
        raise ValueError(
            f"a size must be a whole number of bytes or a string like '1GiB', '512MiB' or "
            f"'64K', got {shown}"
        )
    m = _SIZE_RE.fullmatch(value)
    if m is None or (m.group(3) and not m.group(2)) or (m.group(3) and not m.group(4)):
        raise ValueError(
            f"{value!r} is not a size: use a whole number with an optional unit "
            f"(B, K or KiB, M or MiB, G or GiB, T or TiB, P or PiB; all binary)"
        )
    number, letter = m.group(1), m.group(2)
    return int(number) * 1024 ** _POWERS[letter.lower()]


def format_size(n: int) -> str:
    """Bytes in the largest binary unit: ``"1 GiB"``, ``"1.5 GiB"``, ``"100 bytes"``."""
    for unit, power in (("PiB", 5), ("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        scale = 1024**power
        if n >= scale:
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
