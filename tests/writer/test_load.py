"""Load: a burst against a stopped database stays within its memory bound, and each overflow
policy does what it says, without blocking the caller unless asked to."""

from __future__ import annotations

import logging
import threading

import pytest
from conftest import HandlerFactory
from helpers import Blackhole, ListHandler, closed_port_dsn, run_python, runs


def test_a_burst_against_a_stopped_database_stays_within_the_memory_bound() -> None:
    """300,000 records, room for 100,000: RSS grows by less than 1 KB per queued record,
    the caller is never blocked, and 200,000 drops are counted."""
    script = f"""
import logging, resource
from pglog import DatabaseLogHandler

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

handler = DatabaseLogHandler({closed_port_dsn()!r}, queue_size=100_000, fallback=None,
                             close_timeout=1)
log = logging.getLogger("burst")
log.propagate = False
log.addHandler(handler)
log.warning("warm up")
before = rss_kb()
for i in range(300_000):
    log.warning("burst record number %d with some text", i)
grown = rss_kb() - before
stats = handler.stats()
print(grown, stats["enqueued"], stats["dropped"], stats["pending"])
"""
    result = run_python(script, timeout=300)
    assert result.returncode == 0, result.stderr
    grown_kb, enqueued, dropped, pending = map(int, result.stdout.split())
    assert enqueued == 300_001
    assert pending <= 100_000
    assert dropped == enqueued - pending
    assert grown_kb * 1024 < 100_000 * 1024  # under 1 KB per queued record


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_drop_policies_keep_what_they_say(
    policy: str, make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """With the database hanging and a batch in flight, drop_oldest keeps the newest records
    in the queue, drop_newest the oldest; close() hands exactly those, after the batch in
    flight, to the fallback."""
    hole = Blackhole()
    fallback = ListHandler()
    handler = make_handler(
        dsn=hole.dsn,
        queue_size=100,
        batch_size=10,
        overflow=policy,
        close_timeout=0.5,
        connect_timeout=30,
        fallback=fallback,
    )
    logger.addHandler(handler)
    for i in range(1_000):
        logger.info("r%d", i)
    handler.close()
    hole.close()
    kept = fallback.messages(logger.name)
    assert len(kept) == 100
    assert handler.stats()["dropped"] == 900
    if policy == "drop_newest":
        assert runs(kept) == [range(100)]  # the batch in flight, then the queue, from r0
    else:
        found = runs(kept)
        assert len(found) <= 2  # the batch in flight (taken at some point), then the queue
        assert found[-1].stop == 1_000  # the queue: the newest records


def test_block_makes_the_caller_wait_for_room(
    make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """overflow='block' with the database away: the caller waits when the queue is full,
    drops nothing, and close() releases it (its record then goes to the fallback)."""
    fallback = ListHandler()
    handler = make_handler(
        dsn=closed_port_dsn(), queue_size=50, overflow="block", fallback=fallback, close_timeout=1
    )
    logger.addHandler(handler)
    done = threading.Event()

    def caller() -> None:
        for i in range(51):
            logger.info("b%d", i)
        done.set()

    thread = threading.Thread(target=caller)
    thread.start()
    queue = handler._pipeline.queue
    while not queue._space._waiters:  # type: ignore[attr-defined]
        assert thread.is_alive()
        threading.Event().wait(0.005)
    assert not done.is_set()
    assert handler.stats()["dropped"] == 0
    handler.close()
    thread.join(10)
    assert done.is_set()
    # the released caller's record reaches the fallback at once, the queued ones as close()
    # drains them: all there, none twice
    assert sorted(fallback.messages(logger.name)) == sorted(f"b{i}" for i in range(51))
    assert handler.stats()["dropped"] == 0
