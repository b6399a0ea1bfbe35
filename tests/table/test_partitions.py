"""Partitioned tables: made ahead, never refusing a row, retention by dropping partitions."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import ListHandler, at_once, count, fetch

from pglog import DatabaseLogHandler
from pglog._table.partitions import (
    AHEAD,
    BEHIND,
    default_name,
    ensure_ahead,
    make,
    next_start,
    partition_name,
    partitions,
    period_start,
)
from pglog._table.schema import TableName

UTC = dt.timezone.utc


def log_at(logger: logging.Logger, moment: dt.datetime, message: str) -> None:
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, (), None)
    record.created = moment.timestamp()
    logger.handle(record)


@pytest.mark.parametrize(
    ("period", "moment", "start", "end", "suffix"),
    [
        ("day", "2026-11-23T17:05", "2026-11-23", "2026-11-24", "p2026_11_23"),
        ("week", "2026-11-26T01:00", "2026-11-23", "2026-11-30", "p2026_11_23"),  # Monday
        ("month", "2026-12-31T23:59", "2026-12-01", "2027-01-01", "p2026_12"),
    ],
)
def test_partition_ranges_and_names_follow_pg_partman(
    period: str, moment: str, start: str, end: str, suffix: str
) -> None:
    """Day, week (from Monday) and month ranges in UTC, named the way pg_partman names them."""
    begins = period_start(dt.datetime.fromisoformat(moment).replace(tzinfo=UTC), period)
    assert begins == dt.datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert next_start(begins, period) == dt.datetime.fromisoformat(end).replace(tzinfo=UTC)
    assert partition_name(TableName("public", "logs"), begins, period) == f"logs_{suffix}"


def test_a_partitioned_table_is_made_with_partitions_ahead(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """partition='day': a range-partitioned table, a default partition, and partitions from
    yesterday to three days ahead; today's records land in today's partition."""
    handler = make_handler(partition="day")
    logger.addHandler(handler)
    logger.info("today")
    assert handler.flush(10)
    name = TableName("public", table)
    kind = db.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", (f'"{table}"',))
    assert kind.fetchone() == ("p",)
    found = partitions(db, name)
    today = period_start(dt.datetime.now(UTC), "day")
    assert [p.start for p in found if p.start] == [
        today + dt.timedelta(days=n) for n in range(-BEHIND, AHEAD + 1)
    ]
    assert found[-1].name == default_name(name)
    assert fetch(db, table, "tableoid::regclass::text") == [(partition_name(name, today, "day"),)]


def test_records_from_any_date_land(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """The far past and the far future have no partition: the default one takes them."""
    handler = make_handler(partition="month")
    logger.addHandler(handler)
    log_at(logger, dt.datetime(1990, 1, 1, tzinfo=UTC), "1990")
    log_at(logger, dt.datetime(2100, 1, 1, tzinfo=UTC), "2100")
    logger.info("now")
    assert handler.flush(10)
    where = dict(fetch(db, table, "message, tableoid::regclass::text"))
    assert where["1990"] == where["2100"] == default_name(TableName("public", table))
    assert where["now"] != where["1990"]
    assert handler.stats()["written"] == 3


def test_a_partition_made_later_takes_its_rows_out_of_the_default(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    db: psycopg.Connection[Any],
    pg_dsn: str,
    table: str,
) -> None:
    """A record ten days ahead lands in the default partition; when its period's partition is
    made (as maintenance would, nine days on) the record moves into it."""
    handler = make_handler(partition="day")
    logger.addHandler(handler)
    later = dt.datetime.now(UTC) + dt.timedelta(days=10)
    log_at(logger, later, "early bird")
    assert handler.flush(10)
    name = TableName("public", table)
    assert fetch(db, table, "tableoid::regclass::text") == [(default_name(name),)]
    with psycopg.connect(pg_dsn) as conn:
        made = ensure_ahead(conn, name, "day", later - dt.timedelta(days=1))
    assert made
    assert fetch(db, table, "tableoid::regclass::text, message") == [
        (partition_name(name, period_start(later, "day"), "day"), "early bird")
    ]


def test_retention_drops_whole_partitions(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    db: psycopg.Connection[Any],
    pg_dsn: str,
    table: str,
) -> None:
    """retention_days=30 drops the partitions older than that (constant time, counted), and
    deletes the old rows that sit in the default partition; recent rows stay."""
    name = TableName("public", table)
    setup = make_handler(partition="day")
    assert setup.check_database() is None
    old = period_start(dt.datetime.now(UTC) - dt.timedelta(days=40), "day")
    with psycopg.connect(pg_dsn) as conn:
        for days in range(3):
            make(conn, name, "day", old + dt.timedelta(days=days))
    db.execute(
        f'INSERT INTO "{table}" (timestamp, level, logger_name, message)'
        " SELECT %s::timestamptz + (i %% 3) * interval '1 day' + interval '1 hour',"
        " 'INFO', 'old', 'old ' || i FROM generate_series(1, 3000) i",
        (old,),
    )
    db.execute(
        f'INSERT INTO "{table}" (timestamp, level, logger_name, message)'
        " VALUES (now() - interval '2 years', 'INFO', 'ancient', 'in the default partition')"
    )
    handler = make_handler(partition="day", retention_days=30)
    logger.addHandler(handler)
    logger.info("recent")
    assert handler.flush(10)
    deadline = dt.datetime.now(UTC) + dt.timedelta(seconds=30)
    while handler.stats()["partitions_dropped"] < 3 or handler.stats()["pruned"] < 1:
        assert dt.datetime.now(UTC) < deadline, handler.stats()
        logger.info("nudge")  # the writer does its upkeep between batches
        assert handler.flush(10)
    assert count(db, table) == len(fetch(db, table, "id", "logger_name <> 'old'"))
    assert not [p for p in partitions(db, name) if p.start and p.start < old + dt.timedelta(days=3)]
    assert fetch(db, table, "message", "logger_name = 'ancient'") == []


def _start_and_log(dsn: str, table: str, barrier: Any, results: Any) -> None:
    fallback = ListHandler()
    handler = DatabaseLogHandler(
        dsn, table=table, partition="day", flush_interval=0.05, fallback=fallback
    )
    log = logging.getLogger(f"starter.{table}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    barrier.wait(30)
    for i in range(50):
        log.info("record %d", i)
    handler.close()
    results.put((handler.stats()["written"], len(fallback.records)))


def test_processes_starting_together_on_a_new_partitioned_table(
    pg_dsn: str, db: psycopg.Connection[Any], table: str
) -> None:
    """Six processes create the same partitioned table and its partitions at once while
    their first batches land: every record is stored, none goes to the fallback (not even
    a warning), and no row is left in the default partition."""
    outcomes = at_once(_start_and_log, pg_dsn, table, processes=6, timeout=90)
    assert outcomes == [(50, 0)] * 6
    assert count(db, table) == 300
    assert count(db, default_name(TableName("public", table))) == 0
