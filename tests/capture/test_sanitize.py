"""sanitize: each value PostgreSQL would refuse is made storable, and each change is noted
under ``_pglog.sanitized``; called directly, so every output is compared exactly.

The module is imported whole and its functions called as ``sanitize.x``, so that a move
of some of them to another module is easy to follow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import pytest

from pglog._capture import sanitize
from pglog._capture.notes import MARKER_KEY, MAX_NOTE, MAX_NOTES, Notes
from pglog._capture.sizes import MAX_DEPTH, MAX_EXTRA, MAX_KEY, MAX_VALUE, MAX_VALUES


class Hostile:
    """An object whose every way of being shown raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Shy:
    """An object whose str raises but whose repr works."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "<Shy>"


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def encoded(extras: dict[Any, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``to_json(extras)`` parsed back, and the notes it took."""
    notes = Notes()
    text = sanitize.to_json(extras, notes)
    return json.loads(text), dict(notes)


def stored_notes(value: dict[str, Any]) -> dict[str, str]:
    """What the JSON itself carries under the marker."""
    return dict(value.get(MARKER_KEY, {}).get("sanitized", {}))


# -- text: NUL, broken unicode, size -------------------------------------------------------------


def test_nul_characters_in_values_and_keys_are_written_as_backslash_x00_and_noted() -> None:
    """jsonb refuses NUL: in a value it becomes the four characters \\x00, noted under the
    value's path; in a key likewise, noted under "extra key"."""
    value, notes = encoded({"a": "x\x00y", "k\x00": "v\x00"})
    assert value["a"] == "x\\x00y"
    assert value["k\\x00"] == "v\\x00"
    assert notes == {
        "extra.a": "NUL characters written as \\x00",
        "extra key": "NUL characters written as \\x00",
        "extra.k\\x00": "NUL characters written as \\x00",
    }
    assert stored_notes(value) == notes  # the JSON says what the notes say


def test_lone_surrogates_in_values_and_keys_are_backslash_escaped_and_noted() -> None:
    """A lone surrogate is not UTF-8: it is written as its backslash escape, noted."""
    value, notes = encoded({"k": "\ud800x", "\udcffk": 1})
    assert value["k"] == "\\ud800x"
    assert value["\\udcffk"] == 1
    assert notes == {
        "extra.k": "invalid unicode (lone surrogates) backslash-escaped",
        "extra key": "invalid unicode (lone surrogates) backslash-escaped",
    }
    assert sanitize.is_utf8(json.dumps(value, ensure_ascii=False))


def test_a_huge_string_keeps_its_first_max_value_characters_ending_with_an_ellipsis() -> None:
    """A string past MAX_VALUE (64 Ki characters) is cut to exactly MAX_VALUE, its last
    one an ellipsis, and the note gives both lengths; as_extras cuts it at once (it
    returns the JSON text, not the dict holding the whole string)."""
    notes = Notes()
    queued = sanitize.as_extras({"h": "x" * 100_000}, notes)
    assert isinstance(queued, str)
    value = json.loads(queued)
    assert len(value["h"]) == MAX_VALUE
    assert value["h"] == "x" * (MAX_VALUE - 1) + "…"
    assert dict(notes) == {"extra.h": f"100000 characters cut to {MAX_VALUE}"}
    assert stored_notes(value) == dict(notes)


def test_a_key_longer_than_max_key_is_cut_and_noted() -> None:
    """A key keeps its first MAX_KEY - 1 characters and an ellipsis."""
    value, notes = encoded({"k" * 300: 1})
    assert list(value) == ["k" * (MAX_KEY - 1) + "…", MARKER_KEY]
    assert notes == {"extra key": f"300 characters cut to {MAX_KEY}"}


