"""Parameters: a request's query string, read strictly into a filter and the page's options.

The names are ``pglog query``'s options (``level``, ``logger``, ``since``, ``until``,
``grep``, ``where``, repeatable) and their values are read by :mod:`pglog._table.filters`, so
a link to the page says what the command line would. Every query is bounded in time:
``since`` defaults to an hour ago and a range may not be longer than ``MAX_RANGE``.
Anything wrong is a :class:`BadRequest` whose message says what to write instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from pglog._table.filters import Filter, parse_duration
from pglog._web.queries import ROW_IDS, Cursor

FILTER_NAMES = ("level", "logger", "since", "until", "grep", "where", "request", "trace", "kind")
DEFAULT_SINCE = "1h"
#: The longest time range a request may ask for.
MAX_RANGE = dt.timedelta(days=31)
#: Rows a page may ask for, at most.
MAX_LIMIT = 500
#: The longest value any parameter may have, and the most conditions on extra_data.
MAX_VALUE, MAX_CONDITIONS = 1000, 10


class BadRequest(Exception):
    """A request the page can't answer; the message says why, for people."""


Query = Mapping[str, Sequence[str]]


def read_filter(query: Query, now: dt.datetime, *, extra: Collection[str] = ()) -> Filter:
    """The filter the query string asks for, with both ends of its time range set.

    ``extra``: the other parameter names the endpoint takes; any other name is an error,
    so a typo (``levle=ERROR``) is not silently ignored.
    """
    unknown = sorted(set(query) - set(FILTER_NAMES) - set(extra))
    if unknown:
        raise BadRequest(
            f"unknown parameter {unknown[0]!r}; the filters are {', '.join(FILTER_NAMES)}"
        )
    for name, values in query.items():
        if name != "where" and len(values) > 1:
            raise BadRequest(f"{name} is given {len(values)} times; give it once")
        if any(len(value) > MAX_VALUE for value in values):
            raise BadRequest(f"{name} is longer than {MAX_VALUE} characters")
    conditions = query.get("where", ())
    if len(conditions) > MAX_CONDITIONS:
        raise BadRequest(f"{len(conditions)} where conditions; {MAX_CONDITIONS} at most")
    try:
        where = Filter.parse(
            level=_one(query, "level"),
            logger=_one(query, "logger"),
            since=_one(query, "since") or DEFAULT_SINCE,
            until=_one(query, "until"),
            grep=_one(query, "grep"),
            where=[condition for condition in conditions if condition.strip()],
            request=_one(query, "request"),
            trace=_one(query, "trace"),
            kind=_one(query, "kind"),
            now=now,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    since, until = where.since or now, where.until or now
    if since >= until:
        raise BadRequest(
            f"the time range is empty: since ({since.isoformat()}) is not before until"
            f" ({until.isoformat()})"
        )
    if until - since > MAX_RANGE:
        raise BadRequest(
            f"the time range is {_days(until - since)} long; {MAX_RANGE.days} days at most:"
            " narrow since/until"
        )
    return replace(where, since=since, until=until)


def read_limit(query: Query, default: int) -> int:
    text = _one(query, "limit")
    if text is None:
        return default
    try:
        limit = int(text)
    except ValueError:
        raise BadRequest(f"limit must be a whole number, not {text!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit


def read_cursor(query: Query) -> Cursor | None:
    text = _one(query, "before")
    if not text:
        return None
    try:
        return Cursor.parse(text)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def read_id(query: Query, name: str = "id", what: str = "the id of a row") -> int:
    """A row id, required."""
    text = _one(query, name)
    if text is None:
        raise BadRequest(f"{name} is missing: {what}")
    try:
        number = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a row id, not {text!r}") from None
    if number not in ROW_IDS:
        raise BadRequest(f"{name} must be a row id (a bigint), not {text!r}")
    return number


def read_choice(query: Query, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (the first by default)."""
    text = _one(query, name) or choices[0]
    if text not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, not {text!r}")
    return text


def read_window(query: Query, default: dt.timedelta, longest: dt.timedelta) -> dt.timedelta:
    """``window``: a duration (30s, 5m, 1h), ``longest`` at most."""
    text = _one(query, "window")
    if text is None:
        return default
    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if not dt.timedelta(0) < window <= longest:
        raise BadRequest(f"window must be more than 0 and at most {_days(longest)}")
    return window


def read_after(query: Query) -> int:
    return read_id(query, "after", "the id of the newest row the page has seen")


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[0].strip() or None if values else None


def _days(span: dt.timedelta) -> str:
    days = span / dt.timedelta(days=1)
    return f"{days:,.0f} days" if days >= 2 else f"{span.total_seconds() / 3600:,.0f} hours"
