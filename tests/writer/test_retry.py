"""retry: what each real error from a real server means for a batch, why it happened in an
operator's words, and how long the writer waits before it tries again.

Every error is provoked for real (a closed port, a terminated backend, a stopped server,
a revoked privilege, a constraint, a timeout, a wrong password...) and handed to
``classify`` and ``cause`` as the writer would get it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from helpers import closed_port_dsn
from pgserver import PostgresServer
from psycopg import sql

from pglog._writer.retry import Backoff, Disposition, cause, classify

Conn = psycopg.Connection[tuple[Any, ...]]


def raised(action: Callable[[], object]) -> BaseException:
    """The exception ``action`` raises (failing the test if it raises none)."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 (any error: the test looks at it)
        action()
    return caught.value


@pytest.fixture
def scratch(db: Conn, table: str) -> str:
    """A one-column table of the test's own: v int NOT NULL, CHECK (v > 0)."""
    db.execute(
        sql.SQL("CREATE TABLE {} (v int NOT NULL CHECK (v > 0))").format(sql.Identifier(table))
    )
    return table


def _connect(dsn: str) -> Conn:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def _copy_into(conn: Conn, name: sql.Identifier) -> None:
    """Begin a COPY into ``name``, as the sink does (the server answers before any row)."""
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(name)):
        pass


# -- the connection: retried ---------------------------------------------------------------------


def test_a_refused_connection_is_retried_and_said_to_be_refused() -> None:
    """Nothing listens on the port: an OperationalError without SQLSTATE, retried; the
    cause asks whether the server runs on that port."""
    error = raised(lambda: _connect(closed_port_dsn()))
    assert isinstance(error, psycopg.OperationalError)
    assert error.sqlstate is None
    assert classify(error) is Disposition.RETRY
    assert cause(error) == "connection refused (is the server running, on that port?)"


def test_a_terminated_backend_is_retried_and_said_to_be_closed_by_the_server(
    pg_dsn: str, db: Conn
) -> None:
    """pg_terminate_backend ends the connection's backend: its next statement gets 57P01
    (admin shutdown), retried; the cause says the server closed the connection. The
    statement after that (the connection is closed, no SQLSTATE) is retried too."""
    with _connect(pg_dsn) as victim:
        db.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        error = raised(lambda: victim.execute("SELECT 1"))
        assert isinstance(error, psycopg.errors.AdminShutdown)
        assert error.sqlstate == "57P01"
        assert classify(error) is Disposition.RETRY
        assert cause(error) == "the server closed the connection"
        after = raised(lambda: victim.execute("SELECT 1"))
    assert isinstance(after, psycopg.OperationalError)
    assert after.sqlstate is None
    assert classify(after) is Disposition.RETRY
    assert cause(after) == "OperationalError"  # no words it knows, no SQLSTATE: the type


def test_a_server_shut_down_is_retried_both_on_the_open_connection_and_the_next(
    server: PostgresServer,
) -> None:
    """A fast shutdown: the open connection's next statement gets 57P01, and connecting
    again is refused; both are retried, each with its own cause."""
    conn = _connect(server.dsn)
    try:
        conn.execute("SELECT 1")
        server.stop("fast")
        error = raised(lambda: conn.execute("SELECT 1"))
    finally:
        conn.close()
    assert error.sqlstate == "57P01"  # type: ignore[attr-defined]
    assert classify(error) is Disposition.RETRY
    assert cause(error) == "the server closed the connection"
    again = raised(lambda: _connect(server.dsn))
    assert classify(again) is Disposition.RETRY
    assert cause(again) == "connection refused (is the server running, on that port?)"


def test_a_wrong_password_is_retried_and_said_to_be_an_authentication_failure(
    server: PostgresServer,
) -> None:
    """28P01 at login: nothing is wrong with the batch (the operator's fix should find the
    records waiting), so it is retried; the cause says to check the user and password."""
    server.add_password_role("writer", "right")
    error = raised(lambda: _connect(server.dsn_as("writer", "wrong")))
    assert "password authentication failed" in str(error)
    assert classify(error) is Disposition.RETRY
    assert cause(error) == "authentication failed (check the user and password)"
    assert "wrong" not in cause(error)  # never the error's own text


