"""Partitions: the time ranges of a partitioned log table, the way pg_partman lays them out.

The table is range-partitioned on ``timestamp`` by day, week (from Monday) or month, in
UTC. Partitions are named ``<table>_p<YYYY>_<MM>_<DD>`` (``_p<YYYY>_<MM>`` by month) and
made a few periods ahead; a DEFAULT partition, ``<table>_default``, takes any row no
partition covers (the far past, a clock gone wrong), so an insert never fails for want
of a partition. When a partition is made for a range the default partition already holds
rows of, they are moved into it first. Retention drops whole partitions: constant time,
whatever their size.

Every change takes a short lock timeout: maintenance waits behind a long transaction
rather than making writers wait behind it, and tries again at its next round. Changes
also take the table's advisory lock, so processes starting together take turns.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from psycopg import sql

from pglog._table.connection import Connection
from pglog._table.schema import Name, TableName, free_name

PERIODS = ("day", "week", "month")
#: Periods made ahead of now, and kept behind it (for records that arrive late).
AHEAD, BEHIND = 3, 1
LOCK_TIMEOUT = "5s"

_UTC = dt.timezone.utc
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    start: dt.datetime | None  # None: the default partition
    end: dt.datetime | None


def period_start(moment: dt.datetime, period: str) -> dt.datetime:
    day = moment.astimezone(_UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def next_start(start: dt.datetime, period: str) -> dt.datetime:
    if period == "day":
        return start + dt.timedelta(days=1)
    if period == "week":
        return start + dt.timedelta(days=7)
    return (start + dt.timedelta(days=32)).replace(day=1)


def partition_name(table: TableName, start: dt.datetime, period: str) -> str:
    suffix = start.strftime("p%Y_%m" if period == "month" else "p%Y_%m_%d")
    return table.derived_name(suffix)


def default_name(table: TableName) -> str:
    return table.derived_name("default")


def partitions(conn: Connection, table: TableName) -> list[Partition]:
    """The table's partitions, from the catalog, oldest first (the default one last)."""
    found = []
    with conn.transaction():  # a read: never leave a transaction open behind it
        listed = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            (table.regclass,),
        ).fetchall()
    for name, bound in listed:
        match = _BOUND.search(str(bound))
        if match:
            start, end = (_timestamp(text) for text in match.groups())
            found.append(Partition(str(name), start, end))
        else:
            found.append(Partition(str(name), None, None))
    return sorted(found, key=lambda p: (p.start is None, p.start or dt.datetime.max))


def _timestamp(text: str) -> dt.datetime:
    """A bound as pg_get_expr prints it ('2026-11-23 00:00:00+00'), as an aware datetime."""
    if re.search(r"[+-]\d\d$", text):
        text += ":00"  # Python 3.10 reads only +HH:MM offsets
    return dt.datetime.fromisoformat(text).astimezone(_UTC)


def create_default(conn: Connection, table: TableName) -> None:
    """After the partitioned table itself: its default partition (under another name if a
    table renamed away still holds the usual one)."""
    name = free_name(conn, table.schema, default_name(table))
    conn.execute(
        sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(
            Name(table.schema, name), table.identifier
        )
    )


def ensure_ahead(conn: Connection, table: TableName, period: str, now: dt.datetime) -> list[str]:
    """Partitions for the periods from BEHIND before ``now`` to AHEAD after it."""
    have = {p.start for p in partitions(conn, table)}
    start = period_start(now, period)
    for _ in range(BEHIND):
        start = period_start(start - dt.timedelta(days=1), period)
    made = []
    for _ in range(BEHIND + 1 + AHEAD):
        if start not in have and (done := make(conn, table, period, start)):
            made.append(done)
        start = next_start(start, period)
    return made


def make(conn: Connection, table: TableName, period: str, start: dt.datetime) -> str | None:
    """The partition for the period from ``start``, with the default partition's rows of
    that period moved into it; says so. Nothing happens (None) if it exists."""
    end = next_start(start, period)
    with conn.transaction():
        _serialise(conn, table)
        current = partitions(conn, table)
        if any(p.start == start for p in current):
            return None
        # The names are the usual ones, unless a table renamed away still holds them.
        wanted = partition_name(table, start, period)
        name = Name(table.schema, free_name(conn, table.schema, wanted))
        defaults = [p.name for p in current if p.start is None]
        default = Name(table.schema, defaults[0] if defaults else default_name(table))
        # Making a partition locks the table anyway; taking the lock first means no row
        # can land in the default partition between the look for strays and the change.
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table.identifier))
        strays = (
            defaults
            and conn.execute(
                sql.SQL(
                    'SELECT EXISTS (SELECT 1 FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s)'
                ).format(default),
                (start, end),
            ).fetchone()
        )
        bounds = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(
            sql.Literal(start.isoformat()), sql.Literal(end.isoformat())
        )
        if strays and strays[0]:
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                    name, table.identifier
                )
            )
            conn.execute(
                sql.SQL(
                    'WITH moved AS (DELETE FROM {} WHERE "timestamp" >= %s AND "timestamp" < %s'
                    " RETURNING *) INSERT INTO {} SELECT * FROM moved"
                ).format(default, name),
                (start, end),
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
                    table.identifier, name, bounds
                )
            )
        else:
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(name, table.identifier, bounds)
            )
    return f"partition {name.text} made"


def drop_older(conn: Connection, table: TableName, cutoff: dt.datetime) -> list[str]:
    """Drop the partitions that end at or before ``cutoff``: retention in constant time."""
    dropped = []
    for partition in partitions(conn, table):
        if partition.end is None or partition.end > cutoff:
            continue
        with conn.transaction():
            _serialise(conn, table)
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(Name(table.schema, partition.name))
            )
        dropped.append(partition.name)
    return dropped


def _serialise(conn: Connection, table: TableName) -> None:
    """Bound the transaction's lock waits, and take the table's DDL lock: processes that
    start together, or prune together, take turns instead of tripping over each other."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (table.lock_key,))
