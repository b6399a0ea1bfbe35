"""Concurrent pglog-like writers + a follower polling id > last: rows the follower never saw."""
import datetime as dt, sys, threading, time
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines, gen
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate
from pglog._writer.sink import _transaction_queries
BEGIN, _ = _transaction_queries(True)
NOW = dt.datetime.now(dt.timezone.utc)
T = TableName("public", "logs")
lines = list(gen.rows(20000, NOW, dt.timedelta(minutes=1)))
def experiment(label, dsn, seconds=20, writers=4):
    stop = threading.Event()
    def write(w):
        with psycopg.connect(dsn) as c:
            i = 0
            while not stop.is_set():
                with c.cursor() as cur:
                    cur.execute(BEGIN, (60000, 10000)); cur.fetchone()
                    with cur.copy(copy_statement(T)) as cp:
                        cp.write("".join(lines[(i % 40) * 500:(i % 40 + 1) * 500]))
                c.commit(); i += 1
    seen = set()
    def follow():
        with psycopg.connect(dsn, autocommit=True) as c:
            last = c.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()[0]
            while not stop.is_set():
                got = c.execute("SELECT id FROM logs WHERE id > %s ORDER BY id LIMIT 1000", (last,)).fetchall()
                for (i,) in got: seen.add(i)
                if got: last = got[-1][0]
                else: time.sleep(0.05)
    with psycopg.connect(dsn, autocommit=True) as c:
        start = c.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()[0]
    ths = [threading.Thread(target=write, args=(w,)) for w in range(writers)] + [threading.Thread(target=follow)]
    for t in ths: t.start()
    time.sleep(seconds); stop.set()
    for t in ths: t.join()
    with psycopg.connect(dsn, autocommit=True) as c:
        ids = {i for (i,) in c.execute("SELECT id FROM logs WHERE id > %s", (start,)).fetchall()}
        maxseen = max(seen) if seen else 0
    missed = {i for i in ids if i <= maxseen} - seen
    print(f"{label}: {len(ids)} rows written by {writers} writers in {seconds}s; the follower never saw {len(missed)} ({100*len(missed)/max(1,len(ids)):.2f}%)")
plain = engines.Node("plain", {})
cl = engines.CitusCluster(settings={"citus.shard_count": "8"})
try:
    plain.start(); cl.start()
    for dsn, dist in ((plain.dsn, None), (cl.dsn, "id")):
        with psycopg.connect(dsn) as c:
            migrate.migrate(c, T, build_indexes=False); c.commit(); c.autocommit = True
            if dist: c.execute("SELECT create_distributed_table('logs', 'id')")
    experiment("plain PostgreSQL 15", plain.dsn)
    experiment("Citus, by id, 8 shards", cl.dsn)
finally:
    plain.destroy(); cl.destroy()
