import datetime as dt, sys, re
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import engines, gen, qset
from psycopg import sql
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate
from pglog._table.filters import Filter
NOW = qset.NOW
ts = engines.TimescaleServer(settings={"shared_buffers": "256MB"})
try:
    ts.start()
    c = ts.connect(autocommit=False)
    T = TableName("public", "logs")
    migrate.migrate(c, T, build_indexes=False); c.commit(); c.autocommit = True
    c.execute('ALTER TABLE logs DROP CONSTRAINT logs_pkey, ADD PRIMARY KEY (id, "timestamp")')
    c.execute("SELECT create_hypertable('logs', by_range('timestamp', INTERVAL '1 day'), create_default_indexes => false)")
    with c.cursor() as cur, cur.copy(copy_statement(T)) as cp:
        for ch in gen.chunks(300000, NOW - dt.timedelta(days=7), dt.timedelta(days=7) - dt.timedelta(minutes=1)): cp.write(ch)
    c.execute("VACUUM ANALYZE logs")
    Q = {
      "page newest": 'SELECT id FROM logs ORDER BY "timestamp" DESC, id DESC LIMIT 100',
      "page level ERROR+ (7d)": "SELECT id FROM logs WHERE level = ANY('{ERROR,CRITICAL}') AND \"timestamp\" >= now() - interval '7 days' ORDER BY \"timestamp\" DESC, id DESC LIMIT 100",
      "page level CRITICAL": "SELECT id FROM logs WHERE level = 'CRITICAL' ORDER BY \"timestamp\" DESC, id DESC LIMIT 100",
      "page logger (rare)": "SELECT id FROM logs WHERE (logger_name = 'app.db.migrations' OR logger_name LIKE 'app.db.migrations.%') ORDER BY \"timestamp\" DESC, id DESC LIMIT 100",
      "page hostname (rare)": "SELECT id FROM logs WHERE hostname = 'worker-2.prod.internal' ORDER BY \"timestamp\" DESC, id DESC LIMIT 100",
      "tail id > n": "SELECT id FROM logs WHERE id > (SELECT max(id) - 1000 FROM logs) ORDER BY id LIMIT 1000",
      "max(id)": "SELECT max(id) FROM logs",
      "stats by level 24h": "SELECT level, count(*) FROM logs WHERE \"timestamp\" >= now() - interval '24 hours' GROUP BY 1",
      "count level ERROR 24h": "SELECT count(*) FROM logs WHERE level = 'ERROR' AND \"timestamp\" >= now() - interval '24 hours'",
      "logger 24h count": "SELECT count(*) FROM logs WHERE logger_name = 'app.api' AND \"timestamp\" >= now() - interval '24 hours'",
      "prune subquery": "SELECT id FROM logs WHERE \"timestamp\" < now() - interval '6 days' ORDER BY \"timestamp\" LIMIT 10000",
    }
    for name, q in Q.items():
        plan = "\n".join(r[0] for r in c.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + q).fetchall())
        used = sorted(set(re.findall(r"(idx_logs_\w+|logs_pkey)", plan)))
        ms = re.search(r"Execution Time: ([\d.]+)", plan).group(1)
        used = sorted(set(re.sub(r"^_hyper_\d+_\d+_chunk_", "", u) for u in used))
        print(f"{name:<26} {ms:>8} ms  indexes used: {', '.join(used) or 'none (seq scan)'}")
    print("index sizes on 300k rows:", c.execute("SELECT replace(i.relname, ch.table_name || '_', ''), sum(pg_relation_size(i.oid)) FROM timescaledb_information.chunks ch JOIN pg_class t ON t.relname = ch.chunk_name JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid GROUP BY 1 ORDER BY 1").fetchall())
finally:
    ts.destroy()
