"""Migrations: bring a log table to this pglog's schema, or adopt one made by hand.

The schema version lives in the table's comment, on a line of its own
(``pglog:schema=3``), so it travels with dumps and restores and leaves any comment of
the user's alone. A table without that line was made by hand from the documented
columns (README "The table"), or by a pglog from before versions: either way it is
adopted if its columns fit.

Every step is idempotent and runs in one transaction under the table's advisory lock,
so two processes starting at once don't trip over each other. Steps only touch the
catalog (nullable columns added, dropped NOT NULLs, the comment): no rewrite, no long
lock. Schema 3 added columns (see ``columns``): rows stored before keep them NULL.
Indexes are the exception: on a table that already holds rows they are built
``CONCURRENTLY``, outside the transaction, by ``pglog migrate`` (see ``indexes``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pglog._table import indexes, layout, partitions, reports
from pglog._table.columns import BASE, WRITTEN, Column
from pglog._table.connection import Connection
from pglog._table.layout import Engine
from pglog._table.schema import TableName, create_table_statements

SCHEMA_VERSION = 3

_MARK = re.compile(
    rf"^pglog:schema=(\d+)(?: partition=({'|'.join(partitions.PERIODS)}))?$", re.MULTILINE
)


class SchemaError(Exception):
    """The table can't be written as it is; the message says why and what to do."""


@dataclass
class TableState:
    exists: bool
    version: int | None = None
    comment: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    not_null: set[str] = field(default_factory=set)
    #: Each index of INDEX_SUFFIXES (by what it indexes) -> whether a valid one exists, and
    #: its name.
    indexes: dict[str, bool] = field(default_factory=dict)
    index_names: dict[str, str] = field(default_factory=dict)
    rows: int = 0  # the planner's estimate
    partitioned: bool = False
    period: str | None = None  # day, week or month, for a partitioned table pglog made
    #: Citus or TimescaleDB, when the table is distributed or a hypertable (see ``layout``).
    engine: Engine | None = None
    #: The primary key's columns: never made nullable, whatever else a migration drops.
    key: set[str] = field(default_factory=set)

    @property
    def missing_indexes(self) -> list[str]:
        """The indexes of INDEX_SUFFIXES (by what they index) without a valid one on the table."""
        return [what for what, valid in self.indexes.items() if not valid]


def inspect_table(conn: Connection, table: TableName) -> TableState:
    """What the table is like now, from the catalog."""
    found = conn.execute(
        "SELECT c.oid, obj_description(c.oid, 'pg_class'), c.reltuples::bigint, c.relkind"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
        (table.schema, table.name),
    ).fetchone()
    if found is None:
        return TableState(exists=False)
    oid, comment, rows, kind = found
    state = TableState(exists=True, comment=str(comment) if comment else None)
    state.rows = max(0, int(str(rows)))
    state.partitioned = kind == "p"
    mark = _MARK.search(state.comment or "")
    state.version = int(mark.group(1)) if mark else None
    state.period = mark.group(2) if mark and state.partitioned else None
    state.engine = layout.engine_of(conn, table)
    state.key = {
        str(name)
        for (name,) in conn.execute(
            "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid"
            " AND a.attnum = ANY (x.indkey) WHERE x.indrelid = %s AND x.indisprimary",
            (oid,),
        ).fetchall()
    }
    for name, data_type, nullable in conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (table.schema, table.name),
    ).fetchall():
        state.columns[str(name)] = str(data_type)
        if nullable == "NO":
            state.not_null.add(str(name))
    state.indexes, state.index_names = indexes.found(conn, table, oid)
    return state


def check_writable(state: TableState, table: TableName) -> None:
    """Raise SchemaError unless pglog can COPY all its columns into the table as it is."""
    writable_columns(state, table)
    missing = [column.name for column in WRITTEN if column.name not in state.columns]
    if missing:
        raise SchemaError(
            f"{table} lacks the columns of pglog schema {SCHEMA_VERSION} ({', '.join(missing)}):"
            " `pglog migrate` adds them (no rewrite), or a handler with create_table=True"
        )


