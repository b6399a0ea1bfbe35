"""Writer reports: what a process knows about its writer, visible from outside it."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import wait_until
from test_cli import pglog

from pglog._table import reports as writer


def reports(db: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT process_id, stopped, stats FROM pglog_writers WHERE log_table = %s", (table,)
    ).fetchall()


def reported_stats(db: psycopg.Connection[Any], table: str) -> dict[str, Any]:
    """The stats of the table's one writer, as last reported (empty before any report)."""
    found = reports(db, table)
    return found[0][2] if found else {}


def last_reported(db: psycopg.Connection[Any], table: str) -> Any:
    found = db.execute("SELECT reported FROM pglog_writers WHERE log_table = %s", (table,))
    return found.fetchone()


def test_a_running_writer_reports_and_says_when_it_stopped(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    db: psycopg.Connection[Any],
    table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While it runs, the writer's row carries its counters and a write rate; after close
    it says it stopped, with the final count, which is what the table holds."""
    monkeypatch.setattr(writer, "REPORT_EVERY", 0.05)
    handler = make_handler()
    logger.addHandler(handler)
    for i in range(500):
        logger.info("record %d", i)
    assert handler.flush(10)
    wait_until(lambda: reported_stats(db, table).get("written") == 500, "a report of 500 written")
    [(_, stopped, stats)] = reports(db, table)
    assert not stopped
    assert stats["enqueued"] == 500
    assert stats["batches"] >= 1
    assert stats["last_write"] is not None
    assert "rows_per_second" in handler.stats()
    for i in range(500, 600):
        logger.info("record %d", i)
    handler.close()
    [(_, stopped, stats)] = reports(db, table)
    assert stopped
    assert stats["written"] == 600 == handler.stats()["written"]
    assert stats["failing_since"] is None
    assert "failing_for_s" not in stats
    count = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    assert count == (600,)


def test_the_write_rate_is_measured(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rows_per_second: what was written over the last reporting interval, so it falls back
    to nothing when the application goes quiet (a lifetime average would not)."""
    monkeypatch.setattr(writer, "REPORT_EVERY", 0.2)
    handler = make_handler()
    logger.addHandler(handler)
    for i in range(2000):
        logger.info("record %d", i)
    assert handler.flush(10)
    wait_until(lambda: handler.stats()["rows_per_second"] > 0, "a measured rate")
    wait_until(lambda: handler.stats()["rows_per_second"] == 0, "the rate of a quiet interval")
    assert handler.stats()["written"] == 2000


def test_health_lists_writers_and_fails_on_one_gone_silent(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    pg_dsn: str,
    db: psycopg.Connection[Any],
    table: str,
) -> None:
    """pglog health shows each writer's last report; a writer that stopped reporting
    without saying it stopped makes it unhealthy (exit 4), naming the writer."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("one")
    handler.close()
    healthy = pglog("health", "--dsn", pg_dsn, "--table", table)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "writers reporting in the last 1h: 1" in healthy.stdout
    assert "stopped, reported" in healthy.stdout
    assert "written 1 (" in healthy.stdout
    stats = {"queue_depth": 250, "written": 10, "last_error": None}
    db.execute(
        "INSERT INTO pglog_writers (log_table, hostname, process_id, started, reported, stats)"
        " VALUES (%s, 'web-3', 4242, now() - interval '1 hour', now() - interval '5 minutes',"
        " %s)",
        (table, json.dumps(stats)),
    )
    db.execute(
        "INSERT INTO pglog_writers (log_table, hostname, process_id, started, reported, stats)"
        " VALUES (%s, 'cron-1', 77, now() - interval '1 hour', now() - interval '5 minutes',"
        " %s)",
        (table, json.dumps({"queue_depth": 0, "written": 3})),
    )
    silent = pglog("health", "--dsn", pg_dsn, "--table", table)
    assert silent.returncode == 4, silent.stdout + silent.stderr
    assert "unhealthy: writer web-3:4242 has not reported for 5 min" in silent.stdout
    assert "(its queue held 250 records)" in silent.stdout
    # a writer that went quiet with nothing to write (its process ended without close,
    # its idle connection was closed) is listed, not a problem
    assert "cron-1:77 gone quiet, idle when last heard of" in silent.stdout
    assert "writer cron-1:77" not in silent.stdout


def test_a_failing_writer_says_since_when_and_health_fails_on_it(  # noqa: PLR0917
    make_handler: HandlerFactory,
    logger: logging.Logger,
    pg_dsn: str,
    db: psycopg.Connection[Any],
    table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A writer whose batches all fail (a trigger reading a missing table) still reports,
    with the time its failures began; health calls it unhealthy once that is long ago."""
    monkeypatch.setattr(writer, "REPORT_EVERY", 0.05)
    handler = make_handler(fallback=logging.NullHandler())
    assert handler.check_database() is None
    db.execute(
        f"""CREATE FUNCTION "{table}_refuse"() RETURNS trigger LANGUAGE plpgsql AS"""
        " $$ BEGIN PERFORM * FROM no_such_table_at_all; RETURN NEW; END $$"
    )
    db.execute(
        f'CREATE TRIGGER refuse BEFORE INSERT ON "{table}"'
        f' FOR EACH ROW EXECUTE FUNCTION "{table}_refuse"()'
    )
    try:
        logger.addHandler(handler)
        logger.info("refused")
        handler.flush(10)

        wait_until(
            lambda: reported_stats(db, table).get("failing_for_s") is not None,
            "a report of the failure",
        )
        assert handler.stats()["fallback"] == 1
        monkeypatch.setattr(writer, "REPORT_EVERY", 3600.0)
        before = last_reported(db, table)
        wait_until(lambda: last_reported(db, table) > before, "one report more, the last for now")
        db.execute(
            "UPDATE pglog_writers SET stats = jsonb_set(stats, '{failing_for_s}', '600')"
            " WHERE log_table = %s",
            (table,),
        )
        failing = pglog("health", "--dsn", pg_dsn, "--table", table)
        assert failing.returncode == 4, failing.stdout + failing.stderr
        assert "has failed to write for 10 min: UndefinedTable" in failing.stdout
    finally:
        handler.close()
        db.execute(f'DROP FUNCTION "{table}_refuse"() CASCADE')
