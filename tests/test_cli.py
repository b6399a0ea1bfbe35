"""The pglog command, run through its entry points."""

from __future__ import annotations

import csv
import datetime as dt
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
from helpers import alive, count, fetch

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


def embedded_demo(command: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    """The demo with no database named anywhere: on an embedded server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGLOG_", "PG"))}
    return subprocess.run(
        [*command, "demo", *options],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


def test_demo_with_an_embedded_server_via_python_m() -> None:
    """python -m pglog demo with no DSN starts a throwaway PostgreSQL and succeeds."""
    result = embedded_demo([sys.executable, "-m", "pglog"])
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
        "export", "--dsn", pg_dsn, "--table", seeded, "--format", format,
        "--output", str(target), "--logger", "cliapp",
    )  # fmt: skip
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


def test_health_exit_code_says_what_is_wrong(pg_dsn: str, seeded: str, tmp_path: Path) -> None:
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


def test_query_says_when_more_rows_match_and_prints_text_and_jsonl_in_one_order(
    pg_dsn: str, seeded: str
) -> None:
    """--limit 2: the newest two, oldest first in text and jsonl alike, and stderr says
    that more rows match; with room for all, it says nothing."""
    text = pglog("query", "--dsn", pg_dsn, "--table", seeded, "--since", "1h", "--limit", "2")
    jsonl = pglog(
        "query",
        "--dsn",
        pg_dsn,
        "--table",
        seeded,
        "--since",
        "1h",
        "--limit",
        "2",
        "--format",
        "jsonl",
    )
    assert text.returncode == jsonl.returncode == 0, text.stderr + jsonl.stderr
    messages = [json.loads(line)["message"] for line in jsonl.stdout.splitlines()]
    assert messages == ["query failed", "disk full"]
    assert [line.split(": ", 1)[1] for line in text.stdout.splitlines()] == [
        'query failed  {"http": {"status": 503}, "user_id": 42}',
        "disk full",
    ]
    for result in (text, jsonl):
        assert result.stderr.strip() == (
            "pglog: more rows match than --limit 2: these are the newest 2"
            " (raise --limit, or narrow the filters)"
        )
    everything = pglog("query", "--dsn", pg_dsn, "--table", seeded, "--limit", "8")
    assert everything.stderr == ""


def test_times_are_labelled_and_naive_times_are_read_in_the_local_zone(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """With TZ=Asia/Tokyo (UTC+9, no daylight saving) rows show in Tokyo time, labelled
    JST, and --until 2026-01-01T09:00 means 00:00 UTC; --utc shows and reads UTC."""
    assert pglog("init", "--dsn", pg_dsn, "--table", table).returncode == 0
    db.execute(
        f'INSERT INTO "{table}" ("timestamp", level, logger_name, message) VALUES'
        " ('2025-12-31T23:30:00Z', 'INFO', 'tz', 'before midnight UTC'),"
        " ('2026-01-01T00:30:00Z', 'INFO', 'tz', 'after midnight UTC')"
    )
    tokyo = {"TZ": "Asia/Tokyo"}
    local = pglog(
        "query", "--dsn", pg_dsn, "--table", table, "--until", "2026-01-01T09:00", env=tokyo
    )
    assert local.returncode == 0, local.stderr
    assert local.stdout.splitlines() == [
        "2026-01-01 08:30:00.000 JST INFO     tz: before midnight UTC"
    ]
    utc = pglog(
        "query",
        "--dsn",
        pg_dsn,
        "--table",
        table,
        "--since",
        "2026-01-01T00:00",
        "--utc",
        env=tokyo,
    )
    assert utc.stdout.splitlines() == [
        "2026-01-01 00:30:00.000 UTC INFO     tz: after midnight UTC"
    ]


def test_a_quoted_value_is_a_string_and_operator_typos_are_errors(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """extra.user_id="42" means the string "42" (quotes stripped), 42 the number; a value
    that starts with an operator, an empty range and a negative count are errors (exit
    2, one line), not empty answers."""
    assert pglog("init", "--dsn", pg_dsn, "--table", table).returncode == 0
    db.execute(
        f'INSERT INTO "{table}" ("timestamp", level, logger_name, message, extra_data) VALUES'
        """ (now(), 'INFO', 'q', 'as a number', '{"user_id": 42, "name": "bob"}'),"""
        """ (now(), 'INFO', 'q', 'as a string', '{"user_id": "42", "name": "\\"bob\\""}')"""
    )

    def messages(condition: str) -> list[str]:
        result = pglog("query", "--dsn", pg_dsn, "--table", table, "--where", condition)
        assert result.returncode == 0, result.stderr
        return [line.split(": ", 1)[1].split("  ")[0] for line in result.stdout.splitlines()]

    assert messages('extra.user_id="42"') == ["as a string"]
    assert messages("extra.user_id=42") == ["as a number"]
    assert messages('extra.name~"^bob$"') == ["as a number"]
    assert messages('extra.name="\\"bob\\""') == ["as a string"]
    for options, says in (
        (["--where", "extra.status>>5"], "the value '>5' starts with an operator"),
        (["--where", "extra.status="], "has no value"),
        (["--since", "1h", "--until", "2h"], "the time range is empty"),
        (["--limit", "-5"], "argument --limit: '-5' is not a count"),
        (["--level", "LOUD"], "unknown level 'LOUD'"),
    ):
        result = pglog("query", "--dsn", pg_dsn, "--table", table, *options)
        assert result.returncode == 2, (options, result.stdout)
        (line,) = result.stderr.strip().splitlines()
        assert says in line


def test_a_custom_level_is_found_by_name_and_ordered_by_number(pg_dsn: str, table: str) -> None:
    """SECURITY at 35 and FATAL at 60 are in "WARNING and worse"; --level SECURITY, a name
    only the table knows, means 35 and worse."""
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05)
    log = logging.getLogger(f"levels.{table}")
    log.propagate, log.handlers[:] = False, [handler]
    log.setLevel(logging.DEBUG)
    logging.addLevelName(35, "SECURITY")
    logging.addLevelName(60, "FATAL")
    try:
        log.log(35, "token reused")
        log.log(60, "data lost")
        log.warning("slow")
        log.info("fine")
        assert handler.flush(10)
    finally:
        handler.close()
        logging.addLevelName(50, "FATAL")
        logging.addLevelName(50, "CRITICAL")
        for number in (35, 60):
            del logging._levelToName[number]
        del logging._nameToLevel["SECURITY"]

    def messages(level: str) -> list[str]:
        result = pglog(
            "query", "--dsn", pg_dsn, "--table", table, "--level", level, "--format", "jsonl"
        )
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["message"] for line in result.stdout.splitlines()]

    assert messages("WARNING") == ["token reused", "data lost", "slow"]
    assert messages("SECURITY") == ["token reused", "data lost"]
    assert messages("55") == ["data lost"]


def test_tail_follow_prints_json_lines_for_jq(pg_dsn: str, seeded: str) -> None:
    """tail -f --format jsonl: one JSON object per row, the old and the newly landed."""
    follower = subprocess.Popen(
        [
            _pglog_executable(),
            "tail",
            "--dsn",
            pg_dsn,
            "--table",
            seeded,
            "-n",
            "1",
            "-f",
            "--format",
            "jsonl",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["message"] == "disk full"
        handler = DatabaseLogHandler(pg_dsn, table=seeded, flush_interval=0.05)
        log = logging.getLogger("late.json")
        log.addHandler(handler)
        log.error("arrived as json", extra={"n": 1})
        assert handler.flush(10)
        handler.close()
        row = json.loads(follower.stdout.readline())
        assert (row["message"], row["extra_data"], row["levelno"]) == (
            "arrived as json",
            {"n": 1},
            40,
        )
    finally:
        follower.kill()
        follower.wait(10)


def test_commands_that_would_do_the_wrong_thing_say_so_in_one_line(
    pg_dsn: str, seeded: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """export to a directory that doesn't exist and migrate of a misspelt table: exit 1,
    one line, and no new table."""
    export = pglog(
        "export", "--dsn", pg_dsn, "--table", seeded, "--format", "csv",
        "--output", str(tmp_path / "missing" / "out.csv"),
    )  # fmt: skip
    assert export.returncode == 1
    assert export.stderr.strip().splitlines() == [
        f"pglog: error: can't write {tmp_path / 'missing' / 'out.csv'}: No such file or directory"
    ]
    typo = pglog("migrate", "--dsn", pg_dsn, "--table", seeded + "x")
    assert typo.returncode == 1
    (line,) = typo.stderr.strip().splitlines()
    assert f"public.{seeded}x does not exist, so there is nothing to migrate" in line
    assert db.execute("SELECT to_regclass(%s)", (seeded + "x",)).fetchone() == (None,)


def test_health_calls_a_writer_that_wrote_again_recovered(
    pg_dsn: str, seeded: str, db: psycopg.Connection[Any]
) -> None:
    """A writer whose last error came before its last write is not shown failing next to
    "healthy"; one still failing shows its error; a plain table's size is its own."""
    from pglog._table import reports
    from pglog._table.schema import TableName

    name = TableName("public", seeded)
    started = dt.datetime.now(dt.timezone.utc)
    for pid, failing_for in ((101, None), (102, 120.0)):
        error = "OperationalError: server closed the connection"
        stats: dict[str, Any] = {"last_error": error, "failing_for_s": failing_for}
        reports.publish(db, name, reports.Identity("h", pid, started), stats, stopped=False)
    db.execute(f'ANALYZE "{seeded}"')
    result = pglog("health", "--dsn", pg_dsn, "--table", seeded)
    lines = result.stdout.splitlines()
    (recovered,) = [line for line in lines if line.startswith("  h:101 ")]
    assert recovered.endswith("recovered from earlier errors")
    assert "OperationalError" not in recovered
    (failing,) = [line for line in lines if line.startswith("  h:102 ")]
    assert failing.endswith("failing: OperationalError: server closed the connection")
    assert result.returncode == 4
    size = re.search(r"^size: ([\d,.]+) (bytes|kB|MB), about ([\d,]+) rows", result.stdout, re.M)
    assert size is not None, result.stdout
    assert size.group(2) != "bytes"
    assert int(size.group(3)) == 8


def test_demo_keep_leaves_a_server_with_the_rows_and_says_what_to_try() -> None:
    """pglog demo --keep: the embedded server outlives the demo, the printed DSN and
    commands work on it (errors finds the demo's failures), and the printed command stops
    it and removes its files."""
    result = embedded_demo([_pglog_executable()], "--keep")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    dsn = re.search(r"^  export PGLOG_DSN='([^']+)'$", out, re.M)
    stop = re.search(r"^Stop the server and delete its files with: (.+)$", out, re.M)
    assert dsn is not None, out
    assert stop is not None, out
    try:
        for command in ("tail", "errors", "serve"):
            assert f"  pglog {command} --table pglog_demo" in out
        errors = pglog("errors", "--table", "pglog_demo", env={"PGLOG_DSN": dsn.group(1)})
        assert errors.returncode == 0, errors.stderr
        assert "ValueError in pglog/_demo.py, emit_workload  NEW" in errors.stdout
        assert "database: timeout talking to %s after %d ms  NEW" in errors.stdout
        client = psycopg.connect(dsn.group(1))  # a reader still connected (pglog serve, say)
    finally:
        data = re.search(r"head -1 (\S+)/postmaster.pid", stop.group(1))
        assert data is not None
        postmaster = int((Path(data.group(1)) / "postmaster.pid").read_text().split()[0])
        stopped = subprocess.run(stop.group(1), shell=True, timeout=60, check=False)
    client.close()
    assert stopped.returncode == 0
    assert not alive(postmaster)  # stopped, not left running under removed files
    assert not Path(data.group(1)).exists()
