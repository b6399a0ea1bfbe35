"""pglog's benchmark suite: caller cost, throughput against the ceiling, latency, memory,
cost growth, retention, the search index, scrubbing. One command, one PostgreSQL, one
table of results (and a JSON file).

    python bench/run.py                    # the full suite: bigger counts, two rounds, 5M rows
    python bench/run.py --quick            # smaller counts, one round: about ten minutes
    python bench/run.py --only scrubbing   # one section (or --only search-index)

Uses $PGLOG_BENCH_DSN (or $PGLOG_TEST_DSN), or starts a throwaway embedded PostgreSQL.
Every figure that matters is a ratio to a baseline measured in the same run: these
machines are shared and noisy, and absolute times move from run to run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import logging.handlers
import multiprocessing
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))
import scrubbing
from baselines import InsertPerRecordHandler, copy_directly
from common import database, publish

from pglog import DatabaseLogHandler
from pglog._table import partitions
from pglog._table.migrate import ensure_table
from pglog._table.retention import prune
from pglog._table.schema import TableName
from pglog._writer.ledger import Place

EXTRA = {"user_id": 42, "request_id": "req-7f3a", "path": "/orders/1042"}


def fresh_table(dsn: str, name: str) -> str:
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.commit()
        ensure_table(conn, TableName("public", name))
    return name


def row_count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def bench_logger(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(f"bench.{name}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


# -- 1. caller cost --------------------------------------------------------------------------


def time_calls(log: logging.Logger, calls: int, extra: bool, chunk: int = 100) -> list[float]:
    """ns per call, as the mean of each chunk of ``chunk`` calls."""
    info, clock = log.info, time.perf_counter_ns
    samples = []
    kwargs: dict[str, Any] = {"extra": EXTRA} if extra else {}
    for start in range(0, calls, chunk):
        began = clock()
        for i in range(start, start + chunk):
            info("msg %s", i, **kwargs)
        samples.append((clock() - began) / chunk)
    return samples


Maker = Callable[[], tuple[logging.Handler, Callable[[], None]]]


def caller_cost(dsn: str, calls: int, rounds: int) -> dict[str, Any]:
    """ns per logger.info(), plain and with a 3-key extra, for each handler and regime.

    Burst: the handlers' consumers are idle, so the variants are measured side by side,
    a chunk of 100 calls each in turn, under the same machine conditions. Sustained:
    the consumer works while the caller logs; each such block is measured between two
    blocks of the floor, since its background work would disturb anything run beside it.
    """
    pglog_table = fresh_table(dsn, "bench_caller")

    def null() -> tuple[logging.Handler, Callable[[], None]]:
        return logging.NullHandler(), lambda: None

    def queue_burst() -> tuple[logging.Handler, Callable[[], None]]:
        return logging.handlers.QueueHandler(queue.SimpleQueue()), lambda: None

    def queue_sustained() -> tuple[logging.Handler, Callable[[], None]]:
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        listener = logging.handlers.QueueListener(q, logging.NullHandler())
        listener.start()
        return logging.handlers.QueueHandler(q), listener.stop

    def pglog_burst() -> tuple[logging.Handler, Callable[[], None]]:
        handler = DatabaseLogHandler(
            dsn, table=pglog_table, batch_size=10**7, queue_size=10**7, flush_interval=3600
        )
        return handler, lambda: _discard(handler)

    def pglog_sustained() -> tuple[logging.Handler, Callable[[], None]]:
        handler = DatabaseLogHandler(dsn, table=pglog_table)
        return handler, lambda: _close(handler)

    def naive() -> tuple[logging.Handler, Callable[[], None]]:
        handler = InsertPerRecordHandler(dsn, fresh_table(dsn, "bench_naive"))
        return handler, handler.close

    burst: dict[str, Maker] = {
        "NullHandler (floor)": null,
        "pglog, burst": pglog_burst,
        "QueueHandler, burst": queue_burst,
    }
    blocks: dict[str, tuple[Maker, int]] = {
        "pglog, sustained": (pglog_sustained, calls // rounds),
        "QueueHandler + listener, sustained": (queue_sustained, calls // rounds),
        "INSERT per record": (naive, max(300, calls // 200)),
    }
    raw: dict[str, dict[str, list[float]]] = {}
    floors: dict[str, dict[str, list[float]]] = {}
    for kind in ("plain", "extra"):
        extra = kind == "extra"
        made = {name: make() for name, make in burst.items()}
        loggers = {
            name: bench_logger(f"burst{i}", h) for i, (name, (h, _)) in enumerate(made.items())
        }
        for log in loggers.values():
            time_calls(log, 1_000, extra)  # warm up
        for _ in range(calls // 100):
            for name, log in loggers.items():
                raw.setdefault(name, {}).setdefault(kind, []).extend(time_calls(log, 100, extra))
        for _, stop in made.values():
            stop()
        gc.collect()
        floor_log = bench_logger("floor", logging.NullHandler())
        for name, (make, count) in blocks.items():
            for _ in range(rounds):
                handler, stop = make()
                log = bench_logger(name.replace(" ", "_"), handler)
                time_calls(log, min(1_000, count), extra)  # warm up (and start the consumer)
                floors.setdefault(name, {}).setdefault(kind, []).extend(
                    time_calls(floor_log, count, extra)
                )
                raw.setdefault(name, {}).setdefault(kind, []).extend(time_calls(log, count, extra))
                stop()
                floors[name][kind].extend(time_calls(floor_log, count, extra))
                gc.collect()
    result: dict[str, Any] = {}
    for kind in ("plain", "extra"):
        for name in [*burst, *blocks]:
            samples = sorted(raw[name][kind])
            floor_samples = floors.get(name, raw["NullHandler (floor)"])[kind]
            median = statistics.median(samples)
            result[f"{name} [{kind}]"] = {
                "median_ns": round(median),
                "p99_ns": round(samples[int(len(samples) * 0.99) - 1]),
                "ratio": round(median / statistics.median(floor_samples), 2),
            }
    return result


INSTRUCTIONS_SCRIPT = """
import logging, logging.handlers, queue, sys
import pglog
from pglog import DatabaseLogHandler
which, calls, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if which == "null":
    handler = logging.NullHandler()
