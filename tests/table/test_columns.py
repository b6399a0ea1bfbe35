"""columns: one spec of the table, from which the DDL, the COPY list and the row are made."""

from __future__ import annotations

import logging

from pglog._capture.capture import capture
from pglog._capture.entry import Entry, named
from pglog._capture.row import _careful_row, to_row
from pglog._table.columns import SHOWN, WRITTEN_NAMES
from pglog._table.schema import TableName, copy_statement, create_table_statements


def entry_of(record: logging.LogRecord) -> Entry:
    """What the writer gets for ``record``: captured, then named."""
    return named(capture(record))


#: The table as pglog has created it since its first release, word for word.
DDL_SINCE_SCHEMA_1 = """CREATE TABLE IF NOT EXISTS "public"."logs" (
    id BIGSERIAL,
    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL,
    level VARCHAR(10) NOT NULL,
    logger_name VARCHAR(255) NOT NULL,
    process_id INTEGER,
    thread_id BIGINT,
    thread_name VARCHAR(255),
    hostname VARCHAR(255),
    message TEXT NOT NULL,
    exception TEXT,
    function_name VARCHAR(255),
    module VARCHAR(255),
    filename VARCHAR(255),
    lineno INTEGER,
    pathname TEXT,
    extra_data JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id)
)"""
#: What schema 3 added, after the columns of schema 1: where a migration adds them too.
SCHEMA_3 = """    template TEXT,
    levelno INTEGER,
    fingerprint VARCHAR(255),
"""
DDL = DDL_SINCE_SCHEMA_1.replace("    PRIMARY KEY", SCHEMA_3 + "    PRIMARY KEY")


def test_the_generated_ddl_is_the_table_pglog_always_made(db: object) -> None:
    """CREATE TABLE made from the column spec is, to the character, the one written by hand
    before the spec existed, with the columns of schema 3 at its end, where a migration
    adds them: tables made by older releases and by this one are alike."""
    create = create_table_statements(TableName("public", "logs"), schema_exists=True)[0]
    assert create.as_string(db) == DDL  # type: ignore[arg-type]
    partitioned = create_table_statements(
        TableName("public", "logs"), schema_exists=True, partitioned=True
    )[0]
    expected = DDL.replace("PRIMARY KEY (id)", 'PRIMARY KEY (id, "timestamp")')
    assert partitioned.as_string(db) == expected + ' PARTITION BY RANGE ("timestamp")'  # type: ignore[arg-type]


def test_copy_lists_the_written_columns_in_row_order(db: object) -> None:
    """COPY names the columns a row fills, in the order of its values; id and created_at
    are the server's."""
    statement = copy_statement(TableName("public", "logs")).as_string(db)  # type: ignore[arg-type]
    listed = statement.split("(", 1)[1].split(")", 1)[0].replace('"', "").split(", ")
    assert tuple(listed) == WRITTEN_NAMES
    assert "id" not in listed
    assert "created_at" not in listed
    assert SHOWN[:5] == ("id", "timestamp", "level", "logger_name", "message")


def test_the_fast_row_and_the_spec_built_row_agree() -> None:
    """The hand-written fast path puts every value where the column spec says, as the
    spec-driven careful path does."""
    log = logging.getLogger("columns.test")
    record = log.makeRecord(log.name, logging.INFO, __file__, 7, "n=%d", (3,), None, "f")
    entry = entry_of(record)
    assert to_row(entry, "host") == _careful_row(entry, "host")
    structured = log.makeRecord(
        log.name, logging.WARNING, __file__, 8, "x", (), None, "g", {"user": 1, "ok": True}
    )
    entry = entry_of(structured)
    assert to_row(entry, "host") == _careful_row(entry, "host")
