"""Review: notices when the fallback is itself a pglog handler (a second database, say).

``Notices._say`` hands a notice to the fallback handler and returns: the fallback took
it. But a ``DatabaseLogHandler`` skips, without a trace, every record made in one of
pglog's own threads (``OWN_THREADS``), and a notice is made in the writer's. So every
notice (a failing table, records handed to the fallback, drops, records lost) vanishes:
not in the fallback's table, not on stderr. The records themselves do reach the fallback
(they carry their own thread)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from helpers import add_trigger, make_table, run_python, stored
from psycopg import sql

PROGRAM = """
import logging
from pglog import DatabaseLogHandler

second = DatabaseLogHandler({dsn!r}, table={spare!r}, flush_interval=0.05, fallback=None)
first = DatabaseLogHandler({dsn!r}, table={table!r}, flush_interval=0.05, fallback=second)
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(first)
for i in range(5):
    log.info("m-%d", i)
assert first.flush(10)
assert second.flush(10)
print(first.stats()["fallback"], flush=True)
"""


def test_notices_reach_a_fallback_that_is_a_pglog_handler_or_stderr(
    pg_dsn: str, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """The first table refuses every row (a trigger raising P0001: the batch goes to the
    fallback, a second DatabaseLogHandler on another table). The five records land in
    the second table. The notices saying so ("can't write ...", "... records to the
    fallback") must be somewhere: in the second table, or on stderr.

    Before the fix, they are nowhere: the second handler drops them as pglog's own."""
    table, spare = (f"t_{uuid.uuid4().hex[:12]}" for _ in range(2))
    try:
        for name in (table, spare):
            make_table(pg_dsn, name)
        add_trigger(db, table, "refuse", "RAISE EXCEPTION 'refused by the review';")
        done = run_python(PROGRAM.format(dsn=pg_dsn, table=table, spare=spare), timeout=60)
        assert done.returncode == 0, done.stderr
        rows = stored(pg_dsn, spare)
        records = [r for r in rows if r.startswith("m-")]
        notices = [r for r in rows if not r.startswith("m-")]
        said = [line for line in done.stderr.splitlines() if "pglog" in line]
        print(f"fallback={done.stdout.strip()} second table: records={records} notices={notices}")
        print(f"stderr: {said}")
        assert sorted(records) == [f"m-{i}" for i in range(5)]
        assert notices or said, (
            "the refusal and the hand-over were never said: not in the fallback's table,"
            " not on stderr"
        )
    finally:
        for name in (table, spare):
            db.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))