def test_clean_text_cuts_first_then_escapes_and_never_exceeds_its_limit() -> None:
    """clean_text: a non-str is made text (noted); a long text is cut; NUL escapes that
    make it longer than the limit again are cut once more."""
    notes = Notes()
    assert sanitize.clean_text(42, 10, "n", notes) == "42"
    assert sanitize.clean_text("abcdefghijkl", 5, "long", notes) == "abcd…"
    assert sanitize.clean_text("\x00" * 5, 5, "nul", notes) == "\\x00…"
    assert sanitize.clean_text("plain", 5, "plain", notes) == "plain"
    assert dict(notes) == {
        "n": "int stored as text",
        "long": "12 characters cut to 5",
        "nul": "NUL characters written as \\x00",
    }


# -- keys and values that are not JSON -----------------------------------------------------------


def test_non_str_keys_are_stored_as_text_and_noted() -> None:
    """An int, a tuple, and a key whose str and repr both raise: each is made text."""
    value, notes = encoded({1: "a", (1, 2): "b", Hostile(): "c"})
    failed = "<Hostile object: repr() failed with RuntimeError>"
    assert {k: v for k, v in value.items() if k != MARKER_KEY} == {
        "1": "a",
        "(1, 2)": "b",
        failed: "c",
    }
    assert notes == {
        "extra.1": "int key stored as text",
        "extra.(1, 2)": "tuple key stored as text",
        f"extra.{failed}": "Hostile key stored as text",
    }


def test_an_object_whose_repr_raises_is_stored_as_a_description_of_that() -> None:
    """Neither str nor repr works: the stored value says so, and the note says it is not
    JSON; nothing raises."""
    value, notes = encoded({"o": Hostile()})
    assert value["o"] == "<Hostile object: repr() failed with RuntimeError>"
    assert notes == {"extra.o": "Hostile is not JSON; stored its repr"}


def test_a_circular_reference_is_cut_where_it_comes_back_and_noted() -> None:
    """A dict that holds itself and a list that holds itself: the inner occurrence becomes
    "<circular reference>"; the rest is kept."""
    looped: dict[str, Any] = {"n": 1}
    looped["self"] = looped
    listed: list[Any] = [1]
    listed.append(listed)
    value, notes = encoded({"d": looped, "l": listed})
    assert value["d"] == {"n": 1, "self": "<circular reference>"}
    assert value["l"] == [1, "<circular reference>"]
    assert notes == {"extra.d.self": "circular reference", "extra.l[1]": "circular reference"}


def test_the_same_container_twice_is_not_taken_for_a_circular_reference() -> None:
    """One dict under two keys and in a list (shared, not circular) is stored three times."""
    shared = {"x": 1}
    value, notes = encoded({"a": shared, "b": shared, "c": [shared], "o": object()})
    assert (value["a"], value["b"], value["c"]) == ({"x": 1}, {"x": 1}, [{"x": 1}])
    assert "circular reference" not in json.dumps(notes)


def test_bytes_are_decoded_when_utf8_and_stored_as_their_repr_when_not() -> None:
    """b"fine" and bytearray become "fine" with no note; bytes that are not UTF-8 (a NUL
    and 0xff) are stored as their repr, noted."""
    value, notes = encoded({"t": b"fine", "a": bytearray(b"also"), "b": b"\x00\xff"})
    assert (value["t"], value["a"]) == ("fine", "also")
    assert value["b"] == "b'\\x00\\xff'"
    assert notes == {"extra.b": "bytes that are not UTF-8 stored as their repr"}


def test_well_known_types_are_stored_as_their_obvious_json_without_a_note() -> None:
    """Datetimes, dates and times as ISO text, Decimal, UUID and paths as text, an enum as
    its value, a set sorted, a tuple as a list, a dataclass as its fields: no notes."""
    value, notes = encoded(
        {
            "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
            "day": dt.date(2024, 1, 2),
            "time": dt.time(1, 2),
            "price": Decimal("1.10"),
            "id": uuid.UUID(int=1),
            "path": PurePosixPath("/a/b"),
            "color": Color.RED,
            "set": {3, 1, 2},
            "pair": (1, 2),
            "point": Point(1, 2),
        }
    )
    assert value == {
        "when": "2024-01-02T03:04:05+00:00",
        "day": "2024-01-02",
        "time": "01:02:00",
        "price": "1.10",
        "id": "00000000-0000-0000-0000-000000000001",
        "path": "/a/b",
        "color": "red",
        "set": [1, 2, 3],
        "pair": [1, 2],
        "point": {"x": 1, "y": 2},
    }
    assert notes == {}


