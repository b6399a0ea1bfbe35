import sys, time, threading
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines
from holdproxy import HoldProxy
from pglog._writer.sink import _transaction_queries
BEGIN, STATUS = _transaction_queries(True)
cl = engines.CitusCluster(settings={"citus.shard_count": "4", "citus.node_conninfo": "'sslmode=disable'", "citus.recover_2pc_interval": "5s", "log_min_messages": "info"})
proxy = HoldProxy(cl.workers[1].port)
def status(xid):
    with cl.connect() as c: return c.execute(STATUS, (xid,)).fetchone()[0]
def visible():
    with cl.connect() as c: return c.execute("SELECT count(*) FROM t").fetchone()[0]
def prepared(): return [w.execute("SELECT gid FROM pg_prepared_xacts") for w in cl.workers]
try:
    cl.start(via={1: proxy.port})
    with cl.connect() as c:
        c.execute("CREATE TABLE t (id bigserial PRIMARY KEY, x int)"); c.execute("SELECT create_distributed_table('t', 'id')")
    conn = psycopg.connect(cl.dsn); cur = conn.cursor()
    cur.execute(BEGIN, (60000, 10000)); *_, pid, xid = cur.fetchone()
    with cur.copy("COPY t (x) FROM STDIN") as cp:
        for i in range(100): cp.write_row((i,))
    proxy.hold_before(r"^COMMIT PREPARED")
    res = {}
    def commit():
        try: conn.commit(); res["ok"] = True
        except Exception as e: res["err"] = repr(e)
    th = threading.Thread(target=commit, daemon=True); th.start(); time.sleep(0.5)
    print("held: status", status(xid), "visible", visible(), "prepared", prepared())
    cl.workers[1].restart("fast")
    print("worker1 restarted; client commit done?", not th.is_alive(), res)
    proxy.cut_held(); th.join(10)
    print("cut: client commit done?", not th.is_alive(), res, "visible", visible(), "prepared", prepared())
    for i in range(8):
        time.sleep(3)
        print(f"  +{3*(i+1)}s visible", visible(), "prepared", prepared(), "dist_txn", cl.coordinator.execute("SELECT * FROM pg_dist_transaction"))
        print("    coordinator activity:", cl.coordinator.execute("SELECT pid, state, left(query, 60), backend_type FROM pg_stat_activity WHERE backend_type <> 'client backend' OR pid = %s", (pid,)))
    print("\n".join(l for l in cl.coordinator.log_text().splitlines()[-30:]))
finally:
    proxy.close(); cl.destroy()
