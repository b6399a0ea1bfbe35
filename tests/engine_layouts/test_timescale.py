"""TimescaleDB: ``pglog init --timescaledb`` makes a compressed hypertable with its
policies; the handler writes each record once; the CLI and the web view read the same
rows after every chunk is compressed for real; retention is TimescaleDB's policy (the
writer's own DELETE steps aside), and ``pglog prune`` drops compressed chunks."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from engines import TimescaleServer
from fleet import Fleet, assert_exactly_once
from helpers import true_within
from psycopg import sql
from readback import assert_read_back, read_back, seed, truth
from test_cli import pglog

from pglog._table.migrate import SCHEMA_VERSION


@pytest.fixture
def hyper(timescale: TimescaleServer) -> Iterator[str]:
    """A table name of this test's own on the session's TimescaleDB; dropped afterwards."""
    name = f"h_{uuid.uuid4().hex[:10]}"
    yield name
    with timescale.connect() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def one(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    found = conn.execute(query, params).fetchone()
    return found[0] if found else None


def compress_all(conn: psycopg.Connection[Any], table: str) -> None:
    """Every chunk compressed now, by compress_chunk; the policy paused first, so that its
    own run can't compress a chunk between our look and our compression."""
    conn.execute(
        "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
        " WHERE hypertable_name = %s AND proc_name = 'policy_compression'",
        (table,),
    )
    for (chunk,) in conn.execute("SELECT show_chunks(%s::regclass)::text", (table,)).fetchall():
        # A run of the policy that began before the pause may be at this chunk now
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            conn.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,))


def compressed(conn: psycopg.Connection[Any], table: str) -> tuple[int, int]:
    """(compressed chunks, all chunks) of ``table``."""
    found = conn.execute(
        "SELECT count(*) FILTER (WHERE is_compressed), count(*)"
        " FROM timescaledb_information.chunks WHERE hypertable_name = %s",
        (table,),
    ).fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def test_init_makes_a_compressed_hypertable_with_its_policies(
    timescale: TimescaleServer, hyper: str, tmp_path: Path
) -> None:
    """pglog init --timescaledb, with retention_days in the YAML: a hypertable of 1-day
    chunks on timestamp, keyed (id, timestamp), segmented by level and ordered newest
    first, a compression policy, and a retention policy that keeps 30 days."""
    config = tmp_path / "pglog.yml"
    config.write_text("logging:\n  database: {retention_days: 30}\n")
    made = pglog("init", "--dsn", timescale.dsn, "--table", hyper, "--timescaledb",
                 "--config", str(config))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == [
        f"created public.{hyper} (pglog schema {SCHEMA_VERSION}, a TimescaleDB hypertable"
        " (compressed after a day))",
        "retention: chunks older than 30 days dropped",
    ]
    with timescale.connect() as conn:
        assert (
            one(
                conn,
                "SELECT column_name || ' ' || time_interval FROM timescaledb_information.dimensions"
                " WHERE hypertable_name = %s",
                hyper,
            )
            == "timestamp 1 day"
        )
        key = one(
            conn,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype = 'p'",
            hyper,
        )
        assert key == 'PRIMARY KEY (id, "timestamp")'
        settings = conn.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
            " FROM timescaledb_information.compression_settings WHERE hypertable_name = %s"
            " ORDER BY attname",
            (hyper,),
        ).fetchall()
        assert settings == [("id", None, 2, False), ("level", 1, None, None),
                            ("timestamp", None, 1, False)]  # fmt: skip
        jobs = dict(
            conn.execute(
                "SELECT proc_name, coalesce(config->>'compress_after', config->>'drop_after')"
                " FROM timescaledb_information.jobs WHERE hypertable_name = %s",
                (hyper,),
            ).fetchall()
        )
    assert jobs == {"policy_compression": "1 day", "policy_retention": "30 days"}
    again = pglog("init", "--dsn", timescale.dsn, "--table", hyper, "--timescaledb")
    assert again.returncode == 0, again.stderr


