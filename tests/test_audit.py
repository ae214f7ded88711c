"""The audit log: records, day rotation, group fsync, the hash chain, tamper detection, query."""

from __future__ import annotations

import inspect
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dwcore.audit import AuditLog, Category, ManualClock, Outcome, query, verify
from dwcore.audit.files import HEAD_FILE
from dwcore.errors import AuditLogBusyError, InvalidArgumentError, UnsupportedFormatError

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def open_log(directory: Path, clock: ManualClock, **kw: object) -> AuditLog:
    return AuditLog(directory, clock=clock, background=False, **kw)  # type: ignore[arg-type]


def write(directory: Path, clock: ManualClock, n: int, step_s: float = 60.0) -> None:
    with open_log(directory, clock) as log:
        for i in range(n):
            log.record(
                Category.DATA_ACCESS, "object.read", f"user{i % 3}", f"object:c/k{i}", "success"
            )
            clock.advance(step_s)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def day(directory: Path, d: str) -> Path:
    return directory / f"audit-{d}.jsonl"


# ------------------------------------------------------------------ writing


def test_record_fields_and_chain(tmp_path: Path, clock: ManualClock) -> None:
    with open_log(tmp_path, clock) as log:
        a = log.record("authentication", "login", "alice", "instance", "success", {"ip": "::1"})
        b = log.record(Category.ADMINISTRATION, "user.create", "alice", "user:bob", "success")
    assert (a.seq, b.seq) == (1, 2)
    assert a.prev == "0" * 64 and b.prev == a.hash
    lines = lines_of(day(tmp_path, "2026-03-01"))
    stored = json.loads(lines[0])
    assert stored["category"] == "authentication" and stored["details"] == {"ip": "::1"}
    assert stored["ts"] == "2026-03-01T22:00:00.000000Z" and stored["hash"] == a.hash
    assert set(stored) == {
        "v", "seq", "ts", "category", "action", "principal", "resource", "outcome",
        "details", "prev", "hash",
    }  # fmt: skip


def test_seven_categories() -> None:
    assert {c.value for c in Category} == {
        "authentication", "authorization", "data_access", "data_change",
        "configuration", "administration", "security_incident",
    }  # fmt: skip
    assert Category.parse("data-access") is Category.DATA_ACCESS


@pytest.mark.parametrize(
    "args",
    [
        ("nope", "a", "p", "r", "success", None),
        ("authentication", "a", "p", "r", "maybe", None),
        ("authentication", "", "p", "r", "success", None),
        ("authentication", "a", "p\nforged", "r", "success", None),
        ("authentication", "a", "p", "r", "success", {"x": object()}),
        ("authentication", "a", "p", "r", "success", {"x": float("nan")}),
    ],
)
def test_bad_records_are_refused(tmp_path: Path, clock: ManualClock, args: tuple) -> None:
    with open_log(tmp_path, clock) as log:
        with pytest.raises(InvalidArgumentError):
            log.record(*args)
        assert log.last_seq == 0


def test_files_rotate_by_utc_day(tmp_path: Path, clock: ManualClock) -> None:
    write(tmp_path, clock, 6, step_s=3600)  # 22:00 .. 03:00 next day
    assert sorted(p.name for p in tmp_path.glob("audit-*.jsonl")) == [
        "audit-2026-03-01.jsonl",
        "audit-2026-03-02.jsonl",
    ]
    assert len(lines_of(day(tmp_path, "2026-03-01"))) == 2
    assert len(lines_of(day(tmp_path, "2026-03-02"))) == 4
    assert verify(tmp_path).ok


def test_reopen_continues_the_chain(tmp_path: Path, clock: ManualClock) -> None:
    write(tmp_path, clock, 3)
    with open_log(tmp_path, clock) as log:
        assert log.last_seq == 3
        rec = log.record("configuration", "config.set", "root", "instance", "success")
    assert rec.seq == 4
    report = verify(tmp_path)
    assert report.ok and report.records == 4 and report.last_hash == rec.hash


