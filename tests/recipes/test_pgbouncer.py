"""PgBouncer recipe: the handler through transaction pooling, and across PgBouncer restarts."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from clusters import started
from helpers import ListHandler, wait_until
from pgserver import PostgresServer
from psycopg import sql

from pglog import DatabaseLogHandler
from recipes.pgbouncer import BINARY, PgBouncer, available


@pytest.fixture(scope="module", autouse=True)
def pgbouncer_installed() -> None:
    """Fail, not skip, without PgBouncer: a skipped test would hide a broken recipe."""
    if not available():
        pytest.fail(f"{BINARY} is missing: tests/system-packages installs Debian's pgbouncer")


@pytest.fixture(scope="module")
def upstream() -> Iterator[PostgresServer]:
    """The PostgreSQL behind PgBouncer: the module's own, on loopback TCP."""
    with started(PostgresServer()) as server:
        yield server


@pytest.fixture
def bouncer(upstream: PostgresServer) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode with a pool of ONE server connection: every client
    takes turns on the same server session, so any state one leaves behind, the next sees."""
    pooler = PgBouncer(upstream.port, upstream.account, pool_mode="transaction", pool_size=1)
    with started(pooler):
        yield pooler


@pytest.fixture
def upstream_table(upstream: PostgresServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(upstream.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def _messages(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        query = sql.SQL("SELECT message FROM {} ORDER BY id").format(sql.Identifier(table))
        return [message for (message,) in conn.execute(query).fetchall()]


def _logger() -> logging.Logger:
    log = logging.getLogger(f"test.pgbouncer.{uuid.uuid4().hex[:8]}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def test_handler_through_transaction_pooling_leaves_no_session_state(
    bouncer: PgBouncer, upstream: PostgresServer, upstream_table: str
) -> None:
    """Through PgBouncer in transaction mode, sharing its one server connection with another
    client: the table is created, every record is stored once, and the other client never
    finds pglog's timeouts or a prepared statement in the session they share."""
    fallback = ListHandler()
    handler = DatabaseLogHandler(
        bouncer.dsn, table=upstream_table, flush_interval=0.02, batch_size=50, fallback=fallback
    )
    log = _logger()
    log.addHandler(handler)
    seen: set[tuple[Any, ...]] = set()
    try:
        # The neighbour itself never prepares (psycopg would, from a query's 6th run).
        with psycopg.connect(bouncer.dsn, autocommit=True, prepare_threshold=None) as neighbour:
            for batch in range(20):
                for n in range(100):
                    log.info("record %d", batch * 100 + n)
                assert handler.flush(10)
                row = neighbour.execute(
                    "SELECT current_setting('statement_timeout'),"
                    " current_setting('idle_in_transaction_session_timeout'),"
                    " (SELECT count(*) FROM pg_prepared_statements), pg_backend_pid()"
                ).fetchone()
                assert row is not None
                seen.add(row)
        stats = handler.stats()
    finally:
        handler.close()

    assert _messages(upstream.dsn, upstream_table) == [f"record {n}" for n in range(2000)]
    assert (stats["enqueued"], stats["written"], stats["fallback"]) == (2000, 2000, 0)
    assert stats["batches"] >= 20
    assert [r for r in fallback.records if r.name != "pglog"] == []  # only what pglog said
    # One server session throughout, always as the server's defaults left it.
    assert len(seen) == 1
    statement_timeout, idle_timeout, prepared, _ = seen.pop()
    assert (statement_timeout, idle_timeout, prepared) == ("0", "0", 0)
    pools = [p for p in bouncer.show("POOLS") if p["database"] == "postgres"]
    assert [p["pool_mode"] for p in pools] == ["transaction"]
    assert len(bouncer.show("SERVERS")) == 1


