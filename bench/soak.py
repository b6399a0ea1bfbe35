"""Soak: a handler under a steady stream of records while random faults hit its database.

    .venv/bin/python bench/soak.py --minutes 20      # the real run
    .venv/bin/python bench/soak.py --minutes 0.5     # a quick smoke run

It starts a PostgreSQL of its own (tests/pgserver.py) with a FaultProxy in front of it
(tests/faultproxy.py), and a handler with a disk spool writing through the proxy. A
producer thread logs numbered, unique messages at ``--rate`` records a second. Every
few seconds the fault loop does one thing at random: cut a connection in the middle
of a COPY, right before or right after a COMMIT, cut every connection, refuse new
ones for a few seconds, stop the server (fast or immediate) or kill -9 it and start it
again a few seconds later, stall the proxy and resume it (if this FaultProxy can), or
(with ``--remove-spool``) stop the server and delete the spool's files meanwhile.

At the end everything is healed, the handler is closed, and the run compares what was
emitted with what was stored and what the fallback received: stored once, doubled,
in the fallback, dropped, lost (counted as such), and lost without being counted. It
exits 1 if a record was stored twice, if a record is missing that no counter
accounts for, or if the handler's ledger does not balance; with ``--strict``, also if
records were dropped although the spool was there to take them.

Not part of CI: it runs for as long as it is told to.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

# tests/ holds the server and the proxy the soak runs against.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faultproxy import FaultProxy
from pgserver import PostgresServer

from pglog import DatabaseLogHandler

TABLE = "soak"
LOGGER = "soak.app"


class Fallback(logging.Handler):
    """Keeps the numbers of the application's records it is given, and pglog's reports."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: list[int] = []
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == LOGGER:
            self.numbers.append(int(record.getMessage().split()[-1]))
        else:
            self.reports.append(record.getMessage())


class Producer(threading.Thread):
    """Logs "soak record <n>", n = 0, 1, ..., at ``rate`` a second until stopped."""

    def __init__(self, log: logging.Logger, rate: float) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self.log = log
        self.rate = rate
        self.emitted = 0
        self._stop_asked = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._stop_asked.is_set():
            due = int((time.monotonic() - started) * self.rate) + 1
            while self.emitted < due:
                self.log.info("soak record %d", self.emitted)
                self.emitted += 1
            self._stop_asked.wait(0.01)

    def stop(self) -> int:
        self._stop_asked.set()
        self.join(30)
        return self.emitted


class Faults:
    """The faults the loop picks from, each one a step that heals itself before returning."""

    def __init__(
        self,
        server: PostgresServer,
        proxy: FaultProxy,
        spool: Path,
        rng: random.Random,
        remove_spool: bool,
    ) -> None:
        self.server = server
        self.proxy = proxy
        self.spool = spool
        self.rng = rng
        self.pause = threading.Event()  # never set: waiting on it is how the loop waits
        self.done: Counter[str] = Counter()
        self.steps: dict[str, Callable[[], None]] = {
            "cut mid-COPY": lambda: proxy.arm("mid_copy"),
            "cut before COMMIT": lambda: proxy.arm("before_commit"),
            "cut after COMMIT": lambda: proxy.arm("after_commit"),
            "cut all connections": proxy.cut_all,
            "refuse connections": self._refuse,
            "stop fast": lambda: self._down(lambda: server.stop("fast")),
            "stop immediate": lambda: self._down(lambda: server.stop("immediate")),
            "kill -9": lambda: self._down(server.kill),
        }
        stall = getattr(proxy, "stall", None)
        resume = getattr(proxy, "resume", None)
        if callable(stall) and callable(resume):
            self.steps["stall"] = lambda: self._for_a_while(stall, resume)
        if remove_spool:
            self.steps["remove spool files"] = self._remove_spool

    def run_one(self) -> str:
        name = self.rng.choice(sorted(self.steps))
        self.steps[name]()
        self.done[name] += 1
        return name

    def heal(self) -> None:
        """Everything back to normal: nothing armed, nothing refused or stalled, server up."""
        self.proxy.disarm()
        self.proxy.refuse(False)
        resume = getattr(self.proxy, "resume", None)
        if callable(resume):
            resume()
        if self.server.postmaster_pid() is None:
            self.server.start()

    def _for_a_while(self, begin: Callable[[], object], end: Callable[[], object]) -> None:
        begin()
        try:
            self.pause.wait(self.rng.uniform(1, 5))
        finally:
            end()

    def _refuse(self) -> None:
        self._for_a_while(self.proxy.refuse, lambda: self.proxy.refuse(False))

    def _down(self, stop: Callable[[], None]) -> None:
        self._for_a_while(stop, self.server.start)

    def _remove_spool(self) -> None:
        """While the server is down (so that records are being spooled), delete the
        spool's files: what pglog can no longer read back must be counted as lost."""
        self.server.stop("fast")
        try:
            self.pause.wait(self.rng.uniform(2, 4))
            for path in self.spool.rglob("*"):
                if path.is_file():
                    with contextlib.suppress(OSError):
                        path.unlink()
            self.pause.wait(self.rng.uniform(0.5, 2))
        finally:
            self.server.start()


