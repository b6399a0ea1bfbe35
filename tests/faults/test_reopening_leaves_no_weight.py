"""Review: a closed handler that gets a record opens again (``_handler._after_close``).
That record is queued with ``put_weighed`` whatever it is; a light record (short text,
see ``queue.is_light``) is never un-weighed when the writer takes it, so each reopening
leaves its weight in the queue's byte count for good. Past ``queue_max_bytes`` every
record with more than a little text then meets a "full" queue, however empty it is:
``block`` waits for ever, ``drop_oldest`` throws the whole queue away and then the
record too."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from conftest import HandlerFactory
from helpers import stored

from faults.kit import balanced, cpu_over, ledger, spiller_threads

MAX_BYTES = 1_000
#: Over 256 characters: weighed against queue_max_bytes (about 400 + 300 bytes).
LONG = "x" * 300


@pytest.mark.parametrize("overflow", ["block", "drop_oldest"])
def test_records_after_reopening_leave_no_weight_behind(
    overflow: str,
    make_handler: HandlerFactory,
    table: str,
    pg_dsn: str,
    logger: logging.Logger,
) -> None:
    """close(), then a short record (the handler opens again), flushed: the queue is empty
    and the database up. A record with 300 characters must then be queued and stored
    (and the caller of "block" must return).

    Before the fix, the reopening record's ~410 bytes stay counted, 410 + 700 > 1,000: "block"
    blocks the caller with an empty queue and the database up; "drop_oldest" drops it."""
    handler = make_handler(queue_max_bytes=MAX_BYTES, overflow=overflow, fallback=None)
    logger.addHandler(handler)
    logger.info("before")
    assert handler.flush(10)
    handler.close()
    logger.info("after-close")  # opens the handler again
    assert handler.flush(10)
    assert handler.stats()["queue_depth"] == 0

    caller = threading.Thread(target=logger.info, args=(f"long {LONG}",), daemon=True)
    caller.start()
    caller.join(10)
    blocked = caller.is_alive()
    flushed = handler.flush(10) if not blocked else False
    stats = handler.stats()
    rows = stored(pg_dsn, table)
    print(f"overflow={overflow} blocked={blocked} flushed={flushed} {ledger(stats)} rows={rows}")
    assert not blocked, (
        "the caller has been blocked for 10 s with an empty queue and the database up:"
        f" {ledger(stats)}"
    )
    assert stats["dropped"] == 0, f"dropped with an empty queue: {ledger(stats)}"
    assert rows == ["before", "after-close", f"long {LONG}"]
    assert balanced(stats), ledger(stats)


def test_reopening_a_spooling_handler_does_not_make_its_spiller_spin(
    make_handler: HandlerFactory,
    table: str,
    pg_dsn: str,
    logger: logging.Logger,
    tmp_path: Path,
) -> None:
    """The same leak with spool_dir: two reopenings leave ~820 bytes counted, past half of
    queue_max_bytes (the spill mark in bytes), with nothing queued. The spiller must sleep.

    Before the fix, wait_to_spill() returns at once (past the mark), spill_down() finds nothing to
    take, and round it goes: the spiller thread burns a core while the queue is empty."""
    handler = make_handler(queue_max_bytes=MAX_BYTES, spool_dir=tmp_path / "spool", fallback=None)
    logger.addHandler(handler)
    logger.info("before")
    assert handler.flush(10)
    for i in range(2):
        handler.close()
        logger.info(f"after-close-{i}")  # opens the handler again
        assert handler.flush(10)
    spillers = spiller_threads()
    assert spillers, "no spiller thread"
    busy = max(cpu_over(spiller, 2.0) for spiller in spillers)
    stats = handler.stats()
    print(f"spiller CPU over 2 s: {busy:.2f} s; {ledger(stats)}")
    assert stats["queue_depth"] == 0
    assert busy < 0.2, f"the spiller used {busy:.2f} s of CPU in 2 s with an empty queue"
    assert stored(pg_dsn, table) == ["before", "after-close-0", "after-close-1"]
