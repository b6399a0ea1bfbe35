from __future__ import annotations
import datetime as dt, time
from psycopg import sql
from pglog._table import reader
from pglog._table.filters import Filter
from pglog._web import queries
NOW = dt.datetime.now(dt.timezone.utc)
FILTERS = {
    "none": Filter(),
    "24h WARNING+": Filter.parse(since="24h", level="WARNING", now=NOW),
    "logger app.api": Filter.parse(since="24h", logger="app.api", now=NOW),
    "grep timeout": Filter.parse(since="24h", grep="timeout", now=NOW),
    "extra.user_id=42": Filter.parse(since="72h", where=["extra.user_id=42"], now=NOW),
    "last 2h": Filter.parse(since="2h", now=NOW),
}

def calls(table, newest):
    c = {}
    for fname, f in FILTERS.items():
        c[f"reader.rows {fname}"] = lambda conn, f=f: reader.rows(conn, table, f, limit=100)
        c[f"web.page {fname}"] = lambda conn, f=f: (lambda p: (p.rows, p.next and str(p.next)))(queries.page(conn, table, f, limit=100))
        c[f"web.arrivals {fname}"] = lambda conn, f=f: (lambda a: (a.rows, a.last_id, a.complete))(queries.arrivals(conn, table, f, after_id=newest - 5000, limit=200))
    c["reader.rows after_id (tail)"] = lambda conn: reader.rows(conn, table, Filter(), limit=1000, after_id=newest - 3000, newest_first=False)
    c["reader.follow first batch"] = lambda conn: next(reader.follow(conn, table, Filter(), newest - 2000))
    c["reader.stats 24h"] = lambda conn: (lambda s: (s.by_level, s.by_logger, s.by_hour))(reader.stats(conn, table, Filter.parse(since="24h", now=NOW)))
    c["reader.stats all"] = lambda conn: (lambda s: (s.by_level, s.by_logger, s.by_hour))(reader.stats(conn, table, Filter()))
    c["reader.stream 1h"] = lambda conn: list(reader.stream(conn, table, Filter.parse(since="1h", now=NOW)))
    c["reader.health newest"] = lambda conn: reader.health(conn, table).newest
    c["reader.footprint"] = lambda conn: reader.footprint(conn, table)
    c["web.newest_id"] = lambda conn: queries.newest_id(conn, table)
    c["web.volume 24h"] = lambda conn: (lambda v: [(b.start, b.counts) for b in v.bars])(queries.volume(conn, table, Filter.parse(since="24h", until="0s", now=NOW)))
    c["web.volume 24h ERROR"] = lambda conn: (lambda v: [(b.start, b.counts) for b in v.bars])(queries.volume(conn, table, Filter.parse(since="24h", until="0s", level="ERROR", now=NOW)))
    c["web.facts"] = lambda conn: (lambda f: (f.estimated_rows, f.total_bytes, f.basis, f.by_level, f.by_logger, f.newest, f.oldest))(queries.facts(conn, table))
    c["error groups (exception, top 20)"] = lambda conn: conn.execute(sql.SQL(
        "SELECT logger_name, left(message, 40), count(*), max(id) FROM {} WHERE level IN ('ERROR','CRITICAL')"
        " AND \"timestamp\" > now() - interval '24 hours' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 20").format(table.identifier)).fetchall()
    c["hostname filter page"] = lambda conn: conn.execute(sql.SQL(
        "SELECT id FROM {} WHERE hostname = 'worker-2.prod.internal' ORDER BY \"timestamp\" DESC, id DESC LIMIT 100").format(table.identifier)).fetchall()
    return c

def run(conn, name, fn, reps=3):
    best = None
    for _ in range(reps):
        t = time.perf_counter()
        try:
            out = fn(conn)
            conn.rollback()
        except Exception as e:
            conn.rollback()
            return "ERROR", f"{type(e).__name__} {getattr(e, 'sqlstate', '')}: {' '.join(str(e).split())[:300]}", None
        el = (time.perf_counter() - t) * 1000
        best = el if best is None else min(best, el)
    return "ok", out, best

