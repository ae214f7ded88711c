"""Reading the audit directory: day files in order, lines forwards and backwards, the head.

Shared by the writer (which continues the chain from the last record on
disk), :func:`~dwcore.audit.verify.verify` and
:func:`~dwcore.audit.query.query`.  Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dwcore.audit.records import FORMAT_VERSION, AuditRecord, canonical_json, parse_day_file_name
from dwcore.errors import UnsupportedFormatError

__all__ = [
    "HEAD_FILE",
    "SYSTEM_PRINCIPAL",
    "TORN_ACTION",
    "Head",
    "Line",
    "day_files",
    "head_bytes",
    "iter_lines",
    "iter_lines_reversed",
    "parse_record_line",
    "read_head",
]

#: The chain's head anchor: the seq and hash of the last record known durable.
HEAD_FILE = "chain.head"
#: The principal of records the log writes about itself.
SYSTEM_PRINCIPAL = "dwcore"
#: Action of the record that marks an incomplete line left by a crash.
TORN_ACTION = "audit.torn_line_marked"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Line:
    """One line of a day file: its 1-based number, bytes (no newline) and whether it ended."""

    number: int
    data: bytes
    terminated: bool


@dataclass(frozen=True)
class Head:
    """The head anchor: seq and hash of the last record that was fsynced."""

    seq: int
    hash: str


def day_files(directory: Path) -> list[tuple[date, Path]]:
    """The day files of *directory*, oldest first (other names are ignored)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        day = parse_day_file_name(name)
        if day is not None:
            found.append((day, directory / name))
    found.sort()
    return found


def iter_lines(path: Path) -> Iterator[Line]:
    """The lines of *path* in order, streamed."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            terminated = raw.endswith(b"\n")
            yield Line(number, raw[:-1] if terminated else raw, terminated)


def iter_lines_reversed(path: Path) -> Iterator[bytes]:
    """The lines of *path* from the last one back, read in chunks from the end."""
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        rest = b""
        first = True
        while pos > 0:
            step = min(_CHUNK, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + rest
            if first:
                first = False
                if buf.endswith(b"\n"):
                    buf = buf[:-1]
                elif not buf:
                    return
            parts = buf.split(b"\n")
            rest = parts[0]
            yield from reversed(parts[1:])
        if rest or not first:
            yield rest


def parse_record_line(data: bytes) -> AuditRecord | None:
    """The record on a line, or ``None`` if the line is not a well-formed record.

    A record whose format is newer than this dwcore still raises
    :class:`UnsupportedFormatError`.
    """
    try:
        return AuditRecord.from_line(data)
    except UnsupportedFormatError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def head_bytes(head: Head) -> bytes:
    """The bytes stored in the head file for *head*."""
    body = {"v": FORMAT_VERSION, "seq": head.seq, "hash": head.hash}
    body["check"] = hashlib.sha256(canonical_json(body)).hexdigest()
    return canonical_json(body) + b"\n"


def read_head(directory: Path) -> Head | bool | None:
    """The head anchor; ``None`` if there is none, ``False`` if it is unreadable."""
    try:
        raw = (directory / HEAD_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        obj = json.loads(raw)
        head = Head(int(obj["seq"]), str(obj["hash"]))
    except (ValueError, KeyError, TypeError):
        return False
    if isinstance(obj.get("v"), int) and obj["v"] > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"audit head format {obj['v']} is newer than this dwcore reads; upgrade dwcore"
        )
    return head if raw == head_bytes(head) else False
