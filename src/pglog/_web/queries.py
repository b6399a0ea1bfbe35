"""Queries: what the web view shows, each with bounded work whatever the table's size.

The CLI's reader can afford a query that runs for a while; a page that polls every few
seconds on a table of tens of millions of rows can't. So every query here walks an
index and looks at a fixed number of rows at most, and says where it stopped: a page
of rows walks the timestamp index from the newest row down (keyset pagination, never
OFFSET); the live poll walks the id index down from the newest row; the volume chart
looks at the first rows of each of its time slices (see ``volume``; the table's facts
are ``facts``'). Nothing counts the whole table. A search (``--grep``, or a condition
the search index serves) that the walk's budget doesn't satisfy goes on through the
search index when the planner expects few matches in the range, so a rare word over a
day costs what its matches cost; a common one is met on the walk, a page's worth.

Filters are :class:`pglog._table.filters.Filter`, the language ``pglog query`` speaks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from pglog._table import layout, search
from pglog._table.columns import SHOWN
from pglog._table.connection import Connection
from pglog._table.filters import Filter
from pglog._table.schema import TableName

#: Rows a page or a poll looks at, at most: a rare match over a long range costs a
#: bounded amount, and the caller goes on from the cursor it gets back.
SCAN_BUDGET = 20_000
#: A search reads its rows through the search index when the planner expects this many
#: in the range at most; more are met sooner on the walk (see ``page``).
RARE = 5_000

#: Row ids are bigint: a number outside it can't be one, and comparing the id index with
#: it would need a cast that walks the whole index.
ROW_IDS = range(-(2**63), 2**63)

#: SHOWN, with extra_data as indented JSON text (NULL when empty): shown as it is, with
#: no float or big integer rounded on its way through JavaScript. (Not nullif: an empty
#: object pretty-prints as "{\n}".)
COLUMNS = sql.SQL(", ").join(
    sql.SQL(
        "CASE WHEN extra_data::jsonb = '{}'::jsonb THEN NULL"
        " ELSE jsonb_pretty(extra_data::jsonb) END AS extra_data"
    )
    if column == "extra_data"
    else sql.Identifier(column)
    for column in SHOWN
)


@dataclass(frozen=True)
class Cursor:
    """Where a newest-first walk stopped: the rows before (timestamp, id) come next."""

    timestamp: dt.datetime
    id: int

    @classmethod
    def parse(cls, text: str) -> Cursor:
        moment, _, number = text.rpartition("/")
        try:
            timestamp = dt.datetime.fromisoformat(moment)
            row_id = int(number)
        except ValueError:
            raise ValueError(
                f"can't read the cursor {text!r}: pass back the one a page returned"
            ) from None
        if row_id not in ROW_IDS:
            raise ValueError(
                f"the cursor {text!r} names no row id: pass back the one a page returned"
            )
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=dt.timezone.utc)
        return cls(timestamp, row_id)

    @classmethod
    def of(cls, row: dict[str, Any]) -> Cursor:
        return cls(row["timestamp"], int(row["id"]))

    def __str__(self) -> str:
        return f"{self.timestamp.isoformat()}/{self.id}"


@dataclass
class Page:
    rows: list[dict[str, Any]]
    #: Go on from here for older rows: after a full page, or when the walk used its
    #: budget first. None once the time range is exhausted.
    next: Cursor | None


def page(
    conn: Connection,
    table: TableName,
    where: Filter,
    *,
    limit: int,
    before: Cursor | None = None,
    budget: int = SCAN_BUDGET,
) -> Page:
    """Up to ``limit`` rows matching ``where``, newest first, older than ``before``.

    Walks the time range down the timestamp index and looks at ``budget`` rows at most,
    so a filter that matches little over a long range can't make a request slow: it
    returns what it found and where it stopped. On Citus: see ``spread``.
    """
    if on_citus(conn, table):
        from pglog._web import spread

        return spread.page(conn, table, where, limit=limit, before=before)
    bounds, params = Filter(since=where.since, until=where.until).clause()
    hit, conditions = where.untimed_clause()
    params.update(conditions)
    if before is not None:  # the first condition is the one the index can use
        bounds = sql.SQL(
            '{} AND "timestamp" <= %(before_ts)s'
            ' AND ("timestamp", id) < (%(before_ts)s, %(before_id)s)'
        ).format(bounds)
        params.update(before_ts=before.timestamp, before_id=before.id)
    query = sql.SQL(
        "SELECT {columns}, pglog_hit, pglog_n FROM ("
        ' SELECT visited.*, row_number() OVER (ORDER BY "timestamp" DESC, id DESC) AS pglog_n'
        "  FROM (SELECT *, ({hit}) AS pglog_hit FROM {table} WHERE {bounds}"
        '  ORDER BY "timestamp" DESC, id DESC LIMIT %(budget)s) AS visited'
        ") AS numbered WHERE pglog_hit OR pglog_n = %(budget)s"
        ' ORDER BY "timestamp" DESC, id DESC LIMIT %(enough)s'
    ).format(columns=COLUMNS, hit=hit, table=table.identifier, bounds=bounds)
    params.update(budget=budget, enough=limit + 1)
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(query, params).fetchall()
    hits = [row for row in found if row["pglog_hit"]]
    if len(hits) > limit:  # a full page, and more after it
        stop: Cursor | None = Cursor.of(hits[limit - 1])
    elif found and found[-1]["pglog_n"] == budget:  # the budget ran out first
        stop = Cursor.of(found[-1])
        if where.searches and searchable(conn, table):
            return _search_on(conn, table, where, [_shown(row) for row in hits], stop, limit=limit)
    else:
        stop = None
    return Page([_shown(row) for row in hits[:limit]], stop)


def searchable(conn: Connection, table: TableName) -> bool:
    """Whether the table has its search index (see ``_table.search``)."""
    index = sql.Identifier(table.schema, table.index_name(search.INDEX))
    found = conn.execute("SELECT to_regclass(%s)", (index.as_string(conn),)).fetchone()
    return bool(found and found[0] is not None)


def _search_on(
    conn: Connection,
    table: TableName,
    where: Filter,
    hits: list[dict[str, Any]],
    stop: Cursor,
    *,
    limit: int,
) -> Page:
    """The rest of a page whose walk ran out of budget, from the search index: the rows
    of the range before ``stop`` that hold the text, newest first, when the planner
    expects few of them (at most RARE in the range); index scans are off for this query,
    so it reads the trigram index's bitmap rather than walk the timestamp index, which
    the walk already did. A text the planner expects often is left to the walk (the
    next request goes on from ``stop``): its rows would cost more to gather from the
    index, all of them, than to meet on the way."""
    clause, params = where.clause()
    params.update(before_ts=stop.timestamp, before_id=stop.id, enough=limit - len(hits) + 1)
    rest = sql.SQL(
        '{clause} AND "timestamp" <= %(before_ts)s AND ("timestamp", id) < (%(before_ts)s,'
        " %(before_id)s)"
    ).format(clause=clause)
    estimate = sql.SQL("EXPLAIN (FORMAT JSON) SELECT id FROM {} WHERE {}").format(
        table.identifier, rest
    )
    conn.execute("SET LOCAL enable_indexscan = off")
    try:
        if expected(conn, estimate, params) > RARE:
            return Page(hits[:limit], stop)
        query = sql.SQL(
            'SELECT {} FROM {} WHERE {} ORDER BY "timestamp" DESC, id DESC LIMIT %(enough)s'
        ).format(COLUMNS, table.identifier, rest)
        with conn.cursor(row_factory=dict_row) as cur:
            found = cur.execute(query, params).fetchall()
    finally:
        conn.execute("SET LOCAL enable_indexscan = on")
    rows = hits + found
    more = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
    return Page(rows[:limit], more)


def expected(conn: Connection, explain: sql.Composed, params: dict[str, Any]) -> float:
    """The rows the planner expects a query (given as its EXPLAIN) to return."""
    found = conn.execute(explain, params).fetchone()
    plan: Any = found[0] if found else None
    try:
        return float(plan[0]["Plan"]["Plan Rows"])
    except (TypeError, KeyError, IndexError, ValueError):
        return float("inf")


@dataclass
class Arrivals:
    rows: list[dict[str, Any]]  # newest first
    #: The newest row looked at, matching or not: where the next poll can start.
    last_id: int | None
    #: False when more rows arrived than were looked at or could be returned.
    complete: bool


def arrivals(
    conn: Connection,
    table: TableName,
    where: Filter,
    *,
    after_id: int,
    limit: int,
    budget: int = SCAN_BUDGET,
) -> Arrivals:
    """Rows matching ``where`` that landed after ``after_id``, newest first: the live tail.

    By id, not by timestamp: a row that arrives late (a spool replayed after an outage)
    still shows up. Looks at ``budget`` rows at most, down the primary key index. On
    Citus: see ``spread``.
    """
    if on_citus(conn, table):
        from pglog._web import spread

        return spread.arrivals(conn, table, where, after_id=after_id, limit=limit)
    clause, params = where.clause()
    query = sql.SQL(
        "SELECT {columns}, pglog_hit, pglog_n FROM ("
        " SELECT visited.*, row_number() OVER (ORDER BY id DESC) AS pglog_n FROM ("
        "  SELECT *, ({clause}) AS pglog_hit FROM {table} WHERE id > %(after_id)s"
        "  ORDER BY id DESC LIMIT %(budget)s) AS visited"
        ") AS numbered WHERE pglog_hit OR pglog_n IN (1, %(budget)s)"
        " ORDER BY id DESC LIMIT %(enough)s"
    ).format(columns=COLUMNS, clause=clause, table=table.identifier)
    params.update(after_id=after_id, budget=budget, enough=limit + 2)
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(query, params).fetchall()
    hits = [row for row in found if row["pglog_hit"]]
    complete = len(hits) <= limit and not any(row["pglog_n"] == budget for row in found)
    last_id = int(found[0]["id"]) if found else None
    return Arrivals([_shown(row) for row in hits[:limit]], last_id, complete)


def newest_id(conn: Connection, table: TableName) -> int:
    """The highest id in the table (0 when empty): the live tail starts after it."""
    found = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(table.identifier)).fetchone()
    return int(found[0]) if found and found[0] is not None else 0


def on_citus(conn: Connection, table: TableName) -> bool:
    """Is the table spread over a Citus cluster (whose queries take other forms)?"""
    return layout.engine_of(conn, table) == "citus"


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the page gets it: without the walk's bookkeeping columns."""
    del row["pglog_hit"], row["pglog_n"]
    return row
