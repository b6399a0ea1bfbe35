"""Tending: the commands that look after the table: init, migrate, stats, prune, health, serve."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

import psycopg

from pglog._cli.clock import shown, zone_of
from pglog._cli.output import age_text, describe_writer, estimate_text, size_text
from pglog._cli.target import CommandError, Target, chosen_rows
from pglog._options import conflict
from pglog._table import migrate as migrations
from pglog._table import reader, retention
from pglog._table.connection import describe, redact
from pglog._table.filters import parse_duration
from pglog._table.reports import Report, recent
from pglog._text import for_terminal

#: pglog health: exit codes a monitor can tell apart.
HEALTH_UNREACHABLE, HEALTH_SCHEMA, HEALTH_STALE, HEALTH_WRITER = 1, 2, 3, 4
#: pglog health lists the writers that reported within this long, this many at most.
WRITERS_SHOWN = dt.timedelta(hours=1)
WRITERS_LISTED = 20


def init(args: argparse.Namespace, target: Target) -> int:
    settings = target.config.database
    partition = args.partition or settings.partition
    engine = args.engine or settings.engine
    clash = conflict({"partition": partition, "engine": engine})
    if clash is not None:
        raise CommandError(clash[1])
    with target.connect() as conn:
        steps = migrations.migrate(
            conn,
            target.table,
            build_indexes=False,
            partition=partition,
            engine=engine,
            convert=True,
        )
        if engine == "timescaledb" and settings.retention_days is not None:
            retention.keep(conn, target.table, settings.retention_days)
            steps.append(f"retention: chunks older than {settings.retention_days} days dropped")
    shown = [step for step in steps[1:] if step.startswith((str(target.table), "retention"))]
    print(steps[0] if steps else f"already there: {target.table} at {describe(target.dsn)}")
    for step in shown:
        print(step)
    return 0


def migrate(args: argparse.Namespace, target: Target) -> int:
    with target.connect() as conn:
        steps = migrations.migrate(conn, target.table, build_indexes=True, create=False)
    for step in steps or [f"{target.table} is up to date"]:
        print(step)
    return 0


def stats(args: argparse.Namespace, target: Target) -> int:
    with target.connect() as conn:
        found = reader.stats(conn, target.table, chosen_rows(args, conn, target))
    print(f"{target.table}: {size_text(found.total_bytes)}, {estimate_text(found.estimated_rows)}")
    print("\nrows per level:")
    for level, count in found.by_level:
        print(f"  {for_terminal(level):<10}{count:>12,}")
    print("\nrows per logger (the busiest):")
    for name, count in found.by_logger:
        print(f"  {for_terminal(name):<40}{count:>12,}")
    print("\nrows per hour (the latest):")
    for hour, count in found.by_hour:
        print(f"  {shown(hour, zone_of(args), precise=False)}  {count:>12,}")
    return 0


def prune(args: argparse.Namespace, target: Target) -> int:
    if args.older_than:
        age = parse_duration(args.older_than)
    elif target.config.database.retention_days:
        age = dt.timedelta(days=target.config.database.retention_days)
    else:
        raise CommandError("give --older-than (30d, 12h, ...) or retention_days in the config")
    with target.connect() as conn:
        done = retention.prune(conn, target.table, age)
    kind = "chunks" if any("_hyper_" in name for name in done.partitions) else "partitions"
    dropped = f"dropped {len(done.partitions)} {kind} and " if done.partitions else ""
    print(f"{dropped}deleted {done.rows:,} rows older than {age_text(age)} from {target.table}")
    return 0


def health(args: argparse.Namespace, target: Target) -> int:
    reports: list[Report] | None = None
    unreadable = None
    try:
        with target.connect() as conn:
            found = reader.health(conn, target.table)
            if found.exists:
                try:
                    reports = recent(conn, target.table, WRITERS_SHOWN)
                except psycopg.errors.InsufficientPrivilege as exc:
                    unreadable = " ".join(str(exc).split())
    except psycopg.OperationalError as exc:
        found = reader.Health(connected=False, error=redact(" ".join(str(exc).split()), target.dsn))
    max_age = parse_duration(args.max_age) if args.max_age else None
    reachable = "reachable" if found.connected else "unreachable"
    print(f"database: {describe(target.dsn)} ({reachable})")
    if found.connected:
        print(f"table: {target.table} ({'exists' if found.exists else 'missing'})")
    if found.exists:
        print(f"schema version: {found.schema_version or 'unmarked'}")
        print(f"size: {size_text(found.total_bytes)}, {estimate_text(found.estimated_rows)}")
        print(f"newest row: {shown(found.newest, None) if found.newest else 'none'}")
        if found.missing_indexes:
            print(
                f"indexes missing: {', '.join(found.missing_indexes)}"
                " (pglog migrate builds them, without blocking writers)"
            )
    if unreadable is not None:
        print(f"writers: not readable ({for_terminal(unreadable)}; GRANT SELECT ON pglog_writers)")
    if reports is not None:
        print(f"writers reporting in the last {age_text(WRITERS_SHOWN)}: {len(reports)}")
        for report in reports[:WRITERS_LISTED]:
            print(f"  {describe_writer(report)}")
        if len(reports) > WRITERS_LISTED:
            print(f"  ... and {len(reports) - WRITERS_LISTED} more (see pglog_writers)")
    for problem in found.problems:
        print(f"unhealthy: {for_terminal(problem)}")
    if not found.connected:
        return HEALTH_UNREACHABLE
    if found.problems:
        return HEALTH_SCHEMA
    troubled = [report.problem for report in reports or () if report.problem]
    for problem in troubled:
        print(f"unhealthy: {for_terminal(problem)}")
    if troubled:
        return HEALTH_WRITER
    if max_age is not None:
        now = dt.datetime.now(dt.timezone.utc)
        if found.newest is None or now - found.newest > max_age:
            print(f"unhealthy: no row in the last {age_text(max_age)}")
            return HEALTH_STALE
    print("healthy")
    return 0


def serve(args: argparse.Namespace, target: Target) -> int:
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
