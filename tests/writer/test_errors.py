"""What the server says decides what happens: retry, recreate, isolate the row, or fall back.

Each test provokes one kind of error on a server of its own and ends by comparing what
was emitted with what was stored and what the fallback received.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
from faultproxy import FaultProxy
from helpers import (
    INSERT_ONLY,
    TABLE,
    attach,
    grant_insert_only,
    make_table_as_a_writer_does,
    stored,
)
from pgserver import PostgresServer


@pytest.fixture
def log(logger: logging.Logger) -> logging.Logger:
    """This module's name for the private logger of conftest."""
    return logger


def test_a_row_the_table_refuses_never_sinks_its_batch_mates(
    server: PostgresServer, admin: psycopg.Connection[Any], log: logging.Logger
) -> None:
    """A CHECK constraint refuses one record of a batch: the other 99 are stored, it goes to
    the fallback, and the report says why."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    admin.execute(f"ALTER TABLE {TABLE} ADD CHECK (message NOT LIKE '%forbidden%')")
    handler, fallback = attach(log, server.dsn, batch_size=100, flush_interval=30)
    emitted = [f"record {i}" if i != 37 else "a forbidden record" for i in range(100)]
    for message in emitted:
        log.info(message)
    assert handler.flush(30)
    assert stored(server.dsn, TABLE) == [m for m in emitted if "forbidden" not in m]
    assert fallback.messages(log.name) == ["a forbidden record"]
    assert any("CheckViolation" in m for m in fallback.messages("pglog"))
    stats = handler.stats()
    assert (stats["written"], stats["fallback"], stats["pending"]) == (99, 1, 0)
    handler.close()


def test_a_row_refused_as_it_is_but_accepted_escaped_is_stored_escaped(
    server: PostgresServer, admin: psycopg.Connection[Any], log: logging.Logger
) -> None:
    """A column narrower than pglog's (a hand-made table) refuses a long non-ASCII name; the
    escaped copy fits and is stored with the server's reason in extra_data."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    admin.execute(f"ALTER TABLE {TABLE} ADD CHECK (message ~ '^[ -~]*$')")  # ASCII only
    handler, fallback = attach(log, server.dsn)
    log.info("plain")
    log.info("grüße")
    assert handler.flush(10)
    rows = admin.execute(f"SELECT message, extra_data FROM {TABLE} ORDER BY id").fetchall()
    assert [m for m, _ in rows] == ["plain", "gr\\xfc\\xdfe"]
    assert "CheckViolation" in rows[1][1]["_pglog"]["rejected_by_server"]
    assert fallback.messages(log.name) == []
    handler.close()


def test_a_table_that_refuses_every_row_sends_the_batch_to_the_fallback_quickly(
    server: PostgresServer, admin: psycopg.Connection[Any], log: logging.Logger
) -> None:
    """A NOT NULL column pglog doesn't fill: after a few single-row refusals the rest of the
    1,500-row batch goes to the fallback at once, not row by row."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    admin.execute(f"ALTER TABLE {TABLE} ADD COLUMN tenant text NOT NULL")
    handler, fallback = attach(log, server.dsn, batch_size=1_500, flush_interval=30)
    for i in range(1_500):
        log.info("record %d", i)
    assert handler.flush(60)
    assert stored(server.dsn, TABLE) == []
    assert fallback.messages(log.name) == [f"record {i}" for i in range(1_500)]
    stats = handler.stats()
    assert stats["fallback"] == 1_500
    assert stats["failed_batches"] < 30  # a handful of attempts, not thousands
    handler.close()


def test_a_missing_table_that_cannot_be_recreated_does_not_spin(
    server: PostgresServer, admin: psycopg.Connection[Any], log: logging.Logger
) -> None:
    """A trigger that reads a missing table raises 42P01 though our table exists: the batch
    goes to the fallback after one try at recreating, instead of looping."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    admin.execute(
        "CREATE FUNCTION peek() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM 1 FROM gone; RETURN NEW; END $$"
    )
    admin.execute(
        f"CREATE TRIGGER peek BEFORE INSERT ON {TABLE} FOR EACH ROW EXECUTE FUNCTION peek()"
    )
    handler, fallback = attach(log, server.dsn)
    for i in range(10):
        log.info("record %d", i)
    assert handler.flush(30)
    assert fallback.messages(log.name) == [f"record {i}" for i in range(10)]
    assert handler.stats()["failed_batches"] < 10
    handler.close()


