"""Row: a captured entry turned into the values of one table row, each one storable.

A pure function of its input. A row's values are in the order of ``columns.WRITTEN``,
ready for ``COPY ... FROM STDIN``; each column says which entry slot fills it and how
wide it may be. Most rows take the fast path, written out by hand for speed; every
other row is built from the column spec itself, value by value. The columns of schema
3 are derived here, in the writer: the template (see ``entry.template_of``), the level's
number (``levels``) and the fingerprint of an error (``fingerprint``). Secrets are
scrubbed here too (``scrub``), before anything is derived from the text: in the writer's
thread, never the caller's; a row the scrubber's first tests flag takes the careful path,
where its message, template, traceback and extras are scrubbed.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, TypeAlias

from pglog._capture.capture import capture, render
from pglog._capture.correlation import watch
from pglog._capture.entry import Entry, named, template_of
from pglog._capture.fingerprint import ERROR_LEVEL, fingerprint
from pglog._capture.levels import number_of
from pglog._capture.notes import MARKER_KEY, Notes
from pglog._capture.sanitize import (
    clean_text,
    dumps,
    is_utf8,
    safe_repr,
    scalar_json,
    to_json,
    with_notes,
    with_scrubbed,
)
from pglog._capture.scrub import DEFAULT, Scrubber
from pglog._capture.sizes import MAX_VALUES
from pglog._capture.static import Static
from pglog._table.columns import MAX_TEXT, WRITTEN, Column, width

#: The values of one table row, in ``columns.WRITTEN`` order.
Row: TypeAlias = tuple[Any, ...]

_MAX_LEVEL = width("level")
_MAX_NAME = width("logger_name")
assert WRITTEN[-1].name == "extra_data", "extra_data is filled last: it carries the notes"

#: Names that need no change (see to_row), and None, which the optional ones may be;
#: bounded: a program that logs from endlessly many places just starts over.
_CLEAN: set[object] = {None}
_CLEAN_MAX = 10_000
_INT4 = (-(1 << 31), (1 << 31) - 1)
_INT8 = (-(1 << 63), (1 << 63) - 1)
_UTC = dt.timezone.utc
#: logging's registry of level names (see ``levels``): the fast path's one lookup.
_LEVELS = logging._nameToLevel
_EMPTY_JSON = "{}"
_NOTHING: list[str] = []
#: A message or traceback is scrubbed up to a little past what is kept of it.
_SCRUBBED_TEXT = MAX_TEXT + 4096


def record_to_row(record: Any, hostname: str, scrubber: Scrubber = DEFAULT) -> Row:
    """Capture and convert in one step: for tests, benchmarks and synchronous paths."""
    return to_row(named(capture(record)), hostname, scrubber=scrubber)


def to_row(
    entry: Entry, hostname: str, static: Static | None = None, *, scrubber: Scrubber = DEFAULT
) -> Row:
    """The values of one table row, in ``columns.WRITTEN`` order, each one storable, with
    the secrets ``scrubber`` finds replaced (by default, pglog's own patterns).

    ``hostname`` must already be storable; ``static``: the handler's static fields, under
    the record's extras in extra_data. Most rows take the fast path: the names a
    record carries (level, logger, thread, function, module, file, path) recur in every
    record from the same place, so once seen to need no change they are only looked up.
    """
    watch()  # has OpenTelemetry been loaded since? (see correlation)
    (
        created,
        level,
        name,
        process,
        thread,
        thread_name,
        func_name,
        module,
        filename,
        lineno,
        pathname,
        message,
        args,
        exception,
        extras,
        template,
    ) = entry
    if (
        type(level) is str
        and len(level) <= _MAX_LEVEL
        and level in _CLEAN
        and type(name) is str
        and name in _CLEAN
        and pathname in _CLEAN
        and func_name in _CLEAN
        and thread_name in _CLEAN
        and module in _CLEAN
        and filename in _CLEAN
        and exception is None
        and type(created) is float
        and type(lineno) is int
        and type(process) is int
        and type(thread) is int
        and 0 <= thread <= _INT8[1]
    ):
        scrubbed: list[str] = _NOTHING
        if scrubber.enabled:
            if _suspect(scrubber, message, args, template):
                return _careful_row(entry, hostname, static, scrubber=scrubber)
            if type(extras) is dict:
                checked = scrubber.scalars(extras) if len(extras) <= MAX_VALUES else None
                if checked is None:
                    return _careful_row(entry, hostname, static, scrubber=scrubber)
                extras, scrubbed = checked
            elif isinstance(extras, str) and scrubber.suspects_json(extras):
                return _careful_row(entry, hostname, static, scrubber=scrubber)
        if args:
            try:
                template, message = message, message % args
            except Exception:
                return _careful_row(entry, hostname, static, scrubber=scrubber)
        if (
            message.isascii()
            and "\x00" not in message
            and len(message) <= MAX_TEXT
            and (
                template is None
                or (
                    type(template) is str
                    and template.isascii()
                    and "\x00" not in template
                    and len(template) <= MAX_TEXT
                )
            )
        ):
            levelno = _LEVELS.get(level)
            if levelno is None:
                levelno = number_of(level)
            known = None
            if levelno is not None and levelno >= ERROR_LEVEL:
                known = fingerprint(name, levelno, template, message, None)
                if known is not None and not known.isascii():
                    return _careful_row(entry, hostname, static, scrubber=scrubber)
            if extras is None:
                extra_data = _EMPTY_JSON
            elif isinstance(extras, str):
                extra_data = extras  # made storable JSON by capture()
            else:
                encoded = scalar_json(extras)
                if encoded is None:
                    extra_data = with_notes(to_json(extras), Notes(), scrubbed)
                else:
                    extra_data = with_scrubbed(encoded, scrubbed) if scrubbed else encoded
            if static is not None:
                extra_data = static.under(extra_data)
            return (
                dt.datetime.fromtimestamp(created, _UTC),
                level,
                name,
                process,
                thread,
                thread_name,
                hostname,
                message,
                None,
                func_name,
                module,
                filename,
                lineno,
                pathname,
                template,
                levelno,
                known,
                extra_data,
            )
    return _careful_row(entry, hostname, static, scrubber=scrubber)


def _suspect(scrubber: Scrubber, message: str, args: Any, template: Any) -> bool:
    """Whether the scrubber's first tests flag the text of a row that could take the fast
    path: its format string (remembered) and text arguments, or its message (and the
    template the caller's thread kept of it)."""
    if args:
        if scrubber.suspects_format(message):
            return True
        for arg in args:  # noqa: SIM110 - a loop costs less than any() over a generator
            if type(arg) is str and scrubber.suspects(arg):
                return True
        return False
    if type(template) is str and scrubber.suspects_format(template):
        return True
    return scrubber.suspects(message)


def _careful_row(
    entry: Entry, hostname: str, static: Static | None = None, *, scrubber: Scrubber = DEFAULT
) -> Row:
    """Every value checked and, where need be, changed, column by column, secrets scrubbed
    before anything is derived from them; the names found storable as they were are
    remembered for the fast path."""
    message, format_note = render(entry)
    notes = Notes()
    if format_note is not None:
        notes.add("message", format_note)
    _remember_clean(
        entry.levelname,
        entry.name,
        entry.thread_name,
        entry.func_name,
        entry.module,
        entry.filename,
        entry.pathname,
    )
    template = template_of(entry)
    exception = entry.exception if isinstance(entry.exception, str) else None
    scrubbed: list[str] = []
    if scrubber.enabled:  # on no more than is kept, and a secret the cut would split
        message = scrubber.text(message[:_SCRUBBED_TEXT], "message", scrubbed)
        if isinstance(template, str):
            template = scrubber.text(template[:_SCRUBBED_TEXT], "template", scrubbed)
        if exception is not None:
            exception = scrubber.text(exception[:_SCRUBBED_TEXT], "exception", scrubbed)
    levelno = number_of(entry.levelname) if type(entry.levelname) is str else None
    filled = {
        **entry._asdict(),
        "message": message,
        "exception": exception if exception is not None else entry.exception,
        "hostname": hostname,
        "template": template,
        "levelno": levelno,
        "fingerprint": fingerprint(str(entry.name), levelno, template, message, exception),
    }
    values = [_store(column, filled[str(column.source)], notes) for column in WRITTEN[:-1]]
    extras = entry.extras
    extra_data = to_json(extras) if isinstance(extras, dict) else (extras or _EMPTY_JSON)
    if scrubber.enabled:
        extra_data = scrubber.extras(extra_data, MARKER_KEY, scrubbed)
    if static is not None:
        extra_data = static.under(extra_data)
    values.append(with_notes(extra_data, notes, scrubbed) if notes or scrubbed else extra_data)
    return tuple(values)


def _store(column: Column, value: object, notes: Notes) -> object:
    """``value`` as column ``column`` takes it, noting any change."""
    if column.kind == "timestamp":
        return _timestamp(value, notes)
    if column.kind == "int4":
        return _int4(value, column.name, notes)
    if column.kind == "int8":
        return _int8(value, column.name, notes)
    if value is None and column.nullable:
        return None
    return clean_text(value, width(column.name), column.name, notes)


def _remember_clean(*names: object) -> None:
    if len(_CLEAN) > _CLEAN_MAX:
        _CLEAN.clear()
        _CLEAN.add(None)
    for name in names:
        if type(name) is str and len(name) <= _MAX_NAME and "\x00" not in name and is_utf8(name):
            _CLEAN.add(name)


def escaped_row(row: Row, reason: str) -> Row:
    """``row`` with every text in ASCII escapes and its extra_data replaced by a note: for a
    row the server refused as it was (a hand-made table's constraint, an exotic collation)."""
    notes = Notes()
    values: list[Any] = [
        clean_text(ascii(value)[1:-1], width(column.name), column.name, notes)
        if isinstance(value, str)
        else value
        for column, value in zip(WRITTEN[:-1], row[:-1], strict=True)
    ]
    marker = {"rejected_by_server": reason, "original_extra_data": ascii(row[-1])[1:-1]}
    values.append(dumps({MARKER_KEY: marker}))
    return tuple(values)


def _timestamp(created: object, notes: Notes) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(created, _UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        notes.add("timestamp", f"record.created {safe_repr(created)} unusable; insert time used")
        return dt.datetime.now(_UTC)


def _int4(value: object, field: str, notes: Notes) -> int | None:
    if value is None or (type(value) is int and _INT4[0] <= value <= _INT4[1]):
        return value
    notes.add(field, f"{safe_repr(value)[:50]} is not a 32-bit integer; stored NULL")
    return None


def _int8(value: object, field: str, notes: Notes) -> int | None:
    """Thread idents are unsigned 64-bit on some platforms; bigint is signed."""
    if value is None:
        return None
    if type(value) is int:
        if _INT8[1] < value < 1 << 64:
            return value - (1 << 64)
        if _INT8[0] <= value <= _INT8[1]:
            return value
    notes.add(field, f"{safe_repr(value)[:50]} is not a 64-bit integer; stored NULL")
    return None
