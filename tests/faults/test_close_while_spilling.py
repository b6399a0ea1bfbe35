"""Review 2: close() while the spiller holds a chunk the spool then refuses strands the
chunk in the closed queue: pending for ever, lost at exit, never said as lost.

The database is away and the spool nearly useless (its limit is smaller than the chunk
the spiller takes). The application logs past the spill mark and closes its handler.
The spiller has taken the whole queue as one chunk (``queue.take(SPILL_CHUNK,
SPILLING)``) and is turning it into JSON lines, outside the spool's lock. Meanwhile
close(): the writer's ``_finish`` finds nothing it may take from the queue (a chunk is
spilling) and goes straight to ``Pipeline._save_rest``, which takes what is left of the
queue and hands it on, and then the writer's ``_ended`` gives the spiller one second
(``spill.stop``) and lets go of the spool. The spiller's ``Spool.append`` is then refused
(full) and ``Spill.spool_chunk`` gives the chunk back to the head of the queue
(``queue.give_back``): a queue that is closed, with no writer left to take it. Nothing
in ``save_rest``, ``close()`` or ``_ended`` looks at the queue again.

Measured (queue_size 4,000, spool_max_bytes 5 MB, records of ~24 KB as JSON lines): 2,150
logged, the spiller seen taking them (queue_depth 0), 10 more logged, close(): afterwards
queue_depth 2,050 to 2,150, pending the same (not in the spool), fallback 0, lost 0; a
second close() (the exit's) does nothing. stats() balances only by calling them pending;
nothing is said but "can't spool any more ... the overflow policy applies meanwhile". At
exit they are gone without a word: no fallback, no "lost". Fails 4 runs of 4. (README:
close() "hands the rest on (with a spool, to the spool; else to the fallback)".)
"""

from __future__ import annotations

import logging
from pathlib import Path

from conftest import HandlerFactory
from faultproxy import FaultProxy
from helpers import ListHandler, true_within

from faults.kit import balanced, ledger, spiller_threads

#: Non-ASCII, so that each JSON line is long (\\u escapes) and slow to make: ~24 KB.
PAD = "\u00e9" * 4000
MARK = 2_000


def test_close_while_a_chunk_is_spilling_leaves_nothing_in_memory(
    through_proxy: HandlerFactory, proxy: FaultProxy, tmp_path: Path, logger: logging.Logger
) -> None:
    proxy.refuse()
    proxy.cut_all()
    said = ListHandler()
    handler = through_proxy(
        queue_size=2 * MARK,
        batch_size=10,
        spool_dir=tmp_path / "spool",
        spool_max_bytes=5_000_000,  # the idle batch (100) and a few stragglers fit; a chunk not
        fallback=said,
    )
    logger.addHandler(handler)
    for i in range(MARK + 150):
        logger.info("r-%d", i, extra={"pad": PAD})
    # The spiller has taken the queue as one chunk (the queue is empty, nothing spooled).
    assert true_within(lambda: handler.stats()["queue_depth"] < MARK // 2, 5, interval=0.001)
    for i in range(MARK + 150, MARK + 160):
        logger.info("r-%d", i, extra={"pad": PAD})
    handler.close()
    assert true_within(lambda: not spiller_threads(), 15)
    handler.close()  # as the exit's logging.shutdown() does: it finds nothing to do
    stats = handler.stats()
    notices = said.notices()
    in_memory = stats["pending"] - stats["spool_pending"]
    print(f"after close: {ledger(stats)} queue_depth={stats['queue_depth']} in_memory={in_memory}")
    print("said:", *notices, sep="\n  ")
    assert balanced(stats)
    assert in_memory == 0, (
        f"after close() {in_memory} records are still in memory (queue_depth"
        f" {stats['queue_depth']}), with no writer left: the spiller gave its refused chunk"
        " back to a closed queue after close() had handed the queue on"
    )