def test_clock_stepping_back_keeps_order(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with open_log(tmp_path, clock) as log:
        log.record("authentication", "login", "a", "instance", "success")
    back = ManualClock(T0 - timedelta(days=2))
    with open_log(tmp_path, back) as log:
        rec = log.record("authentication", "login", "a", "instance", "success")
    assert rec.ts == T0
    assert verify(tmp_path).ok


def test_one_writer_per_directory(tmp_path: Path, clock: ManualClock) -> None:
    with open_log(tmp_path, clock), pytest.raises(AuditLogBusyError, match="another"):
        open_log(tmp_path, clock, lock_timeout_s=0)
    with open_log(tmp_path, clock):  # released on close
        pass


def test_closed_log_refuses_records(tmp_path: Path, clock: ManualClock) -> None:
    log = open_log(tmp_path, clock)
    log.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        log.record("authentication", "login", "a", "instance", "success")


def test_background_flusher_runs(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, fsync_interval=0.01)
    try:
        log.record("authentication", "login", "a", "instance", "success")
        assert log._thread is not None and log._thread.is_alive()
    finally:
        log.close()
    assert log._thread is not None and not log._thread.is_alive()
    assert verify(tmp_path).ok


# --------------------------------------------------------------- group fsync


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_many_records_few_fsyncs(tmp_path: Path, clock: ManualClock, fsyncs: list[int]) -> None:
    with open_log(tmp_path, clock) as log:
        setup = len(fsyncs)  # the new day file's directory entry
        for _ in range(1000):
            log.record("data_access", "object.read", "u", "object:c/k", "success")
            clock.advance(0.001)  # 1 ms apart: one group per 100 ms
        during = len(fsyncs) - setup
    assert during <= 2 * 11  # ~10 groups (file + head each), never one per record
    assert during >= 2  # the interval did trigger group fsyncs


def test_no_fsync_before_interval(tmp_path: Path, clock: ManualClock, fsyncs: list[int]) -> None:
    with open_log(tmp_path, clock) as log:
        log.record("data_access", "object.read", "u", "object:c/k", "success")
        before = len(fsyncs)
        for _ in range(50):
            log.record("data_access", "object.read", "u", "object:c/k", "success")
        assert len(fsyncs) == before
        log.flush()
        assert len(fsyncs) > before
        after = len(fsyncs)
        log.flush()  # nothing pending: no fsync
        assert len(fsyncs) == after


def test_durable_fsyncs_before_return(
    tmp_path: Path, clock: ManualClock, fsyncs: list[int]
) -> None:
    with open_log(tmp_path, clock) as log:
        log.record("data_access", "object.read", "u", "object:c/k", "success")
        before = len(fsyncs)
        rec = log.record("data_change", "object.put", "u", "object:c/k", "success", durable=True)
        assert len(fsyncs) > before
        head = json.loads((tmp_path / HEAD_FILE).read_bytes())
        assert head["seq"] == rec.seq and head["hash"] == rec.hash


# ------------------------------------------------------------ tamper detection


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def edit_field(line: bytes, key: str, value: object) -> bytes:
    obj = json.loads(line)
    obj[key] = value
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@pytest.fixture
def ten(tmp_path: Path, clock: ManualClock) -> Path:
    write(tmp_path, clock, 10)
    assert verify(tmp_path).ok
    return day(tmp_path, "2026-03-01")


def test_edited_field_is_found(tmp_path: Path, ten: Path) -> None:
    lines = lines_of(ten)
    lines[4] = edit_field(lines[4], "principal", "mallory")
    rewrite(ten, lines)
    report = verify(tmp_path)
    assert not report.ok
    [p] = report.problems
    assert (p.kind, p.file, p.line, p.seq) == ("edited", ten.name, 5, 5)


def test_added_field_is_found(tmp_path: Path, ten: Path) -> None:
    lines = lines_of(ten)
    lines[2] = edit_field(lines[2], "note", "harmless?")
    rewrite(ten, lines)
    [p] = verify(tmp_path).problems
    assert (p.kind, p.line, p.seq) == ("edited", 3, 3)


def test_edit_with_recomputed_hash_breaks_the_next_link(tmp_path: Path, ten: Path) -> None:
    from dwcore.audit.records import record_hash

    lines = lines_of(ten)
    obj = json.loads(lines[3])
    obj["outcome"] = "failure"
    obj["hash"] = record_hash(obj)
    lines[3] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    rewrite(ten, lines)
    [p] = verify(tmp_path).problems
    assert (p.kind, p.line, p.seq) == ("chain", 5, 5)
    assert f"{ten.name}:4" in p.message  # names the record that was rewritten


def test_deleted_line_is_found(tmp_path: Path, ten: Path) -> None:
    lines = lines_of(ten)
    del lines[6]
    rewrite(ten, lines)
    [p] = verify(tmp_path).problems
    assert (p.kind, p.line, p.seq) == ("sequence", 7, 8)
    assert "seq 7 missing" in p.message


def test_swapped_lines_are_found(tmp_path: Path, ten: Path) -> None:
    lines = lines_of(ten)
    lines[2], lines[3] = lines[3], lines[2]
    rewrite(ten, lines)
    problems = verify(tmp_path).problems
    assert [(p.kind, p.line, p.seq) for p in problems] == [("sequence", 3, 4), ("sequence", 4, 3)]


def test_inserted_copy_is_found(tmp_path: Path, ten: Path) -> None:
    lines = lines_of(ten)
    lines.insert(5, lines[1])
    rewrite(ten, lines)
    problems = verify(tmp_path).problems
    assert problems and (problems[0].kind, problems[0].line, problems[0].seq) == ("sequence", 6, 2)


def test_truncated_whole_records_are_found(tmp_path: Path, ten: Path) -> None:
    rewrite(ten, lines_of(ten)[:7])
    [p] = verify(tmp_path).problems
    assert (p.kind, p.file, p.line, p.seq) == ("truncated", ten.name, 8, 8)
    assert "8..10" in p.message


def test_cut_mid_line_is_a_torn_tail(tmp_path: Path, ten: Path) -> None:
    data = ten.read_bytes()
    ten.write_bytes(data[:-40])
    problems = verify(tmp_path).problems
    kinds = [(p.kind, p.line) for p in problems]
    assert ("torn_tail", 10) in kinds
    assert ("truncated", 11) in kinds  # seq 10 is gone, and the head anchor knows it


def test_edit_across_a_day_boundary(tmp_path: Path, clock: ManualClock) -> None:
    write(tmp_path, clock, 6, step_s=3600)
    first, second = day(tmp_path, "2026-03-01"), day(tmp_path, "2026-03-02")
    # move the last record of day one to the top of day two
    a, b = lines_of(first), lines_of(second)
    rewrite(first, a[:-1])
    rewrite(second, [a[-1], *b])
    problems = verify(tmp_path).problems
    assert [(p.kind, p.file, p.line, p.seq) for p in problems] == [("misfiled", second.name, 1, 2)]
    # an edit to the first record of day two is found in that file
    rewrite(first, a)
    b[0] = edit_field(b[0], "resource", "object:c/other")
    rewrite(second, b)
    [p] = verify(tmp_path).problems
    assert (p.kind, p.file, p.line, p.seq) == ("edited", second.name, 1, 3)


def test_removed_day_file_is_found(tmp_path: Path, clock: ManualClock) -> None:
    write(tmp_path, clock, 30, step_s=3600)  # three days
    day(tmp_path, "2026-03-02").unlink()
    [p] = verify(tmp_path).problems
    assert (p.kind, p.file, p.line) == ("sequence", "audit-2026-03-03.jsonl", 1)


def test_edited_head_is_found(tmp_path: Path, ten: Path) -> None:
    (tmp_path / HEAD_FILE).write_text('{"v":1,"seq":3,"hash":"00"}\n')
    assert [p.kind for p in verify(tmp_path).problems] == ["head"]


def test_newer_format_is_reported(tmp_path: Path, ten: Path) -> None:
    lines = lines_of(ten)
    lines[0] = edit_field(lines[0], "v", 99)
    rewrite(ten, lines)
    assert "unsupported" in {p.kind for p in verify(tmp_path).problems}
    with pytest.raises(UnsupportedFormatError):
        list(query(tmp_path))


def test_failed_verification_opens_an_incident(
    tmp_path: Path, ten: Path, clock: ManualClock
) -> None:
    lines = lines_of(ten)
    lines[1] = edit_field(lines[1], "outcome", "failure")
    rewrite(ten, lines)
    with open_log(tmp_path, clock) as log:
        report = log.verify("local:root")
    assert not report.ok
    [incident] = query(tmp_path, category="security_incident")
    assert incident.action == "audit.verify_failed" and incident.principal == "local:root"
    assert incident.details["problems"] == 1 and ":2 seq 2: edited" in incident.details["first"][0]


def test_intact_verification_opens_no_incident(
    tmp_path: Path, ten: Path, clock: ManualClock
) -> None:
    with open_log(tmp_path, clock) as log:
        assert log.verify().ok
    assert not list(query(tmp_path, category="security_incident"))


# ------------------------------------------------------------- crash recovery


def test_torn_last_line_is_marked_on_reopen(tmp_path: Path, ten: Path, clock: ManualClock) -> None:
    ten.write_bytes(ten.read_bytes() + b'{"v":1,"seq":11,"ts":"2026-03-01T2')  # power cut
    with open_log(tmp_path, clock) as log:
        assert log.last_seq == 11  # seq 11 = the marking incident
        rec = log.record("authentication", "login", "a", "instance", "success")
    assert rec.seq == 12
    [marker] = query(tmp_path, action="audit.torn_line_marked")
    assert marker.details == {"file": ten.name, "line": 11, "bytes": 34}
    assert marker.prev == json.loads(lines_of(ten)[9])["hash"]  # chained to seq 10
    report = verify(tmp_path)
    assert report.ok, str(report)
    assert [(n.kind, n.line) for n in report.notices] == [("torn_line", 11)]


def test_complete_last_line_without_newline(tmp_path: Path, ten: Path, clock: ManualClock) -> None:
    ten.write_bytes(ten.read_bytes()[:-1])
    with open_log(tmp_path, clock) as log:
        assert log.last_seq == 10
        log.record("authentication", "login", "a", "instance", "success")
    report = verify(tmp_path)
    assert report.ok and not report.notices and report.records == 11


def test_records_cut_from_the_end_leave_a_lasting_gap(
    tmp_path: Path, ten: Path, clock: ManualClock
) -> None:
    rewrite(ten, lines_of(ten)[:6])
    with open_log(tmp_path, clock) as log:
        first = log.last_seq
    assert first == 11  # the incident took seq 11, after the head's 10
    [incident] = query(tmp_path, action="audit.records_missing")
    assert incident.details["head_seq"] == 10 and incident.details["last_seq_on_disk"] == 6
    problems = verify(tmp_path).problems
    assert [(p.kind, p.seq) for p in problems] == [("sequence", 11)]
    assert "seqs 7..10 missing" in problems[0].message


# ------------------------------------------------------------------- query


def test_query_is_a_generator_with_filters(tmp_path: Path, clock: ManualClock) -> None:
    with open_log(tmp_path, clock) as log:
        log.record("authentication", "login", "alice", "instance", "success")
        clock.advance(60)
        log.record("authentication", "login", "bob", "instance", "failure")
        clock.advance(60)
        log.record("administration", "user.create", "alice", "user:carol", "success")
        clock.advance(60)
        log.record("authorization", "pool.delete", "bob", "pool:tank", "denied")
        clock.advance(60)
        log.record("data_access", "object.read", "carol", "pool:tank", "success")
    result = query(tmp_path)
    assert inspect.isgenerator(result)
    assert [r.seq for r in result] == [1, 2, 3, 4, 5]
    assert [r.seq for r in query(tmp_path, principal="alice")] == [1, 3]
    assert [r.seq for r in query(tmp_path, category=Category.AUTHENTICATION)] == [1, 2]
    assert [r.seq for r in query(tmp_path, outcome=Outcome.DENIED)] == [4]
    assert [r.seq for r in query(tmp_path, action="user.*")] == [3]
    assert [r.seq for r in query(tmp_path, resource="pool:*")] == [4, 5]
    assert [r.seq for r in query(tmp_path, resource="pool:tank", principal="bob")] == [4]
    since, until = T0 + timedelta(seconds=60), T0 + timedelta(seconds=180)
    assert [r.seq for r in query(tmp_path, since=since, until=until)] == [2, 3]
    naive = since.replace(tzinfo=None)
    assert [r.seq for r in query(tmp_path, since=naive, until=until)] == [2, 3]
    assert list(query(tmp_path, principal="nobody")) == []


def test_query_rejects_bad_filters(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="category"):
        query(tmp_path, category="gossip")
    with pytest.raises(InvalidArgumentError, match="until"):
        query(tmp_path, since=T0, until=T0)


def test_query_opens_only_the_days_in_range(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, clock, 24 * 5, step_s=3600)  # five days
    q = sys.modules["dwcore.audit.query"]  # the package re-exports the function by that name
    opened: list[str] = []
    real = q.iter_lines

    def spy(path: Path):  # type: ignore[no-untyped-def]
        opened.append(path.name)
        return real(path)

    monkeypatch.setattr(q, "iter_lines", spy)
    since = datetime(2026, 3, 3, 5, tzinfo=timezone.utc)
    records = query(tmp_path, since=since, until=since + timedelta(hours=2))
    assert [r.ts.hour for r in records] == [5, 6]
    assert opened == ["audit-2026-03-03.jsonl"]


def test_query_streams(tmp_path: Path, clock: ManualClock) -> None:
    write(tmp_path, clock, 50)
    stream = query(tmp_path)
    first = next(stream)
    # the generator is suspended inside the first file: a record appended now is
    # still seen, which a function that had read the file up front would miss
    with open_log(tmp_path, clock) as log:
        log.record("authentication", "login", "late", "instance", "success")
    rest = list(stream)
    assert first.seq == 1 and rest[-1].principal == "late"


def test_verify_until_seq_ignores_a_write_in_progress(tmp_path: Path, ten: Path) -> None:
    ten.write_bytes(ten.read_bytes() + b'{"v":1,"seq":11,"ts":"2026-03')  # being appended
    assert not verify(tmp_path).ok
    report = verify(tmp_path, until_seq=10)
    assert report.ok and report.last_seq == 10, str(report)


def test_verify_until_seq_still_finds_earlier_damage(tmp_path: Path, ten: Path) -> None:
    lines = lines_of(ten)
    lines[2] = edit_field(lines[2], "action", "login")
    rewrite(ten, lines)
    assert [p.seq for p in verify(tmp_path, until_seq=5).problems] == [3]


def test_edited_last_record_is_reported_once_after_reopen(
    tmp_path: Path, ten: Path, clock: ManualClock
) -> None:
    lines = lines_of(ten)
    lines[-1] = edit_field(lines[-1], "outcome", "failure")
    rewrite(ten, lines)
    with open_log(tmp_path, clock) as log:
        assert log.record("authentication", "login", "a", "instance", "success").seq == 11
    assert [(p.kind, p.line, p.seq) for p in verify(tmp_path).problems] == [("edited", 10, 10)]


def test_timestamps_render_like_strftime() -> None:
    import random

    from dwcore.audit.records import format_ts, parse_ts

    rng = random.Random(3)
    for _ in range(2000):
        zone = timezone(timedelta(minutes=rng.randrange(-720, 721, 15)))
        when = datetime.fromtimestamp(rng.uniform(0, 4e9), tz=zone)
        if rng.random() < 0.2:
            when = when.replace(microsecond=0)
        text = format_ts(when)
        assert text == when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert format_ts(parse_ts(text)) == text


def test_appends_do_not_wait_for_the_background_fsync(tmp_path: Path, monkeypatch) -> None:
    import threading

    import dwcore.audit.log as log_module

    log = AuditLog(tmp_path, fsync_interval=0.01)
    log.record(Category.DATA_ACCESS, "object.get", "alice", "object:a/b", Outcome.SUCCESS)
    entered, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if threading.current_thread().name.startswith("dwcore-audit-flush"):
            entered.set()
            release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(log_module.os, "fsync", slow_fsync)
    assert entered.wait(5)  # the flusher is inside its fsync now
    done = threading.Event()

    def append() -> None:
        log.record(Category.DATA_ACCESS, "object.get", "alice", "object:a/c", Outcome.SUCCESS)
        done.set()

    threading.Thread(target=append).start()
    assert done.wait(5)
    release.set()
    log.close()
    assert verify(tmp_path).ok
    assert log.last_seq == 2


@pytest.mark.parametrize(
    "details",
    [
        None,
        {},
        {"size": 4096, "version": 7},
        {"z": [1, 2.5, None, True], "a": {"nested": 'ü\n"\\\t\u2028'}, "m": "x\x00y"},
        {"emoji": "🙂", "big": 10**30, "neg": -1.5e-300},
        {"offset": 0, "bytes": 1 << 40, "path": 'a/\u00e9"b'},
        {1: "an int key", 2: True},
    ],
)
def test_sealed_line_is_the_canonical_json_of_the_record(details: dict | None) -> None:
    """The append path renders the line directly; it must be byte for byte what
    canonical_json gives for the record's fields, and its hash what verify computes."""
    from dwcore.audit.records import AuditRecord, canonical_json, record_hash

    ts = datetime(2026, 11, 29, 15, 25, 13, 123456, tzinfo=timezone.utc)
    rec, line = AuditRecord.seal(
        seq=42,
        ts=ts,
        category="data_change",
        action="object.put",
        principal='ali"ce\\ü',
        resource="object:c/ké\ty",
        outcome="success",
        details=details,
        prev="ab" * 32,
    )
    assert line == canonical_json(rec.fields()) + b"\n" == rec.to_line()
    assert rec.hash == record_hash(rec.fields()) == rec.computed_hash()
    assert json.loads(line)["hash"] == rec.hash
    for bad in (float("nan"), object()):
        with pytest.raises(InvalidArgumentError):
            AuditRecord.seal(
                seq=1,
                ts=ts,
                category="data_change",
                action="a",
                principal="p",
                resource="r",
                outcome="success",
                details={"bad": bad},
                prev="00",
            )
