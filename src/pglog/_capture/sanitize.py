"""Sanitize: values changed just enough for PostgreSQL to accept them, and notes saying how.

PostgreSQL refuses what Python happily holds: NUL characters in ``text`` and
``jsonb``, lone surrogates (not UTF-8), NaN and infinity in ``jsonb``, strings longer
than a ``varchar``; and ``extra=`` values can be anything at all. One such value
would fail the COPY of a whole batch, so each is made storable here, and each change
is noted under ``extra_data._pglog.sanitized``: the record is kept, and says what
was done to it. How big each part may be is the policy of ``sizes``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from itertools import islice
from pathlib import PurePath
from typing import Any

from pglog._capture.notes import MARKER_KEY, Notes
from pglog._capture.sizes import (
    MAX_DEPTH,
    MAX_EXTRA,
    MAX_KEY,
    MAX_VALUE,
    MAX_VALUES,
    Budget,
    fits,
)

#: The types an extra may keep as it is until the writer encodes it: immutable, and
#: always JSON (NaN and huge ints are dealt with when encoding).
SCALARS = frozenset({str, int, float, bool, type(None)})


def as_extras(values: dict[Any, Any], notes: Notes | None = None) -> dict[str, Any] | str:
    """Extras as they wait in the queue: the dict itself if it holds only plain scalars
    under string keys, within the size budget, and nothing needs a note, else the text of
    its JSON now (a container or an object: its state as of now, and the writer thread
    never runs the caller's ``__repr__``; a huge string: cut now, not held in memory
    whole). A key named like pglog's marker is moved aside, and noted: a record must not
    be able to pass for pglog's own notes."""
    notes = Notes() if notes is None else notes
    if MARKER_KEY in values:
        values = dict(values)
        renamed = MARKER_KEY + "_"
        while renamed in values:
            renamed += "_"
        values[renamed] = values.pop(MARKER_KEY)
        notes.add(f"extra.{MARKER_KEY}", f"the record's own key, renamed {renamed}")
    if (
        notes
        or not SCALARS.issuperset(map(type, values.values()))
        or not _STR.issuperset(map(type, values))
        or not fits(values)
    ):
        return to_json(values, notes)
    return values


_STR = frozenset({str})


def to_json(extras: Mapping[str, Any], notes: Notes | None = None) -> str:
    """``extras`` as the text of a JSON object that ``jsonb`` accepts, within the budget of
    ``sizes``, noting what changed."""
    notes = Notes() if notes is None else notes
    text = _strict_dumps(extras) if type(extras) is dict and fits(extras) else None
    if text is None or len(text) > MAX_EXTRA or not _storable_json(text):
        text = dumps(_json_safe(extras, "extra", 0, _Walk(notes)))
    return with_notes(text, notes)


def scalar_json(values: dict[str, Any]) -> str | None:
    """JSON for a dict of plain scalars under string keys (what extras usually are),
    several times faster than ``json.dumps``; None if something needs the careful path,
    or the budget."""
    if len(values) > MAX_VALUES:
        return None
    parts = []
    for key, value in values.items():
        kind = type(value)
        if type(key) is not str:
            return None
        if kind is str:
            if len(value) > MAX_VALUE:
                return None
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
        if len(key) > MAX_KEY:
            return None
        parts.append(f"{_encode_string(key)}:{text}")
    text = "{" + ",".join(parts) + "}"
    return text if len(text) <= MAX_EXTRA and _storable_json(text) else None


_encode_string = json.encoder.encode_basestring
_BIG_INT = 10**4000  # int->str refuses past 4300 digits


def with_notes(text: str, notes: Notes, scrubbed: Sequence[str] = ()) -> str:
    """JSON object ``text`` with ``notes`` (and the ``scrubbed`` paths) merged in under
    MARKER_KEY; past MAX_EXTRA (the notes themselves can take it there), kept as the text
    of its beginning."""
    if notes or scrubbed:
        merged = json.loads(text)
        previous = merged.get(MARKER_KEY)
        if isinstance(previous, dict):
            if isinstance(previous.get("sanitized"), dict):
                for field, what in previous["sanitized"].items():
                    notes.add(field, str(what))
            if isinstance(previous.get("scrubbed"), list):
                scrubbed = [*map(str, previous["scrubbed"]), *scrubbed]
        merged[MARKER_KEY] = notes.as_marker(scrubbed)
        text = dumps(merged)
    if len(text) > MAX_EXTRA:
        notes.add("extra", f"JSON of {len(text)} characters cut to {MAX_VALUE}")
        marker = notes.as_marker(scrubbed)
        text = dumps({MARKER_KEY: marker, "truncated_json": text[:MAX_VALUE]})
    return text


def with_scrubbed(text: str, scrubbed: Sequence[str]) -> str:
    """The JSON of plain scalar extras (``scalar_json``'s, which holds no marker) with the
    ``scrubbed`` paths added under MARKER_KEY: spliced in, not parsed again."""
    marker = dumps({MARKER_KEY: Notes().as_marker(scrubbed)})
    return marker if text == "{}" else f"{text[:-1]},{marker[1:]}"


def _strict_dumps(value: Any) -> str | None:
    """The fast path: plain data and well-known types, or None if anything needs care."""
    try:
        return _STRICT(value)
    except Exception:  # anything at all: the careful path will say what it was
        return None


