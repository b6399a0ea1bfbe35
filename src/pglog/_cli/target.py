"""Target: where the table is (the options, else the YAML), and the filters given."""

from __future__ import annotations

import argparse
import os

import psycopg

from pglog._cli.clock import zone_of
from pglog._config import Config, load_config
from pglog._table.connection import Connection, resolve_dsn
from pglog._table.filters import Filter, UnknownLevel
from pglog._table.reader import level_number
from pglog._table.schema import TableName


class CommandError(Exception):
    """A failure to report in one line."""


class Target:
    """Where the table is: the DSN and name from the options, else the config."""

    def __init__(self, dsn: str, table: TableName, config: Config) -> None:
        self.dsn, self.table, self.config = dsn, table, config

    @classmethod
    def resolve(cls, args: argparse.Namespace) -> Target:
        config = load_config(args.config or os.environ.get("PGLOG_CONFIG") or None)
        dsn = resolve_dsn(args.dsn or config.destination.dsn)
        table = TableName(args.schema or config.schema, args.table or config.table)
        return cls(dsn, table, config)

    def connect(self) -> Connection:
        return psycopg.connect(self.dsn, connect_timeout=10, application_name="pglog-cli")


def chosen_rows(
    args: argparse.Namespace,
    conn: Connection,
    target: Target,
    *,
    default_since: str | None = None,
) -> Filter:
    """The rows the options choose; a time without a zone is read in the CLI's (see
    ``clock``); a level name beyond the standard five is looked up in the table."""

    def parse(levels: dict[str, int] | None = None) -> Filter:
        return Filter.parse(
            level=args.level,
            logger=args.logger,
            since=args.since or default_since,
            until=args.until,
            grep=args.grep,
            where=args.where,
            request=getattr(args, "request", None),
            trace=getattr(args, "trace", None),
            kind=getattr(args, "kind", None),
            zone=zone_of(args),
            levels=levels,
        )

    try:
        return parse()
    except UnknownLevel as unknown:
        number = level_number(conn, target.table, unknown.name.strip().upper())
        if number is None:
            raise ValueError(f"{unknown} (no row of {target.table} has that level)") from None
        return parse({unknown.name.strip().upper(): number})
