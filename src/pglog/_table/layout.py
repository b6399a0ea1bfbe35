"""Layout: what a Citus distributed table or a TimescaleDB hypertable needs that a plain
or partitioned table does not.

The engine a table lives on is read from the catalog, never from pglog's own mark: a
table distributed or made a hypertable by hand is treated the same as one pglog made.

- **Citus**: distributed by ``hostname``. Every record a writer sends carries its own
  host, so a batch lands on one shard and Citus prepares one two-phase transaction for
  it (by ``id``, a batch touches every shard: 50 times slower, see the README). Every
  unique key must hold the distribution column, so the key is ``(id, hostname)`` (with
  ``"timestamp"`` between them when partitioned). Ids come from one sequence on the
  coordinator, so writers must connect there. The writers' reports table stays a local
  table on the coordinator: a reference table would need every worker up to take a
  report, which is exactly when reports matter.
- **TimescaleDB**: a hypertable of 1-day chunks on ``timestamp`` (the key is
  ``(id, "timestamp")``), compressed after a day, segmented by ``level`` and ordered by
  ``"timestamp" DESC, id DESC``: 7.7 times smaller on realistic logs, and every query
  pglog runs stays within a few milliseconds of uncompressed (newest-first pages read
  one stream per level; ``id`` in the order gives each compressed batch an id range, so
  ``id > n`` stays cheap). Retention is TimescaleDB's policy dropping whole chunks:
  deleting rows from compressed chunks fails (and bloats them while it tries).
"""

from __future__ import annotations

from typing import Literal

from psycopg import sql

from pglog._table.connection import Connection
from pglog._table.schema import TableName

Engine = Literal["citus", "timescaledb"]
ENGINES: tuple[Engine, ...] = ("citus", "timescaledb")

#: The Citus distribution column (see the module's docstring).
DISTRIBUTION_COLUMN = "hostname"
#: TimescaleDB: the width of a chunk, and how old a chunk is before it is compressed.
CHUNK_INTERVAL = "1 day"
COMPRESS_AFTER = "1 day"
SEGMENT_BY = "level"
ORDER_BY = '"timestamp" DESC, id DESC'


class LayoutError(Exception):
    """The server can't give the table the layout asked for; the message says what to do."""


def primary_key(*, partitioned: bool, engine: Engine | None) -> sql.Composable:
    """The key columns: ``id``, with the partition column and the distribution column
    that PostgreSQL, TimescaleDB and Citus each require in every unique key."""
    columns = ["id"]
    if partitioned or engine == "timescaledb":
        columns.append("timestamp")
    if engine == "citus":
        columns.append(DISTRIBUTION_COLUMN)
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def engine_of(conn: Connection, table: TableName) -> Engine | None:
    """The engine the table lives on, from the catalog: None for a table of its own."""
    installed = {
        str(name)
        for (name,) in conn.execute(
            "SELECT extname FROM pg_extension WHERE extname IN ('citus', 'timescaledb')"
        ).fetchall()
    }
    regclass = table.regclass
    if "citus" in installed:
        found = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = %s::regclass"
            " AND partmethod = 'h')",
            (regclass,),
        ).fetchone()
        if found == (True,):
            return "citus"
    if "timescaledb" in installed:
        found = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = %s AND hypertable_name = %s)",
            (table.schema, table.name),
        ).fetchone()
        if found == (True,):
            return "timescaledb"
    return None


def require(conn: Connection, engine: Engine, *, partitioned: bool) -> None:
    """Raise LayoutError unless the server can make the table a ``engine`` table."""
    if engine == "timescaledb" and partitioned:
        raise LayoutError(
            "a TimescaleDB hypertable is partitioned by TimescaleDB itself: give either"
            " partition or timescaledb, not both"
        )
    found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (engine,)).fetchone()
    if found is None:
        setup = {
            "citus": "CREATE EXTENSION citus on every node, and add the workers (citus_add_node)",
            "timescaledb": "preload it (shared_preload_libraries) and CREATE EXTENSION timescaledb",
        }[engine]
        raise LayoutError(f"the server has no {engine} extension: {setup}")
    if engine == "citus":
        coordinator = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_node WHERE groupid = 0)"
            " OR NOT EXISTS (SELECT 1 FROM pg_dist_node)"
        ).fetchone()
        if coordinator != (True,):
            raise LayoutError(
                "this is a Citus worker: connect to the coordinator (ids, and the lookup of"
                " a lost COMMIT, are the coordinator's)"
            )


