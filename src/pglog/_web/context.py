"""Context: the records around one, for its permalink and for "records around this one".

A record is shown with what was logged near it: by the same process (host and process
id), or in the same request (its ``request_id``), or anything at all, within a window
of time each side of it. Each side walks the timestamp index from the record outwards
and stops after ``SIDE`` rows, so the work is bounded however busy the table is.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql
from psycopg.rows import dict_row

from pglog._table.connection import Connection
from pglog._table.filters import REQUEST_KEY, Filter
from pglog._table.schema import TableName
from pglog._web.queries import COLUMNS

Around = Literal["process", "request", "all"]
AROUND: tuple[Around, ...] = ("process", "request", "all")
#: Rows each side of the record, at most.
SIDE = 50
#: The window each side of the record, by default and at most.
WINDOW = dt.timedelta(minutes=5)
MAX_WINDOW = dt.timedelta(days=1)


@dataclass
class Context:
    #: The record, or None if there is no row with that id.
    record: dict[str, Any] | None
    #: What was logged near it, oldest first, the record among them.
    rows: list[dict[str, Any]]
    around: Around
    window: dt.timedelta
    #: A side stopped at SIDE rows: there are more in the window.
    cut: bool


def context(
    conn: Connection,
    table: TableName,
    record_id: int,
    *,
    around: Around = "process",
    window: dt.timedelta = WINDOW,
    side: int = SIDE,
) -> Context:
    """The record ``record_id`` and the rows near it, as ``around`` chooses them."""
    query = sql.SQL("SELECT {} FROM {} WHERE id = %s").format(COLUMNS, table.identifier)
    with conn.cursor(row_factory=dict_row) as cur:
        record = cur.execute(query, (record_id,)).fetchone()
    if record is None:
        return Context(None, [], around, window, cut=False)
    near = _near(record, around)
    moment = record["timestamp"]
    walk = {"moment": moment, "record_id": record_id, "window": window, "side": side}
    before = _side(conn, table, near, older=True, **walk)
    after = _side(conn, table, near, older=False, **walk)
    cut = side in (len(before), len(after))
    return Context(record, [*reversed(before), record, *after], around, window, cut)


def _near(record: dict[str, Any], around: Around) -> tuple[sql.Composable, dict[str, Any]]:
    """The condition "logged by the same process" (or request, or anything)."""
    if around == "process":
        return (
            sql.SQL(
                "hostname IS NOT DISTINCT FROM %(host)s AND process_id IS NOT DISTINCT FROM %(pid)s"
            ),
            {"host": record["hostname"], "pid": record["process_id"]},
        )
    if around == "request":
        request = _request_of(record)
        if request is None:
            return sql.SQL("FALSE"), {}
        return Filter.parse(request=request).clause()
    return sql.SQL("TRUE"), {}


def _request_of(record: dict[str, Any]) -> str | None:
    extra = record.get("extra_data")
    value = json.loads(extra).get(REQUEST_KEY) if extra else None
    return value if isinstance(value, str) and value else None


def _side(
    conn: Connection,
    table: TableName,
    near: tuple[sql.Composable, dict[str, Any]],
    *,
    moment: dt.datetime,
    record_id: int,
    window: dt.timedelta,
    side: int,
    older: bool,
) -> list[dict[str, Any]]:
    """Up to ``side`` rows near the record, walking away from it (``older``: back in time)."""
    condition, params = near
    if older:
        bounds = sql.SQL(
            '"timestamp" >= %(edge)s AND "timestamp" <= %(moment)s'
            ' AND ("timestamp", id) < (%(moment)s, %(id)s)'
        )
        order = sql.SQL('"timestamp" DESC, id DESC')
    else:
        bounds = sql.SQL(
            '"timestamp" < %(edge)s AND "timestamp" >= %(moment)s'
            ' AND ("timestamp", id) > (%(moment)s, %(id)s)'
        )
        order = sql.SQL('"timestamp", id')
    query = sql.SQL("SELECT {} FROM {} WHERE {} AND {} ORDER BY {} LIMIT %(side)s").format(
        COLUMNS, table.identifier, bounds, condition, order
    )
    params = {
        **params,
        "edge": moment - window if older else moment + window,
        "moment": moment,
        "id": record_id,
        "side": side,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()
