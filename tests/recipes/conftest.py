"""Fixtures for the recipe tests: a database of the test's own, named by $PGLOG_DSN."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo


@pytest.fixture
def recipe_dsn(db: psycopg.Connection[tuple[Any, ...]], pg_dsn: str) -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards.

    The recipes use pglog's defaults (the table ``logs``, the DSN from $PGLOG_DSN),
    exactly as a user would copy them; a database per test keeps their tables apart.
    """
    name = f"recipe_{uuid.uuid4().hex[:12]}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(pg_dsn, dbname=name)
    finally:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
