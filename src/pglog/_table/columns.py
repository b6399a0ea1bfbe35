"""Columns: the log table's columns, written down once.

Everything that depends on the columns is derived from ``COLUMNS``: the DDL
(``schema``), the COPY column list and the order of a row's values (``WRITTEN``, which
``row`` fills), the widths that values are cut to, what a migration expects of a table
it adopts (``migrate``), and what ``pglog query``, ``tail``, ``export`` and the web view
show (``SHOWN``). Adding a column is one entry here (with the schema version that
brought it) and, if pglog fills it, one value in ``row``.

Schema 3 brought three columns, filled by the writer (the caller pays nothing for them):
the message's ``%`` template when the record had arguments (records of one kind share
it), the level's number (so "WARNING and worse" orders custom levels such as ``FATAL``
60 or ``SECURITY`` 35), and the fingerprint of an error (see ``_capture.fingerprint``),
by which ``pglog errors`` groups them. Rows stored before have them NULL, and every
reader copes with that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The longest message, exception text, path or extra_data JSON kept, in characters.
MAX_TEXT = 1 << 20

Kind = Literal["serial", "timestamp", "text", "int4", "int8", "jsonb"]

#: The information_schema data types pglog can write each kind into: a hand-made table
#: may have chosen a wider or looser type than pglog's own.
_ACCEPTS: dict[Kind, frozenset[str]] = {
    "serial": frozenset({"bigint", "integer"}),
    "timestamp": frozenset({"timestamp with time zone", "timestamp without time zone"}),
    "text": frozenset({"character varying", "text"}),
    "int4": frozenset({"integer", "bigint"}),
    "int8": frozenset({"bigint", "numeric"}),
    "jsonb": frozenset({"jsonb", "json"}),
}


@dataclass(frozen=True)
class Column:
    """One column, as the DDL, the COPY, a migration and the readers each need it."""

    name: str
    #: The SQL type pglog creates the column with.
    type: str
    kind: Kind
    nullable: bool = True
    #: The SQL default, for the columns the server fills (and extra_data's empty object).
    default: str | None = None
    #: Filled by pglog's COPY (True), or by the server's default.
    written: bool = True
    #: Characters a value is cut to (a varchar's width, else MAX_TEXT; for extra_data, its
    #: JSON's: see ``sizes``); None: neither text nor JSON.
    width: int | None = None
    #: Its place in what query, tail, export and the web view show; None: not shown.
    shown: int | None = None
    #: The entry slot pglog fills it from (see ``row``); "hostname": the writer's host;
    #: for the columns of schema 3, the value ``row`` derives.
    source: str | None = None
    #: The schema version that brought the column: a migration adds the newer ones.
    since: int = 1

    @property
    def accepts(self) -> frozenset[str]:
        """The data types (as information_schema names them) pglog can write this into."""
        return _ACCEPTS[self.kind]

    @property
    def ddl(self) -> str:
        """The column's line in CREATE TABLE, as pglog has always written it."""
        name = '"timestamp"' if self.name == "timestamp" else self.name
        parts = [name, self.type]
        if not self.nullable and self.kind != "serial":  # a serial column is NOT NULL anyway
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        return " ".join(parts)


def _varchar(
    name: str,
    width: int,
    source: str,
    *,
    nullable: bool = True,
    shown: int | None = None,
    since: int = 1,
) -> Column:
    return Column(
        name, f"VARCHAR({width})", "text", nullable, None, True, width, shown, source, since
    )


def _text(
    name: str, source: str, *, nullable: bool = True, shown: int | None = None, since: int = 1
) -> Column:
    return Column(name, "TEXT", "text", nullable, None, True, MAX_TEXT, shown, source, since)


COLUMNS = (
    Column("id", "BIGSERIAL", "serial", nullable=False, written=False, shown=0),
    Column(
        "timestamp",
        "TIMESTAMP WITH TIME ZONE",
        "timestamp",
        nullable=False,
        shown=1,
        source="created",
    ),
    _varchar("level", 10, "levelname", nullable=False, shown=2),
    _varchar("logger_name", 255, "name", nullable=False, shown=3),
    Column("process_id", "INTEGER", "int4", shown=8, source="process"),
    Column("thread_id", "BIGINT", "int8", source="thread"),
    _varchar("thread_name", 255, "thread_name", shown=9),
    _varchar("hostname", 255, "hostname", shown=7),
    _text("message", "message", nullable=False, shown=4),
    _text("exception", "exception", shown=6),
    _varchar("function_name", 255, "func_name", shown=10),
    _varchar("module", 255, "module"),
    _varchar("filename", 255, "filename", shown=11),
    Column("lineno", "INTEGER", "int4", shown=12, source="lineno"),
    _text("pathname", "pathname"),
    Column(
        "extra_data",
        "JSONB",
        "jsonb",
        nullable=False,
        default="'{}'::jsonb",
        width=MAX_TEXT,
        shown=5,
        source="extras",
    ),
    Column(
        "created_at",
        "TIMESTAMP WITH TIME ZONE",
        "timestamp",
        nullable=False,
        default="CURRENT_TIMESTAMP",
        written=False,
    ),
    _text("template", "template", shown=13, since=3),
    Column("levelno", "INTEGER", "int4", shown=14, source="levelno", since=3),
    _varchar("fingerprint", 255, "fingerprint", shown=15, since=3),
)

BY_NAME = {column.name: column for column in COLUMNS}
#: The columns a row fills, in the order of its values (and of the COPY column list):
#: extra_data last, as it carries the notes on what the other values needed.
WRITTEN = (
    *(column for column in COLUMNS if column.written and column.name != "extra_data"),
    BY_NAME["extra_data"],
)
WRITTEN_NAMES = tuple(column.name for column in WRITTEN)
#: The columns of the first schema: a table without one of them can't take pglog's rows.
BASE = tuple(column for column in WRITTEN if column.since == 1)
#: The columns shown to people, in the order they are shown.
SHOWN = tuple(
    column.name
    for column in sorted((c for c in COLUMNS if c.shown is not None), key=lambda c: c.shown or 0)
)


def width(name: str) -> int:
    """The characters a value of column ``name`` is cut to."""
    limit = BY_NAME[name].width
    assert limit is not None, f"{name} is not a text column"
    return limit
