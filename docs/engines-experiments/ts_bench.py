"""TimescaleDB: pglog's table as a hypertable, 1M realistic rows, compression variants, reads."""
from __future__ import annotations
import datetime as dt, sys, time, os, json
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines, gen, qset
from psycopg import sql
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate, reader
from pglog._web import queries
from pglog._writer.sink import _transaction_queries
BEGIN, STATUS = _transaction_queries(True)
ROWS = int(os.environ.get("ROWS", "1000000"))
DAYS = 7
NOW = qset.NOW
START = NOW - dt.timedelta(days=DAYS)
T = TableName("public", "logs")
VARIANTS = {
    "A segmentby level": ("level", '"timestamp" DESC, id DESC'),
    "B segmentby logger_name": ("logger_name", '"timestamp" DESC, id DESC'),
    "C segmentby hostname": ("hostname", '"timestamp" DESC, id DESC'),
    "D no segmentby": ("", '"timestamp" DESC, id DESC'),
}
ONLY = os.environ.get("VARIANTS")
SHOW = ["reader.rows none", "web.page none", "reader.rows 24h WARNING+", "web.page 24h WARNING+", "reader.rows logger app.api",
        "reader.rows grep timeout", "web.page grep timeout", "reader.rows extra.user_id=42", "web.page extra.user_id=42",
        "web.arrivals none", "reader.rows after_id (tail)", "reader.follow first batch", "reader.stats 24h", "reader.stats all",
        "reader.stream 1h", "web.newest_id", "web.volume 24h", "web.volume 24h ERROR", "web.facts", "error groups (exception, top 20)",
        "hostname filter page", "reader.footprint", "reader.health newest"]

def size(conn, table="logs"):
    return conn.execute("SELECT table_bytes, index_bytes, toast_bytes, total_bytes FROM hypertable_detailed_size(%s)", (table,)).fetchone()

def mb(b): return f"{float(b or 0)/1e6:7.1f} MB"

def timings(conn, label, ref=None):
    newest = queries.newest_id(conn, T); conn.rollback()
    out = {}
    for k, fn in qset.calls(T, newest).items():
        if k not in SHOW: continue
        st, res, ms = qset.run(conn, k, fn)
        out[k] = (st, res, ms)
    return out

