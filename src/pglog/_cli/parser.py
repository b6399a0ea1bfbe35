"""Parser: the commands and options of ``pglog``, as argparse reads them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from pglog import __version__
from pglog._table.partitions import PERIODS


def build_parser() -> argparse.ArgumentParser:
    connection = _Parser(add_help=False)
    connection.add_argument("--dsn", help="libpq connection string or URI (default: $PGLOG_DSN)")
    connection.add_argument("--config", help="the YAML configuration file (default: $PGLOG_CONFIG)")
    common = _Parser(add_help=False, parents=[connection])
    _add_table(common, "logs")

    chosen = _Parser(add_help=False)
    chosen.add_argument("--level", help="this level or worse (DEBUG, INFO, WARNING, ...)")
    chosen.add_argument("--logger", help="this logger and its children")
    chosen.add_argument(
        "--since", help="not before: 10m, 2h, 7d, or an ISO time (local if it has no zone)"
    )
    chosen.add_argument(
        "--until", help="before: 10m, 2h, 7d, or an ISO time (local if it has no zone)"
    )
    chosen.add_argument(
        "--grep", help="text in the message, the exception or extra_data (any case)"
    )
    chosen.add_argument("--request", help="the records of a request: its bound request_id")
    chosen.add_argument("--trace", help="the records of an OpenTelemetry trace: its trace id")
    chosen.add_argument("--kind", help="errors of this kind, as `pglog errors` names it")
    chosen.add_argument(
        "--utc", action="store_true", help="show and read times in UTC (default: the local zone)"
    )
    chosen.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="extra.KEY=VALUE",
        help="a condition on extra_data: extra.user_id=42, extra.http.status>=500 (repeatable)",
    )

    parser = _Parser(
        prog="pglog",
        description="Python logging into PostgreSQL: set up, read and tend the log table.",
    )
    parser.add_argument("--version", action="version", version=f"pglog {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    _add_demo(commands, connection)
    init = commands.add_parser("init", parents=[common], help="create the table and its indexes")
    init.add_argument(
        "--partition",
        choices=PERIODS,
        help="create it range-partitioned on timestamp (default: partition from the config)",
    )
    engines = init.add_mutually_exclusive_group()
    engines.add_argument(
        "--citus",
        action="store_const",
        const="citus",
        dest="engine",
        help="a Citus distributed table, by hostname (connect to the coordinator);"
        " an existing table is distributed, rows and all",
    )
    engines.add_argument(
        "--timescaledb",
        action="store_const",
        const="timescaledb",
        dest="engine",
        help="a TimescaleDB hypertable, compressed after a day, retention_days by its"
        " retention policy; an existing table is converted, rows and all",
    )
    commands.add_parser(
        "migrate", parents=[common], help="bring the table to this pglog's schema (or adopt it)"
    )
    tail = commands.add_parser("tail", parents=[common, chosen], help="the newest rows")
    tail.add_argument("-n", type=_count(0), default=20, help="how many (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing rows as they land")
    tail.add_argument("--format", choices=("text", "jsonl"), default="text")
    query = commands.add_parser("query", parents=[common, chosen], help="rows matching filters")
    query.add_argument(
        "--limit", type=_count(1), default=100, help="at most this many, the newest (default 100)"
    )
    query.add_argument("--format", choices=("text", "jsonl"), default="text")
    grouping = commands.add_parser(
        "errors",
        parents=[common, chosen],
        help="errors grouped by kind: count, first and last seen, a sample (default: last 24 h)",
    )
    grouping.add_argument("--format", choices=("text", "jsonl"), default="text")
    grouping.add_argument(
        "--limit", type=_count(1), default=50, help="kinds shown, the most frequent (default 50)"
    )

    commands.add_parser(
        "stats", parents=[common, chosen], help="rows per level, logger and hour; table size"
    )
    export = commands.add_parser("export", parents=[common, chosen], help="stream rows out")
    export.add_argument("--format", choices=("jsonl", "csv"), required=True)
    export.add_argument("--output", help="a file (default: standard output)")
    export.add_argument(
        "--raw",
        action="store_true",
        help="CSV cells exactly as stored (default: a ' before what a spreadsheet would run"
        " as a formula, control characters escaped)",
    )
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


def _add_demo(
    commands: argparse._SubParsersAction[_Parser],
    connection: _Parser,
) -> None:
    """``pglog demo``: its own table options, since its default table is not the other
    commands'."""
    demo = commands.add_parser(
        "demo",
        parents=[connection],
        help="log a realistic mix into a table and show what landed"
        " (a throwaway embedded PostgreSQL when no DSN is given)",
    )
    _add_table(demo, "pglog_demo")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="leave the embedded PostgreSQL running with the demo's rows, to try the CLI and"
        " pglog serve on (it prints the DSN and how to stop it)",
    )


def _add_table(parser: _Parser, default: str) -> None:
    """``--table`` and ``--schema``, where the table is ``default`` unless the config names
    one."""
    parser.add_argument("--table", help=f"the log table (default: from the config, else {default})")
    parser.add_argument("--schema", help="the table's schema (default: public)")


class _Parser(argparse.ArgumentParser):
    """argparse, whose mistakes are one line like every other error of pglog's."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _count(minimum: int) -> Callable[[str], int]:
    """A whole number of at least ``minimum`` (a negative count is a mistake, not zero)."""

    def read(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a count: use a whole number from {minimum}"
            )
        return number

    return read


def _port(text: str) -> int:
    """A TCP port for --port: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 0 to 65535")
    return port
