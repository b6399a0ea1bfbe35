"""Delivery through faults: every record emitted is stored exactly once, in order per thread.

Each test ends by comparing the multiset of stored messages with what was emitted.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import psycopg
import pytest
from faultproxy import FaultProxy
from helpers import ListHandler
from pgserver import PostgresServer

from pglog import DatabaseLogHandler


@pytest.fixture(params=[None, "day"], ids=["plain", "partitioned"])
def partition(request: pytest.FixtureRequest) -> str | None:
    """Every test here runs on both layouts: a plain table, and one partitioned by day."""
    return request.param  # type: ignore[no-any-return]


TABLE = "logs"


def stored(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [m for (m,) in conn.execute(f"SELECT message FROM {TABLE} ORDER BY id").fetchall()]


def assert_exactly_once(emitted: list[str], dsn: str) -> None:
    """Stored == emitted as multisets: nothing lost, nothing twice; each thread in order."""
    rows = stored(dsn)
    duplicates = [m for m, n in collections.Counter(rows).items() if n > 1]
    missing = set(emitted) - set(rows)
    print(  # shown with pytest -s: the counts behind each fault's verdict
        f"emitted={len(emitted)} stored={len(rows)} duplicated={len(duplicates)}"
        f" lost={len(missing)}"
    )
    assert not duplicates, f"{len(duplicates)} stored twice, e.g. {duplicates[:3]}"
    assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:3]}"
    assert len(rows) == len(emitted)
    by_thread: dict[str, list[int]] = collections.defaultdict(list)
    for message in rows:
        thread, number = message.rsplit("-", 1)
        by_thread[thread].append(int(number))
    for thread, numbers in by_thread.items():
        assert numbers == sorted(numbers), f"{thread} out of order"


class App:
    """Threads that log numbered messages until told to stop, each at up to ~10,000 a
    second: a busy application, but one the writer can keep up with, so that the
    overflow policy never drops and every record can be accounted for."""

    def __init__(self, handler: DatabaseLogHandler, threads: int = 2) -> None:
        self.logger = logging.getLogger(f"app.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(handler)
        self.emitted: list[list[str]] = [[] for _ in range(threads)]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"app-{n}") for n in range(threads)
        ]

    def _run(self, n: int) -> None:
        sent = self.emitted[n]
        i = 0
        while not self._stop.is_set():
            message = f"t{n}-{i}"
            self.logger.info(message)
            sent.append(message)
            i += 1
            if i % 10 == 0:
                self._stop.wait(0.001)

    def log_for(self, minimum: int) -> None:
        """Log until every thread has sent at least ``minimum`` more records."""
        start = [len(sent) for sent in self.emitted]
        while any(len(sent) - s < minimum for sent, s in zip(self.emitted, start, strict=True)):
            threading.Event().wait(0.005)

    def __enter__(self) -> App:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    @property
    def all_emitted(self) -> list[str]:
        return [m for sent in self.emitted for m in sent]


@pytest.fixture
def handler_on(partition: str | None) -> Iterator[Callable[..., DatabaseLogHandler]]:
    made: list[DatabaseLogHandler] = []

    def make(dsn: str, **options: Any) -> DatabaseLogHandler:
        options.setdefault("table", TABLE)
        options.setdefault("partition", partition)
        options.setdefault("flush_interval", 0.05)
        options.setdefault("batch_size", 200)
        options.setdefault("fallback", ListHandler())
        handler = DatabaseLogHandler(dsn, **options)
        made.append(handler)
        return handler

    yield make
    for handler in made:
        handler.close()


@pytest.mark.parametrize("trigger", ["after_commit", "before_commit", "mid_copy"])
def test_a_connection_cut_at_any_moment_of_a_batch(
    trigger: str,
    proxy: FaultProxy,
    server: PostgresServer,
    handler_on: Callable[..., DatabaseLogHandler],
) -> None:
    """Cut before COMMIT, after COMMIT (reply lost) or mid-COPY, five times in a row."""
    handler = handler_on(proxy.dsn)
    with App(handler) as app:
        app.log_for(500)
        proxy.arm(trigger, times=5)  # type: ignore[arg-type]
        app.log_for(3_000)
    assert handler.flush(60)
    assert proxy.cuts[trigger] == 5
    assert_exactly_once(app.all_emitted, server.dsn)
    stats = handler.stats()
    assert stats["written"] == stats["enqueued"] == len(app.all_emitted)


@pytest.mark.parametrize("mode", ["fast", "immediate", "kill"])
def test_the_server_goes_down_and_comes_back(
    mode: Literal["fast", "immediate", "kill"],
    server: PostgresServer,
    handler_on: Callable[..., DatabaseLogHandler],
) -> None:
    """Stopped (fast, immediate) or killed -9 mid-stream, then restarted: all arrive once."""
    handler = handler_on(server.dsn)
    with App(handler) as app:
        app.log_for(1_000)
        if mode == "kill":
            server.kill()
        else:
            server.stop(mode)
        app.log_for(2_000)  # the application keeps logging through the outage
        server.start()
        app.log_for(1_000)
    assert handler.flush(60)
    assert_exactly_once(app.all_emitted, server.dsn)
    assert handler.stats()["retries"] > 0


def test_records_wait_out_refused_connections_and_arrive_once(
    proxy: FaultProxy, server: PostgresServer, handler_on: Callable[..., DatabaseLogHandler]
) -> None:
    """Connections refused for several back-off rounds: records wait, then all arrive once."""
    handler = handler_on(proxy.dsn)
    with App(handler) as app:
        app.log_for(500)
        proxy.refuse()
        app.log_for(2_000)
        stats = handler.stats()
        assert stats["connected"] is False
        proxy.refuse(False)
        app.log_for(500)
    assert handler.flush(60)
    assert_exactly_once(app.all_emitted, server.dsn)
