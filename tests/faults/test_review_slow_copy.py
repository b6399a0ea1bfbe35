"""Review: ``write_timeout`` shorter than a batch's legitimately slow COPY.

The watchdog gives the connection up after ``write_timeout``; the lookup finds the
transaction in progress, then (after its grace) terminates the backend, finds it
aborted, and the same batch is written again, whole: the same COPY, the same timeout,
for ever. Nothing is written while the server would take every row, one at a time, in
a fraction of the timeout; under a backlog the writer even makes its batches bigger
(``Writer._batch_limit``)."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from conftest import HandlerFactory
from psycopg import sql

from faults.kit import ledger, stored, wait_until

ROWS = 100
#: Per row, in a trigger: the whole batch takes 2 s, one row 20 ms.
ROW_SECONDS = 0.02
WRITE_TIMEOUT = 1.0


def test_a_batch_slower_than_write_timeout_is_still_written(
    make_handler: HandlerFactory,
    table: str,
    db: psycopg.Connection[tuple[Any, ...]],
    pg_dsn: str,
    logger: logging.Logger,
) -> None:
    """A trigger makes each row cost 20 ms: a batch of 100 takes 2 s, past write_timeout
    (1 s), while a batch of 40 or fewer would take less. Within 40 s every record must be
    stored, once.

    Today the batch is given up, looked up, aborted and sent again whole, round after
    round: nothing is ever stored (written=0), and the only thing said is a stall."""
    probe = make_handler(fallback=None)
    assert probe.check_database() is None
    probe.close()
    db.execute(
        sql.SQL(
            "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END$$;"
            " CREATE TRIGGER slow BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}()"
        ).format(
            fn=sql.Identifier(f"{table}_slow"),
            seconds=sql.Literal(ROW_SECONDS),
            table=sql.Identifier(table),
        )
    )
    handler = make_handler(
        batch_size=ROWS, write_timeout=WRITE_TIMEOUT, connect_timeout=2, fallback=None
    )
    logger.addHandler(handler)
    emitted = [f"m-{i}" for i in range(ROWS)]
    for message in emitted:
        logger.info(message)
    done = wait_until(lambda: handler.flush(1) and handler.stats()["pending"] == 0, 40)
    stats = handler.stats()
    rows = stored(pg_dsn, table)
    print(
        f"done={done} stored={len(rows)} {ledger(stats)} failed_batches={stats['failed_batches']}"
        f" retries={stats['retries']} last_error={stats['last_error']!r}"
    )
    assert done, (
        f"40 s on, {stats['written']} of {ROWS} written after {stats['failed_batches']} failed"
        f" attempts: the same {ROWS}-row batch is sent again and again"
    )
    assert sorted(rows) == sorted(emitted)
