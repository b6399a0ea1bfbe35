"""Citus delivery: handlers of several hosts write through the coordinator into a table
distributed by hostname; rows land on every worker, and each record is stored exactly
once through a worker restarted mid-stream, the coordinator restarted mid-stream, and
the connection cut before and after the COMMIT's reply. Counts are compared with what
was emitted, and every handler's ledger must balance."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from engines import CitusCluster, running
from faultproxy import FaultProxy
from fleet import Fleet, assert_exactly_once
from helpers import stored_count, true_within
from psycopg import sql

from pglog._writer.retry import Disposition, classify

#: Records per writer, and their rate (per writer): a few seconds of traffic.
COUNT, RATE = 1_500, 500.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[CitusCluster]:
    """One cluster for the module: tests restart its nodes, and leave them running."""
    with running("citus", CitusCluster) as made:
        yield made


@pytest.fixture
def table(cluster: CitusCluster) -> Iterator[str]:
    name = f"c_{uuid.uuid4().hex[:10]}"
    yield name
    with cluster.connect() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def spread_hosts(cluster: CitusCluster, table: str, wanted: int = 3) -> list[str]:
    """Host names whose rows land on different workers, every worker at least once."""
    probe = f"{table}_probe"
    with cluster.connect() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (hostname text)").format(sql.Identifier(probe)))
        conn.execute("SELECT create_distributed_table(%s, 'hostname')", (probe,))
        chosen: dict[int, list[str]] = {}
        for n in range(200):
            host = f"app-{n}.example"
            port = conn.execute(
                "SELECT nodeport FROM citus_shards WHERE shardid ="
                " get_shard_id_for_distribution_column(%s::regclass, %s::text)",
                (probe, host),
            ).fetchone()
            assert port is not None
            chosen.setdefault(int(port[0]), []).append(host)
            if len(chosen) == len(cluster.workers) and sum(map(len, chosen.values())) >= wanted:
                break
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(probe)))
    hosts = [group[0] for group in chosen.values()]
    others = [host for group in chosen.values() for host in group[1:]]
    return (hosts + others)[:wanted]


def started(cluster: CitusCluster, table: str, dsn: str | None = None) -> Fleet:
    fleet = Fleet(dsn or cluster.dsn, table, spread_hosts(cluster, table), engine="citus")
    for writer in fleet:
        assert writer.handler.check_database() is None
    fleet.start(COUNT, RATE)
    return fleet


def reached(cluster: CitusCluster, table: str, rows: int) -> None:
    assert true_within(lambda: stored_count(cluster.dsn, table) >= rows, 60), (
        f"{table} never reached {rows} rows"
    )


def test_rows_land_on_every_worker_once_through_worker_restarts(
    cluster: CitusCluster, table: str
) -> None:
    """Worker 0 restarted (fast), then worker 1 killed (-9) and started, while three
    hosts write: Citus answers with connection errors relayed from the workers, which
    are retried (never handed to the fallback), and every record is stored once, the
    rows spread over both workers."""
    fleet = started(cluster, table)
    total = COUNT * len(fleet.writers)
    reached(cluster, table, total // 4)
    cluster.worker(0).restart("fast")
    reached(cluster, table, total // 2)
    cluster.worker(1).kill()
    cluster.worker(1).start()
    tally = fleet.finish()
    assert_exactly_once(fleet, tally, "worker restarts")
    on_workers = cluster.shard_rows(table)
    assert all(rows > 0 for rows in on_workers), on_workers
    assert sum(on_workers) == total
    assert sum(stats["retries"] for stats in fleet.stats) > 0, "no fault reached the writers"


def test_every_record_once_through_coordinator_restarts(cluster: CitusCluster, table: str) -> None:
    """The coordinator restarted (fast), then killed (-9) and started, mid-stream: the
    batches whose COMMIT was lost are looked up (a killed coordinator may give their
    transaction ids again), none is lost or stored twice."""
    fleet = started(cluster, table)
    total = COUNT * len(fleet.writers)
    reached(cluster, table, total // 4)
    cluster.coordinator.restart("fast")
    reached(cluster, table, total // 2)
    cluster.coordinator.kill()
    cluster.coordinator.start()
    tally = fleet.finish()
    assert_exactly_once(fleet, tally, "coordinator restarts")
    assert sum(cluster.shard_rows(table)) == total
    assert sum(stats["retries"] for stats in fleet.stats) > 0, "no fault reached the writers"


def test_every_record_once_when_the_commit_reply_is_lost(cluster: CitusCluster, table: str) -> None:
    """The client's connection to the coordinator cut three times right after COMMIT
    reached it (the reply never comes back: committed, but the writer can't know) and
    twice right before (not committed): the lookup tells them apart, nothing is doubled."""
    proxy = FaultProxy(cluster.port)
    try:
        fleet = started(cluster, table, dsn=proxy.dsn)
        total = COUNT * len(fleet.writers)
        reached(cluster, table, total // 5)
        proxy.arm("after_commit", 3)
        reached(cluster, table, total // 2)
        proxy.arm("before_commit", 2)
        tally = fleet.finish()
        cuts = dict(proxy.cuts)
    finally:
        proxy.close()
    assert_exactly_once(fleet, tally, f"commit replies lost {cuts}")
    assert cuts["after_commit"] == 3
    assert cuts["before_commit"] == 2
    assert sum(cluster.shard_rows(table)) == total


def test_a_stale_worker_connection_is_an_error_to_retry(cluster: CitusCluster, table: str) -> None:
    """After a worker restart, the coordinator's cached connection to it fails the next
    statement with Citus's internal error (XX000) or a relayed connection error: the
    writer must take it for a lost node (retry), not a bad batch (reject)."""
    insert = sql.SQL("INSERT INTO {} SELECT 'h' || i, i FROM generate_series(1, 50) i").format(
        sql.Identifier(table)
    )
    with cluster.connect() as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (hostname text, n int)").format(sql.Identifier(table))
        )
        conn.execute("SELECT create_distributed_table(%s, 'hostname')", (table,))
        conn.execute(insert)
        cluster.worker(0).restart("fast")
        cluster.worker(1).restart("fast")
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(insert)
    error = caught.value
    print(f"{error.sqlstate}: {error}")
    assert error.sqlstate in ("XX000", "08006", "57P01", "58030", None)
    assert classify(error) is Disposition.RETRY
