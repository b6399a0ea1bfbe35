"""SIGTERM with its default action: pglog writes what it holds, then the signal kills.

A container being stopped, ``kill <pid>``, a supervisor ending a worker: SIGTERM's
default action ends the process at once, without Python's exit handling, so without pglog
every record still queued is lost. The contract: where SIGTERM's disposition is the
default, pglog flushes (within close_timeout), then lets the signal do what it would
have done (the process still dies by SIGTERM, returncode -15). A disposition the
application chose (its own handler, or SIG_IGN) is left alone, and
``handle_sigterm=False`` turns the whole thing off.

Each child logs fewer records than a batch, with flush_interval=60: the writer holds
them all when the signal comes, so whatever is stored was written because of it. The
signal may also come while the main thread holds a lock the closing needs, or while a
close() is already under way: every handler is still closed before the process dies.
"""

from __future__ import annotations

import signal
import time
import uuid
from typing import Any

import psycopg
import pytest
from helpers import add_trigger, count, make_table, stored, true_within
from psycopg import sql

from faults.kit import pglog_running
from faults.live import Child

RECORDS = 300  # fewer than batch_size (500): nothing is written before the signal
CLOSE_TIMEOUT = 5.0

PROGRAM = """
import logging, signal, sys
from pglog import DatabaseLogHandler
{before}
handler = DatabaseLogHandler({dsn!r}, table={table!r}, flush_interval=60, {options})
logging.getLogger().addHandler(handler)
log = logging.getLogger("app")
for i in range({records}):
    log.warning("record %d", i)
chosen = signal.getsignal(signal.SIGTERM)
names = {{signal.SIG_DFL: "SIG_DFL", signal.SIG_IGN: "SIG_IGN"}}
print("disposition", names.get(chosen) or getattr(chosen, "__name__", repr(chosen)), flush=True)
print("ready", flush=True)
sys.stdin.read()  # the application goes on, until a signal or the end of its stdin
print("still alive after SIGTERM", flush=True)
"""


def run_and_terminate(
    dsn: str, table: str, *, before: str = "", options: str = ""
) -> tuple[int, float, Child]:
    """Start the program, SIGTERM it once it has logged; its returncode, how long it took
    to end after the signal, and the child (for its output)."""
    code = PROGRAM.format(dsn=dsn, table=table, records=RECORDS, before=before, options=options)
    with Child(code) as child:
        ready = child.wait_for("stdout", "ready", 30)
        assert ready is not None, child.text("stderr")
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        # Then the end of stdin: a program the signal does not end (it is ignored, or a
        # handler returns) reads it, says it is still alive, and exits 0. The signal is
        # pending before stdin closes, so it is always handled first.
        returncode = child.finish(30)
        return returncode, time.monotonic() - signalled, child


