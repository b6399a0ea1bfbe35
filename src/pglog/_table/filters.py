"""Filters: the one language for choosing log rows, used by ``pglog query``, ``tail``,
``export`` and ``stats`` (and by anything else that shows rows).

A Filter is parsed from strings as people type them (``--level WARNING``,
``--since 10m``, ``--where extra.user_id=42``) and becomes a WHERE clause composed with
``psycopg.sql``: values are always parameters, never text in the query. Mistakes are
ValueErrors that say what was expected.

A level means "this one or worse" by the level's number (schema 3), so custom levels
fall where their numbers put them; rows stored before schema 3 have no number and are
compared by name, among the standard five. ``--grep`` looks in the message, the
exception and extra_data (see ``search``). A request (``--request``, the ``request_id``
bound with ``pglog.bind``) and an OpenTelemetry trace (``--trace``) are conditions on
extra_data; a condition that asks for a string also asks the search index to find it.
A time without a zone is read in the zone the caller says: the CLI's is the local one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import sql

from pglog._table import kinds, search

#: The standard levels and their numbers, in order of severity.
STANDARD = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
LEVELS = tuple(STANDARD)
#: Other names rows stored before schema 3 may carry, as logging numbers them.
_ALIASES = {"WARN": 30, "FATAL": 50}
#: The extra_data keys of a request (bound with pglog.bind) and of an OpenTelemetry trace.
REQUEST_KEY = "request_id"
TRACE_KEY = "otelTraceID"
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


class UnknownLevel(ValueError):
    """A level name that is not one of the standard five (nor a number)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown level {name!r}; use one of {', '.join(LEVELS)}, or a level's number"
        )
        self.name = name


@dataclass(frozen=True)
class Filter:
    #: This level's number or worse.
    level: int | None = None
    logger: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    grep: str | None = None
    where: tuple[Condition, ...] = field(default=())
    #: Errors of this kind (see ``kinds``).
    kind: str | None = None

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
        request: str | None = None,
        trace: str | None = None,
        kind: str | None = None,
        now: dt.datetime | None = None,
        zone: dt.tzinfo | None = dt.timezone.utc,
        levels: dict[str, int] | None = None,
    ) -> Filter:
        """``zone``: where a time without one is read (None: the local zone); ``levels``:
        level names besides the standard ones, with their numbers."""
        now = now or dt.datetime.now(dt.timezone.utc)
        conditions = [parse_condition(text) for text in where]
        for key, value in ((REQUEST_KEY, request), (TRACE_KEY, trace)):
            if value:
                conditions.append(Condition((key,), "=", json.dumps(value.strip())))
        chosen = cls(
            level=parse_level(level, levels) if level else None,
            logger=logger or None,
            since=parse_time(since, now, zone) if since else None,
            until=parse_time(until, now, zone) if until else None,
            grep=grep or None,
            where=tuple(conditions),
            kind=kind or None,
        )
        if chosen.since is not None and chosen.until is not None and chosen.since >= chosen.until:
            raise ValueError(
                f"the time range is empty: since ({chosen.since.isoformat()}) is not before"
                f" until ({chosen.until.isoformat()})"
            )
        return chosen

    @property
    def searches(self) -> bool:
        """Whether the search index can find the rows (a text, or a string of extra_data)."""
        return self.grep is not None or any(_hinted(c) is not None for c in self.where)

    def untimed_clause(self) -> tuple[sql.Composable, dict[str, Any]]:
        """``clause`` but for the time range: for a query that bounds time its own way (a
        walk down the timestamp index, a window, a slice of a bar)."""
        return replace(self, since=None, until=None).clause()

    def clause(self) -> tuple[sql.Composable, dict[str, Any]]:
        """The WHERE clause (without the word) and its parameters."""
        parts: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if self.level is not None:
            parts.append(
                sql.SQL("(levelno >= %(level)s OR (levelno IS NULL AND level = ANY(%(levels)s)))")
            )
            params["level"] = self.level
            params["levels"] = [
                name for name, number in {**STANDARD, **_ALIASES}.items() if number >= self.level
            ]
        if self.logger:  # the logger and its children, as logging's hierarchy has it
            parts.append(
                sql.SQL("(logger_name = %(logger)s OR logger_name LIKE %(logger_children)s)")
            )
            params["logger"] = self.logger
            params["logger_children"] = search.like_escape(self.logger) + ".%"
        if self.since:
            parts.append(sql.SQL('"timestamp" >= %(since)s'))
            params["since"] = self.since
        if self.until:
            parts.append(sql.SQL('"timestamp" < %(until)s'))
            params["until"] = self.until
        if self.grep:
            parts.append(search.matches("grep"))
            params["grep"] = search.pattern(self.grep)
        for i, condition in enumerate(self.where):
            parts.append(_condition_sql(condition, f"w{i}", params))
        if self.kind:
            parts.append(kinds.of_kind("kind"))
            params["kind"] = self.kind
        if not parts:
            return sql.SQL("TRUE"), params
        return sql.SQL(" AND ").join(parts), params


