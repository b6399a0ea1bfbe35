"""Realistic pglog rows as COPY text, in pglog's COLUMNS order (timestamp .. extra_data)."""
from __future__ import annotations
import datetime as dt, json, random
from collections.abc import Iterator

COLUMNS = ("timestamp","level","logger_name","process_id","thread_id","thread_name","hostname",
           "message","exception","function_name","module","filename","lineno","pathname","extra_data")
LOGGERS = [
    "app.api", "app.api.orders", "app.api.users", "app.api.search", "app.api.cart",
    "app.api.checkout", "app.auth", "app.auth.tokens", "app.auth.sessions", "app.db",
    "app.db.pool", "app.db.migrations", "app.cache", "app.cache.redis", "app.payments",
    "app.payments.stripe", "app.payments.refunds", "app.mail", "app.mail.smtp", "app.jobs",
    "app.jobs.reports", "app.jobs.cleanup", "app.jobs.import", "worker.email", "worker.images",
    "worker.exports", "worker.webhooks", "gateway", "gateway.ratelimit", "gateway.proxy",
    "scheduler", "search.indexer", "uvicorn.access", "uvicorn.error", "celery.worker",
    "django.request", "sqlalchemy.engine", "urllib3.connectionpool",
]
# levels skewed to INFO/DEBUG
LEVELS = ["DEBUG"] * 30 + ["INFO"] * 58 + ["WARNING"] * 8 + ["ERROR"] * 3 + ["CRITICAL"] * 1
TEMPLATES = [
    ("INFO", "GET /api/orders/{n} -> {status} in {ms} ms"),
    ("INFO", "POST /api/cart/{n}/items -> {status} in {ms} ms"),
    ("INFO", "user {user} signed in from {ip}"),
    ("DEBUG", "cache miss for product:{n}"),
    ("DEBUG", "cache hit for session:{hex}"),
    ("DEBUG", "SELECT orders.id, orders.total FROM orders WHERE orders.user_id = {user} LIMIT 50 ({ms} ms)"),
    ("INFO", "sent receipt for order {n} to user {user}"),
    ("WARNING", "timeout talking to payments after {ms} ms (attempt {attempt})"),
    ("WARNING", "slow query: {ms} ms for report {n}"),
    ("INFO", "retrying webhook {n} (attempt {attempt})"),
    ("INFO", "report {n} finished in {ms} ms, {rows} rows"),
    ("ERROR", "payment {hex} failed: card declined ({code})"),
    ("ERROR", "unhandled exception in request {req}"),
    ("INFO", "task tasks.resize_image[{uuid}] succeeded in {sec}s"),
    ("DEBUG", "Starting new HTTPS connection (1): api.stripe.com:443"),
    ("INFO", "127.0.0.1:{port} - \"GET /health HTTP/1.1\" 200"),
    ("CRITICAL", "database pool exhausted: {n} waiting"),
]
TRACEBACK = ('Traceback (most recent call last):\n'
    '  File "/srv/app/app/payments/stripe.py", line {line}, in charge\n'
    '    response = self.client.post(url, json=body, timeout=5)\n'
    '  File "/srv/app/venv/lib/python3.12/site-packages/httpx/_client.py", line 1145, in post\n'
    '    return self.request("POST", url, content=content, json=json)\n'
    '  File "/srv/app/venv/lib/python3.12/site-packages/httpx/_transports/default.py", line 118, in handle_request\n'
    '    raise mapped_exc(message) from exc\n'
    'httpx.ReadTimeout: timed out after {sec} s')
HOSTS = [f"web-{i}.prod.internal" for i in range(1, 5)] + ["worker-1.prod.internal", "worker-2.prod.internal"]
FUNCS = [("handle_request", "views", "views.py", "/srv/app/app/api/views.py"),
         ("charge", "stripe", "stripe.py", "/srv/app/app/payments/stripe.py"),
         ("run", "tasks", "tasks.py", "/srv/app/app/jobs/tasks.py"),
         ("get", "cache", "cache.py", "/srv/app/app/cache.py"),
         ("_new_conn", "connectionpool", "connectionpool.py", "/srv/app/venv/lib/python3.12/site-packages/urllib3/connectionpool.py")]

def esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

def rows(count: int, start: dt.datetime, span: dt.timedelta, seed: int = 1) -> Iterator[str]:
    rng = random.Random(seed)
    step = span.total_seconds() / count
    t0 = start.timestamp()
    by_level: dict[str, list[str]] = {}
    for level, text in TEMPLATES:
        by_level.setdefault(level, []).append(text)
    for i in range(count):
        moment = dt.datetime.fromtimestamp(t0 + i * step + rng.random() * step, dt.timezone.utc)
        level = LEVELS[rng.randrange(100)]
        logger = LOGGERS[min(int(rng.expovariate(0.12)), len(LOGGERS) - 1)]
        host = HOSTS[min(int(rng.expovariate(0.5)), len(HOSTS) - 1)]
        pid = 1000 + HOSTS.index(host) * 10 + rng.randrange(4)
        template = rng.choice(by_level.get(level) or by_level["INFO"])
        ms = int(rng.lognormvariate(3.5, 1.0))
        status = rng.choice((200, 200, 200, 201, 204, 304, 400, 404, 500))
        user = rng.randrange(50_000)
        req = f"{rng.getrandbits(64):016x}"
        message = template.format(n=rng.randrange(1_000_000), status=status, ms=ms, user=user,
            ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            hex=f"{rng.getrandbits(48):012x}", attempt=rng.randrange(1, 5), rows=rng.randrange(10_000),
            code=rng.choice(("insufficient_funds", "expired_card", "do_not_honor")), req=req,
            uuid=f"{rng.getrandbits(128):032x}", sec=round(rng.random() * 3, 3), port=rng.randrange(30000, 60000))
        func, module, filename, path = FUNCS[rng.randrange(len(FUNCS))]
        extra = {"request_id": req, "user_id": user, "status": status, "duration_ms": ms}
        if rng.random() < 0.3:
            extra["route"] = rng.choice(("/api/orders", "/api/cart", "/api/users", "/health"))
        exception = "\\N"
        if rng.random() < 0.01:
            exception = esc(TRACEBACK.format(line=rng.randrange(50, 400), sec=rng.randrange(1, 30)))
        yield (f"{moment.isoformat()}\t{level}\t{logger}\t{pid}\t{139_000_000_000_000 + rng.randrange(16) * 4096}"
               f"\t{rng.choice(('MainThread', 'ThreadPoolExecutor-0_0', 'ThreadPoolExecutor-0_1', 'pglog-writer'))}"
               f"\t{host}\t{esc(message)}\t{exception}\t{func}\t{module}\t{filename}\t{rng.randrange(10, 900)}"
               f"\t{path}\t{esc(json.dumps(extra))}\n")

def chunks(count: int, start: dt.datetime, span: dt.timedelta, size: int = 20_000, seed: int = 1) -> Iterator[str]:
    buf: list[str] = []
    for line in rows(count, start, span, seed):
        buf.append(line)
        if len(buf) == size:
            yield "".join(buf); buf = []
    if buf:
        yield "".join(buf)
