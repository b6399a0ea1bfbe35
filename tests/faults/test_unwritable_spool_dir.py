"""Review 2: the spool's directory made unwritable mid-run (``chattr +i``: no file may be
created, renamed or removed in it, as for a non-root process that lost write permission,
though the files already open still take appends).

Records spooled during an outage; then the directory becomes immutable and the database
returns. README: "the spool's disk is full or failing (ENOSPC, EIO, read-only, inodes):
never a reason to reject a record ... newer records are written while the spool can't be
replayed". Then the directory is writable again: everything must be stored exactly once.

This one PASSES on the current code: a property that holds. With steady logging (25/s,
below the spill mark) all 300 newer records are written within the window while the
1,000 spooled wait (``prepare_commit`` can't create its progress file: SpoolError, the
spool rests, the queue is written meanwhile); once writable, 1,300 of 1,300 stored once.
Caveat seen while writing it (not asserted here): a burst of at least the spill mark
logged as the database returns is appended by the spiller to the active segment (open
files still take appends) behind the backlog, and is not written until the directory is
writable again (100 of 100 waited 20 s and more), while the notice says only "can't spool
any more (can't record a transaction in the spool ...)".
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from conftest import HandlerFactory
from faultproxy import FaultProxy
from helpers import TABLE, ListHandler, stored, true_within
from pgserver import PostgresServer

from faults.kit import Tally, balanced, ledger, produce, wait_for_count


def test_an_immutable_spool_directory_costs_no_record(
    through_proxy: HandlerFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    tmp_path: Path,
    logger: logging.Logger,
) -> None:
    spool = tmp_path / "spool"
    fallback = ListHandler()
    handler = through_proxy(
        queue_size=200, overflow="block", batch_size=50, spool_dir=spool, fallback=fallback
    )
    logger.addHandler(handler)
    emitted: list[str] = []
    try:
        proxy.refuse()
        for i in range(1000):
            emitted.append(f"old-{i}")
            logger.info(emitted[-1])
        wait_for_count(handler, "spooled", 500)
        subprocess.run(["chattr", "+i", str(spool)], check=True)
        proxy.refuse(False)
        new = produce(logger, "new", 300, rate=25)  # 12 s of steady logging
        emitted.extend(new)
        written_new = true_within(lambda: set(new) <= set(stored(server.dsn, TABLE)), 5, 0.2)
        during = handler.stats()
        got = len(set(new) & set(stored(server.dsn, TABLE)))
        print(f"\nimmutable: new stored {got}/{len(new)} {ledger(during)}")
    finally:
        subprocess.run(["chattr", "-i", str(spool)], check=True)
    assert handler.flush(60)
    stats = handler.stats()
    handler.close()
    tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
    notices = fallback.notices()
    tally.show("immutable spool dir", [ledger(stats)])
    print("said:", *notices[:8], sep="\n  ")
    assert balanced(stats)
    assert written_new, (
        f"only {got} of the {len(new)} records logged while the spool could not be replayed"
        " were written meanwhile"
    )
    assert not tally.missing
    assert not tally.duplicated
    assert not tally.both
