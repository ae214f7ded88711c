"""Verification of the audit chain: what was edited, removed, inserted or reordered, and where.

:func:`verify` streams every day file once, oldest first, and checks each
record's own hash, that seqs run 1, 2, 3... without gaps or steps back, that
each ``prev`` is the hash of the record before it (across day files), that
each record sits in the file of its UTC day, and that the head anchor
(``chain.head``) names a record that is still there.  Each finding is a
:class:`Problem` with the file, the 1-based line and the seq.  A line a crash
left incomplete that the writer has since marked (see
:mod:`dwcore.audit.log`) is a notice, not a problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dwcore.audit.files import HEAD_FILE, TORN_ACTION, Head, day_files, iter_lines, read_head
from dwcore.audit.records import (
    FORMAT_VERSION,
    GENESIS,
    AuditRecord,
    Category,
    record_hash,
)

__all__ = ["Problem", "VerifyReport", "verify"]


@dataclass(frozen=True)
class Problem:
    """One finding: ``kind``, where (``file``, 1-based ``line``, ``seq``) and what it means.

    Kinds: ``edited`` (content does not match its hash), ``sequence`` (a seq
    is missing, repeated or out of order: records removed, inserted or
    reordered), ``chain`` (``prev`` is not the hash of the record before:
    that one was edited and rehashed, or records were replaced),
    ``misfiled`` (record in another day's file), ``malformed`` (not a
    record), ``torn_tail`` (incomplete last line: a crash, or a cut),
    ``truncated`` (records removed from the end), ``head`` (the head anchor
    is unreadable or names a record that changed), ``unsupported`` (newer
    format).
    """

    kind: str
    file: str
    line: int
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        seq = f" seq {self.seq}" if self.seq is not None else ""
        return f"{where}{seq}: {self.kind}: {self.message}"


@dataclass
class VerifyReport:
    """Result of :func:`verify`; ``ok`` when no problem was found."""

    directory: Path
    files: int = 0
    records: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    notices: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems

    def __str__(self) -> str:
        state = "intact" if self.ok else f"{len(self.problems)} problem(s)"
        lines = [
            f"{self.directory}: {self.records} records in {self.files} files, "
            f"last seq {self.last_seq}: {state}"
        ]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  notice: {p}" for p in self.notices]
        return "\n".join(lines)


@dataclass
class _Malformed:
    index: int
    file: str
    line: int
    terminated: bool
    last_line: bool = False


def verify(directory: str | Path, *, until_seq: int | None = None) -> VerifyReport:
    """Check the whole chain in *directory*; streams, so memory stays flat.

    With *until_seq*, stop after the record of that seq: a writer appending
    at the same time then cannot make its half-written line look torn.
    """
    directory = Path(directory)
    report = VerifyReport(directory)
    head = read_head(directory)
    if head is False:
        report.problems.append(
            Problem("head", HEAD_FILE, 0, None, "the head anchor is unreadable or was edited")
        )
    last_seq = 0
    prev_hash = GENESIS
    prev_where = "the start of the log"
    malformed: list[_Malformed] = []
    marked: set[tuple[str, int]] = set()
    last_file = ""
    last_line = 0
    found: list[Problem] = report.problems

    done = False
    for day, path in day_files(directory):
        if done:
            break
        report.files += 1
        name = path.name
        bad: _Malformed | None = None
        for line in iter_lines(path):
            last_file, last_line, bad = name, line.number, None
            try:
                obj = json.loads(line.data)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
                version = obj.get("v")
                if isinstance(version, int) and version > FORMAT_VERSION:
                    found.append(
                        Problem(
                            "unsupported",
                            name,
                            line.number,
                            obj.get("seq") if isinstance(obj.get("seq"), int) else None,
                            f"record format {version} is newer than this dwcore reads "
                            f"({FORMAT_VERSION}); verify with a newer dwcore",
                        )
                    )
                    continue
                rec = AuditRecord.from_fields(obj)
                computed = record_hash(obj)
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                bad = _Malformed(len(found), name, line.number, line.terminated)
                malformed.append(bad)
                found.append(Problem("malformed", name, line.number, None, ""))
                continue
            report.records += 1
            here = f"{name}:{line.number}"
            if computed != rec.hash:
                found.append(
                    Problem(
                        "edited",
                        name,
                        line.number,
                        rec.seq,
                        "the record's content does not match its hash: it was edited",
                    )
                )
            expected = last_seq + 1
            if rec.seq != expected:
                if rec.seq > expected:
                    gap = (
                        f"seq {expected}"
                        if rec.seq == expected + 1
                        else f"seqs {expected}..{rec.seq - 1}"
                    )
                    why = f"{gap} missing before it: records were removed (or reordered)"
                else:
                    why = (
                        f"seq goes back from {last_seq} ({prev_where}) to {rec.seq}: "
                        f"a record was inserted, duplicated or reordered"
                    )
                found.append(Problem("sequence", name, line.number, rec.seq, why))
            elif rec.prev != prev_hash:
                found.append(
                    Problem(
                        "chain",
                        name,
                        line.number,
                        rec.seq,
                        f"prev is not the hash of the record before it ({prev_where}, "
                        f"seq {last_seq}): that record was edited and rehashed, or "
                        f"records between them were replaced",
                    )
                )
            if rec.ts.date() != day:
                found.append(
                    Problem(
                        "misfiled",
                        name,
                        line.number,
                        rec.seq,
                        f"timestamp {rec.ts.isoformat()} belongs to another day's file: "
                        f"the record was moved",
                    )
                )
            if (
                rec.category is Category.SECURITY_INCIDENT
                and rec.action == TORN_ACTION
                and isinstance(rec.details.get("line"), int)
            ):
                marked.add((str(rec.details.get("file")), rec.details["line"]))
            if isinstance(head, Head) and rec.seq == head.seq and rec.hash != head.hash:
                found.append(
                    Problem(
                        "head",
                        name,
                        line.number,
                        rec.seq,
                        "this record differs from the one the head anchor recorded: "
                        "the end of the log was rewritten",
                    )
                )
            if rec.seq < expected:
                continue  # keep following the chain from the highest record seen
            last_seq, prev_hash, prev_where = rec.seq, rec.hash, here
            if until_seq is not None and rec.seq >= until_seq:
                done = True
                break
        if bad is not None:
            bad.last_line = True

    final = malformed[-1] if malformed else None
    for m in malformed:
        if (m.file, m.line) in marked:
            found[m.index] = Problem(
                "torn_line",
                m.file,
                m.line,
                None,
                "incomplete line left by a crash, marked by the log when it reopened",
            )
        elif (
            m is final
            and m.last_line
            and not m.terminated
            and (m.file, m.line)
            == (
                last_file,
                last_line,
            )
        ):
            found[m.index] = Problem(
                "torn_tail",
                m.file,
                m.line,
                None,
                "the last line is incomplete: a crash during a write, or the file was cut; "
                "opening the log marks it and continues the chain",
            )
        else:
            found[m.index] = Problem(
                "malformed", m.file, m.line, None, "the line is not an audit record"
            )
    report.notices = [p for p in found if p.kind == "torn_line"]
    report.problems = [p for p in found if p.kind != "torn_line"]

    if isinstance(head, Head) and head.seq > last_seq and not done:
        gap = f"seq {head.seq}" if head.seq == last_seq + 1 else f"seqs {last_seq + 1}..{head.seq}"
        report.problems.append(
            Problem(
                "truncated",
                last_file or "(no day files)",
                last_line + 1 if last_file else 0,
                last_seq + 1,
                f"{gap} removed from the end: the head anchor says the log reached seq {head.seq}",
            )
        )
    report.last_seq, report.last_hash = last_seq, prev_hash
    return report
