"""App: the web view's HTTP side, a Starlette application over a read-only connection pool.

Six JSON endpoints feed the page (``/api/rows``, ``/api/live``, ``/api/volume``,
``/api/facts``, ``/api/errors``, ``/api/context``); everything else is static files. The
endpoints are plain functions that Starlette runs in its thread pool, each borrowing a
pooled connection for one short read-only transaction. Every failure becomes a JSON
answer with a message for people and a ``kind`` the page acts on: ``bad_request`` (4xx:
fix the filter), ``unavailable`` (503: the database is away; the page shows a banner and
keeps trying),
``busy`` (503: slow queries hold every connection; the same, in other words),
``timeout``, ``missing``, ``forbidden``, ``database`` or ``internal`` (500: a bug of
ours, logged to the ``pglog._web`` logger). Never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pglog._table.connection import Connection, describe, error_line, with_defaults
from pglog._table.errors import errors as grouped_errors
from pglog._table.filters import Filter
from pglog._table.schema import TableName
from pglog._web import facts, queries, volume
from pglog._web.context import AROUND, MAX_WINDOW, WINDOW, Around
from pglog._web.context import context as around_record
from pglog._web.guard import Guard
from pglog._web.params import (
    BadRequest,
    Query,
    read_after,
    read_choice,
    read_cursor,
    read_filter,
    read_id,
    read_limit,
    read_window,
)

STATIC = Path(__file__).parent / "static"
#: Settings of every session the pool opens: read-only whatever the role may do, a
#: bound on any statement, and timestamps in UTC.
SESSION = {
    "default_transaction_read_only": "on",
    "statement_timeout": "10s",
    "TimeZone": "UTC",
}
PAGE_ROWS = 100
_log = logging.getLogger("pglog.web")


@dataclass
class Settings:
    dsn: str
    table: TableName
    token: str | None = None
    #: How long a request waits for a connection before it reports the database away
    #: (or busy, when slow queries hold every connection).
    pool_timeout: float = 5.0
    pool_size: int = 4
    #: How long the pool retries one lost connection (backing off from 1 s) before it
    #: gives up and leaves the next request to start afresh. Short, so the page recovers
    #: within seconds of the database's return, not after a backoff grown to minutes.
    reconnect_timeout: float = 3.0


def create_app(settings: Settings) -> Starlette:
    """The web view of ``settings.table``; the pool opens with the app and closes with it."""
    pool = ConnectionPool(
        session_conninfo(settings.dsn),
        min_size=1,
        max_size=settings.pool_size,
        open=False,
        timeout=settings.pool_timeout,
        reconnect_timeout=settings.reconnect_timeout,
        configure=_read_only,
        check=ConnectionPool.check_connection,
        name="pglog-serve",
        kwargs={"prepare_threshold": None},  # pgbouncer in transaction mode can't keep them
    )
    api = _Api(pool, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.open(wait=False)  # a database that is away now is reported per request
        try:
            yield
        finally:
            await run_in_threadpool(pool.close, timeout=5)

    app = Starlette(
        routes=[
            Route("/", _index),
            Route("/api/rows", api.endpoint(api.rows)),
            Route("/api/live", api.endpoint(api.live)),
            Route("/api/volume", api.endpoint(api.volume)),
            Route("/api/facts", api.endpoint(api.facts)),
            Route("/api/errors", api.endpoint(api.errors)),
            Route("/api/context", api.endpoint(api.context)),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(Guard, token=settings.token)],
        lifespan=lifespan,
    )
    app.state.pool = pool
    return app


def session_conninfo(dsn: str) -> str:
    """``dsn`` with the web view's session settings added to any ``options`` it has."""
    given = str(conninfo_to_dict(dsn).get("options") or "")
    settings = " ".join(f"-c {name}={value}" for name, value in SESSION.items())
    conninfo = with_defaults(dsn, application_name="pglog-serve")
    return make_conninfo(conninfo, options=f"{given} {settings}".strip())


def _read_only(conn: Connection) -> None:
    """Each transaction is also begun READ ONLY: a pooler that drops the session's
    startup options (pgbouncer's ignore_startup_parameters) can't make it writable."""
    conn.read_only = True


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


Handler = Callable[[Query], dict[str, Any]]


