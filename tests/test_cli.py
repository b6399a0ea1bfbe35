"""The pglog command, run through its entry points."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import count, fetch

from pglog import DatabaseLogHandler


def _pglog_executable() -> str:
    return shutil.which("pglog", path=str(Path(sys.executable).parent)) or "pglog"


def pglog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_pglog_executable(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_demo_against_a_given_database(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """pglog demo --dsn logs the mix into the table and prints what landed."""
    result = pglog("demo", "--dsn", pg_dsn, "--table", table)
    assert result.returncode == 0, result.stderr
    stored = count(db, table)
    assert f"Stored {stored} of {stored} records" in result.stdout
    assert "Rows per level:" in result.stdout
    assert "ValueError: invalid literal for int()" in result.stdout
    levels = {level for (level,) in fetch(db, table, "level")}
    assert levels == {"DEBUG", "INFO", "WARNING", "ERROR"}
    assert fetch(db, table, "id", "logger_name = 'models' AND level = 'INFO'") == []
    ((order,),) = fetch(db, table, "extra_data->'order'", "extra_data ? 'order'")
    assert order == {"id": 1042, "items": ["Kaffee", "Brötchen"], "total": 12.5}


def test_demo_with_an_embedded_server_via_python_m() -> None:
    """python -m pglog demo with no DSN starts a throwaway PostgreSQL and succeeds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGLOG_", "PG"))}
    result = subprocess.run(
        [sys.executable, "-m", "pglog", "demo"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "a throwaway embedded PostgreSQL" in result.stdout
    assert "(0 dropped, 0 to the fallback" in result.stdout


def test_init_creates_the_table(pg_dsn: str, table: str, db: psycopg.Connection[Any]) -> None:
    """pglog init creates the table once and says so; a second run finds it there."""
    first = pglog("init", "--dsn", pg_dsn, "--table", table)
    second = pglog("init", "--dsn", pg_dsn, "--table", table)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.startswith(f"created public.{table}")
    assert second.stdout.startswith(f"already there: public.{table}")
    assert count(db, table) == 0


def test_init_can_make_a_partitioned_table(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """pglog init --partition week: a partitioned table with its partitions ahead."""
    made = pglog("init", "--dsn", pg_dsn, "--table", table, "--partition", "week")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"created public.{table} (pglog schema 3, partitioned by week)")
    children = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", (f'"{table}"',)
    ).fetchone()
    assert children == (1 + 1 + 1 + 3,)  # the default, one week behind, this one, three ahead


def test_errors_are_one_line_without_a_traceback(tmp_path: Path) -> None:
    """A bad config and an unreachable database each give one 'pglog: error:' line and exit != 0."""
    bad = tmp_path / "bad.yml"
    bad.write_text("logging: {level: LOUD}\n")
    config_error = pglog("init", "--config", str(bad))
    assert config_error.returncode == 2
    assert config_error.stderr.strip().splitlines() == [
        f"pglog: error: {bad}: logging.level: 'LOUD' (str) is not a level name;"
        " use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]
    unreachable = pglog("init", "--dsn", "postgresql://u:topsecret@127.0.0.1:1/x")
    assert unreachable.returncode == 1
    (line,) = unreachable.stderr.strip().splitlines()
    assert line.startswith("pglog: error: database error:")
    assert "topsecret" not in line


@pytest.fixture
def seeded(pg_dsn: str, table: str, db: psycopg.Connection[Any]) -> str:
    """A table with a known mix: levels, a logger tree, extras, and three old rows."""
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05)
    log = logging.getLogger(f"seed.{table}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    app, app_db = logging.getLogger("cliapp"), logging.getLogger("cliapp.db")
    for logger in (app, app_db):
        logger.propagate, logger.handlers[:] = False, [handler]
        logger.setLevel(logging.DEBUG)
    app.debug("cache warm")
    app.info("user signed in", extra={"user_id": 42, "http": {"status": 200}})
    app.warning("slow request", extra={"user_id": 7, "http": {"status": 200}})
    app_db.error("query failed", extra={"user_id": 42, "http": {"status": 503}})
    log.critical("disk full")
    assert handler.flush(10)
    handler.close()
    db.execute(
        f'INSERT INTO "{table}" (timestamp, level, logger_name, message, hostname)'
        " SELECT now() - interval '40 days', 'INFO', 'cliapp', 'ancient ' || i, 'h'"
        " FROM generate_series(1, 3) i"
    )
    return table


def test_query_filters_compose(pg_dsn: str, seeded: str) -> None:
    """--level, --logger (with children), --grep, --where on extra_data, --since: each narrows."""

    def messages(*options: str) -> list[str]:
        result = pglog("query", "--dsn", pg_dsn, "--table", seeded, "--format", "jsonl", *options)
        assert result.returncode == 0, result.stderr
        return sorted(json.loads(line)["message"] for line in result.stdout.splitlines())

    assert messages("--level", "WARNING") == ["disk full", "query failed", "slow request"]
    assert messages("--logger", "cliapp", "--since", "1h") == [
        "cache warm",
        "query failed",
        "slow request",
        "user signed in",
    ]
    assert messages("--logger", "cliapp.db") == ["query failed"]
    assert messages("--where", "extra.user_id=42") == ["query failed", "user signed in"]
    assert messages("--where", "extra.http.status>=500") == ["query failed"]
    assert messages("--where", "extra.user_id=42", "--level", "ERROR") == ["query failed"]
    assert messages("--grep", "SIGNED") == ["user signed in"]
    assert messages("--until", "30d") == ["ancient 1", "ancient 2", "ancient 3"]


def test_tail_prints_the_newest_rows_plainly_when_piped(pg_dsn: str, seeded: str) -> None:
    """tail -n 2 shows the two newest, oldest first, without colour codes when piped."""
    result = pglog("tail", "--dsn", pg_dsn, "--table", seeded, "-n", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith('query failed  {"http": {"status": 503}, "user_id": 42}')
    assert "cliapp.db: query failed" in lines[0]
    assert "CRITICAL" in lines[1]
    assert "\x1b[" not in result.stdout


def test_tail_follow_shows_rows_as_they_land(pg_dsn: str, seeded: str) -> None:
    """tail -f prints a row logged after it started, within its polling."""
    follower = subprocess.Popen(
        [_pglog_executable(), "tail", "--dsn", pg_dsn, "--table", seeded, "-n", "1", "-f"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert "disk full" in follower.stdout.readline()  # it is running, and has read the table
        handler = DatabaseLogHandler(pg_dsn, table=seeded, flush_interval=0.05)
        log = logging.getLogger("late.arrival")
        log.addHandler(handler)
        log.error("arrived after tail -f started")
        assert handler.flush(10)
        handler.close()
        assert "late.arrival: arrived after tail -f started" in follower.stdout.readline()
    finally:
        follower.kill()
        follower.wait(10)


def test_stats_counts_per_level_and_logger(pg_dsn: str, seeded: str) -> None:
    """stats: rows per level and per logger, and the table's size."""
    result = pglog("stats", "--dsn", pg_dsn, "--table", seeded)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"public.{seeded}:" in out
    assert re.search(r"^  INFO\s+4$", out, re.MULTILINE)
    assert re.search(r"^  cliapp\.db\s+1$", out, re.MULTILINE)


def test_the_size_of_a_partitioned_table_is_its_partitions(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """A partitioned table holds nothing itself: stats and health sum its partitions."""
    assert pglog("init", "--dsn", pg_dsn, "--table", table, "--partition", "day").returncode == 0
    db.execute(
        f'INSERT INTO "{table}" (timestamp, level, logger_name, message, hostname)'
        " SELECT now() - (i % 3) * interval '1 day', 'INFO', 'p', repeat('x', 200), 'h'"
        " FROM generate_series(1, 5000) i"
    )
    db.execute(f'ANALYZE "{table}"')
    for command in ("stats", "health"):
        result = pglog(command, "--dsn", pg_dsn, "--table", table)
        assert result.returncode == 0, result.stdout + result.stderr
        size = re.search(r"([\d,.]+) (kB|MB), about ([\d,]+) rows", result.stdout)
        assert size is not None, result.stdout
        assert float(size.group(1).replace(",", "")) * (1024 if size.group(2) == "MB" else 1) > 1000
        assert int(size.group(3).replace(",", "")) == 5000


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_export_streams_every_matching_row(
    format: str, pg_dsn: str, seeded: str, tmp_path: Path
) -> None:
    """export writes every row matching the filters, in id order, as JSON lines or CSV."""
    target = tmp_path / f"out.{format}"
    result = pglog(
        "export",
        "--dsn",
        pg_dsn,
        "--table",
        seeded,
        "--format",
        format,
        "--output",
        str(target),
        "--logger",
        "cliapp",
    )
    assert result.returncode == 0, result.stderr
    if format == "jsonl":
        rows = [json.loads(line) for line in target.read_text().splitlines()]
        extra = rows[1]["extra_data"]
    else:
        rows = list(csv.DictReader(target.open()))
        extra = json.loads(rows[1]["extra_data"])
    assert [r["message"] for r in rows] == [
        "cache warm",
        "user signed in",
        "slow request",
        "query failed",
        "ancient 1",
        "ancient 2",
        "ancient 3",
    ]
    assert extra == {"user_id": 42, "http": {"status": 200}}
    assert "exported 7 rows" in result.stderr


def test_prune_deletes_only_older_rows(
    pg_dsn: str, seeded: str, db: psycopg.Connection[Any]
) -> None:
    """prune --older-than 30d removes the three 40-day-old rows and nothing else."""
    result = pglog("prune", "--dsn", pg_dsn, "--table", seeded, "--older-than", "30d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"deleted 3 rows older than 30d from public.{seeded}"
    assert count(db, seeded) == 5


def test_health_exit_codes(pg_dsn: str, seeded: str, tmp_path: Path) -> None:
    """health: 0 healthy; 1 unreachable; 2 no table; 3 nothing newer than --max-age."""
    healthy = pglog("health", "--dsn", pg_dsn, "--table", seeded)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "schema version: 3" in healthy.stdout
    assert healthy.stdout.rstrip().endswith("healthy")
    unreachable = pglog("health", "--dsn", "postgresql://x:pw@127.0.0.1:1/x?connect_timeout=2")
    assert unreachable.returncode == 1
    assert "pw" not in unreachable.stdout
    missing = pglog("health", "--dsn", pg_dsn, "--table", "no_such_table_here")
    assert missing.returncode == 2
    stale = pglog("health", "--dsn", pg_dsn, "--table", seeded, "--max-age", "10000d")
    assert stale.returncode == 0
    db_rows_in_the_future_only = pglog(
        "health", "--dsn", pg_dsn, "--table", seeded, "--max-age", "0s"
    )
    assert db_rows_in_the_future_only.returncode == 3
    assert "unhealthy: no row in the last 0s" in db_rows_in_the_future_only.stdout


def test_bad_filters_are_one_line_errors(pg_dsn: str, seeded: str) -> None:
    """An unknown level, a malformed time or condition, a time or duration out of range:
    exit 2 and a line saying what works."""
    for command, option, value, says in (
        ("query", "--level", "LOUD", "unknown level 'LOUD'"),
        ("query", "--since", "yesterdayish", "can't read 'yesterdayish' as a time"),
        ("query", "--where", "user_id=42", "write extra.<key>"),
        ("query", "--since", "3000000d", "'3000000d' is too long: 1000 years at most"),
        ("query", "--until", "9999-12-31T23:00", "out of range: use a time from 1900 to 9998"),
        ("prune", "--older-than", "9" * 400, "is too long: 1000 years at most"),
    ):
        result = pglog(command, "--dsn", pg_dsn, "--table", seeded, option, value)
        assert result.returncode == 2
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("pglog: error: ")
        assert says in line
