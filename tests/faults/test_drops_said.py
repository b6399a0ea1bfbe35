"""Records dropped while the database is down are said on stderr while the program runs.

Today a drop is reported only between batches, and while the database is down the
writer never gets back between batches (it retries the batch in flight), so the
report waits for close(). With ``fallback=None`` it never comes at all: pglog's own
warnings go to the ``pglog`` logger, which reaches only the root's pglog handler,
which ignores what its writer says.
"""

from __future__ import annotations

import json
from typing import Any

from helpers import closed_port_dsn
from pgserver import PostgresServer

from faults.kit import balanced, ledger
from faults.live import Child

#: A drop must be said this soon after it happened (pglog reports drops every 5 s).
SAY_WITHIN = 10.0
EMITTED = 1_500
QUEUE = 100

CHILD = """
import json, logging, sys
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler(
    {dsn!r}, table="drops", fallback={fallback!r}, queue_size={queue}, batch_size=10,
    flush_interval=0.05, close_timeout=1,
)
root = logging.getLogger()
root.setLevel(logging.INFO)
root.addHandler(handler)
log = logging.getLogger("app")
log.info("while the database is up")
print("first", handler.flush(10), flush=True)
sys.stdin.readline()  # the test stops the database, then says go
for i in range({emitted}):
    log.info("record %d", i)
print("emitted", flush=True)
print(json.dumps(handler.stats()), flush=True)
sys.stdin.read()  # the application runs on until the test closes stdin
"""


def said_dropped(line: str) -> bool:
    """A line about dropped records (the records themselves say "record <n>")."""
    return "dropped" in line.lower()


def log_past_the_queue(
    child: Child,
) -> tuple[tuple[float, str], tuple[float, str] | None, bool, dict[str, Any]]:
    """Tell the child to log its records, then watch it: when it had logged them, the
    first line on stderr about drops (if one came within SAY_WITHIN), whether it was still
    running then, and its stats."""
    child.write("go\n")
    emitted = child.wait_for("stdout", "emitted", 30)
    assert emitted is not None, child.text("stderr")
    said = child.wait_for("stderr", said_dropped, SAY_WITHIN)
    still_running = child.alive()
    reported = child.wait_for("stdout", lambda line: line.startswith("{"), 30)
    assert reported is not None, child.text("stderr")
    return emitted, said, still_running, json.loads(reported[1])


def test_drops_are_said_on_stderr_during_an_outage_not_only_at_close(
    server: PostgresServer,
) -> None:
    """The console fallback, a queue of 100, the server stopped: 1,500 records overflow it,
    and a stderr line says records were dropped while the program still runs."""
    code = CHILD.format(dsn=server.dsn, fallback="console", queue=QUEUE, emitted=EMITTED)
    with Child(code) as child:
        assert child.wait_for("stdout", "first True", 30) is not None, child.text("stderr")
        server.stop("fast")
        emitted, said, still_running, stats = log_past_the_queue(child)
        before_close = child.text("stderr")
        assert child.finish(30) == 0
        print(f"\nbefore close: {before_close!r}\nafter close: {child.text('stderr')[-400:]!r}")
    print(f"stats while down: dropped {stats['dropped']}, pending {stats['pending']}")
    assert stats["dropped"] >= EMITTED - QUEUE - 1
    assert balanced(stats), ledger(stats)
    assert said is not None, f"no drop report on stderr within {SAY_WITHIN}s: {before_close!r}"
    assert still_running
    assert said[0] - emitted[0] <= SAY_WITHIN


def test_drops_are_said_on_stderr_when_pglog_is_the_only_handler_and_has_no_fallback() -> None:
    """fallback=None, pglog the root's only handler, nothing listening on the database's
    port: 1,500 records dropped by a queue of 100 still produce a line on stderr, and
    before the program closes its handler."""
    code = CHILD.replace('print("first", handler.flush(10), flush=True)', 'print("first")')
    code = code.format(dsn=closed_port_dsn(), fallback=None, queue=QUEUE, emitted=EMITTED)
    with Child(code) as child:
        assert child.wait_for("stdout", "first", 30) is not None, child.text("stderr")
        emitted, said, still_running, stats = log_past_the_queue(child)
        assert child.finish(30) == 0
        stderr = child.text("stderr")
    print(f"\nstderr, whole run: {stderr!r}")
    print(f"stats while down: dropped {stats['dropped']}, pending {stats['pending']}")
    # The first record is dropped too with 'drop_oldest'; the writer's batch stays in flight.
    assert stats["dropped"] >= EMITTED + 1 - QUEUE - 1
    assert balanced(stats), ledger(stats)
    assert said is not None, f"no drop report on stderr, ever: {stderr!r}"
    assert still_running
    assert said[0] - emitted[0] <= SAY_WITHIN