def parse_level(text: str, known: dict[str, int] | None = None) -> int:
    """The number of a level: a standard name (or WARN, FATAL), one of ``known``, or a
    number; UnknownLevel otherwise."""
    name = text.strip().upper()
    if name.isdigit() and len(name) <= 9:
        return int(name)
    number = {**_ALIASES, **STANDARD, **(known or {})}.get(name)
    if number is None:
        raise UnknownLevel(text)
    return number


def parse_time(
    text: str, now: dt.datetime, zone: dt.tzinfo | None = dt.timezone.utc
) -> dt.datetime:
    """``10m``, ``2h``, ``7d`` (that long ago), or an ISO date or timestamp (read in ``zone``
    if it has none; None: the local zone), from EARLIEST to before LATEST."""
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
            try:
                moment = moment.astimezone() if zone is None else moment.replace(tzinfo=zone)
            except (OverflowError, OSError, ValueError):  # beyond what the local rules cover
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
    """``extra.a.b<op><value>``. A value in double quotes is that string (JSON's escapes
    apply), whatever it looks like; an unquoted one may not start with an operator's
    character (``extra.status>>5`` is a typo, not "greater than '>5'")."""
    match = _PATH.match(text.strip())
    if not match:
        raise ValueError(
            f"can't read the condition {text!r}: write extra.<key>[.<key>...]<op><value>,"
            " with <op> one of = != > >= < <= ~ (e.g. extra.user_id=42, extra.http.status>=500)"
        )
    path = tuple(match.group(1).strip(".").split("."))
    operator, value = match.group(2), match.group(3).strip()
    if not value:
        raise ValueError(
            f"the condition {text!r} has no value: write one after {operator}"
            ' ("" for the empty string)'
        )
    if value[0] in "=<>!~":
        raise ValueError(
            f"can't read the condition {text!r}: the value {value!r} starts with an operator"
            f'; quote it to mean that text (extra.{".".join(path)}{operator}"{value}")'
        )
    if value.startswith('"'):
        try:
            quoted = json.loads(value)
        except ValueError:
            quoted = None
        if not isinstance(quoted, str):
            raise ValueError(
                f"can't read the condition {text!r}: {value} is not a quoted string"
                ' (end it with ", and write \\" for a quote inside)'
            )
        if operator not in ("=", "!="):
            value = quoted  # a pattern or a bound, compared as text
    return Condition(path, operator, value)


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
        compared = sql.SQL("{} {} %({})s::jsonb").format(target, sql.SQL(comparison), sql.SQL(name))
        hint = _hinted(condition)
        if hint is not None:  # the search index finds the rows that hold the string
            params[f"{name}_text"] = search.pattern(hint)
            return sql.SQL("({} AND {})").format(compared, search.matches(f"{name}_text"))
        return compared
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


def _hinted(condition: Condition) -> str | None:
    """For ``extra.k="a string"``: the string's JSON, which extra_data's text then holds
    (when JSON writes the string as it is, and it is long enough for trigrams)."""
    if condition.operator != "=":
        return None
    wanted = json.loads(_json_value(condition.value))
    if isinstance(wanted, str) and len(wanted) >= 3 and search.in_json_text(wanted):
        return json.dumps(wanted, ensure_ascii=False)
    return None


def _json_value(text: str) -> str:
    """What the user typed, as JSON: a JSON literal if it is one (42, true, null, "x"),
    else the string."""
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text)
    return text
