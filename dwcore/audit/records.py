"""The audit record: categories, outcomes, canonical JSON and the chain hash.

A record is one JSON object on one line.  Its ``hash`` is the SHA-256 of the
canonical JSON (sorted keys, no spaces, UTF-8) of every other field, and its
``prev`` is the ``hash`` of the record before it (``GENESIS`` for the
first), so editing, removing, inserting or reordering records breaks the
chain where it happened.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from dwcore.errors import InvalidArgumentError, UnsupportedFormatError

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "AuditRecord",
    "Category",
    "Outcome",
    "canonical_json",
    "day_file_name",
    "format_ts",
    "parse_day_file_name",
    "parse_ts",
    "record_hash",
]

#: Version of the record format; a reader meeting a newer one refuses.
FORMAT_VERSION = 1
#: ``prev`` of the very first record.
GENESIS = "0" * 64
_FILE_PREFIX = "audit-"
_FILE_SUFFIX = ".jsonl"


class Category(str, enum.Enum):
    """The seven kinds of audited event."""

    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    DATA_ACCESS = "data_access"
    DATA_CHANGE = "data_change"
    CONFIGURATION = "configuration"
    ADMINISTRATION = "administration"
    SECURITY_INCIDENT = "security_incident"

    @classmethod
    def parse(cls, value: Category | str) -> Category:
        """A category from itself or its name (``"data_access"``, ``"data-access"``)."""
        if type(value) is cls or isinstance(value, Category):
            return value  # type: ignore[return-value]
        text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(c.value for c in cls)
            raise InvalidArgumentError(
                f"unknown audit category {value!r}; use one of: {allowed}"
            ) from None


class Outcome(str, enum.Enum):
    """How the audited action ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"

    @classmethod
    def parse(cls, value: Outcome | str) -> Outcome:
        """An outcome from itself or its name."""
        if type(value) is cls or isinstance(value, Outcome):
            return value  # type: ignore[return-value]
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(o.value for o in cls)
            raise InvalidArgumentError(
                f"unknown audit outcome {value!r}; use one of: {allowed}"
            ) from None


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: the bytes the chain hash covers."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


_json_str = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) quotes with
_json_value = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode  # canonical_json without the final UTF-8 encoding


def _details_json(details: dict[str, Any]) -> str:
    """``canonical_json(details)`` as text: flat mappings of str keys to str and int
    values (what the store records) directly, anything else through the encoder."""
    parts = []
    for key, value in sorted(details.items()) if details else ():
        kind = type(value)
        if type(key) is not str or (kind is not str and kind is not int):
            return _json_value(details)
        parts.append(f"{_json_str(key)}:{_json_str(value) if kind is str else value}")
    return "{" + ",".join(parts) + "}"


def record_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of *fields* without ``hash``."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


_ZERO = timedelta(0)


def format_ts(when: datetime) -> str:
    """``2026-11-29T15:25:13.123456Z`` (UTC, microseconds)."""
    if when.tzinfo is None:
        raise InvalidArgumentError("audit timestamps must be aware datetimes (use UTC)")
    utc = when if when.utcoffset() == _ZERO else when.astimezone(timezone.utc)
    if utc.year < 1000:  # isoformat pads the year; strftime's %Y does not
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = utc.isoformat(timespec="microseconds")
    # an aware time ends in its offset, "+00:00" here
    return text[:-6] + "Z" if text.endswith("+00:00") else text + "Z"