def writable_columns(state: TableState, table: TableName) -> tuple[Column, ...]:
    """The columns pglog can COPY into the table as it is, in a row's order: every column
    of the first schema must be there; a newer one may be missing (not migrated yet).
    Raise SchemaError when the table can't take pglog's rows."""
    if not state.exists:
        raise SchemaError(
            f"{table} does not exist: create it with `pglog init`, or let the handler"
            " create it (create_table=True)"
        )
    if state.version is not None and state.version > SCHEMA_VERSION:
        raise SchemaError(
            f"{table} has pglog schema {state.version}, newer than this pglog's"
            f" {SCHEMA_VERSION}: upgrade pglog"
        )
    missing = [column.name for column in BASE if column.name not in state.columns]
    wrong = [
        f"{column.name} is {state.columns[column.name]}"
        for column in WRITTEN
        if column.name in state.columns and state.columns[column.name] not in column.accepts
    ]
    if missing or wrong:
        problems = ([f"missing columns: {', '.join(missing)}"] if missing else []) + wrong
        raise SchemaError(
            f"{table} can't take pglog's rows ({'; '.join(problems)}):"
            " drop or rename it, or add those columns (see the README's table)"
        )
    return tuple(column for column in WRITTEN if column.name in state.columns)


def ensure_table(
    conn: Connection,
    table: TableName,
    partition: str | None = None,
    engine: Engine | None = None,
) -> bool:
    """Make sure the table exists and is at SCHEMA_VERSION, creating it (partitioned by
    ``partition``, on ``engine``, if given) or migrating it; True if it was created. An
    existing table keeps its layout. Leaves the connection outside any transaction."""
    with conn.transaction():
        state = inspect_table(conn, table)
    if state.exists and state.version == SCHEMA_VERSION:
        check_writable(state, table)
        return False
    steps = migrate(conn, table, build_indexes=False, partition=partition, engine=engine)
    return bool(steps) and steps[0].startswith("created")


def migrate(
    conn: Connection,
    table: TableName,
    *,
    build_indexes: bool,
    partition: str | None = None,
    engine: Engine | None = None,
    convert: bool = False,
    create: bool = True,
) -> list[str]:
    """Create the table, or bring it to SCHEMA_VERSION; return what was done.

    ``build_indexes``: build missing indexes ``CONCURRENTLY`` (the connection must be
    able to leave its transaction). Without it, indexes are only built on an empty
    table, inside the transaction. ``engine``: make a new table a Citus distributed
    table or a TimescaleDB hypertable; with ``convert``, an existing one too (this
    moves its rows: ``pglog init --citus`` asks for it, a handler never does).
    ``create``: False refuses a missing table (SchemaError) rather than create it: a
    migration names a table that is there.
    """
    done: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (table.lock_key,))
        state = inspect_table(conn, table)
        if state.exists:
            done += _upgrade(conn, table, state, build_indexes=build_indexes)
            if engine is not None and state.engine != engine and convert:
                _convert(conn, table, engine, partitioned=state.partitioned)
                done.append(f"{table} is now {_ON[engine]}")
        elif not create:
            raise SchemaError(
                f"{table} does not exist, so there is nothing to migrate: check --table and"
                " --schema (`pglog init` creates a table)"
            )
        else:
            done += _create(conn, table, partition, engine)
    if engine is not None and state.exists and state.engine != engine and not convert:
        done.append(f"{table} is not {_ON[engine]}, and stays so (pglog init converts it)")
    if partition is not None and state.exists and not state.partitioned:
        done.append(
            f"{table} is not partitioned, and stays so (partitioning an existing table"
            " rewrites it: see the README)"
        )
    period = state.period if state.exists else partition
    if period is not None:
        done += partitions.ensure_ahead(conn, table, period, _now())
    if build_indexes and state.exists:
        now = inspect_table(conn, table)
        conn.rollback()
        # Neither a partitioned table nor a hypertable can build an index CONCURRENTLY
        concurrently = not state.partitioned and state.engine != "timescaledb"
        done += indexes.build(
            conn, table, now.missing_indexes, now.index_names, concurrently=concurrently
        )
    done += _create_reports(conn, table)
    return done


