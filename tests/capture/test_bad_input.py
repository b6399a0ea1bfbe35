"""Strange records: each is stored, sanitised and marked; none raises, none sinks its batch."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import ListHandler, fetch

import pglog


class Hostile:
    """An object whose every way of being shown raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


def test_a_batch_of_bad_records_is_stored_whole(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Every kind of bad input in one batch, between good records: all stored, in order."""
    fallback = ListHandler()
    handler = make_handler(fallback=fallback, flush_interval=60)
    logger.addHandler(handler)
    deep: Any = []
    for _ in range(3_000):
        deep = [deep]
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("good %d", (0,), {}),
        ("nul\x00byte", (), {"k": "v\x00"}),
        ("lone \udcff surrogate", (), {"s\udcff": "\ud800"}),
        ("x" * 3_000_000, (), {}),
        ("%s %s", ("one",), {}),
        ("%(missing)s", ({"other": 1},), {}),
        ("hostile %s", (Hostile(),), {"obj": Hostile()}),
        ("numbers", (), {"nan": float("nan"), "inf": float("inf"), "big": 10**5000}),
        ("deep", (), {"deep": deep}),
        ("bytes", (), {"raw": b"\x00\xff", "text": b"fine"}),
        ("clash", (), {"level": "x", "message_id": 1, "timestamp": "y", "id": 3}),
        ("good %d", (1,), {}),
    ]
    for message, args, extra in cases:
        logger.info(message, *args, extra=extra)
    assert handler.flush(30)
    rows = fetch(db, table, "message, extra_data")
    assert len(rows) == len(cases)
    assert fallback.records == []
    messages = [m for m, _ in rows]
    assert messages[0] == "good 0"
    assert messages[-1] == "good 1"
    assert messages[1] == "nul\\x00byte"
    assert messages[2] == "lone \\udcff surrogate"
    assert len(messages[3]) == 1 << 20
    assert messages[4] == "'%s %s' % ('one',)"
    assert messages[6] == "'hostile %s' % (<Hostile object: repr() failed with RuntimeError>,)"
    for (_, extra), (message, _, _) in zip(rows[1:-2], cases[1:-2], strict=True):
        assert extra["_pglog"]["sanitized"], f"no note for {message[:20]!r}"
    assert rows[10][1]["level"] == "x"
    assert rows[10][1]["id"] == 3
    stats = handler.stats()
    assert (stats["written"], stats["fallback"], stats["dropped"]) == (len(cases), 0, 0)


def test_no_password_reaches_the_fallback_or_the_table(
    make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """With the database refusing, the fallback output, reports and stats hold no password."""
    secret = "pa55-w0rd-XYZ"
    fallback = ListHandler()
    fallback.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler = make_handler(
        dsn=f"postgresql://someone:{secret}@127.0.0.1:1/db?connect_timeout=1", fallback=fallback
    )
    logger.addHandler(handler)
    logger.error("about to fail")
    handler.close()
    shown = "\n".join(fallback.format(r) for r in fallback.records)
    assert "about to fail" in shown
    assert "Connection refused" in shown or "could not be written" in shown
    assert secret not in shown
    assert secret not in repr(handler.stats())
    assert secret not in repr(handler)


class NoClass:
    """An extra whose isinstance() raises: its __class__ is a property that raises."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class for you")


class NoAttributes:
    """An extra every attribute lookup of which raises (isinstance() included)."""

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} for you")


