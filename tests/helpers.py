"""Helpers shared by the tests: a fallback that keeps records, ways to make and read the
table, and ways to wait for a process, a port or a condition."""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pglog import DatabaseLogHandler

#: The log table on a server of a test's own (``server``): no other test shares it.
TABLE = "logs"


class ListHandler(logging.Handler):
    """Keeps the records it is given: a fallback the test can look into."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, name: str | None = None) -> list[str]:
        return [r.getMessage() for r in self.records if name is None or r.name == name]

    def notices(self) -> list[str]:
        """What pglog said about itself (its loggers' records), not what it handed on."""
        return [r.getMessage() for r in self.records if r.name.startswith("pglog")]


def make_table(dsn: str, table: str = TABLE) -> None:
    """Create ``table`` as a handler does, and let go of it: for a test to alter it first,
    or for a handler that must find it there."""
    handler = DatabaseLogHandler(dsn, table=table, fallback=None)
    assert handler.check_database() is None
    handler.close()


def attach(
    logger: logging.Logger, dsn: str, **options: Any
) -> tuple[DatabaseLogHandler, ListHandler]:
    """A handler on ``dsn``'s table ``logs``, fast to flush, with a fallback that keeps what
    it gets, attached to ``logger``."""
    fallback = ListHandler()
    options = {"table": TABLE, "flush_interval": 0.05, "fallback": fallback, **options}
    handler = DatabaseLogHandler(dsn, **options)
    logger.addHandler(handler)
    return handler, fallback


def make_table_as_a_writer_does(
    admin: psycopg.Connection[Any], logger: logging.Logger, dsn: str
) -> None:
    """The table ``logs`` as a writer leaves it (the writers' reports beside it), emptied:
    for a test to alter it, or to grant a role what it needs on it."""
    handler, _ = attach(logger, dsn)
    logger.info("setup")
    assert handler.flush(10)
    handler.close()
    logger.removeHandler(handler)
    admin.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(TABLE)))


#: A role that may only INSERT into ``logs`` and take ids from its sequence, as an
#: application's own role often may: no CREATE, no SELECT.
INSERT_ONLY = "app_writer"


def grant_insert_only(admin: psycopg.Connection[Any]) -> None:
    """Create the role INSERT_ONLY, with just what it needs to log into ``logs``."""
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(INSERT_ONLY)))
    admin.execute(
        sql.SQL("GRANT INSERT ON {} TO {}").format(
            sql.Identifier(TABLE), sql.Identifier(INSERT_ONLY)
        )
    )
    admin.execute(
        sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
            sql.Identifier(f"{TABLE}_id_seq"), sql.Identifier(INSERT_ONLY)
        )
    )


def add_check(db: psycopg.Connection[Any], table: str, name: str, condition: str) -> None:
    """A CHECK constraint ``name`` on ``table``: how a test makes the table refuse the rows
    that fail ``condition`` (SQL), the way a server's own rules would."""
    db.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})").format(
            sql.Identifier(table), sql.Identifier(name), sql.SQL(condition)
        )
    )


def add_trigger(
    db: psycopg.Connection[Any],
    table: str,
    name: str,
    body: str,
    *,
    when: str = "BEFORE INSERT",
    each: str = "ROW",
    deferred: bool = False,
) -> None:
    """A trigger ``name`` on ``table`` running the plpgsql ``body`` (what goes between BEGIN
    and END), in a function of its own: how a test makes a table slow, or refuse rows,
    the way a server's own rules would. ``deferred``: a constraint trigger that runs at
    COMMIT."""
    kind, deferral = (
        ("CONSTRAINT TRIGGER", "DEFERRABLE INITIALLY DEFERRED") if deferred else ("TRIGGER", "")
    )
    db.execute(
        sql.SQL(
            "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN {body} END$$;"
            " CREATE {kind} {name} {when} ON {table} {deferral} FOR EACH {each}"
            " EXECUTE FUNCTION {fn}()"
        ).format(
            fn=sql.Identifier(f"{table}_{name}"),
            body=sql.SQL(body),
            kind=sql.SQL(kind),
            name=sql.Identifier(name),
            when=sql.SQL(when),
            table=sql.Identifier(table),
            deferral=sql.SQL(deferral),
            each=sql.SQL(each),
        )
    )


def stored(dsn: str, table: str) -> list[str]:
    """Every message in ``table``, in insertion order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        query = sql.SQL("SELECT message FROM {} ORDER BY id").format(sql.Identifier(table))
        return [str(m) for (m,) in conn.execute(query).fetchall()]


def stored_count(dsn: str, table: str) -> int:
    """How many rows ``table`` holds; 0 while it does not exist."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            row = conn.execute(query).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def fetch(
    conn: psycopg.Connection[tuple[Any, ...]], table: str, columns: str = "*", where: str = "TRUE"
) -> list[tuple[Any, ...]]:
    """Rows of ``table`` in insertion order."""
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id").format(
        sql.SQL(columns), sql.Identifier(table), sql.SQL(where)
    )
    return conn.execute(query).fetchall()


def count(conn: psycopg.Connection[tuple[Any, ...]], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


def at_once(
    target: Callable[..., None], *args: Any, processes: int, timeout: float = 60
) -> list[Any]:
    """Run ``target(*args, barrier, results)`` in ``processes`` fresh interpreters that wait
    for each other at ``barrier`` before they act, so they really act together; returns
    what each put on ``results``, in the order they did."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=target, args=(*args, barrier, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=timeout) for _ in workers]
    for worker in workers:
        worker.join(30)
    return outcomes


def run_python(
    code: str, *, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (this one's), as a program that then simply ends."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


class Blackhole:
    """A TCP port that accepts connections and never answers: a server that hangs."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._socket.getsockname()[1]
        self.dsn = f"postgresql://nobody@127.0.0.1:{self.port}/nothing"
        self._accepted: list[socket.socket] = []

    def accept(self, timeout: float) -> None:
        """Wait until a client's connection arrives (it then waits for an answer forever)."""
        self._socket.settimeout(timeout)
        client, _ = self._socket.accept()
        self._accepted.append(client)

    def close(self) -> None:
        for client in self._accepted:
            client.close()
        self._socket.close()


def closed_port_dsn() -> str:
    """A DSN for a port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://nobody@127.0.0.1:{port}/nothing"


def runs(messages: list[str]) -> list[range]:
    """The numbers that end ``messages`` ("r12", "record 12"), as runs of consecutive ones."""
    found: list[range] = []
    for message in messages:
        n = int(message.split()[-1].lstrip("r"))
        if found and found[-1].stop == n:
            found[-1] = range(found[-1].start, n + 1)
        else:
            found.append(range(n, n + 1))
    return found


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def alive(pid: int) -> bool:
    """Is process ``pid`` running? A zombie no one has reaped yet is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def true_within(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last verdict,
    for a test that asserts on it with what it saw, or goes on either way."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        pause.wait(interval)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    if not true_within(condition, timeout, interval=0.01):
        raise TimeoutError(f"waited {timeout}s for {what}")


def make_record(
    msg: object = "hello %s", args: tuple[object, ...] = ("world",), /, **extra: object
) -> logging.LogRecord:
    """A LogRecord as ``logger.info(msg, *args, extra=extra)`` makes it."""
    log = logging.getLogger("capture.test")
    return log.makeRecord(
        log.name, logging.INFO, __file__, 10, msg, args, None, "func", extra or None
    )
