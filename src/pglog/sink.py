"""Sink: the writer's connection to the table. One batch is one COPY in one transaction,
and when the connection breaks during a COMMIT, the sink can find out whether it happened.

A COMMIT whose reply was lost may or may not have committed. Retrying blindly would
store the batch twice; giving up would lose it. So each transaction first asks for
its own transaction id, and after a failure the sink asks the server, on a fresh
connection, what became of that id (``pg_xact_status``). The answer is exact while
the server's commit log still covers the id, which it does for far longer than any
reconnection takes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from typing import Literal

import psycopg

from pglog import schema
from pglog.connection import connect, redact, with_defaults
from pglog.row import Row

Status = Literal["committed", "aborted", "in progress", "unknown"]
_STATUSES: dict[object, Status] = {s: s for s in ("committed", "aborted", "in progress")}

#: How long to wait for an in-progress transaction of a dead connection to end
#: (the server notices the broken socket) before terminating its backend.
IN_PROGRESS_GRACE = 2.0


class CommitUnknown(Exception):
    """The connection broke after the batch was sent; whether it committed is not known yet."""

    def __init__(self, xid: str, backend_pid: int, cause: BaseException) -> None:
        super().__init__(f"connection lost during transaction {xid}: {cause}")
        self.xid = xid
        self.backend_pid = backend_pid
        self.cause = cause


class PostgresSink:
    """A lazily opened connection that writes batches of rows into one table."""

    def __init__(
        self, dsn: str, table: schema.TableName, *, create_table: bool, connect_timeout: float
    ) -> None:
        self.dsn = dsn
        self.table = table
        self.create_table = create_table
        self._conninfo = with_defaults(dsn, connect_timeout=max(1, round(connect_timeout)))
        self._copy = schema.copy_statement(table)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._status_function = "pg_xact_status"
        self._xid_function = "pg_current_xact_id"

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
            if conn.info.server_version < 130000:
                self._status_function, self._xid_function = "txid_status", "txid_current"
            if self.create_table:
                schema.ensure_table(conn, self.table)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def recreate_table(self) -> None:
        """After the table vanished (dropped, or its schema): create it again."""
        self.connect()
        assert self._conn is not None
        schema.ensure_table(self._conn, self.table)

    def write(self, rows: Sequence[Row]) -> None:
        """COPY ``rows`` in one transaction.

        Raises the database error when the transaction certainly failed, and
        CommitUnknown when the connection broke after the transaction began.
        """
        self.connect()
        conn = self._conn
        assert conn is not None
        xid = None
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {self._xid_function}()::text")
                xid = str(cur.fetchone()[0])  # type: ignore[index]
                with cur.copy(self._copy) as copy:
                    for row in rows:
                        copy.write_row(row)
            conn.commit()
        except BaseException as exc:
            if xid is not None and (conn.broken or conn.closed):
                raise CommitUnknown(xid, conn.info.backend_pid, exc) from exc
            if not (conn.broken or conn.closed):
                try:
                    conn.rollback()
                except psycopg.Error:
                    self.discard()
            raise

    def status(self, lost: CommitUnknown) -> Status:
        """What became of the transaction a broken connection was running.

        Reconnects (raising if the server is still away). A transaction still in
        progress belongs to a backend that has not yet noticed its client is gone:
        give it a moment, then terminate it, which aborts it unless it committed.
        """
        self.connect()
        assert self._conn is not None
        deadline = time.monotonic() + IN_PROGRESS_GRACE
        terminated = False
        while True:
            status = self._query_status(lost.xid)
            if status != "in progress":
                return status
            if time.monotonic() >= deadline:
                if terminated:
                    return status
                self._terminate(lost.backend_pid)
                terminated = True
                deadline = time.monotonic() + IN_PROGRESS_GRACE
            time.sleep(0.05)  # polling the server, not synchronising threads

    def _query_status(self, xid: str) -> Status:
        assert self._conn is not None
        try:
            with self._conn.transaction():
                row = self._conn.execute(
                    f"SELECT {self._status_function}(%s::{self._status_cast})", (xid,)
                ).fetchone()
        except psycopg.errors.InvalidParameterValue:
            # "transaction ID is in the future": this server never saw it (a failover).
            return "aborted"
        return _STATUSES.get(row[0] if row else None, "unknown")

    @property
    def _status_cast(self) -> str:
        return "xid8" if self._status_function == "pg_xact_status" else "bigint"

    def _terminate(self, backend_pid: int) -> None:
        assert self._conn is not None
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
        except psycopg.Error:
            pass  # not allowed, or already gone: waiting is all that is left

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
        try:
            fd = conn.pgconn.socket
            devnull = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        except Exception:  # noqa: S110 - no socket left to protect
            pass
        _ABANDONED.append(conn)


#: Connections inherited across fork, kept referenced so they are never finalised mid-run.
_ABANDONED: list[object] = []
