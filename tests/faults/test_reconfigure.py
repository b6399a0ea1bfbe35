"""A second ``logging.config.dictConfig()`` closes every handler while it holds logging's
module lock: pglog's close() must not make the application wait, must not print pending
records to stderr, and a closed handler that still gets records writes them to the table.
Nor may the records of a handler so closed be lost: not in a stall that outlasts
close_timeout, not when the program ends right after."""

from __future__ import annotations

import json
import logging

from conftest import HandlerFactory
from faultproxy import FaultProxy
from helpers import TABLE, ListHandler, make_table, stored, stored_count, true_within
from pgserver import PostgresServer

from faults.kit import Tally, balanced, ledger
from faults.live import Child

CLOSE_TIMEOUT = 5


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
    with Child(program(proxy.dsn)) as child:
        assert child.next_line("stdout", 30) == "ready", child.text("stderr")
        proxy.stall(at="copy")
        child.write("go\n")
        line = child.next_line("stdout", 60)
        assert line, child.text("stderr")
        report = json.loads(line)
        proxy.resume()
        arrived = true_within(lambda: stored_count(server.dsn, TABLE) >= len(emitted), 15)
        child.write("go\n")
        child.wait(60)
        err = child.text("stderr")
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
    arrived = true_within(lambda: stored_count(pg_dsn, table) >= len(emitted), 10)
    stats = handler.stats()
    tally = Tally(emitted, stored(pg_dsn, table), fallback.messages(logger.name))
    tally.show("record after close()", [ledger(stats), f"arrived={arrived}"])
    handed = len(tally.fallback)
    assert handed == 0, f"{handed} records logged after close() went to the fallback"
    missing, duplicated = len(tally.missing), len(tally.duplicated)
    assert (missing, duplicated) == (0, 0), f"lost={tally.missing[:3]} twice={tally.duplicated[:3]}"
    assert balanced(stats), ledger(stats)


#: dictConfig while a COPY is stalled, with close_timeout < write_timeout.
DICTCONFIG_IN_A_STALL = """
import json, logging, logging.config, sys, threading, time
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler(
    {dsn!r}, table={table!r}, batch_size=50, flush_interval=0.05, close_timeout=1,
    write_timeout=3,
)
log = logging.getLogger("app")
log.propagate = False
log.addHandler(handler)
for i in range(20):
    log.warning("before %d", i)
assert handler.flush(10)
print("ready", flush=True)
sys.stdin.readline()  # the proxy stalls now
for i in range(200):
    log.warning("during %d", i)
pause = threading.Event()
while handler.stats()["in_flight"] == 0:
    pause.wait(0.01)
logging.config.dictConfig({{"version": 1, "disable_existing_loggers": False}})
while any(t.name.startswith("pglog-writer") for t in threading.enumerate()):
    pause.wait(0.05)
print("stats", json.dumps(handler.stats()), flush=True)
"""


