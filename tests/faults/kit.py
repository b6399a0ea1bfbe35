"""What the fault tests share: waiting on a handler, the ledger with
``lost``, pglog's threads and their CPU time, what pglog's connections are doing, a paced
producer, and the tally of what became of every record."""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from helpers import stored, true_within

from pglog import DatabaseLogHandler

WRITER_PREFIX = "pglog-writer"
SPILLER_PREFIX = "pglog-spiller"
#: A handler that rides out an outage with a spool: room for 1,000 records in memory,
#: batches of 100, a quick connect and close.
SPOOLING: dict[str, Any] = {
    "queue_size": 1_000,
    "batch_size": 100,
    "connect_timeout": 2,
    "close_timeout": 5,
}


def drained(handler: DatabaseLogHandler, timeout: float) -> bool:
    """Flush until nothing is pending (a spool's records too, which a single flush may not
    wait for), for up to ``timeout`` seconds; whether it got there."""
    return true_within(lambda: handler.flush(1) and handler.stats()["pending"] == 0, timeout)


def delivered(
    handler: DatabaseLogHandler, dsn: str, table: str, messages: Iterable[str], timeout: float
) -> bool:
    """Flush until nothing is pending and each of ``messages`` is in ``table``, for up to
    ``timeout`` seconds; whether it got there."""
    wanted = set(messages)

    def done() -> bool:
        handler.flush(0.5)
        return handler.stats()["pending"] == 0 and wanted <= set(stored(dsn, table))

    return true_within(done, timeout)


def wait_for_count(
    handler: DatabaseLogHandler, counter: str, at_least: int, timeout: float = 10
) -> None:
    """Wait until ``handler.stats()[counter]`` is at least ``at_least``; fail with the
    ledger if it isn't within ``timeout`` seconds."""
    reached = true_within(lambda: handler.stats()[counter] >= at_least, timeout)
    assert reached, ledger(handler.stats())


def lost(stats: dict[str, Any]) -> int:
    """The contract's ``lost`` counter; 0 where today's pglog has none."""
    return int(stats.get("lost", 0))


def balanced(stats: dict[str, Any]) -> bool:
    """``enqueued == written + dropped + fallback + lost + pending``."""
    settled = stats["written"] + stats["dropped"] + stats["fallback"] + lost(stats)
    return bool(stats["enqueued"] == settled + stats["pending"])


def ledger(stats: dict[str, Any]) -> str:
    keys = ("enqueued", "written", "dropped", "fallback", "pending", "spooled", "replayed")
    return " ".join(f"{k}={stats.get(k)}" for k in keys) + f" lost={lost(stats)}"


def writer_threads() -> list[threading.Thread]:
    """The live pglog writer threads of this process."""
    return [t for t in threading.enumerate() if t.name.startswith(WRITER_PREFIX)]


def spiller_threads() -> list[threading.Thread]:
    """The live pglog spiller threads of this process (one per handler with a spool)."""
    return [t for t in threading.enumerate() if t.name.startswith(SPILLER_PREFIX)]


def pglog_running(dsn: str, statement: str) -> bool:
    """Is one of pglog's connections running a statement ``LIKE statement`` right now?"""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pglog'"
            " AND state = 'active' AND query LIKE %s",
            (statement,),
        ).fetchone()
    return bool(row and row[0])


def cpu_seconds(thread: threading.Thread) -> float:
    """User + system CPU time the thread has used so far (from /proc); 0 once it has ended."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    # fields[0] is the 3rd field of stat (state); utime and stime are the 14th and 15th
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_over(thread: threading.Thread, window: float = 2.0) -> float:
    """CPU seconds ``thread`` uses during the next ``window`` seconds (a measurement, so
    this waits the window out)."""
    before = cpu_seconds(thread)
    threading.Event().wait(window)
    return max(0.0, cpu_seconds(thread) - before)


def produce(log: logging.Logger, prefix: str, count: int, rate: float, start: int = 0) -> list[str]:
    """Log ``count`` numbered messages at about ``rate`` a second (paced against the clock,
    so the rate holds however long each call takes). Returns what was logged."""
    emitted: list[str] = []
    began = time.monotonic()
    pause = threading.Event()
    for i in range(start, start + count):
        message = f"{prefix}-{i}"
        log.info(message)
        emitted.append(message)
        ahead = began + (i - start + 1) / rate - time.monotonic()
        if ahead > 0.002:
            pause.wait(ahead)
    return emitted


@dataclass
class Tally:
    """What became of the emitted records: stored (how often), handed to the fallback."""

    emitted: list[str]
    rows: list[str]
    handed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        counts = collections.Counter(self.rows)
        self.duplicated = sorted(m for m, n in counts.items() if n > 1)
        wanted = set(self.emitted)
        self.stored = {m for m in counts if m in wanted}
        self.fallback = set(self.handed) & wanted
        self.both = sorted(self.stored & self.fallback)
        self.missing = sorted(wanted - self.stored - self.fallback)

    def show(self, label: str = "", extra: Iterable[str] = ()) -> None:
        """One line for ``pytest -s``: the counts behind the verdict."""
        print(
            f"{label}: emitted={len(self.emitted)} stored={len(self.stored)}"
            f" duplicated={len(self.duplicated)} lost={len(self.missing)}"
            f" fallback={len(self.fallback)} both={len(self.both)}",
            *extra,
        )
