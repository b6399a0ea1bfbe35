import datetime as dt, sys
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import engines, gen
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate
NOW = dt.datetime.now(dt.timezone.utc)
c = engines.CitusCluster(settings={"citus.shard_count": "8", "log_min_messages": "warning"})
try:
    c.start()
    conn = c.connect(autocommit=False)
    t = TableName("public", "logs")
    migrate.migrate(conn, t, build_indexes=False); conn.commit()
    conn.execute("SELECT create_distributed_table('logs', 'id')"); conn.commit()
    with conn.cursor() as cur, cur.copy(copy_statement(t)) as cp:
        for ch in gen.chunks(100000, NOW - dt.timedelta(days=3), dt.timedelta(days=3)): cp.write(ch)
    conn.commit()
    q = '''EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT id, pglog_hit, pglog_n FROM (
      SELECT visited.*, row_number() OVER (ORDER BY "timestamp" DESC, id DESC) AS pglog_n
      FROM (SELECT *, (level = ANY('{ERROR,CRITICAL}')) AS pglog_hit FROM logs WHERE TRUE
      ORDER BY "timestamp" DESC, id DESC LIMIT 20000) AS visited) AS numbered WHERE pglog_hit OR pglog_n = 20000
      ORDER BY "timestamp" DESC, id DESC LIMIT 101'''
    for row in conn.execute(q).fetchall(): print(row[0])
    conn.rollback()
    q2 = '''EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT id FROM logs WHERE level = ANY('{ERROR,CRITICAL}') ORDER BY "timestamp" DESC, id DESC LIMIT 101'''
    for row in conn.execute(q2).fetchall(): print(row[0])
finally:
    c.destroy()
