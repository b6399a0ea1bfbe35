"""The engine fixtures work: Citus takes a COPY through its coordinator and spreads it over
its workers; TimescaleDB compresses a chunk and reads it back as it was; nodes restart;
a missing engine skips, or fails under CI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import engines
import psycopg
import pytest
from engines import CitusCluster, TimescaleServer

#: A table shaped like pglog's (the columns the smoke tests need).
TABLE = """CREATE TABLE {name} (
    id BIGSERIAL,
    "timestamp" TIMESTAMPTZ NOT NULL,
    level VARCHAR(10) NOT NULL,
    logger_name VARCHAR(255) NOT NULL,
    message TEXT NOT NULL,
    extra_data JSONB NOT NULL DEFAULT '{{}}'::jsonb,
    PRIMARY KEY ({key})
)"""
COLUMNS = '("timestamp", level, logger_name, message, extra_data)'
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def records(count: int, span: dt.timedelta) -> list[tuple[Any, ...]]:
    step = span / count
    return [
        (
            START + i * step,
            ("DEBUG", "INFO", "INFO", "WARNING", "ERROR")[i % 5],
            f"app.part{i % 7}",
            f"request {i} took {i % 997} ms",
            f'{{"request_id": "r-{i}", "n": {i}}}',
        )
        for i in range(count)
    ]


def copy(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> str:
    """COPY ``rows`` in one transaction, as pglog does; the transaction's id."""
    with conn.transaction(), conn.cursor() as cur:
        xid = str(cur.execute("SELECT pg_current_xact_id()::text").fetchone()[0])  # type: ignore[index]
        with cur.copy(f"COPY {table} {COLUMNS} FROM STDIN") as out:
            for row in rows:
                out.write_row(row)
    return xid


def test_citus_copy_through_the_coordinator_lands_on_both_workers(citus: CitusCluster) -> None:
    with citus.connect() as conn:
        conn.execute(TABLE.format(name="smoke_logs", key="id"))
        conn.execute("SELECT create_distributed_table('smoke_logs', 'id')")
        xid = copy(conn, "smoke_logs", records(10_000, dt.timedelta(hours=1)))
        status = conn.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM smoke_logs"
        ).fetchone()  # type: ignore[misc]
    assert status == ("committed",)
    assert (total, distinct) == (10_000, 10_000)
    on_workers = citus.shard_rows("smoke_logs")
    assert len(on_workers) == 2
    assert all(rows > 0 for rows in on_workers)
    assert sum(on_workers) == 10_000


def test_timescale_compresses_a_chunk_and_reads_it_back(timescale: TimescaleServer) -> None:
    rows = records(3_000, dt.timedelta(days=3))
    with timescale.connect() as conn:
        conn.execute(TABLE.format(name="smoke_hyper", key='id, "timestamp"'))
        conn.execute(
            "SELECT create_hypertable('smoke_hyper', by_range('timestamp', INTERVAL '1 day'))"
        )
        copy(conn, "smoke_hyper", rows)
        before = conn.execute(f"SELECT {COLUMNS[1:-1]} FROM smoke_hyper ORDER BY id").fetchall()
        conn.execute(
            "ALTER TABLE smoke_hyper SET (timescaledb.compress,"
            " timescaledb.compress_segmentby = 'level',"
            " timescaledb.compress_orderby = '\"timestamp\" DESC, id DESC')"
        )
        chunk = conn.execute(
            "SELECT compress_chunk(c) FROM show_chunks('smoke_hyper') c ORDER BY c LIMIT 1"
        ).fetchone()
        compressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'smoke_hyper' AND is_compressed"
        ).fetchone()
        after = conn.execute(f"SELECT {COLUMNS[1:-1]} FROM smoke_hyper ORDER BY id").fetchall()
        newest = conn.execute(
            'SELECT message FROM smoke_hyper ORDER BY "timestamp" LIMIT 1'
        ).fetchone()
    assert chunk is not None
    assert compressed == (1,)
    assert len(before) == 3_000
    assert after == before
    assert newest == ("request 0 took 0 ms",)


def test_nodes_restart_and_keep_their_rows(own_citus: CitusCluster) -> None:
    with own_citus.connect() as conn:
        conn.execute(TABLE.format(name="kept", key="id"))
        conn.execute("SELECT create_distributed_table('kept', 'id')")
        copy(conn, "kept", records(1_000, dt.timedelta(minutes=1)))
    own_citus.worker(0).restart("immediate")
    own_citus.worker(1).kill()
    own_citus.worker(1).start()
    own_citus.coordinator.restart("fast")
    with own_citus.connect() as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1_000,)
    assert sum(own_citus.shard_rows("kept")) == 1_000


def test_a_missing_engine_skips_or_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(engines, "server_version", lambda: (15, 20))
    monkeypatch.setattr(engines, "PGLIB", tmp_path)
    reason = engines.engines_missing("citus")
    assert reason is not None
    assert "citus.so" in reason
    assert "tests/system-packages" in reason
    assert not engines.engines_installed("citus")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="citus can't run"):
        engines.require("citus")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set and citus can't run"):
        engines.require("citus")
