"""Writer reports: each writer publishes its counters to ``pglog_writers`` (one table per
schema, beside the log tables it serves), so that a
monitor outside the process (``pglog health``, Grafana, a cron job) can see what only the
process knows: how deep its queue is, when it last wrote, what went wrong.

One row per writer (log table, host, process, start time), replaced every ``REPORT_EVERY`` seconds
while the writer is connected and once more when it stops. A writer that can't reach
the database can't report either: its row goes stale, and that is the signal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pglog.schema import TableName

#: Seconds between reports; a running writer silent for ``SILENT_AFTER`` is in trouble.
REPORT_EVERY = 10.0
SILENT_AFTER = dt.timedelta(seconds=6 * REPORT_EVERY)
#: Reports of writers gone for this long are deleted by the next writer's upkeep.
FORGET_AFTER = dt.timedelta(days=7)
#: A report is not worth waiting for: a server this slow gets none.
STATEMENT_TIMEOUT = "5s"

Connection = psycopg.Connection[tuple[object, ...]]


def table_of(table: TableName) -> TableName:
    return TableName(table.schema, "pglog_writers")


def create(conn: Connection, table: TableName) -> bool:
    """Create the reports table for ``table``'s schema unless it exists; True if created.
    Under its own advisory lock: two log tables of a schema may be set up at once."""
    reports = table_of(table)
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (reports.lock_key,))
    found = conn.execute("SELECT to_regclass(%s)", (reports.identifier.as_string(conn),))
    if found.fetchone() != (None,):
        return False
    conn.execute(
        sql.SQL(
            """CREATE TABLE {} (
    log_table TEXT NOT NULL,
    hostname TEXT NOT NULL,
    process_id INTEGER NOT NULL,
    started TIMESTAMP WITH TIME ZONE NOT NULL,
    reported TIMESTAMP WITH TIME ZONE NOT NULL,
    stopped BOOLEAN NOT NULL DEFAULT false,
    stats JSONB NOT NULL,
    PRIMARY KEY (log_table, hostname, process_id, started)
)"""
        ).format(reports.identifier)
    )
    return True


@dataclass(frozen=True)
class Identity:
    hostname: str
    process_id: int
    started: dt.datetime


def publish(
    conn: Connection, table: TableName, who: Identity, stats: dict[str, Any], *, stopped: bool
) -> None:
    """Replace this writer's report, in a transaction of its own."""
    with conn.transaction():
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (STATEMENT_TIMEOUT,))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (log_table, hostname, process_id, started, reported, stopped,"
                " stats) VALUES (%s, %s, %s, %s, now(), %s, %s)"
                " ON CONFLICT (log_table, hostname, process_id, started) DO UPDATE"
                " SET reported = now(), stopped = excluded.stopped, stats = excluded.stats"
            ).format(table_of(table).identifier),
            (table.name, who.hostname, who.process_id, who.started, stopped, Jsonb(stats)),
        )


def forget_old(conn: Connection, table: TableName) -> int:
    """Delete the reports of writers gone for longer than FORGET_AFTER, whatever their
    table: a log table dropped since leaves its reports to be forgotten here."""
    with conn.transaction():
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE reported < now() - %s").format(
                table_of(table).identifier
            ),
            (FORGET_AFTER,),
        )
    return cur.rowcount


@dataclass(frozen=True)
class Report:
    hostname: str
    process_id: int
    started: dt.datetime
    reported: dt.datetime
    stopped: bool
    stats: dict[str, Any]
    now: dt.datetime

    @property
    def silent(self) -> bool:
        """Running, by its last word, but not heard from for a while."""
        return not self.stopped and self.now - self.reported > SILENT_AFTER

    @property
    def problem(self) -> str | None:
        name = f"writer {self.hostname}:{self.process_id}"
        if self.silent:
            return (
                f"{name} has not reported for {_ago(self.now - self.reported)}"
                f" (its queue held {self.stats.get('queue_depth', '?')} records)"
            )
        failing_since = self.stats.get("failing_since")
        if failing_since and not self.stopped:
            age = self.now - dt.datetime.fromisoformat(failing_since)
            if age > SILENT_AFTER:
                return f"{name} has failed to write for {_ago(age)}: {self.stats['last_error']}"
        return None


def recent(conn: Connection, table: TableName, within: dt.timedelta) -> list[Report] | None:
    """Reports made within ``within`` (newest first); None when there is no reports table."""
    found = conn.execute("SELECT to_regclass(%s)", (table_of(table).identifier.as_string(conn),))
    exists = found.fetchone()
    if not exists or exists[0] is None:
        return None
    rows = conn.execute(
        sql.SQL(
            "SELECT hostname, process_id, started, reported, stopped, stats, now() FROM {}"
            " WHERE log_table = %s AND reported >= now() - %s ORDER BY reported DESC"
        ).format(table_of(table).identifier),
        (table.name, within),
    ).fetchall()
    return [Report(*row) for row in rows]  # type: ignore[arg-type]


def _ago(age: dt.timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
