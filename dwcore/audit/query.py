"""Streaming search of the audit log by time, category, principal, action, resource, outcome.

:func:`query` is a generator: it opens only the day files whose date can
hold matches (chosen by file name) and reads them line by line, so a year of
logs never sits in memory.  It reads, it does not verify; lines that are not
records are skipped (:func:`~dwcore.audit.verify.verify` reports them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

from dwcore.audit.files import day_files, iter_lines, parse_record_line
from dwcore.audit.records import AuditRecord, Category, Outcome
from dwcore.errors import InvalidArgumentError

__all__ = ["matches", "query"]


def _utc(name: str, when: datetime | None) -> datetime | None:
    if when is None:
        return None
    if not isinstance(when, datetime):
        raise InvalidArgumentError(f"{name} must be a datetime, not {type(when).__name__}")
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _pattern(value: str | None) -> tuple[str, bool] | None:
    if value is None:
        return None
    return (value[:-1], True) if value.endswith("*") else (value, False)


def matches(text: str, pattern: str | None) -> bool:
    """Exact match, or prefix match when *pattern* ends in ``*`` (``None`` matches all)."""
    pat = _pattern(pattern)
    if pat is None:
        return True
    stem, prefix = pat
    return text.startswith(stem) if prefix else text == stem


def query(
    directory: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    category: Category | str | None = None,
    principal: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    outcome: Outcome | str | None = None,
) -> Iterator[AuditRecord]:
    """Yield the records that match every filter given, oldest first.

    ``since`` is inclusive and ``until`` exclusive (naive datetimes are taken
    as UTC).  ``category`` and ``outcome`` take the enums or their names.
    ``principal``, ``action`` and ``resource`` match exactly, or as a prefix
    when they end in ``*`` (``action="user.*"``, ``resource="pool:*"``).
    """
    since_utc, until_utc = _utc("since", since), _utc("until", until)
    if since_utc is not None and until_utc is not None and until_utc <= since_utc:
        raise InvalidArgumentError(
            f"until ({until_utc.isoformat()}) must be after since ({since_utc.isoformat()})"
        )
    cat = Category.parse(category) if category is not None else None
    out = Outcome.parse(outcome) if outcome is not None else None
    first_day = since_utc.astimezone(timezone.utc).date() if since_utc else None
    last_day = until_utc.astimezone(timezone.utc).date() if until_utc else None
    return _scan(
        Path(directory),
        first_day,
        last_day,
        since_utc,
        until_utc,
        cat,
        out,
        principal,
        action,
        resource,
    )


def _scan(
    directory: Path,
    first_day: date | None,
    last_day: date | None,
    since: datetime | None,
    until: datetime | None,
    category: Category | None,
    outcome: Outcome | None,
    principal: str | None,
    action: str | None,
    resource: str | None,
) -> Iterator[AuditRecord]:
    for day, path in day_files(directory):
        if first_day is not None and day < first_day:
            continue
        if last_day is not None and day > last_day:
            break
        for line in iter_lines(path):
            rec = parse_record_line(line.data)
            if rec is None:
                continue
            if since is not None and rec.ts < since:
                continue
            if until is not None and rec.ts >= until:
                continue
            if category is not None and rec.category is not category:
                continue
            if outcome is not None and rec.outcome is not outcome:
                continue
            if not (
                matches(rec.principal, principal)
                and matches(rec.action, action)
                and matches(rec.resource, resource)
            ):
                continue
            yield rec
