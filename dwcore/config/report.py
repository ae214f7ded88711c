"""The validation report: every error and warning with its key, value and what is allowed.

:func:`issues_from_pydantic` turns a pydantic ``ValidationError`` into
:class:`Issue` objects whose ``key`` is a path like ``pools[0].chunk_size``;
an unknown key gets a did-you-mean from the keys allowed in its table.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

__all__ = ["Issue", "ValidationReport", "issues_from_pydantic", "show_value"]

Severity = Literal["error", "warning"]
_NO_VALUE = object()
# Tags pydantic adds to the location of union members and validator wrappers.
_TAG_RE = re.compile(r"(constrained-)?(int|str|float|bool|list|dict|function-\w+)(\[.*\])?|.*\[.*")


def show_value(value: Any, limit: int = 60) -> str:
    """A short ``repr`` of a (possibly hostile) value for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Issue:
    """One problem: ``key`` (``pools[0].chunk_size``), the ``value`` found, and ``message``."""

    key: str
    message: str
    value: Any = _NO_VALUE
    severity: Severity = "error"

    @property
    def has_value(self) -> bool:
        """True when the issue is about one value (not a missing key or a whole table)."""
        return self.value is not _NO_VALUE

    def __str__(self) -> str:
        if self.has_value:
            return f"{self.key} = {show_value(self.value)}: {self.message}"
        return f"{self.key}: {self.message}"


@dataclass
class ValidationReport:
    """Errors (the configuration cannot be used) and warnings (it can, but look)."""

    source: str = ""
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    #: The validated configuration (a :class:`~dwcore.config.schema.DwConfig`) when the
    #: schema accepted it, else None.
    config: Any = None

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def error(self, key: str, message: str, value: Any = _NO_VALUE) -> None:
        """Add an error."""
        self.errors.append(Issue(key, message, value, "error"))

    def warning(self, key: str, message: str, value: Any = _NO_VALUE) -> None:
        """Add a warning."""
        self.warnings.append(Issue(key, message, value, "warning"))

    def lines(self) -> list[str]:
        """``error: ...`` and ``warning: ...`` lines, errors first."""
        return [f"error: {i}" for i in self.errors] + [f"warning: {i}" for i in self.warnings]

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        head = f"{where}{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        return "\n".join([head, *self.lines()])


def _item_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds directly or as list items (None for plain values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is list:
        (arg,) = typing.get_args(annotation) or (None,)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """The key path of ``loc`` and the model of its last table (for did-you-mean)."""
    model: type[BaseModel] | None = root
    parent: type[BaseModel] | None = root
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
            continue
        if model is None and _TAG_RE.fullmatch(part):
            continue
        key += f".{part}" if key else part
        parent = model
        if model is not None and part in model.model_fields:
            model = _item_model(model.model_fields[part].annotation)
        else:
            model = None
    return key, parent


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err.get("type") == "missing":
        return "is required"
    if msg[:1].isupper() and msg[1:2].islower():  # pydantic's "Input should ..."
        msg = msg[:1].lower() + msg[1:]
    return msg


def issues_from_pydantic(
    exc: ValidationError, root: type[BaseModel], prefix: str = ""
) -> list[Issue]:
    """One :class:`Issue` per problem key in ``exc`` (union alternatives merged)."""
    merged: dict[str, Issue] = {}
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        key, parent = _walk(root, loc)
        key = f"{prefix}.{key}" if prefix and key else (prefix or key or "(file)")
        value = err.get("input", _NO_VALUE)
        if isinstance(value, dict) or err.get("type") == "missing":
            value = _NO_VALUE
        if err.get("type") == "extra_forbidden":
            name = str(loc[-1]) if loc else ""
            allowed = sorted(parent.model_fields) if parent is not None else []
            close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
            issue = Issue(key, f"unknown key{hint}{where}")
        else:
            issue = Issue(key, _message(err), value)
        old = merged.get(key)
        if old is None:
            merged[key] = issue
        elif issue.message not in old.message:
            merged[key] = Issue(key, f"{old.message}, or {issue.message}", old.value)
    return list(merged.values())
