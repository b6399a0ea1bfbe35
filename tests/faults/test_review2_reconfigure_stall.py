"""Review 2: ``logging.config.dictConfig()`` during a stall, with the defaults
(``write_timeout`` 10 s > ``close_timeout`` 5 s), loses the handler's records: counted as
lost, although nothing stopped them from reaching the fallback.

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
had to be lost.
"""

from __future__ import annotations

import json

from faultproxy import FaultProxy
from pgserver import PostgresServer

from faults.kit import stored
from faults.live import Child
from pglog import DatabaseLogHandler

TABLE = "logs"

PROGRAM = """
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
    probe = DatabaseLogHandler(proxy.dsn, table=TABLE, fallback=None)
    assert probe.check_database() is None
    probe.close()
    with Child(PROGRAM.format(dsn=proxy.dsn, table=TABLE)) as child:
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
