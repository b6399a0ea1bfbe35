"""search: --grep finds a text in the message, the exception or extra_data, by an index."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pglog import DatabaseLogHandler
from pglog._table.filters import Filter
from pglog._table.migrate import inspect_table, migrate
from pglog._table.schema import TableName

PGLOG = str(Path(sys.executable).parent / "pglog")


def grep(dsn: str, table: str, *options: str) -> list[str]:
    result = subprocess.run(
        [PGLOG, "query", "--dsn", dsn, "--table", table, "--format", "jsonl", *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["message"] for line in result.stdout.splitlines()]


def test_grep_finds_text_in_the_message_the_traceback_and_the_extras(
    pg_dsn: str, table: str
) -> None:
    """A word deep in a stored traceback, an extra value, a message: each is found, in
    any case; a text that is nowhere finds nothing."""
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05)
    log = logging.getLogger(f"search.{table}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    try:
        raise RuntimeError("DeadlockDetected while updating orders")
    except RuntimeError:
        log.exception("transaction failed")
    log.info("order placed", extra={"customer": "Jürgen Müller", "request_id": "req-77"})
    log.warning("payment deadline near")
    assert handler.flush(10)
    handler.close()
    assert grep(pg_dsn, table, "--grep", "deadlockdetected") == ["transaction failed"]
    assert grep(pg_dsn, table, "--grep", "JÜRGEN") == ["order placed"]
    assert grep(pg_dsn, table, "--grep", "dead") == ["transaction failed", "payment deadline near"]
    assert grep(pg_dsn, table, "--grep", "100%_sure") == []
    assert grep(pg_dsn, table, "--request", "req-77") == ["order placed"]


def _plan(db: psycopg.Connection[Any], table: TableName, where: Filter) -> str:
    clause, params = where.clause()
    query = sql.SQL("EXPLAIN SELECT id FROM {} WHERE {}").format(table.identifier, clause)
    return "\n".join(str(row[0]) for row in db.execute(query, params))


def test_a_search_reads_the_rows_that_hold_the_text_through_the_index(
    db: psycopg.Connection[Any], table: str
) -> None:
    """On a table of many rows, a rare word, a request id and an extra string are looked
    up in the trigram index, not read row by row."""
    name = TableName("public", table)
    migrate(db, name, build_indexes=False)
    db.execute(
        sql.SQL(
            'INSERT INTO {} ("timestamp", level, logger_name, message, extra_data)'
            " SELECT now() - i * interval '1 second', 'INFO', 'app', 'GET /orders/' || i,"
            " jsonb_build_object('request_id', 'req-' || i) FROM generate_series(1, 30000) i"
        ).format(name.identifier)
    )
    db.execute(sql.SQL("VACUUM ANALYZE {}").format(name.identifier))  # as autovacuum would
    index = name.index_name("search")
    for where in (
        Filter.parse(grep="DeadlockDetected"),
        Filter.parse(request="req-12345"),
        Filter.parse(where=['extra.request_id="req-4242"']),
    ):
        assert f"Bitmap Index Scan on {index}" in _plan(db, name, where)


@pytest.fixture
def without_extension(pg_dsn: str, db: psycopg.Connection[Any]) -> Iterator[str]:
    """A database without pg_trgm, and the DSN of a role that may make tables in it but
    not extensions."""
    database, role = f"d_{uuid.uuid4().hex[:10]}", f"r_{uuid.uuid4().hex[:10]}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    owner = make_conninfo(pg_dsn, dbname=database)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    yield make_conninfo(pg_dsn, dbname=database, user=role)
    db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
    db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_without_pg_trgm_the_table_works_and_migrate_says_why(without_extension: str) -> None:
    """The role can't create the extension: pglog init says so, makes the table without
    the index, and a search still finds what it looks for (reading the rows)."""
    init = subprocess.run(
        [PGLOG, "init", "--dsn", without_extension, "--table", "logs"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    with psycopg.connect(without_extension) as conn:
        state = inspect_table(conn, TableName("public", "logs"))
        steps = migrate(conn, TableName("public", "logs"), build_indexes=True)
    assert state.missing_indexes == ["search"]
    (note,) = [step for step in steps if "search index" in step]
    assert note.startswith("no search index on public.logs: pg_trgm can't be used (")
    assert "permission denied" in note
    assert note.endswith("then pglog migrate builds the index")
    handler = DatabaseLogHandler(without_extension, table="logs", flush_interval=0.05)
    log = logging.getLogger("search.without")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    log.info("found anyway", extra={"word": "needle"})
    assert handler.flush(10)
    handler.close()
    assert grep(without_extension, "logs", "--grep", "NEEDLE") == ["found anyway"]
