import datetime as dt, sys, time
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import engines, gen
from psycopg import sql
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate, reader
from pglog._table.filters import Filter
NOW = dt.datetime.now(dt.timezone.utc); START = NOW - dt.timedelta(days=3)
c = engines.CitusCluster(settings={"citus.shard_count": "32"})
try:
    c.start()
    conn = c.connect(autocommit=False)
    for name, dist in (("ref", None), ("dist", "id")):
        t = TableName("public", name)
        migrate.migrate(conn, t, build_indexes=False); conn.commit()
        if dist: conn.execute("SELECT create_distributed_table(%s, 'id')", (name,)); conn.commit()
        with conn.cursor() as cur, cur.copy(copy_statement(t)) as cp:
            for ch in gen.chunks(50000, START, dt.timedelta(days=3)): cp.write(ch)
        conn.commit()
        print(name, conn.execute(sql.SQL("SELECT min(id), max(id), count(*) FROM {}").format(t.identifier)).fetchone())
        inv = conn.execute(sql.SQL('SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY "timestamp") AS prev FROM {}) s WHERE id < prev').format(t.identifier)).fetchone()
        print(name, "rows whose id is lower than the id of the row before in timestamp order (input order):", inv)
        print(name, "footprint", reader.footprint(conn, t)); conn.rollback()
        print(name, conn.execute(sql.SQL('SELECT id, "timestamp" FROM {} ORDER BY "timestamp" LIMIT 12').format(t.identifier)).fetchall())
        conn.rollback()
    print(conn.execute("SELECT citus_total_relation_size('dist'), citus_table_size('dist'), pg_total_relation_size('ref')").fetchone())
    print(conn.execute("SELECT seqrelid::regclass, seqstart, seqincrement, seqcache FROM pg_sequence").fetchall())
finally:
    c.destroy()
