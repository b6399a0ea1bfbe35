"""Capture: the part of a LogRecord that must be taken in the caller's thread.

The caller may mutate its arguments and its ``extra=`` values the moment
``logger.info()`` returns, and the record's traceback pins whole stack frames in
memory. So the message, the exception text and the extras (as JSON) are rendered
here, once, and the writer thread never touches a caller's object: no ``__repr__``
of an ORM instance runs in another thread. The rest is read off the record as the
immutable values it already holds. The result is a flat tuple of scalars: cheap to
keep while it waits in the queue, and untracked by the garbage collector.
"""

from __future__ import annotations

import logging
from typing import TypeAlias

from pglog.sanitize import Notes, safe_repr, safe_str, to_json

#: What the queue holds for one record, in this order:
#: created, levelname, name, process, thread, threadName, message, exception,
#: funcName, module, filename, lineno, pathname, extras (the text of a JSON object).
Entry: TypeAlias = tuple[
    float,
    str,
    str,
    "int | None",
    "int | None",
    "str | None",
    str,
    "str | None",
    "str | None",
    "str | None",
    "str | None",
    "int | None",
    "str | None",
    "str | None",
]

_PLAIN = logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None)
#: Attributes every LogRecord has, plus those a Formatter adds while formatting.
#: Anything else on a record came with ``extra=`` (or a record factory) and is kept.
STANDARD_ATTRIBUTES = frozenset(vars(_PLAIN)) | {"message", "asctime"}
_PLAIN_SIZE = len(vars(_PLAIN))
del _PLAIN

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
    extras = None
    if len(attributes) > _PLAIN_SIZE + ("message" in attributes) + ("asctime" in attributes):
        extra = {k: v for k, v in attributes.items() if k not in STANDARD_ATTRIBUTES}
        if extra or notes:
            extras = to_json(extra, notes)
    elif notes:
        extras = to_json({}, notes)

    return (
        record.created,
        record.levelname,
        record.name,
        record.process,
        record.thread,
        record.threadName,
        message,
        exception,
        record.funcName,
        record.module,
        record.filename,
        record.lineno,
        record.pathname,
        extras,
    )


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