elif which == "queue":
    handler = logging.handlers.QueueHandler(queue.SimpleQueue())
else:
    handler = DatabaseLogHandler("postgresql://nobody@127.0.0.1:9/none", batch_size=10**8,
                                 queue_size=10**8, queue_max_bytes=1 << 40, flush_interval=3600,
                                 fallback=None)
log = logging.getLogger("instructions"); log.propagate = False; log.addHandler(handler)
log.setLevel(logging.INFO)
if kind == "plain":
    for i in range(calls):
        log.info("msg %s", i)
else:  # five scalar extras, two bound fields, and what OpenTelemetry's instrumentation adds
    extra = {"user_id": 42, "path": "/orders/1042", "status": 200, "duration_ms": 1.5,
             "cached": True, "otelTraceID": "0af7651916cd43dd8448eb211c80319c",
             "otelSpanID": "b7ad6b7169203331", "otelServiceName": "shop",
             "otelTraceSampled": True}
    with pglog.bind(request_id="req-7f3a", tenant="acme"):
        for i in range(calls):
            log.info("msg %s", i, extra=extra)
import os; os._exit(0)
"""


def instructions() -> dict[str, Any] | None:
    """Instructions per logger.info() under callgrind: unlike time, the same from run to run,
    whatever else the machine is doing. Two run lengths, so start-up cancels out."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None

    def count(which: str, calls: int, kind: str) -> int:
        out = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                "-c",
                INSTRUCTIONS_SCRIPT,
                which,
                str(calls),
                kind,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        ).stderr
        return int(next(line for line in out.splitlines() if "Collected" in line).split()[-1])

    per_call = {
        (which, kind): (count(which, 6_000, kind) - count(which, 1_000, kind)) / 5_000
        for kind in ("plain", "structured")
        for which in ("null", "pglog", "queue")
    }
    return {
        f"{name} [{kind}]": {
            "instructions": round(per_call[which, kind]),
            "ratio": round(per_call[which, kind] / per_call["null", kind], 3),
        }
        for kind in ("plain", "structured")
        for name, which in (
            ("NullHandler (floor)", "null"),
            ("pglog, burst", "pglog"),
            ("QueueHandler, burst", "queue"),
        )
    }


