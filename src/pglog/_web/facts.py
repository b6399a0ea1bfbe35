"""Facts: what the table is, how big, how fresh, and what it holds, for the web view's panel.

Sizes and estimates come from the catalog, summed over the partitions of a partitioned
table, the chunks of a hypertable or the shards of a distributed table. Rows per level
and logger are counted when the table is small, else read from the planner's statistics
(the most common values and their frequencies): a count over a big table would take
seconds.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from pglog._table import layout
from pglog._table.connection import Connection
from pglog._table.filters import LEVELS
from pglog._table.migrate import inspect_table
from pglog._table.reader import leaves
from pglog._table.schema import TableName

Basis = Literal["counted", "statistics", "newest"]

#: A table the planner thinks is smaller than this is counted exactly for its facts.
COUNT_LIMIT = 100_000
#: How many loggers the facts name (the busiest).
TOP_LOGGERS = 20


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
    found = leaves(conn, table)
    estimated = sum(max(0, leaf.tuples) for leaf in found)
    unknown = any(leaf.tuples < 0 for leaf in found)  # never analysed
    total_bytes = sum(leaf.bytes for leaf in found)
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
    levels, loggers = _from_statistics(
        conn, [(leaf.schema, leaf.name, float(leaf.tuples)) for leaf in found]
    )
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