def test_a_missing_database_or_role_is_retried_and_said_not_to_exist(pg_dsn: str) -> None:
    """3D000 (no such database) and a role that doesn't exist, at login: retried, and the
    cause says to check the names."""
    for changed in ({"dbname": "no_such_database"}, {"user": "no_such_role"}):
        dsn = psycopg.conninfo.make_conninfo(pg_dsn, **changed)
        error = raised(lambda d=dsn: _connect(d))  # type: ignore[misc]
        assert "does not exist" in str(error), changed
        assert classify(error) is Disposition.RETRY, changed
        assert cause(error) == "does not exist (check the database and user names)", changed


# -- busy or read-only: retried ------------------------------------------------------------------


def test_a_statement_timeout_is_retried(db: Conn) -> None:
    """57014 (canceled by statement_timeout): the server is busy, not the batch wrong."""
    db.execute("SET statement_timeout = 50")
    error = raised(lambda: db.execute("SELECT pg_sleep(30)"))
    db.execute("RESET statement_timeout")
    assert isinstance(error, psycopg.errors.QueryCanceled)
    assert error.sqlstate == "57014"
    assert classify(error) is Disposition.RETRY
    assert cause(error) == "SQLSTATE 57014"


def test_a_serialization_failure_is_retried(pg_dsn: str, db: Conn, scratch: str) -> None:
    """40001: a repeatable-read transaction updates a row another committed meanwhile."""
    name = sql.Identifier(scratch)
    db.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(name))
    with psycopg.connect(pg_dsn) as first:
        first.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        first.execute(sql.SQL("SELECT v FROM {}").format(name))  # the snapshot is taken
        db.execute(sql.SQL("UPDATE {} SET v = 2").format(name))
        error = raised(lambda: first.execute(sql.SQL("UPDATE {} SET v = 3").format(name)))
    assert error.sqlstate == "40001"  # type: ignore[attr-defined]
    assert classify(error) is Disposition.RETRY


def test_a_lock_not_available_is_retried(pg_dsn: str, db: Conn, scratch: str) -> None:
    """55P03: FOR UPDATE NOWAIT on a row another transaction holds."""
    name = sql.Identifier(scratch)
    db.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(name))
    with psycopg.connect(pg_dsn) as holder, psycopg.connect(pg_dsn) as other:
        holder.execute(sql.SQL("SELECT v FROM {} FOR UPDATE").format(name))
        error = raised(
            lambda: other.execute(sql.SQL("SELECT v FROM {} FOR UPDATE NOWAIT").format(name))
        )
    assert error.sqlstate == "55P03"  # type: ignore[attr-defined]
    assert classify(error) is Disposition.RETRY


def test_a_read_only_transaction_is_retried(db: Conn, scratch: str) -> None:
    """25006: a write in a read-only transaction, as on a standby after a failover."""
    db.execute("SET default_transaction_read_only = on")
    error = raised(
        lambda: db.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(scratch)))
    )
    db.execute("RESET default_transaction_read_only")
    assert error.sqlstate == "25006"  # type: ignore[attr-defined]
    assert classify(error) is Disposition.RETRY


# -- the table vanished: recreated ---------------------------------------------------------------


def test_an_undefined_table_or_schema_is_recreated(db: Conn, table: str) -> None:
    """42P01 (the table is gone) and 3F000 (the schema a COPY names is): create it again,
    then retry."""
    missing_table = raised(
        lambda: db.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
    )
    missing_schema = raised(lambda: _copy_into(db, sql.Identifier(f"s_{table}", "t")))
    assert missing_table.sqlstate == "42P01"  # type: ignore[attr-defined]
    assert missing_schema.sqlstate == "3F000"  # type: ignore[attr-defined]
    assert classify(missing_table) is Disposition.RECREATE
    assert classify(missing_schema) is Disposition.RECREATE


