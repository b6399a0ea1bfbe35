"""Reading: the commands that show rows: tail, query, export."""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from psycopg import sql

from pglog._cli.clock import zone_of
from pglog._cli.output import Printer, json_default
from pglog._cli.target import CommandError, Target, chosen_rows
from pglog._table.columns import SHOWN
from pglog._table.connection import Connection
from pglog._table.reader import follow, rows, stream
from pglog._table.schema import TableName
from pglog._text import for_terminal, json_line, underlying

#: What a spreadsheet reads as the start of a formula (OWASP's list): such a CSV cell
#: gets a ' in front, so that it is shown as the text it is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def tail(args: argparse.Namespace, target: Target) -> int:
    out = _output(args)
    with target.connect() as conn:
        where = chosen_rows(args, conn, target)
        newest = rows(conn, target.table, where, limit=args.n)
        conn.rollback()
        for row in reversed(newest):
            out(row)
        if args.follow:  # rows that land from now on, whatever their timestamps say
            for row in follow(conn, target.table, where, _last_id(conn, target.table)):
                out(row)
    return 0


def _output(args: argparse.Namespace) -> Callable[[dict[str, Any]], None]:
    """How each row is printed: a line for people, or a JSON object per line."""
    if args.format == "jsonl":
        return lambda row: print(json_line(row, default=json_default), flush=True)
    return Printer(sys.stdout, zone_of(args)).row


def _last_id(conn: Connection, table: TableName) -> int:
    found = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(table.identifier))
    last = found.fetchone()
    conn.rollback()
    return int(last[0]) if last else 0


def query(args: argparse.Namespace, target: Target) -> int:
    """The newest ``--limit`` matching rows, printed oldest first (text and jsonl alike);
    when more match, stderr says so."""
    with target.connect() as conn:
        where = chosen_rows(args, conn, target)
        found = rows(conn, target.table, where, limit=args.limit + 1)
    out = _output(args)
    for row in reversed(found[: args.limit]):
        out(row)
    if len(found) > args.limit:
        print(
            f"pglog: more rows match than --limit {args.limit}: these are the newest"
            f" {args.limit} (raise --limit, or narrow the filters)",
            file=sys.stderr,
        )
    return 0


def export(args: argparse.Namespace, target: Target) -> int:
    with contextlib.ExitStack() as closing:
        output: TextIO = sys.stdout
        if args.output:
            try:
                output = closing.enter_context(open(args.output, "w", newline="", encoding="utf-8"))
            except OSError as exc:
                raise CommandError(
                    f"can't write {args.output}: {exc.strerror or type(exc).__name__}"
                ) from None
        conn = closing.enter_context(target.connect())
        where = chosen_rows(args, conn, target)
        found = _with_progress(stream(conn, target.table, where), args.output is not None)
        count = _write_export(found, args.format, output, raw=args.raw)
    if args.output:
        print(f"exported {count:,} rows to {args.output}", file=sys.stderr)
    return 0


def _write_export(
    found: Iterable[dict[str, Any]], format: str, output: TextIO, *, raw: bool
) -> int:
    count = 0
    if format == "jsonl":
        for row in found:
            output.write(json_line(row, default=json_default) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(output, fieldnames=SHOWN)
    writer.writeheader()
    for row in found:
        extra = row["extra_data"]
        row["extra_data"] = json.dumps(extra, ensure_ascii=False) if raw else json_line(extra)
        writer.writerow({k: _cell(v, raw) for k, v in row.items()})
        count += 1
    return count


def _cell(value: Any, raw: bool) -> Any:
    """A CSV cell: unless ``raw``, text a spreadsheet would run as a formula starts with a
    ', and control characters are escaped (a traceback keeps its lines)."""
    if isinstance(value, dt.datetime):
        return json_default(value)
    if raw or not isinstance(value, str):
        return value
    quote = "'" if value.startswith(FORMULA_STARTS) else ""
    return quote + for_terminal(value, lines=True)


def _with_progress(found: Iterable[dict[str, Any]], to_file: bool) -> Iterable[dict[str, Any]]:
    """A running count on a terminal (with the ``cli`` extra); the rows pass as they are."""
    if not (to_file and sys.stderr.isatty()):
        return found
    try:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn
    except ImportError:
        return found

    def counted() -> Iterable[dict[str, Any]]:
        console = Console(file=underlying(sys.stderr))
        with Progress(
            SpinnerColumn(), TextColumn("{task.completed:,} rows"), transient=True, console=console
        ) as bar:
            task = bar.add_task("export", total=None)
            for row in found:
                bar.advance(task)
                yield row

    return counted()
