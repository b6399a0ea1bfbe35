"""CLI: ``pglog <command>``. Every failure is one actionable line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import psycopg

from pglog import __version__
from pglog.config import ConfigError, load_config
from pglog.connection import describe, redact, resolve_dsn
from pglog.embedded import EmbeddedUnavailable
from pglog.schema import TableName, ensure_table

EXIT_ERROR = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure to report in one line."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", help="libpq connection string or URI (default: $PGLOG_DSN)")
    common.add_argument("--config", help="the YAML configuration file (default: $PGLOG_CONFIG)")
    common.add_argument("--table", help="the log table (default: from the config, else logs)")
    common.add_argument("--schema", help="the table's schema (default: public)")

    parser = argparse.ArgumentParser(
        prog="pglog",
        description="Python logging into PostgreSQL: set up, look at and tend the log table.",
    )
    parser.add_argument("--version", action="version", version=f"pglog {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser(
        "demo",
        parents=[common],
        help="log a realistic mix into a table and show what landed"
        " (a throwaway embedded PostgreSQL when no DSN is given)",
    )
    commands.add_parser("init", parents=[common], help="create the table and its indexes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dsn_for_errors = args.dsn or ""
    try:
        if args.command == "demo":
            from pglog.demo import run_demo

            return run_demo(
                dsn=args.dsn,
                config_path=args.config,
                table=args.table,
                schema=args.schema,
                out=sys.stdout,
            )
        if args.command == "init":
            return _init(args)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (CommandError, EmbeddedUnavailable) as exc:
        return _fail(str(exc), EXIT_ERROR)
    except psycopg.Error as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        return _fail(f"database error: {redact(message, dsn_for_errors)}", EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")  # argparse allows no others


def _init(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    dsn = resolve_dsn(args.dsn or config.connection.dsn)
    table = TableName(args.schema or config.schema, args.table or config.table)
    with psycopg.connect(dsn, autocommit=False, connect_timeout=10) as conn:
        created = ensure_table(conn, table)
    print(f"{'created' if created else 'already there:'} {table} at {describe(dsn)}")
    return 0


def _fail(message: str, code: int) -> int:
    print(f"pglog: error: {message}", file=sys.stderr)
    return code
