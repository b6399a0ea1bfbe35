"""Sink: the writer's connection to the table. One batch is one COPY in one transaction,
and when the connection breaks during a COMMIT, the sink can find out whether it happened.

A COMMIT whose reply was lost may or may not have committed. Retrying blindly would
store the batch twice; giving up would lose it. So each transaction first asks for its
own transaction id, and after a failure the writer asks the server, on a fresh
connection, what became of that id (``pg_xact_status``). The answer is exact while the
server's commit log still covers the id, which it does for far longer than any
reconnection takes.

Every operation is bounded from the client's side too (see ``deadline``): a COPY and
its COMMIT by ``write_timeout``, anything else by ``connect_timeout``. A stalled network
is then a lost connection after a few seconds, not a writer stuck for minutes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from pglog._capture.row import Row
from pglog._table.columns import WRITTEN_NAMES
from pglog._table.connection import Connection, connect, error_line, redact, with_defaults
from pglog._table.layout import Engine
from pglog._table.migrate import check_writable, ensure_table, inspect_table
from pglog._table.schema import TableName, copy_statement
from pglog._writer.deadline import WATCHDOG, Expired

Status = Literal["committed", "aborted", "in progress", "unknown"]
_STATUSES: dict[object, Status] = {s: s for s in ("committed", "aborted", "in progress")}

#: Bounds on the writer's own transactions, set per transaction (``SET LOCAL``) so they
#: also hold behind PgBouncer: a COPY stuck behind someone's lock gives up and is
#: retried, and a transaction orphaned by a lost connection ends by itself.
STATEMENT_TIMEOUT_MS = 60_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Transaction:
    """A batch's transaction, as the server named it when it began."""

    xid: str
    backend_pid: int
    #: When the server (its postmaster) started: a restart since means the id may have
    #: been given again to another transaction (see ``status``).
    server_started: str


class CommitUnknown(Exception):
    """The connection broke after the batch was sent; whether it committed is not known yet."""

    def __init__(self, transaction: Transaction, count: int, cause: BaseException) -> None:
        super().__init__(f"connection lost during transaction {transaction.xid}: {cause}")
        self.transaction = transaction
        self.xid = transaction.xid
        self.backend_pid = transaction.backend_pid
        self.count = count
        self.cause = cause


class ConnectionLost(psycopg.OperationalError):
    """The connection broke before a batch's transaction began: try again, reconnected."""


class Stalled(psycopg.OperationalError):
    """The server did not answer within the deadline; the connection was given up."""


