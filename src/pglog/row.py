"""Row: a captured record turned into the values of one table row, safe for PostgreSQL.

A pure function of its input. PostgreSQL refuses what Python happily holds: NUL
characters in ``text`` and ``jsonb``, lone surrogates (not UTF-8), NaN and infinity
in ``jsonb``, strings longer than a ``varchar``. One such value would fail the COPY
of a whole batch, so every value is made storable here and each change is noted
under ``extra_data._pglog.sanitized``: the record is kept, and it says what was
done to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any, TypeAlias

from pglog.record import MARKER_KEY, Entry, capture, safe_repr, safe_str

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

#: Longest message, exception text and extra_data JSON kept, in characters.
MAX_TEXT = 1 << 20
#: Width of the short varchar columns (logger_name, hostname, ...).
MAX_NAME = 255
#: Width of the level column.
MAX_LEVEL = 10
#: How deep the careful path follows nested extra values (json.dumps gave up on them)
#: before the rest is stored as text.
MAX_DEPTH = 100
#: How many sanitisation notes one record carries before they are summarised.
MAX_NOTES = 20

_INT4 = (-(1 << 31), (1 << 31) - 1)
_INT8 = 1 << 64
_UTC = dt.timezone.utc
_EMPTY_JSON = "{}"


class _Notes(dict[str, str]):
    """What was changed in a record, by field; bounded so a pathological record stays small."""

    dropped = 0

    def add(self, field: str, what: str) -> None:
        if field in self:
            if what not in self[field]:
                self[field] += "; " + what
        elif len(self) < MAX_NOTES:
            self[field] = what
        else:
            self.dropped += 1

    def as_marker(self) -> dict[str, Any]:
        marker: dict[str, Any] = {"sanitized": dict(self)}
        if self.dropped:
            marker["more_notes_omitted"] = self.dropped
        return marker


def record_to_row(record: Any, hostname: str) -> Row:
    """Capture and convert in one step: for tests, benchmarks and synchronous paths."""
    return to_row(capture(record), hostname)


def to_row(entry: Entry, hostname: str) -> Row:
    """The values of one table row, in COLUMNS order, each one storable."""
    (
        created,
        level,
        name,
        process,
        thread,
        thread_name,
        message,
        exception,
        func_name,
        module,
        filename,
        lineno,
        pathname,
        extras,
    ) = entry
    notes = _Notes()
    return (
        _timestamp(created, notes),
        _text(level, MAX_LEVEL, "level", notes),
        _text(name, MAX_NAME, "logger_name", notes),
        _int4(process, "process_id", notes),
        _int8(thread),
        _optional(thread_name, MAX_NAME, "thread_name", notes),
        _text(hostname, MAX_NAME, "hostname", notes),
        _text(message, MAX_TEXT, "message", notes),
        _optional(exception, MAX_TEXT, "exception", notes),
        _optional(func_name, MAX_NAME, "function_name", notes),
        _optional(module, MAX_NAME, "module", notes),
        _optional(filename, MAX_NAME, "filename", notes),
        _int4(lineno, "lineno", notes),
        _optional(pathname, MAX_TEXT, "pathname", notes),
        _EMPTY_JSON if extras is None and not notes else extra_json(extras or {}, notes),
    )


def escaped_row(row: Row, reason: str) -> Row:
    """``row`` with every text in ASCII escapes and its extra_data replaced by a note: for a
    row the server refused as it was (a hand-made table's constraint, an exotic collation)."""
    notes = _Notes()
    limits = dict.fromkeys(range(len(COLUMNS)), MAX_NAME)
    limits.update({COLUMNS.index("level"): MAX_LEVEL, COLUMNS.index("message"): MAX_TEXT})
    limits.update({COLUMNS.index("exception"): MAX_TEXT, COLUMNS.index("pathname"): MAX_TEXT})
    values: list[Any] = [
        _text(ascii(value)[1:-1], limits[i], COLUMNS[i], notes) if isinstance(value, str) else value
        for i, value in enumerate(row[:-1])
    ]
    marker = {"rejected_by_server": reason, "original_extra_data": ascii(row[-1])[1:-1]}
    values.append(_dumps({MARKER_KEY: marker}))
    return tuple(values)


def extra_json(extras: Mapping[str, Any], notes: _Notes | None = None) -> str:
    """``extras`` as JSON that ``jsonb`` accepts, with the record's notes merged in."""
    notes = _Notes() if notes is None else notes
    text = _strict_dumps(extras)
    if text is None or not _storable_json(text):
        safe = _json_safe(dict(extras), "extra", notes, 0, set())
        text = _dumps(safe)
    if notes:
        merged = json.loads(text)
        previous = merged.get(MARKER_KEY)
        if isinstance(previous, dict) and isinstance(previous.get("sanitized"), dict):
            for field, what in previous["sanitized"].items():
                notes.add(field, what)
        merged[MARKER_KEY] = notes.as_marker()
        text = _dumps(merged)
    if len(text) > MAX_TEXT:
        notes.add("extra", f"JSON of {len(text)} characters cut to {MAX_TEXT}")
        text = _dumps({MARKER_KEY: notes.as_marker(), "truncated_json": text[:MAX_TEXT]})
    return text


def _strict_dumps(value: Any) -> str | None:
    """The fast path: plain data and well-known types, or None if anything needs care."""
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_known
        )
    except Exception:  # anything at all: the careful path will say what it was
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _storable_json(text: str) -> bool:
    # json.dumps writes NUL as \u0000, which jsonb refuses; a lone surrogate is not UTF-8.
    return "\\u0000" not in text and _is_utf8(text)


