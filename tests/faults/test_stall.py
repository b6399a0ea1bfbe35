"""A stalled network: packets stop, nothing closes. The writer must notice within
``write_timeout``, say it is a stall, and, with a spool, keep moving records to disk
meanwhile."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from conftest import HandlerFactory
from faultproxy import FaultProxy
from helpers import TABLE, ListHandler, stored, true_within
from pgserver import PostgresServer

from faults.kit import Tally, balanced, ledger, lost, produce

WRITE_TIMEOUT = 2.0
#: The contract's new option; today's constructor refuses it (TypeError).
NEW_OPTIONS: dict[str, Any] = {"write_timeout": WRITE_TIMEOUT}


def test_a_stalled_connection_is_given_up_within_write_timeout(
    through_proxy: HandlerFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    logger: logging.Logger,
) -> None:
    """The proxy stops forwarding (no FIN, no RST) while the writer is connected and has a
    batch to send: within write_timeout + 3 s the stats say the connection is given up
    (connected False, an error recorded, failing since); after the network comes back
    every record is stored exactly once and the ledger balances."""
    fallback = ListHandler()
    handler = through_proxy(batch_size=100, connect_timeout=2, **NEW_OPTIONS, fallback=fallback)
    logger.addHandler(handler)
    try:
        logger.info("m-0")
        assert handler.flush(10)
        assert handler.stats()["connected"] is True
        proxy.stall(at="copy")
        emitted = ["m-0", *produce(logger, "m", 1_000, rate=5_000, start=1)]
        assert true_within(lambda: proxy.stalled, 5), "no COPY came to be stalled"
        assert proxy.stalled_since is not None
        stalled_at = proxy.stalled_since

        def given_up() -> bool:
            stats = handler.stats()
            return not stats["connected"] and stats["last_error"] is not None

        noticed = true_within(given_up, WRITE_TIMEOUT + 3 - (time.monotonic() - stalled_at))
        waited = time.monotonic() - stalled_at
        stats = handler.stats()
        print(
            f"stall noticed={noticed} after {waited:.1f}s: connected={stats['connected']}"
            f" last_error={stats['last_error']!r} failing_since={stats['failing_since']}"
            f" {ledger(stats)}"
        )
        assert noticed, (
            f"{waited:.1f}s into the stall the writer still shows connected={stats['connected']},"
            f" last_error={stats['last_error']!r}: it sits in I/O without noticing"
        )
        assert stats["failing_since"] is not None
        assert balanced(stats), ledger(stats)
        proxy.resume()
        assert handler.flush(30), ledger(handler.stats())
        stats = handler.stats()
        tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
        tally.show("after resume", [ledger(stats)])
        missing, duplicated, handed = len(tally.missing), len(tally.duplicated), len(tally.fallback)
        assert duplicated == 0, f"stored twice: {tally.duplicated[:5]}"
        assert missing == 0, f"lost: {tally.missing[:5]}"
        assert handed == 0, "the stall sent records to the fallback"
        assert (stats["pending"], lost(stats)) == (0, 0)
        assert balanced(stats), ledger(stats)
    finally:
        proxy.resume()
        handler.close()


def test_a_stall_drops_nothing_the_spool_could_hold(
    through_proxy: HandlerFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    tmp_path: Path,
    logger: logging.Logger,
) -> None:
    """With spool_dir set and room for 1,000 records in memory, a producer at 1,500 a second
    logs through an 8 s stall: records go to disk while the writer is stuck in I/O, so none
    is dropped; after the network comes back every record is stored exactly once, none in
    the fallback, nothing pending, and the ledger balances at every step."""
    fallback = ListHandler()
    handler = through_proxy(
        queue_size=1_000,
        batch_size=100,
        connect_timeout=2,
        spool_dir=tmp_path / "spool",
        fallback=fallback,
    )
    logger.addHandler(handler)
    try:
        logger.info("m-0")
        assert handler.flush(10)
        proxy.stall(at="copy")
        emitted = ["m-0"]
        for second in range(8):
            emitted += produce(logger, "m", 1_500, rate=1_500, start=1 + second * 1_500)
            assert balanced(handler.stats()), ledger(handler.stats())
        during = handler.stats()
        print(f"during the stall: emitted={len(emitted)} {ledger(during)}")
        proxy.resume()
        assert true_within(lambda: handler.stats()["pending"] == 0, 20), ledger(handler.stats())
        stats = handler.stats()
        tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages(logger.name))
        tally.show("after resume", [ledger(stats)])
        assert during["dropped"] == 0, (
            f"{during['dropped']} of {len(emitted)} records dropped during the stall"
            f" (spooled {during['spooled']}): the spool had room"
        )
        missing, duplicated, handed = len(tally.missing), len(tally.duplicated), len(tally.fallback)
        assert duplicated == 0, f"stored twice: {tally.duplicated[:5]}"
        assert missing == 0, f"lost: {missing}, e.g. {tally.missing[:5]}"
        assert handed == 0, f"{handed} records went to the fallback"
        assert (stats["dropped"], stats["pending"], lost(stats)) == (0, 0, 0)
        assert balanced(stats), ledger(stats)
    finally:
        proxy.resume()
        handler.close()


def test_a_stall_cut_short_by_write_timeout_is_said_to_be_one(
    through_proxy: HandlerFactory, proxy: FaultProxy, logger: logging.Logger
) -> None:
    """A COPY is stalled (no FIN, no RST); write_timeout is 1 s. The notice of the failure
    and ``last_error`` must say it timed out (no answer within 1 s), not that the server
    closed the connection.

    Found by the first review: ``Watchdog.armed`` raises ``Expired`` (which
    ``PostgresSink.bounded`` turns into ``Stalled``, "the server gave no answer within
    N s") only when the guarded block ends *without* an exception. But a block the
    watchdog cut short always ends with one: libpq fails on the socket that was shut down
    ("server closed the connection unexpectedly"), and that error passed through
    untouched, sending the operator to look at the server, which did nothing."""
    fallback = ListHandler()
    handler = through_proxy(connect_timeout=1, write_timeout=1, close_timeout=1, fallback=fallback)
    logger.addHandler(handler)
    try:
        logger.info("m-0")
        assert handler.flush(10)
        proxy.stall(at="copy")
        logger.info("m-1")
        assert true_within(lambda: fallback.messages("pglog"), 10), "nothing was said"
        said = fallback.messages("pglog")[0]
        last_error = handler.stats()["last_error"]
    finally:
        proxy.resume()
        handler.close()
    print(f"said: {said!r}; last_error={last_error!r}")
    assert "timed out" in said, f"the stall was said to be: {said!r}"
    assert "no answer" in str(last_error), last_error
