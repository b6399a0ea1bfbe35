"""to_row(): every value storable, every change noted; pure, so no database needed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest

from pglog._capture.capture import capture
from pglog._capture.entry import Entry, named
from pglog._capture.row import to_row
from pglog._capture.sanitize import to_json
from pglog._capture.sizes import MAX_DEPTH
from pglog._table.columns import MAX_TEXT, WRITTEN_NAMES, width


def entry_of(record: logging.LogRecord) -> Entry:
    """What the writer gets for ``record``: captured, then named."""
    return named(capture(record))


COLUMNS = WRITTEN_NAMES
MAX_NAME = width("logger_name")


def row_for(msg: object = "m", *args: object, name: str = "r", **extra: object) -> tuple[Any, ...]:
    log = logging.getLogger("row.test")
    record = log.makeRecord(name, logging.INFO, __file__, 1, msg, args, None, None, extra or None)
    return to_row(entry_of(record), "host")


def stored(row: tuple[Any, ...], column: str) -> Any:
    return row[COLUMNS.index(column)]


def extra_of(row: tuple[Any, ...]) -> dict[str, Any]:
    value = json.loads(stored(row, "extra_data"))
    assert isinstance(value, dict)
    return value


def test_plain_record_needs_no_notes() -> None:
    """An ordinary record converts to its columns with '{}' as extra_data."""
    row = row_for("hi %s", "there")
    assert len(row) == len(COLUMNS)
    assert stored(row, "message") == "hi there"
    assert stored(row, "extra_data") == "{}"
    assert stored(row, "timestamp").tzinfo is dt.timezone.utc


def test_huge_message_is_cut_with_a_marker() -> None:
    """A message over MAX_TEXT characters is cut to it, ends with an ellipsis, and is noted."""
    row = row_for("x" * (MAX_TEXT + 10))
    assert len(stored(row, "message")) == MAX_TEXT
    assert stored(row, "message").endswith("…")
    assert "cut to" in extra_of(row)["_pglog"]["sanitized"]["message"]


def test_long_logger_name_fits_its_column() -> None:
    """logger_name is varchar(255): a longer name is cut, not refused by the server."""
    row = row_for(name="n" * 400)
    assert len(stored(row, "logger_name")) == MAX_NAME
    assert "logger_name" in extra_of(row)["_pglog"]["sanitized"]


def test_nesting_within_the_size_policy_is_kept_whole() -> None:
    """Extras nested as deep as the size policy allows are stored as they are."""
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    assert extra_of(row_for(deep=deep)) == {"deep": deep}


def test_nesting_past_the_recursion_limit_is_cut_and_noted() -> None:
    """Nesting deeper than the size policy allows (or json.dumps could follow) keeps its top
    MAX_DEPTH levels and says so."""
    deep: Any = {}
    for _ in range(5_000):
        deep = {"d": deep}
    extra = extra_of(row_for(deep=deep))
    (note,) = extra["_pglog"]["sanitized"].values()
    assert f"nested deeper than {MAX_DEPTH} levels" in note


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2026, 1, 2), "2026-01-02"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Decimal("1.50"), "1.50"),
        ({3, 1, 2}, [1, 2, 3]),
        (math.inf, "inf"),
        (10**5000, "<int of 16610 bits>"),
    ],
    ids=["date", "uuid", "decimal", "set", "infinity", "huge-int"],
)
def test_well_known_types_become_json(value: object, expected: object) -> None:
    """Dates, UUIDs, decimals and sets become their natural JSON; odd numbers become text."""
    assert extra_of(row_for(v=value))["v"] == expected


def test_json_never_contains_what_jsonb_refuses() -> None:
    """No \\u0000 escape and nothing that isn't UTF-8 reaches the jsonb column."""
    text = to_json({"k\x00": "v\x00", "s": "\udc80", "n": [float("nan")]})
    assert "\\u0000" not in text
    text.encode("utf-8")
    assert json.loads(text)["_pglog"]["sanitized"]


@pytest.mark.parametrize(
    ("thread", "expected"),
    [(2**64 - 5, -5), (2**63 - 1, 2**63 - 1), (2**64, None), (-(2**63) - 1, None), ("x", None)],
    ids=["unsigned", "max", "too-big", "too-small", "not-int"],
)
def test_thread_ident_fits_bigint(thread: object, expected: int | None) -> None:
    """An unsigned 64-bit ident is stored as its signed twin; anything else as NULL, noted."""
    log = logging.getLogger("row.test")
    record = log.makeRecord("r", logging.INFO, __file__, 1, "m", (), None)
    record.thread = thread  # type: ignore[assignment]
    row = to_row(entry_of(record), "h")
    assert stored(row, "thread_id") == expected
    assert ("thread_id" in extra_of(row).get("_pglog", {}).get("sanitized", {})) == (
        expected is None
    )


def test_a_mutating_container_is_survived() -> None:
    """A value whose iteration raises is stored as its repr with a note."""

    class Exploding(dict[str, int]):
        def items(self) -> Any:
            raise RuntimeError("changed size during iteration")

        def __iter__(self) -> Any:
            raise RuntimeError("changed size during iteration")

    extra = extra_of(row_for(data=Exploding(a=1)))
    assert "could not be read" in extra["_pglog"]["sanitized"]["extra.data"]


def _schema_3(row: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    return stored(row, "template"), stored(row, "levelno"), stored(row, "fingerprint")


def test_the_template_and_the_level_number_are_kept_on_every_path() -> None:
    """A record with arguments keeps its ``%`` string, whether the writer formats it (the
    common record), the row is built column by column (non-ASCII text), or the caller's
    thread formatted it (another handler formatted the record first); without arguments
    there is no template."""
    log = logging.getLogger("row.template")
    for message, args in (("order %s placed", (7,)), ("Bestellung %s aufgegeben ✓", ([7],))):
        record = log.makeRecord(log.name, logging.INFO, __file__, 1, message, args, None)
        assert _schema_3(to_row(entry_of(record), "host")) == (message, 20, None)
        formatted = log.makeRecord(log.name, logging.INFO, __file__, 1, message, args, None)
        logging.Formatter().format(formatted)  # the console handler went first
        entry = entry_of(formatted)
        assert (entry.args is None) is (type(args[0]) is list)  # scalars: the writer formats
        assert _schema_3(to_row(entry, "host")) == (message, 20, None)
        assert _schema_3(to_row(entry, "host")) == (message, 20, None)  # and on the fast path
    plain = log.makeRecord(log.name, logging.INFO, __file__, 1, "no arguments", (), None)
    assert _schema_3(to_row(entry_of(plain), "host")) == (None, 20, None)


def test_a_custom_level_is_stored_with_its_number_and_errors_with_their_kind() -> None:
    """``FATAL`` at 60 stores 60 (logging's own FATAL is 50); an error without a traceback
    gets its logger and template as its kind."""
    log = logging.getLogger("row.levels")
    logging.addLevelName(60, "FATAL")
    try:
        record = log.makeRecord(log.name, 60, __file__, 1, "disk %s gone", ("sda",), None)
        assert _schema_3(to_row(entry_of(record), "host")) == (
            "disk %s gone",
            60,
            "row.levels: disk %s gone",
        )
    finally:
        logging.addLevelName(50, "FATAL")
        logging.addLevelName(50, "CRITICAL")
        del logging._levelToName[60]