def main():
    ts = engines.TimescaleServer(settings={"shared_buffers": "512MB", "maintenance_work_mem": "256MB", "work_mem": "32MB",
                                            "max_wal_size": "4GB", "checkpoint_timeout": "30min"})
    try:
        ts.start()
        conn = ts.connect(autocommit=True)
        print(conn.execute("SELECT extversion FROM pg_extension WHERE extname='timescaledb'").fetchone())
        # staging
        conn.execute("CREATE UNLOGGED TABLE src (LIKE pg_catalog.pg_class)") if False else None
        c2 = ts.connect(autocommit=False)
        migrate.migrate(c2, TableName("public", "plain"), build_indexes=False); c2.commit()
        t = time.monotonic()
        with c2.cursor() as cur, cur.copy(copy_statement(TableName("public", "plain"))) as cp:
            for ch in gen.chunks(ROWS, START, dt.timedelta(days=DAYS) - dt.timedelta(minutes=1)): cp.write(ch)
        c2.commit()
        print(f"plain pglog table: {ROWS} rows loaded by one COPY (indexes in place) in {time.monotonic()-t:.1f}s (includes generating the rows in Python)")
        conn.execute("VACUUM ANALYZE plain")
        p = conn.execute("SELECT pg_table_size('plain'), pg_indexes_size('plain'), pg_total_relation_size('plain')").fetchone()
        print(f"plain table: heap+toast {mb(p[0])}, indexes {mb(p[1])}, total {mb(p[2])}")
        for name, in conn.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'plain'::regclass").fetchall():
            print(f"   {name}: {mb(conn.execute('SELECT pg_relation_size(%s)', (name,)).fetchone()[0])}")
        # hypertable as the README says
        migrate.migrate(c2, T, build_indexes=False); c2.commit()
        conn.execute('ALTER TABLE logs DROP CONSTRAINT logs_pkey, ADD PRIMARY KEY (id, "timestamp")')
        print(conn.execute("SELECT * FROM create_hypertable('logs', by_range('timestamp', INTERVAL '1 day'), create_default_indexes => false, migrate_data => true)").fetchone())
        t = time.monotonic()
        conn.execute('INSERT INTO logs SELECT * FROM plain ORDER BY id')
        conn.execute("SELECT setval('logs_id_seq', (SELECT max(id) FROM logs))")
        print(f"hypertable: INSERT ... SELECT {ROWS} rows in {time.monotonic()-t:.1f}s")
        conn.execute("VACUUM ANALYZE logs")
        chunks = conn.execute("SELECT count(*) FROM show_chunks('logs')").fetchone()[0]
        s = size(conn)
        print(f"hypertable uncompressed, {chunks} chunks: heap {mb(s[0])}, indexes {mb(s[1])}, toast {mb(s[2])}, total {mb(s[3])}")
        # pglog-like batches into the hypertable vs the plain table
        for name in ("plain", "logs"):
            tn = TableName("public", name)
            lines = list(gen.rows(500 * 50, NOW - dt.timedelta(minutes=5), dt.timedelta(minutes=5), seed=7))
            times = []
            for i in range(50):
                t = time.perf_counter()
                with c2.cursor() as cur:
                    cur.execute(BEGIN, (60000, 10000)); *_, pid, xid = cur.fetchone()
                    with cur.copy(copy_statement(tn)) as cp: cp.write("".join(lines[i*500:(i+1)*500]))
                c2.commit(); times.append(time.perf_counter() - t)
            st = c2.execute(STATUS, (xid,)).fetchone()[0]; c2.rollback()
            times.sort()
            print(f"500-row pglog batches into {name}: median {times[25]*1000:.1f} ms, p90 {times[45]*1000:.1f} ms; pg_xact_status of the last: {st}")
        conn.execute("VACUUM ANALYZE logs")
        base = timings(c2, "uncompressed")
        # compression variants
        results = {}
        for vname, (segby, orderby) in VARIANTS.items():
            if ONLY and vname[0] not in ONLY: continue
            conn.execute(sql.SQL("ALTER TABLE logs SET (timescaledb.compress, timescaledb.compress_segmentby = {}, timescaledb.compress_orderby = {})").format(sql.Literal(segby), sql.Literal(orderby)))
            t = time.monotonic()
            n = conn.execute("SELECT count(compress_chunk(c)) FROM show_chunks('logs') c").fetchone()[0]
            took = time.monotonic() - t
            conn.execute("ANALYZE logs")
            s2 = size(conn)
            cs = conn.execute("SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes), sum(after_compression_table_bytes), sum(after_compression_index_bytes), sum(after_compression_toast_bytes) FROM chunk_compression_stats('logs')").fetchone()
            print(f"\n== {vname}, orderby {orderby}: compressed {n} chunks in {took:.1f}s; hypertable total {mb(s2[3])} (was {mb(s[3])}): ratio {float(s[3])/float(s2[3]):.1f}x;"
                  f" chunk_compression_stats before {mb(cs[0])} after {mb(cs[1])} (table {mb(cs[2])}, index {mb(cs[3])}, toast {mb(cs[4])}); per million rows {mb(float(s2[3])*1e6/ROWS)}")
            res = timings(c2, vname)
            for k in SHOW:
                b, r = base[k], res[k]
                same = "same" if (b[0] == r[0] == "ok" and b[1] == r[1]) else ("DIFFERENT" if r[0] == "ok" else "")
                print(f"  {k:<34} uncompressed {b[2] if b[2] is not None else float('nan'):8.1f} ms   compressed {r[2] if r[2] is not None else float('nan'):8.1f} ms  {r[0]} {same} {r[1] if r[0]=='ERROR' else ''}")
            results[vname] = (took, s2, res)
            last = vname
            if vname != list(VARIANTS)[-1] and not (ONLY and vname[0] == ONLY[-1]):
                t = time.monotonic()
                conn.execute("SELECT count(decompress_chunk(c)) FROM show_chunks('logs') c")
                print(f"  (decompressed again in {time.monotonic()-t:.1f}s)")
        # writes into compressed chunks, deletes, pg_xact_status
        late = list(gen.rows(500, NOW - dt.timedelta(days=3), dt.timedelta(minutes=1), seed=9))
        t = time.perf_counter()
        with c2.cursor() as cur:
            cur.execute(BEGIN, (60000, 10000)); *_, pid, xid = cur.fetchone()
            with cur.copy(copy_statement(T)) as cp: cp.write("".join(late))
        c2.commit()
        print(f"\nCOPY of 500 late rows into a compressed chunk: {(time.perf_counter()-t)*1000:.1f} ms; status {c2.execute(STATUS, (xid,)).fetchone()[0]}")
        c2.rollback()
        print("   chunk status after:", conn.execute("SELECT chunk_name, is_compressed FROM timescaledb_information.chunks WHERE hypertable_name='logs' AND range_start <= %s AND range_end > %s", (NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=3))).fetchall(),
              conn.execute("SELECT status FROM _timescaledb_catalog.chunk WHERE id = (SELECT id FROM _timescaledb_catalog.chunk WHERE table_name = (SELECT chunk_name FROM timescaledb_information.chunks WHERE hypertable_name='logs' AND range_start <= %s AND range_end > %s))", (NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=3))).fetchone())
        t = time.monotonic()
        try:
            n = reader.prune_batch(c2, T, NOW - dt.timedelta(days=6), 10_000); c2.commit()
            print(f"prune_batch (DELETE ... id IN (SELECT ... LIMIT 10000)) on compressed chunks: {n} rows in {time.monotonic()-t:.2f}s")
        except psycopg.Error as e:
            c2.rollback()
            print(f"prune_batch on compressed chunks after {time.monotonic()-t:.2f}s: {type(e).__name__} {e.sqlstate}: {' '.join(str(e).split())}")
        for name in ("add_columnstore_policy", "convert_to_columnstore", "add_compression_policy", "compress_chunk"):
            print(f"   function {name}:", conn.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", (name,)).fetchone()[0])
        for opt in ("timescaledb.enable_columnstore = true", "timescaledb.segmentby = 'level'", "timescaledb.orderby = '\"timestamp\" DESC, id DESC'",
                    "timescaledb.sparse_index = 'bloom(message)'", "timescaledb.sparse_index = 'minmax(id)'"):
            try:
                conn.execute(f"ALTER TABLE logs SET ({opt})"); print(f"   ALTER TABLE logs SET ({opt}): ok")
            except psycopg.Error as e:
                print(f"   ALTER TABLE logs SET ({opt}): {e.sqlstate} {' '.join(str(e).split())[:200]}")
        # policies
        conn.execute("ALTER TABLE logs SET (timescaledb.compress_segmentby = 'level')") if False else None
        cj = conn.execute("SELECT add_compression_policy('logs', compress_after => INTERVAL '2 days')").fetchone()[0]
        rj = conn.execute("SELECT add_retention_policy('logs', drop_after => INTERVAL '5 days')").fetchone()[0]
        before = conn.execute("SELECT count(*) FROM show_chunks('logs')").fetchone()[0]
        t = time.monotonic(); conn.execute("CALL run_job(%s)", (rj,)); print(f"retention job (drop_after 5 days) by run_job: {time.monotonic()-t:.2f}s; chunks {before} -> {conn.execute('SELECT count(*) FROM show_chunks(%s)', ('logs',)).fetchone()[0]}; oldest row now {conn.execute('SELECT min(timestamp) FROM logs').fetchone()[0]}")
        # the background scheduler runs the compression policy
        conn.execute("SELECT alter_job(%s, next_start => now())", (cj,))
        for i in range(60):
            time.sleep(1)
            st = conn.execute("SELECT last_run_status, total_successes, total_failures FROM timescaledb_information.job_stats WHERE job_id = %s", (cj,)).fetchone()
            if st and st[1] + st[2] > 0: break
        print(f"compression policy run by the background scheduler after {i+1}s: {st}; errors: {conn.execute('SELECT count(*) FROM timescaledb_information.job_errors').fetchone()[0]}")
        print("jobs:", conn.execute("SELECT job_id, application_name, schedule_interval, config FROM timescaledb_information.jobs WHERE hypertable_name = 'logs'").fetchall())
        f = queries.facts(c2, T); c2.rollback()
        print("web facts: total_bytes", f.total_bytes, "estimated_rows", f.estimated_rows, "basis", f.basis)
        print("footprint by pglog:", reader.footprint(c2, T), "; hypertable_size:", conn.execute("SELECT hypertable_size('logs')").fetchone()[0]); c2.rollback()
        print("server log errors:", [l for l in ts.log_text().splitlines() if "ERROR" in l][-10:])
    finally:
        ts.destroy()

main()
