"""Row: a captured entry turned into the values of one table row, each one storable.

A pure function of its input. The values of a Row are in COLUMNS order, ready for
``COPY ... FROM STDIN``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias

from pglog.record import Entry, capture
from pglog.sanitize import (
    MARKER_KEY,
    MAX_NAME,
    MAX_TEXT,
    Notes,
    clean_text,
    dumps,
    safe_repr,
    to_json,
    with_notes,
)

#: The table columns a row fills, in the order of the values in a Row.
COLUMNS = (
    "timestamp",
    "level",
    "logger_name",
    "process_id",
    "thread_id",
    "thread_name",
    "hostname",
    "message",
    "exception",
    "function_name",
    "module",
    "filename",
    "lineno",
    "pathname",
    "extra_data",
)

Row: TypeAlias = tuple[
    dt.datetime,
    str,
    str,
    "int | None",
    "int | None",
    "str | None",
    str,
    str,
    "str | None",
    "str | None",
    "str | None",
    "str | None",
    "int | None",
    "str | None",
    str,
]

#: Width of the level column.
MAX_LEVEL = 10
#: The width of each text column.
LIMITS = dict.fromkeys(COLUMNS, MAX_NAME) | {
    "level": MAX_LEVEL,
    "message": MAX_TEXT,
    "exception": MAX_TEXT,
    "pathname": MAX_TEXT,
}

_INT4 = (-(1 << 31), (1 << 31) - 1)
_INT8 = (-(1 << 63), (1 << 63) - 1)
_UTC = dt.timezone.utc
_EMPTY_JSON = "{}"


def record_to_row(record: Any, hostname: str) -> Row:
    """Capture and convert in one step: for tests, benchmarks and synchronous paths."""
    return to_row(capture(record), hostname)


def to_row(entry: Entry, hostname: str) -> Row:
    """The values of one table row, in COLUMNS order, each one storable."""
    fields, message, exception, extras = entry
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
    ) = fields
    extra_data = to_json(extras) if isinstance(extras, dict) else (extras or _EMPTY_JSON)
    notes = Notes()
    return (
        _timestamp(created, notes),
        clean_text(level, MAX_LEVEL, "level", notes),
        clean_text(name, MAX_NAME, "logger_name", notes),
        _int4(process, "process_id", notes),
        _int8(thread, notes),
        _optional(thread_name, MAX_NAME, "thread_name", notes),
        clean_text(hostname, MAX_NAME, "hostname", notes),
        clean_text(message, MAX_TEXT, "message", notes),
        _optional(exception, MAX_TEXT, "exception", notes),
        _optional(func_name, MAX_NAME, "function_name", notes),
        _optional(module, MAX_NAME, "module", notes),
        _optional(filename, MAX_NAME, "filename", notes),
        _int4(lineno, "lineno", notes),
        _optional(pathname, MAX_TEXT, "pathname", notes),
        with_notes(extra_data, notes) if notes else extra_data,
    )


def escaped_row(row: Row, reason: str) -> Row:
    """``row`` with every text in ASCII escapes and its extra_data replaced by a note: for a
    row the server refused as it was (a hand-made table's constraint, an exotic collation)."""
    notes = Notes()
    values: list[Any] = [
        clean_text(ascii(value)[1:-1], LIMITS[column], column, notes)
        if isinstance(value, str)
        else value
        for column, value in zip(COLUMNS[:-1], row[:-1], strict=True)
    ]
    marker = {"rejected_by_server": reason, "original_extra_data": ascii(row[-1])[1:-1]}
    values.append(dumps({MARKER_KEY: marker}))
    return tuple(values)


def _optional(value: object, limit: int, field: str, notes: Notes) -> str | None:
    return None if value is None else clean_text(value, limit, field, notes)


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


def _int8(value: object, notes: Notes) -> int | None:
    """Thread idents are unsigned 64-bit on some platforms; bigint is signed."""
    if value is None:
        return None
    if type(value) is int:
        if _INT8[1] < value < 1 << 64:
            return value - (1 << 64)
        if _INT8[0] <= value <= _INT8[1]:
            return value
    notes.add("thread_id", f"{safe_repr(value)[:50]} is not a 64-bit integer; stored NULL")
    return None
