"""Strange records: each is stored, sanitised and marked; none raises, none sinks its batch."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import ListHandler, fetch


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
