"""Search: ``--grep`` over everything a record says, and the index that makes it fast.

A search looks for the text, in any case, in the message, the exception (so a
``DeadlockDetected`` deep in a stored traceback is found) and ``extra_data`` (its JSON
text: values, and keys too). That is one expression, ``SEARCHED``, and a trigram index
on it (pg_trgm's ``gin_trgm_ops``) lets ``ILIKE '%text%'`` find the rows that hold the
text without reading the others. The index is made by ``pglog init`` and ``pglog
migrate`` (and a handler that creates its table) when the server has pg_trgm and the
role may create it (it is a trusted extension: the database's CREATE privilege is
enough); otherwise they say why and searching reads the rows of the time range, as it
did before. A query must spell the expression exactly as the index does to use it. The
index costs writers dearly (every row's text cut into trigrams: see the README's
"Search"), which is the price of finding a word in a day of a big table at once.
"""

from __future__ import annotations

import json

import psycopg
from psycopg import sql

from pglog._table.connection import Connection
from pglog._table.schema import SEARCH_INDEX, TableName

EXTENSION = "pg_trgm"
#: The text a search looks in; newlines keep the parts apart.
SEARCHED = sql.SQL("(message || E'\\n' || coalesce(exception, '') || E'\\n' || extra_data::text)")
INDEX = SEARCH_INDEX
#: kB of new entries the index gathers before they are merged into its tree, by the
#: writer whose insert fills the list or by autovacuum (PostgreSQL's default is 4 MB):
#: fewer, bigger merges.
PENDING_LIST_KB = 32 * 1024


def matches(name: str) -> sql.Composed:
    """The condition "the record holds the text of parameter ``name``" (a LIKE pattern)."""
    return sql.SQL("{} ILIKE %({})s").format(SEARCHED, sql.SQL(name))


def pattern(text: str) -> str:
    """``text`` as the LIKE pattern that finds it anywhere."""
    return "%" + like_escape(text) + "%"


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def in_json_text(value: str) -> bool:
    """Whether ``value``, stored as a JSON string in extra_data, appears as it is in
    ``extra_data::text`` (JSON escapes quotes, backslashes and control characters)."""
    return json.dumps(value, ensure_ascii=False)[1:-1] == value


def extension_schema(conn: Connection) -> str | None:
    """The schema pg_trgm is installed in, or None if it is not."""
    found = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = %s",
        (EXTENSION,),
    ).fetchone()
    return str(found[0]) if found else None


def ensure_extension(conn: Connection) -> tuple[str | None, str | None]:
    """pg_trgm, installed if it is not and this role may: (its schema, None), or (None,
    why not). Inside the caller's transaction, in a savepoint of its own."""
    schema = extension_schema(conn)
    if schema is not None:
        return schema, None
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(EXTENSION))
            )
    except psycopg.Error as exc:
        diag = exc.diag.message_primary if exc.diag else None
        return None, " ".join((diag or str(exc)).split())
    return extension_schema(conn), None


def index_statement(
    table: TableName, schema: str, name: str | None = None, *, concurrently: bool
) -> sql.Composed:
    """The trigram index on SEARCHED, named ``name`` (by default ``idx_<table>_search``),
    with pg_trgm's operator class from ``schema``."""
    return sql.SQL(
        "CREATE INDEX {} IF NOT EXISTS {} ON {} USING gin ({} {})"
        " WITH (gin_pending_list_limit = {})"
    ).format(
        sql.SQL("CONCURRENTLY") if concurrently else sql.SQL(""),
        sql.Identifier(name or table.index_name(INDEX)),
        table.identifier,
        SEARCHED,
        sql.Identifier(schema, "gin_trgm_ops"),
        sql.Literal(PENDING_LIST_KB),
    )


def unavailable_note(table: TableName, reason: str) -> str:
    """What migrate says when it can't make the index."""
    return (
        f"no search index on {table}: {EXTENSION} can't be used ({reason}); --grep reads"
        f" every row of the time range instead. A superuser can run CREATE EXTENSION"
        f" {EXTENSION}; then pglog migrate builds the index"
    )
