"""Does pglog's query set work on Citus, per layout? Compares results with a plain local table."""
from __future__ import annotations
import datetime as dt, json, sys, time, traceback
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg
from psycopg import sql
import engines, gen
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate, reader, reports, partitions
from pglog._table.filters import Filter
from pglog._web import queries

import os
SHARDS = os.environ.get("SHARDS", "32")
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
DEBUG = len(sys.argv) > 3
ONLY = sys.argv[2].split(",") if len(sys.argv) > 2 else None
NOW = dt.datetime.now(dt.timezone.utc)
START = NOW - dt.timedelta(days=3)

LAYOUTS = {
    # name: (partition, primary key or None to keep, distribution column)
    "id": (None, None, "id"),
    "hostname": (None, "id, hostname", "hostname"),
    "timestamp": (None, 'id, "timestamp"', "timestamp"),
    "logger_name": (None, "id, logger_name", "logger_name"),
    "day+id": ("day", None, "id"),
    "day+hostname": ("day", 'id, "timestamp", hostname', "hostname"),
}

def load(conn, table):
    with conn.cursor() as cur, cur.copy(copy_statement(table)) as copy:
        for chunk in gen.chunks(ROWS, START, NOW - START - dt.timedelta(minutes=1)):
            copy.write(chunk)
    conn.commit()

def setup(conn, table, partition, pk, column):
    migrate.migrate(conn, table, build_indexes=False, partition=partition)
    conn.autocommit = True
    if pk:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}, ADD PRIMARY KEY ({})").format(
            table.identifier, sql.Identifier(table.name + "_pkey"), sql.SQL(pk)))
    if column:
        t = time.monotonic()
        conn.execute("SELECT create_distributed_table(%s, %s)", (str(table), column))
        print(f"  create_distributed_table: {time.monotonic()-t:.2f}s")
    conn.autocommit = False

FILTERS = {
    "none": Filter(),
    "24h WARNING+": Filter.parse(since="24h", level="WARNING", now=NOW),
    "logger app.api": Filter.parse(since="24h", logger="app.api", now=NOW),
    "grep timeout": Filter.parse(since="24h", grep="timeout", now=NOW),
    "extra.user_id=42": Filter.parse(since="72h", where=["extra.user_id=42"], now=NOW),
    "last 2h": Filter.parse(since="2h", now=NOW),
}

def calls(table, newest):
    c = {}
    for fname, f in FILTERS.items():
        c[f"reader.rows {fname}"] = lambda conn, f=f: reader.rows(conn, table, f, limit=100)
        c[f"web.page {fname}"] = lambda conn, f=f: (lambda p: (p.rows, p.next and str(p.next)))(queries.page(conn, table, f, limit=100))
        c[f"web.arrivals {fname}"] = lambda conn, f=f: (lambda a: (a.rows, a.last_id, a.complete))(queries.arrivals(conn, table, f, after_id=newest - 5000, limit=200))
    c["reader.rows after_id (tail)"] = lambda conn: reader.rows(conn, table, Filter(), limit=1000, after_id=newest - 3000, newest_first=False)
    c["reader.follow first batch"] = lambda conn: next(reader.follow(conn, table, Filter(), newest - 2000))
    c["reader.stats 24h"] = lambda conn: (lambda s: (s.by_level, s.by_logger, s.by_hour))(reader.stats(conn, table, Filter.parse(since="24h", now=NOW)))
    c["reader.stats all"] = lambda conn: (lambda s: (s.by_level, s.by_logger, s.by_hour))(reader.stats(conn, table, Filter()))
    c["reader.stream 1h"] = lambda conn: list(reader.stream(conn, table, Filter.parse(since="1h", now=NOW)))
    c["reader.health newest"] = lambda conn: reader.health(conn, table).newest
    c["reader.footprint"] = lambda conn: reader.footprint(conn, table)
    c["web.newest_id"] = lambda conn: queries.newest_id(conn, table)
    c["web.volume 24h"] = lambda conn: (lambda v: [(b.start, b.counts) for b in v.bars])(queries.volume(conn, table, Filter.parse(since="24h", until="0s", now=NOW)))
    c["web.volume 24h ERROR"] = lambda conn: (lambda v: [(b.start, b.counts) for b in v.bars])(queries.volume(conn, table, Filter.parse(since="24h", until="0s", level="ERROR", now=NOW)))
    c["web.facts"] = lambda conn: (lambda f: (f.estimated_rows, f.total_bytes, f.basis, f.by_level, f.by_logger, f.newest, f.oldest))(queries.facts(conn, table))
    c["error groups (exception, top 20)"] = lambda conn: conn.execute(sql.SQL(
        "SELECT logger_name, left(message, 40), count(*), max(id) FROM {} WHERE level IN ('ERROR','CRITICAL')"
        " AND \"timestamp\" > now() - interval '24 hours' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 20").format(table.identifier)).fetchall()
    c["hostname filter page"] = lambda conn: conn.execute(sql.SQL(
        "SELECT id FROM {} WHERE hostname = 'worker-2.prod.internal' ORDER BY \"timestamp\" DESC, id DESC LIMIT 100").format(table.identifier)).fetchall()
    return c