# -- a row is unacceptable: isolated -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [("NULL", "23502"), ("-1", "23514"), ("'x'", "22P02"), ("2147483648", "22003")],
    ids=["not-null", "check", "bad-value", "out-of-range"],
)
def test_a_row_the_table_refuses_is_isolated(db: Conn, scratch: str, value: str, code: str) -> None:
    """Class 23 (a not-null or check violation) and class 22 (a value the type refuses):
    the batch is split to find the row, and the others are written."""
    insert = sql.SQL("INSERT INTO {} VALUES (" + value + ")").format(sql.Identifier(scratch))
    error = raised(lambda: db.execute(insert))
    assert error.sqlstate == code  # type: ignore[attr-defined]
    assert classify(error) is Disposition.ISOLATE
    assert cause(error) == f"SQLSTATE {code}"


# -- this batch can't be written here: rejected --------------------------------------------------


def test_a_permission_denied_is_rejected(pg_dsn: str, db: Conn, scratch: str) -> None:
    """42501: INSERT revoked from the writer's role; retrying won't help, so the batch goes
    to the fallback."""
    role = f"r_{scratch}"
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        db.execute(
            sql.SQL("GRANT ALL ON {} TO {}").format(sql.Identifier(scratch), sql.Identifier(role))
        )
        db.execute(
            sql.SQL("REVOKE INSERT ON {} FROM {}").format(
                sql.Identifier(scratch), sql.Identifier(role)
            )
        )
        with _connect(psycopg.conninfo.make_conninfo(pg_dsn, user=role)) as limited:
            error = raised(
                lambda: limited.execute(
                    sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(scratch))
                )
            )
    finally:
        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    assert classify(error) is Disposition.REJECT
    assert cause(error) == "SQLSTATE 42501"


def test_an_error_that_is_not_the_databases_is_rejected(db: Conn) -> None:
    """A psycopg error without SQLSTATE that is not the connection's (a query whose
    parameters don't match) and any non-psycopg exception: rejected, named by type."""
    mismatch = raised(lambda: db.execute("SELECT %s, %s", (1,)))
    assert isinstance(mismatch, psycopg.ProgrammingError)
    assert mismatch.sqlstate is None
    assert classify(mismatch) is Disposition.REJECT
    assert cause(mismatch) == "ProgrammingError"
    assert classify(ValueError("bad")) is Disposition.REJECT
    assert cause(ValueError("bad")) == "ValueError"


# -- Backoff -------------------------------------------------------------------------------------


class Fixed(random.Random):
    """A random source whose ``uniform`` always gives one end of the range asked for."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


def test_backoff_starts_at_half_a_second_doubles_and_is_capped_at_ten() -> None:
    """With no jitter: 0.5, 1, 2, 4, 8, then 10 for ever (the cap), however many failures
    (the exponent is bounded too: no overflow after thousands)."""
    backoff = Backoff(jitter=0.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert backoff.failures == 8
    for _ in range(2_000):
        last = backoff.next_delay()
    assert last == 10.0


def test_backoff_jitter_stays_within_ten_percent_either_way() -> None:
    """Each delay is spread by +/- jitter (10 % by default): the ends of the range give
    exactly 0.9 and 1.1 times the delay, and a thousand random draws stay inside them and
    are not all the same."""
    low = Backoff(rng=Fixed("low"))
    high = Backoff(rng=Fixed("high"))
    assert [low.next_delay() for _ in range(6)] == pytest.approx([0.45, 0.9, 1.8, 3.6, 7.2, 9.0])
    assert [high.next_delay() for _ in range(6)] == pytest.approx([0.55, 1.1, 2.2, 4.4, 8.8, 11.0])
    seeded = Backoff(rng=random.Random(14))
    spread = []
    for _ in range(1_000):
        seeded.reset()
        spread.append(seeded.next_delay())
    assert all(0.45 <= d <= 0.55 for d in spread)
    assert len(set(spread)) > 100


def test_backoff_reset_starts_again_from_the_initial_delay() -> None:
    """After a success (reset), the next failure waits the initial delay again."""
    backoff = Backoff(initial=0.25, cap=3.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.25, 0.5, 1.0, 2.0, 3.0]
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next_delay() == 0.25
