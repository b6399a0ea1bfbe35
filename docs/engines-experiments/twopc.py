"""2PC through the coordinator: what pg_xact_status says at each step, what readers see."""
import sys, time, threading, json
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines
from holdproxy import HoldProxy
from faultproxy import FaultProxy
from pglog._writer.sink import _transaction_queries
BEGIN, STATUS = _transaction_queries(True)
RECOVER = sys.argv[1] if len(sys.argv) > 1 else "1min"

cl = engines.CitusCluster(settings={"citus.shard_count": "4", "citus.node_conninfo": "'sslmode=disable'",
                                    "citus.recover_2pc_interval": RECOVER})
proxy = None
def status(xid):
    with cl.connect() as c:
        try: return c.execute(STATUS, (xid,)).fetchone()[0]
        except psycopg.errors.InvalidParameterValue as e: return f"22023 ({e})"
def visible(tag):
    with cl.connect() as c:
        return c.execute("SELECT count(*), coalesce(max(id), 0) FROM t WHERE tag = %s", (tag,)).fetchone()
def prepared():
    return [w.execute("SELECT count(*) FROM pg_prepared_xacts")[0][0] for w in cl.workers]
def dist_txn():
    return cl.coordinator.execute("SELECT count(*) FROM pg_dist_transaction")[0][0]

def batch(conn, tag, n=100):
    cur = conn.cursor()
    cur.execute(BEGIN, (60000, 10000)); *_, pid, xid = cur.fetchone()
    with cur.copy("COPY t (tag, x) FROM STDIN") as cp:
        for i in range(n): cp.write_row((tag, i))
    return xid, pid

def wait_visible(tag, n, limit=180):
    t = time.monotonic()
    while visible(tag)[0] < n and time.monotonic() - t < limit: time.sleep(0.2)
    return time.monotonic() - t

