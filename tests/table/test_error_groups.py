"""Errors by kind: ``pglog errors`` and the grouping behind it (``_table.errors``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

import psycopg
import pytest
from psycopg import sql
from test_cli import pglog

from pglog import DatabaseLogHandler


def _pay(order: int) -> None:
    raise ValueError(f"invalid amount for order {order}")


@pytest.fixture
def failing(pg_dsn: str, table: str, db: psycopg.Connection[Any]) -> str:
    """Three kinds of error logged now (a traceback raised in _pay three times, a timeout
    logged with a template twice, an f-string error once) beside a warning, and the
    timeout also seen two days ago."""
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05)
    log = logging.getLogger(f"shop.{table}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    for order in (1, 2, 3):
        try:
            _pay(order)
        except ValueError:
            log.exception("payment for order %d failed", order, extra={"order": order})
    for attempt in (1, 2):
        log.error("timeout talking to %s after %d ms", "db-2", 5000 + attempt)
    log.critical(f"disk {7} of host-{3} is full")
    log.warning("slow request")
    assert handler.flush(10)
    handler.close()
    db.execute(
        sql.SQL(
            'INSERT INTO {} ("timestamp", level, levelno, logger_name, message, template,'
            " fingerprint) VALUES (now() - interval '2 days', 'ERROR', 40, %s, %s, %s, %s)"
        ).format(sql.Identifier(table)),
        (
            log.name,
            "timeout talking to db-2 after 4000 ms",
            "timeout talking to %s after %d ms",
            f"{log.name}: timeout talking to %s after %d ms",
        ),
    )
    return log.name


def test_errors_are_grouped_by_kind_with_counts_and_what_is_new(
    pg_dsn: str, table: str, failing: str
) -> None:
    """jsonl: one line per kind, the most frequent first, with count, first and last seen,
    a stored row's id, and whether the kind is new in the range (the timeout is not: it
    was seen two days ago)."""
    result = pglog("errors", "--dsn", pg_dsn, "--table", table, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    groups = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(g["kind"], g["count"], g["new"]) for g in groups] == [
        ("ValueError in table/test_error_groups.py, _pay", 3, True),
        (f"{failing}: timeout talking to %s after %d ms", 2, False),
        (f"{failing}: disk <n> of host-<n> is full", 1, True),
    ]
    payment = groups[0]
    assert payment["message"] == "payment for order 3 failed"
    assert payment["error"] == "ValueError: invalid amount for order 3"
    assert dt.datetime.fromisoformat(payment["first_seen"]) <= dt.datetime.fromisoformat(
        payment["last_seen"]
    )
    assert sum(payment["trend"]) == 3
    assert payment["trend"][-1] == 3
    rows = pglog(
        "query", "--dsn", pg_dsn, "--table", table, "--format", "jsonl", "--kind", payment["kind"]
    )
    found = [json.loads(line) for line in rows.stdout.splitlines()]
    assert [row["message"] for row in found] == [f"payment for order {n} failed" for n in (1, 2, 3)]
    assert payment["sample_id"] in {row["id"] for row in found}


def test_errors_in_text_say_the_range_the_kinds_and_mark_the_new(
    pg_dsn: str, table: str, failing: str
) -> None:
    """Text: the range (labelled with its zone), one kind per entry with its count, a
    trend, NEW where it is, and a sample; filters narrow it; an older range finds the
    timeout of two days ago alone."""
    result = pglog("errors", "--dsn", pg_dsn, "--table", table, "--utc")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.match(
        rf"public\.{table}: 6 error records of 3 kinds, \S+ \S+ UTC to \S+ \S+ UTC\n", out
    )
    assert re.search(
        r"^\s+3  \S+ \S+ UTC\s+\S+  ValueError in table/test_error_groups.py, _pay  NEW$",
        out,
        re.M,
    )
    assert re.search(r"timeout talking to %s after %d ms$", out, re.M)  # not new
    assert "payment for order 3 failed  | ValueError: invalid amount for order 3" in out
    critical = pglog("errors", "--dsn", pg_dsn, "--table", table, "--level", "CRITICAL")
    assert "1 error records of 1 kinds" in critical.stdout
    before = pglog(
        "errors",
        "--dsn",
        pg_dsn,
        "--table",
        table,
        "--since",
        "3d",
        "--until",
        "1d",
        "--format",
        "jsonl",
    )
    (old,) = [json.loads(line) for line in before.stdout.splitlines()]
    assert (old["kind"], old["count"], old["new"]) == (
        f"{failing}: timeout talking to %s after %d ms",
        1,
        True,
    )
