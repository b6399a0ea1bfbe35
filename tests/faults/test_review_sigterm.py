"""Review: SIGTERM that arrives while the main thread holds a lock the closing needs.

``process._on_sigterm`` runs in the main thread; it starts a thread to close the handlers
("the signal may have interrupted the main thread inside pglog, holding a lock the
closing needs") and then *joins* it, from the main thread, until the exit deadline. A
lock the main thread held when the signal came is held all that time: logging's module
lock (inside ``logging.config.dictConfig``, which holds it throughout, or
``getLogger``/``addHandler``), or a handler's ledger lock (inside ``put_weighed``). The
closing thread waits on it (``logging.Handler.close`` takes logging's lock), the join
times out, and SIGTERM kills the process with the other handlers never closed."""

from __future__ import annotations

import signal
import time
import uuid
from typing import Any

import psycopg
import pytest
from helpers import run_python
from psycopg import sql

from faults.kit import stored
from faults.live import Child

PROGRAM = """
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

    Today the closing thread blocks on that lock (the main thread holds it while it
    waits for the closing thread): the second table stays empty (logging's lock), or
    both do (the ledger's), and the process dies only when the wait runs out."""
    tables = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for table in tables:
        check = run_python(
            "from pglog import DatabaseLogHandler as H\n"
            f"h = H({pg_dsn!r}, table={table!r}); assert h.check_database() is None; h.close()"
        )
        assert check.returncode == 0, check.stderr
    try:
        with Child(PROGRAM.format(dsn=pg_dsn, tables=tables, lock=lock)) as child:
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