def run(conn, name, fn, reps=3):
    best = None
    for _ in range(reps):
        t = time.perf_counter()
        try:
            out = fn(conn)
            conn.rollback()
        except Exception as e:
            conn.rollback()
            return "ERROR", f"{type(e).__name__} {getattr(e, 'sqlstate', '')}: {' '.join(str(e).split())[:300]}", None
        el = (time.perf_counter() - t) * 1000
        best = el if best is None else min(best, el)
    return "ok", out, best

def main():
    cluster = engines.CitusCluster(settings={"citus.shard_count": SHARDS})
    try:
        cluster.start()
        conn = cluster.connect(autocommit=False)
        ref = TableName("public", "ref_logs")
        setup(conn, ref, None, None, None)
        t = time.monotonic(); load(conn, ref); print(f"reference (local table on the coordinator): load {time.monotonic()-t:.1f}s")
        conn.autocommit = True; conn.execute("VACUUM ANALYZE ref_logs"); conn.autocommit = False
        newest = queries.newest_id(conn, ref); conn.rollback()
        ref_calls = calls(ref, newest)
        ref_out = {k: run(conn, k, fn) for k, fn in ref_calls.items()}
        summary = {}
        for lname, (partition, pk, column) in LAYOUTS.items():
            if ONLY and lname not in ONLY:
                continue
            print(f"== layout {lname}: partition={partition} pk={pk or 'default'} distributed by {column}")
            table = TableName("public", "logs_" + lname.replace("+", "_"))
            try:
                setup(conn, table, partition, pk, column)
            except Exception as e:
                conn.rollback(); conn.autocommit = False
                print("  SETUP ERROR", type(e).__name__, getattr(e, "sqlstate", ""), " ".join(str(e).split())[:400])
                continue
            t = time.monotonic()
            try:
                load(conn, table)
            except Exception as e:
                conn.rollback()
                print("  LOAD ERROR", type(e).__name__, getattr(e, "sqlstate", ""), " ".join(str(e).split())[:400]); continue
            print(f"  load {ROWS} rows by COPY through the coordinator: {time.monotonic()-t:.1f}s")
            conn.autocommit = True; conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table.identifier)); conn.autocommit = False
            sizes = conn.execute("SELECT min(c), max(c), count(*) FROM (SELECT shard_size c FROM citus_shards WHERE table_name::text LIKE %s) s", (table.name + "%",)).fetchone()
            conn.rollback()
            print(f"  shard sizes (bytes) min {sizes[0]} max {sizes[1]} over {sizes[2]} shards; rows per worker {cluster.shard_rows(table.name) if not partition else 'n/a (partitioned)'}")
            tnewest = queries.newest_id(conn, table); conn.rollback()
            results = {}
            for k, fn in calls(table, tnewest).items():
                status, out, ms = run(conn, k, fn)
                rstatus, rout, rms = ref_out[k]
                same = status == "ok" and rstatus == "ok" and out == rout
                note = "same as local" if same else ("DIFFERENT" if status == "ok" else "")
                if status == "ok" and not same and DEBUG:
                    import difflib
                    a, b = repr(out), repr(rout)
                    i = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
                    print("    first difference at", i, ":", a[max(0,i-150):i+150], "\n    local:", b[max(0,i-150):i+150])
                if status == "ok" and not same and k in ("reader.footprint", "web.facts"):
                    note = f"DIFFERENT: {str(out)[:160]} vs local {str(rout)[:160]}"
                results[k] = (status, ms, rms)
                print(f"  {k:<34} {status:<5} {'' if ms is None else f'{ms:8.1f} ms'} (local {rms:7.1f} ms) {note} {out if status=='ERROR' else ''}")
            summary[lname] = results
            # prune, one batch
            cutoff = NOW - dt.timedelta(days=2)
            try:
                t = time.monotonic(); n = reader.prune_batch(conn, table, cutoff, 10_000); conn.commit()
                print(f"  prune_batch(10000): deleted {n} in {time.monotonic()-t:.2f}s")
            except Exception as e:
                conn.rollback(); print("  prune_batch ERROR", type(e).__name__, getattr(e, "sqlstate", ""), " ".join(str(e).split())[:300])
            if partition:
                try:
                    t = time.monotonic(); d = partitions.drop_older(conn, table, cutoff); conn.commit()
                    print(f"  partitions.drop_older: {d} in {time.monotonic()-t:.2f}s")
                except Exception as e:
                    conn.rollback(); print("  drop_older ERROR", type(e).__name__, getattr(e, "sqlstate", ""), " ".join(str(e).split())[:300])
                try:
                    made = partitions.ensure_ahead(conn, table, "day", NOW + dt.timedelta(days=2)); conn.commit()
                    print(f"  partitions.ensure_ahead (+2 days): {made}")
                except Exception as e:
                    conn.rollback(); print("  ensure_ahead ERROR", type(e).__name__, getattr(e, "sqlstate", ""), " ".join(str(e).split())[:300])
            # migrate again: indexes concurrently
            try:
                conn.autocommit = True
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(table.index_name("hostname"))))
                conn.autocommit = False
                t = time.monotonic(); steps = migrate.migrate(conn, table, build_indexes=True); conn.commit()
                print(f"  migrate(build_indexes=True) after dropping an index: {steps} {time.monotonic()-t:.2f}s")
            except Exception as e:
                conn.rollback(); conn.autocommit = False; print("  migrate ERROR", type(e).__name__, getattr(e, "sqlstate", ""), " ".join(str(e).split())[:300])
    finally:
        cluster.destroy()

main()
