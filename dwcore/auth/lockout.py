"""Lockout with exponential back-off after repeated failed logins (pure state transitions).

Failures are counted per user name (known or not, so lockout says nothing
about which names exist) within ``lockout_window_s``.  The
``lockout_threshold``-th failure locks the name for
``lockout_base_s * 2**(n-1)`` seconds, capped at ``lockout_max_s``, where n
counts the lockouts in a row; a successful login, or a quiet
``lockout_window_s`` after a lockout ends, resets n.
"""

from __future__ import annotations

from dataclasses import dataclass

from dwcore.auth.policy import AuthPolicy

__all__ = ["LockoutState", "after_failure", "remaining"]


@dataclass(frozen=True)
class LockoutState:
    """Failed-login bookkeeping of one user name (times are epoch seconds)."""

    failures: int = 0
    window_start: float = 0.0
    locked_until: float = 0.0
    lockouts: int = 0


def remaining(state: LockoutState | None, now: float) -> float:
    """Seconds until *state* accepts a login again (0 when it does now)."""
    if state is None:
        return 0.0
    return max(0.0, state.locked_until - now)


def after_failure(
    state: LockoutState | None, now: float, policy: AuthPolicy
) -> tuple[LockoutState, float]:
    """The state after one more failure, and the lockout it starts (seconds, 0 for none)."""
    state = state or LockoutState(window_start=now)
    lockouts = state.lockouts
    if lockouts and now - state.locked_until > policy.lockout_window_s:
        lockouts = 0  # a quiet window after the last lockout: start over
    failures, start = state.failures, state.window_start
    if now - start > policy.lockout_window_s:
        failures, start = 0, now
    failures += 1
    if failures < policy.lockout_threshold:
        return LockoutState(failures, start, state.locked_until, lockouts), 0.0
    lockouts += 1
    seconds = float(min(policy.lockout_base_s * 2 ** (lockouts - 1), policy.lockout_max_s))
    return LockoutState(0, now, now + seconds, lockouts), seconds
