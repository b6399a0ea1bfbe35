"""Both engines' layouts, made and upgraded: the YAML's ``logging.database.engine`` makes the
table a Citus distributed table or a TimescaleDB hypertable (through the options spec,
as the handler's ``engine``); and ``pglog migrate`` takes a schema 1 table on either
engine (a hypertable's chunks all compressed) to schema 3 (columns added, indexes built
on every shard or chunk), keeping it on its engine; its old rows are still read, and a
handler's new rows get schema 3's values."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from engines import CitusCluster, TimescaleServer
from psycopg import sql
from table.test_migrate import as_schema_1
from test_cli import pglog

from engine_layouts.test_timescale import compress_all, compressed
from pglog import DatabaseLogHandler, get_logger, initialize_logger, shutdown_logging
from pglog._table import layout
from pglog._table.errors import errors
from pglog._table.filters import Filter
from pglog._table.migrate import SCHEMA_VERSION, inspect_table
from pglog._table.schema import TableName


@pytest.fixture(params=["citus", "timescaledb"])
def engine(request: pytest.FixtureRequest) -> tuple[layout.Engine, str]:
    """(engine, DSN) of the session's Citus coordinator or TimescaleDB server."""
    server: CitusCluster | TimescaleServer = request.getfixturevalue(
        "citus" if request.param == "citus" else "timescale"
    )
    return request.param, server.dsn


@pytest.fixture
def table(engine: tuple[layout.Engine, str]) -> Iterator[str]:
    name = f"m_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(engine[1], autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_the_yaml_makes_the_table_on_its_engine(
    engine: tuple[layout.Engine, str], table: str
) -> None:
    """initialize_logger with ``engine`` (and ``retention_days``) in the YAML's database
    section: the table it makes is on that engine, and the records are stored; on a
    hypertable the retention is TimescaleDB's policy."""
    kind, dsn = engine
    settings = {
        "logging": {
            "level": "INFO",
            "database": {"table": table, "engine": kind, "retention_days": 7},
        },
        "database": {"dsn": dsn},
    }
    level = logging.getLogger().level
    assert initialize_logger(settings) is True
    try:
        get_logger(f"yaml.{table}").warning("made from the YAML")
    finally:
        shutdown_logging()
        logging.getLogger().setLevel(level)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert layout.engine_of(conn, TableName("public", table)) == kind
        stored = conn.execute(
            sql.SQL("SELECT message FROM {}").format(sql.Identifier(table))
        ).fetchall()
        assert stored == [("made from the YAML",)]
        if kind == "timescaledb":
            policy = conn.execute(
                "SELECT config->>'drop_after' FROM timescaledb_information.jobs"
                " WHERE hypertable_name = %s AND proc_name = 'policy_retention'",
                (table,),
            ).fetchone()
            assert policy == ("7 days",)


def test_a_schema_1_table_on_an_engine_becomes_schema_3(
    engine: tuple[layout.Engine, str], table: str
) -> None:
    """pglog migrate adds schema 3's columns and indexes to a distributed table or to a
    hypertable of compressed chunks, which stays what it was; old rows are read as before
    and the handler's new rows carry their level number and template."""
    kind, dsn = engine
    name = TableName("public", table)
    with psycopg.connect(dsn, autocommit=True) as conn:
        as_schema_1(conn, table, None, engine=kind)
        if kind == "timescaledb":
            compress_all(conn, table)
            done, chunks = compressed(conn, table)
            assert done == chunks >= 1
    migrated = pglog("migrate", "--dsn", dsn, "--table", table)
    assert migrated.returncode == 0, migrated.stderr
    assert "added template, levelno, fingerprint (NULL in older rows)" in migrated.stdout
    assert f"public.{table}: schema 1 -> pglog schema 3" in migrated.stdout
    with psycopg.connect(dsn, autocommit=True) as conn:
        state = inspect_table(conn, name)
        assert (state.version, state.missing_indexes, state.engine) == (SCHEMA_VERSION, [], kind)
    handler = DatabaseLogHandler(dsn, table=table, flush_interval=0.05, create_table=False)
    log = logging.getLogger(f"new.{table}")
    log.addHandler(handler)
    log.error("payment %s failed", 8)
    assert handler.flush(10)
    handler.close()
    log.removeHandler(handler)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT level, levelno, template FROM {} WHERE logger_name = %s"
                " UNION ALL SELECT level, levelno, template FROM {} WHERE logger_name = 'old.shop'"
                " ORDER BY 1, 2 NULLS FIRST"
            ).format(name.identifier, name.identifier),
            (log.name,),
        ).fetchall()
        assert rows == [
            ("ERROR", None, None),
            ("ERROR", 40, "payment %s failed"),
            ("WARNING", None, None),
        ]
        now = dt.datetime.now(dt.timezone.utc)
        kinds = errors(conn, name, Filter(since=now - dt.timedelta(days=1), until=now))
        assert {(group.kind, group.count) for group in kinds.groups} == {
            ("old.shop: payment 7 failed", 1),
            (f"new.{table}: payment %s failed", 1),
        }
