"""follow (``pglog tail -f``): every row once, also a row that commits after rows with
higher ids were already shown (ids are taken before a transaction commits), and under
concurrent writers on plain PostgreSQL and on Citus."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from engines import CitusCluster
from fleet import Fleet
from helpers import true_within
from psycopg import sql

from pglog._table import reader
from pglog._table.filters import Filter
from pglog._table.migrate import ensure_table
from pglog._table.schema import TableName


class Follower:
    """``reader.follow`` in a thread of its own, keeping every row it yields."""

    def __init__(self, dsn: str, table: str, after_id: int = 0) -> None:
        self.ids: list[int] = []
        self._conn = psycopg.connect(dsn)
        self._rows = reader.follow(
            self._conn, TableName("public", table), Filter(), after_id, interval=0.05
        )
        self._thread = threading.Thread(target=self._run, name="follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for row in self._rows:
                self.ids.append(int(row["id"]))
        except psycopg.Error:
            pass  # the connection was closed under it: the test is over

    def stop(self) -> None:
        self._conn.close()
        self._thread.join(10)


def insert(conn: psycopg.Connection[Any], table: str, message: str) -> int:
    found = conn.execute(
        sql.SQL(
            'INSERT INTO {} ("timestamp", level, logger_name, hostname, message)'
            " VALUES (now(), 'INFO', 'follow', 'h', %s) RETURNING id"
        ).format(sql.Identifier(table)),
        (message,),
    ).fetchone()
    assert found is not None
    return int(found[0])


def test_a_row_that_commits_late_is_shown_once(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """A transaction takes id n and commits only after id n+1 was committed and shown:
    the follower shows n too (a cursor on id alone never would), and nothing twice."""
    ensure_table(db, TableName("public", table))
    follower = Follower(pg_dsn, table)
    try:
        with psycopg.connect(pg_dsn) as slow:
            late = insert(slow, table, "late")  # in a transaction, not committed yet
            early = insert(db, table, "early")
            assert early > late
            assert true_within(lambda: early in follower.ids, 10)
            slow.commit()
        assert true_within(lambda: late in follower.ids, 10), follower.ids
        after = insert(db, table, "after")
        assert true_within(lambda: after in follower.ids, 10)
    finally:
        follower.stop()
    assert follower.ids == [early, late, after]


@pytest.mark.parametrize("engine", ["plain", "citus"])
def test_concurrent_writers_lose_no_row_to_the_follower(
    engine: str, pg_dsn: str, table: str, request: pytest.FixtureRequest
) -> None:
    """Four writers with small batches, a follower polling beside them: it shows every
    row, once (a cursor on id alone missed 0.4 % on PostgreSQL and 18 % on Citus)."""
    dsn = pg_dsn
    if engine == "citus":
        cluster: CitusCluster = request.getfixturevalue("citus")
        dsn = cluster.dsn
    fleet = Fleet(
        dsn,
        table,
        ["w1", "w2", "w3", "w4"],
        batch_size=50,
        engine=engine if engine == "citus" else None,
    )
    for writer in fleet:
        assert writer.handler.check_database() is None
    follower = Follower(dsn, table)
    try:
        fleet.start(1_000, 1_000.0)
        tally = fleet.finish()
        assert not tally.missing
        with psycopg.connect(dsn) as conn:
            ids = sorted(
                int(i)
                for (i,) in conn.execute(
                    sql.SQL("SELECT id FROM {}").format(sql.Identifier(table))
                ).fetchall()
            )
        assert true_within(lambda: len(follower.ids) >= len(ids), 20)
    finally:
        follower.stop()
        if engine == "citus":
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    assert len(ids) == 4_000
    assert sorted(follower.ids) == ids  # every row, none twice
