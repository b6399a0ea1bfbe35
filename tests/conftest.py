"""Fixtures: a real PostgreSQL for the whole session, a fresh table per test; a server of a
test's own, a fault proxy in front of it, and handlers that reach it through the proxy."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from clusters import started
from faultproxy import FaultProxy
from helpers import TABLE, make_table
from pgserver import PostgresServer
from psycopg import sql
from psycopg.conninfo import make_conninfo

from pglog import DatabaseLogHandler
from pglog._embedded import embedded_server

#: Citus and TimescaleDB clusters (citus, own_citus, timescale, own_timescale).
pytest_plugins = ["engines"]


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """$PGLOG_TEST_DSN when set, else a throwaway embedded server for this session."""
    given = os.environ.get("PGLOG_TEST_DSN")
    if given:
        yield given
        return
    with embedded_server() as dsn:
        yield dsn


@pytest.fixture
def db(pg_dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection for looking at what the handler stored."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def table(db: psycopg.Connection[tuple[Any, ...]]) -> Iterator[str]:
    """A table name no other test uses; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    db.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def recipe_dsn(db: psycopg.Connection[tuple[Any, ...]], pg_dsn: str) -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards.

    The recipes use pglog's defaults (the table ``logs``, the DSN from $PGLOG_DSN),
    exactly as a user would copy them; a database per test keeps their tables apart.
    """
    name = f"recipe_{uuid.uuid4().hex[:12]}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(pg_dsn, dbname=name)
    finally:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def own_schema(db: psycopg.Connection[tuple[Any, ...]]) -> Iterator[str]:
    """A schema of this test's own (with its own pglog_writers); dropped afterwards."""
    name = f"s_{uuid.uuid4().hex[:12]}"
    db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    db.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


HandlerFactory = Callable[..., DatabaseLogHandler]


@pytest.fixture
def partition() -> str | None:
    """The table layout handlers get: plain here; modules that prove both layouts
    override this with a parametrised fixture."""
    return None


def built(dsn: str, **defaults: Any) -> Iterator[HandlerFactory]:
    """A factory of handlers on ``dsn`` (another given as ``dsn=``) with ``defaults`` for
    what a test does not say; each closed once the test is done."""
    made: list[DatabaseLogHandler] = []

    def make(**options: Any) -> DatabaseLogHandler:
        handler = DatabaseLogHandler(options.pop("dsn", dsn), **{**defaults, **options})
        made.append(handler)
        return handler

    yield make
    for handler in made:
        handler.close()


@pytest.fixture
def make_handler(pg_dsn: str, table: str, partition: str | None) -> Iterator[HandlerFactory]:
    """Builds handlers on the test's table (closed at teardown), fast to flush."""
    yield from built(pg_dsn, table=table, flush_interval=0.05, partition=partition)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A private logger at DEBUG that doesn't propagate to the root."""
    log = logging.getLogger(f"test.{uuid.uuid4().hex[:8]}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, to stop, kill and restart at will."""
    with started(PostgresServer()) as owned:
        yield owned


@pytest.fixture
def proxy(server: PostgresServer) -> Iterator[FaultProxy]:
    """A proxy in front of ``server`` that cuts connections when told to."""
    between = FaultProxy(server.port)
    yield between
    between.close()


@pytest.fixture
def admin(server: PostgresServer) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection to ``server``, for the test to alter or look into it."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def through_proxy(server: PostgresServer, proxy: FaultProxy) -> Iterator[HandlerFactory]:
    """Builds handlers that reach ``server`` through ``proxy``, on its table ``logs`` (made
    first, so that a handler started while the proxy refuses finds it), fast to flush;
    closed at teardown."""
    make_table(server.dsn)
    yield from built(proxy.dsn, table=TABLE, flush_interval=0.05)
