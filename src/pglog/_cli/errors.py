"""Errors: ``pglog errors``, the range's errors grouped by kind (see ``_table.errors``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import replace

from pglog._cli.clock import shown, zone_of
from pglog._cli.target import Target, chosen_rows
from pglog._table.errors import errors as grouped

#: The range when none is given.
DEFAULT_SINCE = "24h"
_BARS = " ▁▂▃▄▅▆▇█"


def errors(args: argparse.Namespace, target: Target) -> int:
    with target.connect() as conn:
        where = chosen_rows(args, conn, target, default_since=DEFAULT_SINCE)
        until = where.until or dt.datetime.now(dt.timezone.utc)
        found = grouped(conn, target.table, replace(where, until=until), limit=args.limit)
    if args.format == "jsonl":
        for group in found.groups:
            print(json.dumps(group.as_json(), ensure_ascii=False))
        if found.more:
            print(f"pglog: {found.more} more kinds (--limit shows more)", file=sys.stderr)
        return 0
    zone = zone_of(args)
    kinds = len(found.groups) + found.more
    start, end = (shown(moment, zone, precise=False) for moment in (found.since, found.until))
    print(f"{target.table}: {found.records:,} error records of {kinds:,} kinds, {start} to {end}")
    if not found.groups:
        return 0
    trend = f"trend, {_span(found.step)} a mark"
    print(f"\n{'count':>7}  {'last seen':<27}  {trend:<{len(found.groups[0].trend)}}  kind")
    for group in found.groups:
        mark = "  NEW" if group.new else ""
        print(
            f"{group.count:>7,}  {shown(group.last_seen, zone):<27}  {_sparkline(group.trend)}"
            f"  {group.kind}{mark}"
        )
        first_line = group.message.splitlines()[0] if group.message else ""
        detail = f"{group.level} {group.logger}: {first_line}"
        if group.error and group.error not in detail:
            detail += f"  | {group.error}"
        first = shown(group.first_seen, zone)
        print(f"{'':>7}  first seen {first}, e.g. id {group.sample_id}: {detail}")
    if found.more:
        print(f"\n... and {found.more:,} more kinds (--limit shows more)")
    return 0


def _sparkline(counts: list[int]) -> str:
    top = max(counts) or 1
    return "".join(_BARS[0] if not n else _BARS[max(1, round(n / top * 8))] for n in counts)


def _span(step: dt.timedelta) -> str:
    seconds = step.total_seconds()
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:g} {unit}"
    return f"{seconds:g} s"