def _strict_encoder() -> Callable[[Any], str]:
    """``json.dumps`` with pglog's settings, made once: dumps builds an encoder per call,
    which costs more than encoding a small extra. Without a check for circular references
    (``fits`` sends those to the careful path, and the C encoder's recursion limit stops
    any that get here)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (PyPy): the standard encoder, made once
        return json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_known
        ).encode
    encode = make(None, _known, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda value: "".join(encode(value, 0))


def dumps(value: Any) -> str:
    """Compact JSON; ``value`` must already be JSON-safe."""
    return _DUMPS(value)


#: json.dumps builds an encoder per call: this one is built once.
_DUMPS = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


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


_STRICT = _strict_encoder()


class _Walk:
    """The careful path's way through one record's extras: the notes it takes, what is left
    of the budget, and the containers it is inside (to see a circular reference)."""

    __slots__ = ("active", "budget", "notes")

    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.budget = Budget()
        self.active: set[int] = set()


def _json_safe(value: Any, path: str, depth: int, walk: _Walk) -> Any:
    """A JSON-safe copy of ``value`` within what is left of the budget, noting each change
    under its path. Never raises: a value that can't even be looked at (its isinstance()
    raises) is stored as its repr."""
    try:
        return _json_safe_value(value, path, depth, walk)
    except Exception as exc:
        walk.notes.add(path, f"could not be looked at ({type(exc).__name__}); stored its repr")
        return _text(safe_repr(value), path, walk)


def _json_safe_value(value: Any, path: str, depth: int, walk: _Walk) -> Any:
    notes, budget, active = walk.notes, walk.budget, walk.active
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
        return _text(value, path, walk)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value[: budget.text_limit() * 4])  # never a copy of more than is kept
        if len(raw) < len(value):
            notes.add(path, f"{len(value)} bytes cut to {len(raw)}")
        try:
            return _text(raw.decode("utf-8"), path, walk)
        except UnicodeDecodeError:
            notes.add(path, "bytes that are not UTF-8 stored as their repr")
            return _text(repr(raw), path, walk)
    if depth >= MAX_DEPTH:
        notes.add(path, f"nested deeper than {MAX_DEPTH} levels; the rest stored as text")
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return f"<{type(value).__name__} of {len(value)} items>"
        return _text(safe_repr(value)[:1000], path, walk)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if id(value) in active:
            notes.add(path, "circular reference")
            return "<circular reference>"
        active.add(id(value))
        try:
            return _json_safe_container(value, path, depth, walk)
        except Exception as exc:  # changed by another thread while we walked it, say
            notes.add(path, f"could not be read ({type(exc).__name__}); stored its repr")
            return _text(safe_repr(value), path, walk)
        finally:
            active.discard(id(value))
    try:
        known = _known(value)
    except Exception:
        notes.add(path, f"{type(value).__name__} is not JSON; stored its repr")
        return _text(safe_repr(value), path, walk)
    return _json_safe(known, path, depth + 1, walk)


def _text(value: str, path: str, walk: _Walk) -> str:
    """A string in extra_data: storable, and as long as its share of the budget (which it
    is charged for as JSON, escapes and quotes included)."""
    text = clean_text(value, walk.budget.text_limit(), path, walk.notes)
    walk.budget.spend(len(_encode_string(text)) + 2)
    return text


def _json_safe_container(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
    path: str,
    depth: int,
    walk: _Walk,
) -> Any:
    notes, budget = walk.notes, walk.budget
    total = len(value)
    kept = budget.take_values(total)
    if kept < total:
        notes.add(path, f"{total} values, the first {kept} kept ({MAX_VALUES} in all at most)")
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in islice(value.items(), kept):
            if budget.spent:
                notes.add(path, f"the rest dropped: extra_data is full ({MAX_EXTRA} characters)")
                break
            if isinstance(key, str):
                text_key = clean_text(key, MAX_KEY, f"{path} key", notes)
            else:
                text_key = clean_text(safe_str(key), MAX_KEY, f"{path} key", notes)
                notes.add(f"{path}.{text_key}", f"{type(key).__name__} key stored as text")
            if text_key in result:
                first = text_key
                text_key = _unclaimed(first, result)
                notes.add(f"{path}.{text_key}", f"another key read {first!r} once stored as text")
            budget.spend(len(_encode_string(text_key)) + 2)
            result[text_key] = _json_safe(item, f"{path}.{text_key}", depth + 1, walk)
        return result
    items = list(islice(value, kept))
    if isinstance(value, set | frozenset):
        items.sort(key=repr)
    result_items = []
    for i, item in enumerate(items):
        if budget.spent:
            notes.add(path, f"the rest dropped: extra_data is full ({MAX_EXTRA} characters)")
            break
        result_items.append(_json_safe(item, f"{path}[{i}]", depth + 1, walk))
    return result_items


def _unclaimed(key: str, taken: Mapping[str, Any]) -> str:
    """A key for a value whose key became ``key`` once sanitised, as another's had (``1``
    and ``"1"``, two long keys cut alike): ``key~2``, ``key~3``..., so neither value is
    lost."""
    number = 2
    while True:
        suffix = f"~{number}"
        candidate = key[: MAX_KEY - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def clean_text(value: object, limit: int, field: str, notes: Notes) -> str:
    """``value`` as text PostgreSQL accepts, at most ``limit`` characters. A long text is cut
    first, so that a huge one costs no more than its kept part."""
    if type(value) is not str:
        notes.add(field, f"{type(value).__name__} stored as text")
        # a str subclass (a str Enum) is text already: its characters, whatever its __str__
        value = str.__str__(value) if issubclass(type(value), str) else safe_str(value)
    if len(value) <= limit:
        if value.isascii():
            if "\x00" not in value:
                return value
        elif "\x00" not in value and is_utf8(value):
            return value
    else:
        notes.add(field, f"{len(value)} characters cut to {limit}")
        value = value[: limit - 1] + "…"
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
        notes.add(field, "NUL characters written as \\x00")
    if not is_utf8(value):
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        notes.add(field, "invalid unicode (lone surrogates) backslash-escaped")
    if len(value) > limit:  # the escapes made it longer again
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
