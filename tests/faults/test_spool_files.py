"""Spool files removed under a running writer (a tmp cleaner, an rm -rf): the writer does not
spin, takes records again, counts what vanished with the files as ``lost`` (never as
pending), and stores everything else."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import IO

import pytest
from faultproxy import FaultProxy
from helpers import ListHandler
from pgserver import PostgresServer

from faults.kit import (
    Tally,
    balanced,
    cpu_over,
    ledger,
    lost,
    produce,
    stored,
    wait_until,
    writer_threads,
)
from pglog import DatabaseLogHandler

TABLE = "logs"
MESSAGE = 11  # where a spooled entry (a JSON array) keeps the message


def make_table(dsn: str) -> None:
    handler = DatabaseLogHandler(dsn, table=TABLE, fallback=None)
    assert handler.check_database() is None
    handler.close()


class Removed:
    """Spool segments removed from under the writer, still readable here through files
    opened before the removal: what the writer appends to them afterwards shows too."""

    def __init__(self) -> None:
        self._handles: list[IO[bytes]] = []

    def keep(self, spool_dir: Path) -> int:
        """Open every segment in ``spool_dir``; returns how many."""
        segments = sorted(spool_dir.glob("*.rows"))
        self._handles += [segment.open("rb") for segment in segments]
        return len(segments)

    def messages(self) -> set[str]:
        found: set[str] = set()
        for handle in self._handles:
            handle.seek(0)
            for line in handle.read().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn last line
                if isinstance(entry, list) and len(entry) > MESSAGE:  # not the segment's header
                    found.add(str(entry[MESSAGE]))
        return found

    def close(self) -> None:
        for handle in self._handles:
            handle.close()


@pytest.mark.parametrize("how", ["segments", "directory"])
def test_spool_files_removed_under_the_writer_are_counted_lost_and_the_writer_goes_on(
    how: str,
    server: PostgresServer,
    proxy: FaultProxy,
    tmp_path: Path,
    logger: logging.Logger,
) -> None:
    """Database away: 3,000 records go to the spool. Then its files are removed ("segments":
    every *.rows and *.done, as a tmp cleaner does; "directory": rm -rf spool_dir) and 1,000
    more are logged. The writer must not spin (< 0.3 s CPU in 2 s, while the database is
    away and again once idle). When the database is back, 200 more records are stored,
    pending drains to 0, the records that vanished with the files (and only those) are
    counted in ``lost``, nothing is stored twice or also handed to the fallback, and the
    ledger balances."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    removed = Removed()
    fallback = ListHandler()
    before = set(writer_threads())
    proxy.refuse()
    handler = DatabaseLogHandler(
        proxy.dsn,
        table=TABLE,
        queue_size=1_000,
        batch_size=100,
        flush_interval=0.05,
        connect_timeout=2,
        close_timeout=5,
        spool_dir=spool_dir,
        fallback=fallback,
    )
    logger.addHandler(handler)
    cpu: dict[str, float] = {}
    try:
        emitted = produce(logger, "m", 3_000, rate=3_000)
        assert wait_until(lambda: handler.stats()["spooled"] >= 2_500, 10), ledger(handler.stats())
        [writer] = set(writer_threads()) - before
        segments = removed.keep(spool_dir)
        if how == "segments":
            for path in [*spool_dir.glob("*.rows"), *spool_dir.glob("*.done")]:
                path.unlink()
        else:
            shutil.rmtree(spool_dir)
        print(f"removed {segments} segments ({how}): {ledger(handler.stats())}")
        emitted += produce(logger, "b", 1_000, rate=2_000)
        cpu["database away"] = cpu_over(writer)
        print(f"database away, files gone: {ledger(handler.stats())} cpu={cpu}")

        proxy.refuse(False)
        handler.flush(2)  # cuts a back-off short
        emitted += produce(logger, "after", 200, rate=2_000)
        late = [m for m in emitted if m.startswith("after-")]

        def drained() -> bool:
            handler.flush(0.5)
            return handler.stats()["pending"] == 0 and set(late) <= set(stored(server.dsn, TABLE))

        settled = wait_until(drained, 12)
        cpu["idle"] = cpu_over(writer)
        alive = writer.is_alive()
        stats = handler.stats()
    finally:
        proxy.refuse(False)
        handler.close()
    final = handler.stats()
    gone = removed.messages()
    removed.close()
    tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
    vanished = set(tally.missing)
    tally.show(
        f"spool files removed ({how})",
        [
            f"before close: {ledger(stats)}",
            f"after close: {ledger(final)}",
            f"in removed files={len(gone)} cpu={cpu} alive={alive} settled={settled}",
            f"spool_dir now={sorted(p.name for p in spool_dir.glob('*'))[:6]}",
            f"pglog said={fallback.messages('pglog')[:3]}",
        ],
    )
    assert alive, "the writer thread died"
    spinning = {k: round(v, 2) for k, v in cpu.items() if v >= 0.3}
    assert not spinning, f"the writer spins: {spinning} CPU s in a 2 s window"
    late_stored = len(set(late) & tally.stored)
    assert late_stored == len(late), (
        f"{late_stored} of {len(late)} records logged after the database came back were stored"
    )
    assert stats["pending"] == 0, f"pending 12 s after the database came back: {ledger(stats)}"
    outside = sorted(vanished - gone)
    assert outside == [], f"{len(outside)} lost that were never in a removed file: {outside[:3]}"
    assert lost(final) == len(vanished), (
        f"lost={lost(final)} but {len(vanished)} records vanished with the removed files"
    )
    both, duplicated = len(tally.both), len(tally.duplicated)
    assert (both, duplicated) == (0, 0), f"both={tally.both[:3]} twice={tally.duplicated[:3]}"
    assert final["dropped"] == 0
    assert balanced(stats), ledger(stats)
    assert balanced(final), ledger(final)
