"""Retention: rows older than a cutoff removed, the way that costs writers least.

A partitioned table drops its partitions that end before the cutoff (constant time,
whatever their size); then the rows that remain older than the cutoff (in the default
partition, or in a plain table) are deleted in batches, each its own short transaction,
so writers are never blocked for long. The writer's background retention and
``pglog prune`` both come here.

A TimescaleDB hypertable is another matter: deleting rows from compressed chunks fails
(and bloats them while it tries). Its retention is TimescaleDB's own policy, which drops
whole chunks; the writer only makes sure the policy keeps ``retention_days`` (``keep``),
and ``pglog prune`` drops the chunks older than its cutoff at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import sql

from pglog._table import layout, partitions
from pglog._table.connection import Connection
from pglog._table.migrate import inspect_table
from pglog._table.schema import TableName

#: Rows deleted per transaction.
BATCH = 10_000


@dataclass
class Pruned:
    partitions: list[str]
    rows: int

    @property
    def more(self) -> bool:
        """Did the last round stop at its batch size (there may be more to delete)?"""
        return self.rows >= BATCH


def prune_round(conn: Connection, table: TableName, cutoff: dt.datetime) -> Pruned:
    """One round: drop the partitions wholly older than ``cutoff`` (if the table is
    partitioned), then delete up to BATCH older rows that remain."""
    with conn.transaction():
        state = inspect_table(conn, table)
        if state.engine == "timescaledb":
            return Pruned(layout.drop_chunks(conn, table, cutoff), 0)
    dropped = partitions.drop_older(conn, table, cutoff) if state.partitioned else []
    return Pruned(dropped, delete_batch(conn, table, cutoff, BATCH))


def keep(conn: Connection, table: TableName, days: int) -> Pruned:
    """The writer's retention, one round: rows older than ``days`` removed (see
    ``prune_round``), or, on a hypertable, TimescaleDB's retention policy made to keep
    ``days`` (its scheduler drops the chunks)."""
    with conn.transaction():
        if layout.engine_of(conn, table) == "timescaledb":
            layout.keep_for(conn, table, days)
            return Pruned([], 0)
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    return prune_round(conn, table, cutoff)


def prune(conn: Connection, table: TableName, older_than: dt.timedelta) -> Pruned:
    """Everything older than ``older_than``, round after round."""
    cutoff = dt.datetime.now(dt.timezone.utc) - older_than
    total = Pruned([], 0)
    while True:
        done = prune_round(conn, table, cutoff)
        total.partitions += done.partitions
        total.rows += done.rows
        if not done.more:
            return total


def delete_batch(conn: Connection, table: TableName, cutoff: dt.datetime, batch: int) -> int:
    """Delete up to ``batch`` of the oldest rows before ``cutoff``, in one short transaction."""
    statement = sql.SQL(
        'DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE "timestamp" < %s'
        ' ORDER BY "timestamp" LIMIT %s)'
    ).format(table=table.identifier)
    with conn.transaction():
        return conn.execute(statement, (cutoff, batch)).rowcount
