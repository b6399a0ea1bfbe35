import datetime as dt, sys, time, json, io
sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import psycopg, engines, gen
from psycopg import sql
from pglog._table.schema import TableName, copy_statement
from pglog._table import migrate, reports, partitions, reader
from pglog._writer.sink import _transaction_queries
BEGIN, STATUS = _transaction_queries(True)
NOW = dt.datetime.now(dt.timezone.utc)
T = TableName("public", "logs")
def err(e): return f"{type(e).__name__} {getattr(e, 'sqlstate', '')}: {' '.join(str(e).split())[:220]}"
cl = engines.CitusCluster(settings={"citus.shard_count": "8"})
try:
    cl.start()
    conn = cl.connect(autocommit=False)
    migrate.migrate(conn, T, build_indexes=False); conn.commit()
    conn.autocommit = True
    conn.execute("SELECT create_distributed_table('logs', 'id')")
    conn.autocommit = False
    line = next(gen.rows(1, NOW, dt.timedelta(seconds=1)))
    def copy_text(c, text):
        with c.cursor() as cur, cur.copy(copy_statement(T)) as cp: cp.write(text)
    copy_text(conn, line); conn.commit()
    print("a) id via coordinator:", conn.execute("SELECT max(id) FROM logs").fetchone()); conn.rollback()
    for i in range(2):
        with cl.workers[i].connect(autocommit=False) as w:
            try:
                copy_text(w, line); w.commit()
                print(f"a) COPY through worker{i}: ok")
            except psycopg.Error as e:
                print(f"a) COPY through worker{i}:", err(e))
            w.rollback()
            try:
                w.execute("INSERT INTO logs (\"timestamp\", level, logger_name, message) VALUES (now(), 'INFO', 'x', 'via worker')"); w.commit()
                print(f"a) INSERT through worker{i}: ok")
            except psycopg.Error as e:
                print(f"a) INSERT through worker{i}:", err(e)); w.rollback()
    print("a) ids now:", conn.execute("SELECT id, message FROM logs ORDER BY id").fetchall()[-4:]); conn.rollback()
    print("a) sequence on coordinator:", conn.execute("SELECT last_value FROM logs_id_seq").fetchone()); conn.rollback()
    for i in range(2):
        print(f"a) sequence on worker{i}:", cl.workers[i].execute("SELECT seqrelid::regclass, seqstart, seqmin, seqmax FROM pg_sequence WHERE seqrelid::regclass::text LIKE 'logs_id_seq%'"))
    copy_text(conn, line); conn.commit()
    print("a) then via coordinator:", conn.execute("SELECT id FROM logs ORDER BY id").fetchall()[:3]); conn.rollback()

    # b) pglog_writers
    conn.autocommit = True
    reports.create(conn, T)
    who = reports.Identity("host", 1, NOW)
    def publish_time(n=20):
        t = time.perf_counter()
        for _ in range(n): reports.publish(conn, T, who, {"queue_depth": 0}, stopped=False)
        return (time.perf_counter() - t) / n * 1000
    print(f"b) local pglog_writers on the coordinator: publish {publish_time():.1f} ms each")
    cl.workers[0].stop("fast")
    try: print(f"b) ... with worker0 down: publish {publish_time(3):.1f} ms each")
    except psycopg.Error as e: print("b) ... with worker0 down:", err(e))
    cl.workers[0].start()
    conn.execute("CREATE TABLE ref_writers (LIKE pglog_writers INCLUDING ALL)")
    for attempt in range(3):
        try:
            conn.execute("SELECT create_reference_table('ref_writers')"); break
        except psycopg.Error as e:
            print("b) create_reference_table right after the worker restart:", err(e), "-> again")
    conn.execute("ALTER TABLE pglog_writers RENAME TO local_writers"); conn.execute("ALTER TABLE ref_writers RENAME TO pglog_writers")
    try: print(f"b) reference-table pglog_writers: publish {publish_time():.1f} ms each")
    except psycopg.Error as e: print("b) reference-table pglog_writers, pglog's upsert:", err(e))
    UPSERT = ("INSERT INTO pglog_writers (log_table, hostname, process_id, started, reported, stopped, stats) VALUES ('logs', 'h', 1, now(), now(), false, '{}')"
              " ON CONFLICT (log_table, hostname, process_id, started) DO UPDATE SET reported = excluded.reported, stopped = excluded.stopped, stats = excluded.stats")
    def publish_time(n=20):
        t = time.perf_counter()
        for _ in range(n): conn.execute(UPSERT)
        return (time.perf_counter() - t) / n * 1000
    print(f"b) reference-table pglog_writers, upsert with excluded.reported: {publish_time():.1f} ms each")
    cl.workers[0].stop("fast")
    try: print(f"b) ... with worker0 down: publish {publish_time(3):.1f} ms each")
    except psycopg.Error as e: print("b) ... with worker0 down:", err(e))
    try: print("b) ... read with worker0 down:", len(reports.recent(conn, T, dt.timedelta(hours=1)) or []), "reports")
    except psycopg.Error as e: print("b) ... read with worker0 down:", err(e))
    cl.workers[0].start()
    conn.execute("DROP TABLE pglog_writers"); conn.execute("ALTER TABLE local_writers RENAME TO pglog_writers")

    # f) local + distributed writes in one transaction
    conn.execute("CREATE TABLE local_marker (xid text)")
    conn.autocommit = False
    try:
        cur = conn.cursor(); cur.execute(BEGIN, (60000, 10000)); xid = cur.fetchone()[-1]
        cur.execute("INSERT INTO local_marker VALUES (%s)", (xid,))
        copy_text(conn, line); conn.commit(); print("f) local insert + distributed COPY in one transaction: ok")
    except psycopg.Error as e:
        conn.rollback(); print("f) local insert + distributed COPY in one transaction:", err(e))

    # i) statement_timeout set with set_config(..., true) applies to the distributed COPY
    try:
        cur = conn.cursor(); cur.execute(BEGIN, (1, 10000))
        copy_text(conn, "".join(gen.rows(20000, NOW, dt.timedelta(minutes=1)))); conn.commit(); print("i) statement_timeout 1 ms: COPY finished anyway")
    except psycopg.Error as e:
        conn.rollback(); print("i) statement_timeout 1 ms:", err(e))
    print("i) worker sessions' statement_timeout (propagate_set_commands=none):", cl.workers[0].execute("SHOW citus.propagate_set_commands"))

    # c) partitioned + distributed: partition upkeep
    P = TableName("public", "plogs")
    migrate.migrate(conn, P, build_indexes=False, partition="day"); conn.commit()
    conn.autocommit = True
    conn.execute("SELECT create_distributed_table('plogs', 'id')")
    conn.autocommit = False
    old = NOW - dt.timedelta(days=5)
    copy_text_p = lambda text: (conn.cursor().copy(copy_statement(P)))
    with conn.cursor() as cur, cur.copy(copy_statement(P)) as cp:
        cp.write("".join(gen.rows(1000, old, dt.timedelta(days=1))))
    conn.commit()
    print("c) partitions:", [p.name for p in partitions.partitions(conn, P)]); conn.rollback()
    print("c) distributed partitions:", conn.execute("SELECT logicalrelid::text FROM pg_dist_partition WHERE logicalrelid::text LIKE 'plogs%' ORDER BY 1").fetchall()); conn.rollback()
    for what, f in (("make (strays in default)", lambda: partitions.make(conn, P, "day", partitions.period_start(old, "day"))),
                    ("make (empty range, far ahead)", lambda: partitions.make(conn, P, "day", partitions.period_start(NOW + dt.timedelta(days=10), "day")))):
        try: print(f"c) partitions.{what}:", f()); conn.commit()
        except psycopg.Error as e: conn.rollback(); print(f"c) partitions.{what}:", err(e))
    # the same steps with SELECT 1 instead of SELECT (no columns)
    start = partitions.period_start(old, "day"); end = start + dt.timedelta(days=1)
    name = partitions.partition_name(P, start, "day")
    steps = [
        ("LOCK TABLE parent", sql.SQL("LOCK TABLE plogs IN ACCESS EXCLUSIVE MODE")),
        ("EXISTS (SELECT 1 FROM default ...)", sql.SQL('SELECT EXISTS (SELECT 1 FROM plogs_default WHERE "timestamp" >= {} AND "timestamp" < {})').format(sql.Literal(start), sql.Literal(end))),
        ("CREATE TABLE (LIKE parent INCLUDING DEFAULTS)", sql.SQL("CREATE TABLE {} (LIKE plogs INCLUDING DEFAULTS)").format(sql.Identifier(name))),
        ("WITH moved AS (DELETE ... RETURNING *) INSERT INTO new", sql.SQL('WITH moved AS (DELETE FROM plogs_default WHERE "timestamp" >= {s} AND "timestamp" < {e} RETURNING *) INSERT INTO {n} SELECT * FROM moved').format(s=sql.Literal(start), e=sql.Literal(end), n=sql.Identifier(name))),
        ("ATTACH PARTITION", sql.SQL("ALTER TABLE plogs ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(sql.Identifier(name), sql.Literal(start.isoformat()), sql.Literal(end.isoformat()))),
    ]
    for what, st in steps:
        try: r = conn.execute(st); print(f"c)   {what}: ok", r.fetchone() if r.description else "")
        except psycopg.Error as e: print(f"c)   {what}:", err(e)); conn.rollback(); break
    else:
        conn.commit()
    conn.autocommit = True
    try:
        steps2 = [
            ("CREATE TABLE (LIKE) + distribute it colocated", sql.SQL("CREATE TABLE {} (LIKE plogs INCLUDING DEFAULTS)").format(sql.Identifier(name))),
            ("", sql.SQL("SELECT create_distributed_table({}, 'id', colocate_with => 'plogs')").format(sql.Literal(name))),
            ("move rows", sql.SQL('WITH moved AS (DELETE FROM plogs_default WHERE "timestamp" >= {s} AND "timestamp" < {e} RETURNING *) INSERT INTO {n} SELECT * FROM moved').format(s=sql.Literal(start), e=sql.Literal(end), n=sql.Identifier(name))),
            ("ATTACH", sql.SQL("ALTER TABLE plogs ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(sql.Identifier(name), sql.Literal(start.isoformat()), sql.Literal(end.isoformat()))),
        ]
        for what, st in steps2:
            r = conn.execute(st); print(f"c)   alt: {what or 'create_distributed_table'}: ok", r.rowcount)
    except psycopg.Error as e:
        print("c)   alt:", err(e))
    print("c) rows per partition:", conn.execute("SELECT tableoid::regclass::text, count(*) FROM plogs GROUP BY 1 ORDER BY 1").fetchall())
    conn.autocommit = False
    try: print("c) drop_older:", partitions.drop_older(conn, P, NOW - dt.timedelta(days=3))); conn.commit()
    except psycopg.Error as e: conn.rollback(); print("c) drop_older:", err(e))
    try:
        conn.autocommit = True
        print("c) Citus drop_old_time_partitions / create_time_partitions:",
              conn.execute("SELECT create_time_partitions('plogs', INTERVAL '1 day', now() + INTERVAL '7 days')").fetchone())
        conn.execute("CALL drop_old_time_partitions('plogs', now() - INTERVAL '2 days')"); print("c)   drop_old_time_partitions: ok")
        print("c) partitions now:", [p.name for p in partitions.partitions(conn, P)])
    except psycopg.Error as e: print("c) citus time partitions:", err(e))
    conn.autocommit = False
    # g) footprint functions
    print("g) citus_total_relation_size(logs):", conn.execute("SELECT citus_total_relation_size('logs'), citus_table_size('logs')").fetchone()); conn.rollback()
    try: print("g) citus_total_relation_size(plogs):", conn.execute("SELECT citus_total_relation_size('plogs')").fetchone())
    except psycopg.Error as e: print("g) citus_total_relation_size(plogs):", err(e))
    conn.rollback()
    print("g) citus_partition sum:", conn.execute("SELECT sum(citus_total_relation_size(relid)) FROM pg_partition_tree('plogs') WHERE isleaf").fetchone()); conn.rollback()
    print("g) comment on coordinator:", conn.execute("SELECT obj_description('logs'::regclass, 'pg_class')").fetchone(), "on worker0 shard:",
          cl.workers[0].execute("SELECT obj_description(c.oid, 'pg_class') FROM pg_class c WHERE relname LIKE 'logs_1%' AND relkind='r' LIMIT 1"))
    conn.rollback()
    # h) max_prepared_transactions = 0 on a worker
    cl.workers[1].execute("ALTER SYSTEM SET max_prepared_transactions = 0"); cl.workers[1].restart("fast")
    try:
        copy_text(conn, "".join(gen.rows(100, NOW, dt.timedelta(minutes=1)))); conn.commit(); print("h) max_prepared_transactions=0 on worker1: COPY ok")
    except psycopg.Error as e:
        conn.rollback(); print("h) max_prepared_transactions=0 on worker1:", err(e))
finally:
    cl.destroy()
