"""Demo: the main job in a few seconds. An application logs, pglog stores, we look at the table."""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TextIO

import psycopg
from psycopg import sql

from pglog._config import Config, load_config
from pglog._embedded import embedded_server, kept_server, stop_command
from pglog._manager import LoggerManager
from pglog._table.schema import TableName

#: The demo's own configuration: the YAML of config.example.yml, with a quieter console.
DEMO_CONFIG: dict[str, Any] = {
    "logging": {
        "level": "INFO",
        "console": {"enabled": True, "level": "WARNING"},
        "database": {"enabled": True, "batch_size": 100, "flush_interval": 0.2},
        "components": {
            "authentication": "DEBUG",
            "database": "INFO",
            "apikey": "INFO",
            "models": "WARNING",
        },
    },
}
DEMO_TABLE = "pglog_demo"


class Asked(Protocol):
    """What ``pglog demo`` was asked, as its options were parsed: each None when not given."""

    dsn: str | None
    config: str | None
    table: str | None
    schema: str | None
    #: Leave the embedded server (when no database is given) running with its rows, and
    #: say what to try on it.
    keep: bool


def run_demo(asked: Asked, out: TextIO) -> int:
    """Log the workload and show what landed."""
    config = load_config(asked.config) if asked.config else load_config(DEMO_CONFIG)
    dsn = asked.dsn or config.destination.dsn or os.environ.get("PGLOG_DSN") or None
    kept: Path | None = None
    if dsn is None and asked.keep:
        dsn, kept = kept_server()
        server: Any = nullcontext(dsn)
        where = "an embedded PostgreSQL that keeps running"
    else:
        server = embedded_server() if dsn is None else nullcontext(dsn)
        where = "a throwaway embedded PostgreSQL" if dsn is None else "the database you gave"
    with server as resolved_dsn:
        config = _for_demo(config, resolved_dsn, asked)
        print(f"pglog demo: logging into {config.schema}.{config.table} on {where}", file=out)
        code = _log_and_show(config, resolved_dsn, out)
        _query_hint(config, throwaway=dsn is None and kept is None, out=out)
        if asked.keep:
            _next_steps(config, resolved_dsn if kept is not None else None, kept, out)
        return code


def _next_steps(config: Config, dsn: str | None, kept: Path | None, out: TextIO) -> None:
    """What to try on the rows the demo left."""
    table = f" --table {config.table}" + (
        f" --schema {config.schema}" if config.schema != "public" else ""
    )
    lines = ["", "The rows stay where they are. Next, try:"]
    if dsn is not None:
        lines.append(f"  export PGLOG_DSN='{dsn}'")
    else:
        lines.append("  export PGLOG_DSN=...   # the database you gave")
    lines += [
        f"  pglog tail{table} -n 20",
        f"  pglog errors{table}",
        f"  pglog query{table} --request req-1-003",
        f"  pglog query{table} --grep 12,50",
        f"  pglog serve{table}      # then open http://127.0.0.1:8080/",
    ]
    if kept is not None:
        lines += ["", f"Stop the server and delete its files with: {stop_command(kept)}"]
    print("\n".join(lines), file=out)


def _for_demo(config: Config, dsn: str, asked: Asked) -> Config:
    options = dict(config.database.options)
    options["table"] = asked.table or options.get("table") or DEMO_TABLE
    if asked.schema:
        options["schema"] = asked.schema
    return replace(
        config,
        destination=replace(config.destination, dsn=dsn),
        database=replace(config.database, enabled=True, options=options),
    )


def _log_and_show(config: Config, dsn: str, out: TextIO) -> int:
    manager = LoggerManager(config)
    if not manager.install():
        print(f"pglog demo: the database is unreachable: {manager.database_error}", file=out)
        manager.shutdown()
        return 1
    handler = manager.database_handler
    assert handler is not None
    started = time.monotonic()
    with _start_marker(dsn, config) as since_id:
        emit_workload(manager.get_logger)
        manager.shutdown()
        elapsed = time.monotonic() - started
        stats = handler.stats()
        print(
            f"\nStored {stats['written']} of {stats['enqueued']} records in {elapsed:.2f} s"
            f" ({stats['dropped']} dropped, {stats['fallback']} to the fallback,"
            f" {stats['batches']} COPY batches).",
            file=out,
        )
        show_table(dsn, config, since_id, out)
    return 0 if stats["written"] == stats["enqueued"] else 1


@contextmanager
def _start_marker(dsn: str, config: Config) -> Iterator[int]:
    """The highest id before the demo ran, so a re-run shows only its own rows."""
    table = TableName(config.schema, config.table).identifier  # a % in it is fine
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            row = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(table))
            since = int(row.fetchone()[0])  # type: ignore[index]
        except psycopg.errors.UndefinedTable:
            since = 0
    yield since


