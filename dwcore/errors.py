"""Exception hierarchy of dwcore.

Every failure a caller can cause raises a subclass of :class:`DWError` whose
message says what was wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable


class DWError(Exception):
    """Base class of every error dwcore raises on purpose."""


class InvalidArgumentError(DWError, ValueError):
    """An argument is malformed or out of range; the message names it."""


class UnsupportedISAError(DWError):
    """The requested instruction set cannot run on this CPU or is unknown."""


class DataLossError(DWError):
    """More members are lost than the code or layout tolerates.

    ``failed`` lists the lost members (shard or device indices) when known.
    """

    def __init__(self, message: str, failed: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.failed: tuple[int, ...] = tuple(failed)


class TooFewShardsError(DataLossError):
    """An erasure code was asked to reconstruct with fewer than k shards."""


class NoSpaceError(DWError):
    """Not enough free space; ``largest_free`` is the biggest extent available (blocks)."""

    def __init__(self, message: str, largest_free: int = 0) -> None:
        super().__init__(message)
        self.largest_free = largest_free


class CorruptionError(DWError):
    """An on-disk structure failed its checks in every copy; the message names it."""


class UnsupportedFormatError(DWError):
    """An on-disk structure has a newer format version than this dwcore reads."""


class PluginError(DWError):
    """A plugin could not be found, validated or loaded; the message names it and why."""


class NotFoundError(DWError, LookupError):
    """A named thing (user, role, API key, session) does not exist; the message names it."""


class AlreadyExistsError(DWError):
    """A thing with that name already exists; the message names it."""


class AuthenticationError(DWError):
    """Credentials were wrong, expired, revoked or belong to a disabled account.

    The message never says which part of a user name and password was wrong.
    """


class AccountLockedError(AuthenticationError):
    """Too many failed logins; ``retry_after_s`` says when the next attempt is accepted."""

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermissionDeniedError(DWError, PermissionError):
    """The authorization decision point refused an action; the message names it."""


class AuditLogBusyError(DWError):
    """Another process holds the audit log of this instance open for writing."""


class CircuitOpenError(DWError):
    """A circuit breaker is open: calls fail fast until its open duration has passed.

    ``name`` is the breaker's name and ``retry_after`` the seconds until it
    lets a probe call through.
    """

    def __init__(self, message: str, name: str = "", retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.name = name
        self.retry_after = retry_after


class MemoryPressureError(DWError):
    """New work was refused because memory stayed critical for the whole wait."""


class ConfigError(DWError):
    """A configuration file is unreadable or invalid; ``report`` lists every problem."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class InvalidKeyError(InvalidArgumentError):
    """An object key is empty, too long or holds a forbidden part; the message says which."""


class CompartmentNotEmptyError(DWError):
    """A compartment still holds objects and cannot be deleted; delete them first."""


class CommitInterruptedError(DWError):
    """A group commit was interrupted (Ctrl-C in the thread running it) while it held
    this change: it may or may not have been committed.  Its data is kept; reopening
    shows which, and ``dwcore fsck`` frees what no committed change references."""
