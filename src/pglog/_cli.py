"""CLI: ``pglog <command>``. Every failure is one actionable line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TextIO

import psycopg
from psycopg import sql

from pglog import __version__
from pglog._config import Config, ConfigError, load_config
from pglog._embedded import EmbeddedUnavailable
from pglog._table.columns import SHOWN
from pglog._table.connection import describe, error_line, redact, resolve_dsn
from pglog._table.filters import Filter, parse_duration
from pglog._table.migrate import SchemaError, migrate
from pglog._table.partitions import PERIODS
from pglog._table.reader import Health, follow, health, prune, rows, stats, stream
from pglog._table.reports import SILENT_AFTER, Report, recent
from pglog._table.schema import TableName

EXIT_ERROR = 1
EXIT_USAGE = 2
#: pglog health: exit codes a monitor can tell apart.
HEALTH_UNREACHABLE, HEALTH_SCHEMA, HEALTH_STALE, HEALTH_WRITER = 1, 2, 3, 4
#: pglog health lists the writers that reported within this long, this many at most.
WRITERS_SHOWN = dt.timedelta(hours=1)
WRITERS_LISTED = 20


class CommandError(Exception):
    """A failure to report in one line."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", help="libpq connection string or URI (default: $PGLOG_DSN)")
    common.add_argument("--config", help="the YAML configuration file (default: $PGLOG_CONFIG)")
    common.add_argument("--table", help="the log table (default: from the config, else logs)")
    common.add_argument("--schema", help="the table's schema (default: public)")

    chosen = argparse.ArgumentParser(add_help=False)
    chosen.add_argument("--level", help="this level or worse (DEBUG, INFO, WARNING, ...)")
    chosen.add_argument("--logger", help="this logger and its children")
    chosen.add_argument("--since", help="not before: 10m, 2h, 7d, or an ISO time")
    chosen.add_argument("--until", help="before: 10m, 2h, 7d, or an ISO time")
    chosen.add_argument("--grep", help="text in the message (case-insensitive)")
    chosen.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="extra.KEY=VALUE",
        help="a condition on extra_data: extra.user_id=42, extra.http.status>=500 (repeatable)",
    )

    parser = argparse.ArgumentParser(
        prog="pglog",
        description="Python logging into PostgreSQL: set up, read and tend the log table.",
    )
    parser.add_argument("--version", action="version", version=f"pglog {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser(
        "demo",
        parents=[common],
        help="log a realistic mix into a table and show what landed"
        " (a throwaway embedded PostgreSQL when no DSN is given)",
    )
    init = commands.add_parser("init", parents=[common], help="create the table and its indexes")
    init.add_argument(
        "--partition",
        choices=PERIODS,
        help="create it range-partitioned on timestamp (default: partition from the config)",
    )
    commands.add_parser(
        "migrate", parents=[common], help="bring the table to this pglog's schema (or adopt it)"
    )
    tail = commands.add_parser("tail", parents=[common, chosen], help="the newest rows")
    tail.add_argument("-n", type=int, default=20, help="how many (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing rows as they land")
    query = commands.add_parser("query", parents=[common, chosen], help="rows matching filters")
    query.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    query.add_argument("--format", choices=("text", "jsonl"), default="text")
    commands.add_parser(
        "stats", parents=[common, chosen], help="rows per level, logger and hour; table size"
    )
    export = commands.add_parser("export", parents=[common, chosen], help="stream rows out")
    export.add_argument("--format", choices=("jsonl", "csv"), required=True)
    export.add_argument("--output", help="a file (default: standard output)")
    pruning = commands.add_parser("prune", parents=[common], help="delete rows older than ...")
    pruning.add_argument(
        "--older-than", help="30d, 12h, ... (default: retention_days from the config)"
    )
    checking = commands.add_parser(
        "health",
        parents=[common],
        help="exit 0 when healthy; 1 unreachable, 2 schema, 3 stale, 4 a writer in trouble",
    )
    checking.add_argument("--max-age", help="unhealthy (3) if the newest row is older: 10m, 1h")
    serving = commands.add_parser(
        "serve", parents=[common], help="a live web view of the table (the 'web' extra)"
    )
    serving.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (loopback)")
    serving.add_argument("--port", type=_port, default=8080, help="default 8080")
    serving.add_argument(
        "--token", help="required beyond loopback (default: $PGLOG_TOKEN, which ps can't show)"
    )
    return parser