def emit_workload(get_logger: Callable[[str], logging.Logger]) -> None:
    """A small web shop's morning: requests, logins, payments, a failure, some unicode."""
    rng = random.Random(7)
    api = get_logger("api")
    auth = get_logger("authentication")
    payments = get_logger("payments")
    database = get_logger("database")
    models = get_logger("models")

    database.info("connection pool ready", extra={"pool_size": 10, "server": "db-1"})
    models.info("this INFO is below the 'models' level (WARNING) and is not stored")
    models.warning("model cache is cold", extra={"entries": 0})

    def serve(worker: int) -> None:
        for request in range(12):
            request_id = f"req-{worker}-{request:03d}"
            user_id = rng.randint(100, 999)
            auth.debug("token checked", extra={"request_id": request_id, "user_id": user_id})
            status, duration = rng.choice([(200, 12.5), (200, 8.1), (404, 3.2), (201, 25.0)])
            api.info(
                "%s %s -> %d",
                "GET" if status != 201 else "POST",
                f"/orders/{request}",
                status,
                extra={"request_id": request_id, "status": status, "duration_ms": duration},
            )

    workers = [threading.Thread(target=serve, args=(n,), name=f"web-{n}") for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    for attempt in range(3):
        database.error(
            "timeout talking to %s after %d ms",
            "db-2",
            5000 + attempt,
            extra={"request_id": f"req-1-{attempt:03d}", "attempt": attempt},
        )
    auth.warning("5 failed logins for %s", "mallory@example.com", extra={"ip": "203.0.113.9"})
    payments.info(
        "Zahlung erhalten: 12,50 € von Jürgen — 注文 #1042 ✅",
        extra={"order": {"id": 1042, "items": ["Kaffee", "Brötchen"], "total": 12.5}},
    )
    try:
        amount = "12,50"  # as the checkout form sent it
        cents = int(amount) * 100
        payments.info("charged %d cents", cents)
    except ValueError:
        payments.exception("payment for order %d failed", 1043, extra={"order_id": 1043})
    api.info("shutting down", extra={"uptime_s": 3600})


def show_table(dsn: str, config: Config, since_id: int, out: TextIO) -> None:
    table = TableName(config.schema, config.table).identifier  # a % in it is fine
    with psycopg.connect(dsn, autocommit=True) as conn:

        def rows(query: str) -> list[tuple[Any, ...]]:
            statement = sql.SQL(query).format(table=table)
            return conn.execute(statement, {"since": since_id}).fetchall()

        by_level = rows(
            "SELECT level, count(*) FROM {table} WHERE id > %(since)s"
            " GROUP BY level ORDER BY min(id)"
        )
        by_logger = rows(
            "SELECT logger_name, count(*) FROM {table} WHERE id > %(since)s"
            " GROUP BY logger_name ORDER BY count(*) DESC, logger_name"
        )
        latest = rows(
            "SELECT timestamp, level, logger_name, thread_name, message, extra_data"
            " FROM {table} WHERE id > %(since)s ORDER BY id DESC LIMIT 6"
        )
        failure = rows(
            "SELECT message, exception FROM {table}"
            " WHERE id > %(since)s AND exception IS NOT NULL ORDER BY id DESC LIMIT 1"
        )

    print("\nRows per level:", file=out)
    for level, count in by_level:
        print(f"  {level:<10}{count:>5}", file=out)
    print("Rows per logger:", file=out)
    for name, count in by_logger:
        print(f"  {name:<16}{count:>5}", file=out)
    print("\nThe latest rows (newest first):", file=out)
    for timestamp, level, name, thread, message, extra in latest:
        extra_text = json.dumps(extra, ensure_ascii=False) if extra else ""
        print(
            f"  {timestamp:%H:%M:%S.%f} {level:<8} {name:<15} {thread:<10} {message}  {extra_text}",
            file=out,
        )
    for message, exception in failure:
        print(f"\nThe exception stored with {message!r}:", file=out)
        for line in exception.splitlines():
            print(f"  | {line}", file=out)


def _query_hint(config: Config, throwaway: bool, out: TextIO) -> None:
    """SQL to try; on a throwaway server, which is gone by now, how to keep one instead."""
    intro = (
        "\nThat server is gone with the demo; `pglog demo --keep` leaves it running, to query:"
        if throwaway
        else "\nQuery it yourself, for instance:"
    )
    print(
        f"{intro}\n"  # noqa: S608 - SQL for the reader, never executed
        f"  SELECT level, count(*) FROM {config.schema}.{config.table} GROUP BY level;\n"
        f"  SELECT timestamp, message FROM {config.schema}.{config.table}"
        " WHERE extra_data->>'order_id' = '1043';",
        file=out,
    )
