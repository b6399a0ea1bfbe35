"""sink: the writer's connection, against a real server: opened lazily, one batch one COPY
in one transaction named by its id, the fate of an id looked up, a reconnection after a
restart, and what a cut or a stalled connection raises.

Each sink is built as the pipeline builds it: ``PostgresSink.for_handler`` with the
options resolved as the handler resolves them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from faultproxy import FaultProxy
from helpers import (
    INSERT_ONLY,
    TABLE,
    closed_port_dsn,
    grant_insert_only,
    make_table,
    stored,
    wait_until,
)
from pgserver import PostgresServer
from psycopg import sql

from pglog._capture.capture import capture
from pglog._capture.entry import named
from pglog._capture.row import Row, to_row
from pglog._options import resolve
from pglog._table.schema import TableName
from pglog._writer.sink import CommitUnknown, ConnectionLost, PostgresSink, Stalled, Transaction

Conn = psycopg.Connection[tuple[Any, ...]]
_log = logging.getLogger("test.sink")


def rows(*messages: str) -> list[Row]:
    """Rows of INFO records with ``messages``, as delivery makes them."""
    return [
        to_row(named(capture(_log.makeRecord(_log.name, 20, __file__, 1, m, (), None))), "host")
        for m in messages
    ]


SinkFactory = Callable[..., PostgresSink]


@pytest.fixture
def make_sink() -> Iterator[SinkFactory]:
    """Builds sinks as a handler with ``options`` would (table ``logs`` unless told);
    each discarded at teardown."""
    made: list[PostgresSink] = []

    def make(dsn: str, **options: Any) -> PostgresSink:
        settings = resolve({"dsn": dsn, "table": TABLE, **options})
        sink = PostgresSink.for_handler(
            dsn, TableName(settings["schema"], settings["table"]), settings
        )
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.discard()


class Began:
    """A ``began`` callback that keeps each transaction it is told of."""

    def __init__(self) -> None:
        self.transactions: list[Transaction] = []

    def __call__(self, transaction: Transaction) -> None:
        self.transactions.append(transaction)


def _one(conn: Conn, query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# -- connecting ----------------------------------------------------------------------------------


def test_the_sink_connects_only_when_first_used(make_sink: SinkFactory) -> None:
    """Building a sink does no I/O (even for a port nothing listens on): it is not
    connected and knows no server until connect() or write() is called."""
    sink = make_sink(closed_port_dsn())
    assert not sink.connected
    assert sink.server is None
    assert sink.last_transaction is None
    with pytest.raises(psycopg.OperationalError):
        sink.connect()
    assert not sink.connected


def test_connecting_creates_the_table_and_learns_the_servers_identity(
    make_sink: SinkFactory, server: PostgresServer, admin: Conn
) -> None:
    """With create_table (the default), connect() makes the table; ``server`` is the
    system identifier and the database, and calling connect() again keeps the same
    connection while it is healthy."""
    sink = make_sink(server.dsn)
    conn = sink.connect()
    assert sink.connected
    assert _one(admin, "SELECT to_regclass(%s)::text", TABLE) == TABLE
    identifier = _one(admin, "SELECT system_identifier::text FROM pg_control_system()")
    assert sink.server == f"{identifier}/postgres"
    assert sink.period is None  # not partitioned
    assert sink.connect() is conn


def test_without_create_table_a_missing_table_is_an_error(
    make_sink: SinkFactory, server: PostgresServer, admin: Conn
) -> None:
    """create_table=False: connect() refuses a table that isn't there, creates nothing,
    and keeps no connection."""
    sink = make_sink(server.dsn, create_table=False)
    with pytest.raises(Exception, match=TABLE):
        sink.connect()
    assert not sink.connected
    assert _one(admin, "SELECT to_regclass(%s)::text", TABLE) is None


# -- writing -------------------------------------------------------------------------------------


def test_a_batch_is_one_copy_in_one_transaction_named_by_its_id_and_backend(
    make_sink: SinkFactory, server: PostgresServer, admin: Conn
) -> None:
    """write(): the rows are stored in the order given, all by one transaction whose id is
    the one ``began`` was told (and ``last_transaction``), on the sink's own backend, with
    the server's start time."""
    sink = make_sink(server.dsn)
    began = Began()
    sink.write(rows("a", "b", "c"), began)
    assert stored(server.dsn, TABLE) == ["a", "b", "c"]
    [transaction] = began.transactions
    assert sink.last_transaction == transaction
    xmins = admin.execute(
        sql.SQL("SELECT DISTINCT xmin::text FROM {}").format(sql.Identifier(TABLE))
    )
    assert xmins.fetchall() == [(transaction.xid,)]  # a fresh server: xid8 == xid
    assert transaction.backend_pid == sink.connect().info.backend_pid
    assert transaction.server_started == _one(admin, "SELECT pg_postmaster_start_time()::text")
    assert sink.status(transaction.xid) == ("committed", transaction.server_started)


