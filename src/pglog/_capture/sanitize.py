"""Sanitize: values changed just enough for PostgreSQL to accept them, and notes saying how.

PostgreSQL refuses what Python happily holds: NUL characters in ``text`` and
``jsonb``, lone surrogates (not UTF-8), NaN and infinity in ``jsonb``, strings longer
than a ``varchar``; and ``extra=`` values can be anything at all. One such value
would fail the COPY of a whole batch, so each is made storable here, and each change
is noted under ``extra_data._pglog.sanitized``: the record is kept, and says what
was done to it.
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
from typing import Any

from pglog._table.columns import MAX_TEXT

#: Key under ``extra_data`` where pglog notes what it had to change in a record.
MARKER_KEY = "_pglog"
#: The longest key kept in extras, in characters.
MAX_KEY = 255
#: How deep the careful path follows nested extra values (json.dumps gave up on them)
#: before the rest is stored as text.
MAX_DEPTH = 100
#: How many sanitisation notes one record carries before they are summarised.
MAX_NOTES = 20


class Notes(dict[str, str]):
    """What was changed in a record, by field; bounded, so a pathological record stays small."""

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


#: The types an extra may keep as it is until the writer encodes it: immutable, and
#: always JSON (NaN and huge ints are dealt with when encoding).
SCALARS = frozenset({str, int, float, bool, type(None)})


def as_extras(values: dict[Any, Any], notes: Notes | None = None) -> dict[str, Any] | str:
    """Extras as they wait in the queue: the dict itself if it holds only plain scalars
    under string keys and nothing needs a note, else the text of its JSON now (a container
    or an object: its state as of now, and the writer thread never runs the caller's
    ``__repr__``). A key named like pglog's marker is moved aside, and noted: a record
    must not be able to pass for pglog's own notes."""
    notes = Notes() if notes is None else notes
    if MARKER_KEY in values:
        values = dict(values)
        renamed = MARKER_KEY + "_"
        while renamed in values:
            renamed += "_"
        values[renamed] = values.pop(MARKER_KEY)
        notes.add(f"extra.{MARKER_KEY}", f"the record's own key, renamed {renamed}")
    if notes or not (
        SCALARS.issuperset(map(type, values.values())) and _STR.issuperset(map(type, values))
    ):
        return to_json(values, notes)
    return values


_STR = frozenset({str})


def to_json(extras: Mapping[str, Any], notes: Notes | None = None) -> str:
    """``extras`` as the text of a JSON object that ``jsonb`` accepts, noting what changed."""
    notes = Notes() if notes is None else notes
    text = _strict_dumps(extras)
    if text is None or not _storable_json(text):
        text = dumps(_json_safe(extras, "extra", notes, 0, set()))
    return with_notes(text, notes)


def scalar_json(values: dict[str, Any]) -> str | None:
    """JSON for a dict of plain scalars under string keys (what extras usually are),
    several times faster than ``json.dumps``; None if something needs the careful path."""
    parts = []
    for key, value in values.items():
        kind = type(value)
        if type(key) is not str:
            return None
        if kind is str:
            text = _encode_string(value)
        elif kind is int:
            if not -_BIG_INT < value < _BIG_INT:
                return None
            text = int.__repr__(value)
        elif kind is float:
            if not math.isfinite(value):
                return None
            text = float.__repr__(value)
        elif kind is bool:
            text = "true" if value else "false"
        elif value is None:
            text = "null"
        else:
            return None
        parts.append(f"{_encode_string(key)}:{text}")
    text = "{" + ",".join(parts) + "}"
    return text if _storable_json(text) else None


_encode_string = json.encoder.encode_basestring
_BIG_INT = 10**4000  # int->str refuses past 4300 digits


def with_notes(text: str, notes: Notes) -> str:
    """JSON object ``text`` with ``notes`` merged in under MARKER_KEY, cut to MAX_TEXT."""
    if notes:
        merged = json.loads(text)
        previous = merged.get(MARKER_KEY)
        if isinstance(previous, dict) and isinstance(previous.get("sanitized"), dict):
            for field, what in previous["sanitized"].items():
                notes.add(field, what)
        merged[MARKER_KEY] = notes.as_marker()
        text = dumps(merged)
    if len(text) > MAX_TEXT:
        notes.add("extra", f"JSON of {len(text)} characters cut to {MAX_TEXT}")
        text = dumps({MARKER_KEY: notes.as_marker(), "truncated_json": text[:MAX_TEXT]})
    return text