def _discard(handler: DatabaseLogHandler) -> None:
    """End a burst measurement without writing millions of rows: what is queued is
    counted as dropped, then the handler closes."""
    queue = handler._pipeline.queue
    run, _ = queue.take(queue.maxsize + 1, Place.HANDING)
    with queue.ledger.lock:
        queue.ledger.release(Place.HANDING, run)
        queue.ledger.end("dropped", run.count)
    handler.close()


def _close(handler: DatabaseLogHandler) -> None:
    handler.close_timeout = 300
    handler.close()


# -- 2. throughput -------------------------------------------------------------------------


def throughput_threads(dsn: str, table: str, records: int, threads: int) -> float:
    """Records per second from the first emit() until flush() says all are committed.
    overflow="block": when the caller outruns the database, it waits instead of dropping."""
    handler = DatabaseLogHandler(dsn, table=table, fallback=None, overflow="block")
    log = bench_logger(f"threads{threads}", handler)
    per = records // threads

    def work() -> None:
        info = log.info
        for i in range(per):
            info("msg %s", i)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert handler.flush(600)
    elapsed = time.perf_counter() - began
    stats = handler.stats()
    handler.close()
    assert stats["written"] == per * threads, stats
    return per * threads / elapsed


def _process_worker(job: tuple[str, str, int, str], go: Any, done: Any) -> None:
    dsn, table, count, mode = job
    if mode == "pglog":
        handler = DatabaseLogHandler(dsn, table=table, fallback=None, overflow="block")
        log = bench_logger("process", handler)
        go.wait()
        info = log.info
        for i in range(count):
            info("msg %s", i)
        assert handler.flush(600)
        handler.close()
    else:
        made = logging.getLogger("bench.ceiling")
        records = [
            made.makeRecord("bench.ceiling", logging.INFO, __file__, 1, "msg %s", (i,), None)
            for i in range(count)
        ]
        go.wait()
        copy_directly(dsn, table, records, 500)
    done.put(time.time())


