"""Many hosts into one database: application processes, each with a host name of its own,
logging through PgBouncer into each layout (plain, partitioned by day, TimescaleDB
hypertable, Citus with two workers), as a fleet does.

    python bench/hosts.py                            # 8 hosts x 25,000 records per layout
    python bench/hosts.py --hosts 16 --records 10000 --layouts plain,citus
    python bench/hosts.py --layouts plain --without search     # what the search index costs

Each process is its own interpreter with its own ``DatabaseLogHandler`` (``hostname``
patched at birth, so a Citus batch lands on its host's shard), logging realistic
records (levels, loggers, templated messages, extras, 1 % with a traceback) as fast
as the handler takes them. PgBouncer pools them in transaction mode (pglog's writer
prepares no statements and keeps no session state, so that works) onto a few server
connections. Measured per layout, from the first record to the last commit: records
per second, the servers' CPU per row (every node's processes, read from /proc: the
application processes and PgBouncer run on the same two cores, so records/s is the
box's, but CPU per row is the server's own bill), WAL per row (summed over the nodes)
and bytes on disk per million rows.

Not part of CI: it measures speed. Compare layouts within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))
from common import publish
from layouts import LAYOUTS, Deployment, deployed

from pglog import DatabaseLogHandler
from pglog._table import reader
from pglog._table.schema import INDEX_SUFFIXES, TableName

TABLE = TableName("public", "logs")
LOGGERS = ("app.api", "app.db", "app.auth", "app.cache", "app.billing", "app.jobs")
#: Levels as logs have them: 30 % DEBUG, 58 % INFO, 8 % WARNING, 3 % ERROR, 1 % CRITICAL.
LEVELS = [logging.DEBUG] * 30 + [logging.INFO] * 58 + [logging.WARNING] * 8
LEVELS += [logging.ERROR] * 3 + [logging.CRITICAL]


@contextmanager
def pgbouncer(target: str, pool: int) -> Iterator[str]:
    """PgBouncer in front of ``target``, transaction pooling onto ``pool`` connections;
    yields the DSN to give the applications."""
    where = urlsplit(target)
    directory = Path(tempfile.mkdtemp(prefix="pglog-bouncer-"))
    directory.chmod(0o755)
    port = _free_port()
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"postgres = host={where.hostname} port={where.port} dbname=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool}\nmax_client_conn = 1000\n"
        f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    as_user = []
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        as_user = ["-u", "postgres"]
        shutil.chown(directory, "postgres")
    subprocess.run(
        ["pgbouncer", "-d", *as_user, str(directory / "pgbouncer.ini")], check=True, cwd="/"
    )
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    try:
        _wait_for(dsn)
        yield dsn
    finally:
        pid = int((directory / "pgbouncer.pid").read_text())
        os.kill(pid, 15)
        shutil.rmtree(directory, ignore_errors=True)


def application(host: str, dsn: str, records: int, go: Any, done: Any) -> None:
    """One application host: its handler (then None on ``done``: ready), then ``records``
    records as fast as it takes them, once ``go`` is set; puts (host, written, fallback)
    on ``done``."""
    socket.gethostname = lambda: host
    handler = DatabaseLogHandler(
        dsn, create_table=False, overflow="block", fallback=None, close_timeout=600
    )
    log = logging.getLogger(f"bench.{host}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    done.put(None)
    go.wait()
    for i in range(records):
        extra = {"request_id": f"{host}-{i:x}", "user_id": i % 50_000, "status": 200}
        extra["duration_ms"] = (i % 9973) / 10
        logger = logging.getLogger(LOGGERS[i * 40503 % 1000 % len(LOGGERS)])
        level = LEVELS[i * 2654435761 % 100]
        if i % 100 == 0:
            try:
                raise TypeError("unsupported operand type(s) for *: 'NoneType' and 'int'")
            except TypeError:
                log.error("order %d failed", i, exc_info=True, extra=extra)
            continue
        log.log(level, "GET /orders/%d -> 200 in %d ms (%s)", i, i % 997, logger.name, extra=extra)
    handler.flush(600)
    stats = handler.stats()
    handler.close()
    done.put((host, stats["written"], stats["fallback"]))


def measure(
    layout: str, hosts: int, records: int, pool: int, without: Sequence[str] = ()
) -> dict[str, Any]:
    print(f"{layout}: starting", flush=True)
    context = multiprocessing.get_context("spawn")
    with deployed(layout) as deployment, pgbouncer(deployment.dsn, pool) as dsn:
        with psycopg.connect(deployment.dsn, autocommit=True) as conn:
            for what in without:
                conn.execute(
                    sql.SQL("DROP INDEX {}").format(sql.Identifier(TABLE.index_name(what)))
                )
        go, done = context.Event(), context.Queue()
        processes = [
            context.Process(target=application, args=(f"host-{n}", dsn, records, go, done))
            for n in range(hosts)
        ]
        for process in processes:
            process.start()
        for _ in processes:
            assert done.get(timeout=120) is None
        cpu, wal = deployment.cpu_seconds(), deployment.wal_bytes()
        began = time.monotonic()
        go.set()
        results = [done.get(timeout=900) for _ in processes]
        took = time.monotonic() - began
        cpu, wal = deployment.cpu_seconds() - cpu, deployment.wal_bytes() - wal
        for process in processes:
            process.join()
        total = sum(written for _, written, _ in results)
        assert total == hosts * records, results
        assert all(fallback == 0 for *_, fallback in results), results
        sizes = _sizes(deployment, total)
    return {
        "hosts": hosts,
        "records": total,
        "records_per_s": round(total / took),
        "server_cpu_us_per_row": round(cpu / total * 1e6, 1),
        "rows_per_server_core_s": round(total / cpu) if cpu else None,
        "wal_bytes_per_row": round(wal / total),
        **sizes,
    }


def _sizes(deployment: Deployment, rows: int) -> dict[str, int]:
    """Bytes per million rows as written, and (hypertable) once every chunk is compressed."""
    with psycopg.connect(deployment.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE logs")
        size, _ = reader.footprint(conn, TABLE)
        found = {"bytes_per_million": round(size / rows * 1e6)}
        if deployment.layout == "timescaledb":
            conn.execute("SELECT count(compress_chunk(c, true)) FROM show_chunks('logs') c")
            packed, _ = reader.footprint(conn, TABLE)
            found["compressed_bytes_per_million"] = round(packed / rows * 1e6)
    return found


def report(results: dict[str, Any]) -> str:
    layouts = results["layouts"]
    names = list(layouts)
    lines = [
        f"Many hosts through PgBouncer: {results['hosts']} processes x {results['records']:,}"
        f" records, per layout (indexes dropped: {', '.join(results['without']) or 'none'})"
    ]
    lines.append(f"  {'':<36}" + "".join(f"{name:>14}" for name in names))
    for key in (
        "records_per_s",
        "server_cpu_us_per_row",
        "rows_per_server_core_s",
        "wal_bytes_per_row",
        "bytes_per_million",
        "compressed_bytes_per_million",
    ):
        cells = "".join(f"{layouts[n].get(key, '-')!s:>14}" for n in names)
        lines.append(f"  {key:<36}{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--records", type=int, default=25_000, help="per host")
    parser.add_argument("--pool", type=int, default=4, help="server connections per layout")
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument(
        "--without",
        default="",
        help="pglog's indexes to drop first, by suffix (search,level,...): what each costs",
    )
    args = parser.parse_args()
    without = [what for what in args.without.split(",") if what]
    assert set(without) <= set(INDEX_SUFFIXES), f"indexes are {', '.join(INDEX_SUFFIXES)}"
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hosts": args.hosts,
        "records": args.records,
        "without": without,
        "layouts": {},
    }
    for layout in args.layouts.split(","):
        results["layouts"][layout] = measure(layout, args.hosts, args.records, args.pool, without)
        print(results["layouts"][layout], flush=True)
    publish(results, report(results), prefix="hosts-")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(dsn: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    main()
