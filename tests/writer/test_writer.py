"""writer: the loop's promises, seen through a real handler and a real table: when it
writes a batch, how many batches one transaction carries under a backlog, and how drops
are reported.

Which transaction wrote a row is its ``xmin``: rows that share one went in one COPY.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import psycopg
from conftest import HandlerFactory
from faultproxy import FaultProxy
from helpers import ListHandler, attach, make_table, stored, stored_count, wait_until
from pgserver import PostgresServer
from psycopg import sql

from pglog._writer.writer import BACKLOG_BATCHES, DROP_REPORT_INTERVAL

Conn = psycopg.Connection[tuple[Any, ...]]

#: Longer than any test here runs: a write seen before it is not the timer's.
NEVER = 3600.0


def transactions(conn: Conn, table: str) -> list[int]:
    """How many rows each transaction wrote into ``table``, in the order they were written."""
    query = sql.SQL("SELECT count(*) FROM {} GROUP BY xmin::text ORDER BY min(id)").format(
        sql.Identifier(table)
    )
    return [int(n) for (n,) in conn.execute(query).fetchall()]


def test_a_full_batch_is_written_at_once_and_the_rest_waits_for_a_flush(
    make_handler: HandlerFactory, logger: logging.Logger, pg_dsn: str, db: Conn, table: str
) -> None:
    """batch_size 10, flush_interval an hour, the writer connected: of 13 records, the full
    batch is written as soon as it fills, in a transaction of its own; the 3 left over stay
    queued (no timer has run out) until flush() writes them."""
    handler = make_handler(batch_size=10, flush_interval=NEVER)
    logger.addHandler(handler)
    logger.info("setup")
    assert handler.flush(30)
    for i in range(13):  # fewer than two batches: no backlog, so one batch a transaction
        logger.info("record %d", i)
    wait_until(lambda: stored_count(pg_dsn, table) == 11, "the full batch", timeout=60)
    stats = handler.stats()
    assert (stats["written"], stats["pending"]) == (11, 3)
    assert transactions(db, table) == [1, 10]
    assert handler.flush(30)
    assert transactions(db, table) == [1, 10, 3]
    assert stored(pg_dsn, table) == ["setup", *(f"record {i}" for i in range(13))]


def test_a_partial_batch_is_written_when_flush_interval_runs_out(
    make_handler: HandlerFactory, logger: logging.Logger, pg_dsn: str, db: Conn, table: str
) -> None:
    """batch_size 1000 and 3 records: nobody flushes, the batch never fills, and the
    records are written by the timer (flush_interval 0.2 s), in one transaction."""
    handler = make_handler(batch_size=1000, flush_interval=0.2)
    logger.addHandler(handler)
    for i in range(3):
        logger.info("record %d", i)
    wait_until(lambda: stored_count(pg_dsn, table) == 3, "the timer's batch", timeout=60)
    assert transactions(db, table) == [3]
    assert handler.stats()["pending"] == 0


def test_under_a_backlog_several_batches_go_in_one_transaction(
    make_handler: HandlerFactory, logger: logging.Logger, pg_dsn: str, db: Conn, table: str
) -> None:
    """The table is locked while a batch of 10 is being written and 490 more records
    arrive: once the lock goes, the backlog is written BACKLOG_BATCHES batches to a
    transaction (100 rows), and the last one takes what is left of it (90)."""
    handler = make_handler(batch_size=10, flush_interval=NEVER, write_timeout=120)
    logger.addHandler(handler)
    logger.info("setup")
    assert handler.flush(30)
    db.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
    with psycopg.connect(pg_dsn) as locker:
        locker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table))
        )
        for i in range(10):
            logger.info("record %d", i)
        wait_until(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                    (table,),
                ).fetchone()
                == (1,)
            ),
            "the writer to wait for the lock",
            timeout=60,
        )
        for i in range(10, 500):
            logger.info("record %d", i)
    assert handler.flush(60)
    assert transactions(db, table) == [10, *[10 * BACKLOG_BATCHES] * 4, 90]
    assert stored(pg_dsn, table) == [f"record {i}" for i in range(500)]


def test_drops_are_reported_with_their_count_at_most_every_drop_report_interval(
    server: PostgresServer, proxy: FaultProxy, logger: logging.Logger
) -> None:
    """The database is away, the queue holds 50: records logged in two bursts overflow.
    Each report says how many were dropped since the last; reports come at least
    DROP_REPORT_INTERVAL apart; their counts add up to what stats() counts."""
    make_table(server.dsn)
    fallback = ListHandler()
    handler, _ = attach(
        logger, proxy.dsn, queue_size=50, batch_size=10, fallback=fallback, close_timeout=1
    )

    def reports() -> list[logging.LogRecord]:
        return [r for r in fallback.records if "pglog dropped" in r.getMessage()]

    try:
        logger.info("first")
        assert handler.flush(30)
        proxy.refuse()
        for i in range(200):
            logger.info("burst one %d", i)
        wait_until(reports, "the first report", timeout=60)
        for i in range(300):
            logger.info("burst two %d", i)
        wait_until(lambda: len(reports()) >= 2, "the second report", timeout=60)
        running = reports()
    finally:
        proxy.refuse(False)
        handler.close()
    said = reports()  # and the last, at close, of what was dropped since
    counts = [int(r.getMessage().split()[2]) for r in said]
    dropped = handler.stats()["dropped"]
    assert sum(counts) == dropped
    assert dropped >= 200 + 300 - 50 - 10  # all but what the queue and the batch in flight hold
    assert all("(50 records, overflow='drop_oldest')" in r.getMessage() for r in said)
    gaps = [b.created - a.created for a, b in itertools.pairwise(running)]
    assert all(gap >= DROP_REPORT_INTERVAL - 0.01 for gap in gaps), gaps
