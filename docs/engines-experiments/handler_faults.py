"""pglog's own DatabaseLogHandler(s) writing through the Citus coordinator while a node
restarts: emitted vs stored vs fallback, per record."""
import logging, os, sys, threading, time, random, collections, json
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines
from pglog import DatabaseLogHandler
from pglog._table.schema import TableName
from pglog._table import migrate

TARGET, MODES, ROUNDS, WRITERS = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
RATE = float(os.environ.get("RATE", "400"))  # records per second per writer

class Keep(logging.Handler):
    def __init__(self):
        super().__init__(); self.records = []
    def emit(self, record):
        self.records.append(record)

class PlainCluster:
    def __init__(self):
        self.coordinator = engines.Node("plain", {}); self.dsn = self.coordinator.dsn
    def start(self): self.coordinator.start()
    def connect(self, **kw): return self.coordinator.connect(**kw)
    def destroy(self): self.coordinator.destroy()
cl = PlainCluster() if TARGET == "plain" else engines.CitusCluster(settings={"citus.shard_count": "8"})
try:
    cl.start()
    with cl.connect(autocommit=False) as conn:
        migrate.migrate(conn, TableName("public", "logs"), build_indexes=False); conn.commit()
        conn.autocommit = True
        if TARGET != "plain":
            conn.execute("SELECT create_distributed_table('logs', 'id')")
    handlers, fallbacks, loggers = [], [], []
    for w in range(WRITERS):
        fb = Keep()
        h = DatabaseLogHandler(cl.dsn, table="logs", create_table=False, fallback=fb, flush_interval=0.05, batch_size=100)
        lg = logging.getLogger(f"w{w}"); lg.handlers[:] = [h]; lg.propagate = False; lg.setLevel(logging.INFO)
        handlers.append(h); fallbacks.append(fb); loggers.append(lg)
    stop = threading.Event(); emitted = collections.Counter()
    def work(w):
        n = 0
        while not stop.is_set():
            loggers[w].info("w%d n%d", w, n, extra={"w": w, "n": n}); emitted[w] += 1; n += 1
            time.sleep(1 / RATE)
    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads: t.start()
    node = cl.coordinator if TARGET in ("coordinator", "plain") else cl.worker(0)
    for mode in MODES:
        for r in range(ROUNDS):
            time.sleep(random.uniform(0.7, 1.5))
            if mode == "kill": node.kill(); time.sleep(0.3); node.start()
            else: node.stop(mode); time.sleep(0.3); node.start()
    time.sleep(1); stop.set()
    for t in threads: t.join()
    ok = [h.flush(60) for h in handlers]
    stats = [h.stats() for h in handlers]
    for h in handlers: h.close()
    with cl.connect() as c:
        if TARGET != "plain": c.execute("SELECT recover_prepared_transactions()")
        stored = collections.Counter()
        dup = 0
        for w, n, cnt in c.execute("SELECT (extra_data->>'w')::int, (extra_data->>'n')::int, count(*) FROM logs GROUP BY 1, 2").fetchall():
            stored[w] += 1; dup += cnt - 1
    print(f"{TARGET} {MODES} x{ROUNDS}, {WRITERS} writers, flushed: {ok}")
    for w in range(WRITERS):
        s = stats[w]
        fb_n = len(fallbacks[w].records)
        lost = emitted[w] - stored[w] - fb_n
        print(f" writer {w}: emitted {emitted[w]}, stored {stored[w]} (distinct), fallback {fb_n}, neither {lost}; stats written={s['written']} fallback={s['fallback']} retries={s['retries']} failed_batches={s['failed_batches']} dropped={s['dropped']} last_error={s['last_error']}")
    print(" duplicated rows:", dup)
    fb_reasons = collections.Counter()
    for fb in fallbacks:
        for rec in fb.records:
            reason = getattr(rec, "pglog_reason", None) or ""
            fb_reasons[str(reason)[:200]] += 1
    print(" fallback reasons:", dict(fb_reasons) if any(fb_reasons) else "(records carry no reason attribute)")
finally:
    cl.destroy()
