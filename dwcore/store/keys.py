"""Validation of the names a user gives the store: object keys, compartments, metadata.

Keys are UTF-8 text of 1 to :data:`MAX_KEY_BYTES` bytes with no NUL or other
control character, no leading ``/`` and no ``.`` or ``..`` path segment, so
a key can always be shown on a terminal and mapped onto a path when exported.
Compartment names follow the resource names of :mod:`dwcore.auth.rbac`.
User metadata is a small mapping of text to text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import blake3

from dwcore.errors import InvalidArgumentError, InvalidKeyError

__all__ = [
    "COMPARTMENT_NAME",
    "MAX_KEY_BYTES",
    "MAX_METADATA_BYTES",
    "check_compartment_name",
    "check_key",
    "check_metadata",
    "partition_of",
    "prefix_end",
]

#: Longest key, in UTF-8 bytes (S3's limit).
MAX_KEY_BYTES = 1024
#: Largest user metadata, in UTF-8 bytes of all names and values together.
MAX_METADATA_BYTES = 8192
#: Valid compartment names (as resource names in the RBAC vocabulary).
COMPARTMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_META_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _show(key: object, limit: int = 60) -> str:
    text = repr(key)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_key(key: object) -> str:
    """``key`` if it is a valid object key, else :class:`InvalidKeyError` saying why."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"an object key is text (str), got {type(key).__name__}")
    if not key:
        raise InvalidKeyError("an object key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKeyError(
            f"object key {_show(key)} is not valid Unicode text (lone surrogate)"
        ) from None
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"object key is {size} bytes in UTF-8; at most {MAX_KEY_BYTES} are allowed"
        )
    if "\x00" in key:
        raise InvalidKeyError(f"object key {_show(key)} contains a NUL character")
    for ch in key:
        if unicodedata.category(ch) == "Cc":
            raise InvalidKeyError(
                f"object key {_show(key)} contains the control character U+{ord(ch):04X}"
            )
    if key.startswith("/"):
        raise InvalidKeyError(f"object key {_show(key)} must not start with '/'")
    for part in key.split("/"):
        if part in (".", ".."):
            raise InvalidKeyError(
                f"object key {_show(key)} contains a {part!r} path segment, which is not allowed"
            )
    return key


def check_compartment_name(name: object) -> str:
    """``name`` if it is a valid compartment name, else :class:`InvalidArgumentError`."""
    if not isinstance(name, str) or not COMPARTMENT_NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"compartment name {_show(name)} is invalid: use 1 to 63 letters, digits, '.', '_' "
            f"or '-', starting with a letter or digit"
        )
    return name


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """User metadata as a plain dict of text, or :class:`InvalidArgumentError`."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError(
            f"metadata must be a mapping of names to text, got {type(metadata).__name__}"
        )
    out: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"metadata name {_show(name)} is invalid: use letters, digits, '.', '_' or '-' "
                f"(at most 128)"
            )
        if not isinstance(value, str):
            raise InvalidArgumentError(
                f"metadata value of {name!r} must be text, got {type(value).__name__}"
            )
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise InvalidArgumentError(f"metadata value of {name!r} contains control characters")
        total += len(name) + len(value.encode("utf-8", "surrogatepass"))
        out[name] = value
    if total > MAX_METADATA_BYTES:
        raise InvalidArgumentError(
            f"metadata is {total} bytes; at most {MAX_METADATA_BYTES} are allowed"
        )
    return out


def partition_of(key: str, partitions: int) -> int:
    """The hash partition of ``key``: blake3 of its UTF-8 bytes, first 8 bytes LE, mod n."""
    digest = blake3.blake3(key.encode("utf-8")).digest(length=8)
    return int.from_bytes(digest, "little") % partitions


def prefix_end(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (None: no bound).

    Strings compare as their UTF-8 bytes in SQLite, which is code point order.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None
