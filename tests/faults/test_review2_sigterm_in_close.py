"""Review 2: SIGTERM while the application (or the exit) is closing the handler kills the
process at once: whatever the close was writing is lost, and nothing says so.

``process._on_sigterm`` closes every live handler in a thread and then raises SIGTERM
again with its default action. But a handler whose close() is already under way in the
main thread (the application's own close at shutdown, or ``logging.shutdown()`` at exit)
is ``_closed`` and ``_closing``: ``DatabaseLogHandler.close`` in the SIGTERM thread
returns at once (``closing`` is False), the thread ends, and the hook kills the process
in the middle of the close it interrupted, which had ``close_timeout`` left. README:
"SIGTERM with its default action: pglog closes every handler within close_timeout, then
lets SIGTERM end the process ... lost by design: nothing".

Here a statement trigger makes each COPY take 2 s; close_timeout is 5 s. The child logs
100 records (fewer than a batch, flush_interval 60: nothing is written before close), and
calls close(); the close's COPY is seen running on the server, and SIGTERM is sent.
Measured: the child dies by SIGTERM 0.0 s after it, stored 0 of 100, no fallback line,
nothing on stderr about them (the close had 5 s for a 2 s COPY).
Deterministic (2 runs of 2).
"""

from __future__ import annotations

import signal
import time
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import count
from psycopg import sql

from faults.kit import wait_until
from faults.live import Child

RECORDS = 100

PROGRAM = """
import logging, sys
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({dsn!r}, table={table!r}, flush_interval=60, close_timeout=5)
log = logging.getLogger("app")
log.propagate = False
log.addHandler(handler)
for i in range({records}):
    log.warning("record %d", i)
print("closing", flush=True)
handler.close()
print("closed", flush=True)
"""


def copying(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pglog'"
            " AND state = 'active' AND query LIKE 'COPY%'"
        ).fetchone()
    return bool(row and row[0])


def test_sigterm_during_close_still_lets_the_close_finish(
    make_handler: HandlerFactory, table: str, db: psycopg.Connection[Any], pg_dsn: str
) -> None:
    probe = make_handler(fallback=None)
    assert probe.check_database() is None
    probe.close()
    db.execute(
        sql.SQL(
            "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN PERFORM pg_sleep(2); RETURN NULL; END$$;"
            " CREATE TRIGGER slow AFTER INSERT ON {table} FOR EACH STATEMENT"
            " EXECUTE FUNCTION {fn}()"
        ).format(fn=sql.Identifier(f"{table}_slows"), table=sql.Identifier(table))
    )
    code = PROGRAM.format(dsn=pg_dsn, table=table, records=RECORDS)
    with Child(code) as child:
        assert child.wait_for("stdout", "closing", 30) is not None, child.text("stderr")
        assert wait_until(lambda: copying(pg_dsn), 10), child.text("stderr")
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        returncode = child.wait(30)
        took = time.monotonic() - signalled
        stderr = child.text("stderr")
    wait_until(lambda: not copying(pg_dsn), 10)
    stored = count(db, table)
    print(f"\nreturncode {returncode}, ended {took:.1f}s after SIGTERM; stored {stored}/{RECORDS}")
    print("stderr:", stderr or "(nothing)")
    assert returncode == -signal.SIGTERM
    assert stored == RECORDS, (
        f"stored {stored} of {RECORDS}: SIGTERM during close() killed the process"
        f" {took:.1f} s after the signal, in the middle of the close (close_timeout 5 s),"
        f" and said nothing: {stderr!r}"
    )