def test_sigterm_with_its_default_action_stores_every_record_and_still_kills(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """SIGTERM's disposition is the default: after the signal every record is stored,
    within close_timeout, and the process still dies by SIGTERM."""
    returncode, took, child = run_and_terminate(pg_dsn, table)
    held = count(db, table) if _exists(db, table) else 0
    print(f"\nreturncode {returncode}, ended {took:.1f}s after SIGTERM; stored {held}/{RECORDS}")
    assert returncode == -signal.SIGTERM, child.text("stdout")
    assert held == RECORDS
    assert took <= CLOSE_TIMEOUT + 3


APP_HANDLER = """
def on_term(signum, frame):
    print("the application's handler ran", flush=True)
    raise SystemExit(0)
signal.signal(signal.SIGTERM, on_term)
"""

#: what the application did with SIGTERM before configuring logging -> what must happen
CHOSEN = {
    "its own handler": (APP_HANDLER, 0, "the application's handler ran"),
    "ignored": ("signal.signal(signal.SIGTERM, signal.SIG_IGN)", 0, "still alive after SIGTERM"),
}


@pytest.mark.parametrize("chosen", CHOSEN)
def test_a_sigterm_disposition_the_application_chose_is_left_alone(
    chosen: str, pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """The application installed its own SIGTERM handler (or ignores SIGTERM) before pglog
    was configured: pglog does not replace it; on SIGTERM the application's choice
    rules (its handler runs and exits 0; or the signal is ignored), and the records are
    stored by the ordinary exit. A guard for the fix: today pglog installs nothing."""
    before, expected_code, expected_line = CHOSEN[chosen]
    returncode, _, child = run_and_terminate(pg_dsn, table, before=before)
    stdout = child.text("stdout")
    print(f"\nreturncode {returncode}; stdout {stdout!r}; stored {count(db, table)}")
    assert "disposition on_term" in stdout or "disposition SIG_IGN" in stdout
    assert expected_line in stdout
    assert returncode == expected_code
    assert count(db, table) == RECORDS


def test_handle_sigterm_false_leaves_sigterm_alone(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """handle_sigterm=False: pglog installs nothing (the disposition stays SIG_DFL) and
    SIGTERM kills at once, as it does today."""
    returncode, _, child = run_and_terminate(pg_dsn, table, options="handle_sigterm=False")
    stdout, stderr = child.text("stdout"), child.text("stderr")
    print(f"\nreturncode {returncode}; stdout {stdout!r}; stderr {stderr[-300:]!r}")
    assert "disposition SIG_DFL" in stdout
    assert returncode == -signal.SIGTERM


#: Two handlers with ten records each; SIGTERM comes while the main thread holds ``lock``.
WHILE_LOCKED = """
import logging, os, signal, sys
from pglog import DatabaseLogHandler

log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
handlers = [DatabaseLogHandler({dsn!r}, table=t, close_timeout=2, flush_interval=60,
                               batch_size=1000) for t in {tables!r}]
for h in handlers:
    log.addHandler(h)
for i in range(10):
    log.info("m-%d", i)
print("logged", flush=True)
sys.stdin.readline()
with {lock}:  # as inside dictConfig (or inside put_weighed, for the ledger's lock)
    os.kill(os.getpid(), signal.SIGTERM)
    sys.stdin.readline()  # the signal's handler runs here, in this thread
"""


@pytest.mark.parametrize(
    "lock", ["logging._lock", "handlers[0]._pipeline.ledger.lock"], ids=["logging", "ledger"]
)
def test_sigterm_while_the_main_thread_holds_a_lock_still_closes_every_handler(
    lock: str, pg_dsn: str, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """Two handlers, ten records queued in each (flush_interval 60 s, the database up).
    SIGTERM comes while the main thread holds logging's module lock (or the first
    handler's ledger lock). Both tables must hold their ten records, and the process die
    by SIGTERM within close_timeout.

    Before the fix, the closing thread blocks on that lock (the main thread holds it while it
    waits for the closing thread): the second table stays empty (logging's lock), or
    both do (the ledger's), and the process dies only when the wait runs out.

    Found by the first review: ``process._on_sigterm`` runs in the main thread; it starts a
    thread to close the handlers and then *joins* it, from the main thread, until the exit
    deadline, while a lock the main thread held when the signal came stays held: logging's
    module lock (inside ``logging.config.dictConfig``, or ``getLogger``/``addHandler``), or
    a handler's ledger lock (inside ``put_weighed``). The closing thread waited on it
    (``logging.Handler.close`` takes logging's lock), the join timed out, and SIGTERM
    killed the process with the other handlers never closed."""
    tables = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        for table in tables:
            make_table(pg_dsn, table)
        with Child(WHILE_LOCKED.format(dsn=pg_dsn, tables=tables, lock=lock)) as child:
            assert child.wait_for("stdout", "logged", 20), child.text("stderr")
            child.write("\n")
            began = time.monotonic()
            code = child.wait(30)
            took = time.monotonic() - began
        counts = [len(stored(pg_dsn, table)) for table in tables]
        print(f"lock={lock} exit={code} after {took:.1f}s stored={counts}")
        assert code == -signal.SIGTERM, code
        assert counts == [10, 10], (
            f"stored {counts} of [10, 10]: a handler was not closed before SIGTERM killed"
            f" the process ({took:.1f} s after the signal)"
        )
    finally:
        for table in tables:
            db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


RECORDS_AT_CLOSE = 100
#: Logs RECORDS_AT_CLOSE, then closes its handler: SIGTERM comes meanwhile.
CLOSING = """
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


def test_sigterm_during_close_still_lets_the_close_finish(
    table: str, db: psycopg.Connection[Any], pg_dsn: str
) -> None:
    """SIGTERM while the application (or the exit) is closing the handler: the close, which
    has close_timeout left, must store every record before the signal ends the process.

    Found by the second review: the process was killed at once, whatever the close was
    writing was lost, and nothing said so.

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
    Deterministic (2 runs of 2)."""
    make_table(pg_dsn, table)
    statement_takes_2s = "PERFORM pg_sleep(2); RETURN NULL;"
    add_trigger(db, table, "slow", statement_takes_2s, when="AFTER INSERT", each="STATEMENT")
    code = CLOSING.format(dsn=pg_dsn, table=table, records=RECORDS_AT_CLOSE)
    with Child(code) as child:
        assert child.wait_for("stdout", "closing", 30) is not None, child.text("stderr")
        assert true_within(lambda: pglog_running(pg_dsn, "COPY%"), 10), child.text("stderr")
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        returncode = child.wait(30)
        took = time.monotonic() - signalled
        stderr = child.text("stderr")
    true_within(lambda: not pglog_running(pg_dsn, "COPY%"), 10)
    held = count(db, table)
    print(f"\nreturncode {returncode}, ended {took:.1f}s after SIGTERM; stored {held}")
    print("stderr:", stderr or "(nothing)")
    assert returncode == -signal.SIGTERM
    assert held == RECORDS_AT_CLOSE, (
        f"stored {held} of {RECORDS_AT_CLOSE}: SIGTERM during close() killed the process"
        f" {took:.1f} s after the signal, in the middle of the close (close_timeout 5 s),"
        f" and said nothing: {stderr!r}"
    )


def _exists(db: psycopg.Connection[Any], table: str) -> bool:
    row = db.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] is not None
