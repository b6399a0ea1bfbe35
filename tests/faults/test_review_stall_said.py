"""Review: what a stall is said to be.

``Watchdog.armed`` raises ``Expired`` (which ``PostgresSink.bounded`` turns into
``Stalled``, "the server gave no answer within N s") only when the guarded block ends
*without* an exception. But a block the watchdog cut short always ends with one: libpq
fails on the socket that was shut down ("server closed the connection unexpectedly"),
and that error passes through untouched. So a stall is reported as the server closing
the connection: the operator is sent to look at the server, which did nothing."""

from __future__ import annotations

import logging

from faultproxy import FaultProxy
from helpers import ListHandler
from pgserver import PostgresServer

from faults.kit import wait_until
from pglog import DatabaseLogHandler

TABLE = "logs"


def test_a_stall_cut_short_by_write_timeout_is_said_to_be_one(
    server: PostgresServer, proxy: FaultProxy, logger: logging.Logger
) -> None:
    """A COPY is stalled (no FIN, no RST); write_timeout is 1 s. The notice of the failure
    and ``last_error`` must say it timed out (no answer within 1 s), not that the server
    closed the connection."""
    probe = DatabaseLogHandler(server.dsn, table=TABLE, fallback=None)
    assert probe.check_database() is None
    probe.close()
    fallback = ListHandler()
    handler = DatabaseLogHandler(
        proxy.dsn,
        table=TABLE,
        flush_interval=0.05,
        connect_timeout=1,
        write_timeout=1,
        close_timeout=1,
        fallback=fallback,
    )
    logger.addHandler(handler)
    try:
        logger.info("m-0")
        assert handler.flush(10)
        proxy.stall(at="copy")
        logger.info("m-1")
        assert wait_until(lambda: fallback.messages("pglog"), 10), "nothing was said"
        said = fallback.messages("pglog")[0]
        last_error = handler.stats()["last_error"]
    finally:
        proxy.resume()
        handler.close()
    print(f"said: {said!r}; last_error={last_error!r}")
    assert "timed out" in said, f"the stall was said to be: {said!r}"
    assert "no answer" in str(last_error), last_error
