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

This runs in every logging call, so the records most programs log take short paths
made of C calls: with no extras and scalar arguments, one ``itemgetter`` over the
record's ``__dict__`` is the entry (see ``entry``); with extras that are all plain
scalars (the structured logging of most services, OpenTelemetry's injected ids, bound
request fields) the extras are sliced off the same ``__dict__`` and kept as they are.
Anything else takes the careful path, which never raises: a record whose attributes
are missing or hostile is captured as far as it can be, and says what it lacked.
"""

from __future__ import annotations

import itertools
import logging
import operator
from collections.abc import Mapping
from typing import Any

from pglog._capture.context import BOUND, Bound
from pglog._capture.entry import (
    LIGHT_TEXT,
    LIGHT_TEXT_EXTRAS,
    RECORD_FIELDS,
    RECORD_SLOTS,
    Captured,
    Entry,
    Extras,
)
from pglog._capture.notes import MARKER_KEY, Notes
from pglog._capture.sanitize import (
    SCALARS,
    as_extras,
    safe_repr,
    safe_str,
    to_json,
)

_PLAIN = logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None)
#: Attributes every LogRecord has, plus those a Formatter adds while formatting.
#: Anything else on a record came with ``extra=`` (or a record factory) and is kept.
STANDARD_ATTRIBUTES = frozenset(vars(_PLAIN)) | {"message", "asctime"}
#: A plain LogRecord sets its attributes first; ``extra=`` keys are added after them.
_PLAIN_SIZE = len(vars(_PLAIN))
del _PLAIN
#: Keys past a plain record's own that the short path leaves to the careful one: what a
#: Formatter adds, loguru's nested ``extra``, and pglog's own marker, which a record must
#: not be able to forge. ``extra=`` can't name a standard attribute (``makeRecord``
#: refuses), so these are the only ones that may come after them.
_LATE_KEYS = frozenset({"message", "asctime", "extra", MARKER_KEY})

_ALL_SLOTS = operator.itemgetter(*RECORD_SLOTS)
_HEAD = operator.itemgetter(*RECORD_FIELDS, "msg", "args")
_FIELDS = operator.itemgetter(*RECORD_FIELDS)
_LOG_RECORD = logging.LogRecord
_FORMATTER = logging.Formatter()
#: Replaced by ``correlation`` once OpenTelemetry is loaded (bound fields and the span).
#: Not annotated: an annotation here costs every logging call 100 instructions.
_BOUND_GET = BOUND.get
_ISLICE = itertools.islice
_CHAIN = itertools.chain


def capture(record: logging.LogRecord) -> Captured:
    """Take what the writer will need, so the record can be forgotten. Never raises."""
    bound = _BOUND_GET()
    try:  # free unless it raises: a record made by hand may lack what the short paths read
        attributes = record.__dict__
        if type(record) is _LOG_RECORD:
            if len(attributes) == _PLAIN_SIZE:
                values = _ALL_SLOTS(attributes)
                if (
                    values[13] is None
                    and values[14] is None
                    and values[15] is None
                    and type(values[11]) is str
                    and type(values[12]) is tuple
                ):
                    text = len(values[11])
                    for arg in values[12]:  # a loop beats map() for the few arguments of a call
                        kind = type(arg)
                        if kind not in SCALARS:
                            break
                        if kind is str:
                            text += len(arg)
                    else:
                        if bound is not None:
                            return (*values[:14], bound.extras, None)
                        if text <= LIGHT_TEXT:
                            return values  # type: ignore[no-any-return]
            elif (
                attributes["exc_info"] is None
                and attributes["exc_text"] is None
                and attributes["stack_info"] is None
            ):
                extras = dict(_ISLICE(attributes.items(), _PLAIN_SIZE, None))
                head = _HEAD(attributes)
                text = head[11]
                if (
                    type(text) is str
                    and type(head[12]) is tuple
                    and extras.keys().isdisjoint(_LATE_KEYS)
                ):
                    length = len(text)
                    # one pass over arguments and extras: their kinds, and the text they hold
                    for value in _CHAIN(head[12], extras.values()):
                        kind = type(value)
                        if kind not in SCALARS:
                            break
                        if kind is str:
                            length += len(value)
                    else:
                        if length <= LIGHT_TEXT_EXTRAS:
                            if bound is not None:
                                if type(bound.extras) is not dict:
                                    return _capture_carefully(record, attributes, bound)
                                merged = bound.extras.copy()
                                merged.update(extras)
                                extras = merged
                            return (*head, None, extras, None)
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
    """The record's ``extra=`` fields (with loguru's nested ``extra`` merged in)."""
    items = iter(attributes.items())
    if type(record) is _LOG_RECORD:  # its extras are the last keys: skip the rest
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