def convert(conn: Connection, table: TableName, engine: Engine, *, partitioned: bool) -> None:
    """Make the table (pglog's, with its indexes) a ``engine`` table, rows and all: its
    key takes the columns the engine needs, then Citus distributes it or TimescaleDB
    makes it a hypertable with its compression settings and policy. In the caller's
    transaction; on a big table this moves every row (see the README)."""
    require(conn, engine, partitioned=partitioned)
    _rekey(conn, table, primary_key(partitioned=partitioned, engine=engine))
    regclass = table.regclass
    if engine == "citus":
        # DDL and the copy of existing rows over one connection per worker: a
        # distributed table made in a transaction that also made it locally needs it.
        conn.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        conn.execute(
            "SELECT create_distributed_table(%s::regclass, %s)", (regclass, DISTRIBUTION_COLUMN)
        )
        return
    conn.execute(
        "SELECT create_hypertable(%s::regclass, by_range('timestamp', %s::interval),"
        " create_default_indexes => false, migrate_data => true)",
        (regclass, CHUNK_INTERVAL),
    )
    conn.execute(
        sql.SQL(
            "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {},"
            " timescaledb.compress_orderby = {})"
        ).format(table.identifier, sql.Literal(SEGMENT_BY), sql.Literal(ORDER_BY))
    )
    conn.execute(
        "SELECT add_compression_policy(%s::regclass, compress_after => %s::interval,"
        " if_not_exists => true)",
        (regclass, COMPRESS_AFTER),
    )


def _rekey(conn: Connection, table: TableName, key: sql.Composable) -> None:
    """Replace the table's primary key with one on ``key`` (a no-op if it is that)."""
    found = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'p'",
        (table.regclass,),
    ).fetchone()
    wanted = sql.SQL("PRIMARY KEY ({})").format(key).as_string(conn)
    if found is not None and str(found[1]) == wanted:
        return
    drop = (
        sql.SQL("DROP CONSTRAINT {}, ").format(sql.Identifier(str(found[0])))
        if found is not None
        else sql.SQL("")
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} {}ADD PRIMARY KEY ({})").format(table.identifier, drop, key)
    )


def keep_for(conn: Connection, table: TableName, days: int) -> bool:
    """Make TimescaleDB's retention policy drop chunks older than ``days`` (replacing one
    with another age); True if it was added or changed."""
    regclass = table.regclass
    found = conn.execute(
        "SELECT (config->>'drop_after')::interval = make_interval(days => %s)"
        " FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
        " AND hypertable_schema = %s AND hypertable_name = %s",
        (days, table.schema, table.name),
    ).fetchone()
    if found == (True,):
        return False
    if found is not None:
        conn.execute("SELECT remove_retention_policy(%s::regclass)", (regclass,))
    conn.execute(
        "SELECT add_retention_policy(%s::regclass, drop_after => make_interval(days => %s))",
        (regclass, days),
    )
    return True


def drop_chunks(conn: Connection, table: TableName, cutoff: object) -> list[str]:
    """Drop the hypertable's chunks wholly older than ``cutoff``: retention now."""
    found = conn.execute(
        "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz)::text",
        (table.regclass, cutoff),
    ).fetchall()
    return [str(name) for (name,) in found]


def footprint(conn: Connection, table: TableName, engine: Engine | None) -> tuple[int, int]:
    """Bytes on disk (indexes and TOAST included, on every node) and the row estimate, from
    the catalog: counting a big table would take minutes. A partitioned table, a
    hypertable and a distributed table hold nothing themselves: their partitions,
    chunks and shards are summed."""
    regclass = table.regclass
    query: sql.Composable
    if engine == "timescaledb":
        query = sql.SQL(
            "SELECT hypertable_size(%(t)s::regclass), approximate_row_count(%(t)s::regclass)"
        )
    elif engine == "citus":
        query = sql.SQL(
            "SELECT coalesce(sum(citus_total_relation_size(l.relid)), 0),"
            " coalesce(sum((SELECT sum(r.result::float8) FROM run_command_on_shards(l.relid,"
            " 'SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = ''%%s''::regclass')"
            " AS r WHERE r.success)), 0) FROM {} AS l"
        ).format(_LEAVES)
    else:
        query = sql.SQL(
            "SELECT coalesce(sum(pg_total_relation_size(l.relid)), 0),"
            " coalesce(sum(greatest(c.reltuples, 0)), 0)"
            " FROM {} AS l JOIN pg_class c ON c.oid = l.relid"
        ).format(_LEAVES)
    found = conn.execute(query, {"t": regclass}).fetchone()
    if found is None:
        return 0, 0
    return int(found[0] or 0), int(found[1] or 0)


#: The relations that hold a table's rows: the leaves of a partitioned table, else the
#: table itself (pg_partition_tree gives a plain table no rows at all).
_LEAVES = sql.SQL(
    "(SELECT relid FROM pg_partition_tree(%(t)s::regclass) WHERE isleaf"
    " UNION SELECT %(t)s::regclass WHERE NOT EXISTS"
    " (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %(t)s::regclass))"
)
