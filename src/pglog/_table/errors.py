"""Errors: a time range's errors, one group per kind, for ``pglog errors`` and the web view.

Each kind (see ``kinds``) gets its count, when it was first and last seen in the range,
the id of a stored row of it (its newest), how often it happened in each of a few
stretches of the range (the trend), and whether it is new: never seen before the
range began. Only error rows are read, through their partial indexes (the rows of
schema 3 and those stored before apart, each half through its own), so the work grows
with the range's errors, not with the table; "new" is one look-up per kind down the
fingerprint index.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from pglog._table import layout
from pglog._table.connection import Connection
from pglog._table.filters import Filter
from pglog._table.kinds import HALVES
from pglog._table.schema import TableName

#: Kinds shown, at most (the most frequent), and stretches of the range in a trend.
LIMIT = 50
STRETCHES = 24


@dataclass
class Group:
    kind: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    sample_id: int
    #: Never seen before the range; None for a kind of rows stored before schema 3 (their
    #: earlier history is not indexed by kind).
    new: bool | None
    trend: list[int]
    level: str = ""
    logger: str = ""
    message: str = ""
    #: The last line of the sample's traceback (``ValueError: ...``), if it has one.
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(timespec="microseconds"),
            "last_seen": self.last_seen.isoformat(timespec="microseconds"),
            "sample_id": self.sample_id,
            "new": self.new,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "error": self.error,
            "trend": self.trend,
        }


@dataclass
class Errors:
    since: dt.datetime
    until: dt.datetime
    #: The width of each stretch of a trend.
    step: dt.timedelta
    groups: list[Group] = field(default_factory=list)
    #: Kinds beyond the limit, and every error record in the range.
    more: int = 0
    records: int = 0


def errors(
    conn: Connection,
    table: TableName,
    where: Filter,
    *,
    limit: int = LIMIT,
    stretches: int = STRETCHES,
) -> Errors:
    """The errors matching ``where`` (which must have both ends of its time range), by kind,
    the most frequent first."""
    if where.since is None or where.until is None:
        raise ValueError("the errors of a range need both ends of it")
    since, until = where.since, where.until
    clause, params = where.clause()
    params.update(
        start=since.timestamp(), stop=until.timestamp(), stretches=stretches, before=since
    )
    stretch = sql.SQL(
        'width_bucket(extract(epoch FROM "timestamp"), %(start)s, %(stop)s, %(stretches)s)'
    )
    halves = [
        sql.SQL(
            "SELECT {kind} AS kind, {stretch} AS stretch, count(*) AS n,"
            ' min("timestamp") AS first, max("timestamp") AS last, max(id) AS newest,'
            " {indexed} AS indexed FROM {table} WHERE {half} AND {clause} GROUP BY 1, 2"
        ).format(
            kind=kind,
            stretch=stretch,
            indexed=sql.Literal(indexed),
            table=table.identifier,
            half=half,
            clause=clause,
        )
        for kind, half, indexed in HALVES
    ]
    query = sql.SQL(
        "SELECT kind, stretch, sum(n)::bigint, min(first), max(last), max(newest),"
        " bool_and(indexed) FROM ({} UNION ALL {}) AS halves GROUP BY 1, 2"
    ).format(*halves)
    found: dict[str, Group] = {}
    for kind, stretch, number, first, last, newest, indexed in conn.execute(query, params):
        group = found.get(kind)
        if group is None:
            group = found[kind] = Group(
                kind, 0, first, last, newest, True if indexed else None, [0] * stretches
            )
        group.count += number
        group.first_seen, group.last_seen = min(group.first_seen, first), max(group.last_seen, last)
        group.sample_id = max(group.sample_id, newest)
        if indexed is False:
            group.new = None
        group.trend[min(max(stretch, 1), stretches) - 1] += number
    ordered = sorted(found.values(), key=lambda group: (-group.count, -group.last_seen.timestamp()))
    shown = ordered[:limit]
    _mark_old(conn, table, shown, since)
    _describe(conn, table, shown, Filter(since=since, until=until))
    return Errors(
        since,
        until,
        (until - since) / stretches,
        shown,
        more=len(ordered) - len(shown),
        records=sum(group.count for group in ordered),
    )


def _mark_old(conn: Connection, table: TableName, groups: list[Group], since: dt.datetime) -> None:
    """Kinds seen before ``since`` are not new: one probe of the fingerprint index each (on
    Citus one query each, its LIMIT pushed down to every shard)."""
    kinds = [group.kind for group in groups if group.new]
    if not kinds:
        return
    if layout.engine_of(conn, table) == "citus":  # it refuses the correlated form (0A000)
        probe = sql.SQL(
            'SELECT 1 FROM {} WHERE fingerprint = %(kind)s AND "timestamp" < %(since)s LIMIT 1'
        ).format(table.identifier)
        seen = {
            kind
            for kind in kinds
            if conn.execute(probe, {"kind": kind, "since": since}).fetchone() is not None
        }
    else:
        query = sql.SQL(
            "SELECT k FROM unnest(%(kinds)s::text[]) AS k WHERE EXISTS (SELECT FROM {}"
            ' WHERE fingerprint = k AND "timestamp" < %(since)s)'
        ).format(table.identifier)
        seen = {kind for (kind,) in conn.execute(query, {"kinds": kinds, "since": since})}
    for group in groups:
        if group.kind in seen:
            group.new = False


def _describe(conn: Connection, table: TableName, groups: list[Group], span: Filter) -> None:
    """Each group's level, logger, message and error line, from its sample row."""
    if not groups:
        return
    bounds, params = span.clause()
    params["ids"] = [group.sample_id for group in groups]
    query = sql.SQL(
        "SELECT id, level, logger_name, message, exception FROM {} WHERE id = ANY(%(ids)s) AND {}"
    ).format(table.identifier, bounds)
    samples = {row[0]: row[1:] for row in conn.execute(query, params)}
    for group in groups:
        level, logger, message, exception = samples.get(group.sample_id, ("", "", "", None))
        group.level, group.logger, group.message = level, logger, message
        group.error = last_line(exception)


def last_line(exception: str | None) -> str | None:
    """The last line of a traceback that says something: the exception raised."""
    if not exception:
        return None
    lines = [line for line in exception.splitlines() if line.strip()]
    return lines[-1].strip() if lines else None
