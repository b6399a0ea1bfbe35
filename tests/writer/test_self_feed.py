"""The loop guard: what psycopg and pglog log while the writer works never re-enters the queue."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from helpers import ListHandler, count

from pglog import DatabaseLogHandler


@pytest.fixture
def noisy_root() -> Iterator[logging.Logger]:
    """The root logger and psycopg's at DEBUG, restored afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("psycopg").level)
    root.setLevel(logging.DEBUG)
    logging.getLogger("psycopg").setLevel(logging.DEBUG)
    yield root
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    logging.getLogger("psycopg").setLevel(saved[2])


def test_root_at_debug_stores_exactly_what_the_application_logged(
    noisy_root: logging.Logger, pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """Handler on the root, all at DEBUG, the writer made to speak: the row count is exact."""
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05, fallback=None)
    witness = ListHandler()
    noisy_root.addHandler(handler)
    noisy_root.addHandler(witness)
    app = logging.getLogger(f"self_feed_{table}")  # a logger no earlier test has touched
    for i in range(300):
        app.debug("record %d", i)
    assert handler.flush(10)
    first = handler.stats()
    assert first["written"] == 300, (first, logging.root.manager.disable, app.getEffectiveLevel())
    db.execute(f'DROP TABLE "{table}"')  # the writer will recreate it and say so
    for i in range(300, 600):
        app.debug("record %d", i)
    assert handler.flush(10)
    handler.close()
    noisy_root.removeHandler(handler)

    assert count(db, table) == 300
    writer_said = [r for r in witness.records if (r.threadName or "").startswith("pglog-writer")]
    assert any("created" in r.getMessage() for r in writer_said)  # it did speak, elsewhere
    assert handler.stats()["enqueued"] == 600
