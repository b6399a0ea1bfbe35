"""fork: a child starts clean, the parent writes what it queued, every process's records land."""

from __future__ import annotations

from typing import Any

import psycopg
from helpers import count, fetch, run_python


def test_multiprocessing_children_store_everything_without_calling_anything(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """fork-started multiprocessing children, which skip atexit, still store all their rows;
    the parent's records queued at fork time are stored once, by the parent."""
    script = f"""
import logging, multiprocessing
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({pg_dsn!r}, table={table!r}, flush_interval=60)
logging.getLogger().addHandler(handler)
log = logging.getLogger("app")
for i in range(300):
    log.warning("parent-before-%d", i)   # still queued when the children fork

def child(n):
    for i in range(500):
        log.warning("child%d-%d", n, i)

ctx = multiprocessing.get_context("fork")
children = [ctx.Process(target=child, args=(n,)) for n in range(3)]
for p in children: p.start()
for p in children: p.join()
for i in range(300):
    log.warning("parent-after-%d", i)
assert handler.flush(30)
print(handler.stats()["failed_batches"])
"""
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]  # no child ever broke the parent's connection
    stored = [m for (m,) in fetch(db, table, "message")]
    assert sorted(stored) == sorted(
        [f"parent-before-{i}" for i in range(300)]
        + [f"parent-after-{i}" for i in range(300)]
        + [f"child{n}-{i}" for n in range(3) for i in range(500)]
    )
    assert len({pid for (pid,) in fetch(db, table, "process_id")}) == 4


def test_fork_while_threads_are_logging_does_not_deadlock(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """Children forked while two threads log hard (locks held at fork time) run and store."""
    script = f"""
import logging, os, sys, threading
from pglog import DatabaseLogHandler
logging.getLogger().addHandler(DatabaseLogHandler({pg_dsn!r}, table={table!r}, batch_size=50))
log = logging.getLogger("app")
stop = threading.Event()
sent = [0, 0]
def busy(n):
    while not stop.is_set():
        log.warning("busy%d-%d", n, sent[n]); sent[n] += 1
threads = [threading.Thread(target=busy, args=(n,)) for n in range(2)]
for t in threads: t.start()
children = []
for n in range(5):
    pid = os.fork()
    if pid == 0:
        for i in range(100):
            log.warning("fork%d-%d", n, i)
        sys.exit(0)        # a normal exit: logging.shutdown writes what is queued
    children.append(pid)
for pid in children:
    assert os.waitpid(pid, 0)[1] == 0
stop.set()
for t in threads: t.join()
print(*sent)
"""
    result = run_python(script, timeout=120)
    assert result.returncode == 0, result.stderr
    sent = [int(n) for n in result.stdout.split()]
    expected = [f"busy{n}-{i}" for n, total in enumerate(sent) for i in range(total)]
    expected += [f"fork{n}-{i}" for n in range(5) for i in range(100)]
    assert count(db, table) == len(expected)
    assert sorted(m for (m,) in fetch(db, table, "message")) == sorted(expected)
