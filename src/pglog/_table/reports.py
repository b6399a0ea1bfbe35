"""Writer reports: each writer publishes its counters to ``pglog_writers`` (one table per
schema, beside the log tables it serves), so that a monitor outside the process
(``pglog health``, Grafana, a cron job) can see what only the process knows: how deep
its queue is, when it last wrote, what went wrong.

One row per writer (log table, host, process, start time), replaced every
``REPORT_EVERY`` seconds while the writer is connected and once more when it stops.

Reports are a courtesy, never a cost: the table is made when it can be (a role that
may only insert into the log table goes without), and every statement gives up after
a few hundred milliseconds rather than wait behind someone's lock. Durations are
published as seconds measured by the writer, never as its wall clock, so a host whose
clock is off can't make a healthy writer look stuck.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from pglog._table.connection import Connection
from pglog._table.schema import TableName

#: Seconds between reports; a report this old from a writer that had work is a problem.
REPORT_EVERY = 10.0
SILENT_AFTER = dt.timedelta(seconds=6 * REPORT_EVERY)
#: Reports of writers gone for this long are deleted by the next writer's upkeep.
FORGET_AFTER = dt.timedelta(days=7)
#: Bounds on every statement here: waiting is never worth it.
LOCK_TIMEOUT = "200ms"
STATEMENT_TIMEOUT = "1s"


def table_of(table: TableName) -> TableName:
    """Where the reports of writers into ``table`` go."""
    return TableName(table.schema, "pglog_writers")


@dataclass(frozen=True)
class Identity:
    """One writer, for as long as it runs: a forked child is another writer."""

    hostname: str
    process_id: int
    started: dt.datetime


def create(conn: Connection, table: TableName) -> bool:
    """Create the reports table for ``table``'s schema unless it exists; True if created.
    In a transaction of its own, under its own advisory lock (two log tables of a schema
    may be set up at once)."""
    reports = table_of(table)
    with conn.transaction():
        _bound(conn)
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (reports.lock_key,))
        found = conn.execute("SELECT to_regclass(%s)", (reports.regclass,))
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


def publish(
    conn: Connection, table: TableName, who: Identity, stats: dict[str, Any], *, stopped: bool
) -> None:
    """Replace this writer's report."""
    with conn.transaction():
        _bound(conn)
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
        _bound(conn)
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE reported < now() - %s").format(
                table_of(table).identifier
            ),
            (FORGET_AFTER,),
        )
    return cur.rowcount


def _bound(conn: Connection) -> None:
    conn.execute(
        "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
        (LOCK_TIMEOUT, STATEMENT_TIMEOUT),
    )


@dataclass(frozen=True)
class Report:
    """A writer's last report, as read back with the server's clock (``now``)."""

    hostname: str
    process_id: int
    started: dt.datetime
    reported: dt.datetime
    stopped: bool
    stats: dict[str, Any]
    now: dt.datetime

    @property
    def age(self) -> dt.timedelta:
        return self.now - self.reported

    @property
    def had_work(self) -> bool:
        """Whether, when it last reported, the writer held records or was failing: an idle
        writer that went quiet (its process ended, its connection was closed) lost nothing."""
        stats = self.stats
        waiting = stats.get("queue_depth", 0) + stats.get("in_flight", 0)
        return bool(waiting or stats.get("failing_for_s") is not None)

    @property
    def problem(self) -> str | None:
        if self.stopped:
            return None
        name = f"writer {self.hostname}:{self.process_id}"
        if self.age > SILENT_AFTER and self.had_work:
            return (
                f"{name} has not reported for {ago(self.age)}"
                f" (its queue held {self.stats.get('queue_depth', '?')} records)"
            )
        failing_for = self.stats.get("failing_for_s")
        if failing_for is not None:
            failing = dt.timedelta(seconds=float(failing_for)) + self.age
            if failing > SILENT_AFTER:
                error = self.stats.get("last_error") or "no error recorded"
                return f"{name} has failed to write for {ago(failing)}: {error}"
        return None


def recent(conn: Connection, table: TableName, within: dt.timedelta) -> list[Report] | None:
    """Reports made within ``within`` (newest first); None when there is no reports table."""
    found = conn.execute("SELECT to_regclass(%s)", (table_of(table).regclass,))
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
    return [Report(*row) for row in rows]


def ago(age: dt.timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
