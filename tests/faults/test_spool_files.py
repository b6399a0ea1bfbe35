"""Spool files removed under a running writer (a tmp cleaner, an rm -rf), also in the middle
of a replay: the writer does not spin, takes records again, counts what vanished with the
files as ``lost`` (never as pending), and stores everything else."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import IO

import pytest
from conftest import HandlerFactory
from faultproxy import FaultProxy
from helpers import TABLE, ListHandler, stored, true_within
from pgserver import PostgresServer

from faults.kit import (
    SPOOLING,
    Tally,
    balanced,
    cpu_over,
    delivered,
    drained,
    ledger,
    lost,
    produce,
    wait_for_count,
    writer_threads,
)
from pglog._writer.segments import read_segment

MESSAGE = 11  # where a spooled entry (a JSON array) keeps the message


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
def test_spool_files_removed_under_the_writer_are_counted_lost_and_the_writer_goes_on(  # noqa: PLR0917
    how: str,
    through_proxy: HandlerFactory,
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
    spool_dir = tmp_path / "spool"
    removed = Removed()
    fallback = ListHandler()
    before = set(writer_threads())
    proxy.refuse()
    handler = through_proxy(**SPOOLING, spool_dir=spool_dir, fallback=fallback)
    logger.addHandler(handler)
    cpu: dict[str, float] = {}
    try:
        emitted = produce(logger, "m", 3_000, rate=3_000)
        wait_for_count(handler, "spooled", 2_500)
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
        settled = delivered(handler, server.dsn, TABLE, late, 12)
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


def test_a_newer_segment_removed_during_a_replay_does_not_derail_the_replay(
    through_proxy: HandlerFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    tmp_path: Path,
    logger: logging.Logger,
) -> None:
    """The database is away: 300 records go to segment A. It comes back, and the first
    replayed batch of A is caught mid-COPY by a stall. Meanwhile 150 records spill to a
    new segment B (with those of the first 300 still in memory when A was claimed, below
    the spill mark); B is removed; 150 more spill (the spiller notices B is gone: its
    records are lost, and said). The network resumes.

    Then every record but B's must be stored exactly once, B's counted lost, nothing
    pending, the writer alive and the ledger balanced.

    Found by the first review: ``Spool._lose()`` (a segment found removed) ended with
    ``self._replaying = None`` whatever segment it lost. When the spiller found the
    *newest* segment gone (``append`` checks ``vanished``) while the writer was replaying
    the *oldest* one, the spool forgot the replay under the writer's feet: the writer's
    COMMIT succeeded, but ``advance()`` failed its ``_current`` assertion after the ledger
    had counted the rows as written, the segment was read again from its stale progress
    file, and every later replay raised: the writer met AssertionError after its COMMIT,
    then on every claim of the spool, and everything stayed pending."""
    spool_dir = tmp_path / "spool"
    fallback = ListHandler()
    proxy.refuse()
    handler = through_proxy(
        queue_size=200,
        batch_size=50,
        connect_timeout=2,
        write_timeout=60,
        close_timeout=2,
        spool_dir=spool_dir,
        fallback=fallback,
    )
    logger.addHandler(handler)
    try:
        emitted = produce(logger, "a", 300, rate=3_000)
        # at least what memory can't hold: the batch the writer is attempting stays its own
        wait_for_count(handler, "spool_pending", 200)
        [segment_a] = sorted(spool_dir.glob("*.rows"))

        proxy.stall(at="copy")
        proxy.refuse(False)
        handler.flush(0.5)  # cuts the writer's back-off short
        assert true_within(lambda: proxy.stalled, 20), "no replay COPY came to be stalled"
        assert handler.stats()["in_flight"] == 50, ledger(handler.stats())

        spooled = handler.stats()["spooled"]
        emitted += produce(logger, "b", 150, rate=3_000)
        wait_for_count(handler, "spooled", spooled + 100)
        newer = [p for p in spool_dir.glob("*.rows") if p != segment_a]
        assert newer, sorted(p.name for p in spool_dir.iterdir())
        in_b = {entry.message for path in newer for entry in read_segment(path)[1]}
        for path in newer:
            path.unlink()
        spooled = handler.stats()["spooled"]
        emitted += produce(logger, "c", 150, rate=3_000)
        wait_for_count(handler, "spooled", spooled + 100)
        proxy.resume()
        settled = drained(handler, 30)
        stats = handler.stats()
    finally:
        proxy.resume()
        proxy.refuse(False)
        handler.close()
    final = handler.stats()
    tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
    said = [m for m in fallback.messages("pglog") if "unexpected error" in m]
    tally.show(
        "newer segment removed during a replay",
        [f"before close: {ledger(stats)}", f"after close: {ledger(final)}", f"said={said[:2]}"],
    )
    assert settled, f"still pending 30 s after the network came back: {ledger(stats)}; said {said}"
    assert not said, f"the writer met unexpected errors: {said[:2]}"
    assert tally.duplicated == [], f"stored twice: {tally.duplicated[:5]}"
    assert set(tally.missing) <= in_b, f"lost beyond segment B: {tally.missing[:5]}"
    assert lost(final) == len(tally.missing), ledger(final)
    assert balanced(final), ledger(final)
