"""Review 2: close() takes over a batch whose transaction carries only part of it, and
spools it recording that transaction as covering the whole batch: the next process finds
it committed and skips every entry, the part that was never sent too. Silent loss,
counted as written.

A transaction often carries fewer rows than the batch in flight: ``Pace`` limits it after
a timeout, and ``Delivery._write_isolating`` writes a batch around a refused row in
parts. If close()'s deadline comes while such a part's COMMIT is under way (a slow commit:
a deferred trigger, a busy server, a slow sync replica), ``Pipeline._save_rest`` takes
the batch over and ``Spill.spool_batch`` records ``Recorded(transaction.xid,
len(batch.entries), ...)``: every entry of the batch, not the ``count`` rows that
transaction carries (``batch.unknown`` has the count, ``batch.transaction`` does not).
The COMMIT then succeeds. The next process on the spool (``Writer._settle_recorded``)
asks the server: committed, no restart, so ``Spill.settle_recorded`` skips
``pending.count`` entries: all of them.

Here: a batch of 100 with one row the table refuses (a CHECK) at index 50, and a deferred
constraint trigger that makes the COMMIT of the part holding row 0 take 3 s.
close_timeout 1 s, closed while that COMMIT (rows 0-49) runs. A second handler replays the
spool. Measured: emitted 99 storable, stored 50 (rows 0-49), the 49 good rows 51-99
nowhere: not in the table, not in the fallback, nothing said; the second handler counts
them as replayed. Deterministic.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import ListHandler, add_check, add_trigger, make_table, stored, true_within

from faults.kit import Tally, ledger, pglog_running


def test_a_part_committing_at_close_does_not_settle_the_whole_batch(  # noqa: PLR0917
    make_handler: HandlerFactory,
    table: str,
    db: psycopg.Connection[tuple[Any, ...]],
    pg_dsn: str,
    tmp_path: Path,
    logger: logging.Logger,
) -> None:
    make_table(pg_dsn, table)
    add_check(db, table, "no_bad", "message NOT LIKE 'bad%'")
    add_trigger(
        db,
        table,
        "slow_commit",
        "IF NEW.message = 'slow-commit' THEN PERFORM pg_sleep(3); END IF; RETURN NULL;",
        when="AFTER INSERT",
        deferred=True,
    )
    spool = tmp_path / "spool"
    fallback = ListHandler()
    first = make_handler(
        batch_size=100, flush_interval=5, close_timeout=1, spool_dir=spool, fallback=fallback
    )
    logger.addHandler(first)
    messages = ["slow-commit"] + [f"bad-{i}" if i == 50 else f"good-{i}" for i in range(1, 100)]
    for message in messages:
        logger.info(message)
    # The part before the refused row (rows 0-49) is committing; close() comes now.
    assert true_within(lambda: pglog_running(pg_dsn, "COMMIT"), 10)
    first.close()
    logger.removeHandler(first)
    closed = first.stats()
    assert true_within(lambda: not pglog_running(pg_dsn, "COMMIT"), 10)

    second = make_handler(batch_size=100, spool_dir=spool, fallback=fallback)
    second.start()
    assert true_within(lambda: second.flush(1) and not list(spool.glob("*.rows")), 30)
    replayed = second.stats()
    rows = stored(pg_dsn, table)
    handed = fallback.messages(logger.name)
    storable = [m for m in messages if not m.startswith("bad")]
    tally = Tally(storable, rows, handed)
    tally.show("close during a part's COMMIT", [f"first: {ledger(closed)}"])
    print(f"second: {ledger(replayed)}")
    assert not tally.missing, (
        f"{len(tally.missing)} records neither stored nor handed to the fallback"
        f" ({tally.missing[:3]}...): the spooled batch recorded its part's transaction as"
        " covering all of it, and the next process skipped every entry"
    )