try:
    worker1_port = cl.workers[1].port
    proxy = HoldProxy(worker1_port)
    cl.start(via={1: proxy.port})
    with cl.connect() as c:
        c.execute("CREATE TABLE t (id bigserial PRIMARY KEY, tag text, x int)")
        c.execute("SELECT create_distributed_table('t', 'id')")
    print("recover_2pc_interval:", RECOVER)

    # E1: hold worker1's reply to PREPARE TRANSACTION, then crash the coordinator
    conn = psycopg.connect(cl.dsn)
    xid, pid = batch(conn, "e1")
    proxy.hold_after(r"^PREPARE TRANSACTION")
    th = threading.Thread(target=lambda: _safe(conn.commit), daemon=True)
    def _safe(f):
        try: f()
        except Exception as e: print("   client COMMIT raised:", type(e).__name__, getattr(e, "sqlstate", None), " ".join(str(e).split())[:160])
    th.start(); time.sleep(1.0)
    print("E1 worker1 PREPAREd, its reply held: status", status(xid), "| visible", visible("e1"), "| prepared on workers", prepared(), "| pg_dist_transaction rows", dist_txn())
    cl.coordinator.kill(); proxy.release(); proxy.cut_all(); cl.coordinator.start()
    th.join(5)
    print("E1 after coordinator kill -9 + start: status", status(xid), "| visible", visible("e1"), "| prepared", prepared())
    t = time.monotonic()
    while sum(prepared()) and time.monotonic() - t < 200: time.sleep(0.5)
    print(f"E1 prepared transactions resolved after {time.monotonic()-t:.1f}s: status", status(xid), "| visible", visible("e1"), "| prepared", prepared())

    # E2: hold worker1's reply to COMMIT PREPARED (coordinator has committed locally)
    conn = psycopg.connect(cl.dsn)
    xid, pid = batch(conn, "e2")
    proxy.hold_before(r"^COMMIT PREPARED")
    th = threading.Thread(target=lambda: _safe(conn.commit), daemon=True); th.start(); time.sleep(1.0)
    print("E2 COMMIT PREPARED sent to worker1, reply held: status", status(xid), "| visible", visible("e2"), "| prepared", prepared(), "| client COMMIT returned:", not th.is_alive())
    proxy.cut_held()
    th.join(10)
    print("E2 coordinator's connection to worker1 cut: client COMMIT returned:", not th.is_alive(), "| status", status(xid), "| visible", visible("e2"), "| prepared", prepared())
    took = wait_visible("e2", 100)
    print(f"E2 all rows visible after {took:.1f}s (2PC recovery): status", status(xid), "| visible", visible("e2"), "| prepared", prepared())

    # E2b: hold the reply to COMMIT PREPARED *before* it is sent? -> hold after PREPARE on worker1 released, then cut before COMMIT PREPARED reaches it
    conn = psycopg.connect(cl.dsn)
    xid, pid = batch(conn, "e2b")
    proxy.hold_after(r"^PREPARE TRANSACTION")
    th = threading.Thread(target=lambda: _safe(conn.commit), daemon=True); th.start(); time.sleep(0.5)
    # worker1 has prepared; now cut -> the coordinator sees PREPARE fail on worker1
    proxy.cut_held(); th.join(10)
    print("E2b worker1 prepared but the coordinator lost the connection before the reply: status", status(xid), "| visible", visible("e2b"), "| prepared", prepared())
    t = time.monotonic()
    while sum(prepared()) and time.monotonic() - t < 200: time.sleep(0.5)
    print(f"E2b prepared resolved after {time.monotonic()-t:.1f}s: status", status(xid), "| visible", visible("e2b"), "| prepared", prepared())

    # E3: hold COMMIT PREPARED reply, then restart worker1 (fast) while it holds the prepared txn
    conn = psycopg.connect(cl.dsn)
    xid, pid = batch(conn, "e3")
    proxy.hold_before(r"^COMMIT PREPARED")
    th = threading.Thread(target=lambda: _safe(conn.commit), daemon=True); th.start(); time.sleep(0.5)
    print("E3 before worker restart: status", status(xid), "| visible", visible("e3"), "| prepared", prepared())
    cl.workers[1].restart("fast"); proxy.cut_held(); th.join(10)
    print("E3 worker1 restarted: status", status(xid), "| visible", visible("e3"), "| prepared", prepared())
    took = wait_visible("e3", 100)
    print(f"E3 all rows visible after {took:.1f}s (2PC recovery): status", status(xid), "| visible", visible("e3"), "| prepared", prepared())

    # E4: live-tail gap: reader following id > last during E2-like partial commit
    conn = psycopg.connect(cl.dsn)
    xid, pid = batch(conn, "e4")
    proxy.hold_before(r"^COMMIT PREPARED")
    th = threading.Thread(target=lambda: _safe(conn.commit), daemon=True); th.start(); time.sleep(0.5)
    with cl.connect() as c:
        seen = c.execute("SELECT id FROM t WHERE tag='e4' AND id > 0 ORDER BY id").fetchall()
    last = max(i for (i,) in seen) if seen else 0
    proxy.release(); th.join(10)
    with cl.connect() as c:
        later = c.execute("SELECT id FROM t WHERE tag='e4' AND id > %s ORDER BY id", (last,)).fetchall()
        total = c.execute("SELECT count(*) FROM t WHERE tag='e4'").fetchone()[0]
    print(f"E4 a tail polling during the commit saw {len(seen)} of 100 rows (up to id {last}); polling id > {last} afterwards finds {len(later)}; rows never shown: {total - len(seen) - len(later)}")

    # E5: client connection cut before COMMIT / after COMMIT (faultproxy in front of the coordinator)
    for trigger in ("before_commit", "after_commit"):
        fp = FaultProxy(cl.port)
        conn = psycopg.connect(fp.dsn)
        xid, pid = batch(conn, "e5" + trigger)
        fp.arm(trigger)
        try:
            conn.commit(); outcome = "COMMIT returned"
        except psycopg.Error as e:
            outcome = f"{type(e).__name__}: {' '.join(str(e).split())[:80]}"
        time.sleep(0.5)
        print(f"E5 client cut {trigger}: {outcome}; status", status(xid), "| visible", visible("e5" + trigger), "| prepared", prepared())
        fp.close()
finally:
    if proxy: proxy.close()
    cl.destroy()
