"""pglog-like batches through the Citus coordinator while nodes restart: every error, and
whether each batch ends up stored exactly once."""
from __future__ import annotations
import collections, datetime as dt, json, os, re, sys, threading, time, random
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg
from psycopg import sql
import engines
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate
from pglog._writer.sink import _transaction_queries, STATEMENT_TIMEOUT_MS, IDLE_IN_TRANSACTION_TIMEOUT_MS
from pglog._writer.retry import classify

MODES = sys.argv[1].split(",")          # worker-fast, worker-immediate, worker-kill, coord-fast, coord-immediate, coord-kill
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
DIST = os.environ.get("DIST", "id")
BATCH = int(os.environ.get("BATCH", "200"))
BEGIN, STATUS = _transaction_queries(True)
TABLE = TableName("public", "logs")
HOSTS = [f"web-{i}" for i in range(6)]

def norm(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"127\.0\.0\.1:\d+|localhost:\d+|port \d+", "<node>", text)
    text = re.sub(r"\b\d{3,}\b", "<n>", text)
    return text[:220]

def rows_of(batch: int):
    now = dt.datetime.now(dt.timezone.utc)
    host = HOSTS[batch % len(HOSTS)]
    for i in range(BATCH):
        yield (now, "INFO", "app.api", 1000, 1, "MainThread", host, f"batch {batch} row {i}", None,
               "f", "m", "m.py", 1, "/m.py", json.dumps({"batch": batch, "i": i}))

class Writer(threading.Thread):
    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.errors = collections.Counter()
        self.examples = {}
        self.batches = 0
        self.lookups = collections.Counter()
        self.conn = None
        self.log = []

    def connect(self):
        while not self.stop.is_set():
            try:
                return psycopg.connect(self.dsn, connect_timeout=3)
            except psycopg.Error as e:
                self.note("connect", e, None)
                time.sleep(0.2)

    def note(self, phase, e, conn, extra=""):
        code = getattr(e, "sqlstate", None)
        key = (self.mode, phase, code, type(e).__name__, norm(str(e).splitlines()[0] if str(e) else ""),
               "broken" if conn is not None and (conn.broken or conn.closed) else ("-" if conn is None else "open"),
               classify(e).value, extra)
        self.errors[key] += 1
        self.examples.setdefault(key, " | ".join(" ".join(str(e).split()).split("\n"))[:600])

    def status(self, xid):
        for _ in range(100):
            try:
                with psycopg.connect(self.dsn, connect_timeout=3, autocommit=True) as c:
                    return c.execute(STATUS, (xid,)).fetchone()[0]
            except psycopg.errors.InvalidParameterValue as e:
                self.note("status lookup", e, None)
                return "aborted (in the future)"  # as pglog's sink does
            except psycopg.Error as e:
                self.note("status lookup", e, None)
                time.sleep(0.3)

    def run(self):
        batch = self.base
        while not self.stop.is_set():
            if self.conn is None or self.conn.closed or self.conn.broken:
                self.conn = self.connect()
                if self.conn is None: return
            conn = self.conn
            phase, xid = "begin", None
            try:
                with conn.cursor() as cur:
                    cur.execute(BEGIN, (STATEMENT_TIMEOUT_MS, IDLE_IN_TRANSACTION_TIMEOUT_MS))
                    *_, pid, xid = cur.fetchone()
                    phase = "copy"
                    with cur.copy(copy_statement(TABLE)) as cp:
                        for r in rows_of(batch):
                            cp.write_row(r)
                phase = "commit"
                conn.commit()
                self.batches += 1
                self.log.append((batch, "committed", None))
                batch += 1
            except psycopg.Error as e:
                broken = conn.broken or conn.closed
                if broken and xid is not None:
                    st = self.status(xid)
                    self.lookups[(self.mode, phase, st)] += 1
                    self.note(phase, e, conn, f"lookup: {st}")
                    if st == "committed":
                        self.log.append((batch, "committed (lookup)", xid)); batch += 1
                    elif st == "in progress":
                        time.sleep(2)
                        with psycopg.connect(self.dsn, autocommit=True) as c:
                            c.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        st = self.status(xid)
                        self.lookups[(self.mode, phase, "after terminate: " + str(st))] += 1
                        if st == "committed":
                            self.log.append((batch, "committed (lookup)", xid)); batch += 1
                else:
                    self.note(phase, e, conn)
                    if not broken:
                        try: conn.rollback()
                        except psycopg.Error: pass
                time.sleep(0.05)