def test_a_callback_that_raises_rolls_the_batch_back_and_the_sink_goes_on(
    make_sink: SinkFactory, server: PostgresServer
) -> None:
    """``began`` or ``before_commit`` raising: the error comes out as it is, nothing of the
    batch is stored, its transaction is aborted, and the next write on the same sink
    works."""

    class Refused(Exception):
        pass

    def refuse(_: Transaction) -> None:
        raise Refused

    sink = make_sink(server.dsn)
    with pytest.raises(Refused):
        sink.write(rows("early"), refuse)
    first = sink.last_transaction
    began = Began()
    with pytest.raises(Refused):
        sink.write(rows("late"), began, before_commit=refuse)
    assert stored(server.dsn, TABLE) == []
    assert first is not None
    assert sink.status(first.xid)[0] == "aborted"
    assert sink.status(began.transactions[0].xid)[0] == "aborted"
    sink.write(rows("after"), Began())
    assert stored(server.dsn, TABLE) == ["after"]


def test_a_row_the_table_refuses_raises_the_servers_error_not_commit_unknown(
    make_sink: SinkFactory, server: PostgresServer, admin: Conn
) -> None:
    """The transaction certainly failed: write() raises the database's own error (a
    CheckViolation), rolls back, keeps the connection, and stores none of the batch."""
    make_table(server.dsn)
    admin.execute(f"ALTER TABLE {TABLE} ADD CHECK (message <> 'bad')")
    sink = make_sink(server.dsn)
    conn = sink.connect()
    with pytest.raises(psycopg.errors.CheckViolation):
        sink.write(rows("good", "bad"), Began())
    assert stored(server.dsn, TABLE) == []
    assert sink.connect() is conn
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


# -- the fate of a transaction -------------------------------------------------------------------


def test_status_tells_committed_aborted_and_in_progress_apart(
    make_sink: SinkFactory, server: PostgresServer, admin: Conn
) -> None:
    """Transactions of another connection: one committed, one rolled back, one still open;
    and an id the server never gave (in the future): aborted. Each answer comes with the
    server's start time."""
    sink = make_sink(server.dsn)
    started = _one(admin, "SELECT pg_postmaster_start_time()::text")
    with psycopg.connect(server.dsn) as other:
        committed = _one(other, "SELECT pg_current_xact_id()::text")
        other.commit()
        aborted = _one(other, "SELECT pg_current_xact_id()::text")
        other.rollback()
        open_ = _one(other, "SELECT pg_current_xact_id()::text")
        assert sink.status(committed) == ("committed", started)
        assert sink.status(aborted) == ("aborted", started)
        assert sink.status(open_) == ("in progress", started)
        future = str(int(open_) + 1_000_000)
        assert sink.status(future) == ("aborted", started)


def test_terminate_ends_the_backend_of_an_open_transaction(
    make_sink: SinkFactory, server: PostgresServer
) -> None:
    """terminate(pid) ends another backend: its open transaction is then aborted."""
    sink = make_sink(server.dsn)
    other = psycopg.connect(server.dsn)
    try:
        xid = _one(other, "SELECT pg_current_xact_id()::text")
        sink.terminate(other.info.backend_pid)
        wait_until(lambda: sink.status(xid)[0] != "in progress", "the backend to end", 30)
        assert sink.status(xid)[0] == "aborted"
    finally:
        other.close()


def test_holds_tells_a_stored_row_from_one_never_written_and_none_when_it_may_not_look(
    make_sink: SinkFactory, server: PostgresServer, admin: Conn
) -> None:
    """holds(row): True for a row the sink wrote, False for one it did not; None for a role
    that may only insert (it can't SELECT to look)."""
    sink = make_sink(server.dsn)
    written, unwritten = rows("written", "never")
    sink.write([written], Began())
    assert sink.holds(written) is True
    assert sink.holds(unwritten) is False
    grant_insert_only(admin)
    limited = make_sink(server.dsn_as(INSERT_ONLY), create_table=False)
    limited.write([unwritten], Began())  # it may insert...
    assert limited.holds(unwritten) is None  # ...but not look
    assert stored(server.dsn, TABLE) == ["written", "never"]


