"""capture(): what is taken from a LogRecord in the caller's thread."""

from __future__ import annotations

import json
import logging
import sys

from pglog.record import STANDARD_ATTRIBUTES, capture
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
    entry = capture(record)
    items.append("b")
    assert entry[6] == "items: ['a']"


def test_entry_carries_the_record_attributes_in_order() -> None:
    """created, levelname, name, process, thread, threadName ... pathname, as on the record."""
    record = make_record()
    entry = capture(record)
    assert entry[:6] == (
        record.created,
        "INFO",
        "capture.test",
        record.process,
        record.thread,
        record.threadName,
    )
    assert entry[7:13] == (None, "func", record.module, record.filename, 10, __file__)
    assert entry[13] is None


def test_extras_are_exactly_the_non_standard_attributes() -> None:
    """extra= keys are kept; standard attributes (and a Formatter's message/asctime) are not."""
    record = make_record(user=1, request_id="r")
    logging.Formatter("%(asctime)s %(message)s").format(
        record
    )  # another handler formatted it first
    assert capture(record)[13] == '{"user":1,"request_id":"r"}'
    plain = make_record()
    logging.Formatter("%(asctime)s %(message)s").format(plain)
    assert capture(plain)[13] is None
    assert {"message", "asctime", "msg", "args", "exc_info"} <= STANDARD_ATTRIBUTES


def test_a_failing_format_keeps_message_and_arguments() -> None:
    """A %-format error is captured with both parts and a note, never raised."""
    entry = capture(make_record("%d apples", ("many",)))
    assert entry[6] == "'%d apples' % ('many',)"
    assert entry[13] is not None
    assert "formatting failed" in json.loads(entry[13])[MARKER_KEY]["sanitized"]["message"]


def test_extras_are_taken_when_logged_not_when_written() -> None:
    """A mutable extra= value changed after the call is stored as it was at the call."""
    state = {"step": 1}
    entry = capture(make_record(state=state))
    state["step"] = 2
    assert entry[13] == '{"state":{"step":1}}'


def test_str_that_raises_is_survived() -> None:
    """A message object whose __str__ and __repr__ raise still yields an entry."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    entry = capture(make_record(Hostile(), ()))
    assert "repr() failed" in entry[6]


def test_exception_text_is_formatted_once() -> None:
    """exc_info becomes traceback text and the record's exception is not needed afterwards."""
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "m", (), sys.exc_info()
        )
    entry = capture(record)
    assert entry[7] is not None
    assert entry[7].startswith("Traceback")
    assert entry[7].endswith("ValueError: bad value")
