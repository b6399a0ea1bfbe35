"""Review: the program ends right after ``dictConfig`` closed a handler that was still busy.

A close() under logging's lock waits for nothing: the writer finishes in the
background (``Pipeline.close(wait=False)``), and the handler is unregistered at once
(``process.unregister`` in ``close()``'s ``finally``). If the program then ends, neither
exit hook knows of that handler (``_flush_before_threads_stop`` and ``_close_at_exit``
walk ``_live``): nothing waits for its writer, a daemon thread, and what it still held
vanishes with the interpreter: not stored, not handed to the fallback, not said."""

from __future__ import annotations

from faultproxy import FaultProxy
from pgserver import PostgresServer

from faults.kit import stored
from faults.live import Child
from pglog import DatabaseLogHandler

TABLE = "logs"

PROGRAM = """
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

    Today the program ends at once: the records are neither stored nor on stderr, and
    nothing says they are lost."""
    probe = DatabaseLogHandler(server.dsn, table=TABLE, fallback=None)
    assert probe.check_database() is None
    probe.close()
    program = PROGRAM.format(dsn=proxy.dsn, table=TABLE)
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