def _create_reports(conn: Connection, table: TableName) -> list[str]:
    """The writers' reports table beside the log table, if this role may make it: the log
    table works without it (writers then don't report)."""
    try:
        made = reports.create(conn, table)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        return [f"no {reports.table_of(table)} ({reason}): writers will not report"]
    return [f"created {reports.table_of(table)} (the writers' reports)"] if made else []


#: What each engine makes of a table, for people.
_ON = {
    "citus": "a Citus distributed table (by hostname)",
    "timescaledb": "a TimescaleDB hypertable (compressed after a day)",
}


def _create(
    conn: Connection, table: TableName, partition: str | None, engine: Engine | None
) -> list[str]:
    if engine is not None:  # before anything is made: say so plainly if it can't be
        _convert(conn, table, engine, partitioned=partition is not None, check_only=True)
    exists = _schema_exists(conn, table.schema)
    statements = create_table_statements(
        table, schema_exists=exists, partitioned=partition is not None
    )
    for statement in statements:
        conn.execute(statement)
    searching = indexes.create_all(conn, table)
    if partition is not None:
        partitions.create_default(conn, table)
    _mark(conn, table, None, partition)
    if engine is not None:
        _convert(conn, table, engine, partitioned=partition is not None)
    shape = f", partitioned by {partition}" if partition else ""
    shape += f", {_ON[engine]}" if engine else ""
    return [f"created {table} (pglog schema {SCHEMA_VERSION}{shape})", *searching]


def _convert(
    conn: Connection,
    table: TableName,
    engine: Engine,
    *,
    partitioned: bool,
    check_only: bool = False,
) -> None:
    """``layout.convert`` (or only its check), its refusals a SchemaError like the rest."""
    try:
        if check_only:
            layout.require(conn, engine, partitioned=partitioned)
        else:
            layout.convert(conn, table, engine, partitioned=partitioned)
    except layout.LayoutError as exc:
        raise SchemaError(str(exc)) from None


def _upgrade(
    conn: Connection, table: TableName, state: TableState, *, build_indexes: bool
) -> list[str]:
    """The steps from the table's version to SCHEMA_VERSION: catalog changes only."""
    writable_columns(state, table)
    done = []
    added = [column for column in WRITTEN if column.name not in state.columns]
    for column in added:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}").format(
                table.identifier, sql.SQL(column.ddl)
            )
        )
    if added:
        done.append(f"added {', '.join(column.name for column in added)} (NULL in older rows)")
    for name in (column.name for column in WRITTEN if column.nullable):
        if name in state.not_null and name not in state.key:
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                    table.identifier, sql.Identifier(name)
                )
            )
            done.append(f"{name} may now be NULL")
    if state.version != SCHEMA_VERSION:
        _mark(conn, table, state.comment, state.period)
        before = "no version (made by hand, or by an early pglog)"
        if state.version is not None:
            before = f"schema {state.version}"
        done.append(f"{table}: {before} -> pglog schema {SCHEMA_VERSION}")
    if state.missing_indexes and not build_indexes and _empty(conn, table):
        done += indexes.create(conn, table, state.missing_indexes)
    return done


def _mark(conn: Connection, table: TableName, comment: str | None, period: str | None) -> None:
    """Record SCHEMA_VERSION (and the partition period) in the table's comment, keeping the
    rest of the comment."""
    kept = _MARK.sub("", comment or "").strip()
    mark = f"pglog:schema={SCHEMA_VERSION}" + (f" partition={period}" if period else "")
    marked = (kept + "\n" if kept else "") + mark
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table.identifier, sql.Literal(marked)))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _empty(conn: Connection, table: TableName) -> bool:
    row = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(table.identifier))
    found = row.fetchone()
    return bool(found and found[0])


def _schema_exists(conn: Connection, schema: str) -> bool:
    # CREATE SCHEMA IF NOT EXISTS still needs the CREATE privilege on the database.
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %s)", (schema,)
    ).fetchone()
    return bool(row and row[0])
