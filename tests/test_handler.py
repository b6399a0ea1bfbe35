"""DatabaseLogHandler against a real PostgreSQL: what lands in each column, flush, close, stats."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import ListHandler, closed_port_dsn, count, fetch

from pglog import DatabaseLogHandler
from pglog._writer.process import OWN_THREADS


@pytest.fixture(params=[None, "day"], ids=["plain", "partitioned"])
def partition(request: pytest.FixtureRequest) -> str | None:
    """Every test here runs on both layouts: a plain table, and one partitioned by day."""
    return request.param  # type: ignore[no-any-return]


STATS_KEYS = {
    "enqueued",
    "written",
    "dropped",
    "spooled",
    "replayed",
    "retries",
    "failed_batches",
    "fallback",
    "queue_depth",
    "connected",
    "last_error",
}


def test_every_column_holds_what_the_record_held(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """An ordinary record fills each DESIGN.md column from the matching LogRecord attribute."""
    handler = make_handler()
    logger.addHandler(handler)
    records: list[logging.LogRecord] = []
    keeper = ListHandler()
    logger.addHandler(keeper)

    logger.warning("user %s logged in from %s", "alice", "10.0.0.1")
    assert handler.flush(10)
    records = keeper.records

    (row,) = fetch(
        db,
        table,
        "timestamp, level, logger_name, process_id, thread_id, thread_name, hostname, message,"
        " exception, function_name, module, filename, lineno, pathname, extra_data, created_at",
    )
    record = records[0]
    assert row[0] == dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
    assert row[1:8] == (
        "WARNING",
        logger.name,
        os.getpid(),
        threading.get_ident(),
        threading.current_thread().name,
        socket.gethostname(),
        "user alice logged in from 10.0.0.1",
    )
    assert row[8] is None
    assert row[9:14] == (
        "test_every_column_holds_what_the_record_held",
        "test_handler",
        "test_handler.py",
        record.lineno,
        __file__,
    )
    assert row[14] == {}
    assert row[15] >= row[0]


def test_message_is_taken_when_logged_not_when_written(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Mutating the arguments after the call does not change the stored message."""
    handler = make_handler(flush_interval=60)
    logger.addHandler(handler)
    basket = ["apple"]
    logger.info("basket: %s", basket)
    basket.append("pear")
    assert handler.flush(10)
    assert fetch(db, table, "message") == [("basket: ['apple']",)]


