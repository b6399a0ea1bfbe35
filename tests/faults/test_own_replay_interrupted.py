"""Review: a batch replayed from this process's own spool, put back unsettled.

``Writer._write`` (on ``Result.UNKNOWN``) and ``Writer._put_back`` (on AWAY, DISK, or an
unexpected error) call ``Spill.unload(batch)``, which moves the records from *replaying*
back to *spooled* in the ledger, and then ``InFlight.put_back()``, which releases them
from *replaying* once more. For this process's own records (``batch.own``) that second
release fails the ledger's assertion: the writer reports an unexpected error and backs
off, every time the COMMIT of a replayed batch is lost (or the database goes away
during a replay)."""

from __future__ import annotations

import logging
from pathlib import Path

from conftest import HandlerFactory
from disks import Tmpfs, fill, release
from faultproxy import FaultProxy
from helpers import TABLE, ListHandler, stored, true_within
from pgserver import PostgresServer

from faults.kit import Tally, balanced, drained, ledger, produce, wait_for_count

#: The handler both tests replay their own spool with: memory for 200, batches of 50. The
#: producer waits for room rather than losing the oldest: on a loaded machine an fsync can
#: keep the spiller longer than 200 records take at 3,000 a second, and drops are not
#: what these tests are about.
OPTIONS = {"queue_size": 200, "batch_size": 50, "connect_timeout": 2, "overflow": "block"}


def test_a_lost_commit_of_an_own_replayed_batch_is_no_unexpected_error(
    through_proxy: HandlerFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    tmp_path: Path,
    logger: logging.Logger,
) -> None:
    """The database is away: 300 records go to the spool. It comes back with the reply of
    the first COMMIT cut (the transaction committed). The batch must be looked up and
    settled as written: every record stored once, nothing pending, and nothing said
    about an unexpected error.

    Before the fix, the writer says "pglog's writer met an unexpected error: AssertionError(...
    is not all held in replaying)" and backs off before the lookup."""
    fallback = ListHandler()
    proxy.refuse()
    handler = through_proxy(**OPTIONS, spool_dir=tmp_path / "spool", fallback=fallback)
    logger.addHandler(handler)
    try:
        emitted = produce(logger, "a", 300, rate=3_000)
        wait_for_count(handler, "spool_pending", 250)
        proxy.arm("after_commit")
        proxy.refuse(False)
        settled = drained(handler, 30)
        stats = handler.stats()
    finally:
        proxy.refuse(False)
        handler.close()
    tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
    unexpected = [m for m in fallback.messages("pglog") if "unexpected error" in m]
    tally.show("own replay, COMMIT reply lost", [ledger(stats), f"cuts={proxy.cuts}"])
    assert proxy.cuts["after_commit"] == 1
    assert settled, ledger(stats)
    assert (tally.missing, tally.duplicated) == ([], []), (tally.missing[:3], tally.duplicated[:3])
    assert unexpected == [], unexpected
    assert balanced(stats), ledger(stats)


def test_a_full_disk_during_an_own_replay_rests_the_spool_and_writes_the_queue(
    through_proxy: HandlerFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    logger: logging.Logger,
) -> None:
    """The database is away: 300 records go to a spool on a small tmpfs. The disk is then
    filled to the last block and the database comes back: the spool can't record its
    replay's transaction (``prepare_commit``: ENOSPC), so it must rest, and meanwhile the
    40 records logged next (fewer than the spill mark) are written ("newer records are
    written while the spool can't be replayed"). Once the filler is removed, everything is
    stored once.

    Before the fix, ``_put_back`` fails its assertion before ``Spill.failed()`` can rest the spool:
    the writer tries the spool again after each back-off, for ever, and never gets to the
    queue while the disk is full."""
    fallback = ListHandler()
    with Tmpfs("4m") as tmpfs:
        proxy.refuse()
        handler = through_proxy(**OPTIONS, spool_dir=tmpfs.path / "spool", fallback=fallback)
        logger.addHandler(handler)
        filler = tmpfs.path / "filler"
        try:
            emitted = produce(logger, "a", 300, rate=3_000)
            wait_for_count(handler, "spool_pending", 250)
            fill(filler)
            proxy.refuse(False)
            handler.flush(1)  # cuts the back-off short
            newer = produce(logger, "new", 40, rate=2_000)
            emitted += newer

            def newer_stored() -> bool:
                return set(newer) <= set(stored(server.dsn, TABLE))

            written_meanwhile = true_within(newer_stored, 15, interval=0.5)
            during = handler.stats()
            release(filler)
            settled = drained(handler, 30)
            stats = handler.stats()
        finally:
            release(filler)
            proxy.refuse(False)
            handler.close()
    tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
    unexpected = [m for m in fallback.messages("pglog") if "unexpected error" in m]
    tally.show(
        "own replay, disk full",
        [f"during: {ledger(during)}", f"after: {ledger(stats)}", f"said={unexpected[:1]}"],
    )
    assert written_meanwhile, (
        f"the 40 newer records were not written in 15 s with the database up and the"
        f" spool's disk full: {ledger(during)}; {unexpected[:1]}"
    )
    assert settled, ledger(stats)
    assert (tally.missing, tally.duplicated) == ([], []), (tally.missing[:3], tally.duplicated[:3])
    assert balanced(stats), ledger(stats)