def _strict_dumps(value: Any) -> str | None:
    """The fast path: plain data and well-known types, or None if anything needs care."""
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_known
        )
    except Exception:  # anything at all: the careful path will say what it was
        return None


def dumps(value: Any) -> str:
    """Compact JSON; ``value`` must already be JSON-safe."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _storable_json(text: str) -> bool:
    # json.dumps writes NUL as \u0000, which jsonb refuses; a lone surrogate is not UTF-8.
    return "\\u0000" not in text and is_utf8(text)


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


def _json_safe(value: Any, path: str, notes: Notes, depth: int, active: set[int]) -> Any:
    """A JSON-safe copy of ``value``, noting each change under its path. Never raises: a
    value that can't even be looked at (its isinstance() raises) is stored as its repr."""
    try:
        return _json_safe_value(value, path, notes, depth, active)
    except Exception as exc:
        notes.add(path, f"could not be looked at ({type(exc).__name__}); stored its repr")
        return clean_text(safe_repr(value), MAX_TEXT, path, notes)


def _json_safe_value(value: Any, path: str, notes: Notes, depth: int, active: set[int]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        number = int.__index__(value)  # the number itself, whatever a subclass's __str__ does
        if not -_BIG_INT < number < _BIG_INT:  # more digits than int->str conversion allows
            notes.add(path, f"integer of {number.bit_length()} bits stored as text")
            return f"<int of {number.bit_length()} bits>"
        return number
    if isinstance(value, float):
        real = float.__float__(value)
        if math.isfinite(real):
            return real
        notes.add(path, "non-finite float stored as text")
        return float.__repr__(real)
    if isinstance(value, str):
        return clean_text(value, MAX_TEXT, path, notes)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return clean_text(raw.decode("utf-8"), MAX_TEXT, path, notes)
        except UnicodeDecodeError:
            notes.add(path, "bytes that are not UTF-8 stored as their repr")
            return clean_text(repr(raw), MAX_TEXT, path, notes)
    if depth >= MAX_DEPTH:
        notes.add(path, f"nested deeper than {MAX_DEPTH} levels; the rest stored as text")
        return clean_text(safe_repr(value), 1000, path, notes)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if id(value) in active:
            notes.add(path, "circular reference")
            return "<circular reference>"
        active.add(id(value))
        try:
            return _json_safe_container(value, path, notes, depth, active)
        except Exception as exc:  # changed by another thread while we walked it, say
            notes.add(path, f"could not be read ({type(exc).__name__}); stored its repr")
            return clean_text(safe_repr(value), MAX_TEXT, path, notes)
        finally:
            active.discard(id(value))
    try:
        known = _known(value)
    except Exception:
        notes.add(path, f"{type(value).__name__} is not JSON; stored its repr")
        return clean_text(safe_repr(value), MAX_TEXT, path, notes)
    return _json_safe(known, path, notes, depth + 1, active)


def _json_safe_container(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
    path: str,
    notes: Notes,
    depth: int,
    active: set[int],
) -> Any:
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in list(value.items()):
            if isinstance(key, str):
                text_key = clean_text(key, MAX_KEY, f"{path} key", notes)
            else:
                text_key = clean_text(safe_str(key), MAX_KEY, f"{path} key", notes)
                notes.add(f"{path}.{text_key}", f"{type(key).__name__} key stored as text")
            result[text_key] = _json_safe(item, f"{path}.{text_key}", notes, depth + 1, active)
        return result
    items = list(value)
    if isinstance(value, set | frozenset):
        items.sort(key=repr)
    return [
        _json_safe(item, f"{path}[{i}]", notes, depth + 1, active) for i, item in enumerate(items)
    ]


def clean_text(value: object, limit: int, field: str, notes: Notes) -> str:
    """``value`` as text PostgreSQL accepts, at most ``limit`` characters."""
    if type(value) is not str:
        notes.add(field, f"{type(value).__name__} stored as text")
        value = safe_str(value)
    if value.isascii():
        if "\x00" not in value and len(value) <= limit:
            return value
    elif "\x00" not in value and len(value) <= limit and is_utf8(value):
        return value
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
        notes.add(field, "NUL characters written as \\x00")
    if not is_utf8(value):
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        notes.add(field, "invalid unicode (lone surrogates) backslash-escaped")
    if len(value) > limit:
        notes.add(field, f"{len(value)} characters cut to {limit}")
        value = value[: limit - 1] + "…"
    return value


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__} object: repr() failed with {type(exc).__name__}>"


def safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return safe_repr(value)