@pytest.mark.parametrize(
    ("code", "name"),
    [("25006", "read-only failover"), ("53100", "disk full"), ("57014", "statement timeout")],
)
def test_transient_server_errors_are_retried_until_they_pass(
    code: str,
    name: str,
    server: PostgresServer,
    admin: psycopg.Connection[Any],
    log: logging.Logger,
) -> None:
    """A server raising a transient SQLSTATE keeps the records; when it stops, all are stored."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    admin.execute("CREATE TABLE trouble (on_ boolean)")
    admin.execute("INSERT INTO trouble VALUES (true)")
    admin.execute(
        "CREATE FUNCTION trouble() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF (SELECT on_ FROM trouble) THEN"
        f" RAISE EXCEPTION '{name}' USING ERRCODE = '{code}';"
        " END IF; RETURN NEW; END $$"
    )
    admin.execute(
        f"CREATE TRIGGER trouble BEFORE INSERT ON {TABLE} FOR EACH ROW EXECUTE FUNCTION trouble()"
    )
    handler, fallback = attach(log, server.dsn)
    emitted = [f"record {i}" for i in range(50)]
    for message in emitted[:25]:
        log.info(message)
    assert handler.flush() is False  # the writer backs off: the database is "away"
    assert handler.stats()["pending"] == 25
    admin.execute("UPDATE trouble SET on_ = false")
    for message in emitted[25:]:
        log.info(message)
    assert handler.flush(30)
    assert stored(server.dsn, TABLE) == emitted
    assert fallback.messages(log.name) == []
    assert handler.stats()["retries"] > 0
    handler.close()


def test_a_role_that_may_only_insert_can_log(
    server: PostgresServer, admin: psycopg.Connection[Any], log: logging.Logger
) -> None:
    """With create_table=False, INSERT on the table and USAGE on its sequence are enough."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    grant_insert_only(admin)
    dsn = server.dsn_as(INSERT_ONLY)
    handler, fallback = attach(log, dsn, create_table=False)
    for i in range(100):
        log.info("record %d", i)
    assert handler.flush(10)
    assert stored(server.dsn, TABLE) == [f"record {i}" for i in range(100)]
    assert fallback.records == []
    handler.close()


def test_a_revoked_privilege_sends_records_to_the_fallback_until_granted_again(
    server: PostgresServer, admin: psycopg.Connection[Any], log: logging.Logger
) -> None:
    """42501 is permanent for a batch: it goes to the fallback and is reported; once the
    grant is back, later records are stored again. Nothing is lost either way."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    grant_insert_only(admin)
    handler, fallback = attach(log, server.dsn_as(INSERT_ONLY), create_table=False)
    log.info("before")
    assert handler.flush(10)
    admin.execute(f"REVOKE INSERT ON {TABLE} FROM {INSERT_ONLY}")
    log.info("while revoked")
    assert handler.flush(10)
    admin.execute(f"GRANT INSERT ON {TABLE} TO {INSERT_ONLY}")
    log.info("after")
    assert handler.flush(10)
    assert stored(server.dsn, TABLE) == ["before", "after"]
    assert fallback.messages(log.name) == ["while revoked"]
    said = fallback.messages("pglog")
    assert any("InsufficientPrivilege" in m for m in said)
    assert not any("retried" in m for m in said), said  # they went to the fallback
    handler.close()


def test_a_lost_commit_during_isolation_settles_only_its_own_rows(
    server: PostgresServer, proxy: FaultProxy, admin: psycopg.Connection[Any], log: logging.Logger
) -> None:
    """While a bad row is being isolated, the COMMIT of the rows before it loses its reply:
    those rows count once, the bad row goes to the fallback, the rest are written."""
    make_table_as_a_writer_does(admin, log, server.dsn)
    admin.execute(f"ALTER TABLE {TABLE} ADD CHECK (message <> 'bad')")
    handler, fallback = attach(log, proxy.dsn, batch_size=10, flush_interval=30)
    emitted = [f"record {i}" if i != 3 else "bad" for i in range(10)]
    proxy.arm("after_commit")
    for message in emitted:
        log.info(message)
    assert handler.flush(30)
    assert proxy.cuts["after_commit"] == 1
    assert stored(server.dsn, TABLE) == [m for m in emitted if m != "bad"]
    assert fallback.messages(log.name) == ["bad"]
    stats = handler.stats()
    assert (stats["written"], stats["fallback"]) == (9, 1)
    handler.close()
