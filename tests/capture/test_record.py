"""entry_of(): what is taken from a LogRecord in the caller's thread."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, cast

import pytest
from helpers import make_record

import pglog
from pglog._capture.capture import capture, render
from pglog._capture.entry import (
    LIGHT_EXTRAS,
    LIGHT_TEXT_EXTRAS,
    RECORD_ATTRIBUTES,
    RECORD_FIELDS,
    STANDARD_ATTRIBUTES,
    Entry,
    named,
)
from pglog._capture.notes import MARKER_KEY
from pglog._writer.queue import is_light
from pglog._writer.segments import line


class Text(str):
    """A str subclass (as a str Enum is): not a plain str."""


def entry_of(record: logging.LogRecord) -> Entry:
    """What the writer gets for ``record``: captured, then named."""
    return named(capture(record))


def test_message_is_taken_now_when_arguments_could_change() -> None:
    """A mutable argument is formatted at capture time; changing it later changes nothing."""
    items = ["a"]
    record = make_record("items: %s", (items,))
    entry = entry_of(record)
    items.append("b")
    assert entry.args is None
    assert render(entry) == ("items: ['a']", None)


def test_immutable_arguments_are_formatted_later() -> None:
    """Scalar arguments can't change: the common record is captured as is, formatted by the
    writer, with the same result."""
    record = make_record("user %s paid %.2f (%d items, %r)", ("ann", 12.5, 3, None))
    entry = entry_of(record)
    assert entry.message == "user %s paid %.2f (%d items, %r)"
    assert entry.args == ("ann", 12.5, 3, None)
    assert render(entry) == (record.getMessage(), None)


def test_entry_carries_the_record_attributes_in_order() -> None:
    """The entry opens with the record's own attributes, in RECORD_FIELDS order."""
    record = make_record()
    entry = entry_of(record)
    assert len(entry) == len(Entry._fields)
    assert entry[: len(RECORD_FIELDS)] == tuple(getattr(record, name) for name in RECORD_FIELDS)
    assert (entry.exception, entry.extras) == (None, None)
    assert render(entry) == ("hello world", None)


def test_extras_are_exactly_the_non_standard_attributes() -> None:
    """extra= keys are kept; standard attributes (and a Formatter's message/asctime) are not."""
    record = make_record(user=1, request_id="r")
    logging.Formatter("%(asctime)s %(message)s").format(record)  # as another handler would
    assert entry_of(record).extras == {"user": 1, "request_id": "r"}
    plain = make_record()
    logging.Formatter("%(asctime)s %(message)s").format(plain)
    assert entry_of(plain).extras is None
    assert {"message", "asctime", "msg", "args", "exc_info"} <= STANDARD_ATTRIBUTES


def test_extras_of_a_record_subclass_are_found_wherever_they_sit() -> None:
    """A record factory that sets attributes before the standard ones still has them kept."""

    class Tagged(logging.LogRecord):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.tenant = "acme"
            super().__init__(*args, **kwargs)

    record = Tagged("n", logging.INFO, __file__, 1, "m", None, None)
    assert entry_of(record).extras == {"tenant": "acme"}


@pytest.mark.parametrize("later", [False, True], ids=["now", "in-the-writer"])
def test_a_failing_format_keeps_message_and_arguments(later: bool) -> None:
    """A %-format error, found at capture or when the writer formats, keeps both parts and
    says what failed; it never raises."""
    args: tuple[Any, ...] = ("many",) if later else (["many"],)
    entry = entry_of(make_record("%d apples", args))
    message, note = render(entry)
    if not later:
        assert isinstance(entry.extras, str)
        note = json.loads(entry.extras)[MARKER_KEY]["sanitized"]["message"]
    assert message == f"'%d apples' % ({args[0]!r},)"
    assert note is not None
    assert note.startswith("formatting failed (TypeError")


def test_extras_are_taken_when_logged_not_when_written() -> None:
    """A mutable extra= value changed after the call is stored as it was at the call;
    plain scalar extras are kept as they are, since nothing can change them."""
    state = {"step": 1}
    entry = entry_of(make_record(state=state, user_id=7))
    state["step"] = 2
    assert entry.extras == '{"state":{"step":1},"user_id":7}'
    assert entry_of(make_record(user_id=7, path="/x")).extras == {"user_id": 7, "path": "/x"}


@pytest.mark.parametrize("where", ["message", "argument", "extra"])
def test_a_record_with_scalar_extras_and_long_text_is_weighed(where: str) -> None:
    """The queue counts a record with plain scalar extras as a record only while its
    message, string arguments and string extras are short together; a long one in any of
    them is weighed in bytes (``queue_max_bytes``)."""
    long = "x" * (LIGHT_TEXT_EXTRAS + 1)
    msg, args, extra = "msg %s", ("arg",), {"user": 1, "path": "/x"}
    if where == "message":
        msg = long + " %s"
    elif where == "argument":
        args = (long,)
    else:
        extra = {**extra, "body": long}
    assert is_light(capture(make_record("msg %s", ("arg",), user=1, path="/x")))
    assert not is_light(capture(make_record(msg, args, **extra)))


