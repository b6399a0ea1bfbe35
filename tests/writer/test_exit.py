"""At exit: a program that logs and simply ends has every record in the table."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from helpers import count, run_python

ENDINGS = {
    "falls off the end": "",
    "sys.exit": "import sys; sys.exit(3)",
    "unhandled exception": "raise RuntimeError('the end')",
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_records_are_all_stored_however_the_program_ends(
    ending: str, pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """No flush, no close, no shutdown call: logging.shutdown() at exit writes everything."""
    script = f"""
import logging
from pglog import DatabaseLogHandler
logging.getLogger().addHandler(DatabaseLogHandler({pg_dsn!r}, table={table!r}, flush_interval=60))
log = logging.getLogger("app")
for i in range(5000):
    log.warning("record %d", i)
{ENDINGS[ending]}
"""
    result = run_python(script)
    assert result.returncode in (0, 1, 3), result.stderr
    assert count(db, table) == 5000


def test_dictconfig_program_stores_everything_at_exit(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """The handler configured through dictConfig, beside a console handler, flushes at exit."""
    script = f"""
import logging.config
logging.config.dictConfig({{
    "version": 1,
    "handlers": {{
        "console": {{"class": "logging.StreamHandler", "level": "ERROR"}},
        "db": {{"class": "pglog.DatabaseLogHandler", "dsn": {pg_dsn!r}, "table": {table!r},
                "batch_size": 50, "flush_interval": 30}},
    }},
    "root": {{"level": "INFO", "handlers": ["console", "db"]}},
}})
for i in range(777):
    logging.getLogger("app").info("record %d", i)
"""
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert count(db, table) == 777


def test_sigterm_turned_into_exit_stores_everything(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """An application that exits on SIGTERM (as servers do) has every record it logged."""
    script = f"""
import logging, os, signal, sys
from pglog import DatabaseLogHandler
logging.getLogger().addHandler(DatabaseLogHandler({pg_dsn!r}, table={table!r}, flush_interval=60))
log = logging.getLogger("app")
sent = 0
def stop(signum, frame):
    print(sent, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    log.warning("record %d", sent)
    sent += 1
    if sent == 3000:
        os.kill(os.getpid(), signal.SIGTERM)
"""
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    sent = int(result.stdout)
    assert sent == 3000
    assert count(db, table) == sent


def test_records_logged_while_the_interpreter_exits_start_no_thread(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """A handler first used by an atexit function, after the threads have been stopped,
    starts no writer: its record goes to the fallback (stderr) and the exit is clean."""
    script = f"""
import atexit, logging, threading
from pglog import DatabaseLogHandler
late = DatabaseLogHandler({pg_dsn!r}, table={table!r})
log = logging.getLogger("late")
log.addHandler(late)
def goodbye():
    log.warning("logged from atexit")
    print(sorted(t.name for t in threading.enumerate()))
atexit.register(goodbye)
"""
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert "pglog-writer" not in result.stdout
    assert "late: logged from atexit" in result.stderr
    assert "Traceback" not in result.stderr