def test_extra_fields_land_in_extra_data_and_nothing_else(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Every extra= attribute, nested or well-known, is in extra_data; no standard attribute is."""
    handler = make_handler()
    logger.addHandler(handler)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    extra = {
        "user_id": 42,
        "ratio": 0.25,
        "ok": True,
        "nothing": None,
        "tags": ("a", "b"),
        "nested": {"deep": {"list": [1, {"x": "y"}]}},
        "when": when,
        "level": "clashes with a column name, and is kept",
    }
    logger.info("with extras", extra=extra)
    assert handler.flush(10)
    ((stored,),) = fetch(db, table, "extra_data")
    assert stored == {
        "user_id": 42,
        "ratio": 0.25,
        "ok": True,
        "nothing": None,
        "tags": ["a", "b"],
        "nested": {"deep": {"list": [1, {"x": "y"}]}},
        "when": "2026-01-02T03:04:05+00:00",
        "level": "clashes with a column name, and is kept",
    }


def test_odd_extra_values_are_stored_and_marked(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Values JSON can't hold are stored in a readable form, with a note saying what was done."""

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque thing>"

    circular: dict[str, Any] = {"name": "loop"}
    circular["self"] = circular
    handler = make_handler()
    logger.addHandler(handler)
    logger.info(
        "odd",
        extra={
            "obj": Opaque(),
            "nan": float("nan"),
            "inf": float("-inf"),
            "raw": b"\xff\xfe",
            "text_bytes": b"hello",
            "circular": circular,
            "keys": {1: "int key", (2, 3): "tuple key"},
            "nul": "a\x00b",
        },
    )
    assert handler.flush(10)
    ((stored,),) = fetch(db, table, "extra_data")
    notes = stored.pop("_pglog")["sanitized"]
    assert stored == {
        "obj": "<Opaque thing>",
        "nan": "nan",
        "inf": "-inf",
        "raw": "b'\\xff\\xfe'",
        "text_bytes": "hello",
        "circular": {"name": "loop", "self": "<circular reference>"},
        "keys": {"1": "int key", "(2, 3)": "tuple key"},
        "nul": "a\\x00b",
    }
    assert set(notes) == {
        "extra.obj",
        "extra.nan",
        "extra.inf",
        "extra.raw",
        "extra.circular.self",
        "extra.keys.1",
        "extra.keys.(2, 3)",
        "extra.nul",
    }


def test_exception_and_stack_info_are_stored_as_text(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """exc_info becomes the formatted traceback; stack_info follows it."""
    handler = make_handler()
    logger.addHandler(handler)
    try:
        {"present": 1}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    logger.info("where am I", stack_info=True)
    assert handler.flush(10)
    (failed, stacked) = fetch(db, table, "level, message, exception")
    assert failed[:2] == ("ERROR", "lookup failed")
    assert failed[2].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in failed[2]
    assert stacked[2].startswith("Stack (most recent call last):")
    assert "test_exception_and_stack_info_are_stored_as_text" in stacked[2]


def test_unicode_round_trips(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Non-ASCII text in messages, logger names and extras comes back unchanged."""
    handler = make_handler()
    unicode_logger = logging.getLogger(f"{logger.name}.zürich.東京")
    unicode_logger.addHandler(handler)
    message = "Grüße, 世界! 🎉 ünïcödé \t tab \\ backslash \n newline"
    unicode_logger.info(message, extra={"città": "Zürich 🚋"})
    assert handler.flush(10)
    unicode_logger.removeHandler(handler)
    assert fetch(db, table, "logger_name, message, extra_data") == [
        (unicode_logger.name, message, {"città": "Zürich 🚋"})
    ]


def test_bad_text_is_stored_sanitised_and_marked(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """NUL, lone surrogates and a failing %-format each store a row and say what changed."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("nul \x00 here")
    logger.info("surrogate \udc80 here")
    logger.info("%d items", "not a number")
    logger.info("fine")
    assert handler.flush(10)
    rows = fetch(db, table, "message, extra_data->'_pglog'->'sanitized'")
    assert [message for message, _ in rows] == [
        "nul \\x00 here",
        "surrogate \\udc80 here",
        "'%d items' % ('not a number',)",
        "fine",
    ]
    assert "NUL" in rows[0][1]["message"]
    assert "surrogate" in rows[1][1]["message"]
    assert "formatting failed (TypeError" in rows[2][1]["message"]
    assert rows[3][1] is None
    assert handler.stats()["written"] == 4


def test_flush_waits_for_commit_and_counts_add_up(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """After flush() returns True, every record emitted before it is in the table."""
    handler = make_handler(batch_size=100, flush_interval=30)
    logger.addHandler(handler)
    for i in range(2_345):
        logger.info("record %d", i)
    assert handler.flush(30)
    assert count(db, table) == 2_345
    stats = handler.stats()
    assert stats["enqueued"] == stats["written"] == 2_345
    assert stats["pending"] == stats["dropped"] == stats["fallback"] == 0
    assert fetch(db, table, "message", "id = (SELECT max(id) FROM {})".format(f'"{table}"')) == [
        ("record 2344",)
    ]


def test_many_threads_each_keep_their_order(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Records from concurrent threads all land, each thread's in the order it logged them."""
    handler = make_handler(batch_size=50)
    logger.addHandler(handler)

    def work(n: int) -> None:
        for i in range(500):
            logger.info("%d", i, extra={"worker": n})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handler.flush(30)
    rows = fetch(db, table, "(extra_data->>'worker')::int, message::int")
    assert len(rows) == 2_000
    for n in range(4):
        assert [i for worker, i in rows if worker == n] == list(range(500))


def test_close_is_idempotent_and_a_later_record_opens_the_handler_again(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """close() writes what was queued; a record after close() opens the handler again, as
    the standard library's handlers do, and is stored (nothing to the fallback)."""
    fallback = ListHandler()
    handler = make_handler(fallback=fallback, flush_interval=60)
    logger.addHandler(handler)
    logger.info("before close")
    handler.close()
    handler.close()
    assert fetch(db, table, "message") == [("before close",)]
    logger.info("after close")
    handler.close()
    assert fetch(db, table, "message") == [("before close",), ("after close",)]
    assert fallback.messages() == []
    stats = handler.stats()
    assert (stats["enqueued"], stats["written"], stats["fallback"]) == (2, 2, 0)
    assert not any(
        t.name.startswith("pglog-writer") and t.is_alive() for t in threading.enumerate()
    )


def test_no_connection_before_the_first_record(pg_dsn: str, table: str) -> None:
    """Constructing a handler opens nothing and starts no thread."""
    before = set(threading.enumerate())
    handler = DatabaseLogHandler(pg_dsn, table=table)
    try:
        assert set(threading.enumerate()) == before
        assert handler.stats()["connected"] is False
    finally:
        handler.close()


def test_stats_and_repr_name_no_secret(
    make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """The password of the DSN appears in neither stats(), repr() nor the last error."""
    secret = "s3cret-Pa55"
    handler = make_handler(
        dsn=f"postgresql://pglog_nobody:{secret}@127.0.0.1:1/nowhere",
        fallback=ListHandler(),
        connect_timeout=1,
    )
    logger.addHandler(handler)
    logger.info("goes nowhere")
    assert handler.flush() is False
    stats = handler.stats()
    assert set(stats) >= STATS_KEYS
    assert stats["last_error"] is not None
    assert secret not in repr(stats)
    assert secret not in repr(handler)
    assert "127.0.0.1:1/nowhere" in repr(handler)


def test_hostile_identifiers_are_quoted(
    pg_dsn: str, db: psycopg.Connection[Any], logger: logging.Logger
) -> None:
    """Table and schema names that look like SQL create exactly that table, nothing else."""
    schema = 'evil"; DROP TABLE x; --'
    table = 'logs"; SELECT 1; --'
    handler = DatabaseLogHandler(pg_dsn, table=table, schema=schema, flush_interval=0.05)
    logger.addHandler(handler)
    try:
        logger.info("quoted")
        assert handler.flush(10)
        rows = db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema = %s ORDER BY table_name",
            (schema,),
        ).fetchall()
        assert rows == [(schema, table), (schema, "pglog_writers")]
        indexes = db.execute(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (schema, table),
        ).fetchone()
        assert indexes == (10,)  # the primary key, the five of DESIGN.md, schema 3's and search
    finally:
        handler.close()
        db.execute('DROP SCHEMA "evil""; DROP TABLE x; --" CASCADE')


def test_table_and_indexes_are_created_as_designed(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """create_table=True makes the DESIGN.md columns (and schema 3's), the five named
    indexes, and the indexes of errors and of search."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("create")
    assert handler.flush(10)
    columns = db.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    assert [name for name, _ in columns] == [
        "id",
        "timestamp",
        "level",
        "logger_name",
        "process_id",
        "thread_id",
        "thread_name",
        "hostname",
        "message",
        "exception",
        "function_name",
        "module",
        "filename",
        "lineno",
        "pathname",
        "extra_data",
        "created_at",
        "template",
        "levelno",
        "fingerprint",
    ]
    assert dict(columns)["extra_data"] == "jsonb"
    indexes = {
        name
        for (name,) in db.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)
        ).fetchall()
    }
    assert indexes == {f"{table}_pkey"} | {
        f"idx_{table}_{what}"
        for what in (
            *("timestamp", "level", "logger_name", "hostname", "timestamp_level_logger"),
            *("errors", "fingerprint", "legacy_errors", "search"),
        )
    }


def test_missing_table_without_create_table_goes_to_the_fallback(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """create_table=False and no table: the batch goes to the fallback, the error is reported."""
    fallback = ListHandler()
    handler = make_handler(create_table=False, fallback=fallback)
    logger.addHandler(handler)
    logger.info("no table for me")
    handler.flush(10)
    handler.close()
    assert "no table for me" in fallback.messages()
    assert any("can't write to" in m for m in fallback.messages("pglog"))
    stats = handler.stats()
    assert (stats["fallback"], stats["written"]) == (1, 0)
    assert "does not exist" in stats["last_error"]


def test_a_dropped_table_is_created_again(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """If the table vanishes while the handler runs, it is recreated and no record is lost."""
    handler = make_handler(fallback=ListHandler())
    logger.addHandler(handler)
    logger.info("first")
    assert handler.flush(10)
    db.execute(f'DROP TABLE "{table}"')
    logger.info("second")
    assert handler.flush(10)
    assert fetch(db, table, "message") == [("second",)]
    assert handler.stats()["written"] == 2


def test_writer_threads_are_named_and_never_queue_their_own_records(
    make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """The writer is one named daemon thread whose ident is known to the loop guard."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("start the writer")
    assert handler.flush(10)
    writers = [t for t in threading.enumerate() if t.name.startswith("pglog-writer-")]
    assert len(writers) == 1
    assert writers[0].daemon
    assert writers[0].ident in OWN_THREADS


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("batch_size", 0),
        ("batch_size", "500"),
        ("queue_size", -1),
        ("flush_interval", 0),
        ("overflow", "drop_all"),
        ("create_table", "yes"),
        ("fallback", "email"),
        ("table", ""),
        ("schema", "x" * 64),
        ("close_timeout", float("nan")),
        ("close_timeout", float("inf")),
        ("write_timeout", float("inf")),
        ("connect_timeout", float("inf")),
    ],
)
def test_bad_options_name_themselves(option: str, value: object) -> None:
    """A wrong option value is a ValueError that names the option."""
    with pytest.raises(ValueError, match=option):
        DatabaseLogHandler("", **{option: value})  # type: ignore[arg-type]


def test_malformed_dsn_is_an_error_without_the_password() -> None:
    """A DSN libpq can't parse fails at construction, without echoing it."""
    with pytest.raises(ValueError, match="dsn") as caught:
        DatabaseLogHandler("host=x password='unterminated")
    assert "unterminated" not in str(caught.value)


class _Holding(logging.Handler):
    """A fallback that holds whoever hands it a record until the test lets go."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.let_go = threading.Event(), threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.entered.set()
        self.let_go.wait(30)


def test_a_close_meeting_another_threads_close_returns_once_that_one_has_finished(
    make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """A close() (the exit's, the SIGTERM hook's) that finds another thread's close under
    way returns once that close has finished, not at once: the process ends right after
    it, and would end with the record still being handed on."""
    fallback = _Holding()
    handler = make_handler(dsn=closed_port_dsn(), fallback=fallback, close_timeout=5)
    logger.addHandler(handler)
    logger.warning("held")
    first = threading.Thread(target=handler.close)
    first.start()
    assert fallback.entered.wait(30), "the first close never handed the record on"
    seen: dict[str, Any] = {}

    def close_again() -> None:
        handler.close()
        seen.update(handler.stats())

    second = threading.Thread(target=close_again)
    second.start()
    fallback.let_go.set()
    second.join(30)
    first.join(30)
    assert (seen["pending"], seen["fallback"]) == (0, 1)
