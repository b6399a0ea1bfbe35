"""CLI: ``pglog <command>``. Every failure is one actionable line on stderr and a non-zero exit.

Modules, in reading order:

- ``parser``: the commands and their options
- ``target``: where the table is, and the rows chosen
- ``reading``: tail, query, export
- ``errors``: errors, grouped by kind
- ``tending``: init, migrate, stats, prune, health, serve
- ``output``: rows and figures as people read them; ``clock``: times, in one zone
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO, cast

import psycopg

from pglog._cli import errors, reading, tending
from pglog._cli.parser import build_parser
from pglog._cli.target import CommandError, Target
from pglog._config import ConfigError
from pglog._embedded import EmbeddedUnavailable
from pglog._table.connection import describe, error_line
from pglog._table.migrate import SchemaError
from pglog._text import TerminalSafe, for_terminal

EXIT_ERROR = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    with _terminal_safe():
        return _run(argv)


@contextlib.contextmanager
def _terminal_safe() -> Iterator[None]:
    """Everything a command prints, and argparse's messages, reaches the terminal (or the
    pipe) through ``TerminalSafe``: a log line must never rewrite its reader's terminal."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, TerminalSafe(stdout))
    sys.stderr = cast(TextIO, TerminalSafe(stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    dsn_for_errors = args.dsn or os.environ.get("PGLOG_DSN", "")
    try:
        if args.command == "demo":
            from pglog._demo import run_demo

            return run_demo(args, sys.stdout)
        target = Target.resolve(args)
        dsn_for_errors = target.dsn
        try:
            return COMMANDS[args.command](args, target)
        except psycopg.errors.UndefinedTable:
            raise CommandError(
                f"{target.table} does not exist at {describe(target.dsn)}:"
                " `pglog init` creates it, or give --table/--schema"
            ) from None
        except psycopg.errors.UndefinedColumn:
            raise CommandError(
                f"{target.table} is older than this pglog's schema: `pglog migrate` brings it"
                " there (it adds columns, without rewriting the table)"
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


def _fail(message: str, code: int) -> int:
    print(f"pglog: error: {for_terminal(message)}", file=sys.stderr)
    return code


COMMANDS: dict[str, Callable[[argparse.Namespace, Target], int]] = {
    "init": tending.init,
    "migrate": tending.migrate,
    "tail": reading.tail,
    "query": reading.query,
    "errors": errors.errors,
    "stats": tending.stats,
    "export": reading.export,
    "prune": tending.prune,
    "health": tending.health,
    "serve": tending.serve,
}