def _port(text: str) -> int:
    """A TCP port for --port: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 0 to 65535")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dsn_for_errors = args.dsn or os.environ.get("PGLOG_DSN", "")
    try:
        if args.command == "demo":
            from pglog._demo import run_demo

            return run_demo(
                dsn=args.dsn,
                config_path=args.config,
                table=args.table,
                schema=args.schema,
                out=sys.stdout,
            )
        target = _Target.resolve(args)
        dsn_for_errors = target.dsn
        try:
            return COMMANDS[args.command](args, target)
        except psycopg.errors.UndefinedTable:
            raise CommandError(
                f"{target.table} does not exist at {describe(target.dsn)}:"
                " `pglog init` creates it, or give --table/--schema"
            ) from None
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (CommandError, EmbeddedUnavailable, SchemaError) as exc:
        return _fail(str(exc), EXIT_ERROR)
    except psycopg.Error as exc:
        return _fail(f"database error: {error_line(exc, dsn_for_errors)}", EXIT_ERROR)
    except BrokenPipeError:  # | head
        return 0
    except KeyboardInterrupt:
        return 130


class _Target:
    """Where the table is: the DSN and name from the options, else the config."""

    def __init__(self, dsn: str, table: TableName, config: Config) -> None:
        self.dsn, self.table, self.config = dsn, table, config

    @classmethod
    def resolve(cls, args: argparse.Namespace) -> _Target:
        config = load_config(args.config or os.environ.get("PGLOG_CONFIG") or None)
        dsn = resolve_dsn(args.dsn or config.destination.dsn)
        table = TableName(args.schema or config.schema, args.table or config.table)
        return cls(dsn, table, config)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, connect_timeout=10, application_name="pglog-cli")


def _filter(args: argparse.Namespace) -> Filter:
    return Filter.parse(
        level=args.level,
        logger=args.logger,
        since=args.since,
        until=args.until,
        grep=args.grep,
        where=args.where,
    )


def _init(args: argparse.Namespace, target: _Target) -> int:
    with target.connect() as conn:
        partition = args.partition or target.config.database.partition
        steps = migrate(conn, target.table, build_indexes=False, partition=partition)
    print(steps[0] if steps else f"already there: {target.table} at {describe(target.dsn)}")
    return 0


def _migrate(args: argparse.Namespace, target: _Target) -> int:
    with target.connect() as conn:
        steps = migrate(conn, target.table, build_indexes=True)
    for step in steps or [f"{target.table} is up to date"]:
        print(step)
    return 0


def _tail(args: argparse.Namespace, target: _Target) -> int:
    where = _filter(args)
    out = _Printer(sys.stdout)
    with target.connect() as conn:
        newest = rows(conn, target.table, where, limit=max(0, args.n))
        conn.rollback()
        for row in reversed(newest):
            out.row(row)
        if args.follow:  # rows that land from now on, whatever their timestamps say
            for row in follow(conn, target.table, where, _last_id(conn, target.table)):
                out.row(row)
    return 0


def _last_id(conn: psycopg.Connection[Any], table: TableName) -> int:
    found = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(table.identifier))
    last = found.fetchone()
    conn.rollback()
    return int(last[0]) if last else 0


def _query(args: argparse.Namespace, target: _Target) -> int:
    where = _filter(args)
    with target.connect() as conn:
        found = rows(conn, target.table, where, limit=max(0, args.limit))
    if args.format == "jsonl":
        for row in found:
            print(json.dumps(row, default=_json_default, ensure_ascii=False))
        return 0
    out = _Printer(sys.stdout)
    for row in reversed(found):
        out.row(row)
    return 0


def _stats(args: argparse.Namespace, target: _Target) -> int:
    with target.connect() as conn:
        found = stats(conn, target.table, _filter(args))
    print(f"{target.table}: {_size(found.total_bytes)}, {_estimate(found.estimated_rows)}")
    print("\nrows per level:")
    for level, count in found.by_level:
        print(f"  {level:<10}{count:>12,}")
    print("\nrows per logger (the busiest):")
    for name, count in found.by_logger:
        print(f"  {name:<40}{count:>12,}")
    print("\nrows per hour (the latest):")
    for hour, count in found.by_hour:
        print(f"  {hour:%Y-%m-%d %H:00 %Z}  {count:>12,}")
    return 0


def _export(args: argparse.Namespace, target: _Target) -> int:
    where = _filter(args)
    with contextlib.ExitStack() as closing:
        output: TextIO = sys.stdout
        if args.output:
            output = closing.enter_context(open(args.output, "w", newline="", encoding="utf-8"))
        conn = closing.enter_context(target.connect())
        found = _with_progress(stream(conn, target.table, where), args.output is not None)
        count = _write_export(found, args.format, output)
    if args.output:
        print(f"exported {count:,} rows to {args.output}", file=sys.stderr)
    return 0


def _write_export(found: Iterable[dict[str, Any]], format: str, output: TextIO) -> int:
    count = 0
    if format == "jsonl":
        for row in found:
            output.write(json.dumps(row, default=_json_default, ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(output, fieldnames=SHOWN)
    writer.writeheader()
    for row in found:
        row["extra_data"] = json.dumps(row["extra_data"], ensure_ascii=False)
        writer.writerow(
            {k: _json_default(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}
        )
        count += 1
    return count


def _with_progress(found: Iterable[dict[str, Any]], to_file: bool) -> Iterable[dict[str, Any]]:
    """A running count on a terminal (with the ``cli`` extra); the rows pass as they are."""
    if not (to_file and sys.stderr.isatty()):
        return found
    try:
        from rich.progress import Progress, SpinnerColumn, TextColumn
    except ImportError:
        return found

    def counted() -> Iterable[dict[str, Any]]:
        with Progress(
            SpinnerColumn(), TextColumn("{task.completed:,} rows"), transient=True
        ) as bar:
            task = bar.add_task("export", total=None)
            for row in found:
                bar.advance(task)
                yield row

    return counted()


def _prune(args: argparse.Namespace, target: _Target) -> int:
    if args.older_than:
        age = parse_duration(args.older_than)
    elif target.config.database.retention_days:
        age = dt.timedelta(days=target.config.database.retention_days)
    else:
        raise CommandError("give --older-than (30d, 12h, ...) or retention_days in the config")
    with target.connect() as conn:
        deleted = prune(conn, target.table, age)
    print(f"deleted {deleted:,} rows older than {_age(age)} from {target.table}")
    return 0


def _health(args: argparse.Namespace, target: _Target) -> int:
    reports: list[Report] | None = None
    unreadable = None
    try:
        with target.connect() as conn:
            found = health(conn, target.table)
            if found.exists:
                try:
                    reports = recent(conn, target.table, WRITERS_SHOWN)
                except psycopg.errors.InsufficientPrivilege as exc:
                    unreadable = " ".join(str(exc).split())
    except psycopg.OperationalError as exc:
        found = Health(connected=False, error=redact(" ".join(str(exc).split()), target.dsn))
    max_age = parse_duration(args.max_age) if args.max_age else None
    reachable = "reachable" if found.connected else "unreachable"
    print(f"database: {describe(target.dsn)} ({reachable})")
    if found.connected:
        print(f"table: {target.table} ({'exists' if found.exists else 'missing'})")
    if found.exists:
        print(f"schema version: {found.schema_version or 'unmarked'}")
        print(f"size: {_size(found.total_bytes)}, {_estimate(found.estimated_rows)}")
        print(f"newest row: {found.newest.isoformat() if found.newest else 'none'}")
    if unreadable is not None:
        print(f"writers: not readable ({unreadable}; GRANT SELECT ON pglog_writers)")
    if reports is not None:
        print(f"writers reporting in the last {_age(WRITERS_SHOWN)}: {len(reports)}")
        for report in reports[:WRITERS_LISTED]:
            print(f"  {_describe_writer(report)}")
        if len(reports) > WRITERS_LISTED:
            print(f"  ... and {len(reports) - WRITERS_LISTED} more (see pglog_writers)")
    for problem in found.problems:
        print(f"unhealthy: {problem}")
    if not found.connected:
        return HEALTH_UNREACHABLE
    if found.problems:
        return HEALTH_SCHEMA
    troubled = [report.problem for report in reports or () if report.problem]
    for problem in troubled:
        print(f"unhealthy: {problem}")
    if troubled:
        return HEALTH_WRITER
    if max_age is not None:
        now = dt.datetime.now(dt.timezone.utc)
        if found.newest is None or now - found.newest > max_age:
            print(f"unhealthy: no row in the last {_age(max_age)}")
            return HEALTH_STALE
    print("healthy")
    return 0


def _serve(args: argparse.Namespace, target: _Target) -> int:
    try:
        from pglog._web.app import Settings
        from pglog._web.server import serve
    except ImportError as exc:
        raise CommandError(
            f"pglog serve needs the 'web' extra ({exc.name} is missing): pip install 'pglog[web]'"
        ) from None
    token = args.token or os.environ.get("PGLOG_TOKEN") or None
    try:
        settings = Settings(target.dsn, target.table, token)
        return serve(settings, host=args.host, port=args.port, out=sys.stdout)
    except OSError as exc:
        raise CommandError(f"can't listen on {args.host}:{args.port}: {exc.strerror}") from None


class _Printer:
    """One line per row; colour by level on a terminal (with the ``cli`` extra), never when
    piped or when NO_COLOR is set."""

    COLOURS: ClassVar[dict[str, str]] = {
        "DEBUG": "dim",
        "WARNING": "yellow",
        "ERROR": "red",
        "CRITICAL": "bold red",
    }

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.console: Any = None
        if stream.isatty() and not os.environ.get("NO_COLOR"):
            try:
                from rich.console import Console
            except ImportError:
                return
            self.console = Console(file=stream, highlight=False, soft_wrap=True)

    def row(self, row: dict[str, Any]) -> None:
        when = row["timestamp"].astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        extra = row["extra_data"]
        tail = f"  {json.dumps(extra, ensure_ascii=False)}" if extra else ""
        text = f"{when} {row['level']:<8} {row['logger_name']}: {row['message']}{tail}"
        if row.get("exception"):
            text += "\n" + "\n".join("    " + line for line in row["exception"].splitlines())
        if self.console is None:
            print(text, file=self.stream, flush=True)
            return
        from rich.text import Text

        self.console.print(Text(text, style=self.COLOURS.get(row["level"], "")))


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def _describe_writer(report: Report) -> str:
    """One line of a writer's last report, the way an operator reads it."""
    stats = report.stats
    state = "stopped" if report.stopped else "running"
    if not report.stopped and report.age > SILENT_AFTER and not report.had_work:
        state = "gone quiet, idle when last heard of"
    seen = _age(dt.timedelta(seconds=round(report.age.total_seconds())))
    wrote = "never"
    if stats.get("last_write_age_s") is not None:
        since = dt.timedelta(seconds=round(float(stats["last_write_age_s"]))) + report.age
        wrote = f"{_age(dt.timedelta(seconds=round(since.total_seconds())))} ago"
    return (
        f"{report.hostname}:{report.process_id} {state}, reported {seen} ago:"
        f" queue {stats.get('queue_depth', 0):,}, written {stats.get('written', 0):,}"
        f" ({stats.get('rows_per_second', 0):,.1f} rows/s), batches {stats.get('batches', 0):,},"
        f" retries {stats.get('retries', 0):,}, dropped {stats.get('dropped', 0):,},"
        f" fallback {stats.get('fallback', 0):,}, spool {_size(stats.get('spool_bytes', 0))},"
        f" last write {wrote}, last error: {stats.get('last_error') or 'none'}"
    )


def _size(total: int) -> str:
    size = float(total)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{total} bytes"


def _estimate(rows: int) -> str:
    """The planner's row estimate: counting a big table would take minutes."""
    return f"about {rows:,} rows" if rows > 0 else "rows not estimated yet (no ANALYZE)"


def _age(age: dt.timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % length == 0 and seconds >= length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def _fail(message: str, code: int) -> int:
    print(f"pglog: error: {message}", file=sys.stderr)
    return code


COMMANDS = {
    "init": _init,
    "migrate": _migrate,
    "tail": _tail,
    "query": _query,
    "stats": _stats,
    "export": _export,
    "prune": _prune,
    "health": _health,
    "serve": _serve,
}
