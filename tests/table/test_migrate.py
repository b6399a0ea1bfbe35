"""Migrations: tables made by hand, by an earlier pglog, or by a newer one."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import ListHandler, at_once, count, fetch
from psycopg import sql

from pglog import DatabaseLogHandler
from pglog._table.errors import errors
from pglog._table.filters import Filter
from pglog._table.layout import Engine
from pglog._table.migrate import SCHEMA_VERSION, SchemaError, inspect_table, migrate
from pglog._table.schema import INDEX_SUFFIXES, TableName

#: The table as DESIGN.md describes it, the way a user would create it by hand.
HAND_MADE = """
CREATE TABLE {table} (
    id BIGSERIAL PRIMARY KEY,
    timestamp TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
    level VARCHAR(10) NOT NULL,
    logger_name VARCHAR(255) NOT NULL,
    process_id INTEGER NOT NULL,
    thread_id BIGINT NOT NULL,
    thread_name VARCHAR(255) NOT NULL,
    hostname VARCHAR(255) NOT NULL,
    message TEXT NOT NULL,
    exception TEXT NOT NULL,
    function_name VARCHAR(255) NOT NULL,
    module VARCHAR(255) NOT NULL,
    filename VARCHAR(255) NOT NULL,
    lineno INTEGER NOT NULL,
    pathname TEXT NOT NULL,
    extra_data JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL
)"""
OLD_ROW = (
    "INSERT INTO {table} (level, logger_name, process_id, thread_id, thread_name, hostname,"
    " message, exception, function_name, module, filename, lineno, pathname, extra_data)"
    " VALUES ('INFO', 'old', 1, 1, 't', 'h', 'written by hand', '', 'f', 'm', 'm.py', 1,"
    " '/m.py', '{{}}')"
)


def hand_made(db: psycopg.Connection[Any], table: str, rows: int = 3) -> None:
    db.execute(HAND_MADE.format(table=f'"{table}"'))
    for _ in range(rows):
        db.execute(OLD_ROW.format(table=f'"{table}"'))


def test_a_hand_made_table_is_adopted_and_its_rows_kept(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """The handler adopts the DESIGN.md table: optional columns may be NULL now, the version
    is recorded, old rows stay, new rows (without an exception) land."""
    hand_made(db, table)
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("new")
    assert handler.flush(10)
    assert fetch(db, table, "message") == [("written by hand",)] * 3 + [("new",)]
    state = inspect_table(db, TableName("public", table))
    assert state.version == SCHEMA_VERSION
    assert "exception" not in state.not_null
    # a table that holds rows gets its indexes from `pglog migrate`, built concurrently
    assert sorted(state.missing_indexes) == sorted(INDEX_SUFFIXES)


def test_pglog_migrate_builds_the_indexes_of_a_table_with_rows(
    pg_dsn: str, db: psycopg.Connection[Any], table: str
) -> None:
    """The indexes a hand-made table lacks are built CONCURRENTLY by `pglog migrate`; a
    second run finds nothing to do."""
    hand_made(db, table, rows=1000)
    db.execute(f'ANALYZE "{table}"')
    with psycopg.connect(pg_dsn) as conn:
        steps = migrate(conn, TableName("public", table), build_indexes=True)
        again = migrate(conn, TableName("public", table), build_indexes=True)
    assert sum("built" in step for step in steps) == len(INDEX_SUFFIXES)
    assert again == []
    state = inspect_table(db, TableName("public", table))
    assert state.missing_indexes == []
    assert count(db, table) == 1000


def test_a_table_made_before_versions_is_marked_and_the_users_comment_kept(
    pg_dsn: str, db: psycopg.Connection[Any], table: str
) -> None:
    """An unmarked pglog table gets its version line; a comment the user wrote survives."""
    name = TableName("public", table)
    with psycopg.connect(pg_dsn) as conn:
        migrate(conn, name, build_indexes=False)
    db.execute(f"""COMMENT ON TABLE "{table}" IS 'audit trail, keep 90 days'""")
    with psycopg.connect(pg_dsn) as conn:
        steps = migrate(conn, name, build_indexes=False)
    assert steps == [
        f"{name}: no version (made by hand, or by an early pglog) -> pglog schema {SCHEMA_VERSION}"
    ]
    comment = inspect_table(db, name).comment
    assert comment == f"audit trail, keep 90 days\npglog:schema={SCHEMA_VERSION}"


def test_a_table_without_the_reports_table_works_and_gets_one(
    pg_dsn: str, db: psycopg.Connection[Any], table: str, own_schema: str
) -> None:
    """A table from a pglog before writer reports: a handler that may not create tables
    writes into it all the same (reporting nothing); pglog migrate adds the reports table."""
    name = TableName(own_schema, table)
    with psycopg.connect(pg_dsn) as conn:
        migrate(conn, name, build_indexes=False)
    db.execute(f'DROP TABLE "{own_schema}".pglog_writers')
    log = logging.getLogger(f"test.reports.{table}")
    log.propagate = False
    handler = DatabaseLogHandler(pg_dsn, schema=own_schema, table=table, create_table=False)
    log.addHandler(handler)
    log.warning("into a table without reports")
    handler.close()
    log.removeHandler(handler)
    assert handler.stats()["written"] == 1
    assert handler.stats()["last_error"] is None
    with psycopg.connect(pg_dsn) as conn:
        steps = migrate(conn, name, build_indexes=False)
    assert steps == [f"created {own_schema}.pglog_writers (the writers' reports)"]
    assert inspect_table(db, name).version == SCHEMA_VERSION


def test_a_table_from_a_newer_pglog_is_refused(
    pg_dsn: str, db: psycopg.Connection[Any], table: str
) -> None:
    """A schema version this pglog doesn't know is an error that says to upgrade."""
    with psycopg.connect(pg_dsn) as conn:
        migrate(conn, TableName("public", table), build_indexes=False)
    db.execute(f"""COMMENT ON TABLE "{table}" IS 'pglog:schema=99'""")
    with psycopg.connect(pg_dsn) as conn, pytest.raises(SchemaError, match="upgrade pglog"):
        migrate(conn, TableName("public", table), build_indexes=False)