class _Api:
    """The JSON endpoints: each reads its parameters, borrows a connection, answers."""

    def __init__(self, pool: ConnectionPool, settings: Settings) -> None:
        self.pool, self.table, self.dsn = pool, settings.table, settings.dsn
        self._lock = threading.Lock()
        self._lent = 0  # connections the endpoints hold now

    def endpoint(self, handler: Handler) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            query = {key: request.query_params.getlist(key) for key in request.query_params}
            try:
                return _json(handler(query))
            except BadRequest as exc:
                return _error(400, "bad_request", str(exc))
            except (psycopg.Error, PoolTimeout) as exc:
                return self._database_error(exc)
            except Exception:  # a bug of ours: said once in the log, never to the client
                _log.exception("pglog serve: %s failed", request.url.path)
                return _error(500, "internal", "pglog serve failed: its log says why")

        return answer

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection, counted while lent: a request that can't get one can then
        tell slow queries holding them all (busy) from a database it can't reach."""
        with self.pool.connection() as conn:
            with self._lock:  # _lent: connections lent now, read by _database_error
                self._lent += 1
            try:
                yield conn
            finally:
                with self._lock:
                    self._lent -= 1

    def rows(self, query: Query) -> dict[str, Any]:
        """A page of rows, newest first; the first page also says where the live tail
        starts (taken before the page, so nothing lands between the two unseen)."""
        where = read_filter(query, _now(), extra=("before", "limit"))
        before, limit = read_cursor(query), read_limit(query, PAGE_ROWS)
        with self._connection() as conn:
            live_from = queries.newest_id(conn, self.table) if before is None else None
            found = queries.page(conn, self.table, where, limit=limit, before=before)
        return {
            "rows": [_row(row) for row in found.rows],
            "next": str(found.next) if found.next else None,
            "live_from": live_from,
            **_range(where),
        }

    def live(self, query: Query) -> dict[str, Any]:
        """Rows that landed after the id the page gives, newest first."""
        where = read_filter(query, _now(), extra=("after", "limit"))
        after, limit = read_after(query), read_limit(query, PAGE_ROWS)
        with self._connection() as conn:
            found = queries.arrivals(conn, self.table, where, after_id=after, limit=limit)
        return {
            "rows": [_row(row) for row in found.rows],
            "last_id": found.last_id,
            "complete": found.complete,
        }

    def volume(self, query: Query) -> dict[str, Any]:
        where = read_filter(query, _now())
        with self._connection() as conn:
            found = volume.volume(conn, self.table, where)
        return {
            "step_seconds": found.step.total_seconds(),
            "estimated": found.estimated,
            "bars": [
                {"start": _time(bar.start), "stop": _time(bar.stop), "counts": bar.counts}
                for bar in found.bars
            ],
            **_range(where),
        }

    def facts(self, query: Query) -> dict[str, Any]:
        if query:
            raise BadRequest(f"unknown parameter {sorted(query)[0]!r}: facts take none")
        with self._connection() as conn:
            found = facts.facts(conn, self.table)
        return {
            "table": str(self.table),
            "database": describe(self.dsn),
            "schema_version": found.schema_version,
            "total_bytes": found.total_bytes,
            "estimated_rows": found.estimated_rows,
            "newest": _time(found.newest),
            "oldest": _time(found.oldest),
            "by_level": found.by_level,
            "by_logger": found.by_logger,
            "basis": found.basis,
        }

    def errors(self, query: Query) -> dict[str, Any]:
        """The range's errors by kind (see ``_table.errors``), with a trend each."""
        where = read_filter(query, _now())
        with self._connection() as conn:
            found = grouped_errors(conn, self.table, where)
        return {
            "groups": [group.as_json() for group in found.groups],
            "more": found.more,
            "records": found.records,
            "step_seconds": found.step.total_seconds(),
            **_range(where),
        }

    def context(self, query: Query) -> dict[str, Any]:
        """A record and what was logged near it (see ``context``): its permalink's page."""
        unknown = sorted(set(query) - {"id", "around", "window"})
        if unknown:
            raise BadRequest(f"unknown parameter {unknown[0]!r}; context takes id, around, window")
        record_id = read_id(query)
        around = cast(Around, read_choice(query, "around", AROUND))
        window = read_window(query, WINDOW, MAX_WINDOW)
        with self._connection() as conn:
            found = around_record(conn, self.table, record_id, around=around, window=window)
        if found.record is None:
            return {"record": None, "rows": [], "around": around, "cut": False}
        return {
            "record": _row(dict(found.record)),
            "rows": [_row(row) for row in found.rows],
            "around": around,
            "window_seconds": found.window.total_seconds(),
            "cut": found.cut,
        }

    def _database_error(self, exc: Exception) -> Response:
        if isinstance(exc, PoolTimeout):
            with self._lock:
                busy = self._lent >= self.pool.max_size
            if busy:
                return _error(
                    503,
                    "busy",
                    f"the database is busy: slow queries hold all {self.pool.max_size} of"
                    " pglog serve's connections",
                )
        if isinstance(exc, psycopg.errors.UndefinedTable):
            return _error(404, "missing", f"{self.table} does not exist: `pglog init` creates it")
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return _error(
                403,
                "forbidden",
                f"the role can't read {self.table}: GRANT USAGE ON SCHEMA"
                f" {self.table.schema} and SELECT ON {self.table} to it",
            )
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return _error(
                503,
                "timeout",
                f"the database took longer than {SESSION['statement_timeout']}:"
                " narrow the time range or the filters",
            )
        message = error_line(exc, self.dsn)
        if isinstance(exc, psycopg.DataError):  # the filter asked something impossible
            return _error(400, "bad_request", f"the filter can't be applied: {message}")
        if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
            return _error(503, "unavailable", f"can't reach the database: {message}")
        return _error(502, "database", f"database error: {message}")


def _row(row: dict[str, Any]) -> dict[str, Any]:
    row["timestamp"] = _time(row["timestamp"])
    return row


def _time(moment: dt.datetime | None) -> str | None:
    """ISO 8601 with microseconds, so a cursor built from it is exact."""
    return moment.isoformat(timespec="microseconds") if moment else None


def _range(where: Filter) -> dict[str, Any]:
    return {"since": _time(where.since), "until": _time(where.until)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _json(content: dict[str, Any]) -> Response:
    return JSONResponse(content, headers={"cache-control": "no-store"})


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse(
        {"error": message, "kind": kind}, status_code=status, headers={"cache-control": "no-store"}
    )