def stored_numbers(dsn: str) -> Counter[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT message FROM {TABLE} WHERE logger_name = %s",
            (LOGGER,),
        ).fetchall()
    return Counter(int(str(message).split()[-1]) for (message,) in rows)


def short(stats: dict[str, Any]) -> str:
    keys = ("written", "pending", "spool_pending", "dropped", "fallback", "lost", "connected")
    return " ".join(f"{key}={stats.get(key, 0)}" for key in keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="how long to run")
    parser.add_argument("--rate", type=float, default=500.0, help="records a second")
    parser.add_argument("--seed", type=int, default=None, help="for the random faults")
    parser.add_argument(
        "--every",
        type=float,
        nargs=2,
        default=(2.0, 6.0),
        metavar=("MIN", "MAX"),
        help="seconds between faults",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=2_000,
        help="the handler's queue_size: small, so that outages reach the spool",
    )
    parser.add_argument(
        "--remove-spool", action="store_true", help="also delete the spool's files now and then"
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail on drops too: the spool should take them"
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(
        f"soak: {args.minutes} min at {args.rate:g} records/s, queue_size {args.queue_size},"
        f" seed {seed}",
        flush=True,
    )

    server = PostgresServer()
    server.start()
    proxy = FaultProxy(server.port)
    spool = Path(tempfile.mkdtemp(prefix="pglog-soak-spool-"))
    fallback = Fallback()
    handler = DatabaseLogHandler(
        proxy.dsn,
        table=TABLE,
        queue_size=args.queue_size,
        spool_dir=spool,
        fallback=fallback,
        close_timeout=30,
    )
    log = logging.getLogger(LOGGER)
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    faults = Faults(server, proxy, spool, rng, args.remove_spool)
    producer = Producer(log, args.rate)
    began = time.monotonic()
    try:
        producer.start()
        end = began + args.minutes * 60
        while time.monotonic() < end:
            faults.pause.wait(min(rng.uniform(*args.every), max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            name = faults.run_one()
            print(
                f"{time.monotonic() - began:7.1f}s {name:<22} emitted={producer.emitted}"
                f" {short(handler.stats())}",
                flush=True,
            )
        faults.heal()
        emitted = producer.stop()
        flushed = handler.flush(120)
        handler.close()
        stats = handler.stats()
        stored = stored_numbers(server.dsn)
    finally:
        producer.stop()
        handler.close()
        proxy.close()
        server.destroy()
        shutil.rmtree(spool, ignore_errors=True)

    numbers = set(range(emitted))
    in_fallback = Counter(fallback.numbers)
    doubled = sorted(n for n, times in stored.items() if times > 1)
    missing = numbers - set(stored)
    missing_in_fallback = missing & set(in_fallback)
    also_in_fallback = set(stored) & set(in_fallback)
    counted_away = stats["dropped"] + stats.get("lost", 0)
    uncounted = max(0, len(missing) - len(missing_in_fallback) - counted_away)
    settled = stats["written"] + stats["dropped"] + stats["fallback"] + stats.get("lost", 0)
    balanced = stats["enqueued"] == settled + stats["pending"]
    strangers = set(stored) - numbers

    print(f"\nfaults: {dict(sorted(faults.done.items()))}")
    print(f"flush at the end: {'done' if flushed else 'timed out'}")
    print(f"emitted          {emitted}")
    print(f"stored           {sum(stored.values())} rows, {len(stored)} distinct")
    print(f"doubled          {len(doubled)} records stored more than once {doubled[:10]}")
    print(f"missing          {len(missing)} never stored")
    print(f"  in fallback    {len(missing_in_fallback)}")
    spooled = f", with a spool there (spooled {stats['spooled']})" if stats["dropped"] else ""
    print(f"  dropped        {stats['dropped']} (counted{spooled})")
    print(f"  lost           {stats.get('lost', 0)} (counted)")
    print(f"  uncounted      {uncounted} lost without being counted")
    print(f"fallback         {len(in_fallback)} records ({len(also_in_fallback)} also stored)")
    print(f"strangers        {len(strangers)} stored numbers never emitted")
    print(
        f"ledger           enqueued {stats['enqueued']} == written {stats['written']}"
        f" + dropped {stats['dropped']} + fallback {stats['fallback']}"
        f" + lost {stats.get('lost', 0)} + pending {stats['pending']}:"
        f" {'balanced' if balanced else 'NOT BALANCED'}"
    )
    kinds = Counter(re.sub(r"\d+", "N", report.split(":")[0])[:80] for report in fallback.reports)
    print(f"reports          {len(fallback.reports)}: {dict(kinds.most_common(8))}")
    failed = bool(doubled) or uncounted > 0 or not balanced or bool(strangers)
    failed = failed or (args.strict and stats["dropped"] > 0)
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
