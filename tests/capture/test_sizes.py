"""sizes: one policy for how big each part of a row may be, applied to every field, with
bounded work in the caller's thread; what is cut is noted."""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import ListHandler, fetch

from pglog._capture.sizes import MAX_DEPTH, MAX_EXTRA, MAX_KEY, MAX_VALUE, MAX_VALUES, fits
from pglog._table.columns import MAX_TEXT


def stored_extras(db: psycopg.Connection[Any], table: str) -> list[tuple[dict[str, Any], int]]:
    """Each row's extra_data and the length of its text, in insertion order."""
    return [
        (extra, int(size))
        for extra, size in fetch(db, table, "extra_data, length(extra_data::text)")
    ]


def notes_of(extra: dict[str, Any]) -> dict[str, str]:
    return extra["_pglog"]["sanitized"]  # type: ignore[no-any-return]


@pytest.fixture
def logged(
    make_handler: HandlerFactory, logger: logging.Logger
) -> tuple[logging.Logger, ListHandler, Any]:
    fallback = ListHandler()
    handler = make_handler(fallback=fallback)
    logger.addHandler(handler)
    return logger, fallback, handler


def test_a_million_scalar_extras_keep_the_budgets_worth_and_say_so(
    logged: tuple[logging.Logger, ListHandler, Any], db: psycopg.Connection[Any], table: str
) -> None:
    """1,000,000 plain extras (19 MB of JSONB, stored without a word before, once the
    writer knows the place that logs them) become the first MAX_VALUES of them, and a note."""
    logger, fallback, handler = logged
    for extra in ({"warm": 1}, {f"k{i}": i for i in range(1_000_000)}):
        logger.info("wide", extra=extra)
    assert handler.flush(60)
    _, (extra, size) = stored_extras(db, table)
    assert fallback.records == []
    assert len(extra) == MAX_VALUES + 1  # and _pglog
    assert extra["k0"] == 0
    assert extra[f"k{MAX_VALUES - 1}"] == MAX_VALUES - 1
    assert size <= MAX_EXTRA
    assert "1000000 values, the first 10000 kept" in notes_of(extra)["extra"]


def test_a_huge_string_extra_is_cut_to_its_share(
    logged: tuple[logging.Logger, ListHandler, Any], db: psycopg.Connection[Any], table: str
) -> None:
    """A 100 MB string extra (stored whole before) keeps its first MAX_VALUE characters,
    plain or nested, and its neighbours are kept whole."""
    logger, fallback, handler = logged
    huge = "x" * 100_000_000
    logger.info("one", extra={"body": huge, "small": "kept"})
    logger.info("two", extra={"request": {"body": huge, "small": "kept"}})
    del huge
    assert handler.flush(60)
    (plain, _), (nested, _) = stored_extras(db, table)
    assert len(plain["body"]) == MAX_VALUE
    assert plain["small"] == "kept"
    assert notes_of(plain)["extra.body"] == f"100000000 characters cut to {MAX_VALUE}"
    assert len(nested["request"]["body"]) == MAX_VALUE
    assert nested["request"]["small"] == "kept"
    assert "extra.request.body" in notes_of(nested)
    assert fallback.records == []


def test_the_caller_stops_encoding_a_huge_extra_at_the_budget(
    logged: tuple[logging.Logger, ListHandler, Any], db: psycopg.Connection[Any], table: str
) -> None:
    """A nested extra is snapshotted in the caller's thread as far as the budget goes, not
    encoded whole and cut after: 5,000,000 values (40 MB of JSON, half a second of
    json.dumps) cost the caller's thread no more CPU than 200,000 do."""
    logger, fallback, handler = logged
    took = {}
    for size in (200_000, 5_000_000):
        values = {"ids": list(range(size))}
        began = time.thread_time()
        logger.info("many", extra={"payload": values})
        took[size] = time.thread_time() - began
    assert took[5_000_000] < 3 * took[200_000], took
    assert handler.flush(60)
    for extra, size in stored_extras(db, table):
        assert extra["payload"]["ids"][:3] == [0, 1, 2]
        assert len(extra["payload"]["ids"]) == MAX_VALUES - 2  # the payload and ids keys count
        assert size <= MAX_EXTRA
        assert "values, the first" in notes_of(extra)["extra.payload.ids"]
    assert fallback.records == []


def test_extra_data_as_a_whole_stays_within_its_width(
    logged: tuple[logging.Logger, ListHandler, Any], db: psycopg.Connection[Any], table: str
) -> None:
    """Fifty strings of 60,000 characters (3 MB): the first ones whole, then one cut to what
    is left, the rest dropped, all noted; the JSON within extra_data's width."""
    logger, fallback, handler = logged
    logger.info("full", extra={f"part{i:02}": "y" * 60_000 for i in range(50)})
    logger.info("nested full", extra={"parts": ["z" * 60_000 for _ in range(50)]})
    assert handler.flush(60)
    for extra, size in stored_extras(db, table):
        assert size <= MAX_EXTRA + 2000  # the notes
        assert notes_of(extra)
    (flat, _), (nested, _) = stored_extras(db, table)
    whole = MAX_EXTRA // 60_000
    assert all(len(flat[f"part{i:02}"]) == 60_000 for i in range(whole - 1))
    assert "part49" not in flat
    assert len(nested["parts"]) < 50
    assert "the rest dropped" in notes_of(nested)["extra.parts"]
    assert fallback.records == []


def test_keys_nesting_and_messages_follow_the_same_policy(
    logged: tuple[logging.Logger, ListHandler, Any], db: psycopg.Connection[Any], table: str
) -> None:
    """A long key is cut to MAX_KEY, nesting past MAX_DEPTH is kept as text, a message is
    cut to its column's width: each noted."""
    logger, fallback, handler = logged
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 50):
        deep = {"d": deep}
    logger.info("k" * (MAX_TEXT + 5), extra={"K" * 1000: 1, "deep": deep})
    assert handler.flush(60)
    ((message, extra),) = fetch(db, table, "message, extra_data")
    assert len(message) == MAX_TEXT
    (key,) = (k for k in extra if k.startswith("K"))
    assert len(key) == MAX_KEY
    notes = notes_of(extra)
    assert "cut to" in notes["message"]
    assert any("nested deeper than" in note for note in notes.values())
    assert fallback.records == []


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        ({"a": 1, "b": "text", "c": [1, {"d": None}]}, True),
        ({"a": "x" * (MAX_VALUE + 1)}, False),
        ({"k" * (MAX_KEY + 1): 1}, False),
        ({"a": list(range(MAX_VALUES))}, False),
        ({f"k{i}": "v" * 1000 for i in range(MAX_EXTRA // 1000 + 1)}, False),
    ],
    ids=["small", "long-value", "long-key", "many-values", "too-much-text"],
)
def test_fits_tells_from_sizes_alone(extras: dict[str, Any], expected: bool) -> None:
    """fits() is True for what the budget takes, False past any of its bounds."""
    assert fits(extras) is expected
