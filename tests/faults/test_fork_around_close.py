"""Review: fork while a close() is under way, or right after a close() that left its
writer finishing in the background (``dictConfig`` closes under logging's lock).

``process._after_fork_in_child`` renews only the handlers in ``_live``, and renews only
their pipeline: the child keeps the parent's ``_closed``/``_closing`` flags, and a handler
that was closed (so unregistered) keeps the parent's pipeline, writer object and all.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from helpers import closed_port_dsn, make_table, run_python, stored
from psycopg import sql

from faults.live import Child

FORK_DURING_CLOSE = """
import json, logging, os, sys, threading
from pglog import DatabaseLogHandler

class Gate(logging.Handler):
    '''The fallback: keeps what it gets; holds the parent's close() on its record.'''
    def __init__(self):
        super().__init__()
        self.got, self.entered, self.never = [], threading.Event(), threading.Event()
    def emit(self, record):
        self.got.append((record.name, record.getMessage()))
        if record.getMessage() == "parent-0":
            self.entered.set()
            self.never.wait(30)

gate = Gate()
h = DatabaseLogHandler({dsn!r}, close_timeout=3, flush_interval=0.05, fallback=gate)
log = logging.getLogger("app")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(h)
log.info("parent-0")
closer = threading.Thread(target=h.close)
closer.start()
assert gate.entered.wait(10), "close() never handed the record on"
pid = os.fork()
if pid == 0:
    gate.got.clear()
    log.info("child-1")
    h.close()
    stats = h.stats()
    handed = [m for n, m in gate.got if n == "app"]
    print(json.dumps({{"stats": stats, "handed": handed}}), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child exited", status, flush=True)
"""


def test_a_child_forked_during_a_close_closes_its_own_handler() -> None:
    """The database is down. A thread closes the handler (the fallback, slow, holds the
    close); the main thread forks meanwhile. The child logs one record and closes: its
    record must go to the fallback (the database is down), nothing left pending.

    Before the fix, the child inherits ``_closed = True``: its close() returns at once, the record
    stays pending, and at the child's exit it vanishes unsaid."""
    done = run_python(FORK_DURING_CLOSE.format(dsn=closed_port_dsn()), timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from the child: {done.stdout!r} {done.stderr[-2000:]!r}"
    report: dict[str, Any] = json.loads(lines[0])
    stats = report["stats"]
    print(f"child after close(): handed={report['handed']} stats={stats}")
    assert report["handed"] == ["child-1"], (
        f"the child's record was not handed on at close: pending={stats['pending']}"
        f" fallback={stats['fallback']} (close() in the child did nothing)"
    )
    assert stats["pending"] == 0, stats


FORK_AFTER_BACKGROUND_CLOSE = """
import json, logging, os, sys
from pglog import DatabaseLogHandler

h = DatabaseLogHandler({dsn!r}, table={table!r}, close_timeout=5, flush_interval=0.05,
                       fallback=None)
log = logging.getLogger("app")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(h)
log.info("parent-0")  # its COPY waits for the test's lock on the table
print("logged", flush=True)
sys.stdin.readline()
with logging._lock:  # as dictConfig does: close() waits for nothing, the writer finishes
    h.close()
pid = os.fork()
if pid == 0:
    log.info("child-1")  # the closed handler opens again, in the child
    print("forked", flush=True)
    sys.stdin.readline()
    flushed = h.flush(10)
    print(json.dumps({{"flushed": flushed, "stats": h.stats()}}), flush=True)
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print("child exited", status, flush=True)
"""


def test_a_child_forked_right_after_a_background_close_writes_its_records(
    pg_dsn: str, table: str, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """The table is locked by the test, so the parent's first batch waits in its COPY.
    The parent closes its handler under logging's lock (dictConfig's way: the writer
    finishes in the background) and forks at once; the child logs a record to the
    closed handler, which opens again. The lock is released. The child's flush must
    succeed and its record be stored.

    Before the fix, the child's handler still has the parent's pipeline: ``Writer.resume()`` sees
    the parent's writer as not yet ended and "goes on" with it, but no writer thread
    exists in the child: its record is never written, flush() fails, and at exit it is
    lost unsaid (pending, neither written nor handed on)."""
    make_table(pg_dsn, table)
    locker = psycopg.connect(pg_dsn)
    locker.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
    code = FORK_AFTER_BACKGROUND_CLOSE.format(dsn=pg_dsn, table=table)
    with Child(code) as child:
        assert child.wait_for("stdout", "logged", 20), child.text("stderr")
        child.write("\n")
        forked = child.wait_for("stdout", "forked", 20)
        locker.rollback()
        locker.close()
        assert forked, child.text("stderr")
        child.write("\n")
        report = child.wait_for("stdout", lambda line: line.startswith("{"), 30)
        child.finish(30)
        assert report, f"no report: {child.text('stdout')!r} {child.text('stderr')[-2000:]!r}"
    result: dict[str, Any] = json.loads(report[1])
    rows = stored(pg_dsn, table)
    print(f"child: {result}; stored={rows}")
    assert result["flushed"], f"the child's flush failed: {result['stats']}"
    assert "child-1" in rows, f"the child's record was never stored: {rows}"
    assert rows.count("parent-0") == 1, rows