class PostgresSink:
    """A lazily opened connection that writes batches of rows into one table."""

    def __init__(
        self,
        dsn: str,
        table: TableName,
        *,
        create_table: bool,
        connect_timeout: float,
        write_timeout: float,
        partition: str | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.partition = partition
        #: The engine to create the table on (see ``layout``); the one it is on, once known.
        self.engine = engine
        #: The table's partition period, once known from the catalog (None: not partitioned).
        self.period: str | None = None
        self.dsn = dsn
        self.table = table
        self.create_table = create_table
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self._conninfo = with_defaults(
            dsn,
            connect_timeout=max(1, round(connect_timeout)),
            tcp_user_timeout=round(write_timeout * 1000),
        )
        self._copy = copy_statement(table)
        self._conn: Connection | None = None
        #: The server's identity (system identifier and database), once connected: a
        #: spool is matched to its server by it, however the DSN is spelt.
        self.server: str | None = None
        #: The last batch transaction begun (its backend is the one a lookup would end).
        self.last_transaction: Transaction | None = None
        self._table_checked = False
        self._begin, self._status = _transaction_queries(modern=True)
        #: Called with each fresh connection (to make the reports table, say).
        self.on_connect: list[Callable[[Connection], None]] = []

    @classmethod
    def for_handler(cls, dsn: str, table: TableName, settings: Mapping[str, Any]) -> PostgresSink:
        """The sink a handler with ``settings`` (see ``_options``) writes through."""
        return cls(
            dsn,
            table,
            create_table=settings["create_table"],
            connect_timeout=settings["connect_timeout"],
            write_timeout=settings["write_timeout"],
            partition=settings["partition"],
            engine=settings["engine"],
        )

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def connect(self) -> Connection:
        """The connection (and the table, if asked), opened unless one is open and healthy."""
        if self._conn is not None and self.connected:
            return self._conn
        self.discard()
        conn = connect(self._conninfo)
        try:
            with self.bounded(conn, self.connect_timeout):
                self._begin, self._status = _transaction_queries(conn.info.server_version >= 130000)
                self.server = _identity(conn)
                if not self._table_checked:
                    if self.create_table:
                        ensure_table(conn, self.table, self.partition, self.engine)
                    with conn.transaction():
                        state = inspect_table(conn, self.table)
                        check_writable(state, self.table)
                    self.period = state.period
                    self.engine = state.engine
                    self._table_checked = True  # if it vanishes later, the writer recreates it
                for hook in self.on_connect:
                    hook(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    @contextlib.contextmanager
    def bounded(self, conn: Connection, seconds: float) -> Iterator[None]:
        """Run what is inside with ``conn``'s socket armed against a stall (see deadline)."""
        try:
            with WATCHDOG.armed(conn.pgconn.socket, seconds):
                yield
        except Expired as stall:
            self.discard()
            raise Stalled(f"the server gave no answer within {seconds:g} s") from stall

    @contextlib.contextmanager
    def session(self) -> Iterator[Connection]:
        """The connection for upkeep (partitions, retention, reports), bounded by the
        connect timeout per use, and rolled back afterwards whatever happened."""
        conn = self.connect()
        try:
            with self.bounded(conn, self.connect_timeout):
                yield conn
        finally:
            if not (conn.closed or conn.broken):
                conn.rollback()

    def recreate_table(self) -> bool:
        """After the table vanished (dropped, or renamed away): create it; False if it existed."""
        with self.session() as conn:
            return ensure_table(conn, self.table, self.period or self.partition, self.engine)

    def write(
        self,
        rows: Sequence[Row],
        began: Callable[[Transaction], None],
        before_commit: Callable[[Transaction], None] | None = None,
    ) -> None:
        """COPY ``rows`` in one transaction, in ``write_timeout`` at most: ``began`` runs
        once the transaction has its id, ``before_commit`` just before COMMIT; either may
        raise to roll the transaction back.

        Raises the database error when the transaction certainly failed, and
        CommitUnknown when the connection broke after the transaction began.
        """
        conn = self.connect()
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()  # left over from an interrupted step: start clean
        transaction = None
        try:
            with self.bounded(conn, self.write_timeout):
                with conn.cursor() as cur:
                    cur.execute(self._begin, (STATEMENT_TIMEOUT_MS, IDLE_IN_TRANSACTION_TIMEOUT_MS))
                    *_, pid, opened, started = cur.fetchone()  # type: ignore[misc]
                    transaction = Transaction(str(opened), int(str(pid)), str(started))
                    self.last_transaction = transaction
                    began(transaction)
                    with cur.copy(self._copy) as copy:
                        for row in rows:
                            copy.write_row(row)
                if before_commit is not None:
                    before_commit(transaction)
                conn.commit()
        except BaseException as exc:
            if transaction is not None and (conn.broken or conn.closed):
                raise CommitUnknown(transaction, len(rows), exc) from exc
            if isinstance(exc, psycopg.Error) and conn.broken:
                # Whatever the SQLSTATE says (Citus: XX000 "postmaster was shut down"), a
                # connection that broke before the batch began lost the server, not the batch.
                raise ConnectionLost(error_line(exc, self.dsn)) from exc
            if not (conn.broken or conn.closed):
                try:
                    conn.rollback()
                except psycopg.Error:
                    self.discard()
            raise

    def status(self, xid: str) -> tuple[Status, str]:
        """What became of transaction ``xid``, asked on a fresh connection if need be, and
        when the server started (to tell whether it restarted since the id was given).

        After a crash the server may give an id again: one whose transaction left nothing
        durable behind is forgotten by recovery. So "committed" after a restart may be
        another transaction's fate; ``holds`` tells them apart."""
        with self.session() as conn:
            started = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
            try:
                row = conn.execute(self._status, (xid,)).fetchone()
            except psycopg.errors.InvalidParameterValue:
                # "transaction ID is in the future": never given by this server (a
                # failover, or a crash that forgot it): certainly not committed here.
                row = ("aborted",)
        status = _STATUSES.get(row[0] if row else None, "unknown")
        return status, str(started[0]) if started else ""

    def holds(self, row: Row) -> bool | None:
        """Is ``row`` (a row this writer sent) in the table? None when this role may not
        look (it may only insert)."""
        values = dict(zip(WRITTEN_NAMES, row, strict=True))
        # Not by hostname, though Citus would then ask one shard only: a spool's records
        # may be replayed by another host than the one that wrote them first.
        query = sql.SQL(
            'SELECT EXISTS (SELECT 1 FROM {} WHERE "timestamp" = %s::timestamptz'
            " AND logger_name = %s AND process_id IS NOT DISTINCT FROM %s"
            " AND thread_id IS NOT DISTINCT FROM %s)"
        ).format(self.table.identifier)
        names = ("timestamp", "logger_name", "process_id", "thread_id")
        params = [values[name] for name in names]
        try:
            with self.session() as conn:
                if self.engine == "citus":  # a committed batch prepared on a worker: finish it
                    with contextlib.suppress(psycopg.Error), conn.transaction():
                        conn.execute("SELECT recover_prepared_transactions()")
                found = conn.execute(query, params).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return None
        return bool(found and found[0])

    def terminate(self, backend_pid: int) -> None:
        """End the backend of a lost connection, so its open transaction aborts now."""
        with self.session() as conn, contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))

    def describe_error(self, error: BaseException) -> str:
        """One line about ``error``, safe to show: the server's message without the
        row it may quote, and no password."""
        return redact(f"{type(error).__name__}: {error_line(error, self.dsn)}", self.dsn)

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


def _identity(conn: Connection) -> str | None:
    """The server's system identifier and the database's name, if this role may read
    them: the same server however its address is written."""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT system_identifier::text || '/' || current_database()"
                " FROM pg_control_system()"
            ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return str(row[0]) if row else None


def _transaction_queries(modern: bool) -> tuple[sql.Composed, sql.Composed]:
    """The statement that opens a batch's transaction (bounding it, naming its backend and
    its id), and the one that asks what became of an id; PostgreSQL 13 renamed the
    functions. The backend is asked for, not taken from the connection: behind PgBouncer
    the connection's is the pooler's own number, and terminating it would miss. The
    server's start time comes along: see ``status``."""
    xid, status, cast = (
        ("pg_current_xact_id", "pg_xact_status", "xid8")
        if modern
        else ("txid_current", "txid_status", "int8")
    )
    begin = sql.SQL(
        "SELECT set_config('statement_timeout', %s::text, true),"
        " set_config('idle_in_transaction_session_timeout', %s::text, true),"
        " pg_backend_pid(), {}()::text, pg_postmaster_start_time()::text"
    ).format(sql.Identifier(xid))
    ask = sql.SQL("SELECT {}(%s::{})").format(sql.Identifier(status), sql.SQL(cast))
    return begin, ask


#: Connections inherited across fork, kept referenced so they are never finalised mid-run.
_ABANDONED: list[object] = []