def test_nan_and_infinities_are_stored_as_text_and_noted() -> None:
    """jsonb has no NaN nor infinity: each becomes its repr as text."""
    value, notes = encoded({"n": float("nan"), "i": float("inf"), "m": float("-inf")})
    assert (value["n"], value["i"], value["m"]) == ("nan", "inf", "-inf")
    assert notes == {f"extra.{k}": "non-finite float stored as text" for k in "nim"}


def test_an_integer_too_long_for_text_is_stored_as_its_size() -> None:
    """An int past 4300 digits (int->str refuses it) is stored as "<int of N bits>"."""
    big = 10**5000
    value, notes = encoded({"b": big})
    assert value["b"] == f"<int of {big.bit_length()} bits>"
    assert notes == {"extra.b": f"integer of {big.bit_length()} bits stored as text"}


def test_a_mapping_that_cannot_be_read_is_stored_as_its_repr() -> None:
    """A dict subclass whose items() raises: its repr is stored, noted."""

    class Unreadable(dict[str, int]):
        def items(self) -> Any:
            raise RuntimeError("no items")

    value, notes = encoded({"m": Unreadable(a=1)})
    assert value["m"] == "{'a': 1}"
    assert notes == {"extra.m": "could not be read (RuntimeError); stored its repr"}


# -- size and depth ------------------------------------------------------------------------------


def test_nesting_deeper_than_max_depth_is_stored_as_text_below_it() -> None:
    """A list nested 150 deep: MAX_DEPTH levels of containers are kept (the extras' own
    dict counting as the first), the next is "<list of 1 items>", and the note is under
    that level's path."""
    deep: list[Any] = []
    inner = deep
    for _ in range(150):
        inner.append([])
        inner = inner[0]
    value, notes = encoded({"deep": deep})
    levels, node = 1, value["deep"]
    while isinstance(node, list):
        levels, node = levels + 1, node[0]
    assert levels == MAX_DEPTH
    assert node == "<list of 1 items>"
    assert notes == {
        _cut("extra.deep" + "[0]" * (MAX_DEPTH - 1)): (
            f"nested deeper than {MAX_DEPTH} levels; the rest stored as text"
        )
    }


def _cut(field: str) -> str:
    """A note's field name as Notes keeps it (MAX_NOTE characters at most)."""
    if len(field) > MAX_NOTE:
        return field[: MAX_NOTE - 1] + "…"
    return field


def test_more_than_max_values_keeps_the_first_ones_and_says_how_many() -> None:
    """A list of 20,000 items: the first MAX_VALUES - 1 are kept (the key itself counts as
    one value), in order; the note gives the count."""
    value, notes = encoded({"l": list(range(20_000))})
    assert value["l"] == list(range(MAX_VALUES - 1))
    assert notes == {
        "extra.l": f"20000 values, the first {MAX_VALUES - 1} kept ({MAX_VALUES} in all at most)"
    }


def test_extras_bigger_than_max_extra_stop_where_the_budget_does() -> None:
    """Thirty strings of 60,000 characters: the JSON stays within MAX_EXTRA, the string
    the budget runs out in is cut, the rest dropped, and both are noted."""
    notes = Notes()
    text = sanitize.to_json({f"k{i:02}": "v" * 60_000 for i in range(30)}, notes)
    value = json.loads(text)
    assert len(text) <= MAX_EXTRA
    kept = [k for k in value if k != MARKER_KEY]
    assert kept == [f"k{i:02}" for i in range(len(kept))]  # the first ones, in order
    assert 1 < len(kept) < 30
    assert all(value[k] == "v" * 60_000 for k in kept[:-1])
    assert len(value[kept[-1]]) < 60_000
    assert notes["extra"] == f"the rest dropped: extra_data is full ({MAX_EXTRA} characters)"
    assert notes[f"extra.{kept[-1]}"].startswith("60000 characters cut to ")


