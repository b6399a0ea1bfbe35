"""commit: what became of a COMMIT whose reply was lost, even after the server crashed."""

from __future__ import annotations

import logging

import psycopg
from pgserver import PostgresServer

from pglog import DatabaseLogHandler
from pglog._capture.capture import capture
from pglog._capture.entry import named
from pglog._capture.row import to_row
from pglog._table.schema import TableName, copy_statement
from pglog._writer.commit import Verdict
from pglog._writer.sink import _transaction_queries

TABLE = "logs"


def test_a_transaction_id_given_again_after_a_crash_is_not_taken_for_the_lost_batch(
    server: PostgresServer,
) -> None:
    """A batch's COPY is under way when the server is killed (-9); after recovery the
    server gives the same transaction id to another transaction, which commits. The
    lookup must not take that "committed" for the lost batch's: the batch is written
    again (its rows are not in the table), and a batch that did commit is still known
    as written."""
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        # The id is given again only if no WAL naming it reached the disk before the kill,
        # and nobody takes one before the test does: no WAL writer flushing the COPY's WAL
        # in between, and no auto-analyze after the restart.
        admin.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
        admin.execute("ALTER SYSTEM SET autovacuum = off")
        admin.execute("SELECT pg_reload_conf()")
    maker = DatabaseLogHandler(server.dsn, table=TABLE, fallback=None)
    assert maker.check_database() is None  # makes the table, then is out of the way:
    maker.close()  # a writer that reconnects after the crash would take the id first
    log = logging.getLogger("commit.test")
    row = to_row(named(capture(log.makeRecord(log.name, 20, __file__, 1, "lost", (), None))), "h")
    begin, _ = _transaction_queries(modern=True)
    lost = psycopg.connect(server.dsn)
    cur = lost.cursor()
    cur.execute(begin, (60_000, 10_000))
    *_, _, xid, started = cur.fetchone()  # type: ignore[misc]
    with cur.copy(copy_statement(TableName("public", TABLE))) as copy:
        copy.write_row(row)
    server.kill()  # before the COMMIT: nothing of the batch was durable
    server.start()
    lost.close()
    with psycopg.connect(server.dsn, autocommit=True) as other:
        other.execute("BEGIN")
        given_again = other.execute("SELECT pg_current_xact_id()::text").fetchone()
        other.execute(
            f"INSERT INTO {TABLE} (timestamp, level, logger_name, message)"
            " VALUES (now(), 'INFO', 'other', 'another batch')"
        )
        other.execute("COMMIT")
        status = other.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()
    assert given_again == (xid,), "the server did not give the id again: nothing to prove"
    assert status == ("committed",)  # what the lookup alone would believe
    handler = DatabaseLogHandler(server.dsn, table=TABLE, fallback=None)
    lookup = handler._pipeline.lookup
    assert lookup.verdict(xid, started, row) is Verdict.AGAIN
    assert lookup.verdict(xid, None, row) is Verdict.AGAIN  # started unknown (an old spool)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("BEGIN")
        mine = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        with conn.cursor().copy(copy_statement(TableName("public", TABLE))) as copy:
            copy.write_row(row)
        conn.execute("COMMIT")
    assert mine is not None
    assert lookup.verdict(mine[0], started, row) is Verdict.WRITTEN
    handler.close()