class Unprintable(int):
    """An int whose __str__ and __repr__ raise: json.dumps manages it, until a NaN beside
    it sends the extras down the careful path, which used to call str() on it."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


def by_hand(*missing: str, **attributes: Any) -> logging.LogRecord:
    """A record made as logging.makeLogRecord makes one, less the attributes ``missing``."""
    record = logging.makeLogRecord({"name": "hand.made", "msg": "made by hand", **attributes})
    for name in missing:
        delattr(record, name)
    return record


def test_records_with_hostile_extras_or_built_by_hand_are_stored_and_marked(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    db: psycopg.Connection[Any],
    table: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An extra whose isinstance() raises, an int whose str() raises beside a NaN, records
    built by hand without msg, args or exc_info (or with args that are neither a tuple
    nor a dict): each is stored, with its message and its other extras, and says what was
    wrong with it; none reaches logging's "--- Logging error ---", all are counted."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("class %s", 1, extra={"bad": NoClass(), "good": [1, 2]})
    logger.info("attributes %s", 2, extra={"bad": NoAttributes(), "good": [1, 2]})
    logger.info("int %s", 3, extra={"bad": Unprintable(7), "nan": float("nan"), "good": [1]})
    made = [
        by_hand("msg"),
        by_hand("args", msg="no args %s"),
        by_hand("exc_info"),
        by_hand("msg", "args", "exc_info", "exc_text", "levelname", "created"),
        by_hand(msg="a list: %s %s", args=["x", "y"]),
        by_hand(msg="an int: %d", args=5),
    ]
    for record in made:
        handler.handle(record)  # as a QueueListener or a socket server hands them over
    assert handler.flush(10)
    assert "Logging error" not in capfd.readouterr().err
    rows = fetch(db, table, "logger_name, message, extra_data")
    assert len(rows) == 3 + len(made)
    assert [message for _, message, _ in rows[:3]] == ["class 1", "attributes 2", "int 3"]
    for _, _, extra in rows[:2]:
        assert extra["good"] == [1, 2]
        assert extra["bad"].startswith("<")
        assert "could not be looked at" in extra["_pglog"]["sanitized"]["extra.bad"]
    assert rows[2][2]["good"] == [1]
    assert rows[2][2]["bad"] == 7  # the number it is, whatever its str() does
    assert rows[2][2]["nan"] == "nan"
    assert "extra.nan" in rows[2][2]["_pglog"]["sanitized"]
    messages = [message for _, message, _ in rows[3:]]
    assert messages == [
        "",
        "no args %s",
        "made by hand",
        "",
        "'a list: %s %s' % ['x', 'y']",  # what logging's own % would have failed on
        "an int: 5",
    ]
    notes = [extra["_pglog"]["sanitized"] for _, _, extra in rows[3:]]
    assert [note.get("record") for note in notes[:4]] == [
        "built without msg",
        "built without args",
        "built without exc_info",
        "built without created, levelname, msg, args, exc_text, exc_info",
    ]
    assert notes[4]["args"].startswith("list, not a tuple or a mapping")
    assert notes[5]["args"].startswith("int, not a tuple or a mapping")
    stats = handler.stats()
    assert (stats["enqueued"], stats["written"]) == (len(rows), len(rows))


def test_a_record_cannot_forge_pglogs_notes(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """A record's own ``_pglog`` (in extra=, a scalar or nested, or bound with pglog.bind)
    is stored under ``_pglog_`` and said; what is under ``_pglog`` is only ever pglog's:
    no forged note and no forged scrubbed path survive, beside a real one."""
    forged = {"sanitized": {"message": "forged note"}, "scrubbed": ["extra.forged"]}
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("nested", extra={"_pglog": forged, "_pglog_": 1})
    logger.info("scalar", extra={"_pglog": "forged note", "password": "hunter2-pw"})
    with pglog.bind(_pglog="forged note"):
        logger.info("bound")
    assert handler.flush(10)
    rows = fetch(db, table, "message, extra_data")
    assert [message for message, _ in rows] == ["nested", "scalar", "bound"]
    nested, scalar, bound = (extra for _, extra in rows)
    assert nested["_pglog__"] == forged
    assert nested["_pglog_"] == 1
    assert nested["_pglog"] == {
        "sanitized": {"extra._pglog": "the record's own key, renamed _pglog__"}
    }
    assert scalar["_pglog_"] == bound["_pglog_"] == "forged note"
    assert scalar["_pglog"]["scrubbed"] == ["extra.password"]
    for extra in (scalar, bound):
        assert extra["_pglog"]["sanitized"] == {
            "extra._pglog": "the record's own key, renamed _pglog_"
        }
    assert "forged" not in json.dumps([extra["_pglog"] for extra in (nested, scalar, bound)])
    assert handler.stats()["written"] == 3