def throughput_processes(dsn: str, table: str, records: int, processes: int, mode: str) -> float:
    context = multiprocessing.get_context("spawn")
    go, done = context.Event(), context.Queue()
    workers = [
        context.Process(
            target=_process_worker, args=((dsn, table, records // processes, mode), go, done)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(3)  # let the workers import and build what they need before the clock starts
    began = time.time()
    go.set()
    ended = max(float(done.get(timeout=600)) for _ in workers)
    for worker in workers:
        worker.join(60)
    return records // processes * processes / (ended - began)


def ceiling(dsn: str, table: str, records: int) -> float:
    made = logging.getLogger("bench.ceiling")
    batch = [
        made.makeRecord("bench.ceiling", logging.INFO, __file__, 1, "msg %s", (i,), None)
        for i in range(records)
    ]
    began = time.perf_counter()
    copy_directly(dsn, table, batch, 500)
    return records / (time.perf_counter() - began)


# -- 3. latency ------------------------------------------------------------------------------


def _poll_visible(dsn: str, table: str, expected: int, out: Any) -> None:
    seen: list[tuple[float, float]] = []
    last = 0
    query = sql.SQL("SELECT id, message FROM {} WHERE id > %s ORDER BY id").format(
        sql.Identifier(table)
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        while len(seen) < expected:
            rows = conn.execute(query, (last,)).fetchall()
            now = time.time()
            for row_id, message in rows:
                seen.append((float(message), now))
                last = row_id
            time.sleep(0.002)
    out.put([now - emitted for emitted, now in seen])


def latency(dsn: str, table: str, rate: int, seconds: float) -> dict[str, float]:
    """Emit at a steady ``rate``; p50/p99 from emit() until another connection sees the row."""
    expected = int(rate * seconds)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    poller = context.Process(target=_poll_visible, args=(dsn, table, expected, out))
    poller.start()
    handler = DatabaseLogHandler(dsn, table=table)
    log = bench_logger("latency", handler)
    began = time.perf_counter()
    for i in range(expected):
        target = began + i / rate
        while (delay := target - time.perf_counter()) > 0:
            time.sleep(min(delay, 0.001))
        log.info("%.6f", time.time())
    handler.flush(60)
    latencies = sorted(out.get(timeout=120))
    poller.join(30)
    handler.close()
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "flush_interval_ms": handler._settings["flush_interval"] * 1000,
    }


# -- 4. memory -------------------------------------------------------------------------------


MEMORY_SCRIPT = """
import logging, json
from pglog import DatabaseLogHandler
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS"))
handler = DatabaseLogHandler("postgresql://nobody@127.0.0.1:9/none", queue_size={n},
                             fallback=None, close_timeout=1)
log = logging.getLogger("memory"); log.propagate = False; log.addHandler(handler)
log.warning("warm up")
before = rss()
for i in range({n}):
    log.warning("request %d handled in %.1f ms", i, 12.5)
after = rss()
queued = handler.stats()["pending"]
print(json.dumps({{"queued": queued, "rss_before": before, "rss_after": after}}))
"""


def memory(records: int) -> dict[str, Any]:
    """RSS while ``records`` records are queued against a database that is down."""
    script = MEMORY_SCRIPT.format(n=records)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=900
    ).stdout
    measured = json.loads(out.splitlines()[-1])
    grown = measured["rss_after"] - measured["rss_before"]
    return {
        "queue_size": records,
        "queued": measured["queued"],
        "rss_growth_mb": round(grown / 2**20, 1),
        "bytes_per_record": round(grown / measured["queued"]),
    }


# -- 5. cost growth ------------------------------------------------------------------------


def fill(dsn: str, table: str, rows: int) -> None:
    """Grow ``table`` to ``rows`` realistic rows (with its five indexes in place)."""
    have = row_count(dsn, table)
    if have >= rows:
        return
    statement = sql.SQL(
        "INSERT INTO {} (timestamp, level, logger_name, process_id, thread_id, thread_name,"
        " hostname, message, function_name, module, filename, lineno, pathname, extra_data)"
        " SELECT now() - i * interval '10 ms',"
        " (ARRAY['DEBUG','INFO','INFO','INFO','WARNING','ERROR'])[1 + i %% 6],"
        " 'app.component' || (i %% 40), 1000 + i %% 7, 140000000000 + i %% 13,"
        " 'worker-' || (i %% 8),"
        " 'host-' || (i %% 3), 'request ' || i || ' handled in ' || (i %% 997) || ' ms',"
        " 'handle', 'views', 'views.py', 42, '/srv/app/views.py',"
        " jsonb_build_object('user_id', i %% 5000, 'request_id', md5(i::text))"
        " FROM generate_series(%s, %s) AS i"
    ).format(sql.Identifier(table))
    with psycopg.connect(dsn, autocommit=True) as conn:
        step = 500_000
        for start in range(have + 1, rows + 1, step):
            conn.execute(statement, (start, min(start + step - 1, rows)))
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        conn.execute("CHECKPOINT")  # measure the steady state, not the fill's write-back
    os.sync()


# -- 6. retention --------------------------------------------------------------------------


def retention(dsn: str, rows: int, partition: str | None) -> dict[str, Any]:
    """``rows`` rows spread over 60 days, prune everything older than 30: how long it takes,
    and the longest a writer committing a row at the same time had to wait."""
    name = "bench_retention" + ("_partitioned" if partition else "")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    table = TableName("public", name)
    with psycopg.connect(dsn) as conn:
        ensure_table(conn, table, partition)
        if partition:
            today = partitions.period_start(dt.datetime.now(dt.timezone.utc), partition)
            for days in range(1, 61):
                partitions.make(conn, table, partition, today - dt.timedelta(days=days))
    with psycopg.connect(dsn, autocommit=True) as conn:  # spread the rows over 60 days
        conn.execute(
            sql.SQL(
                'INSERT INTO {} ("timestamp", level, logger_name, message, hostname)'
                " SELECT now() - (i %% 60) * interval '1 day', 'INFO', 'app', 'row ' || i, 'h'"
                " FROM generate_series(1, %s) AS i"
            ).format(sql.Identifier(name)),
            (rows,),
        )
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(name)))
        conn.execute("CHECKPOINT")
    waits: list[float] = []
    stop = threading.Event()

    def writer() -> None:
        insert = sql.SQL(
            'INSERT INTO {} ("timestamp", level, logger_name, message)'
            " VALUES (now(), 'INFO', 'w', 'w')"
        ).format(sql.Identifier(name))
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                began = time.perf_counter()
                conn.execute(insert)
                waits.append(time.perf_counter() - began)

    beside = threading.Thread(target=writer)
    beside.start()
    with psycopg.connect(dsn) as conn:
        began = time.perf_counter()
        done = prune(conn, table, dt.timedelta(days=30))
        took = time.perf_counter() - began
    stop.set()
    beside.join()
    return {
        "layout": f"partitioned by {partition}" if partition else "plain",
        "rows": rows,
        "partitions_dropped": len(done.partitions),
        "deleted_rows": done.rows,
        "seconds": round(took, 2),
        "writer_max_wait_ms": round(max(waits) * 1000, 1),
        "writer_p99_wait_ms": round(sorted(waits)[int(len(waits) * 0.99) - 1] * 1000, 1),
    }


# -- the run -----------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    records = 50_000 if quick else 200_000
    calls = 20_000 if quick else 100_000
    rounds = 1 if quick else 2
    with database() as dsn:
        results = _header(dsn, quick)
        step("caller cost")
        results["caller_cost"] = caller_cost(dsn, calls, rounds)
        if not quick:
            step("caller cost in instructions (valgrind)")
            results["caller_instructions"] = instructions()

        step("throughput")
        paths: dict[str, Callable[[str], float]] = {
            "ceiling, direct COPY, 1 process": lambda t: ceiling(dsn, t, records),
            "pglog, 1 thread": lambda t: throughput_threads(dsn, t, records, 1),
            "pglog, 4 threads": lambda t: throughput_threads(dsn, t, records, 4),
            "ceiling, direct COPY, 4 processes": lambda t: throughput_processes(
                dsn, t, records, 4, "ceiling"
            ),
            "pglog, 4 processes": lambda t: throughput_processes(dsn, t, records, 4, "pglog"),
        }
        measured: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(rounds):  # interleaved, so a slow spell of the machine hits all paths
            for name, measure in paths.items():
                measured[name].append(measure(fresh_table(dsn, "bench_t")))
        results["throughput"] = {k: round(statistics.median(v)) for k, v in measured.items()}

        step("latency")
        results["latency"] = latency(
            dsn, fresh_table(dsn, "bench_latency"), 5_000, 3 if quick else 6
        )

        step("memory")
        results["memory"] = memory(200_000 if quick else 1_000_000)

        step("cost growth")
        growth: dict[str, Any] = {}
        table = fresh_table(dsn, "bench_growth")
        sizes = [0, 1_000_000] if quick else [0, 1_000_000, 5_000_000]
        for size in sizes:
            fill(dsn, table, size)
            before = row_count(dsn, table)
            direct = ceiling(dsn, table, records)
            rate = throughput_threads(dsn, table, records, 1)
            handler = DatabaseLogHandler(dsn, table=table)
            log = bench_logger("growth", handler)
            sustained = statistics.median(time_calls(log, calls, False))
            _close(handler)
            growth[f"{before:,} rows"] = {
                "records_per_s": round(rate),
                "ceiling_per_s": round(direct),
                "sustained_ns": round(sustained),
            }
        results["cost_growth"] = growth

        step("retention")
        size = 500_000 if quick else 2_000_000
        results["retention"] = [retention(dsn, size, layout) for layout in (None, "day")]

        step("the search index's cost")
        results["search_index"] = search_index_cost(dsn, records, rounds + 1)

        step("scrubbing")
        results["scrubbing"] = scrubbing.measure(
            dsn, fresh_table(dsn, "bench_scrub"), calls, _discard
        )
    return results


def run_only(section: str, quick: bool) -> dict[str, Any]:
    """One section (``--only search-index`` or ``--only scrubbing``), with the run's header."""
    with database() as dsn:
        results = _header(dsn, quick)
        step(section)
        if section == "search-index":
            results["search_index"] = search_index_cost(dsn, 200_000, 3)
        else:
            calls = 20_000 if quick else 100_000
            results["scrubbing"] = scrubbing.measure(
                dsn, fresh_table(dsn, "bench_scrub"), calls, _discard
            )
    return results


def _header(dsn: str, quick: bool) -> dict[str, Any]:
    """What every run's results open with: when, on what machine, which PostgreSQL."""
    with psycopg.connect(dsn) as conn:
        postgres = conn.info.parameter_status("server_version")
    return {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "quick": quick,
        "postgres": postgres,
    }


# -- 7. the search index's cost to writing ------------------------------------------------


def search_index_cost(dsn: str, records: int, rounds: int) -> dict[str, Any]:
    """Records per second into a table with the search index (pg_trgm) and into the same
    table without it, through pglog (one thread) and by direct COPY, with the records a
    service logs (a formatted message, three extras), interleaved round by round."""
    made = logging.getLogger("bench.search")
    batch = [
        made.makeRecord(
            made.name,
            logging.INFO,
            __file__,
            1,
            "GET /orders/%d -> 200 in %d ms",
            (i, i % 97),
            None,
            extra={**EXTRA, "user_id": i % 5000},
        )
        for i in range(records)
    ]
    measured: dict[str, list[float]] = {
        f"{how}, {index}": [] for how in ("pglog", "direct COPY") for index in ("with", "without")
    }
    for _ in range(rounds):
        for index in ("with", "without"):
            table = fresh_table(dsn, "bench_search")
            if index == "without":
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP INDEX {}").format(sql.Identifier(f"idx_{table}_search"))
                    )
            began = time.perf_counter()
            copy_directly(dsn, table, batch, 500)
            measured[f"direct COPY, {index}"].append(records / (time.perf_counter() - began))
            handler = DatabaseLogHandler(dsn, table=table, fallback=None, overflow="block")
            log = bench_logger("search", handler)
            began = time.perf_counter()
            for i in range(records):
                log.info(
                    "GET /orders/%d -> 200 in %d ms",
                    i,
                    i % 97,
                    extra={**EXTRA, "user_id": i % 5000},
                )
            assert handler.flush(600)
            measured[f"pglog, {index}"].append(records / (time.perf_counter() - began))
            _close(handler)
    rates = {name: round(statistics.median(values)) for name, values in measured.items()}
    return {
        "records": records,
        "records_per_s": rates,
        "pglog_cost": round(1 - rates["pglog, with"] / rates["pglog, without"], 3),
        "copy_cost": round(1 - rates["direct COPY, with"] / rates["direct COPY, without"], 3),
    }