def parse_ts(text: str) -> datetime:
    """Inverse of :func:`format_ts`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def day_file_name(day: date) -> str:
    """``audit-2026-11-29.jsonl``: the file holding the records of one UTC day."""
    return f"{_FILE_PREFIX}{day.isoformat()}{_FILE_SUFFIX}"


def parse_day_file_name(name: str) -> date | None:
    """The day of an audit file name, or ``None`` if *name* is not one."""
    if not (name.startswith(_FILE_PREFIX) and name.endswith(_FILE_SUFFIX)):
        return None
    try:
        return date.fromisoformat(name[len(_FILE_PREFIX) : -len(_FILE_SUFFIX)])
    except ValueError:
        return None


def _details_dict(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``details`` (its values are checked when the record is rendered)."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise InvalidArgumentError(f"audit details must be a mapping, not {type(details).__name__}")
    return dict(details)


@dataclass(frozen=True)
class AuditRecord:
    """One audited event as written to (and read back from) the log."""

    seq: int
    ts: datetime
    category: Category
    action: str
    principal: str
    resource: str
    outcome: Outcome
    details: dict[str, Any] = field(default_factory=dict)
    prev: str = GENESIS
    hash: str = ""

    def fields(self) -> dict[str, Any]:
        """The record as the JSON object stored on disk (with ``hash`` if set)."""
        out: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "seq": self.seq,
            "ts": format_ts(self.ts),
            "category": self.category.value,
            "action": self.action,
            "principal": self.principal,
            "resource": self.resource,
            "outcome": self.outcome.value,
            "details": self.details,
            "prev": self.prev,
        }
        if self.hash:
            out["hash"] = self.hash
        return out

    def to_line(self) -> bytes:
        """The record as one line of the day file, newline included."""
        return canonical_json(self.fields()) + b"\n"

    def computed_hash(self) -> str:
        """The hash the record's content should carry."""
        return record_hash(self.fields())

    @classmethod
    def build(
        cls,
        *,
        seq: int,
        ts: datetime,
        category: Category | str,
        action: str,
        principal: str,
        resource: str,
        outcome: Outcome | str,
        details: Mapping[str, Any] | None,
        prev: str,
    ) -> AuditRecord:
        """Validate the arguments of a new record and seal it with its hash."""
        return cls.seal(
            seq=seq,
            ts=ts,
            category=category,
            action=action,
            principal=principal,
            resource=resource,
            outcome=outcome,
            details=details,
            prev=prev,
        )[0]

    @classmethod
    def seal(
        cls,
        *,
        seq: int,
        ts: datetime,
        category: Category | str,
        action: str,
        principal: str,
        resource: str,
        outcome: Outcome | str,
        details: Mapping[str, Any] | None,
        prev: str,
    ) -> tuple[AuditRecord, bytes]:
        """As :meth:`build`, and the record's line (what :meth:`to_line` returns), both
        from one rendering of the fields (the append path of the log)."""
        for name, value in (("action", action), ("principal", principal), ("resource", resource)):
            if not isinstance(value, str) or not value or "\n" in value:
                raise InvalidArgumentError(
                    f"audit {name} must be a non-empty one-line string, got {value!r}"
                )
        cat, out, det = Category.parse(category), Outcome.parse(outcome), _details_dict(details)
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise InvalidArgumentError(f"audit seq must be an int, got {seq!r}")
        # canonical_json(fields()) rendered directly: the keys in sorted order, the
        # "hash" key between "details" and "outcome", so the hashed body and the
        # line share both halves (one rendering instead of three json.dumps walks)
        try:
            head = (
                f'{{"action":{_json_str(action)},"category":{_json_str(cat.value)},'
                f'"details":{_details_json(det)}'
            ).encode()
            tail = (
                f',"outcome":{_json_str(out.value)},"prev":{_json_str(prev)},'
                f'"principal":{_json_str(principal)},"resource":{_json_str(resource)},'
                f'"seq":{seq},"ts":{_json_str(format_ts(ts))},"v":{FORMAT_VERSION}}}'
            ).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"audit details must be JSON values (str, int, float, bool, None, lists, "
                f"dicts with str keys) without NaN: {exc}"
            ) from None
        digest = hashlib.sha256(head + tail).hexdigest()
        record = cls(
            seq=seq,
            ts=ts,
            category=cat,
            action=action,
            principal=principal,
            resource=resource,
            outcome=out,
            details=det,
            prev=prev,
            hash=digest,
        )
        return record, b"".join((head, b',"hash":"', digest.encode("ascii"), b'"', tail, b"\n"))

    @classmethod
    def from_fields(cls, obj: Mapping[str, Any]) -> AuditRecord:
        """A record from its stored JSON object (the hash is kept, not checked).

        Raises :class:`UnsupportedFormatError` for a newer format and
        ``ValueError``/``KeyError``/``TypeError`` for a malformed object.
        """
        version = obj.get("v")
        if not isinstance(version, int):
            raise ValueError("record has no format version")
        if version > FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"audit record format {version} is newer than this dwcore reads "
                f"({FORMAT_VERSION}); upgrade dwcore"
            )
        seq = obj["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError(f"bad seq {seq!r}")
        details = obj.get("details", {})
        if not isinstance(details, dict):
            raise ValueError("details is not an object")
        return cls(
            seq=seq,
            ts=parse_ts(obj["ts"]),
            category=Category(obj["category"]),
            action=str(obj["action"]),
            principal=str(obj["principal"]),
            resource=str(obj["resource"]),
            outcome=Outcome(obj["outcome"]),
            details=details,
            prev=str(obj["prev"]),
            hash=str(obj["hash"]),
        )

    @classmethod
    def from_line(cls, line: bytes) -> AuditRecord:
        """Parse one stored line (``ValueError`` and friends if it is not a record)."""
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("line is not a JSON object")
        if any(isinstance(v, float) and not math.isfinite(v) for v in obj.values()):
            raise ValueError("non-finite number")
        return cls.from_fields(obj)
