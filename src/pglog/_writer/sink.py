"""Sink: the writer's connection to the table. One batch is one COPY in one transaction,
and when the connection breaks during a COMMIT, the sink can find out whether it happened.

A COMMIT whose reply was lost may or may not have committed. Retrying blindly would
store the batch twice; giving up would lose it. So each transaction first asks for
its own transaction id, and after a failure the writer asks the server, on a fresh
connection, what became of that id (``pg_xact_status``). The answer is exact while
the server's commit log still covers the id, which it does for far longer than any
reconnection takes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import psycopg
from psycopg import sql

from pglog._capture.row import Row
from pglog._table import partitions, reports, schema
from pglog._table.connection import connect, redact, with_defaults
from pglog._table.migrate import check_writable, ensure_table, inspect_table
from pglog._table.reader import prune_batch

Status = Literal["committed", "aborted", "in progress", "unknown"]
_STATUSES: dict[object, Status] = {s: s for s in ("committed", "aborted", "in progress")}

#: Bounds on the writer's own transactions, set per transaction (``SET LOCAL``) so they
#: also hold behind PgBouncer: a COPY stuck behind someone's lock gives up and is
#: retried, and a transaction orphaned by a lost connection ends by itself.
STATEMENT_TIMEOUT_MS = 60_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000


class CommitUnknown(Exception):
    """The connection broke after the batch was sent; whether it committed is not known yet."""

    def __init__(self, xid: str, backend_pid: int, count: int, cause: BaseException) -> None:
        super().__init__(f"connection lost during transaction {xid}: {cause}")
        self.xid = xid
        self.backend_pid = backend_pid
        self.count = count
        self.cause = cause


class PostgresSink:
    """A lazily opened connection that writes batches of rows into one table."""

    def __init__(
        self,
        dsn: str,
        table: schema.TableName,
        *,
        create_table: bool,
        connect_timeout: float,
        partition: str | None = None,
    ) -> None:
        self.partition = partition
        #: The table's partition period, once known from the catalog (None: not partitioned).
        self.period: str | None = None
        self.dsn = dsn
        self.table = table
        self.create_table = create_table
        self._conninfo = with_defaults(dsn, connect_timeout=max(1, round(connect_timeout)))
        self._copy = schema.copy_statement(table)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._backend_pid = 0
        self._table_checked = False
        self._publishing = self._forgetting = True
        self._begin, self._status = _transaction_queries(modern=True)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def connect(self) -> None:
        """Open the connection (and the table, if asked) unless one is open and healthy."""
        if self.connected:
            return
        self.discard()
        conn = connect(self._conninfo)
        try:
            self._begin, self._status = _transaction_queries(conn.info.server_version >= 130000)
            if not self._table_checked:
                if self.create_table:
                    ensure_table(conn, self.table, self.partition)
                    self._create_reports(conn)
                with conn.transaction():
                    state = inspect_table(conn, self.table)
                    check_writable(state, self.table)
                self.period = state.period
                self._table_checked = True  # if it vanishes later, the writer recreates it
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def recreate_table(self) -> bool:
        """After the table vanished (dropped, or its schema): create it; False if it existed."""
        self.connect()
        assert self._conn is not None
        return ensure_table(self._conn, self.table, self.period or self.partition)

    def write(
        self, rows: Sequence[Row], before_commit: Callable[[str], None] | None = None
    ) -> None:
        """COPY ``rows`` in one transaction; ``before_commit(xid)`` runs just before COMMIT.

        Raises the database error when the transaction certainly failed, and
        CommitUnknown when the connection broke after the transaction began.
        """
        self.connect()
        conn = self._conn
        assert conn is not None
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()  # left over from an interrupted step: start clean
        xid = None
        try:
            with conn.cursor() as cur:
                cur.execute(self._begin, (STATEMENT_TIMEOUT_MS, IDLE_IN_TRANSACTION_TIMEOUT_MS))
                *_, backend, opened = cur.fetchone()  # type: ignore[misc]
                self._backend_pid, xid = int(str(backend)), str(opened)
                with cur.copy(self._copy) as copy:
                    for row in rows:
                        copy.write_row(row)
            if before_commit is not None:
                before_commit(xid)
            conn.commit()
        except BaseException as exc:
            if xid is not None and (conn.broken or conn.closed):
                raise CommitUnknown(xid, self._backend_pid, len(rows), exc) from exc
            if not (conn.broken or conn.closed):
                try:
                    conn.rollback()
                except psycopg.Error:
                    self.discard()
            raise

    def prune(self, cutoff: dt.datetime, batch: int) -> tuple[list[str], int]:
        """One round of retention: drop the partitions wholly older than ``cutoff`` (if the
        table is partitioned), then delete up to ``batch`` older rows that remain."""
        self.connect()
        conn = self._conn
        assert conn is not None
        dropped = partitions.drop_older(conn, self.table, cutoff) if self.period else []
        return dropped, prune_batch(conn, self.table, cutoff, batch)

    def make_partitions(self, now: dt.datetime) -> list[str]:
        """Partitions for the periods around ``now``, for a partitioned table."""
        self.connect()
        if self.period is None or self._conn is None:
            return []
        return partitions.ensure_ahead(self._conn, self.table, self.period, now)

    def _create_reports(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Make the reports table if it is missing and this role may: reports are optional."""
        try:
            reports.create(conn, self.table)
        except _CLOSED_TO_US:
            self._publishing = self._forgetting = False
        except psycopg.Error:
            pass  # busy, or the connection failed (and the next step says so): try when publishing

    def publish(self, who: reports.Identity, stats: dict[str, Any], *, stopped: bool) -> None:
        """Publish the writer's stats (see ``reports``); given up for good, quietly, when
        the reports table is missing or closed to this role."""
        if self._publishing and self.connected:
            assert self._conn is not None
            try:
                reports.publish(self._conn, self.table, who, stats, stopped=stopped)
            except _CLOSED_TO_US:
                self._publishing = False

    def forget_writers(self) -> None:
        """Delete the reports of writers long gone, if this role may."""
        if self._forgetting and self._publishing and self.connected:
            assert self._conn is not None
            try:
                reports.forget_old(self._conn, self.table)
            except _CLOSED_TO_US:
                self._forgetting = False

    def status(self, xid: str) -> Status:
        """What became of transaction ``xid``, asked on a fresh connection if need be."""
        with self._read() as conn:
            try:
                row = conn.execute(self._status, (xid,)).fetchone()
            except psycopg.errors.InvalidParameterValue:
                return "aborted"  # "transaction ID is in the future": never seen here (failover)
        return _STATUSES.get(row[0] if row else None, "unknown")

    def terminate(self, backend_pid: int) -> None:
        """End the backend of a lost connection, so its open transaction aborts now."""
        with self._read() as conn, contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))

    @contextlib.contextmanager
    def _read(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """The connection for a query that changes nothing: rolled back afterwards, whatever
        happened, so it is never left inside a failed transaction."""
        self.connect()
        conn = self._conn
        assert conn is not None
        try:
            yield conn
        finally:
            if not conn.broken:
                conn.rollback()

    def describe_error(self, error: BaseException) -> str:
        """One line about ``error``, safe to show: no password."""
        text = " ".join(str(error).split()) or type(error).__name__
        return redact(f"{type(error).__name__}: {text}", self.dsn)

    def discard(self) -> None:
        """Close the connection, quietly: it may already be broken."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken socket has nothing left to say
                conn.close()

    def abandon(self) -> None:
        """Forget the connection without touching its socket: for a child after fork.

        Closing it would send a Terminate message on the socket the parent still uses.
        The child's copy of the descriptor is pointed at /dev/null first, so whatever
        libpq does with it later goes nowhere.
        """
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # no socket left to protect
            fd = conn.pgconn.socket
            devnull = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        _ABANDONED.append(conn)


def _transaction_queries(modern: bool) -> tuple[sql.Composed, sql.Composed]:
    """The statement that opens a batch's transaction (bounding it, naming its backend and
    its id), and the one that asks what became of an id; PostgreSQL 13 renamed the
    functions. The backend is asked for, not taken from the connection: behind PgBouncer
    the connection's is the pooler's own number, and terminating it would miss."""
    xid, status, cast = (
        ("pg_current_xact_id", "pg_xact_status", "xid8")
        if modern
        else ("txid_current", "txid_status", "int8")
    )
    begin = sql.SQL(
        "SELECT set_config('statement_timeout', %s::text, true),"
        " set_config('idle_in_transaction_session_timeout', %s::text, true),"
        " pg_backend_pid(), {}()::text"
    ).format(sql.Identifier(xid))
    ask = sql.SQL("SELECT {}(%s::{})").format(sql.Identifier(status), sql.SQL(cast))
    return begin, ask


#: A reports table missing, or one this role may not touch: reports are given up.
_CLOSED_TO_US = (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege)

#: Connections inherited across fork, kept referenced so they are never finalised mid-run.
_ABANDONED: list[object] = []
