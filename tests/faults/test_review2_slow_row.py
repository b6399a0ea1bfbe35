"""Review 2: one row slower than ``write_timeout`` strands every record behind it.

A trigger makes one record (message ``slow``) take 2.5 s to insert; ``write_timeout`` is
1 s; every other row costs nothing. The slow record is the oldest, so it is the first row
of every transaction the writer tries: the batch in flight (``Writer._next_batch`` always
tries it first), and within it every part ``Delivery._write_isolating`` sends starts at
``batch.rows[0]``. Each attempt is cut by the watchdog (``Stalled`` ->
``CommitUnknown``), looked up (in progress, the backend terminated after
``IN_PROGRESS_GRACE``), found aborted and sent again. ``Pace.timed_out`` halves the
transaction down to one row and then, for ``count <= 1``, changes nothing: the slow row is
sent alone, for ever, and nothing behind it is ever written, although the server would
take each of those rows in a millisecond.

Measured (30 s): emitted 201, stored 0, pending 201 for good: the slow row and the 200
records queued behind it (the queue keeps growing until the overflow policy drops). What is
said is only "can't write ... timed out" and the pace halving; nothing says that one row
blocks the table, nor that the rest will never be written. No record is ever handed to
the fallback.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import ListHandler
from psycopg import sql

from faults.kit import balanced, ledger, stored, wait_until

OTHERS = 200
WRITE_TIMEOUT = 1.0


def test_one_slow_row_does_not_strand_the_records_behind_it(
    make_handler: HandlerFactory,
    table: str,
    db: psycopg.Connection[tuple[Any, ...]],
    pg_dsn: str,
    logger: logging.Logger,
) -> None:
    probe = make_handler(fallback=None)
    assert probe.check_database() is None
    probe.close()
    db.execute(
        sql.SQL(
            "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN IF NEW.message = 'slow' THEN PERFORM pg_sleep(2.5); END IF;"
            " RETURN NEW; END$$;"
            " CREATE TRIGGER slow BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}()"
        ).format(fn=sql.Identifier(f"{table}_slow1"), table=sql.Identifier(table))
    )
    said = ListHandler()
    handler = make_handler(
        batch_size=50, write_timeout=WRITE_TIMEOUT, connect_timeout=2, fallback=said
    )
    logger.addHandler(handler)
    logger.info("slow")
    emitted = [f"after-{i}" for i in range(OTHERS)]
    for message in emitted:
        logger.info(message)
    done = wait_until(lambda: set(emitted) <= set(stored(pg_dsn, table)), 30, interval=0.5)
    stats = handler.stats()
    rows = stored(pg_dsn, table)
    notices = [r.getMessage() for r in said.records if r.name.startswith("pglog")]
    print(f"done={done} stored={len(rows)} {ledger(stats)} last_error={stats['last_error']!r}")
    print("said:", *notices[:8], sep="\n  ")
    assert balanced(stats)
    assert done, (
        f"30 s on, {len(set(emitted) & set(rows))} of the {OTHERS} records behind one slow row"
        f" are stored ({ledger(stats)}): the slow row is sent alone again and again, and"
        " everything queued behind it waits for ever"
    )
    assert sorted(rows).count("slow") <= 1
