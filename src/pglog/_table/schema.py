"""Schema: the log table, its indexes and its name, always quoted.

Every name pglog did not choose itself (a schema, a table, what is derived from them) is
composed into SQL as a ``Name``: quoted like ``sql.Identifier``, and safe in a statement
run with parameters too, where psycopg reads any ``%`` in the text as a placeholder (a
table ``100%_logs`` would fail every query that has one, and a partition of it every
upkeep). A name with a ``%`` is written as a Unicode-escaped identifier instead,
``U&"100\\0025_logs"``, which means the same to PostgreSQL and holds no ``%`` at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql
from psycopg.abc import AdaptContext

from pglog._table.columns import COLUMNS, WRITTEN_NAMES
from pglog._table.connection import Connection
from pglog._text import shown

#: PostgreSQL truncates longer identifiers, which would make two tables' index names collide.
MAX_IDENTIFIER_BYTES = 63

#: The level names that were errors before schema 3 stored the level's number.
LEGACY_ERROR_LEVELS = ("ERROR", "CRITICAL", "FATAL")
#: The errors of rows stored before schema 3 (no level number): see ``LEGACY_ERRORS``.
LEGACY_ERRORS = sql.SQL(
    "levelno IS NULL AND (exception IS NOT NULL OR level IN ({}))".format(
        ", ".join(f"'{level}'" for level in LEGACY_ERROR_LEVELS)
    )
)

#: The indexes: name suffix -> indexed expression. The first five serve the reader's
#: filters (time, level, logger, host, and the three together); the others came with
#: schema 3, each partial, so only errors pay for them: ``pglog errors``
#: finds a range's errors by ``errors``, a kind's rows and its first sighting by
#: ``fingerprint``, and the errors stored before schema 3 by ``legacy_errors`` (which no
#: newer row enters). The search index is ``search``'s: it needs an extension.
INDEXES = {
    "timestamp": sql.SQL('("timestamp" DESC)'),
    "level": sql.SQL("(level)"),
    "logger_name": sql.SQL("(logger_name)"),
    "hostname": sql.SQL("(hostname)"),
    "timestamp_level_logger": sql.SQL('("timestamp", level, logger_name)'),
    "errors": sql.SQL('("timestamp") INCLUDE (fingerprint, id) WHERE (fingerprint IS NOT NULL)'),
    "fingerprint": sql.SQL('(fingerprint, "timestamp") WHERE (fingerprint IS NOT NULL)'),
    "legacy_errors": sql.SQL('("timestamp") WHERE {}').format(LEGACY_ERRORS),
}
#: The suffix of the search index (see ``search``), and of every index pglog makes.
SEARCH_INDEX = "search"
INDEX_SUFFIXES = (*INDEXES, SEARCH_INDEX)


class Name(sql.Identifier):
    """A quoted identifier (or a dotted series) that can be composed into any statement,
    run with parameters or not: a part with a ``%`` is written ``U&"..."``, the ``%`` as
    ``\\0025``. ``text`` is the name as people and ``::regclass`` read it."""

    def as_bytes(self, context: AdaptContext | None = None) -> bytes:
        parts = [sql.Identifier(part).as_bytes(context) for part in self._obj]
        return b".".join(_without_percent(part) for part in parts)

    @property
    def text(self) -> str:
        return sql.Identifier(*self._obj).as_string()


def _without_percent(quoted: bytes) -> bytes:
    if b"%" not in quoted:
        return quoted
    return b"U&" + quoted.replace(b"\\", b"\\\\").replace(b"%", b"\\0025")


@dataclass(frozen=True)
class TableName:
    """A schema-qualified table name, always used quoted."""

    schema: str
    name: str

    def __post_init__(self) -> None:
        for option, value in (("schema", self.schema), ("table", self.name)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{option} must be a non-empty string, got {shown(value)}")
            if "\x00" in value:
                raise ValueError(f"{option} must not contain NUL characters")
            if len(value.encode()) > MAX_IDENTIFIER_BYTES:
                raise ValueError(
                    f"{option} {shown(value, typed=False)} is longer than PostgreSQL's"
                    f" {MAX_IDENTIFIER_BYTES} bytes"
                )

    @property
    def identifier(self) -> Name:
        return Name(self.schema, self.name)

    @property
    def regclass(self) -> str:
        """The quoted name as ``::regclass`` and ``to_regclass()`` read it (a parameter)."""
        return self.identifier.text

    def index_name(self, what: str) -> str:
        """``idx_<table>_<what>``."""
        return self.derived_name(what, prefix="idx_")

    def derived_name(self, suffix: str, prefix: str = "") -> str:
        """``<prefix><table>_<suffix>``, shortened with a hash when it would exceed 63 bytes:
        PostgreSQL would cut it, and two long table names' objects would collide."""
        name = f"{prefix}{self.name}_{suffix}"
        if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
            return name
        digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
        tail = f"_{digest}_{suffix}"
        head = f"{prefix}{self.name}".encode()[: MAX_IDENTIFIER_BYTES - len(tail.encode())]
        return head.decode(errors="ignore") + tail

    @property
    def lock_key(self) -> int:
        """The advisory lock that serialises DDL on this table across processes."""
        digest = hashlib.blake2b(f"pglog:{self.schema}.{self.name}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big", signed=True)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def copy_statement(table: TableName, columns: Sequence[str] = WRITTEN_NAMES) -> sql.Composed:
    """COPY into ``columns`` (by default all that pglog writes, in a row's order)."""
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        table.identifier, sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def create_table_statements(
    table: TableName, *, schema_exists: bool, partitioned: bool = False
) -> list[sql.Composed]:
    """DDL for the table (and its schema, unless it exists); its indexes come from
    ``index_statement``. Partitioned, the key must include the partition column."""
    statements = (
        []
        if schema_exists
        else [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Name(table.schema))]
    )
    columns = sql.SQL(",\n    ").join(sql.SQL(column.ddl) for column in COLUMNS)
    statements.append(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (\n    {},\n    PRIMARY KEY ({})\n){}").format(
            table.identifier,
            columns,
            sql.SQL('id, "timestamp"' if partitioned else "id"),
            sql.SQL(' PARTITION BY RANGE ("timestamp")' if partitioned else ""),
        )
    )
    return statements


def index_statement(
    table: TableName, name: str, what: str, *, concurrently: bool = False
) -> sql.Composed:
    """CREATE INDEX for index ``what`` (of INDEXES) of ``table``, named ``name``."""
    return sql.SQL("CREATE INDEX {} IF NOT EXISTS {} ON {} {}").format(
        sql.SQL("CONCURRENTLY") if concurrently else sql.SQL(""),
        Name(name),
        table.identifier,
        INDEXES[what],
    )


def free_name(conn: Connection, schema: str, wanted: str) -> str:
    """``wanted``, or ``wanted_2``, ``wanted_3``... whichever no relation of ``schema``
    holds: a table renamed away keeps its indexes' and partitions' names, and the table
    made again in its place must not find them taken."""
    name, n = wanted, 1
    while conn.execute(
        "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace"
        " WHERE s.nspname = %s AND c.relname = %s)",
        (schema, name),
    ).fetchone() == (True,):
        n += 1
        name = _suffixed(wanted, f"_{n}")
    return name


def _suffixed(name: str, suffix: str) -> str:
    head = name.encode()[: MAX_IDENTIFIER_BYTES - len(suffix.encode())]
    return head.decode(errors="ignore") + suffix
