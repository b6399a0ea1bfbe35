"""Volume: the web view's chart, records per level in bars of time, with bounded work.

Each bar is counted in slices, and each slice looks at its first rows only, down the
timestamp index, scaling up the slices busier than that; a search the planner expects
few rows of is counted exactly from the search index instead (see ``queries``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from psycopg import sql

from pglog._table.connection import Connection
from pglog._table.filters import Filter
from pglog._table.schema import TableName
from pglog._web.queries import RARE, expected, on_citus, searchable

#: Rows each slice of the volume chart looks at, at most.
SLICE_BUDGET = 250
#: Bar widths of the volume chart: bars start at round times, so they stay put as the
#: page refreshes.
STEPS = tuple(
    dt.timedelta(seconds=seconds)
    for seconds in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 10800, 21600)
)
#: Where the bars' round times are counted from (``date_bin``'s origin, on Citus).
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_TICK = dt.timedelta(microseconds=1)


@dataclass
class Bar:
    start: dt.datetime
    stop: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)  # level -> rows


@dataclass
class Volume:
    step: dt.timedelta
    bars: list[Bar]
    #: Some slices held more rows than their budget: their counts are scaled up from
    #: the part looked at.
    estimated: bool


def volume(
    conn: Connection,
    table: TableName,
    where: Filter,
    *,
    bars: int = 60,
    slices: int = 4,
    budget: int = SLICE_BUDGET,
) -> Volume:
    """Rows matching ``where`` per level, in about ``bars`` bars of a round width.

    ``where`` must have both ends of its time range. Each bar is counted in ``slices``
    slices, and each slice looks at its first ``budget`` rows at most, down the
    timestamp index: the work is bounded whatever the range or the table's size. A slice
    that holds more is estimated from the stretch of time those rows cover, scaled to
    the slice's width; counts are exact wherever the slices are quieter than that.
    """
    if where.since is None or where.until is None:
        raise ValueError("the volume chart needs both ends of the time range")
    if on_citus(conn, table):  # Citus refuses the LATERAL ... LIMIT below (0A000)
        from pglog._web import spread

        return spread.volume(conn, table, where, bars=bars)
    since, until = where.since, where.until
    step, shown = laid_out(since, until, bars)
    width = step / slices
    parts = [
        _Slice(owner, max(bar.start + n * width, since), min(bar.start + (n + 1) * width, until))
        for owner, bar in enumerate(shown)
        for n in range(slices)
    ]
    parts = [part for part in parts if part.start < part.stop]  # the range's ragged ends
    if where.searches and searchable(conn, table):
        counted = _counted_rare(conn, table, where, shown, step)
        if counted is not None:
            return Volume(step, counted, estimated=False)
    hit, params = where.untimed_clause()
    query = sql.SQL(
        "SELECT s.pglog_i, p.level, count(*) FILTER (WHERE p.pglog_hit), count(*),"
        ' max(p."timestamp")'
        " FROM unnest(%(starts)s::timestamptz[], %(stops)s::timestamptz[])"
        " WITH ORDINALITY AS s(pglog_start, pglog_stop, pglog_i)"
        ' CROSS JOIN LATERAL (SELECT "timestamp", level, ({hit}) AS pglog_hit FROM {table}'
        '  WHERE "timestamp" >= s.pglog_start AND "timestamp" < s.pglog_stop'
        '  ORDER BY "timestamp" LIMIT %(budget)s) AS p'
        " GROUP BY 1, 2"
    ).format(hit=hit, table=table.identifier)
    params.update(
        starts=[part.start for part in parts], stops=[part.stop for part in parts], budget=budget
    )
    for index, level, matched, visited, reached in conn.execute(query, params).fetchall():
        part = parts[int(index) - 1]
        part.visited += int(visited)
        part.reached = reached if part.reached is None else max(part.reached, reached)
        if matched:
            part.matched[str(level)] = int(matched)
    estimated = False
    for part in parts:
        scale = 1.0
        if part.visited >= budget and part.reached is not None:  # busy: counted to `reached`
            scale = (part.stop - part.start) / max(part.reached - part.start, _TICK)
            estimated = True
        counts = shown[part.owner].counts
        for level, rows in part.matched.items():
            counts[level] = counts.get(level, 0) + round(rows * scale)
    return Volume(step, shown, estimated)


def _counted_rare(
    conn: Connection, table: TableName, where: Filter, shown: list[Bar], step: dt.timedelta
) -> list[Bar] | None:
    """A search's bars counted exactly from the search index, when the planner expects
    RARE rows in the range at most (sampling would look at many rows to find a few);
    None otherwise."""
    clause, params = where.clause()
    if (
        expected(
            conn,
            sql.SQL("EXPLAIN (FORMAT JSON) SELECT id FROM {} WHERE {}").format(
                table.identifier, clause
            ),
            params,
        )
        > RARE
    ):
        return None
    params.update(first=shown[0].start, step=step)
    query = sql.SQL(
        'SELECT floor(extract(epoch FROM "timestamp" - %(first)s) / extract(epoch FROM'
        " %(step)s::interval))::int, level, count(*) FROM {} WHERE {} GROUP BY 1, 2"
    ).format(table.identifier, clause)
    conn.execute("SET LOCAL enable_indexscan = off")
    try:
        for index, level, number in conn.execute(query, params).fetchall():
            if 0 <= index < len(shown):
                shown[index].counts[str(level)] = int(number)
    finally:
        conn.execute("SET LOCAL enable_indexscan = on")
    return shown


@dataclass
class _Slice:
    """A stretch of one bar, counted on its own, and what its count found."""

    owner: int  # the bar's index
    start: dt.datetime
    stop: dt.datetime
    visited: int = 0
    reached: dt.datetime | None = None  # the last timestamp looked at
    matched: dict[str, int] = field(default_factory=dict)  # level -> rows


def bar_width(span: dt.timedelta, bars: int) -> dt.timedelta:
    """The roundest width that cuts ``span`` into ``bars`` bars or fewer."""
    wanted = span / bars
    for step in STEPS:
        if step >= wanted:
            return step
    return dt.timedelta(days=math.ceil(wanted / dt.timedelta(days=1)))


def laid_out(since: dt.datetime, until: dt.datetime, bars: int) -> tuple[dt.timedelta, list[Bar]]:
    """The width and the bars, about ``bars`` of them, that cover ``since`` to ``until``,
    each starting at a round time."""
    step = bar_width(until - since, bars)
    start = since - (since - EPOCH) % step
    shown = []
    while start < until:
        shown.append(Bar(start, start + step))
        start += step
    return step, shown
