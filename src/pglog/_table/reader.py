"""Reader: rows out of the table, for people: query, tail, stats, export, health, prune.

Every query is bounded (a LIMIT, a time range, or a server-side cursor that streams)
and uses the table's indexes; none counts the whole table (sizes and row counts come
from the catalog's estimates).
"""

from __future__ import annotations

import collections
import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from pglog._table import layout
from pglog._table.columns import SHOWN
from pglog._table.connection import Connection
from pglog._table.filters import Filter
from pglog._table.migrate import SCHEMA_VERSION, inspect_table
from pglog._table.schema import TableName

#: The columns a reader shows, in their order.
_SHOWN = sql.SQL(", ").join(map(sql.Identifier, SHOWN))


def rows(conn: Connection, table: TableName, where: Filter, *, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` rows matching ``where``, newest first."""
    clause, params = where.clause()
    return _select(conn, table, clause, params, order='"timestamp" DESC, id DESC', limit=limit)


def _select(
    conn: Connection,
    table: TableName,
    clause: sql.Composable,
    params: dict[str, Any],
    *,
    order: str,
    limit: int,
) -> list[dict[str, Any]]:
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %(limit)s").format(
        _SHOWN, table.identifier, clause, sql.SQL(order)
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {**params, "limit": limit}).fetchall()


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


#: Rows can commit after rows with higher ids (ids are taken before a transaction
#: commits, and on Citus a committed batch may show on a worker a moment late), so a
#: follower looks again above the highest id it had shown this long ago...
LOOK_BACK = 15.0
#: ... but never more than this many ids below the highest it has shown.
LOOK_BACK_IDS = 50_000
#: Rows a follower takes at a time; fewer means it has caught up, and waits.
FOLLOW_BATCH = 1000


def follow(
    conn: Connection,
    table: TableName,
    where: Filter,
    after_id: int,
    *,
    interval: float = 0.5,
    look_back: float = LOOK_BACK,
) -> Iterator[dict[str, Any]]:
    """Rows as they land, forever, each once: polls with a cursor on ``id`` that looks
    back ``look_back`` seconds for rows that committed after higher ids were shown."""
    shown: set[int] = set()
    marks: collections.deque[tuple[float, int]] = collections.deque([(time.monotonic(), after_id)])
    while True:
        now = time.monotonic()
        while len(marks) > 1 and now - marks[1][0] >= look_back:
            marks.popleft()  # marks[0]: the newest mark at least look_back old, if any
        highest = max(shown, default=after_id)
        floor = max(marks[0][1] if now - marks[0][0] >= look_back else after_id, after_id)
        floor = max(floor, highest - LOOK_BACK_IDS)
        shown = {row_id for row_id in shown if row_id > floor}
        found = _landed(conn, table, where, floor, sorted(shown))
        conn.rollback()  # don't hold a snapshot (or a transaction) between polls
        yield from found
        shown.update(int(row["id"]) for row in found)
        marks.append((now, max(shown, default=highest)))
        if len(found) < FOLLOW_BATCH:
            time.sleep(interval)  # polling the server, the only way to follow a table


def _landed(
    conn: Connection, table: TableName, where: Filter, floor: int, skip: Sequence[int]
) -> list[dict[str, Any]]:
    """The next FOLLOW_BATCH rows matching ``where`` above id ``floor`` that are not in
    ``skip`` (shown already), by id."""
    clause, params = where.clause()
    clause = sql.SQL("{} AND id > %(floor)s").format(clause)
    params["floor"] = floor
    if skip:
        clause = sql.SQL("{} AND NOT (id = ANY(%(skip)s))").format(clause)
        params["skip"] = list(skip)
    return _select(conn, table, clause, params, order="id", limit=FOLLOW_BATCH)


def stream(conn: Connection, table: TableName, where: Filter) -> Iterator[dict[str, Any]]:
    """Every matching row, oldest first, through a server-side cursor: memory stays flat."""
    clause, params = where.clause()
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id").format(
        _SHOWN, table.identifier, clause
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
    """Bytes on disk (indexes and TOAST included) and the row estimate, from the catalog,
    on whatever layout the table has (see ``layout.footprint``)."""
    return layout.footprint(conn, table, layout.engine_of(conn, table))


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