def test_scalar_extras_keep_their_order_over_the_bound_fields() -> None:
    """A record's own plain scalar extras come after the bound fields, in the order they
    were given, and a bound field they name keeps its place with the record's value."""
    with pglog.bind(tenant="acme", user=7):
        extras = entry_of(make_record(zone="eu", user=8, path="/x")).extras
    assert isinstance(extras, dict)
    assert list(extras.items()) == [("tenant", "acme"), ("user", 8), ("zone", "eu"), ("path", "/x")]


def test_extras_are_found_whatever_was_done_to_the_records_own_attributes() -> None:
    """A record that lost one of its own attributes, or had one deleted and set again (so
    that it comes after the extras), has all its extras, and only them."""
    lacking = make_record(user=1, path="/x")
    del lacking.msecs
    moved = make_record(user=1, path="/x")
    del moved.msecs
    moved.msecs = 1.0
    for record in (lacking, moved):
        assert entry_of(record).extras == {"user": 1, "path": "/x"}


def test_str_that_raises_is_survived() -> None:
    """A message object whose __str__ and __repr__ raise still yields an entry."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    message, _ = render(entry_of(make_record(Hostile(), ())))
    assert "repr() failed" in message


def test_exception_text_is_formatted_once() -> None:
    """exc_info becomes traceback text and the record's exception is not needed afterwards."""
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "m", (), sys.exc_info()
        )
    exception = entry_of(record).exception
    assert exception is not None
    assert exception.startswith("Traceback")
    assert exception.endswith("ValueError: bad value")


@pytest.mark.parametrize("change", ["lacking", "moved"])
def test_the_careful_path_keeps_every_extra_whatever_was_done_to_the_records_own(
    change: str,
) -> None:
    """A record that lost one of its own attributes (or had one deleted and set again,
    after its extras) and holds an extra that is not a plain scalar has all its extras
    too: the careful path skips a LogRecord's first keys only while they are its own."""
    record = make_record(user=1, tags=["a"])
    value = record.msecs
    del record.msecs
    if change == "moved":
        record.msecs = value
    extras = entry_of(record).extras
    assert isinstance(extras, str)  # a list among them: the careful path's JSON text
    assert json.loads(extras) == {"user": 1, "tags": ["a"]}


def test_extras_set_before_a_moved_last_attribute_are_kept() -> None:
    """A record whose last own attribute (``process``) was deleted and set again, after
    its extras, and which was given one more: the short path, which reads extras from the
    end back to that attribute, must not take it for all of them."""
    record = make_record(user=1, path="/x")
    last = RECORD_ATTRIBUTES[-1]
    value = getattr(record, last)
    delattr(record, last)
    setattr(record, last, value)
    record.late = 2
    assert entry_of(record).extras == {"user": 1, "path": "/x", "late": 2}


def test_a_record_with_many_scalar_extras_is_weighed() -> None:
    """Each extra costs the queue bytes of its own, text or not: a record with more than
    LIGHT_EXTRAS of them is weighed against ``queue_max_bytes``, and keeps them all."""
    most = {f"k{i}": i for i in range(LIGHT_EXTRAS)}
    assert is_light(capture(make_record(**most)))
    many = make_record(**most, one_more=True)
    assert not is_light(capture(many))
    assert entry_of(many).extras == {**most, "one_more": True}


def test_a_formatted_record_keeps_only_its_extras() -> None:
    """A record a Formatter has formatted (``message``, ``asctime``: another handler went
    first) takes the short path too: what the Formatter added is left out."""
    record = make_record(user=1, path="/x")
    logging.Formatter("%(asctime)s %(message)s").format(record)
    assert is_light(capture(record))
    with pglog.bind(tenant="acme", user=0):
        assert entry_of(record).extras == {"tenant": "acme", "user": 1, "path": "/x"}
    plain = make_record()
    logging.Formatter("%(asctime)s %(message)s").format(plain)
    assert is_light(capture(plain))
    assert entry_of(plain).extras is None


@pytest.mark.parametrize("key", [1, None, ("a", "b"), Text("sk")], ids=repr)
def test_a_key_that_is_not_a_str_is_made_text_and_noted(key: object) -> None:
    """``extra={1: ...}`` (or a key set in ``__dict__`` by hand) among plain scalars: the
    writer gets its key as text, noted, as the careful path gives it, and the spool can
    write it (a tuple key made json.dumps raise)."""
    record = make_record(user=1)
    cast(dict[object, object], record.__dict__)[key] = "v"
    entry = entry_of(record)
    assert isinstance(entry.extras, str)
    extras = json.loads(entry.extras)
    assert extras["user"] == 1
    assert extras[str(key)] == "v"
    assert json.loads(line(capture(record)))[Entry._fields.index("extras")] == entry.extras
