"""Review 2: ``initialize_logger()`` called again drops, silently, every record logged
while the previous set-up is being shut down: they reach no handler at all.

``_manager.initialize_logger`` shuts the previous manager down first
(``LoggerManager.shutdown``: each handler removed from the root logger, then closed,
the database handler within its close_timeout) and only then builds and installs the
new one (``manager.install()``). For as long as the old database handler's close takes
(writing what it holds: up to close_timeout, 5 s, with a slow or stalled database) the
root logger has no handler: records of every other thread go nowhere (Python's
``lastResort`` takes WARNING and above, and only on stderr; INFO and DEBUG are dropped
without a trace). They never reach ``emit()``, so no ``stats()`` counts them. README:
"Calling it again replaces the previous set-up".

Here a statement trigger makes each COPY take 2 s (a slow server); a child process sets
up logging (console and database), logs one record, and calls initialize_logger() again
in a thread; while the old set-up is coming down (its handlers are off the root logger:
the root logger had none left) the main thread logs 100 INFO records. Measured: 0 of the
100 on the console, 0 in the table; the record before and the one after are in both.
Deterministic (2 runs of 2)."""

from __future__ import annotations

from typing import Any

import psycopg
from helpers import add_trigger, make_table, stored

from faults.live import Child

PROGRAM = """
import logging, threading
import pglog
config = {{
    "logging": {{
        "level": "INFO",
        "console": {{"enabled": True, "format": "%(levelname)s %(name)s %(message)s"}},
        "database": {{"flush_interval": 0.05, "table": {table!r}}},
    }},
    "database": {{"dsn": {dsn!r}}},
}}
pglog.initialize_logger(config)
log = logging.getLogger("app")
log.info("before")
again = threading.Thread(target=pglog.initialize_logger, args=(config,))
again.start()
root, pause = logging.getLogger(), threading.Event()
first = list(root.handlers)
# The old set-up is coming down once its handlers are off the root logger (replaced by
# the new set's, or, as it was, removed with nothing in their place).
while any(h in root.handlers for h in first) and again.is_alive():
    pause.wait(0.001)
print("window open" if again.is_alive() else "window missed", flush=True)
for i in range(100):
    log.info("window %d", i)
again.join()
log.info("after")
pglog.shutdown_logging()
"""


def test_initialising_again_loses_no_record_logged_meanwhile(
    table: str, db: psycopg.Connection[Any], pg_dsn: str
) -> None:
    make_table(pg_dsn, table)
    statement_takes_2s = "PERFORM pg_sleep(2); RETURN NULL;"
    add_trigger(db, table, "slow", statement_takes_2s, when="AFTER INSERT", each="STATEMENT")
    with Child(PROGRAM.format(dsn=pg_dsn, table=table)) as child:
        returncode = child.wait(60)
        stdout, stderr = child.lines("stdout"), child.lines("stderr")
    assert returncode == 0, "\n".join(stderr)
    rows = stored(pg_dsn, table)
    console = [line for line in stderr if "window " in line]
    in_table = [m for m in rows if m.startswith("window ")]
    print(f"\n{stdout}: console {len(console)}/100, table {len(in_table)}/100; rows: {rows[:3]}")
    assert "window open" in stdout
    assert {"before", "after"} <= set(rows)
    # Never both sets at once: a record on both would be written twice.
    assert len(set(console)) == len(console)
    assert len(set(in_table)) == len(in_table)
    assert len(console) == 100 or len(in_table) == 100, (
        f"records logged while initialize_logger() replaced the set-up: {len(console)} of"
        f" 100 on the console, {len(in_table)} in the table: the root logger had no handler"
    )
