"""The audit log: seven categories of event, hash-chained JSONL day files, fsynced in groups.

``AuditLog(root / "audit")`` writes (:mod:`dwcore.audit.log`);
:func:`verify` checks the chain and says where it breaks
(:mod:`dwcore.audit.verify`); :func:`query` streams matching records
(:mod:`dwcore.audit.query`).  Components take a :class:`Clock` so tests move
time by hand (:class:`ManualClock`).
"""

from dwcore.audit.clock import Clock, ManualClock, SystemClock
from dwcore.audit.log import AuditLog
from dwcore.audit.query import query
from dwcore.audit.records import AuditRecord, Category, Outcome
from dwcore.audit.verify import Problem, VerifyReport, verify

__all__ = [
    "AuditLog",
    "AuditRecord",
    "Category",
    "Clock",
    "ManualClock",
    "Outcome",
    "Problem",
    "SystemClock",
    "VerifyReport",
    "query",
    "verify",
]
