import sys; sys.path[:0] = [str(__import__("pathlib").Path(__file__).resolve().parents[2] / "tests"), str(__import__("pathlib").Path(__file__).resolve().parent)]
import engines, pgserver
n = engines.Node("plain15", {})
s = pgserver.PostgresServer()
try:
    n.start(); s.start()
    for dsn in (n.dsn, s.dsn):
        import psycopg
        with psycopg.connect(dsn, autocommit=True) as conn:
            print(conn.execute("show server_version").fetchone())
            conn.execute("CREATE TABLE r (id bigserial primary key, x text)")
            conn.execute("INSERT INTO r (x) SELECT g::text FROM generate_series(1, 10000) g")
            print(conn.execute("SELECT * FROM pg_partition_tree('r')").fetchall())
finally:
    n.destroy(); s.destroy()