def test_records_once_and_every_read_the_same_after_compression(
    timescale: TimescaleServer, hyper: str
) -> None:
    """Handlers of three hosts write into the hypertable (each record once, ledgers
    balanced); with three days of older rows beside them, every chunk is compressed for
    real (compress_chunk), and the CLI (tail, query, export, stats, health) and the web
    view (page walk, live poll, volume, facts) read exactly what they read before."""
    made = pglog("init", "--dsn", timescale.dsn, "--table", hyper, "--timescaledb")
    assert made.returncode == 0, made.stderr
    seed(timescale.dsn, hyper)
    fleet = Fleet(timescale.dsn, hyper, ["web-1", "web-2", "batch-1"], engine="timescaledb")
    fleet.start(300, 1000.0)
    assert_exactly_once(fleet, fleet.finish(), "timescaledb")
    expected = truth(timescale.dsn, hyper)
    assert len(expected["all"]) == 900 + 900
    before = read_back(timescale.dsn, hyper)
    assert_read_back(before, expected)
    with timescale.connect() as conn:
        compress_all(conn, hyper)
        done, chunks = compressed(conn, hyper)
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(hyper)))
    assert done == chunks >= 3
    after = read_back(timescale.dsn, hyper)
    assert_read_back(after, expected)
    assert after["web"]["facts"]["total_bytes"] < before["web"]["facts"]["total_bytes"]


def test_retention_is_the_policy_and_prune_drops_compressed_chunks(
    timescale: TimescaleServer, hyper: str
) -> None:
    """A handler with retention_days on a hypertable makes TimescaleDB's retention policy
    keep that many days, deleting no row itself (a DELETE on compressed chunks fails);
    pglog prune drops the compressed chunks past its cutoff at once."""
    made = pglog("init", "--dsn", timescale.dsn, "--table", hyper, "--timescaledb")
    assert made.returncode == 0, made.stderr
    seed(timescale.dsn, hyper, rows=600, span=dt.timedelta(days=6))
    with timescale.connect() as conn:
        compress_all(conn, hyper)
    fleet = Fleet(timescale.dsn, hyper, ["web-1"], engine="timescaledb", retention_days=2)
    fleet.start(50, 500.0)

    def policy() -> object:
        with timescale.connect() as conn:
            return one(
                conn,
                "SELECT config->>'drop_after' FROM timescaledb_information.jobs"
                " WHERE hypertable_name = %s AND proc_name = 'policy_retention'",
                hyper,
            )

    assert true_within(lambda: policy() == "2 days", 30), policy()
    assert_exactly_once(fleet, fleet.finish(), "retention")
    assert fleet.stats[0]["pruned"] == 0
    pruned = pglog("prune", "--dsn", timescale.dsn, "--table", hyper, "--older-than", "3d")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("dropped ")
    assert " chunks and deleted 0 rows older than 3d" in pruned.stdout
    with timescale.connect() as conn:
        oldest = conn.execute(
            sql.SQL('SELECT min("timestamp") FROM {}').format(sql.Identifier(hyper))
        ).fetchone()
        assert oldest is not None
        assert oldest[0] > dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=4)
        assert one(conn, "SELECT hypertable_size(%s::regclass) > 0", hyper) is True


def test_partition_and_timescaledb_refuse_each_other(tmp_path: Path) -> None:
    """A hypertable makes its own chunks: asking for both is a mistake named where it was
    made (the CLI, the YAML's key and file)."""
    cli = pglog(
        "init", "--dsn", "postgresql://127.0.0.1:1/x", "--timescaledb", "--partition", "day"
    )
    assert cli.returncode == 1
    assert "give either partition or engine" in cli.stderr
    config = tmp_path / "pglog.yml"
    config.write_text("logging:\n  database: {partition: day, engine: timescaledb}\n")
    yaml = pglog("init", "--config", str(config))
    assert yaml.returncode == 2
    assert f"{config}: logging.database.engine: a TimescaleDB hypertable" in yaml.stderr
