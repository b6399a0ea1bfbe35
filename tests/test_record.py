"""capture(): what is taken from a LogRecord in the caller's thread."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from pglog.record import FIELD_NAMES, STANDARD_ATTRIBUTES, capture
from pglog.sanitize import MARKER_KEY


def make_record(
    msg: object = "hello %s", args: tuple[object, ...] = ("world",), **extra: object
) -> logging.LogRecord:
    log = logging.getLogger("capture.test")
    return log.makeRecord(
        log.name, logging.INFO, __file__, 10, msg, args, None, "func", extra or None
    )


def test_message_is_rendered_now() -> None:
    """The entry holds getMessage() as it was at capture time."""
    items = ["a"]
    record = make_record("items: %s", (items,))
    _, message, _, _ = capture(record)
    items.append("b")
    assert message == "items: ['a']"


def test_entry_carries_the_record_attributes_in_order() -> None:
    """The fields are the record's own attributes, in FIELD_NAMES order."""
    record = make_record()
    fields, message, exception, extras = capture(record)
    assert fields == tuple(getattr(record, name) for name in FIELD_NAMES)
    assert fields[:3] == (record.created, "INFO", "capture.test")
    assert (message, exception, extras) == ("hello world", None, None)


def test_extras_are_exactly_the_non_standard_attributes() -> None:
    """extra= keys are kept; standard attributes (and a Formatter's message/asctime) are not."""
    record = make_record(user=1, request_id="r")
    logging.Formatter("%(asctime)s %(message)s").format(record)  # as another handler would
    assert capture(record)[3] == {"user": 1, "request_id": "r"}
    plain = make_record()
    logging.Formatter("%(asctime)s %(message)s").format(plain)
    assert capture(plain)[3] is None
    assert {"message", "asctime", "msg", "args", "exc_info"} <= STANDARD_ATTRIBUTES


def test_extras_of_a_record_subclass_are_found_wherever_they_sit() -> None:
    """A record factory that sets attributes before the standard ones still has them kept."""

    class Tagged(logging.LogRecord):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.tenant = "acme"
            super().__init__(*args, **kwargs)

    record = Tagged("n", logging.INFO, __file__, 1, "m", None, None)
    assert capture(record)[3] == {"tenant": "acme"}


def test_a_failing_format_keeps_message_and_arguments() -> None:
    """A %-format error is captured with both parts and a note, never raised."""
    _, message, _, extras = capture(make_record("%d apples", ("many",)))
    assert message == "'%d apples' % ('many',)"
    assert isinstance(extras, str)
    assert "formatting failed" in json.loads(extras)[MARKER_KEY]["sanitized"]["message"]


def test_extras_are_taken_when_logged_not_when_written() -> None:
    """A mutable extra= value changed after the call is stored as it was at the call;
    plain scalar extras are kept as they are, since nothing can change them."""
    state = {"step": 1}
    entry = capture(make_record(state=state, user_id=7))
    state["step"] = 2
    assert entry[3] == '{"state":{"step":1},"user_id":7}'
    assert capture(make_record(user_id=7, path="/x"))[3] == {"user_id": 7, "path": "/x"}


def test_str_that_raises_is_survived() -> None:
    """A message object whose __str__ and __repr__ raise still yields an entry."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    _, message, _, _ = capture(make_record(Hostile(), ()))
    assert "repr() failed" in message


def test_exception_text_is_formatted_once() -> None:
    """exc_info becomes traceback text and the record's exception is not needed afterwards."""
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "m", (), sys.exc_info()
        )
    _, _, exception, _ = capture(record)
    assert exception is not None
    assert exception.startswith("Traceback")
    assert exception.endswith("ValueError: bad value")
