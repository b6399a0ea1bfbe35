"""A second ``logging.config.dictConfig()`` closes every handler while it holds logging's
module lock: pglog's close() must not make the application wait, must not print pending
records to stderr, and a closed handler that still gets records writes them to the table."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from conftest import HandlerFactory
from faultproxy import FaultProxy
from helpers import ListHandler
from pgserver import PostgresServer

from faults.kit import Tally, balanced, ledger, stored, stored_count, wait_until
from pglog import DatabaseLogHandler

TABLE = "logs"
CLOSE_TIMEOUT = 5


def make_table(dsn: str) -> None:
    handler = DatabaseLogHandler(dsn, table=TABLE, fallback=None)
    assert handler.check_database() is None
    handler.close()


def program(dsn: str) -> str:
    """Configures "app" and "keep" with one pglog handler (console fallback), psycopg at
    DEBUG (it logs from inside the writer, which then needs logging's lock). Once the test
    has armed a stall, logs 500 + 100 records, waits until a batch is stuck in flight,
    reconfigures "app" only (disable_existing_loggers False: "keep" keeps the closed
    handler) and times it; logs 100 more through each logger; reports; waits for the test
    to resume the network and look at the table; then simply ends."""
    return f"""
import json, logging, logging.config, sys, threading, time
logging.getLogger("psycopg").setLevel(logging.DEBUG)

def config(*names):
    return {{
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {{"db": {{"class": "pglog.DatabaseLogHandler", "dsn": {dsn!r},
                             "table": {TABLE!r}, "close_timeout": {CLOSE_TIMEOUT},
                             "flush_interval": 0.05, "connect_timeout": 2}}}},
        "loggers": {{n: {{"handlers": ["db"], "level": "INFO", "propagate": False}}
                    for n in names}},
    }}

logging.config.dictConfig(config("app", "keep"))
app, keep = logging.getLogger("app"), logging.getLogger("keep")
[old] = keep.handlers
app.info("app-0")
keep.info("keep-0")
assert old.flush(10)
print("ready", flush=True)
sys.stdin.readline()
for i in range(1, 500):
    app.info("app-%d", i)
for i in range(1, 100):
    keep.info("keep-%d", i)
deadline = time.monotonic() + 10
while old.stats()["in_flight"] == 0 and time.monotonic() < deadline:
    threading.Event().wait(0.01)
in_flight = old.stats()["in_flight"]
began = time.monotonic()
logging.config.dictConfig(config("app"))
took = time.monotonic() - began
for i in range(100, 200):
    keep.info("keep-%d", i)
for i in range(500, 600):
    app.info("app-%d", i)
print(json.dumps({{"took": took, "in_flight": in_flight, "kept": keep.handlers == [old],
                  "new": app.handlers != [old]}}), flush=True)
sys.stdin.readline()
"""


def test_a_second_dictconfig_neither_stalls_nor_prints_and_the_closed_handler_comes_back(
    server: PostgresServer, proxy: FaultProxy
) -> None:
    """The network stalls while a batch is in flight; the program calls dictConfig again
    (close_timeout=5). It returns in < 1 s; none of the application's records goes to
    stderr; records logged afterwards through "keep", whose closed pglog handler the new
    configuration left in place, are stored like those before; once the network is back
    every record is stored exactly once."""
    make_table(server.dsn)
    emitted = [f"app-{i}" for i in range(600)] + [f"keep-{i}" for i in range(200)]
    child = subprocess.Popen(
        [sys.executable, "-c", program(proxy.dsn)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        proxy.stall(at="copy")
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
        assert line, child.communicate(timeout=30)[1]
        report = json.loads(line)
        proxy.resume()
        arrived = wait_until(lambda: stored_count(server.dsn, TABLE) >= len(emitted), 15)
        child.stdin.write("go\n")
        child.stdin.flush()
        _, err = child.communicate(timeout=60)
    finally:
        proxy.resume()
        if child.poll() is None:
            child.kill()
            child.wait()
    printed = [
        line.split(": ", 1)[1]
        for line in err.splitlines()
        if " app: app-" in line or " keep: keep-" in line
    ]
    tally = Tally(emitted, stored(server.dsn, TABLE), printed)
    late = [f"keep-{i}" for i in range(100, 200)]
    late_stored = len(set(late) & tally.stored)
    tally.show(
        "second dictConfig",
        [
            f"took={report['took']:.2f}s in_flight={report['in_flight']} arrived={arrived}",
            f"late keep stored={late_stored}/100 on stderr={len(printed)}",
        ],
    )
    assert report["kept"], report
    assert report["new"], report
    assert report["in_flight"] > 0
    assert report["took"] < 1.0, (
        f"the second dictConfig took {report['took']:.1f}s (close_timeout={CLOSE_TIMEOUT})"
    )
    on_stderr = len(printed)
    assert on_stderr == 0, f"{on_stderr} of the application's records went to stderr"
    assert late_stored == len(late), (
        f"{late_stored} of {len(late)} records logged through the closed handler were stored"
    )
    missing, duplicated = len(tally.missing), len(tally.duplicated)
    assert (missing, duplicated) == (0, 0), f"lost={tally.missing[:3]} twice={tally.duplicated[:3]}"


def test_a_closed_handler_that_gets_a_record_writes_it_to_the_table(
    make_handler: HandlerFactory, logger: logging.Logger, pg_dsn: str, table: str
) -> None:
    """close() called directly while the handler stays attached: the records it gets after
    are stored in the table (the handler comes back), not handed to the fallback."""
    fallback = ListHandler()
    handler = make_handler(fallback=fallback)
    logger.addHandler(handler)
    emitted = [f"before-{i}" for i in range(10)] + [f"after-{i}" for i in range(10)]
    for message in emitted[:10]:
        logger.info(message)
    handler.close()
    for message in emitted[10:]:
        logger.info(message)
    arrived = wait_until(lambda: stored_count(pg_dsn, table) >= len(emitted), 10)
    stats = handler.stats()
    tally = Tally(emitted, stored(pg_dsn, table), fallback.messages(logger.name))
    tally.show("record after close()", [ledger(stats), f"arrived={arrived}"])
    handed = len(tally.fallback)
    assert handed == 0, f"{handed} records logged after close() went to the fallback"
    missing, duplicated = len(tally.missing), len(tally.duplicated)
    assert (missing, duplicated) == (0, 0), f"lost={tally.missing[:3]} twice={tally.duplicated[:3]}"
    assert balanced(stats), ledger(stats)
