"""Citus reads: ``pglog init --citus`` makes a table distributed by hostname, and every face
(the CLI's query, tail, export, stats, health and errors; the web view's page walk, live
poll, volume, errors and facts) shows what SQL says is there, with sizes summed over the
shards on the workers rather than the coordinator's empty shell; retention deletes from
every shard."""

from __future__ import annotations

import uuid

from engines import CitusCluster
from psycopg import sql
from readback import assert_read_back, read_back, seed, truth
from test_cli import pglog


def shard_bytes(cluster: CitusCluster, table: str) -> int:
    """Bytes of ``table``'s shards, indexes included, measured on the workers."""
    total = 0
    for index, known_as in enumerate(cluster.registered):
        with cluster.connect_worker(index) as conn:
            for name, port in cluster.shards(table):
                if port == known_as:
                    found = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (name,))
                    total += int(found.fetchone()[0])  # type: ignore[index]
    return total


def test_every_read_the_same_on_a_distributed_table(citus: CitusCluster) -> None:
    """Rows on both workers; every read equal to SQL's; the size is the shards'; pglog
    prune deletes what is past its cutoff from every shard."""
    table = f"r_{uuid.uuid4().hex[:10]}"
    try:
        made = pglog("init", "--dsn", citus.dsn, "--table", table, "--citus")
        assert made.returncode == 0, made.stderr
        assert "a Citus distributed table (by hostname)" in made.stdout
        seed(citus.dsn, table)
        assert all(rows > 0 for rows in citus.shard_rows(table))
        expected = truth(citus.dsn, table)
        found = read_back(citus.dsn, table)
        assert_read_back(found, expected)
        assert found["web"]["facts"]["total_bytes"] == shard_bytes(citus, table)
        pruned = pglog("prune", "--dsn", citus.dsn, "--table", table, "--older-than", "2d")
        assert pruned.returncode == 0, pruned.stderr
        with citus.connect() as conn:
            left = conn.execute(
                sql.SQL(
                    "SELECT count(*) FILTER (WHERE \"timestamp\" < now() - interval '2 days'),"
                    " count(*) FROM {}"
                ).format(sql.Identifier(table))
            ).fetchone()
        assert left == (0, 600)
        assert pruned.stdout.startswith("deleted 300 rows older than 2d")
    finally:
        with citus.connect() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
