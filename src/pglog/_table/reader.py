"""Reader: rows out of the table, for people: query, tail, stats, export, health, prune.

Every query is bounded (a LIMIT, a time range, or a server-side cursor that streams)
and uses the table's indexes; none counts the whole table (sizes and row counts come
from the catalog's estimates).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pglog._table.columns import SHOWN
from pglog._table.filters import Filter
from pglog._table.migrate import SCHEMA_VERSION, inspect_table
from pglog._table.schema import TableName

Connection = psycopg.Connection[Any]


def rows(
    conn: Connection,
    table: TableName,
    where: Filter,
    *,
    limit: int,
    after_id: int | None = None,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows matching ``where`` (and newer than ``after_id``)."""
    clause, params = where.clause()
    if after_id is not None:
        clause = sql.SQL("{} AND id > %(after_id)s").format(clause)
        params["after_id"] = after_id
    order = sql.SQL('"timestamp" DESC, id DESC' if newest_first else "id")
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %(limit)s").format(
        sql.SQL(", ").join(map(sql.Identifier, SHOWN)), table.identifier, clause, order
    )
    params["limit"] = limit
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def level_number(conn: Connection, table: TableName, name: str) -> int | None:
    """The number of a custom level, as the table's rows of that level store it."""
    found = conn.execute(
        sql.SQL("SELECT levelno FROM {} WHERE level = %s AND levelno IS NOT NULL LIMIT 1").format(
            table.identifier
        ),
        (name,),
    ).fetchone()
    conn.rollback()
    return int(found[0]) if found else None


def follow(
    conn: Connection, table: TableName, where: Filter, after_id: int, *, interval: float = 0.5
) -> Iterator[dict[str, Any]]:
    """Rows as they land, oldest first, forever: polls with a cursor on ``id``."""
    while True:
        found = rows(conn, table, where, limit=1000, after_id=after_id, newest_first=False)
        conn.rollback()  # don't hold a snapshot (or a transaction) between polls
        yield from found
        if found:
            after_id = found[-1]["id"]
        else:
            time.sleep(interval)  # polling the server, the only way to follow a table


def stream(conn: Connection, table: TableName, where: Filter) -> Iterator[dict[str, Any]]:
    """Every matching row, oldest first, through a server-side cursor: memory stays flat."""
    clause, params = where.clause()
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id").format(
        sql.SQL(", ").join(map(sql.Identifier, SHOWN)), table.identifier, clause
    )
    with conn.cursor(name="pglog_export", row_factory=dict_row) as cur:
        cur.itersize = 5000
        cur.execute(query, params)
        yield from cur


@dataclass
class TableStats:
    by_level: list[tuple[str, int]]
    by_logger: list[tuple[str, int]]
    by_hour: list[tuple[dt.datetime, int]]
    total_bytes: int
    estimated_rows: int


def stats(conn: Connection, table: TableName, where: Filter, *, top: int = 20) -> TableStats:
    """Rows per level, per logger (the busiest), per hour, for the filter; the table's size."""
    clause, params = where.clause()

    def grouped(expression: str, order: str, limit: int | None = None) -> list[Any]:
        query = sql.SQL(
            "SELECT {} AS key, count(*) FROM {} WHERE {} GROUP BY 1 ORDER BY {}"
        ).format(sql.SQL(expression), table.identifier, clause, sql.SQL(order))
        if limit:
            query = sql.SQL("{} LIMIT {}").format(query, sql.Literal(limit))
        return [tuple(row) for row in conn.execute(query, params).fetchall()]

    total_bytes, estimated_rows = footprint(conn, table)
    return TableStats(
        by_level=grouped("level", "2 DESC"),
        by_logger=grouped("logger_name", "2 DESC, 1", top),
        by_hour=grouped("date_trunc('hour', \"timestamp\")", "1 DESC", 48),
        total_bytes=total_bytes,
        estimated_rows=estimated_rows,
    )


@dataclass
class Health:
    connected: bool
    error: str | None = None
    exists: bool = False
    schema_version: int | None = None
    newest: dt.datetime | None = None
    total_bytes: int = 0
    estimated_rows: int = 0
    missing_indexes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.connected:
            found.append(f"can't connect: {self.error}")
        elif not self.exists:
            found.append("the table does not exist (pglog init creates it)")
        elif self.schema_version != SCHEMA_VERSION:
            found.append(
                f"schema version {self.schema_version or 'unmarked'}, this pglog's is"
                f" {SCHEMA_VERSION} (pglog migrate brings it there)"
            )
        return found


def health(conn: Connection, table: TableName) -> Health:
    state = inspect_table(conn, table)
    result = Health(
        connected=True,
        exists=state.exists,
        schema_version=state.version,
        missing_indexes=state.missing_indexes,
    )
    if not state.exists:
        return result
    newest = conn.execute(
        sql.SQL('SELECT max("timestamp") FROM {}').format(table.identifier)  # the index's edge
    ).fetchone()
    result.newest = newest[0] if newest else None
    result.total_bytes, result.estimated_rows = footprint(conn, table)
    return result


def footprint(conn: Connection, table: TableName) -> tuple[int, int]:
    """Bytes on disk (indexes and TOAST included) and the planner's row estimate, from the
    catalog: counting a big table would take minutes."""
    found = leaves(conn, table)
    return sum(leaf.bytes for leaf in found), sum(max(0, leaf.tuples) for leaf in found)


@dataclass(frozen=True)
class Leaf:
    """A relation that holds the table's rows: the table, or one of its partitions."""

    schema: str
    name: str
    #: The planner's row estimate; -1 if never analysed.
    tuples: int
    bytes: int


def leaves(conn: Connection, table: TableName) -> list[Leaf]:
    """The relations that hold the rows: a plain table itself, or the leaves of a
    partitioned table's tree (which holds nothing itself). PostgreSQL before 16 gives a
    plain table no row in ``pg_partition_tree``, hence the second half."""
    found = conn.execute(
        "SELECT n.nspname, c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid IN (SELECT relid FROM pg_partition_tree(%(t)s::regclass) WHERE isleaf)"
        " OR (c.oid = %(t)s::regclass AND c.relkind = 'r')",
        {"t": table.regclass},
    ).fetchall()
    return [Leaf(str(s), str(n), int(t), int(b)) for s, n, t, b in found]
