"""Table and schema names with a % in them, which psycopg would read as a placeholder in any
statement run with parameters: the writer, the CLI and the web view all work on them, on
a plain and on a partitioned table."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import fetch
from psycopg import sql
from test_cli import pglog
from webview.test_api import serving

from pglog._table.schema import TableName
from pglog._web.app import Settings


@pytest.fixture(params=[None, "day"], ids=["plain", "partitioned"])
def partition(request: pytest.FixtureRequest) -> str | None:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def table(db: psycopg.Connection[tuple[Any, ...]]) -> Iterator[str]:
    """A table named like 100%_logs (a % followed by what a placeholder can't be)."""
    name = f"100%_logs_%s_{uuid.uuid4().hex[:8]}"
    yield name
    db.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_a_table_with_a_percent_in_its_name_takes_records_and_serves_every_reader(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    db: psycopg.Connection[Any],
    pg_dsn: str,
    table: str,
) -> None:
    """The handler creates and fills it (making its partitions), and query (with its
    search), tail, errors, stats, export, prune, health and migrate read it, as do the
    endpoints of the web view (the Errors view and a record's context included)."""
    handler = make_handler()
    logger.addHandler(handler)
    for n in range(2):
        logger.warning("record %d", n, extra={"n": n, "request_id": "r-1"})
    logger.error("record %d", 2, extra={"n": 2, "request_id": "r-1"})
    assert handler.flush(10)
    assert handler.stats()["written"] == 3
    assert [m for (m,) in fetch(db, table, "message")] == [f"record {n}" for n in range(3)]
    handler.close()

    target = ("--dsn", pg_dsn, "--table", table)
    query = pglog("query", *target, "--format", "jsonl", "--where", "extra.n>=1")
    assert query.returncode == 0, query.stderr
    assert sorted(json.loads(line)["message"] for line in query.stdout.splitlines()) == [
        "record 1",
        "record 2",
    ]
    found = pglog("query", *target, "--format", "jsonl", "--grep", "RECORD 1", "--request", "r-1")
    assert found.returncode == 0, found.stderr
    assert [json.loads(line)["message"] for line in found.stdout.splitlines()] == ["record 1"]
    errors = pglog("errors", *target, "--format", "jsonl")
    assert errors.returncode == 0, errors.stderr
    assert [json.loads(line)["count"] for line in errors.stdout.splitlines()] == [1]
    for command in (
        ("tail", "-n", "1"),
        ("stats",),
        ("export", "--format", "jsonl"),
        ("prune", "--older-than", "30d"),
        ("health",),
        ("migrate",),
    ):
        result = pglog(*command, *target)
        assert result.returncode == 0, f"{command}: {result.stdout} {result.stderr}"

    for site in serving(Settings(pg_dsn, TableName("public", table))):
        for path, params in (
            ("/api/rows", {}),
            ("/api/live", {"after": 0}),
            ("/api/volume", {"since": "15m"}),
            ("/api/facts", {}),
            ("/api/errors", {"since": "1h"}),
            ("/api/context", {"id": 1, "around": "request"}),
        ):
            answer = site.get(path, **params)
            assert answer.status == 200, (path, answer.body)
        assert len(site.get("/api/rows").json()["rows"]) == 3
        assert len(site.get("/api/rows", grep="record 2").json()["rows"]) == 1
        assert site.get("/api/errors", since="1h").json()["records"] == 1
        assert site.get("/api/facts").json()["estimated_rows"] == 3


def test_a_schema_with_a_percent_in_its_name_works_too(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    db: psycopg.Connection[Any],
    pg_dsn: str,
) -> None:
    """The writer and its reports (pglog_writers, in the same schema) in a schema named
    with a %."""
    schema = f"s%d_{uuid.uuid4().hex[:8]}"
    try:
        handler = make_handler(schema=schema, table="logs")
        logger.addHandler(handler)
        logger.info("in a % schema")
        assert handler.flush(10)
        handler.close()
        found = db.execute(
            sql.SQL("SELECT message FROM {}").format(sql.Identifier(schema, "logs"))
        ).fetchall()
        assert found == [("in a % schema",)]
        result = pglog("health", "--dsn", pg_dsn, "--schema", schema, "--table", "logs")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "writers reporting in the last 1h: 1" in result.stdout
    finally:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
