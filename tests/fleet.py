"""A fleet of writers for the engine tests: handlers that each stand for another host
(their own ``hostname``), each logging numbered messages from a thread of its own, and
the tally of what became of every message."""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from faults.kit import Tally, balanced, ledger, lost, produce
from helpers import ListHandler, stored

from pglog import DatabaseLogHandler


@dataclass
class Writer:
    hostname: str
    handler: DatabaseLogHandler
    logger: logging.Logger
    emitted: list[str] = field(default_factory=list)


class Fleet:
    """Handlers into one table, one per host name, sharing one fallback."""

    def __init__(self, dsn: str, table: str, hosts: Sequence[str], **options: Any) -> None:
        self.dsn, self.table = dsn, table
        self.fallback = ListHandler()
        self.writers: list[Writer] = []
        options = {"flush_interval": 0.05, "batch_size": 200, **options}
        for host in hosts:
            with pytest.MonkeyPatch.context() as patch:  # the handler takes its host at birth
                patch.setattr(socket, "gethostname", lambda host=host: host)
                handler = DatabaseLogHandler(
                    dsn, table=table, fallback=self.fallback, close_timeout=30.0, **options
                )
            log = logging.getLogger(f"fleet.{uuid.uuid4().hex[:8]}")
            log.setLevel(logging.DEBUG)
            log.propagate = False
            log.addHandler(handler)
            self.writers.append(Writer(host, handler, log))
        self._threads: list[threading.Thread] = []

    def start(self, count: int, rate: float) -> None:
        """Each writer logs ``count`` messages at ``rate`` a second, all at once."""

        def run(writer: Writer) -> None:
            writer.emitted += produce(writer.logger, writer.hostname, count, rate)

        self._threads = [
            threading.Thread(target=run, args=(writer,), name=f"fleet-{writer.hostname}")
            for writer in self.writers
        ]
        for thread in self._threads:
            thread.start()

    def finish(self, timeout: float = 60.0) -> Tally:
        """Wait for the producers, flush and close every handler; what became of it all."""
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), f"{thread.name} did not finish within {timeout}s"
        for writer in self.writers:
            assert writer.handler.flush(timeout), ledger(writer.handler.stats())
        self.stats = [writer.handler.stats() for writer in self.writers]
        self.close()
        emitted = [message for writer in self.writers for message in writer.emitted]
        return Tally(emitted, stored(self.dsn, self.table), self.fallback.messages())

    def close(self) -> None:
        for writer in self.writers:
            writer.handler.close()
            writer.logger.removeHandler(writer.handler)

    def __iter__(self) -> Iterator[Writer]:
        return iter(self.writers)


def assert_exactly_once(fleet: Fleet, tally: Tally, label: str) -> None:
    """Every emitted message stored once, none to the fallback, every ledger balanced."""
    tally.show(label, [ledger(stats) for stats in fleet.stats])
    assert tally.missing == [], f"{len(tally.missing)} lost, e.g. {tally.missing[:3]}"
    assert tally.duplicated == [], f"{len(tally.duplicated)} doubled: {tally.duplicated[:3]}"
    assert sorted(tally.fallback) == []
    assert len(tally.stored) == len(tally.emitted)
    for stats in fleet.stats:
        assert balanced(stats), ledger(stats)
        assert stats["written"] == len(tally.emitted) // len(fleet.stats)
        assert (stats["fallback"], stats["dropped"], lost(stats), stats["pending"]) == (0, 0, 0, 0)