def test_a_table_that_cannot_take_the_rows_is_refused_clearly(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """A same-named table of something else: nothing is altered, records go to the fallback,
    and the reason names the missing columns."""
    db.execute(f'CREATE TABLE "{table}" (id serial, note text)')
    fallback = ListHandler()
    handler = make_handler(fallback=fallback)
    logger.addHandler(handler)
    logger.info("where do I go")
    handler.flush(10)
    assert fallback.messages(logger.name) == ["where do I go"]
    assert "missing columns: timestamp, level" in handler.stats()["last_error"]
    assert count(db, table) == 0


def _migrate_after_barrier(dsn: str, table: str, barrier: Any, results: Any) -> None:
    with psycopg.connect(dsn) as conn:
        barrier.wait(30)
        try:
            results.put(len(migrate(conn, TableName("public", table), build_indexes=False)))
        except Exception as exc:
            results.put(repr(exc))


def test_processes_migrating_at_once_migrate_once(
    pg_dsn: str, db: psycopg.Connection[Any], table: str
) -> None:
    """Four processes adopting the same hand-made table together: one does the work."""
    hand_made(db, table)
    outcomes = sorted(map(str, at_once(_migrate_after_barrier, pg_dsn, table, processes=4)))
    assert outcomes[:3] == ["0", "0", "0"]
    assert int(outcomes[3]) > 0


def test_retention_days_prunes_in_the_background(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """With retention_days=30 the writer deletes rows older than that, between batches, and
    counts them; newer rows stay."""
    handler = make_handler(retention_days=30)
    assert handler.check_database() is None  # creates the table
    db.execute(
        f'INSERT INTO "{table}" (timestamp, level, logger_name, message, hostname)'
        " SELECT now() - interval '31 days', 'INFO', 'old', 'old ' || i, 'h'"
        " FROM generate_series(1, 25000) i"
    )
    logger.addHandler(handler)
    logger.info("today")
    assert handler.flush(10)
    logger.info("also today")
    deadline = time.monotonic() + 30
    while handler.stats()["pruned"] < 25_000:  # three batches of 10,000, between writes
        assert time.monotonic() < deadline, handler.stats()
        threading.Event().wait(0.01)
    assert [m for (m,) in fetch(db, table, "message")] == ["today", "also today"]


def as_schema_1(
    db: psycopg.Connection[Any], table: str, partition: str | None, engine: Engine | None = None
) -> TableName:
    """A table as pglog 0.1 (schema 1) made it (on ``engine``), with an old error and an old
    warning."""
    name = TableName("public", table)
    migrate(db, name, build_indexes=False, partition=partition, engine=engine)
    for what in ("errors", "fingerprint", "legacy_errors", "search"):
        db.execute(f'DROP INDEX IF EXISTS "{name.index_name(what)}"')
    db.execute(
        f'ALTER TABLE "{table}" DROP COLUMN template, DROP COLUMN levelno, DROP COLUMN fingerprint'
    )
    mark = "pglog:schema=1" + (f" partition={partition}" if partition else "")
    db.execute(f"COMMENT ON TABLE \"{table}\" IS '{mark}'")
    db.execute(
        f'INSERT INTO "{table}" (timestamp, level, logger_name, hostname, message, exception)'
        " VALUES (now() - interval '2 hours', 'ERROR', 'old.shop', 'shop-1', 'payment 7 failed',"
        ' \'Traceback (most recent call last):\n  File "/srv/shop.py", line 3, in pay\n'
        "ValueError: bad'), (now() - interval '2 hours', 'WARNING', 'old.shop', 'shop-1', 'slow',"
        " NULL)"
    )
    return name


@pytest.mark.parametrize("partition", [None, "day"])
def test_a_schema_1_table_becomes_schema_3_and_its_rows_keep_working(
    partition: str | None, pg_dsn: str, db: psycopg.Connection[Any], table: str
) -> None:
    """pglog migrate adds the columns (NULL in old rows) and the indexes, plain or
    partitioned; old rows are still found by level and counted among the errors, and new
    rows get their level number and kind."""
    name = as_schema_1(db, table, partition)
    steps = migrate(db, name, build_indexes=True)
    assert "added template, levelno, fingerprint (NULL in older rows)" in steps
    assert f"public.{table}: schema 1 -> pglog schema 3" in steps
    state = inspect_table(db, name)
    assert state.version == SCHEMA_VERSION == 3
    assert state.missing_indexes == []
    assert state.period == partition
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05)
    log = logging.getLogger(f"new.{table}")
    log.addHandler(handler)
    log.error("payment %s failed", 8)
    assert handler.flush(10)
    handler.close()
    assert fetch(db, table, "level, levelno, template", "logger_name <> 'old.shop'") == [
        ("ERROR", 40, "payment %s failed")
    ]
    clause, params = Filter.parse(level="WARNING", since="1d").clause()
    found = db.execute(
        sql.SQL("SELECT message FROM {} WHERE {} ORDER BY id").format(name.identifier, clause),
        params,
    ).fetchall()
    assert found == [("payment 7 failed",), ("slow",), ("payment 8 failed",)]
    now = dt.datetime.now(dt.timezone.utc)
    kinds = errors(db, name, Filter(since=now - dt.timedelta(days=1), until=now))
    assert {(group.kind, group.count, group.new) for group in kinds.groups} == {
        ("old.shop: payment 7 failed", 1, None),
        (f"new.{table}: payment %s failed", 1, True),
    }


def test_a_schema_1_table_without_create_table_is_refused_clearly(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """A handler that may not migrate finds a schema 1 table: it changes nothing, its
    records go to the fallback, and the reason says what to run."""
    as_schema_1(db, table, None)
    fallback = ListHandler()
    handler = make_handler(create_table=False, fallback=fallback)
    logger.addHandler(handler)
    logger.info("not yet")
    handler.flush(10)
    assert fallback.messages(logger.name) == ["not yet"]
    assert (
        "lacks the columns of pglog schema 3 (template, levelno, fingerprint):"
        " `pglog migrate` adds them" in handler.stats()["last_error"]
    )
    assert inspect_table(db, TableName("public", table)).version == 1
