"""What the layout benchmarks share: the four layouts on servers of their own, and the
server's side of the bill (CPU time and WAL) read from the outside.

Every layout runs on the same Debian PostgreSQL 15 build (the engines are extensions of
it), with durable settings (fsync on: WAL is part of the cost being measured) and the
memory a small real server would have. ``tests/engines.py`` starts them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from engines import CitusCluster, Node, TimescaleServer

from pglog._table.migrate import migrate
from pglog._table.schema import TableName

LAYOUTS = ("plain", "partitioned", "timescaledb", "citus")
#: A server as it would be set up for logs, not for fast tests.
SERVER = {
    "fsync": "on",
    "full_page_writes": "on",
    "shared_buffers": "2GB",
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "max_connections": "200",
    "log_min_messages": "warning",
}


@dataclass
class Deployment:
    """One layout's servers: where to write (``dsn``) and every node that does the work."""

    layout: str
    dsn: str
    nodes: list[Node]
    owner: Any = field(repr=False, default=None)

    def cpu_seconds(self) -> float:
        """CPU time every server process has used so far (the exited ones included)."""
        return sum(tree_cpu_seconds(pid) for pid in self.pids())

    def pids(self) -> list[int]:
        return [pid for node in self.nodes if (pid := node.postmaster_pid()) is not None]

    def wal_bytes(self) -> int:
        """WAL written so far, summed over the nodes."""
        total = 0
        for node in self.nodes:
            with node.connect() as conn:
                row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
                total += int(row[0]) if row else 0
        return total

    def destroy(self) -> None:
        if isinstance(self.owner, CitusCluster):
            self.owner.destroy()
        else:
            for node in self.nodes:
                node.destroy()


@contextlib.contextmanager
def deployed(layout: str, table: str = "logs", workers: int = 2) -> Iterator[Deployment]:
    """Servers for ``layout`` with pglog's table made (``pglog init`` and its flag)."""
    if layout == "citus":
        cluster = CitusCluster(workers=workers, settings={**SERVER, "shared_buffers": "1GB"})
        cluster.start()
        deployment = Deployment(layout, cluster.dsn, cluster.nodes, cluster)
    elif layout == "timescaledb":
        server: Node = TimescaleServer(SERVER)
        server.start()
        deployment = Deployment(layout, server.dsn, [server])
    else:
        server = Node(layout, SERVER)
        server.start()
        deployment = Deployment(layout, server.dsn, [server])
    try:
        with psycopg.connect(deployment.dsn) as conn:
            migrate(
                conn,
                TableName("public", table),
                build_indexes=False,
                partition="day" if layout == "partitioned" else None,
                engine=layout if layout in ("citus", "timescaledb") else None,  # type: ignore[arg-type]
            )
        yield deployment
    finally:
        deployment.destroy()


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid``, its live children, and the children it has reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for index, process in enumerate([pid, *_children(pid)]):
        fields = _stat(process)
        if fields is None:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if index == 0:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
    return total / tick


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
