"""Capture: the part of a LogRecord that must be taken in the caller's thread.

The caller may mutate its arguments and its ``extra=`` values the moment
``logger.info()`` returns, and the record's traceback pins whole stack frames in
memory. So the message and the exception text are rendered here, once. Extras whose
values are plain scalars (the usual request ids, user ids, paths) are kept as a small
dict: nothing can change them. Any other extra value is turned into JSON here, so the
writer thread never touches a caller's object: no ``__repr__`` of an ORM instance runs
in another thread. The rest is read off the record as the immutable values it holds.

The result is a small tuple of scalars: cheap to build (this runs in every logging
call), cheap to keep while it waits in the queue, untracked by the garbage collector.
"""

from __future__ import annotations

import itertools
import logging
import operator
from collections.abc import Iterator
from typing import Any, TypeAlias

from pglog.sanitize import Notes, safe_repr, safe_str, to_json

#: The record's own attributes, in this order.
FIELD_NAMES = (
    "created",
    "levelname",
    "name",
    "process",
    "thread",
    "threadName",
    "funcName",
    "module",
    "filename",
    "lineno",
    "pathname",
)
Fields: TypeAlias = tuple[
    float,
    str,
    str,
    "int | None",
    "int | None",
    "str | None",
    "str | None",
    "str | None",
    "str | None",
    "int | None",
    "str | None",
]
#: ``extra=`` as captured: None, a dict of plain scalars, or the text of a JSON object.
Extras: TypeAlias = "dict[str, Any] | str | None"
#: What the queue holds for one record: (fields, message, exception text, extras).
Entry: TypeAlias = tuple[Fields, str, "str | None", Extras]

_PLAIN = logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None)
#: Attributes every LogRecord has, plus those a Formatter adds while formatting.
#: Anything else on a record came with ``extra=`` (or a record factory) and is kept.
STANDARD_ATTRIBUTES = frozenset(vars(_PLAIN)) | {"message", "asctime"}
#: A plain LogRecord sets its attributes first; ``extra=`` keys are added after them.
_PLAIN_SIZE = len(vars(_PLAIN))
del _PLAIN

_FIELDS = operator.itemgetter(*FIELD_NAMES)
_SCALARS = frozenset({str, int, float, bool, type(None)})
_FORMATTER = logging.Formatter()


def capture(record: logging.LogRecord) -> Entry:
    """Take what the writer will need, so the record can be forgotten."""
    notes = None
    try:
        message = record.getMessage()
    except Exception as exc:  # a %-format mistake belongs in the table, not in the caller
        message = unformatted_message(record)
        notes = Notes()
        notes.add("message", f"formatting failed ({type(exc).__name__}: {safe_str(exc)})")

    exception = None
    if record.exc_info or record.exc_text or record.stack_info:
        exception = exception_text(record)

    attributes = record.__dict__
    extras: Extras = None
    if len(attributes) > _PLAIN_SIZE + ("message" in attributes) + ("asctime" in attributes):
        extras = _extras(record, attributes)
    if notes is not None:
        extras = to_json(extras if isinstance(extras, dict) else {}, notes)

    try:
        fields = _FIELDS(attributes)
    except KeyError:  # a record built by hand, without some attribute
        fields = tuple(getattr(record, name, None) for name in FIELD_NAMES)
    return (fields, message, exception, extras)


def _extras(record: logging.LogRecord, attributes: dict[str, Any]) -> Extras:
    items: Iterator[tuple[str, Any]] = iter(attributes.items())
    if type(record) is logging.LogRecord:  # its extras are the last keys: skip the rest
        items = itertools.islice(items, _PLAIN_SIZE, None)
    extra = {k: v for k, v in items if k not in STANDARD_ATTRIBUTES}
    if not extra:
        return None
    for value in extra.values():
        if type(value) not in _SCALARS:
            return to_json(extra)  # a container or an object: its state as of now
    return extra


def exception_text(record: logging.LogRecord) -> str | None:
    """The traceback and stack, formatted the way ``logging.Formatter`` would."""
    parts = []
    try:
        if record.exc_text:
            parts.append(record.exc_text)
        elif record.exc_info:
            parts.append(_FORMATTER.formatException(record.exc_info))
    except Exception as exc:  # a broken exception object must not cost the record
        parts.append(f"<traceback could not be formatted: {type(exc).__name__}>")
    if record.stack_info:
        parts.append(_FORMATTER.formatStack(record.stack_info))
    return "\n".join(parts) or None


def unformatted_message(record: logging.LogRecord) -> str:
    """The message and its arguments side by side, for a record whose ``%`` failed."""
    args = record.args
    if isinstance(args, tuple):
        shown = ", ".join(map(safe_repr, args)) + ("," if len(args) == 1 else "")
        return f"{safe_repr(record.msg)} % ({shown})"
    return f"{safe_repr(record.msg)} % {safe_repr(args)}"