def test_recreate_table_makes_a_vanished_table_again_and_says_whether_it_had_to(
    make_sink: SinkFactory, server: PostgresServer, admin: Conn
) -> None:
    """The table is dropped under a connected sink: recreate_table() makes it again (True)
    and writing works; called again with the table there, it makes nothing (False)."""
    sink = make_sink(server.dsn)
    sink.write(rows("before"), Began())
    admin.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(TABLE)))
    with pytest.raises(psycopg.errors.UndefinedTable):
        sink.write(rows("lost"), Began())
    assert sink.recreate_table() is True
    assert sink.recreate_table() is False
    sink.write(rows("after"), Began())
    assert stored(server.dsn, TABLE) == ["after"]


# -- a restart, a cut, a stall -------------------------------------------------------------------


def test_after_a_restart_the_first_write_raises_connection_lost_and_the_next_reconnects(
    make_sink: SinkFactory, server: PostgresServer
) -> None:
    """The server restarts under an idle connection: the next write finds it broken before
    its transaction began (ConnectionLost, nothing sent); the one after reconnects, to the
    same server (its identity unchanged) started anew."""
    sink = make_sink(server.dsn)
    before = Began()
    sink.write(rows("before"), before)
    identity = sink.server
    server.restart()
    with pytest.raises(ConnectionLost):
        sink.write(rows("lost"), Began())
    after = Began()
    sink.write(rows("after"), after)
    assert stored(server.dsn, TABLE) == ["before", "after"]
    assert sink.server == identity
    assert after.transactions[0].server_started != before.transactions[0].server_started


@pytest.mark.parametrize(
    ("trigger", "fate"),
    [("mid_copy", "aborted"), ("before_commit", "aborted"), ("after_commit", "committed")],
)
def test_a_connection_cut_after_the_transaction_began_raises_commit_unknown(
    make_sink: SinkFactory,
    server: PostgresServer,
    proxy: FaultProxy,
    trigger: Any,
    fate: str,
) -> None:
    """The proxy cuts the connection mid-COPY, before the COMMIT reaches the server, or
    after the server committed: write() raises CommitUnknown naming the transaction and
    the batch's size, and status() on a fresh connection then tells what became of it,
    which is what the table holds."""
    make_table(server.dsn)
    sink = make_sink(proxy.dsn)
    sink.connect()
    proxy.arm(trigger)
    began = Began()
    with pytest.raises(CommitUnknown) as lost:
        sink.write(rows("one", "two"), began)
    assert lost.value.transaction == began.transactions[0]
    assert lost.value.count == 2
    assert proxy.cuts[trigger] == 1
    wait_until(lambda: sink.status(lost.value.xid)[0] != "in progress", "the backend to end")
    assert sink.status(lost.value.xid)[0] == fate
    assert stored(server.dsn, TABLE) == (["one", "two"] if fate == "committed" else [])


def test_a_stall_mid_copy_is_cut_by_write_timeout_and_raises_commit_unknown_of_a_stall(
    make_sink: SinkFactory, server: PostgresServer, proxy: FaultProxy
) -> None:
    """A COPY stalls (no FIN, no RST): the write gives up at write_timeout, raising
    CommitUnknown whose cause is Stalled ("no answer"), and the connection is given up."""
    make_table(server.dsn)
    sink = make_sink(proxy.dsn, write_timeout=1, connect_timeout=1)
    sink.connect()
    proxy.stall(at="copy")
    try:
        with pytest.raises(CommitUnknown) as lost:
            sink.write(rows("stalled"), Began())
    finally:
        proxy.resume(cut_stalled=True)
    assert isinstance(lost.value.cause, Stalled)
    assert "no answer" in str(lost.value.cause)
    assert not sink.connected


def test_a_stall_before_the_transaction_began_raises_connection_lost_from_a_stall(
    make_sink: SinkFactory, server: PostgresServer, proxy: FaultProxy
) -> None:
    """The connection stalls while idle: the next write gives up at write_timeout before
    any transaction began, so nothing of the batch was sent: ConnectionLost (retried,
    reconnected), from Stalled, saying there was no answer. A fresh connection works."""
    make_table(server.dsn)
    sink = make_sink(proxy.dsn, write_timeout=1, connect_timeout=1)
    sink.connect()
    proxy.stall()
    began = Began()
    try:
        with pytest.raises(ConnectionLost, match="no answer") as lost:
            sink.write(rows("stalled"), began)
    finally:
        proxy.resume(cut_stalled=True)
    assert isinstance(lost.value.__cause__, Stalled)
    assert began.transactions == []
    assert not sink.connected
    sink.write(rows("again"), Began())
    assert stored(server.dsn, TABLE) == ["again"]