def test_with_notes_past_max_extra_keeps_the_beginning_as_text() -> None:
    """JSON longer than MAX_EXTRA becomes {"_pglog": ..., "truncated_json": its first
    MAX_VALUE characters}, noted."""
    text = '{"a":"' + "x" * MAX_EXTRA + '"}'
    notes = Notes()
    value = json.loads(sanitize.with_notes(text, notes))
    assert value == {
        MARKER_KEY: {"sanitized": {"extra": f"JSON of {len(text)} characters cut to {MAX_VALUE}"}},
        "truncated_json": text[:MAX_VALUE],
    }


# -- the marker ----------------------------------------------------------------------------------


def test_a_record_key_named_like_the_marker_is_renamed_and_noted() -> None:
    """A record can't pass for pglog's own notes: its "_pglog" becomes "_pglog_" (or
    "_pglog__" when that is taken too), and the marker says so."""
    notes = Notes()
    queued = sanitize.as_extras({"_pglog": {"sanitized": {"fake": "x"}}, "_pglog_": 2}, notes)
    assert isinstance(queued, str)
    assert json.loads(queued) == {
        "_pglog_": 2,
        "_pglog__": {"sanitized": {"fake": "x"}},
        "_pglog": {"sanitized": {"extra._pglog": "the record's own key, renamed _pglog__"}},
    }


def test_with_notes_merges_a_marker_already_in_the_json() -> None:
    """Notes added to JSON that carries a marker (from the caller's thread) join its notes
    and its scrubbed paths rather than replace them."""
    earlier = '{"a":1,"_pglog":{"sanitized":{"extra.a":"earlier"},"scrubbed":["extra.p"]}}'
    notes = Notes()
    notes.add("message", "later")
    value = json.loads(sanitize.with_notes(earlier, notes, ["extra.q"]))
    assert value == {
        "a": 1,
        "_pglog": {
            "sanitized": {"message": "later", "extra.a": "earlier"},
            "scrubbed": ["extra.p", "extra.q"],
        },
    }


def test_with_scrubbed_splices_the_paths_into_plain_json() -> None:
    """The scalar fast path's JSON gets the scrubbed paths added, empty or not."""
    assert sanitize.with_scrubbed('{"a":1}', ["extra.a"]) == (
        '{"a":1,"_pglog":{"scrubbed":["extra.a"]}}'
    )
    assert sanitize.with_scrubbed("{}", ["extra.a"]) == '{"_pglog":{"scrubbed":["extra.a"]}}'


# -- Notes ---------------------------------------------------------------------------------------


def test_notes_are_bounded_in_fields_length_and_scrubbed_paths() -> None:
    """Past MAX_NOTES fields, the rest are counted; a field name or note longer than
    MAX_NOTE is cut; the same note twice is kept once, a second one joined with "; ";
    past MAX_NOTES scrubbed paths, the rest are counted."""
    notes = Notes()
    for i in range(MAX_NOTES + 5):
        notes.add(f"f{i}", "w")
    marker = notes.as_marker([f"p{i}" for i in range(MAX_NOTES + 3)])
    assert list(marker["sanitized"]) == [f"f{i}" for i in range(MAX_NOTES)]
    assert marker["more_notes_omitted"] == 5
    assert marker["scrubbed"] == [f"p{i}" for i in range(MAX_NOTES)]
    assert marker["more_scrubbed"] == 3
    long = Notes()
    long.add("x" * 400, "y" * 400)
    long.add("same", "one")
    long.add("same", "two")
    long.add("same", "one")
    assert long == {
        "x" * (MAX_NOTE - 1) + "…": "y" * (MAX_NOTE - 1) + "…",
        "same": "one; two",
    }
    assert Notes().as_marker() == {}


# -- the queue's form and the fast path ----------------------------------------------------------


