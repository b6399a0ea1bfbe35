"""Creating the table: concurrent start-up, long names, and the DDL's shape."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from helpers import at_once
from psycopg import sql

from pglog._table.migrate import ensure_table
from pglog._table.schema import MAX_IDENTIFIER_BYTES, TableName


def _create_after_barrier(dsn: str, table: str, barrier: Any, results: Any) -> None:
    try:
        with psycopg.connect(dsn) as conn:
            barrier.wait(30)
            results.put(ensure_table(conn, TableName("public", table)))
    except Exception as exc:
        results.put(repr(exc))


def test_processes_starting_together_create_the_table_once(pg_dsn: str, table: str) -> None:
    """Six processes, connected and released at the same instant: one creates, none fails."""
    outcomes = at_once(_create_after_barrier, pg_dsn, table, processes=6)
    assert sorted(map(str, outcomes)) == ["False"] * 5 + ["True"]


def test_long_table_names_get_distinct_index_names() -> None:
    """Names that would exceed 63 bytes are shortened with a hash, so two tables never collide."""
    first = TableName("public", "a" * 60 + "one")
    second = TableName("public", "a" * 60 + "two")
    for what in ("timestamp", "timestamp_level_logger"):
        assert len(first.index_name(what).encode()) <= MAX_IDENTIFIER_BYTES
        assert first.index_name(what) != second.index_name(what)
        assert first.index_name(what).endswith(what)
    assert TableName("public", "logs").index_name("level") == "idx_logs_level"


def test_a_missing_schema_is_created_with_the_table(
    pg_dsn: str, db: psycopg.Connection[Any]
) -> None:
    """A schema that doesn't exist yet is created with the table."""
    schema = f"s_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(pg_dsn) as conn:
            assert ensure_table(conn, TableName(schema, "logs")) is True
            assert ensure_table(conn, TableName(schema, "logs")) is False
        assert db.execute("SELECT to_regclass(%s)", (f"{schema}.logs",)).fetchone() == (
            f"{schema}.logs",
        )
    finally:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.parametrize("bad", ["", "x" * 64, "nul\x00"])
def test_unusable_names_are_refused(bad: str) -> None:
    """Empty, over-long and NUL-bearing names are a ValueError naming the option."""
    with pytest.raises(ValueError, match="table"):
        TableName("public", bad)
