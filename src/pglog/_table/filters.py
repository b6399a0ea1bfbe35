"""Filters: the one language for choosing log rows, used by ``pglog query``, ``tail``,
``export`` and ``stats`` (and by anything else that shows rows).

A Filter is parsed from strings as people type them (``--level WARNING``,
``--since 10m``, ``--where extra.user_id=42``) and becomes a WHERE clause composed with
``psycopg.sql``: values are always parameters, never text in the query. Mistakes are
ValueErrors that say what was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

#: Level names in order of severity; a level filter means "this one or worse".
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_PATH = re.compile(r"^extra((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)\s*(=|!=|>=|<=|>|<|~)\s*(.*)$")
#: The times a filter may name. Rows outside these years are typos, and both bounds leave
#: room for arithmetic before Python's datetime runs out (at the years 1 and 9999).
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)
#: The longest duration: longer ones reach back before EARLIEST anyway.
MAX_DURATION = dt.timedelta(days=1000 * 365)


@dataclass(frozen=True)
class Condition:
    """``extra.a.b <op> value`` on ``extra_data``."""

    path: tuple[str, ...]
    operator: str
    value: str


@dataclass(frozen=True)
class Filter:
    level: str | None = None
    logger: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    grep: str | None = None
    where: tuple[Condition, ...] = field(default=())

    @classmethod
    def parse(
        cls,
        *,
        level: str | None = None,
        logger: str | None = None,
        since: str | None = None,
        until: str | None = None,
        grep: str | None = None,
        where: Sequence[str] = (),
        now: dt.datetime | None = None,
    ) -> Filter:
        now = now or dt.datetime.now(dt.timezone.utc)
        return cls(
            level=parse_level(level) if level else None,
            logger=logger or None,
            since=parse_time(since, now) if since else None,
            until=parse_time(until, now) if until else None,
            grep=grep or None,
            where=tuple(parse_condition(text) for text in where),
        )

    def clause(self) -> tuple[sql.Composable, dict[str, Any]]:
        """The WHERE clause (without the word) and its parameters."""
        parts: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if self.level:
            parts.append(sql.SQL("level = ANY(%(levels)s)"))
            params["levels"] = list(LEVELS[LEVELS.index(self.level) :])
        if self.logger:  # the logger and its children, as logging's hierarchy has it
            parts.append(
                sql.SQL("(logger_name = %(logger)s OR logger_name LIKE %(logger_children)s)")
            )
            params["logger"] = self.logger
            params["logger_children"] = _like_escape(self.logger) + ".%"
        if self.since:
            parts.append(sql.SQL('"timestamp" >= %(since)s'))
            params["since"] = self.since
        if self.until:
            parts.append(sql.SQL('"timestamp" < %(until)s'))
            params["until"] = self.until
        if self.grep:
            parts.append(sql.SQL("message ILIKE %(grep)s"))
            params["grep"] = "%" + _like_escape(self.grep) + "%"
        for i, condition in enumerate(self.where):
            parts.append(_condition_sql(condition, f"w{i}", params))
        if not parts:
            return sql.SQL("TRUE"), params
        return sql.SQL(" AND ").join(parts), params


def parse_level(text: str) -> str:
    name = text.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise ValueError(f"unknown level {text!r}; use one of {', '.join(LEVELS)}")
    return name


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    """``10m``, ``2h``, ``7d`` (that long ago), or an ISO date or timestamp (UTC if no zone),
    from EARLIEST to before LATEST."""
    match = _DURATION.match(text)
    if match:
        moment = now - _duration(match, text)
    else:
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"can't read {text!r} as a time: use a duration (30s, 10m, 2h, 7d)"
                " or an ISO date or timestamp (2026-11-23, 2026-11-23T10:00:00+01:00)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(
            f"{text!r} is out of range: use a time from {EARLIEST.year} to {LATEST.year - 1}"
        )
    return moment


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``: a length of time, MAX_DURATION at most."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"can't read {text!r} as a duration: use 30s, 10m, 12h, 30d or 2w")
    return _duration(match, text)


def _duration(match: re.Match[str], text: str) -> dt.timedelta:
    seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds > MAX_DURATION.total_seconds():  # also inf, from a number with 400 digits
        raise ValueError(f"{text!r} is too long: {MAX_DURATION.days // 365} years at most")
    return dt.timedelta(seconds=seconds)


def parse_condition(text: str) -> Condition:
    match = _PATH.match(text.strip())
    if not match:
        raise ValueError(
            f"can't read the condition {text!r}: write extra.<key>[.<key>...]<op><value>,"
            " with <op> one of = != > >= < <= ~ (e.g. extra.user_id=42, extra.http.status>=500)"
        )
    path = tuple(match.group(1).strip(".").split("."))
    return Condition(path, match.group(2), match.group(3).strip())


def _condition_sql(condition: Condition, name: str, params: dict[str, Any]) -> sql.Composable:
    """``=`` and ``!=`` compare JSON values (42 matches the number, "42" the string);
    ordering compares numbers when the value is one, else text; ``~`` matches a regex."""
    params[f"{name}_path"] = list(condition.path)
    target = sql.SQL("extra_data #> %({})s").format(sql.SQL(f"{name}_path"))
    text_target = sql.SQL("extra_data #>> %({})s").format(sql.SQL(f"{name}_path"))
    value = condition.value
    if condition.operator in ("=", "!="):
        params[name] = _json_value(value)
        comparison = "=" if condition.operator == "=" else "IS DISTINCT FROM"
        return sql.SQL("{} {} %({})s::jsonb").format(target, sql.SQL(comparison), sql.SQL(name))
    if condition.operator == "~":
        params[name] = value
        return sql.SQL("{} ~ %({})s").format(text_target, sql.SQL(name))
    operator = sql.SQL(condition.operator)
    try:
        params[name] = float(value)
    except ValueError:
        params[name] = value
        return sql.SQL("{} {} %({})s").format(text_target, operator, sql.SQL(name))
    return sql.SQL("(jsonb_typeof({}) = 'number' AND ({})::numeric {} %({})s)").format(
        target, target, operator, sql.SQL(name)
    )


def _json_value(text: str) -> str:
    """What the user typed, as JSON: a JSON literal if it is one (42, true, null, "x"),
    else the string."""
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text)
    return text


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