def test_as_extras_keeps_plain_scalars_as_the_dict_itself() -> None:
    """Plain scalars under str keys stay the caller's dict (encoded later, in the writer),
    even a NUL or a NaN, which the encoding deals with; a container is encoded now."""
    plain = {"a": 1, "b": "x\x00", "c": None, "d": float("nan"), "e": True}
    assert sanitize.as_extras(plain) is plain
    nested = {"a": [1, 2]}
    queued = sanitize.as_extras(nested)
    assert queued == '{"a":[1,2]}'
    nested["a"].append(3)  # a change after the call is not seen: the snapshot was taken
    assert queued == '{"a":[1,2]}'


@pytest.mark.parametrize(
    "values",
    [
        {"n": float("nan")},
        {"z": "\x00"},
        {"s": "\ud800"},
        {"b": 10**5000},
        {"l": "x" * (MAX_VALUE + 1)},
        {"k" * (MAX_KEY + 1): 1},
        {"o": [1]},
    ],
    ids=["nan", "nul", "surrogate", "huge-int", "long-string", "long-key", "container"],
)
def test_scalar_json_leaves_anything_that_needs_care_to_the_careful_path(
    values: dict[str, Any],
) -> None:
    """scalar_json returns None for what it can't encode as is; to_json then gives JSON
    that jsonb accepts (no NUL escape, valid UTF-8, no NaN) holding every key."""
    assert sanitize.scalar_json(values) is None
    text = sanitize.to_json(values)
    assert "\\u0000" not in text
    assert sanitize.is_utf8(text)
    assert len(json.loads(text, parse_constant=pytest.fail)) >= len(values)


def test_scalar_json_gives_the_same_json_as_the_standard_encoder() -> None:
    """For plain scalars, the fast encoder's text is compact JSON equal to json.dumps'."""
    values = {"a": 1, "b": 'x"y\n', "c": None, "d": 1.5, "e": False, "é": "ü"}
    text = sanitize.scalar_json(values)
    assert text == json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(text or "") == values


def test_safe_repr_and_safe_str_never_raise() -> None:
    """safe_repr describes a repr that raised; safe_str falls back to the repr, and to that
    description when both raise."""
    failed = "<Hostile object: repr() failed with RuntimeError>"
    assert sanitize.safe_repr(Hostile()) == failed
    assert sanitize.safe_str(Hostile()) == failed
    assert sanitize.safe_str(Shy()) == "<Shy>"
    assert sanitize.safe_str(5) == "5"
    assert sanitize.safe_repr("a") == "'a'"


# -- keys that become the same text --------------------------------------------------------------


@pytest.mark.parametrize(
    "extras",
    [
        {1: "first", "1": "second"},
        {"k" * 300: "first", "k" * 299 + "j": "second"},
        {"a\x00": "first", "a\\x00": "second"},
    ],
    ids=["int-and-str", "cut-alike", "nul-escaped-alike"],
)
def test_two_keys_that_become_the_same_text_keep_both_values(extras: dict[Any, Any]) -> None:
    """The module's promise: "each change is noted ...: the record is kept". Two keys that
    sanitising makes equal (an int key and its str, two long keys with one beginning, a
    NUL key and its escaped spelling) must not let one value silently replace the other:
    both values are stored."""
    value, _ = encoded(extras)
    values = [v for k, v in value.items() if k != MARKER_KEY]
    assert sorted(values) == ["first", "second"], value
    said = value[MARKER_KEY]["sanitized"]
    assert any("another key read" in note for note in said.values()), said


class Shade(str, enum.Enum):
    """A str Enum: its str() is ``Shade.DARK`` (before Python 3.12's StrEnum), its
    characters ``dark``."""

    DARK = "dark"


class Loud(str):
    def __str__(self) -> str:
        return "LOUD"


def test_a_str_subclass_is_stored_as_its_characters_whatever_its_str() -> None:
    """A str Enum or a str subclass is text already: its characters are stored (noted as
    another type stored as text), not what its __str__ makes of it."""
    value, notes = encoded({"shade": Shade.DARK, "loud": Loud("quiet"), "n": 1})
    assert {key: value[key] for key in ("shade", "loud", "n")} == {
        "shade": "dark",
        "loud": "quiet",
        "n": 1,
    }
    assert notes == {"extra.shade": "Shade stored as text", "extra.loud": "Loud stored as text"}
