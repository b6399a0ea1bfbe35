"""Review: a batch the table rejects is handed to the fallback *before* it is settled.

``Delivery.hand_to_fallback`` calls ``Fallback.hand_over(batch.entries[:count])`` and only
then ``settle()``. Between the failed attempt (``InFlight.ended()``: not sending any
more) and that settle, the batch is idle in flight, and the spiller's ``take_idle()``
may take it to the spool. The writer then hands the same records to the fallback
anyway (its settle finds the batch gone and does nothing): they are in the fallback,
and the spool replays them into the table once it takes rows again. The window holds
the notice of the failure, which is I/O (the fallback handler, or stderr)."""

from __future__ import annotations

import collections
import logging
import threading
from pathlib import Path
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import ListHandler, add_trigger, stored, true_within
from psycopg import sql

from faults.kit import balanced, drained, ledger


class GatedFallback(ListHandler):
    """Keeps every record; holds the writer on the first notice containing each gate's
    words until the test opens that gate."""

    def __init__(self, *gates: str) -> None:
        super().__init__()
        self.reached = {words: threading.Event() for words in gates}
        self.opened = {words: threading.Event() for words in gates}

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.name != "pglog":
            return
        for words, reached in self.reached.items():
            if words in record.getMessage() and not reached.is_set():
                reached.set()
                self.opened[words].wait(30)


def test_a_rejected_batch_taken_by_the_spiller_is_not_also_handed_to_the_fallback(  # noqa: PLR0917
    make_handler: HandlerFactory,
    table: str,
    db: psycopg.Connection[tuple[Any, ...]],
    pg_dsn: str,
    logger: logging.Logger,
    tmp_path: Path,
) -> None:
    """A trigger makes the table refuse every batch (SQLSTATE P0001: rejected, to the
    fallback). While the writer says so, 600 more records pass the spill mark and the
    spiller takes the idle batch to the spool. Once the writer has handed its batch on,
    the trigger is dropped and everything drains. Each record must end in exactly one
    place: the table or the fallback.

    Before the fix, the first batch's 100 records are in the fallback *and* in the table."""
    handler = make_handler(
        queue_size=1_000, batch_size=100, spool_dir=tmp_path / "spool", fallback=None
    )
    assert handler.check_database() is None
    handler.close()
    add_trigger(db, table, "refuse", "RAISE EXCEPTION 'refused by the review';")
    fallback = GatedFallback("can't write", "records to the fallback")
    handler = make_handler(
        queue_size=1_000, batch_size=100, spool_dir=tmp_path / "spool", fallback=fallback
    )
    logger.addHandler(handler)
    emitted = [f"m-{i}" for i in range(100)]
    for message in emitted:
        logger.info(message)
    assert fallback.reached["can't write"].wait(15), "the refusal was never said"
    held = ledger(handler.stats())
    more = [f"n-{i}" for i in range(600)]
    for message in more:
        logger.info(message)
    emitted += more
    spilled = true_within(
        lambda: handler.stats()["in_flight"] == 0 and handler.stats()["spooled"] >= 100, 10
    )
    during = ledger(handler.stats())
    fallback.opened["can't write"].set()
    assert fallback.reached["records to the fallback"].wait(15), "nothing was handed on"
    db.execute(sql.SQL("DROP TRIGGER refuse ON {}").format(sql.Identifier(table)))
    fallback.opened["records to the fallback"].set()
    settled = drained(handler, 30)
    stats = handler.stats()
    rows = collections.Counter(stored(pg_dsn, table))
    handed = collections.Counter(fallback.messages(logger.name))
    twice = sorted(m for m in emitted if rows[m] + handed[m] > 1)
    nowhere = sorted(m for m in emitted if rows[m] + handed[m] == 0)
    print(
        f"held by the notice: {held}; spiller took it: {spilled} ({during}); end: {ledger(stats)}"
        f" stored={sum(rows.values())} handed={sum(handed.values())} twice={len(twice)}"
        f" nowhere={len(nowhere)}"
    )
    assert settled, ledger(stats)
    assert twice == [], (
        f"{len(twice)} records both in the fallback and stored (or handed twice), e.g."
        f" {twice[:3]}; the ledger says fallback={stats['fallback']} written={stats['written']}"
    )
    assert nowhere == [], nowhere[:5]
    assert balanced(stats), ledger(stats)
