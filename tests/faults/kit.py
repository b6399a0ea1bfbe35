"""What the fault tests share: waiting on a condition, the ledger with ``lost``, the writer
thread's CPU time, a paced producer, and the tally of what became of every record."""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

WRITER_PREFIX = "pglog-writer"


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last verdict."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        pause.wait(interval)


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


def stored(dsn: str, table: str) -> list[str]:
    """Every message in ``table``, in insertion order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        query = sql.SQL("SELECT message FROM {} ORDER BY id").format(sql.Identifier(table))
        return [str(m) for (m,) in conn.execute(query).fetchall()]


def stored_count(dsn: str, table: str) -> int:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            row = conn.execute(query).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


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
