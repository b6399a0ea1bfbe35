import datetime as dt, sys, time
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines, gen
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate
from pglog._writer.sink import _transaction_queries
BEGIN, STATUS = _transaction_queries(True)
NOW = dt.datetime.now(dt.timezone.utc)
BATCHES, SIZE = 100, 500
lines = list(gen.rows(SIZE * BATCHES, NOW - dt.timedelta(hours=1), dt.timedelta(hours=1)))
# one writer = one host: its batches carry one hostname
def one_host(chunk):
    return [l.replace("\tweb-2.prod.internal\t", "\tweb-1.prod.internal\t").replace("\tweb-3.prod.internal\t", "\tweb-1.prod.internal\t").replace("\tweb-4.prod.internal\t", "\tweb-1.prod.internal\t").replace("\tworker-1.prod.internal\t", "\tweb-1.prod.internal\t").replace("\tworker-2.prod.internal\t", "\tweb-1.prod.internal\t") for l in chunk]
batches = ["".join(one_host(lines[i * SIZE:(i + 1) * SIZE])) for i in range(BATCHES)]
for shards in ("32", "8"):
    cl = engines.CitusCluster(settings={"citus.shard_count": shards})
    try:
        cl.start()
        for name, dist, pk in (("local", None, None), ("by_id", "id", None), ("by_hostname", "hostname", "id, hostname")):
            if shards == "8" and name == "local": continue
            T = TableName("public", name)
            with cl.connect(autocommit=False) as conn:
                migrate.migrate(conn, T, build_indexes=False); conn.commit(); conn.autocommit = True
                if pk: conn.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_pkey, ADD PRIMARY KEY ({pk})")
                if dist: conn.execute(f"SELECT create_distributed_table('{name}', '{dist}')")
                conn.autocommit = False
                times = []
                for b in batches:
                    t = time.perf_counter()
                    with conn.cursor() as cur:
                        cur.execute(BEGIN, (60000, 10000)); cur.fetchone()
                        with cur.copy(copy_statement(T)) as cp: cp.write(b)
                    conn.commit()
                    times.append(time.perf_counter() - t)
                times.sort()
                print(f"shard_count {shards:>2} {name:<12} {SIZE}-row batches: median {times[len(times)//2]*1000:6.1f} ms, p90 {times[int(len(times)*.9)]*1000:6.1f} ms -> {SIZE/(sum(times)/len(times)):8.0f} rows/s; 2PC records: {conn.execute('SELECT count(*) FROM pg_dist_transaction').fetchone()[0]}")
                conn.rollback()
    finally:
        cl.destroy()
