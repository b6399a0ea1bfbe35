"""The database away at start-up: the application keeps running, the console gets the records."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from conftest import HandlerFactory
from helpers import Blackhole, ListHandler, closed_port_dsn, run_python, runs


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def test_a_hanging_server_never_blocks_the_caller(
    make_handler: HandlerFactory, logger: logging.Logger, blackhole: Blackhole
) -> None:
    """With the writer stuck connecting, 20,000 calls return and every record waits in memory."""
    fallback = ListHandler()
    handler = make_handler(
        dsn=blackhole.dsn, connect_timeout=30, close_timeout=5, fallback=fallback
    )
    logger.addHandler(handler)
    for i in range(20_000):
        logger.info("record %d", i)
    stats = handler.stats()
    assert (stats["enqueued"], stats["pending"], stats["connected"]) == (20_000, 20_000, False)
    handler.close()  # the writer is still stuck in connect(): close must not wait for it
    assert fallback.messages(logger.name) == [f"record {i}" for i in range(20_000)]
    stats = handler.stats()
    assert (stats["fallback"], stats["pending"]) == (20_000, 0)


def test_a_refusing_server_sends_records_to_the_fallback_at_close(
    make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """Connection refused: records are kept, retried, and handed to the fallback by close()."""
    fallback = ListHandler()
    handler = make_handler(dsn=closed_port_dsn(), fallback=fallback)
    logger.addHandler(handler)
    for i in range(100):
        logger.error("record %d", i)
    assert handler.flush() is False
    assert handler.stats()["pending"] == 100
    handler.close()
    assert fallback.messages(logger.name) == [f"record {i}" for i in range(100)]
    assert any("could not be written" in m for m in fallback.messages("pglog"))
    assert "Connection refused" in handler.stats()["last_error"]


def test_flush_returns_promptly_when_the_database_is_away(
    make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """flush() without a timeout stops waiting once the writer finds the database away."""
    handler = make_handler(dsn=closed_port_dsn(), fallback=ListHandler())
    logger.addHandler(handler)
    logger.info("one")
    result: list[bool] = []
    handler.close_timeout = 3600
    waiter = threading.Thread(target=lambda: result.append(handler.flush()))
    waiter.start()
    waiter.join(60)  # a hang guard; the assertion is that it returned at all
    assert result == [False]


def test_a_program_exits_promptly_and_prints_its_records_when_the_database_is_away() -> None:
    """A script that logs with the database refusing connections ends, its records on stderr."""
    script = f"""
import logging
from pglog import DatabaseLogHandler
logging.getLogger().addHandler(DatabaseLogHandler({closed_port_dsn()!r}, table="x"))
log = logging.getLogger("app")
for i in range(50):
    log.warning("record %d", i)
"""
    result = run_python(script, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " app: record " in line]
    assert [line.split("record ")[1] for line in lines] == [str(i) for i in range(50)]
    assert "could not be written" in result.stderr


def test_a_program_exits_within_close_timeout_when_the_server_hangs(blackhole: Blackhole) -> None:
    """A server that never answers delays exit by close_timeout at most, not connect_timeout."""
    script = f"""
import logging
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({blackhole.dsn!r}, table="x", connect_timeout=600, close_timeout=1)
logging.getLogger().addHandler(handler)
logging.getLogger("app").warning("stuck")
"""
    result = run_python(script, timeout=60)  # were exit to wait for the connect, this would expire
    assert result.returncode == 0, result.stderr
    assert " app: stuck" in result.stderr


def test_overflow_drops_are_counted_and_reported_once_per_burst(
    make_handler: HandlerFactory, logger: logging.Logger, blackhole: Blackhole
) -> None:
    """A full queue drops by policy; the fallback hears of the burst once, with its size."""
    fallback = ListHandler()
    handler = make_handler(
        dsn=blackhole.dsn,
        queue_size=100,
        batch_size=10,
        connect_timeout=30,
        close_timeout=0.5,
        fallback=fallback,
    )
    logger.addHandler(handler)
    for i in range(1_000):
        logger.info("record %d", i)
    assert handler.stats()["dropped"] == 900
    handler.close()
    kept = fallback.messages(logger.name)
    assert len(kept) == 100
    found = runs(kept)
    assert len(found) <= 2  # the batch in flight (taken at some point), then the queue
    assert found[-1].stop == 1_000  # the queue: the newest records
    reports = [m for m in fallback.messages("pglog") if "dropped" in m]
    assert reports == [
        "pglog dropped 900 records: the queue was full (100 records, overflow='drop_oldest')"
    ]
    stats = handler.stats()
    assert stats["enqueued"] == stats["dropped"] + stats["fallback"] == 1_000
