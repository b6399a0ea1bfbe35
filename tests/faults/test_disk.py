"""A full disk under the spool (ENOSPC for blocks, or for inodes) while the database is
away and when it comes back: the writer lives on, rests the spool and tries again, never
stores a record it also handed to the fallback, and once space is freed the records
reach the table."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HandlerFactory
from disks import Tmpfs, exhaust_inodes, fill, free_bytes, free_inodes, release
from faultproxy import FaultProxy
from helpers import TABLE, ListHandler, stored, true_within
from pgserver import PostgresServer

from faults.kit import (
    SPOOLING,
    Tally,
    balanced,
    cpu_over,
    delivered,
    ledger,
    lost,
    produce,
    writer_threads,
)
from pglog import DatabaseLogHandler
from pglog._capture.capture import capture
from pglog._writer.segments import Destination, Recorded, SpoolError
from pglog._writer.spool import Spool


@pytest.fixture(params=["blocks", "inodes"])
def disk(request: pytest.FixtureRequest) -> Iterator[tuple[str, Tmpfs]]:
    """A tmpfs for the spool: "blocks", 1 MiB of which a filler leaves ~400 KiB, so the
    spool fills up while the database is away; "inodes", 8 MiB but 64 inodes, so spooling
    works and then no file can be created."""
    kind = str(request.param)
    with Tmpfs("1m") if kind == "blocks" else Tmpfs("8m", nr_inodes=64) as tmpfs:
        yield kind, tmpfs


def test_a_full_disk_under_the_spool_never_kills_the_writer_nor_doubles_a_record(
    disk: tuple[str, Tmpfs],
    through_proxy: HandlerFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    logger: logging.Logger,
) -> None:
    """Database away (the proxy refuses): 6,000 records, more than the spool's disk holds.
    Then the disk is filled to the last block (or inode) and the database comes back, so
    the spool can neither take records nor record its replay progress. Then the fillers
    are removed and 200 more records logged. Throughout, the writer thread is alive and
    does not spin; in the end the records reach the table, no record is both in the
    table and in the fallback (also after a next run replays what is left of the spool),
    nothing is stored twice, nothing stays pending, and the ledger balances."""
    kind, tmpfs = disk
    spool_dir = tmpfs.path / "spool"
    fillers: list[Path] = []
    if kind == "blocks":
        fillers.append(tmpfs.path / "filler")
        fill(fillers[0], leave=400 << 10)
    fallback = ListHandler()
    before = set(writer_threads())
    proxy.refuse()
    handler = through_proxy(**SPOOLING, spool_dir=spool_dir, fallback=fallback)
    logger.addHandler(handler)
    alive: dict[str, bool] = {}
    cpu: dict[str, float] = {}
    try:
        emitted = produce(logger, "m", 200, rate=5_000)
        assert true_within(lambda: set(writer_threads()) - before, 5)
        [writer] = set(writer_threads()) - before
        emitted += produce(logger, "m", 5_800, rate=3_000, start=200)
        assert balanced(handler.stats()), ledger(handler.stats())
        alive["database away, disk filling"] = writer.is_alive()
        print(f"database away: {ledger(handler.stats())} spool_free={free_bytes(tmpfs.path)}")

        # The disk full to the last block (or inode), then the database back.
        if kind == "blocks":
            fillers.append(tmpfs.path / "filler-2")
            fill(fillers[1])
        else:
            fillers.append(exhaust_inodes(tmpfs.path))
        print(f"disk full: free bytes={free_bytes(tmpfs.path)} inodes={free_inodes(tmpfs.path)}")
        reconnects = proxy.accepted
        proxy.refuse(False)
        handler.flush(2)  # cuts a back-off short: the writer tries the database now
        reached = true_within(lambda: proxy.accepted > reconnects, 12)
        cpu["disk full, database back"] = cpu_over(writer)
        alive["disk full, database back"] = writer.is_alive()
        print(f"disk full, database back (reached={reached}): {ledger(handler.stats())}")

        # Space freed: the spool is tried again, and records reach the table.
        for filler in fillers:
            release(filler)
        late = produce(logger, "after", 200, rate=2_000)
        emitted += late
        drained = delivered(handler, server.dsn, TABLE, late, 15)
        cpu["space freed"] = cpu_over(writer)
        alive["space freed"] = writer.is_alive()
        stats = handler.stats()
        print(f"space freed (drained={drained}): {ledger(stats)}")
        balanced_then = balanced(stats)
    finally:
        proxy.refuse(False)
        handler.close()
    # The next run on this spool replays whatever the first left behind.
    replayer = DatabaseLogHandler(
        proxy.dsn, table=TABLE, spool_dir=spool_dir, close_timeout=15, fallback=fallback
    )
    replayer.start()
    replayer.close()
    after_close = handler.stats()
    tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
    tally.show(
        f"full disk ({kind})",
        [
            ledger(after_close),
            f"alive={alive} cpu={cpu}",
            f"replayed={replayer.stats()['replayed']}",
        ],
    )
    died = [moment for moment, living in alive.items() if not living]
    assert died == [], f"the writer thread was dead at: {died}"
    assert all(seconds < 0.3 for seconds in cpu.values()), f"the writer spins: {cpu} CPU s in 2 s"
    both, duplicated = len(tally.both), len(tally.duplicated)
    assert both == 0, f"{both} records both in the table and in the fallback: {tally.both[:3]}"
    assert duplicated == 0, f"{duplicated} stored twice: {tally.duplicated[:3]}"
    assert drained, (
        f"15 s after space was freed, records still pending or the {len(late)} logged then"
        f" not all stored: {ledger(stats)}"
    )
    assert balanced_then, ledger(stats)
    assert balanced(after_close), ledger(after_close)
    assert after_close["pending"] == 0, ledger(after_close)
    accounted = len(tally.stored) + len(tally.fallback) + after_close["dropped"] + lost(after_close)
    assert accounted == len(emitted), f"{accounted} accounted for of {len(emitted)}"


def test_a_transaction_that_cannot_be_recorded_leaves_no_lines_to_replay() -> None:
    """close() spools a batch whose COMMIT's fate is unknown with its transaction recorded
    beside it. The lines are written, then the progress file can't be created (the disk's
    last inode went to the segment): the append fails as a whole, and replay finds
    nothing of it; had the lines stayed, records the caller kept elsewhere (handed to the
    fallback) would be written as well."""
    log = logging.getLogger("spool.test")
    entries = [
        capture(log.makeRecord(log.name, logging.INFO, __file__, 1, f"m-{i}", (), None))
        for i in range(3)
    ]
    destination = Destination("public.logs", ("127.0.0.1",), "5432", "postgres")
    with Tmpfs("1m", nr_inodes=16) as tmpfs:
        spool = Spool(tmpfs.path / "spool", 1 << 20, destination)
        spool.open()
        filler = exhaust_inodes(tmpfs.path, leave=1)
        with pytest.raises(SpoolError):
            spool.append(entries, 0, Recorded("1234", 3, "2026-12-01"))
        release(filler)
        replayed = spool.claim(100)
        spool.close()
    assert replayed is None or replayed.entries == []
