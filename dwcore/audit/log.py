"""The audit log writer: hash-chained JSONL day files, fsynced in groups.

Records go to ``audit-YYYY-MM-DD.jsonl`` by their UTC timestamp, so files
rotate by themselves at midnight.  Each record is written to the operating
system at once (a process crash loses nothing) and fsynced in groups: when
``fsync_interval`` has passed since the last fsync (checked by a background
thread, or on the next record when there is none), on :meth:`AuditLog.flush` and
:meth:`AuditLog.close`, and before :meth:`AuditLog.record` returns when the
caller asks for ``durable=True``.  After each fsync the head anchor
(``chain.head``: seq and hash of the last durable record) is replaced, so
records cut off the end of the log are noticed.

Reopening continues the chain from the last record on disk.  A final line a
crash left incomplete is terminated and followed by a ``security_incident``
record (action ``audit.torn_line_marked``) naming its file and line; the
chain continues from the last complete record and
:func:`~dwcore.audit.verify.verify` accepts the marked line as a notice.  A
head anchor ahead of the last record on disk means records were removed from
the end: the log records an incident and continues after the head's seq, so
the gap stays visible to every later verification.

One writer per directory: the log holds an exclusive ``flock`` on
``audit/.lock`` while open.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import warnings
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from dwcore.audit.clock import Clock, SystemClock
from dwcore.audit.files import (
    HEAD_FILE,
    SYSTEM_PRINCIPAL,
    TORN_ACTION,
    Head,
    day_files,
    head_bytes,
    iter_lines_reversed,
    parse_record_line,
    read_head,
)
from dwcore.audit.records import GENESIS, AuditRecord, Category, Outcome, day_file_name
from dwcore.audit.verify import VerifyReport, verify
from dwcore.errors import AuditLogBusyError, InvalidArgumentError
from dwcore.paths import fsync_dir

__all__ = ["AuditLog"]

_LOCK_FILE = ".lock"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class AuditLog:
    """Append-only, hash-chained, group-fsynced audit log in *directory*.

    ``AuditLog(root / "audit")``; :meth:`record` an event; :meth:`close`
    (or use it as a context manager).  ``fsync_interval`` (seconds) bounds
    how long a record may wait for its fsync; ``background=False`` turns the
    flusher thread off (tests drive :meth:`flush` and the clock instead).
    ``lock_timeout_s`` is how long to wait for another writer to let go.
    Thread-safe.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        fsync_interval: float = 0.1,
        background: bool = True,
        lock_timeout_s: float = 10.0,
    ) -> None:
        if not fsync_interval >= 0:
            raise InvalidArgumentError(
                f"fsync_interval must be >= 0 seconds, got {fsync_interval!r}"
            )
        self.directory = Path(directory)
        self.clock: Clock = clock or SystemClock()
        self.fsync_interval = float(fsync_interval)
        self._lock = threading.RLock()
        self._closed = False
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = self._acquire(lock_timeout_s)
        self._fd: int | None = None
        self._day: date | None = None
        self._dirty = False
        self._last_sync = self.clock.monotonic()
        self._head_lock = threading.Lock()  # head writes, in seq order
        self._head_seq = -1
        try:
            self._recover()
        except BaseException:
            self._release()
            raise
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._flusher, name=f"dwcore-audit-flush:{self.directory}", daemon=True
            )
            self._thread.start()

    # ----------------------------------------------------------- lifecycle

    def _acquire(self, timeout_s: float) -> int:
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise AuditLogBusyError(
                        f"the audit log in {self.directory} is open for writing in another "
                        f"process (or another AuditLog in this one); close that one or wait "
                        f"for it to finish"
                    ) from None
                time.sleep(0.05)

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def close(self) -> None:
        """Fsync what is pending, stop the flusher and release the directory."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._sync_locked()
            self._release()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def last_seq(self) -> int:
        """Seq of the last record written (0 for an empty log)."""
        return self._next_seq - 1

    # ------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Find where the chain ends on disk and continue it (see the module docstring)."""
        self._next_seq = 1
        self._prev = GENESIS
        self._last_ts: datetime | None = None
        notes: list[tuple[str, dict[str, Any]]] = []
        last: AuditRecord | None = None
        for _day, path in reversed(day_files(self.directory)):
            last, torn = self._last_record(path)
            if torn is not None:
                notes.append((TORN_ACTION, torn))
            if last is not None:
                break
        if last is not None:
            self._next_seq = last.seq + 1
            self._prev = last.hash
            self._last_ts = last.ts
        head = read_head(self.directory)
        if head is False:
            notes.append(("audit.head_unreadable", {"file": HEAD_FILE}))
        elif isinstance(head, Head) and head.seq >= self._next_seq:
            notes.append(
                (
                    "audit.records_missing",
                    {
                        "head_seq": head.seq,
                        "last_seq_on_disk": self._next_seq - 1,
                        "reason": "records up to the head anchor are missing from the end",
                    },
                )
            )
            self._next_seq = head.seq + 1
        for action, details in notes:
            self.record(
                Category.SECURITY_INCIDENT,
                action,
                SYSTEM_PRINCIPAL,
                "audit",
                Outcome.FAILURE,
                details,
                durable=True,
            )

    def _last_record(self, path: Path) -> tuple[AuditRecord | None, dict[str, Any] | None]:
        """The last complete record of *path*, and details of a torn final line if any.

        A torn final line is terminated with a newline here, so the next
        record starts on a line of its own.
        """
        size = path.stat().st_size
        if size == 0:
            return None, None
        with open(path, "rb") as fh:
            fh.seek(size - 1)
            terminated = fh.read(1) == b"\n"
        torn: dict[str, Any] | None = None
        record: AuditRecord | None = None
        for index, data in enumerate(iter_lines_reversed(path)):
            candidate = parse_record_line(data)
            if candidate is not None:
                # Chain from its stored hash even if its content was edited, as
                # verify does: the edit is then reported once, where it is.
                record = candidate
                break
            if index == 0 and not terminated:
                torn = {"file": path.name, "bytes": len(data)}
            # Any other unreadable line is not a crash's doing: verify reports it;
            # the chain continues from the last record before it.
        if not terminated:
            with open(path, "ab") as fh:
                fh.write(b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            if torn is not None:
                with open(path, "rb") as fh:
                    torn["line"] = sum(1 for _ in fh)
        return record, torn

    # -------------------------------------------------------------- writing

    def record(
        self,
        category: Category | str,
        action: str,
        principal: str,
        resource: str,
        outcome: Outcome | str,
        details: Mapping[str, Any] | None = None,
        *,
        durable: bool = False,
    ) -> AuditRecord:
        """Append one record; with ``durable=True`` it is fsynced before this returns.

        *category* and *outcome* take the enums or their names; *details*
        is a mapping of JSON values.  Returns the sealed record (seq, hash).
        """
        with self._lock:
            if self._closed:
                raise InvalidArgumentError(f"the audit log in {self.directory} is closed")
            now = self.clock.now()
            if self._last_ts is not None and now < self._last_ts:
                now = self._last_ts  # the wall clock stepped back: keep the log in order
            rec, line = AuditRecord.seal(
                seq=self._next_seq,
                ts=now,
                category=category,
                action=action,
                principal=principal,
                resource=resource,
                outcome=outcome,
                details=details,
                prev=self._prev,
            )
            fd = self._file_for(now.date())
            _write_all(fd, line)
            self._next_seq = rec.seq + 1
            self._prev = rec.hash
            self._last_ts = now
            self._dirty = True
            # With the background flusher running, only a durable record fsyncs on the
            # caller's thread: a read's audit record never waits for a disk flush.
            due = self.clock.monotonic() - self._last_sync >= self.fsync_interval
            if durable or (due and self._thread is None):
                self._sync_locked()
            return rec

    def incident(
        self,
        action: str,
        principal: str,
        resource: str,
        details: Mapping[str, Any] | None = None,
        *,
        outcome: Outcome | str = Outcome.FAILURE,
    ) -> AuditRecord:
        """Open a security incident: a durable ``security_incident`` record."""
        return self.record(
            Category.SECURITY_INCIDENT, action, principal, resource, outcome, details, durable=True
        )

    def flush(self) -> None:
        """Fsync the records written since the last fsync (nothing if there are none)."""
        with self._lock:
            if not self._closed:
                self._sync_locked()

    def verify(self, principal: str = SYSTEM_PRINCIPAL) -> VerifyReport:
        """Flush, verify the chain up to the last record written, open an incident if it fails.

        Records other threads append meanwhile are left for the next run.
        """
        with self._lock:
            if not self._closed:
                self._sync_locked()
            upto = self.last_seq
        report = verify(self.directory, until_seq=upto) if upto else verify(self.directory)
        if not report.ok:
            self.incident(
                "audit.verify_failed",
                principal,
                "audit",
                {
                    "problems": len(report.problems),
                    "first": [str(p) for p in report.problems[:10]],
                },
            )
        return report

    def _file_for(self, day: date) -> int:
        if self._fd is not None and day == self._day:
            return self._fd
        if self._fd is not None:
            self._sync_locked()
            os.close(self._fd)
            self._fd = None
        path = self.directory / day_file_name(day)
        created = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._day = day
        if created:
            fsync_dir(self.directory)
        return self._fd

    def _sync_locked(self) -> None:
        if self._dirty and self._fd is not None:
            os.fsync(self._fd)
            self._dirty = False
            self._write_head(Head(self._next_seq - 1, self._prev))
        self._last_sync = self.clock.monotonic()

    def _sync_unlocked(self) -> None:
        """The background flush: fsync a duplicate of the day file's descriptor without
        the log's lock, so appends (and the requests that audit them) never wait for it."""
        with self._lock:
            if self._closed or not self._dirty or self._fd is None:
                return
            fd = os.dup(self._fd)
            head = Head(self._next_seq - 1, self._prev)
            self._dirty = False
        try:
            os.fsync(fd)
        except BaseException:
            with self._lock:
                self._dirty = True
            raise
        finally:
            os.close(fd)
        self._write_head(head)
        self._last_sync = self.clock.monotonic()

    def _write_head(self, head: Head) -> None:
        with self._head_lock:
            if head.seq <= self._head_seq:
                return  # a later head is already durable (written by a durable record)
            self._write_head_file(head)
            self._head_seq = head.seq

    def _write_head_file(self, head: Head) -> None:
        tmp = self.directory / (HEAD_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, head_bytes(head))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / HEAD_FILE)

    def _flusher(self) -> None:
        reported = ""
        while not self._stop.wait(self.fsync_interval or 0.1):
            try:
                self._sync_unlocked()
            except OSError as exc:  # the records stay pending: the next fsync retries them
                if str(exc) != reported:
                    reported = str(exc)
                    warnings.warn(
                        f"audit log {self.directory}: background fsync failed: {exc}",
                        RuntimeWarning,
                        stacklevel=1,
                    )