def step(name: str) -> None:
    print(f"... {name}", file=sys.stderr, flush=True)


def report(results: dict[str, Any]) -> str:
    lines = [
        f"pglog benchmarks  {results['when']}  {results['machine']},"
        f" PostgreSQL {results['postgres']}"
    ]

    def table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
        lines.extend(["", title])
        lines.extend(
            "  " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True))
            for row in (header, *rows)
        )

    if "caller_cost" not in results:  # one section only (--only)
        for title, header, rows in _later_sections(results):
            table(title, header, rows)
        return "\n".join(lines)
    cost = results["caller_cost"]
    table(
        "1. Caller cost per logger.info() (median and p99 of 100-call means; ratio to NullHandler)",
        ("handler", "plain ns", "p99", "ratio", "3-key extra ns", "p99", "ratio"),
        [
            (
                name.removesuffix(" [plain]"),
                cost[name]["median_ns"],
                cost[name]["p99_ns"],
                f"{cost[name]['ratio']}x",
                cost[name.replace("[plain]", "[extra]")]["median_ns"],
                cost[name.replace("[plain]", "[extra]")]["p99_ns"],
                f"{cost[name.replace('[plain]', '[extra]')]['ratio']}x",
            )
            for name in cost
            if name.endswith("[plain]")
        ],
    )
    if results.get("caller_instructions"):
        counted = results["caller_instructions"]
        table(
            "1b. The same, counted in CPU instructions under callgrind (repeatable to the unit);"
            " structured: five scalar extras, two bound fields, OpenTelemetry's four",
            ("handler", "instructions/call", "ratio"),
            [(name, c["instructions"], f"{c['ratio']}x") for name, c in counted.items()],
        )
    t = results["throughput"]
    one, four = t["ceiling, direct COPY, 1 process"], t["ceiling, direct COPY, 4 processes"]
    table(
        "2. Throughput, first emit() to last commit (records/s; share of the ceiling)",
        ("path", "records/s", "of ceiling"),
        [
            (name, f"{value:,}", f"{value / (four if 'processes' in name else one):.0%}")
            for name, value in t.items()
        ],
    )
    lat = results["latency"]
    table(
        "3. Latency at 5,000 records/s, emit() to visible in another connection",
        ("p50 ms", "p99 ms", "flush_interval ms"),
        [(lat["p50_ms"], lat["p99_ms"], lat["flush_interval_ms"])],
    )
    mem = results["memory"]
    table(
        "4. Memory with the database down",
        ("queue_size", "queued", "RSS growth MB", "bytes/record"),
        [
            (
                f"{mem['queue_size']:,}",
                f"{mem['queued']:,}",
                mem["rss_growth_mb"],
                mem["bytes_per_record"],
            )
        ],
    )
    growth = results["cost_growth"]
    first = next(iter(growth.values()))
    table(
        "5. Cost growth with the table's size (five indexes; direct COPY shows the server's part)",
        (
            "table",
            "records/s",
            "vs empty",
            "direct COPY/s",
            "vs empty",
            "sustained ns/call",
            "vs empty",
        ),
        [
            (
                size,
                f"{g['records_per_s']:,}",
                f"{g['records_per_s'] / first['records_per_s']:.0%}",
                f"{g['ceiling_per_s']:,}",
                f"{g['ceiling_per_s'] / first['ceiling_per_s']:.0%}",
                g["sustained_ns"],
                f"{g['sustained_ns'] / first['sustained_ns']:.2f}x",
            )
            for size, g in growth.items()
        ],
    )
    table(
        "6. Retention: rows older than 30 of 60 days removed, a writer inserting beside it",
        ("table", "partitions dropped", "rows deleted", "seconds", "writer p99 ms", "max ms"),
        [
            (
                f"{r['rows']:,} rows, {r['layout']}",
                r["partitions_dropped"],
                f"{r['deleted_rows']:,}",
                r["seconds"],
                r["writer_p99_wait_ms"],
                r["writer_max_wait_ms"],
            )
            for r in results["retention"]
        ],
    )
    for title, header, rows in _later_sections(results):
        table(title, header, rows)
    return "\n".join(lines)


def _later_sections(
    results: dict[str, Any],
) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    """Sections 7 and 8, those of them ``results`` holds (``--only`` runs one alone)."""
    found: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = []
    if "search_index" in results:
        cost = results["search_index"]
        rates = cost["records_per_s"]
        found.append(
            (
                "7. The search index's cost to writing (pg_trgm over message, exception and"
                " extras)",
                ("path", "with the index/s", "without/s", "cost"),
                [
                    (
                        how,
                        f"{rates[f'{how}, with']:,}",
                        f"{rates[f'{how}, without']:,}",
                        f"{share:.0%}",
                    )
                    for how, share in (
                        ("pglog", cost["pglog_cost"]),
                        ("direct COPY", cost["copy_cost"]),
                    )
                ],
            )
        )
    if "scrubbing" in results:
        found.extend(scrubbing.tables(results["scrubbing"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, one round")
    parser.add_argument(
        "--only", choices=("search-index", "scrubbing"), help="run this section only"
    )
    args = parser.parse_args()
    results = run_only(args.only, args.quick) if args.only else run(args.quick)
    publish(results, report(results), prefix=f"{args.only}-" if args.only else "")


if __name__ == "__main__":
    main()
