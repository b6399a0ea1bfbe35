"""Review: a spool segment removed while another one is being replayed.

``Spool._lose()`` (a segment found removed) ends with ``self._replaying = None`` whatever
segment it lost. When the spiller finds the *newest* segment gone (``append`` checks
``vanished``) while the writer is in the middle of replaying the *oldest* one, the spool
forgets the replay under the writer's feet: the writer's COMMIT then succeeds, but
``advance()`` fails its ``_current`` assertion after the ledger already counted the rows
as written, the segment is read again from its stale progress file, and its records are
the spool's again for the ledger, which no longer holds them there: every later replay
raises, and the writer stops taking anything."""

from __future__ import annotations

import logging
from pathlib import Path

from faultproxy import FaultProxy
from helpers import ListHandler
from pgserver import PostgresServer

from faults.kit import Tally, balanced, ledger, lost, produce, stored, wait_until
from pglog import DatabaseLogHandler
from pglog._writer.segments import read_segment

TABLE = "logs"


def make_table(dsn: str) -> None:
    handler = DatabaseLogHandler(dsn, table=TABLE, fallback=None)
    assert handler.check_database() is None
    handler.close()


def test_a_newer_segment_removed_during_a_replay_does_not_derail_the_replay(
    server: PostgresServer, proxy: FaultProxy, tmp_path: Path, logger: logging.Logger
) -> None:
    """The database is away: 300 records go to segment A. It comes back, and the first
    replayed batch of A is caught mid-COPY by a stall. Meanwhile 150 records spill to a
    new segment B (with those of the first 300 still in memory when A was claimed, below
    the spill mark); B is removed; 150 more spill (the spiller notices B is gone: its
    records are lost, and said). The network resumes.

    Then every record but B's must be stored exactly once, B's counted lost, nothing
    pending, the writer alive and the ledger balanced. Today the writer meets
    AssertionError after its COMMIT, then on every claim of the spool: nothing more is
    written and everything stays pending."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    fallback = ListHandler()
    proxy.refuse()
    handler = DatabaseLogHandler(
        proxy.dsn,
        table=TABLE,
        queue_size=200,
        batch_size=50,
        flush_interval=0.05,
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
        assert wait_until(lambda: handler.stats()["spool_pending"] >= 200, 10), ledger(
            handler.stats()
        )
        [segment_a] = sorted(spool_dir.glob("*.rows"))

        proxy.stall(at="copy")
        proxy.refuse(False)
        handler.flush(0.5)  # cuts the writer's back-off short
        assert wait_until(lambda: proxy.stalled, 20), "no replay COPY came to be stalled"
        assert handler.stats()["in_flight"] == 50, ledger(handler.stats())

        spooled = handler.stats()["spooled"]
        emitted += produce(logger, "b", 150, rate=3_000)
        assert wait_until(lambda: handler.stats()["spooled"] >= spooled + 100, 10), ledger(
            handler.stats()
        )
        newer = [p for p in spool_dir.glob("*.rows") if p != segment_a]
        assert newer, sorted(p.name for p in spool_dir.iterdir())
        in_b = {entry.message for path in newer for entry in read_segment(path)[1]}
        for path in newer:
            path.unlink()
        spooled = handler.stats()["spooled"]
        emitted += produce(logger, "c", 150, rate=3_000)
        assert wait_until(lambda: handler.stats()["spooled"] >= spooled + 100, 10), ledger(
            handler.stats()
        )
        proxy.resume()
        settled = wait_until(lambda: handler.flush(1) and handler.stats()["pending"] == 0, 30)
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
