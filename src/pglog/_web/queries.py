"""Queries: what the web view shows, each with bounded work whatever the table's size.

The CLI's reader can afford a query that runs for a while; a page that polls every few
seconds on a table of tens of millions of rows can't. So every query here walks an
index and looks at a fixed number of rows at most, and says where it stopped: a page
of rows walks the timestamp index from the newest row down (keyset pagination, never
OFFSET); the live poll walks the id index down from the newest row; the volume chart
looks at the first rows of each of its time slices and scales up the slices that are
busier than that; table facts come from the catalog and the planner's statistics, or
from counting a table that is small. Nothing counts the whole table.

Filters are :class:`pglog._table.filters.Filter`, the language ``pglog query`` speaks.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from pglog._table import layout
from pglog._table.columns import SHOWN
from pglog._table.filters import LEVELS, Filter
from pglog._table.migrate import inspect_table
from pglog._table.schema import TableName

Connection = psycopg.Connection[Any]
Basis = Literal["counted", "statistics", "newest"]

#: Rows a page or a poll looks at, at most: a rare match over a long range costs a
#: bounded amount, and the caller goes on from the cursor it gets back.
SCAN_BUDGET = 20_000
#: Rows each slice of the volume chart looks at, at most.
SLICE_BUDGET = 250
#: A table the planner thinks is smaller than this is counted exactly for its facts.
COUNT_LIMIT = 100_000
#: How many loggers the facts name (the busiest).
TOP_LOGGERS = 20
#: Bar widths of the volume chart: bars start at round times, so they stay put as the
#: page refreshes.
STEPS = tuple(
    dt.timedelta(seconds=seconds)
    for seconds in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 10800, 21600)
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_TICK = dt.timedelta(microseconds=1)

#: Row ids are bigint: a number outside it can't be one, and comparing the id index with
#: it would need a cast that walks the whole index.
ROW_IDS = range(-(2**63), 2**63)

#: SHOWN, with extra_data as indented JSON text (NULL when empty): shown as it is, with
#: no float or big integer rounded on its way through JavaScript. (Not nullif: an empty
#: object pretty-prints as "{\n}".)
_COLUMNS = sql.SQL(", ").join(
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
    if _spread(conn, table):
        from pglog._web import spread

        return spread.page(conn, table, where, limit=limit, before=before)
    bounds, params = Filter(since=where.since, until=where.until).clause()
    hit, conditions = replace(where, since=None, until=None).clause()
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
    ).format(columns=_COLUMNS, hit=hit, table=table.identifier, bounds=bounds)
    params.update(budget=budget, enough=limit + 1)
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(query, params).fetchall()
    hits = [row for row in found if row["pglog_hit"]]
    if len(hits) > limit:  # a full page, and more after it
        stop: Cursor | None = Cursor.of(hits[limit - 1])
    elif found and found[-1]["pglog_n"] == budget:  # the budget ran out first
        stop = Cursor.of(found[-1])
    else:
        stop = None
    return Page([_shown(row) for row in hits[:limit]], stop)


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
    if _spread(conn, table):
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
    ).format(columns=_COLUMNS, clause=clause, table=table.identifier)
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
    if _spread(conn, table):  # Citus refuses the LATERAL ... LIMIT below (0A000)
        from pglog._web import spread

        return spread.volume(conn, table, where, bars=bars)
    since, until = where.since, where.until
    step = bar_width(until - since, bars)
    first = since - (since - _EPOCH) % step
    shown = [Bar(start, start + step) for start in _bar_starts(first, until, step)]
    width = step / slices
    parts = [
        _Slice(owner, max(bar.start + n * width, since), min(bar.start + (n + 1) * width, until))
        for owner, bar in enumerate(shown)
        for n in range(slices)
    ]
    parts = [part for part in parts if part.start < part.stop]  # the range's ragged ends
    hit, params = replace(where, since=None, until=None).clause()
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


@dataclass
class Facts:
    schema_version: int | None
    total_bytes: int
    estimated_rows: int
    newest: dt.datetime | None
    oldest: dt.datetime | None
    by_level: list[tuple[str, int]]
    by_logger: list[tuple[str, int]]  # the busiest
    #: "counted": exact counts of the whole table; "statistics": the planner's estimates
    #: from ANALYZE; "newest": counts of the newest COUNT_LIMIT rows (a big table that
    #: was never analysed, or whose statistics the role may not read).
    basis: Basis


def facts(conn: Connection, table: TableName, *, count_limit: int = COUNT_LIMIT) -> Facts:
    """Size, row estimate, newest and oldest row, schema version, rows per level and logger.

    Sizes and estimates come from the catalog, summed over the partitions of a
    partitioned table. Rows per level and logger are counted when the table is small,
    else read from the planner's statistics (the most common values and their
    frequencies): a count over a big table would take seconds.
    """
    name = table.identifier.as_string(conn)
    leaves = conn.execute(
        "SELECT n.nspname, c.relname, c.reltuples, pg_total_relation_size(c.oid)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid IN (SELECT relid FROM pg_partition_tree(%(t)s::regclass) WHERE isleaf)"
        " OR (c.oid = %(t)s::regclass AND c.relkind = 'r')",
        {"t": name},
    ).fetchall()
    estimated = sum(max(0, int(tuples)) for _, _, tuples, _ in leaves)
    unknown = any(float(tuples) < 0 for _, _, tuples, _ in leaves)  # never analysed
    total_bytes = sum(int(size) for *_, size in leaves)
    engine = layout.engine_of(conn, table)
    if engine is not None:  # the rows are in shards or chunks, not in these leaves
        total_bytes, estimated = layout.footprint(conn, table, engine)
    ends = conn.execute(
        sql.SQL('SELECT max("timestamp"), min("timestamp") FROM {}').format(table.identifier)
    ).fetchone()
    newest, oldest = ends if ends else (None, None)
    result = Facts(
        schema_version=inspect_table(conn, table).version,
        total_bytes=total_bytes,
        estimated_rows=estimated,
        newest=newest,
        oldest=oldest,
        by_level=[],
        by_logger=[],
        basis="counted",
    )
    if estimated <= count_limit or unknown:
        levels, loggers, total = _count_newest(conn, table, count_limit + 1)
        if total <= count_limit:
            result.estimated_rows = total
            return _with_counts(result, levels, loggers, "counted")
        if unknown:
            return _with_counts(result, levels, loggers, "newest")
    levels, loggers = _from_statistics(conn, [(str(s), str(t), float(n)) for s, t, n, _ in leaves])
    if levels:
        return _with_counts(result, levels, loggers, "statistics")
    # pg_stats shows only what the role may SELECT: a role granted the parent of a
    # partitioned table alone sees no statistics of its partitions
    levels, loggers, _ = _count_newest(conn, table, count_limit)
    return _with_counts(result, levels, loggers, "newest")


def _count_newest(
    conn: Connection, table: TableName, limit: int
) -> tuple[dict[str, int], dict[str, int], int]:
    """Rows per level and per logger among the newest ``limit`` rows, and their number."""
    query = sql.SQL(
        "SELECT level, logger_name, count(*) FROM (SELECT level, logger_name FROM {}"
        ' ORDER BY "timestamp" DESC LIMIT %s) AS newest GROUP BY 1, 2'
    ).format(table.identifier)
    levels: dict[str, int] = defaultdict(int)
    loggers: dict[str, int] = defaultdict(int)
    total = 0
    for level, logger, number in conn.execute(query, (limit,)).fetchall():
        levels[str(level)] += int(number)
        loggers[str(logger)] += int(number)
        total += int(number)
    return levels, loggers, total


def _from_statistics(
    conn: Connection, leaves: list[tuple[str, str, float]]
) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per level and per logger as the planner estimates them: each leaf's most
    common values times their frequency times its row estimate, summed."""
    rows = {(schema, name): tuples for schema, name, tuples in leaves}
    found: dict[str, dict[str, float]] = {
        "level": defaultdict(float),
        "logger_name": defaultdict(float),
    }
    for schema, name, column, values, frequencies in conn.execute(
        "SELECT schemaname, tablename, attname, most_common_vals::text::text[], most_common_freqs"
        " FROM pg_stats WHERE NOT inherited AND attname IN ('level', 'logger_name')"
        " AND (schemaname, tablename) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([schema for schema, _, _ in leaves], [name for _, name, _ in leaves]),
    ).fetchall():
        for value, frequency in zip(values or (), frequencies or (), strict=True):
            found[str(column)][str(value)] += float(frequency) * rows[(schema, name)]
    return (
        {key: round(value) for key, value in found["level"].items()},
        {key: round(value) for key, value in found["logger_name"].items()},
    )


def _with_counts(
    result: Facts, levels: dict[str, int], loggers: dict[str, int], basis: Basis
) -> Facts:
    severity = {level: number for number, level in enumerate(LEVELS)}
    result.by_level = sorted(levels.items(), key=lambda item: (severity.get(item[0], 99), item[0]))
    result.by_logger = sorted(loggers.items(), key=lambda item: (-item[1], item[0]))[:TOP_LOGGERS]
    result.basis = basis
    return result


def _spread(conn: Connection, table: TableName) -> bool:
    """Is the table spread over a Citus cluster (whose queries take other forms)?"""
    return layout.engine_of(conn, table) == "citus"


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the page gets it: without the walk's bookkeeping columns."""
    del row["pglog_hit"], row["pglog_n"]
    return row


def _bar_starts(first: dt.datetime, until: dt.datetime, step: dt.timedelta) -> list[dt.datetime]:
    starts = []
    while first < until:
        starts.append(first)
        first += step
    return starts
