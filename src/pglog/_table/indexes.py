"""Indexes: which of pglog's indexes a table has, and making the ones it lacks.

An index is known by what it indexes, not by its name: a table made again after its
predecessor was renamed away may have had to take other names. The search index is known
by its operator class, and an index whose definition the server words its own way (a
partial index's predicate) by its name.

A new table, or an empty one, gets its indexes inside the migration's transaction. A
table that holds rows gets them from ``pglog migrate``, outside any transaction and
``CONCURRENTLY``, so writers are not blocked (a partitioned table or a hypertable can't
build that way, and builds them plainly). The search index also needs pg_trgm (see
``search``): without it a line says why, and the table works, searched more slowly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from psycopg import sql

from pglog._table import search
from pglog._table.connection import Connection
from pglog._table.schema import INDEX_SUFFIXES, INDEXES, Name, TableName, free_name, index_statement

#: What an index indexes, in pg_get_indexdef's words: "... USING btree (level)".
_INDEXED = re.compile(r" USING \w+ (\(.*\))$")


def found(
    conn: Connection, table: TableName, oid: object
) -> tuple[dict[str, bool], dict[str, str]]:
    """For each index of INDEX_SUFFIXES, whether a valid one exists; and the name of each
    one found, valid or not (a failed concurrent build leaves an invalid one)."""
    by_definition = {expression.as_string(conn): what for what, expression in INDEXES.items()}
    by_name = {table.index_name(what): what for what in INDEX_SUFFIXES}
    valid = dict.fromkeys(INDEX_SUFFIXES, False)
    names: dict[str, str] = {}
    for name, is_valid, definition in conn.execute(
        "SELECT i.relname, x.indisvalid, pg_get_indexdef(x.indexrelid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s",
        (oid,),
    ).fetchall():
        columns = _INDEXED.search(str(definition))
        what = by_definition.get(columns.group(1)) if columns else None
        if what is None:
            what = search.INDEX if "gin_trgm_ops" in str(definition) else by_name.get(str(name))
        if what is not None and not valid[what]:
            valid[what] = bool(is_valid)
            names[what] = str(name)
    return valid, names


def create_all(conn: Connection, table: TableName) -> list[str]:
    """Every index, on a table just created, in its transaction. The table's own line says
    they are there; only the search index, which may not be had, says anything."""
    for what in INDEXES:
        conn.execute(index_statement(table, _free(conn, table, what), what))
    return _search_index(conn, table, _free(conn, table, search.INDEX))


def create(conn: Connection, table: TableName, missing: Iterable[str]) -> list[str]:
    """The indexes ``missing`` (of INDEX_SUFFIXES), on an empty table, in the migration's
    transaction; what was done."""
    return [
        line
        for what in missing
        for line in _make(conn, table, what, _free(conn, table, what), said="created")
    ]


def build(
    conn: Connection,
    table: TableName,
    missing: Iterable[str],
    invalid: Mapping[str, str],
    *,
    concurrently: bool,
) -> list[str]:
    """The indexes ``missing``, built outside any transaction, ``CONCURRENTLY`` if asked;
    an ``invalid`` one (a failed concurrent build: what -> its name) is dropped first and
    built again under its name. What was done."""
    done = []
    autocommit, conn.autocommit = conn.autocommit, True
    try:
        for what in missing:
            name = invalid.get(what)
            if name is not None:
                drop = (
                    "DROP INDEX CONCURRENTLY IF EXISTS {}"
                    if concurrently
                    else "DROP INDEX IF EXISTS {}"
                )
                conn.execute(sql.SQL(drop).format(Name(table.schema, name)))
            name = name or _free(conn, table, what)
            done += _make(conn, table, what, name, said="built", concurrently=concurrently)
    finally:
        conn.autocommit = autocommit
    return done


def _make(
    conn: Connection,
    table: TableName,
    what: str,
    name: str,
    *,
    said: str,
    concurrently: bool = False,
) -> list[str]:
    """Index ``what`` named ``name``, and its line (the search index's says whether it
    could be made)."""
    if what == search.INDEX:
        return _search_index(conn, table, name, concurrently=concurrently)
    conn.execute(index_statement(table, name, what, concurrently=concurrently))
    return [f"index {name} {said}"]


def _search_index(
    conn: Connection, table: TableName, name: str, *, concurrently: bool = False
) -> list[str]:
    """The search index, if pg_trgm can be had; otherwise a line that says why not."""
    schema, reason = search.ensure_extension(conn)
    if schema is None:
        return [search.unavailable_note(table, reason or "not installed")]
    conn.execute(search.index_statement(table, schema, name, concurrently=concurrently))
    return [f"index {name} built (search)"]


def _free(conn: Connection, table: TableName, what: str) -> str:
    return free_name(conn, table.schema, table.index_name(what))
