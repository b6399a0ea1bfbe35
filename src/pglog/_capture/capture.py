"""Capture: the part of a LogRecord that must be taken in the caller's thread.

The caller may mutate its arguments and its ``extra=`` values the moment
``logger.info()`` returns, and the record's traceback pins whole stack frames in
memory. So whatever could change is rendered here, once: the message (unless all its
arguments are immutable scalars, when formatting can wait for the writer), the
exception text, and extras that are not plain scalars (as JSON, so the writer thread
never runs a caller's ``__repr__``). The rest is read off the record as the immutable
values it already holds.

Fields bound with ``pglog.bind`` join the extras here, under them: a record's own
``extra=`` wins. So does a dict under the key ``extra``, which is how loguru hands over
its bound fields (``logger.add(handler)``): it is merged rather than nested.

This runs in every logging call, so the common record (no exception, no extras, no
bound fields, scalar arguments) is captured by one C call: ``operator.itemgetter`` over the
record's ``__dict__`` returns the entry itself. The entry is a flat tuple of scalars:
cheap to keep while it waits in the queue, and untracked by the garbage collector.
"""

from __future__ import annotations

import itertools
import logging
import operator
from collections.abc import Iterator
from typing import Any, Final, TypeAlias

from pglog._capture.context import BOUND, Bound
from pglog._capture.sanitize import SCALARS, Notes, as_extras, safe_repr, safe_str, to_json

#: The record's own attributes, in the order they open an entry.
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
#: Where the rest sits in an entry: the message (or its format string), the arguments
#: still to format it with (None once formatted), the exception text, the extras.
MESSAGE: Final = 11
ARGS: Final = 12
EXCEPTION: Final = 13
EXTRAS: Final = 14
ENTRY_SIZE: Final = 16

#: ``extra=`` as captured: None, a dict of plain scalars, or the text of a JSON object.
Extras: TypeAlias = "dict[str, Any] | str | None"
#: What the queue holds for one record (see FIELD_NAMES and MESSAGE...EXTRAS; the last
#: place is unused).
Entry: TypeAlias = tuple[
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
    str,
    "tuple[Any, ...] | None",
    "str | None",
    Extras,
    None,
]

_PLAIN = logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None)
#: Attributes every LogRecord has, plus those a Formatter adds while formatting.
#: Anything else on a record came with ``extra=`` (or a record factory) and is kept.
STANDARD_ATTRIBUTES = frozenset(vars(_PLAIN)) | {"message", "asctime"}
#: A plain LogRecord sets its attributes first; ``extra=`` keys are added after them.
_PLAIN_SIZE = len(vars(_PLAIN))
del _PLAIN

#: In the common case these five last are msg, args and three Nones: the entry as is.
_ENTRY = operator.itemgetter(*FIELD_NAMES, "msg", "args", "exc_text", "exc_info", "stack_info")
_FIELDS = operator.itemgetter(*FIELD_NAMES)
_LOG_RECORD = logging.LogRecord
_FORMATTER = logging.Formatter()
_BOUND_GET = BOUND.get


def capture(record: logging.LogRecord) -> Entry:
    """Take what the writer will need, so the record can be forgotten."""
    attributes = record.__dict__
    bound = _BOUND_GET()
    if len(attributes) == _PLAIN_SIZE and type(record) is _LOG_RECORD:
        entry = _ENTRY(attributes)
        if entry[13] is None and entry[14] is None and entry[15] is None:
            msg, args = entry[11], entry[12]
            if type(msg) is str and type(args) is tuple:
                for arg in args:
                    if type(arg) not in SCALARS:
                        break
                else:
                    if bound is None:
                        return entry  # type: ignore[no-any-return]
                    return (*entry[:EXTRAS], bound.extras, None)
    return _capture_carefully(record, attributes, bound)


def _capture_carefully(
    record: logging.LogRecord, attributes: dict[str, Any], bound: Bound | None
) -> Entry:
    """Everything the fast path leaves: render now what could change later."""
    notes = None
    try:
        message = record.getMessage()
    except Exception as exc:  # a %-format mistake belongs in the table, not in the caller
        message = unformatted_message(record.msg, record.args)
        notes = Notes()
        notes.add("message", f"formatting failed ({type(exc).__name__}: {safe_str(exc)})")

    exception = None
    if record.exc_info or record.exc_text or record.stack_info:
        exception = exception_text(record)

    extras: Extras = None
    size = len(attributes)
    if size > _PLAIN_SIZE + ("message" in attributes) + ("asctime" in attributes):
        extras = _extras(record, attributes, bound)
    elif bound is not None:
        extras = bound.extras
    if notes is not None:
        extras = to_json(extras if isinstance(extras, dict) else {}, notes)

    try:
        fields = _FIELDS(attributes)
    except KeyError:  # a record built by hand, without some attribute
        fields = tuple(getattr(record, name, None) for name in FIELD_NAMES)
    return (*fields, message, None, exception, extras, None)


def render(entry: Entry) -> tuple[str, str | None]:
    """The message of ``entry``, formatting it if that was left for later; and, if the
    formatting failed, a note saying how (the message then shows both parts)."""
    msg, args = entry[MESSAGE], entry[ARGS]
    if not args:
        return msg, None
    try:
        return msg % args, None
    except Exception as exc:
        note = f"formatting failed ({type(exc).__name__}: {safe_str(exc)})"
        return unformatted_message(msg, args), note


def _extras(record: logging.LogRecord, attributes: dict[str, Any], bound: Bound | None) -> Extras:
    items: Iterator[tuple[str, Any]] = iter(attributes.items())
    if type(record) is _LOG_RECORD:  # its extras are the last keys: skip the rest
        items = itertools.islice(items, _PLAIN_SIZE, None)
    own = {k: v for k, v in items if k not in STANDARD_ATTRIBUTES}
    nested = own.get("extra")
    if type(nested) is dict:
        del own["extra"]
        own = {**nested, **own}
    extra = {**bound.fields, **own} if bound is not None else own
    return as_extras(extra) if extra else None


def exception_text(record: logging.LogRecord) -> str | None:
    """The traceback and stack, formatted the way ``logging.Formatter`` would."""
    parts = []
    try:
        if record.exc_text and not record.exc_text.isspace():  # loguru sets "\n"
            parts.append(record.exc_text)
        elif record.exc_info:
            parts.append(_FORMATTER.formatException(record.exc_info))
    except Exception as exc:  # a broken exception object must not cost the record
        parts.append(f"<traceback could not be formatted: {type(exc).__name__}>")
    if record.stack_info:
        parts.append(_FORMATTER.formatStack(record.stack_info))
    return "\n".join(parts) or None


def unformatted_message(msg: object, args: object) -> str:
    """The message and its arguments side by side, for a record whose ``%`` failed."""
    if isinstance(args, tuple):
        shown = ", ".join(map(safe_repr, args)) + ("," if len(args) == 1 else "")
        return f"{safe_repr(msg)} % ({shown})"
    return f"{safe_repr(msg)} % {safe_repr(args)}"
