"""After a crash mid-COPY, is the lost transaction's id reused by the next transaction?"""
import sys, time, json, datetime as dt
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines
from pglog._writer.sink import _transaction_queries
BEGIN, STATUS = _transaction_queries(True)

def trial(node, dsn, label, how, local_marker=False, wait=0.0):
    conn = psycopg.connect(dsn)
    cur = conn.cursor()
    cur.execute(BEGIN, (60000, 10000)); *_, pid, xid = cur.fetchone()
    if local_marker:
        cur.execute("INSERT INTO marker VALUES (%s)", (xid,))
    with cur.copy("COPY t (x) FROM STDIN") as cp:
        for i in range(2000): cp.write_row((f"row {i}",))
    time.sleep(wait)
    # crash before COMMIT
    if how == "kill": node.kill()
    else: node.stop("immediate")
    node.start()
    try: conn.close()
    except Exception: pass
    with psycopg.connect(dsn, autocommit=True) as c:
        try:
            first = c.execute(STATUS, (xid,)).fetchone()[0]
        except psycopg.errors.InvalidParameterValue as e:
            first = "ERROR 22023 " + str(e)
        # another writer's next batch
        c.execute("BEGIN"); other = c.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        c.execute("INSERT INTO t (x) VALUES ('other')" if True else ""); c.execute("COMMIT")
        try:
            second = c.execute(STATUS, (xid,)).fetchone()[0]
        except psycopg.errors.InvalidParameterValue as e:
            second = "ERROR 22023 " + str(e)
    print(f"{label:<42} {how:<9} marker={local_marker!s:<5} wait={wait}: lost xid {xid}; lookup right after restart: {first}; next transaction got xid {other}; lookup then: {second}")

cl = engines.CitusCluster(settings={"citus.shard_count": "8"})
plain = engines.Node("plain", {})
try:
    cl.start(); plain.start()
    with cl.connect() as c:
        c.execute("CREATE TABLE t (id bigserial primary key, x text)"); c.execute("SELECT create_distributed_table('t','id')")
        c.execute("CREATE TABLE marker (xid text)")  # local to the coordinator
    with plain.connect() as c:
        c.execute("CREATE TABLE t (id bigserial primary key, x text)")
        c.execute("CREATE TABLE marker (xid text)")
    for how in ("immediate", "kill"):
        for wait in (0.0, 0.5):
            trial(plain, plain.dsn, "plain PostgreSQL 15", how, wait=wait)
            trial(cl.coordinator, cl.dsn, "Citus coordinator, distributed table", how, wait=wait)
            trial(cl.coordinator, cl.dsn, "Citus coordinator, + local marker row", how, local_marker=True, wait=wait)
finally:
    cl.destroy(); plain.destroy()