def test_dictconfig_during_a_stall_hands_the_records_on(
    server: PostgresServer, proxy: FaultProxy
) -> None:
    """dictConfig closes a handler whose writer is stuck in a stalled COPY
    (close_timeout 1 s, write_timeout 3 s): none of its records may be counted lost, for
    nothing stops them from reaching the fallback (stderr).

    Found by the second review, with the defaults (``write_timeout`` 10 s >
    ``close_timeout`` 5 s): the records were counted as lost, although nothing stopped
    them from reaching the fallback.

    dictConfig closes the old handler under logging's lock, so close() waits for nothing
    and the writer is to finish in the background (``Writer.stop(..., wait=False)``). The
    writer is stuck in a stalled COPY until the watchdog gives it up at ``write_timeout``,
    past the close's deadline. Its ``_finish`` then calls ``Pipeline.save_rest(deadline)``
    with that deadline long gone: ``Fallback.hand_over_by(entries, deadline)`` joins the
    hand-over thread for 0 s and stops it, so (almost) none of the batch in flight and the
    queue reach the fallback, and ``_hand_over`` counts the rest as ``lost``. Nobody waits
    for this close; the deadline protects no one (the exit, if one comes, has its own).
    README: "logging.config.dictConfig() again ... closing under logging's lock waits for
    nothing (the writer finishes in the background) ... lost by design: nothing".

    Here (in a child process, as an application would be): close_timeout 1 s, write_timeout
    3 s; 20 records written, the proxy stalls, 200 more records logged (a COPY in flight, the
    rest queued), dictConfig. Measured (3 runs): lost 124, 186, 137 of 200, fallback the
    rest (the hand-over thread gets a few milliseconds before it is told to stop), stored 0;
    stderr says e.g. "124 records are lost: they could not be written to public.logs, and
    the fallback took only 76 of 200 before close_timeout". With a stderr fallback nothing
    had to be lost."""
    make_table(server.dsn)
    with Child(DICTCONFIG_IN_A_STALL.format(dsn=proxy.dsn, table=TABLE)) as child:
        assert child.wait_for("stdout", "ready", 30) is not None, child.text("stderr")
        proxy.stall()
        child.write("go\n")
        line = child.wait_for("stdout", "stats", 30)
        assert line is not None, child.text("stderr")
        stats = json.loads(line[1].removeprefix("stats "))
        proxy.resume()
        child.finish(30)
        stderr = child.lines("stderr")
    rows = stored(server.dsn, TABLE)
    during = [m for m in rows if m.startswith("during")]
    handed = [x for x in stderr if "during " in x and "pglog" not in x]
    said = [x for x in stderr if "lost" in x]
    print(f"\nstats: {stats}")
    print(f"stored {len(during)} of 200, fallback lines {len(handed)}; said: {said}")
    assert stats["lost"] == 0, (
        f"dictConfig during a stall: {stats['lost']} of 200 records lost (fallback"
        f" {stats['fallback']}, stored {len(during)}): the background close handed them to"
        " the fallback by a deadline that had passed long before"
    )


#: dictConfig while a COPY is stalled, then the program simply ends.
EXIT_AFTER_DICTCONFIG = """
import logging, logging.config, sys
from pglog import DatabaseLogHandler

h = DatabaseLogHandler({dsn!r}, table={table!r}, close_timeout=3, flush_interval=0.05,
                       connect_timeout=2, write_timeout=30)  # console fallback: stderr
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(h)
log.info("r-0")
assert h.flush(10)
print("ready", flush=True)
sys.stdin.readline()  # the test stalls the network at the next COPY
for i in range(1, 11):
    log.info("r-%d", i)
while h.stats()["in_flight"] == 0:
    pass
logging.config.dictConfig({{"version": 1, "disable_existing_loggers": False}})
print("reconfigured", h.stats()["pending"], flush=True)
"""


def test_records_of_a_handler_closed_by_dictconfig_survive_an_exit_right_after(
    server: PostgresServer, proxy: FaultProxy
) -> None:
    """Ten records are in flight on a stalled network when the program calls dictConfig
    (which closes the handler) and then simply ends. Within the exit's close_timeout
    they must go to the fallback (stderr), or be stored; none may vanish unsaid.

    Found by the first review. A close() under logging's lock waits for nothing: the
    writer finishes in the background (``Pipeline.close(wait=False)``), and the handler is
    unregistered at once (``process.unregister`` in ``close()``'s ``finally``). If the
    program then ends, neither exit hook knows of that handler
    (``_flush_before_threads_stop`` and ``_close_at_exit`` walk ``_live``): nothing waits
    for its writer, a daemon thread, and what it still held vanished with the
    interpreter: not stored, not handed to the fallback, not said."""
    make_table(server.dsn)
    program = EXIT_AFTER_DICTCONFIG.format(dsn=proxy.dsn, table=TABLE)
    with Child(program) as child:
        assert child.wait_for("stdout", "ready", 20), child.text("stderr")
        proxy.stall(at="copy")
        child.write("\n")
        reconfigured = child.wait_for("stdout", "reconfigured", 20)
        code = child.wait(30)
    proxy.resume()
    stderr = child.text("stderr")
    wanted = [f"r-{i}" for i in range(1, 11)]
    rows = stored(server.dsn, TABLE)
    said = [m for m in wanted if m in stderr]
    print(f"{reconfigured}; exit={code}; stored={rows}; in stderr={said}")
    print(stderr[-1500:])
    assert reconfigured, stderr
    missing = [m for m in wanted if m not in rows and m not in said]
    assert missing == [], (
        f"{len(missing)} of 10 records are neither stored nor on stderr, and stderr says"
        f" nothing of them: {stderr[-400:]!r}"
    )
