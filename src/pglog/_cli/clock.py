"""Clock: times as the CLI shows and reads them, in one zone, always labelled.

The CLI shows times in the local zone (``TZ``, else the system's), or in UTC with
``--utc``, and says which: ``2026-11-23 10:00:01.123 CET``. A time typed without a zone
(``--until 2026-11-30T01:00``) is read in the same zone, so what is typed is what is
shown.
"""

from __future__ import annotations

import argparse
import datetime as dt


def zone_of(args: argparse.Namespace) -> dt.tzinfo | None:
    """The zone times are shown and read in: UTC, or None for the local zone."""
    return dt.timezone.utc if getattr(args, "utc", False) else None


def shown(moment: dt.datetime, zone: dt.tzinfo | None, *, precise: bool = True) -> str:
    """``moment`` in ``zone`` (None: local), with milliseconds if ``precise``, and the zone."""
    local = moment.astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if precise else f"{local:%Y-%m-%d %H:%M}"
    return f"{text} {label(local)}"


def label(moment: dt.datetime) -> str:
    """The zone's name as the clock shows it (``CET``, ``UTC``), else its offset."""
    name = moment.tzname() or ""
    if not name or name[0] in "+-":
        offset = moment.strftime("%z")
        return f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return name
