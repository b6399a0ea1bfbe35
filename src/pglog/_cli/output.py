"""Output: rows and figures as people read them."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, ClassVar, TextIO

from pglog._cli.clock import shown
from pglog._table.reports import SILENT_AFTER, Report
from pglog._text import for_terminal, json_line, underlying


class Printer:
    """One line per row, its time in ``zone`` (None: local) and labelled; colour by level on
    a terminal (with the ``cli`` extra), never when piped or when NO_COLOR is set. Every
    field is escaped for the terminal (a row's traceback keeps its lines, nothing else has
    any), and rich is given text, never markup: a message's ``[bold]`` is shown as written."""

    COLOURS: ClassVar[dict[str, str]] = {
        "DEBUG": "dim",
        "WARNING": "yellow",
        "ERROR": "red",
        "CRITICAL": "bold red",
    }

    def __init__(self, stream: TextIO, zone: dt.tzinfo | None = None) -> None:
        self.stream = stream
        self.zone = zone
        self.console: Any = None
        if stream.isatty() and not os.environ.get("NO_COLOR"):
            try:
                from rich.console import Console
            except ImportError:
                return
            self.console = Console(file=underlying(stream), highlight=False, soft_wrap=True)

    def row(self, row: dict[str, Any]) -> None:
        when = shown(row["timestamp"], self.zone)
        extra = row["extra_data"]
        tail = f"  {json_line(extra)}" if extra else ""
        level, name, message = (
            for_terminal(row[key]) for key in ("level", "logger_name", "message")
        )
        text = f"{when} {level:<8} {name}: {message}{tail}"
        if row.get("exception"):
            lines = for_terminal(row["exception"].rstrip("\n"), lines=True).split("\n")
            text += "\n" + "\n".join("    " + line for line in lines)
        if self.console is None:
            print(text, file=self.stream, flush=True)
            return
        from rich.text import Text

        self.console.print(Text(text, style=self.COLOURS.get(row["level"], "")))


def json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def describe_writer(report: Report) -> str:
    """One line of a writer's last report, the way an operator reads it."""
    stats = report.stats
    state = "stopped" if report.stopped else "running"
    if not report.stopped and report.age > SILENT_AFTER and not report.had_work:
        state = "gone quiet, idle when last heard of"
    seen = age_text(dt.timedelta(seconds=round(report.age.total_seconds())))
    wrote = "never"
    if stats.get("last_write_age_s") is not None:
        since = dt.timedelta(seconds=round(float(stats["last_write_age_s"]))) + report.age
        wrote = f"{age_text(dt.timedelta(seconds=round(since.total_seconds())))} ago"
    return for_terminal(
        f"{report.hostname}:{report.process_id} {state}, reported {seen} ago:"
        f" queue {stats.get('queue_depth', 0):,}, written {stats.get('written', 0):,}"
        f" ({stats.get('rows_per_second', 0):,.1f} rows/s), batches {stats.get('batches', 0):,},"
        f" retries {stats.get('retries', 0):,}, dropped {stats.get('dropped', 0):,},"
        f" fallback {stats.get('fallback', 0):,}, spool {size_text(stats.get('spool_bytes', 0))},"
        f" last write {wrote}{_trouble(stats)}"
    )


def _trouble(stats: dict[str, Any]) -> str:
    """The writer's last error while it is failing; once it wrote again, that it recovered."""
    error = stats.get("last_error")
    if stats.get("failing_for_s") is not None:
        return f", failing: {error or 'no error recorded'}"
    return ", recovered from earlier errors" if error else ", no errors"


def size_text(total: int) -> str:
    size = float(total)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{total} bytes"


def estimate_text(rows: int) -> str:
    """The planner's row estimate: counting a big table would take minutes."""
    return f"about {rows:,} rows" if rows > 0 else "rows not estimated yet (no ANALYZE)"


def age_text(age: dt.timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % length == 0 and seconds >= length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"
