"""Spread: the web view's page, live poll and volume chart for a table spread over a Citus
cluster, in forms Citus runs on every shard at once.

The single-server forms bound their work by a row budget: a subquery that walks the
newest rows in order and stops after so many. Citus can't run that on the shards (a
LIMIT over an ordered walk of a distributed table is pulled to the coordinator: every
shard ships up to the whole budget, 28 MB for a 100,000-row table, and a page took 0.6
to 2 s), and the volume chart's LATERAL ... LIMIT it refuses outright (0A000). So here:

- a page asks for matching rows only (filter, order and LIMIT pushed down: each shard
  returns its newest few) over time windows that double going back (1 h, 2 h, 4 h...),
  at most ``WINDOWS`` of them, and says where it stopped: the work is bounded by time
  instead of rows;
- the live poll asks the shards for matching rows above the id and for the highest id,
  both pushed down;
- the volume chart counts each bar exactly with one GROUP BY on ``date_bin``: each shard
  counts its own rows of the range in parallel, and the coordinator adds them up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from pglog._table.connection import Connection
from pglog._table.filters import Filter
from pglog._table.schema import TableName
from pglog._web.queries import COLUMNS, ROW_IDS, Arrivals, Cursor, Page
from pglog._web.volume import EPOCH, Volume, laid_out

#: The first window of a page, and how many (each twice the last) it may look through.
FIRST_WINDOW = dt.timedelta(hours=1)
WINDOWS = 8


def page(
    conn: Connection,
    table: TableName,
    where: Filter,
    *,
    limit: int,
    before: Cursor | None,
) -> Page:
    """Up to ``limit`` rows matching ``where``, newest first, older than ``before``."""
    hit, params = where.untimed_clause()
    anchor = min(
        (m for m in (where.until, before.timestamp if before else None) if m is not None),
        default=dt.datetime.now(dt.timezone.utc),
    )
    found: list[dict[str, Any]] = []
    high: dt.datetime | None = None  # the first window is open above: clocks run ahead
    low = anchor - FIRST_WINDOW
    for window in range(WINDOWS):
        if where.since is not None and low <= where.since:
            low = where.since
        bounds, window_params = _window(where, before, low, high)
        query = sql.SQL(
            "SELECT {columns} FROM {table} WHERE {bounds} AND ({hit})"
            ' ORDER BY "timestamp" DESC, id DESC LIMIT %(enough)s'
        ).format(columns=COLUMNS, table=table.identifier, bounds=bounds, hit=hit)
        with conn.cursor(row_factory=dict_row) as cur:
            found += cur.execute(
                query, {**params, **window_params, "enough": limit + 1 - len(found)}
            ).fetchall()
        if len(found) > limit:
            return Page(found[:limit], Cursor.of(found[limit - 1]))
        if where.since is not None and low <= where.since:
            return Page(found, None)
        if window + 1 < WINDOWS:
            high, low = low, low - FIRST_WINDOW * 2 ** (window + 1)
    # Looked through every window: the rows before ``low`` come next.
    return Page(found, Cursor(low, ROW_IDS.start))


def _window(
    where: Filter, before: Cursor | None, low: dt.datetime, high: dt.datetime | None
) -> tuple[sql.Composable, dict[str, Any]]:
    """The time bounds of one window: [low, high), within the filter and before the cursor."""
    parts = [sql.SQL('"timestamp" >= %(low)s')]
    params: dict[str, Any] = {"low": low}
    if high is not None:
        parts.append(sql.SQL('"timestamp" < %(high)s'))
        params["high"] = high
    if where.until is not None:
        parts.append(sql.SQL('"timestamp" < %(until)s'))
        params["until"] = where.until
    if before is not None:
        parts.append(sql.SQL('"timestamp" <= %(before_ts)s'))
        parts.append(sql.SQL('("timestamp", id) < (%(before_ts)s, %(before_id)s)'))
        params.update(before_ts=before.timestamp, before_id=before.id)
    return sql.SQL(" AND ").join(parts), params


def arrivals(
    conn: Connection, table: TableName, where: Filter, *, after_id: int, limit: int
) -> Arrivals:
    """Rows matching ``where`` that landed after ``after_id``, newest first: the live tail."""
    clause, params = where.clause()
    params.update(after_id=after_id, enough=limit + 1)
    query = sql.SQL(
        "SELECT {columns} FROM {table} WHERE id > %(after_id)s AND ({clause})"
        " ORDER BY id DESC LIMIT %(enough)s"
    ).format(columns=COLUMNS, table=table.identifier, clause=clause)
    with conn.cursor(row_factory=dict_row) as cur:
        hits = cur.execute(query, params).fetchall()
    newest = conn.execute(
        sql.SQL("SELECT max(id) FROM {} WHERE id > %s").format(table.identifier), (after_id,)
    ).fetchone()
    last_id = int(newest[0]) if newest and newest[0] is not None else None
    return Arrivals(hits[:limit], last_id, len(hits) <= limit)


def volume(conn: Connection, table: TableName, where: Filter, *, bars: int = 60) -> Volume:
    """Rows matching ``where`` per level in about ``bars`` bars, each counted exactly."""
    if where.since is None or where.until is None:
        raise ValueError("the volume chart needs both ends of the time range")
    step, shown = laid_out(where.since, where.until, bars)
    clause, params = where.clause()
    params.update(step=step, origin=EPOCH)
    query = sql.SQL(
        'SELECT date_bin(%(step)s::interval, "timestamp", %(origin)s::timestamptz), level,'
        " count(*) FROM {} WHERE {} GROUP BY 1, 2"
    ).format(table.identifier, clause)
    by_start = {bar.start: bar for bar in shown}
    for start, level, rows in conn.execute(query, params).fetchall():
        bar = by_start.get(start)
        if bar is not None:
            bar.counts[str(level)] = bar.counts.get(str(level), 0) + int(rows)
    return Volume(step, shown, estimated=False)
