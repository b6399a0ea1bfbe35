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

This runs in every logging call, so the records most programs log take short paths:
with no extras and scalar arguments, one ``itemgetter`` over the record's ``__dict__``
is the entry (see ``entry``). With extras that are all plain scalars (the structured
logging of most services, OpenTelemetry's injected ids, bound request fields), one pass
over the end of the same ``__dict__`` checks their kinds, counts their text and copies
them, newest first: a LogRecord sets its own attributes first (``process`` last, or
``taskName`` from Python 3.12), and ``extra=`` adds its keys after them. The bound
fields ride beside that copy, for the writer to put under it (``entry.joined``).
Anything else takes the careful path, which never raises: a record whose attributes
are missing or hostile is captured as far as it can be, and says what it lacked. So
does one whose own attributes are out of that order (one missing, or deleted and set
again): the structured short path keeps a record only if it read, back to its last own
attribute, as many keys as the record has past a plain one's (``_EXTRAS_OF``), and no
more than LIGHT_EXTRAS. Two rarer shapes pass for short-path ones and can lose extras;
the README's "Strange records" names them, and why they are not looked for.
"""

from __future__ import annotations

import itertools
import logging
import operator
from collections.abc import Mapping
from typing import Any

from pglog._capture.context import BOUND, Bound
from pglog._capture.entry import (
    LIGHT_EXTRAS,
    LIGHT_TEXT,
    LIGHT_TEXT_EXTRAS,
    RECORD_ATTRIBUTES,
    RECORD_FIELDS,
    RECORD_SLOTS,
    STANDARD_ATTRIBUTES,
    Captured,
    Entry,
    Extras,
)
from pglog._capture.notes import Notes
from pglog._capture.sanitize import (
    SCALARS,
    as_extras,
    safe_repr,
    safe_str,
    to_json,
)

#: A plain LogRecord sets its own attributes first, ``_LAST_OWN`` last; ``extra=`` keys
#: are added after them.
_PLAIN_SIZE = len(RECORD_ATTRIBUTES)
_LAST_OWN = RECORD_ATTRIBUTES[-1]
#: By a record's number of keys, how many of them are extras: the structured short path
#: must have read that many after ``_LAST_OWN``, or one of the record's own attributes
#: is missing or was moved past its extras (deleted and set again). None up to a plain
#: record's size; past LIGHT_EXTRAS extras an IndexError, so the careful path. One
#: look-up costs less than the arithmetic.
_EXTRAS_OF = (None,) * (_PLAIN_SIZE + 1) + tuple(range(1, LIGHT_EXTRAS + 1))
_ALL_SLOTS = operator.itemgetter(*RECORD_SLOTS)
_FIELDS = operator.itemgetter(*RECORD_FIELDS)
_LOG_RECORD = logging.LogRecord
_FORMATTER = logging.Formatter()
#: Replaced by ``correlation`` once OpenTelemetry is loaded (bound fields and the span).
#: Not annotated: an annotation here costs every logging call 100 instructions.
_BOUND_GET = BOUND.get
_ISLICE = itertools.islice
#: What the structured short path leaves under a record's own extras when nothing is bound.
_UNBOUND: dict[str, Any] = {}
#: The plain scalars (see ``sanitize.SCALARS``), and whether they are text.
_IS_TEXT = {kind: kind is str for kind in SCALARS}


def capture(record: logging.LogRecord) -> Captured:
    """Take what the writer will need, so the record can be forgotten. Never raises."""
    bound = _BOUND_GET()
    try:  # free unless it raises: a record made by hand may lack what the short paths read
        attributes = record.__dict__
        if type(record) is not _LOG_RECORD:
            return _capture_carefully(record, attributes, bound)
        values: Captured = _ALL_SLOTS(attributes)
        if (
            values[13] is not None
            or values[14] is not None
            or values[15] is not None
            or type(values[11]) is not str
            or type(values[12]) is not tuple
        ):
            return _capture_carefully(record, attributes, bound)
        text = len(values[11])
        for arg in values[12]:  # a loop beats map() for the few arguments of a call
            kind = type(arg)
            if kind not in SCALARS:
                return _capture_carefully(record, attributes, bound)
            if kind is str:
                text += len(arg)
        if len(attributes) == _PLAIN_SIZE:
            if bound is not None:
                return values[:14] + (bound.extras, None)  # noqa: RUF005 - no list: cheaper
            if text <= LIGHT_TEXT:
                return values
            return _capture_carefully(record, attributes, bound)
        under = _UNBOUND if bound is None else bound.scalars
        if under is not None:  # a Formatter's message and asctime: joined() leaves them out
            own = {}
            for key, value in attributes.items().__reversed__():  # reversed() costs more
                if key is _LAST_OWN:
                    break
                if _IS_TEXT[type(value)]:  # anything but a plain scalar raises: careful
                    text += len(value)
                own[key] = value
            if len(own) == _EXTRAS_OF[len(attributes)] and text <= LIGHT_TEXT_EXTRAS:
                return values[:14] + (own, under)  # noqa: RUF005
        return _capture_carefully(record, attributes, bound)
    except Exception:  # the careful path finds out what is missing, and says so
        return _capture_carefully(record, _attributes_of(record), bound)


def _capture_carefully(
    record: logging.LogRecord, attributes: dict[str, Any], bound: Bound | None
) -> Captured:
    """Everything the short paths leave: render now what could change later, and survive
    whatever the record holds. Never raises."""
    try:
        return _capture_record(record, attributes, bound)
    except Exception as exc:  # a record hostile beyond what each step guards against
        notes = Notes()
        notes.add("record", f"could not be captured ({type(exc).__name__}); only its text kept")
        fields = tuple(_attribute(attributes, name) for name in RECORD_FIELDS)
        message = f"<unreadable record: {safe_repr(attributes.get('msg'))}>"
        return (*fields, message, None, None, to_json({}, notes), None)


def _attributes_of(record: logging.LogRecord) -> dict[str, Any]:
    try:
        return record.__dict__
    except Exception:  # a record class whose every attribute lookup raises
        return {}


def _capture_record(
    record: logging.LogRecord, attributes: dict[str, Any], bound: Bound | None
) -> Captured:
    notes = Notes()
    msg, args = attributes.get("msg", ""), attributes.get("args")
    if type(args) is not tuple and args is not None:
        odd = _odd_args(args)
        if odd is not None:
            notes.add("args", odd)
    formattable = "msg" in attributes and "args" in attributes
    if not (formattable and "exc_info" in attributes and "exc_text" in attributes):
        _note_missing(attributes, notes)
    try:
        # a record built by hand without msg or args is formatted as getMessage() would
        message = record.getMessage() if formattable else _format(msg, args)
        if type(message) is not str:
            message = safe_str(message)
    except Exception as exc:  # a %-format mistake belongs in the table, not in the caller
        message = unformatted_message(msg, args)
        notes.add("message", f"formatting failed ({type(exc).__name__}: {safe_str(exc)})")

    exception = None
    if attributes.get("exc_info") or attributes.get("exc_text") or attributes.get("stack_info"):
        exception = exception_text(record)

    own = _own_extras(record, attributes)
    extra = {**bound.fields, **own} if bound is not None else own
    extras: Extras = as_extras(extra, notes) if extra or notes else None

    try:
        fields = _FIELDS(attributes)
    except KeyError:  # a record built by hand, without some attribute
        _note_missing(attributes, notes)
        fields = tuple(_attribute(attributes, name) for name in RECORD_FIELDS)
    template = msg if args and type(msg) is str else None
    return (*fields, message, None, exception, extras, template)


def _note_missing(attributes: dict[str, Any], notes: Notes) -> None:
    """Say which of the attributes every LogRecord has a record built by hand lacks."""
    missing = [name for name in RECORD_SLOTS if name not in attributes]
    if missing:
        notes.add("record", f"built without {', '.join(missing)}")


def _format(msg: object, args: object) -> str:
    """What ``LogRecord.getMessage()`` makes of ``msg`` and ``args``."""
    text = safe_str(msg)
    return text % args if args else text


def _odd_args(args: object) -> str | None:
    """What is wrong with a record's ``args`` (None: nothing): logging makes them a tuple, or
    the one mapping given; a record built by hand may hold anything."""
    try:
        if isinstance(args, tuple | Mapping):
            return None
    except Exception as exc:  # isinstance() itself failed: a hostile object
        return f"{type(exc).__name__} when looked at; formatted as it is"
    return f"{type(args).__name__}, not a tuple or a mapping; formatted as it is"


def _attribute(attributes: dict[str, Any], name: str) -> Any:
    value = attributes.get(name)
    return value if type(value) in SCALARS else safe_str(value)


def _own_extras(record: logging.LogRecord, attributes: dict[str, Any]) -> dict[Any, Any]:
    """The record's ``extra=`` fields (with loguru's nested ``extra`` merged in). A
    LogRecord's extras are its last keys, past its own, unless one of its own was deleted
    (or deleted and set again, after them): its first keys are skipped only while they
    are all its own."""
    items = iter(attributes.items())
    if type(record) is _LOG_RECORD and STANDARD_ATTRIBUTES.issuperset(
        _ISLICE(attributes, _PLAIN_SIZE)
    ):
        items = _ISLICE(items, _PLAIN_SIZE, None)
    own = {k: v for k, v in items if k not in STANDARD_ATTRIBUTES}
    nested = own.get("extra")
    if type(nested) is dict:
        del own["extra"]
        own = {**nested, **own}
    return own


def render(entry: Entry) -> tuple[str, str | None]:
    """The message of ``entry``, formatting it if that was left for later; and, if the
    formatting failed, a note saying how (the message then shows both parts)."""
    msg, args = entry.message, entry.args
    if not args:
        return msg, None
    try:
        return msg % args, None
    except Exception as exc:
        note = f"formatting failed ({type(exc).__name__}: {safe_str(exc)})"
        return unformatted_message(msg, args), note


def exception_text(record: logging.LogRecord) -> str | None:
    """The traceback and stack, formatted the way ``logging.Formatter`` would."""
    parts = []
    exc_text = getattr(record, "exc_text", None)
    exc_info = getattr(record, "exc_info", None)
    stack_info = getattr(record, "stack_info", None)
    try:
        if isinstance(exc_text, str) and exc_text and not exc_text.isspace():  # loguru: "\n"
            parts.append(exc_text)
        elif exc_info:
            parts.append(_FORMATTER.formatException(exc_info))
    except Exception as exc:  # a broken exception object must not cost the record
        parts.append(f"<traceback could not be formatted: {type(exc).__name__}>")
    if stack_info:
        parts.append(_FORMATTER.formatStack(safe_str(stack_info)))
    return "\n".join(parts) or None


def unformatted_message(msg: object, args: object) -> str:
    """The message and its arguments side by side, for a record whose ``%`` failed."""
    if isinstance(args, tuple):
        shown = ", ".join(map(safe_repr, args)) + ("," if len(args) == 1 else "")
        return f"{safe_repr(msg)} % ({shown})"
    return f"{safe_repr(msg)} % {safe_repr(args)}"
