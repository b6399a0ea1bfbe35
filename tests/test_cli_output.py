"""What the pglog command prints: safe on a terminal and in a pipe, whatever the logs hold;
CSV safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import pty
import re
import select
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from test_cli import _pglog_executable, pglog

from pglog import DatabaseLogHandler
from pglog._table import reports
from pglog._table.schema import TableName
from pglog._text import for_terminal

#: What a terminal acts on: C0 controls but tab and newline, DEL, C1, bidi controls.
ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Colour and style, the only sequences pglog itself sends to a terminal (through rich).
STYLE = re.compile(r"\x1b\[[0-9;]*m")
#: A log line's worth of what rewrites a terminal: clear the screen, set the window title,
#: a hyperlink, a C1 CSI, a carriage return, a bidi override.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x1b]8;;https://evil.example/\x1b\\here\x9b31m\r\u202eevil"


@pytest.fixture
def hostile(pg_dsn: str, table: str, db: psycopg.Connection[Any]) -> str:
    """A table whose rows carry HOSTILE in every field a command shows (the message, the
    logger name, extras' keys and values, the traceback, rich markup), and a writer
    report whose hostname and last error carry it too."""
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05)
    log = logging.getLogger(f"cli.{HOSTILE}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    log.warning(f"[bold red]markup[/] {HOSTILE}\nforged line", extra={HOSTILE: [HOSTILE]})
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        log.exception("failed")
    assert handler.flush(10)
    handler.close()
    log.removeHandler(handler)
    reports.create(db, TableName("public", table))
    db.execute(
        "INSERT INTO pglog_writers (log_table, hostname, process_id, started, reported, stats)"
        " VALUES (%s, %s, 1, now(), now(), %s)",
        (table, f"host{HOSTILE}", Jsonb({"last_error": HOSTILE, "queue_depth": 0})),
    )
    return table


def in_a_terminal(*args: str) -> str:
    """What ``pglog *args`` shows on a terminal (a pseudo-terminal, colour allowed)."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    process = subprocess.Popen(
        [_pglog_executable(), *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "200"},
    )
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        assert ready, f"pglog {args[0]} did not finish"
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(30) == 0, shown
    return shown.decode().replace("\r\n", "\n")  # the terminal's own line ends


def assert_safe(output: str) -> None:
    """Nothing in ``output`` a terminal would act on, but pglog's own colours; the hostile
    sequences are there, as visible escapes."""
    assert not ACTIVE.search(STYLE.sub("", output)), ascii(output)
    assert "\\x1b]0;owned\\x07" in output


#: Every command that shows what the logs hold.
SHOWING = [("tail", "-n", "5"), ("query",), ("errors",), ("stats",), ("health",)]


@pytest.mark.parametrize("command", SHOWING)
def test_no_command_passes_a_control_sequence_into_a_pipe(
    pg_dsn: str, hostile: str, command: tuple[str, ...]
) -> None:
    """Messages, logger names, extras, tracebacks, hostnames and last errors from
    pglog_writers: escaped on their way out, even piped (where there is no colour)."""
    result = pglog(*command, "--dsn", pg_dsn, "--table", hostile)
    assert result.returncode == 0, result.stderr
    assert not ACTIVE.search(result.stdout), ascii(result.stdout)
    assert "\\x1b]0;owned\\x07" in result.stdout


@pytest.mark.parametrize("command", SHOWING)
def test_no_command_passes_a_control_sequence_to_a_terminal(
    pg_dsn: str, hostile: str, command: tuple[str, ...]
) -> None:
    """On a terminal, with rich's colours: only pglog's own colour codes get through."""
    assert_safe(in_a_terminal(*command, "--dsn", pg_dsn, "--table", hostile))


def test_rows_on_a_terminal_show_markup_as_text_and_a_message_as_one_line(
    pg_dsn: str, hostile: str
) -> None:
    """rich reads [bold] as markup in strings; pglog gives it text, so a message shows its
    brackets. A newline in a message is shown as \\n (it can't pass for a row of its own);
    the traceback keeps its lines."""
    shown = STYLE.sub("", in_a_terminal("tail", "--dsn", pg_dsn, "--table", hostile))
    assert "[bold red]markup[/]" in shown
    assert "\\nforged line" in shown
    assert not any(line.startswith("forged line") for line in shown.splitlines())
    assert "    Traceback (most recent call last):" in shown.splitlines()


def test_an_error_line_shows_what_it_quotes_escaped_and_cut_short(pg_dsn: str) -> None:
    """An error that names what was given (here a table) prints it escaped, on one line;
    a name of 10,000 characters is cut short."""
    result = pglog("query", "--dsn", pg_dsn, "--table", f"t{HOSTILE}\nx")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert not ACTIVE.search(line)
    assert "does not exist" in line
    result = pglog("query", "--dsn", pg_dsn, "--table", "t" * 10_000)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "longer than PostgreSQL's 63 bytes" in line
    assert len(line) < 200


@pytest.mark.parametrize("command", ["query", "export"])
def test_json_lines_escape_c1_and_bidi_controls_and_stay_valid(
    pg_dsn: str, hostile: str, command: str
) -> None:
    """jsonl (query and export) escapes what json.dumps leaves raw (C1, bidi), the JSON
    way: every line parses, and back to exactly what is stored."""
    result = pglog(command, "--dsn", pg_dsn, "--table", hostile, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert not ACTIVE.search(result.stdout)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    assert {row["logger_name"] for row in rows} == {f"cli.{HOSTILE}"}
    warning = next(row for row in rows if row["level"] == "WARNING")
    assert warning["extra_data"] == {HOSTILE: [HOSTILE]}


def test_csv_is_safe_to_open_in_a_spreadsheet_unless_raw_is_asked_for(
    pg_dsn: str, table: str, tmp_path: Path
) -> None:
    """Cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) start
    with a ' in the export (OWASP's advice), and control characters are escaped; with
    --raw, every cell is as stored."""
    formulas = ['=HYPERLINK("https://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    handler = DatabaseLogHandler(pg_dsn, table=table, flush_interval=0.05)
    log = logging.getLogger("=cmd|'/c calc'!A1")
    log.propagate = False
    log.addHandler(handler)
    for text in formulas:
        log.error(text)
    log.error("a plain \x1b]0;owned\x07 message")
    assert handler.flush(10)
    handler.close()

    def export(*options: str) -> list[dict[str, str]]:
        target = tmp_path / "out.csv"
        result = pglog(
            "export", "--dsn", pg_dsn, "--table", table, "--format", "csv", "--output", str(target),
            *options,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        with target.open(newline="", encoding="utf-8") as exported:
            return list(csv.DictReader(exported))

    safe = export()
    assert [row["message"] for row in safe[:-1]] == [
        "'" + for_terminal(text, lines=True) for text in formulas
    ]
    assert {row["logger_name"] for row in safe} == {"'=cmd|'/c calc'!A1"}
    assert safe[-1]["message"] == "a plain \\x1b]0;owned\\x07 message"
    assert all(not ACTIVE.search(value) for row in safe for value in row.values())
    assert int(safe[0]["lineno"]) > 0
    dt.datetime.fromisoformat(safe[0]["timestamp"])

    raw = export("--raw")
    assert [row["message"] for row in raw[:-1]] == formulas
    assert raw[-1]["message"] == "a plain \x1b]0;owned\x07 message"