@pytest.mark.parametrize(
    "stop", [signal.SIGTERM, signal.SIGKILL], ids=["immediate-shutdown", "killed"]
)
def test_records_logged_across_a_pgbouncer_restart_are_stored_exactly_once(
    bouncer: PgBouncer, upstream: PostgresServer, upstream_table: str, stop: signal.Signals
) -> None:
    """A thread logs without pause while PgBouncer is stopped (SIGTERM: its immediate
    shutdown; SIGKILL) and started again on the same port: once it is back, every record
    is stored, exactly once, in order, and nothing went to the fallback."""
    fallback = ListHandler()
    handler = DatabaseLogHandler(
        bouncer.dsn, table=upstream_table, flush_interval=0.01, batch_size=20, fallback=fallback
    )
    log = _logger()
    log.addHandler(handler)
    emitted = 0
    done = threading.Event()

    def keep_logging() -> None:
        nonlocal emitted
        while not done.is_set() and emitted < 50_000:
            log.info("record %d", emitted)
            emitted += 1
            time.sleep(0.0005)  # pacing, not synchronisation: a steady stream of small batches

    logging_thread = threading.Thread(target=keep_logging, name="keep-logging")
    logging_thread.start()
    try:
        wait_until(lambda: handler.stats()["written"] >= 200, "rows through pgbouncer")
        failures = handler.stats()["failed_batches"]
        bouncer.stop(stop)
        stopped_at = emitted
        wait_until(lambda: handler.stats()["failed_batches"] > failures, "the writer to notice")
        wait_until(lambda: emitted >= stopped_at + 300, "records logged during the outage")
        bouncer.start()
        restarted_at = emitted
        wait_until(lambda: emitted >= restarted_at + 300, "records logged after the restart")
        written_before = handler.stats()["written"]
        wait_until(lambda: handler.stats()["written"] > written_before, "writes to resume")
    finally:
        done.set()
        logging_thread.join(10)
    try:
        assert handler.flush(30)
        stats = handler.stats()
    finally:
        handler.close()

    stored = _messages(upstream.dsn, upstream_table)
    print(
        f"\npgbouncer {stop.name}: emitted {emitted}, stored {len(stored)},"
        f" distinct {len(set(stored))}, retries {stats['retries']},"
        f" failed attempts {stats['failed_batches']}"
    )
    assert stored == [f"record {n}" for n in range(emitted)]
    assert (stats["enqueued"], stats["written"], stats["fallback"], stats["dropped"]) == (
        emitted,
        emitted,
        0,
        0,
    )
    assert [r for r in fallback.records if r.name != "pglog"] == []  # only what pglog said


def test_a_copy_cut_off_by_a_pgbouncer_crash_is_looked_up_and_written_once(
    bouncer: PgBouncer, upstream: PostgresServer, upstream_table: str
) -> None:
    """PgBouncer is killed while a batch's COPY is inside its transaction on the server
    (held there by a lock): once PgBouncer is back, pglog asks the server through it what
    became of that transaction, and writes the batch again, once."""
    fallback = ListHandler()
    handler = DatabaseLogHandler(
        bouncer.dsn, table=upstream_table, flush_interval=0.02, fallback=fallback
    )
    log = _logger()
    log.addHandler(handler)
    try:
        log.info("before")
        assert handler.flush(10)  # the table exists, the writer is connected
        with psycopg.connect(upstream.dsn) as locker:  # straight to the server
            locker.execute(
                sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(upstream_table))
            )
            for n in range(10):
                log.info("cut off %d", n)
            wait_until(
                lambda: _waiting_copies(upstream.dsn) == 1, "pglog's COPY to wait for the lock"
            )
            failures = handler.stats()["failed_batches"]
            bouncer.stop(signal.SIGKILL)
            wait_until(lambda: handler.stats()["failed_batches"] > failures, "the writer to notice")
            bouncer.start()
            locker.rollback()  # the orphaned COPY gets the lock, finds its client gone, aborts
        assert handler.flush(30)
        stats = handler.stats()
    finally:
        handler.close()
    assert _messages(upstream.dsn, upstream_table) == ["before"] + [
        f"cut off {n}" for n in range(10)
    ]
    assert (stats["written"], stats["fallback"]) == (11, 0)
    assert stats["retries"] >= 1  # the cut-off batch, at least, was tried again
    assert [r for r in fallback.records if r.name != "pglog"] == []  # only what pglog said


def _waiting_copies(dsn: str) -> int:
    """Backends whose COPY waits for a lock."""
    found = psycopg.connect(dsn, autocommit=True).execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND query LIKE 'COPY %%'"
    )
    row = found.fetchone()
    found.connection.close()
    return int(row[0]) if row else 0


def test_the_backend_pid_pglog_would_terminate_is_the_servers(
    bouncer: PgBouncer, upstream: PostgresServer, upstream_table: str
) -> None:
    """The pid the sink keeps for a lost transaction's backend is a real server backend's,
    not PgBouncer's made-up one: terminating it must reach the transaction."""
    handler = DatabaseLogHandler(bouncer.dsn, table=upstream_table, flush_interval=0.02)
    log = _logger()
    log.addHandler(handler)
    try:
        log.info("one record")
        assert handler.flush(10)
        transaction = handler._pipeline.sink.last_transaction
        assert transaction is not None
        remembered = transaction.backend_pid
    finally:
        handler.close()
    with psycopg.connect(upstream.dsn, autocommit=True) as conn:
        backends = {pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity")}
    assert remembered in backends
