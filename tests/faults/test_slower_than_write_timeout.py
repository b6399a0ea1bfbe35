"""Writes slower than ``write_timeout``, though the server would take every row: a whole
batch's COPY, or one row of it. The watchdog gives each attempt up, and the writer must
still get every record stored, once, rather than send the same thing again for ever."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import ListHandler, add_trigger, make_table, stored, true_within

from faults.kit import balanced, drained, ledger

WRITE_TIMEOUT = 1.0
ROWS = 100
#: Per row, in a trigger: a batch of ROWS takes 2 s, one row 20 ms.
ROW_SECONDS = 0.02
OTHERS = 200


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

    Found by the first review. The watchdog gives the connection up after
    ``write_timeout``; the lookup finds the transaction in progress, then (after its
    grace) terminates the backend, finds it aborted, and the same batch is written again,
    whole: the same COPY, the same timeout, for ever. Nothing is written while the server
    would take every row, one at a time, in a fraction of the timeout; under a backlog the
    writer even makes its batches bigger (``Writer._batch_limit``).

    Before the fix, the batch is given up, looked up, aborted and sent again whole, round after
    round: nothing is ever stored (written=0), and the only thing said is a stall."""
    make_table(pg_dsn, table)
    add_trigger(db, table, "slow", f"PERFORM pg_sleep({ROW_SECONDS}); RETURN NEW;")
    handler = make_handler(
        batch_size=ROWS, write_timeout=WRITE_TIMEOUT, connect_timeout=2, fallback=None
    )
    logger.addHandler(handler)
    emitted = [f"m-{i}" for i in range(ROWS)]
    for message in emitted:
        logger.info(message)
    done = drained(handler, 40)
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


def test_one_slow_row_does_not_strand_the_records_behind_it(
    make_handler: HandlerFactory,
    table: str,
    db: psycopg.Connection[tuple[Any, ...]],
    pg_dsn: str,
    logger: logging.Logger,
) -> None:
    """Found by the second review: one row slower than ``write_timeout`` stranded every
    record behind it.

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
    the fallback."""
    make_table(pg_dsn, table)
    slow_row = "IF NEW.message = 'slow' THEN PERFORM pg_sleep(2.5); END IF; RETURN NEW;"
    add_trigger(db, table, "slow", slow_row)
    said = ListHandler()
    handler = make_handler(
        batch_size=50, write_timeout=WRITE_TIMEOUT, connect_timeout=2, fallback=said
    )
    logger.addHandler(handler)
    logger.info("slow")
    emitted = [f"after-{i}" for i in range(OTHERS)]
    for message in emitted:
        logger.info(message)
    # Setting it aside takes about ten rounds (the pace halving to one row, then two
    # timeouts alone), each write_timeout plus the lookup's grace: some 25 s, 60 s allowed.
    done = true_within(lambda: set(emitted) <= set(stored(pg_dsn, table)), 60, interval=0.5)
    stats = handler.stats()
    rows = stored(pg_dsn, table)
    notices = said.notices()
    print(f"done={done} stored={len(rows)} {ledger(stats)} last_error={stats['last_error']!r}")
    print("said:", *notices[:8], sep="\n  ")
    assert balanced(stats)
    assert done, (
        f"60 s on, {len(set(emitted) & set(rows))} of the {OTHERS} records behind one slow row"
        f" are stored ({ledger(stats)}): the slow row is sent alone again and again, and"
        " everything queued behind it waits for ever"
    )
    assert sorted(rows).count("slow") <= 1