def disrupt(cluster, mode, rounds, writer):
    target = cluster.worker(0) if mode.startswith("worker") else cluster.coordinator
    how = mode.split("-")[1]
    for r in range(rounds):
        time.sleep(random.uniform(0.8, 1.6))
        before = writer.batches
        t = time.monotonic()
        if how == "kill":
            target.kill(); time.sleep(0.3); target.start()
        else:
            target.stop(how); time.sleep(0.3); target.start()
        print(f"  {mode} round {r}: down+up {time.monotonic()-t:.2f}s; batches before {before}", flush=True)
    time.sleep(2)

def main():
    cluster = engines.CitusCluster(settings={"citus.shard_count": "8", "log_min_messages": "warning",
                                             "log_min_error_statement": "panic"})
    try:
        cluster.start()
        with cluster.connect(autocommit=False) as conn:
            migrate.migrate(conn, TABLE, build_indexes=False); conn.commit()
            conn.autocommit = True
            if DIST == "hostname":
                conn.execute("ALTER TABLE logs DROP CONSTRAINT logs_pkey, ADD PRIMARY KEY (id, hostname)")
            conn.execute("SELECT create_distributed_table('logs', %s)", (DIST,))
        all_errors = collections.Counter(); examples = {}; lookups = collections.Counter(); logs = []
        for mode in MODES:
            w = Writer(cluster.dsn); w.mode = mode; w.base = 100_000 * MODES.index(mode)
            w.start()
            disrupt(cluster, mode, ROUNDS, w)
            w.stop.set(); w.join(30)
            all_errors.update(w.errors); examples.update(w.examples); lookups.update(w.lookups)
            logs.append((mode, w.log))
            print(f"== {mode}: {w.batches} batches committed, {sum(w.errors.values())} errors")
        # wait for 2PC recovery then check exactly-once
        with cluster.connect() as conn:
            prepared = lambda: [cluster.worker(i).execute("SELECT count(*) FROM pg_prepared_xacts")[0][0] for i in range(2)]
            t = time.monotonic()
            print("prepared transactions left on workers:", prepared())
            conn.execute("SELECT recover_prepared_transactions()")
            print("after recover_prepared_transactions():", prepared(), f"({time.monotonic()-t:.1f}s)")
            counts = dict(conn.execute("SELECT (extra_data->>'batch')::int, count(*) FROM logs GROUP BY 1").fetchall())
        # batches are numbered per mode writer; all writers start from 0 -> group by mode via distinct messages? use per-mode run tables
        print("rows per batch histogram:", collections.Counter(counts.values()))
        expected = {b for _, log in logs for b, _, _ in log}
        print("batches the writers count as committed:", len(expected), "; found in the table:", len(counts),
              "; missing:", sorted(expected - set(counts))[:20], "; present but not counted:", sorted(set(counts) - expected)[:20],
              "; duplicated:", sorted(b for b, n in counts.items() if n > BATCH)[:20])
        missing = expected - set(counts)
        for mode, log in logs:
            for b, how, xid in log:
                if b in missing:
                    print("   missing batch", b, mode, how, xid)
        print("\nERRORS (mode | phase | sqlstate | class | message | connection | pglog's classify | lookup): count")
        for key, n in sorted(all_errors.items(), key=lambda kv: [str(k) for k in kv[0]]):
            print(f"{n:4d}  " + " | ".join(str(k) for k in key))
        print("\nLOOKUPS:", dict(lookups))
        print("\nEXAMPLES:")
        for key, text in examples.items():
            print("  ", key[1], key[2], "::", text)
        for node in cluster.nodes:
            lines = [l for l in node.log_text().splitlines() if re.search(r"ERROR|WARNING|FATAL|PANIC", l)]
            kinds = collections.Counter((lambda m: m.group(1) + " " + norm(m.group(2)) if m else norm(l))(re.match(r"^\S+ \S+ \S+ \[\d+\] (\S+) (.*)$", l)) for l in lines)
            print(f"\nserver log {node.name}: {len(lines)} ERROR/WARNING/FATAL lines")
            for k, n in kinds.most_common(25): print(f"  {n:4d} {k}")
    finally:
        cluster.destroy()

main()