def _known(value: Any) -> Any:
    """JSON for types whose meaning is obvious; anything else is left to the careful path."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal | PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(type(value).__name__)


def _json_safe(value: Any, path: str, notes: _Notes, depth: int, active: set[int]) -> Any:
    """A JSON-safe copy of ``value``, noting each change under its path."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            str(value)
        except ValueError:  # more digits than int->str conversion allows
            notes.add(path, f"integer of {value.bit_length()} bits stored as text")
            return f"<int of {value.bit_length()} bits>"
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        notes.add(path, "non-finite float stored as text")
        return repr(value)
    if isinstance(value, str):
        return _text(value, MAX_TEXT, path, notes)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return _text(raw.decode("utf-8"), MAX_TEXT, path, notes)
        except UnicodeDecodeError:
            notes.add(path, "bytes that are not UTF-8 stored as their repr")
            return _text(repr(raw), MAX_TEXT, path, notes)
    if depth >= MAX_DEPTH:
        notes.add(path, f"nested deeper than {MAX_DEPTH} levels; the rest stored as text")
        return _text(safe_repr(value), 1000, path, notes)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if id(value) in active:
            notes.add(path, "circular reference")
            return "<circular reference>"
        active.add(id(value))
        try:
            return _json_safe_container(value, path, notes, depth, active)
        except Exception as exc:  # changed by another thread while we walked it, say
            notes.add(path, f"could not be read ({type(exc).__name__}); stored its repr")
            return _text(safe_repr(value), MAX_TEXT, path, notes)
        finally:
            active.discard(id(value))
    try:
        known = _known(value)
    except Exception:
        notes.add(path, f"{type(value).__name__} is not JSON; stored its repr")
        return _text(safe_repr(value), MAX_TEXT, path, notes)
    return _json_safe(known, path, notes, depth + 1, active)


def _json_safe_container(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
    path: str,
    notes: _Notes,
    depth: int,
    active: set[int],
) -> Any:
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in list(value.items()):
            if isinstance(key, str):
                text_key = _text(key, MAX_NAME, f"{path} key", notes)
            else:
                text_key = _text(safe_str(key), MAX_NAME, f"{path} key", notes)
                notes.add(f"{path}.{text_key}", f"{type(key).__name__} key stored as text")
            result[text_key] = _json_safe(item, f"{path}.{text_key}", notes, depth + 1, active)
        return result
    items = list(value)
    if isinstance(value, set | frozenset):
        items.sort(key=repr)
    return [
        _json_safe(item, f"{path}[{i}]", notes, depth + 1, active) for i, item in enumerate(items)
    ]


def _text(value: object, limit: int, field: str, notes: _Notes) -> str:
    if type(value) is not str:
        notes.add(field, f"{type(value).__name__} stored as text")
        value = safe_str(value)
    if value.isascii():
        if "\x00" not in value and len(value) <= limit:
            return value
    elif "\x00" not in value and len(value) <= limit and _is_utf8(value):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
        notes.add(field, "NUL characters written as \\x00")
    if not _is_utf8(value):
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        notes.add(field, "invalid unicode (lone surrogates) backslash-escaped")
    if len(value) > limit:
        notes.add(field, f"{len(value)} characters cut to {limit}")
        value = value[: limit - 1] + "…"
    return value


def _optional(value: object, limit: int, field: str, notes: _Notes) -> str | None:
    return None if value is None else _text(value, limit, field, notes)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _timestamp(created: object, notes: _Notes) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(created, _UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        notes.add("timestamp", f"record.created {safe_repr(created)} unusable; insert time used")
        return dt.datetime.now(_UTC)


def _int4(value: object, field: str, notes: _Notes) -> int | None:
    if value is None or (type(value) is int and _INT4[0] <= value <= _INT4[1]):
        return value
    notes.add(field, f"{safe_repr(value)[:50]} is not a 32-bit integer; stored NULL")
    return None


def _int8(value: object) -> int | None:
    """Thread idents are unsigned 64-bit on some platforms; bigint is signed."""
    if type(value) is not int:
        return None
    return value - _INT8 if value >= _INT8 >> 1 else value
