"""The pglog command, run through its entry points."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from helpers import count, fetch


def pglog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("pglog", path=str(Path(sys.executable).parent)) or "pglog"
    return subprocess.run(
        [executable, *args],
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
