"""pglog serve's HTTP side: the JSON API over a real PostgreSQL, its errors, access and
headers, and the ``pglog serve`` command."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from pgserver import PostgresServer
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from starlette.applications import Starlette

import pglog._web
from pglog._table.migrate import ensure_table
from pglog._table.schema import TableName
from pglog._web import facts
from pglog._web.app import Settings, create_app
from pglog._web.guard import Guard, cookie_name
from pglog._web.server import check_exposure, running

TOKEN = "a-token-long-enough-to-keep"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Site:
    url: str
    app: Starlette

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Answer:
        """GET ``path`` with ``params`` (a list repeats the name); redirects not followed."""
        query = urllib.parse.urlencode(params, doseq=True)
        address = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        try:
            conn.request("GET", path + (f"?{query}" if query else ""), headers=headers or {})
            response = conn.getresponse()
            found = {key.lower(): value for key, value in response.getheaders()}
            return Answer(response.status, found, response.read())
        finally:
            conn.close()


def serving(settings: Settings, host: str = "127.0.0.1") -> Iterator[Site]:
    app = create_app(settings)
    with running(app, host) as url:
        yield Site(url, app)


@pytest.fixture
def site(pg_dsn: str, table: str, db: psycopg.Connection[Any]) -> Iterator[Site]:
    """The web view of the test's table (created empty)."""
    ensure_table(db, TableName("public", table))
    yield from serving(Settings(pg_dsn, TableName("public", table)))


@pytest.fixture
def guarded(pg_dsn: str, table: str, db: psycopg.Connection[Any]) -> Iterator[Site]:
    """The same, with a token."""
    ensure_table(db, TableName("public", table))
    yield from serving(Settings(pg_dsn, TableName("public", table), token=TOKEN))


@pytest.fixture
def seeded(site: Site, make_handler: HandlerFactory, logger: logging.Logger) -> Site:
    """The site, with one row (so a regular expression has something to be compiled on)."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("a row", extra={"n": 1})
    assert handler.flush(timeout=10)
    return site


def test_rows_live_volume_and_facts_answer_for_records_the_handler_stored(
    site: Site, make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """The four endpoints, on records logged through DatabaseLogHandler: rows newest
    first with extra_data as indented JSON, pages that continue from their cursor, the
    live tail after the first page's id, volume and facts that count them all."""
    handler = make_handler()
    logger.addHandler(handler)
    for number in range(5):
        logger.warning("order %d shipped", number, extra={"order": {"id": number}})
    assert handler.flush(timeout=10)

    first = site.get("/api/rows").json()
    assert [row["message"] for row in first["rows"]] == [
        f"order {n} shipped" for n in (4, 3, 2, 1, 0)
    ]
    assert first["rows"][0]["extra_data"] == '{\n    "order": {\n        "id": 4\n    }\n}'
    assert first["rows"][0]["level"] == "WARNING"
    assert first["rows"][0]["logger_name"] == logger.name
    assert first["next"] is None
    assert first["live_from"] == first["rows"][0]["id"]

    paged = site.get("/api/rows", limit=2).json()
    rest = site.get("/api/rows", limit=3, before=paged["next"]).json()
    assert [row["id"] for row in paged["rows"] + rest["rows"]] == [
        row["id"] for row in first["rows"]
    ]
    assert rest["live_from"] is None

    assert site.get("/api/live", after=first["live_from"]).json()["rows"] == []
    logger.error("order 5 lost")
    assert handler.flush(timeout=10)
    live = site.get("/api/live", after=first["live_from"], level="ERROR").json()
    assert [row["message"] for row in live["rows"]] == ["order 5 lost"]
    assert live["last_id"] == first["live_from"] + 1
    assert live["complete"]

    volume = site.get("/api/volume", since="15m").json()
    counts = [bar["counts"] for bar in volume["bars"] if bar["counts"]]
    assert sum(sum(bar.values()) for bar in counts) == 6
    assert not volume["estimated"]
    assert volume["step_seconds"] == 15

    facts = site.get("/api/facts").json()
    assert facts["basis"] == "counted"
    assert facts["estimated_rows"] == 6
    assert facts["by_level"] == [["WARNING", 5], ["ERROR", 1]]
    assert facts["by_logger"] == [[logger.name, 6]]
    assert facts["table"].endswith(".t_" + facts["table"].split(".t_")[1])


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/api/rows", {"where": "extra.user_id"}, "can't read the condition"),
        ("/api/rows", {"level": "LOUD"}, "unknown level 'LOUD'"),
        ("/api/rows", {"since": "90d"}, "31 days at most"),
        ("/api/rows", {"since": "2026-01-02", "until": "2026-01-01"}, "the time range is empty"),
        ("/api/rows", {"levle": "ERROR"}, "unknown parameter 'levle'"),
        ("/api/rows", {"since": "yesterdayish"}, "can't read 'yesterdayish' as a time"),
        ("/api/rows", {"level": ["INFO", "ERROR"]}, "level is given 2 times"),
        ("/api/rows", {"before": "nonsense"}, "can't read the cursor"),
        ("/api/rows", {"limit": "100000"}, "limit must be between 1 and 500"),
        ("/api/rows", {"where": "extra.n~["}, "invalid regular expression"),
        ("/api/volume", {"grep": "x" * 1001}, "longer than 1000 characters"),
        ("/api/live", {}, "after is missing"),
        ("/api/live", {"after": "newest"}, "after must be a row id"),
        ("/api/live", {"after": str(2**63)}, "after must be a row id (a bigint)"),
        ("/api/live", {"after": str(-(2**63) - 1)}, "after must be a row id (a bigint)"),
        ("/api/rows", {"before": f"2026-01-01T00:00:00+00:00/{2**63}"}, "names no row id"),
        ("/api/rows", {"since": "3000000d"}, "'3000000d' is too long: 1000 years at most"),
        ("/api/rows", {"since": "9" * 400}, "is too long: 1000 years at most"),
        ("/api/rows", {"since": "1899-12-31"}, "'1899-12-31' is out of range"),
        (
            "/api/volume",
            {"since": "9999-12-31T23:00", "until": "9999-12-31T23:59:59"},
            "'9999-12-31T23:00' is out of range: use a time from 1900 to 9998",
        ),
        ("/api/facts", {"level": "ERROR"}, "facts take none"),
    ],
)
def test_bad_requests_get_a_400_that_says_what_is_wrong(
    seeded: Site, path: str, params: dict[str, Any], says: str
) -> None:
    """A malformed filter, an unknown level, a huge or empty range, a typo: 400 and a
    message, never a 500 or a traceback."""
    answer = seeded.get(path, **params)
    assert answer.status == 400, answer.body
    assert answer.json()["kind"] == "bad_request"
    assert says in answer.json()["error"]
    assert b"Traceback" not in answer.body


def test_a_missing_table_is_a_404_that_says_how_to_make_it(pg_dsn: str) -> None:
    """No table: every endpoint says so, and names the command that creates it."""
    for site in serving(Settings(pg_dsn, TableName("public", "no_such_table_here"))):
        for path in ("/api/rows", "/api/volume", "/api/facts"):
            answer = site.get(path)
            assert answer.status == 404
            assert answer.json() == {
                "error": "public.no_such_table_here does not exist: `pglog init` creates it",
                "kind": "missing",
            }


def test_an_unreachable_database_is_a_503_the_page_can_act_on() -> None:
    """Nothing listens at the DSN: 503 with kind "unavailable" (the page's banner), no
    password in the message, and the server itself keeps answering."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dsn = f"postgresql://app:s3cret@127.0.0.1:{port}/app?connect_timeout=1"
    for site in serving(Settings(dsn, TableName("public", "logs"), pool_timeout=0.5)):
        answer = site.get("/api/rows")
        assert answer.status == 503
        assert answer.json()["kind"] == "unavailable"
        assert answer.json()["error"].startswith("can't reach the database")
        assert b"s3cret" not in answer.body
        assert site.get("/").status == 200


class Recorded(logging.Handler):
    """Every record that reaches the root logger, kept for the test to look at."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    root = logging.getLogger()
    handler = Recorded()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_a_bug_is_a_500_of_kind_internal_logged_once_without_a_traceback(
    site: Site, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever an endpoint raises that nobody foresaw: a JSON 500 of kind "internal"
    that shows nothing of the error, the traceback once in the log (pglog._web), and the
    server answers on."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OverflowError("date value out of range, with /secret/paths")

    monkeypatch.setattr(facts, "facts", broken)
    answer = site.get("/api/facts")
    assert answer.status == 500
    assert answer.json() == {"error": "pglog serve failed: its log says why", "kind": "internal"}
    assert b"secret" not in answer.body
    assert b"Traceback" not in answer.body
    logged = [record for record in recorded.records if record.exc_info]
    assert [record.name for record in logged] == ["pglog.web"]
    assert "/api/facts" in logged[0].getMessage()
    assert site.get("/api/rows").status == 200


def test_rows_without_extras_have_no_extra_data(
    site: Site, make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """A record logged without extras has extra_data null, so the page shows no empty
    section for it ("{}" pretty-prints as "{\\n}", which nullif never matched)."""
    handler = make_handler()
    logger.addHandler(handler)
    logger.info("plain")
    logger.info("with extras", extra={"n": 1})
    assert handler.flush(timeout=10)
    rows = site.get("/api/rows").json()["rows"]
    assert [(row["message"], row["extra_data"]) for row in rows] == [
        ("with extras", '{\n    "n": 1\n}'),
        ("plain", None),
    ]


def test_slow_queries_holding_every_connection_are_busy_not_an_outage(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """Every pooled connection is held by a query that waits (here on a lock): another
    request is told the database is busy (503, kind "busy"), not that it is away; once
    the queries finish, requests are answered again."""
    logs = TableName("public", table)
    ensure_table(db, logs)
    with psycopg.connect(pg_dsn) as blocker:
        for busy_site in serving(Settings(pg_dsn, logs, pool_size=1, pool_timeout=0.5)):
            blocker.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(logs.identifier)
            )
            with concurrent.futures.ThreadPoolExecutor(1) as waiting:
                slow = waiting.submit(busy_site.get, "/api/rows")
                deadline = time.monotonic() + 10
                while not _waiting_on_a_lock(pg_dsn, table):
                    assert time.monotonic() < deadline, "the slow query never started"
                    time.sleep(0.05)
                answer = busy_site.get("/api/volume")
                assert answer.status == 503
                assert answer.json() == {
                    "error": "the database is busy: slow queries hold all 1 of pglog serve's"
                    " connections",
                    "kind": "busy",
                }
                blocker.rollback()
                assert slow.result(timeout=10).status == 200
            assert busy_site.get("/api/volume").status == 200


def _waiting_on_a_lock(dsn: str, table: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pglog-serve'"
            " AND wait_event_type = 'Lock' AND query LIKE %s",
            (f"%{table}%",),
        ).fetchone()
    return bool(found and found[0])


#: Long enough for the pool's default backoff (1 s, doubling) to grow past 10 s.
OUTAGE = 18.0


def test_requests_are_answered_within_seconds_of_the_database_returning_from_a_long_outage(
    server: PostgresServer,
) -> None:
    """The database stays away for several failed reconnects, then returns: requests are
    answered again within a few seconds, not after the minute or two a reconnect backoff
    left to grow would wait."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        ensure_table(conn, TableName("public", "logs"))
    for site in serving(Settings(server.dsn, TableName("public", "logs"), pool_timeout=1)):
        assert site.get("/api/facts").status == 200
        server.stop()
        back_at = time.monotonic() + OUTAGE
        while time.monotonic() < back_at:
            assert site.get("/api/facts").json()["kind"] == "unavailable"
            time.sleep(0.5)
        server.start()
        returned = time.monotonic()
        while site.get("/api/facts").status != 200:
            assert time.monotonic() - returned < 5, "the pool is still backing off"
            time.sleep(0.2)


def test_the_session_is_read_only(site: Site) -> None:
    """Whatever the role may do, the pool's sessions can't write, and every statement
    has a time limit."""
    with site.app.state.pool.connection() as conn:
        settings = conn.execute(
            "SELECT current_setting('default_transaction_read_only'),"
            " current_setting('statement_timeout'), current_setting('TimeZone')"
        ).fetchone()
        assert settings == ("on", "10s", "UTC")
    with (
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        site.app.state.pool.connection() as conn,
    ):
        conn.execute("CREATE TABLE pglog_web_must_not_exist (x int)")


@pytest.fixture
def reader(db: psycopg.Connection[Any], pg_dsn: str) -> Iterator[str]:
    """A login role with no privileges yet: its DSN. Dropped afterwards."""
    role = f"reader_{uuid.uuid4().hex[:8]}"
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield make_conninfo(pg_dsn, user=role)
    db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def three_warnings(make_handler: HandlerFactory, logger: logging.Logger) -> None:
    """Three rows in the test's table (laid out as ``partition`` says), analysed."""
    handler = make_handler()
    logger.addHandler(handler)
    for number in range(3):
        logger.warning("seen by the reader", extra={"n": number})
    assert handler.flush(timeout=10)


@pytest.mark.parametrize("partition", [None, "day"])
@pytest.mark.usefixtures("three_warnings")
def test_a_role_with_the_readmes_grants_can_use_every_endpoint(
    db: psycopg.Connection[Any], table: str, reader: str, partition: str | None
) -> None:
    """GRANT USAGE on the schema and SELECT on the table, nothing more (the README's
    grants), is enough for every endpoint, partitioned tables included; without SELECT
    the answer is a 403 that names the grant."""
    db.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    role = sql.Identifier(str(conninfo_to_dict(reader)["user"]))
    logs = TableName("public", table)
    for site in serving(Settings(reader, logs)):
        assert site.get("/api/facts").status == 403
        refused = site.get("/api/rows").json()["error"]
        assert refused.endswith(f"GRANT USAGE ON SCHEMA public and SELECT ON public.{table} to it")
        db.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        db.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(logs.identifier, role))
        rows = site.get("/api/rows", where="extra.n=1").json()["rows"]
        assert [row["message"] for row in rows] == ["seen by the reader"]
        assert site.get("/api/volume").status == 200
        assert site.get("/api/live", after=0).json()["last_id"] == rows[0]["id"] + 1
        assert site.get("/api/facts").json()["by_level"] == [["WARNING", 3]]
    with psycopg.connect(reader) as conn:
        big = facts.facts(conn, logs, count_limit=2)  # as if the table were big
    # the partitions' statistics are not the reader's to see: it counts the newest rows
    assert (big.basis, big.by_level) == (
        ("statistics", [("WARNING", 3)]) if partition is None else ("newest", [("WARNING", 2)])
    )


def test_every_response_carries_a_strict_content_security_policy(site: Site) -> None:
    """The page, its scripts, answers and errors: scripts and styles from this server
    only, nothing inline, no framing, no MIME sniffing."""
    answers = [site.get(path) for path in ("/", "/static/app.js", "/api/facts")]
    for answer in [*answers, site.get("/api/rows", level="x")]:
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe" not in policy
        assert "frame-ancestors 'none'" in policy
        assert "require-trusted-types-for 'script'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert "javascript" in site.get("/static/app.js").headers["content-type"]


def test_the_page_has_no_inline_script_or_event_handler(site: Site) -> None:
    """What the CSP forbids is also absent: every script is a file, no on*= attribute."""
    page = site.get("/").body.decode()
    assert '<script type="module" src="/static/app.js"></script>' in page
    assert page.count("<script") == 1
    scripts = sorted((Path(pglog._web.__file__).parent / "static").glob("*.js"))
    assert scripts, "no script found to check"
    for source in [page, *(path.read_text() for path in scripts)]:
        assert " onclick=" not in source.lower()
        assert "innerhtml" not in source.lower()


def test_without_a_token_only_loopback_names_are_answered(site: Site) -> None:
    """A page elsewhere that points a name of its own at 127.0.0.1 (DNS rebinding) is
    refused; localhost and 127.0.0.1 are served."""
    port = urllib.parse.urlsplit(site.url).port
    assert site.get("/api/facts", headers={"Host": f"localhost:{port}"}).status == 200
    assert site.get("/api/facts", headers={"Host": f"127.0.0.1:{port}"}).status == 200
    refused = site.get("/api/facts", headers={"Host": f"attacker.example:{port}"})
    assert refused.status == 403
    assert refused.json()["kind"] == "access"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.2:{port}", 200),
        ("127.255.0.9", 200),
        ("[::1]:{port}", 200),
        ("LocalHost:{port}", 200),
        ("127.0.0.1:1@evil.example", 403),
        ("127.0.0.1@evil.example", 403),
        ("127.0.0.1.evil.example:{port}", 403),
        ("evil.example#127.0.0.1", 403),
        ("[::1]evil.example", 403),
        ("127.0.0.1:{port}:{port}", 403),
        ("127.0.0.1:x", 403),
        ("", 403),
    ],
)
def test_the_host_header_is_read_strictly(site: Site, host: str, status: int) -> None:
    """Any loopback address is the loopback interface (127.0.0.0/8, ::1); anything that
    is not exactly a name and a port (userinfo, a second port, trailing text) is refused,
    however it begins."""
    port = urllib.parse.urlsplit(site.url).port
    answer = site.get("/api/facts", headers={"Host": host.format(port=port)})
    assert answer.status == status, answer.body


def test_a_server_on_another_loopback_address_answers_its_own_url(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """pglog serve --host 127.0.0.2 (loopback, so no token) answers requests to the
    address it printed."""
    ensure_table(db, TableName("public", table))
    for site in serving(Settings(pg_dsn, TableName("public", table)), host="127.0.0.2"):
        assert site.url.startswith("http://127.0.0.2:")
        assert site.get("/api/facts").status == 200
        assert site.get("/").status == 200


def test_the_guard_closes_a_websocket_before_it_opens() -> None:
    """Only HTTP passes the guard: a WebSocket (which would skip the Host and token
    checks) is closed unopened and never reaches the application."""
    reached: list[str] = []
    sent: list[dict[str, Any]] = []

    async def application(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [(b"host", b"127.0.0.1")]}
    for token in (None, TOKEN):
        asyncio.run(Guard(application, token=token)(scope, receive, send))
    assert reached == []
    assert [message["type"] for message in sent] == ["websocket.close"] * 2


def test_a_token_is_required_as_a_bearer_or_through_the_cookie_its_link_sets(
    guarded: Site,
) -> None:
    """With a token: nothing without it; a wrong one is refused; ?token= sets an HttpOnly
    cookie (not the token itself) and drops the token from the address."""
    assert guarded.get("/api/facts").status == 401
    assert guarded.get("/").status == 401
    assert guarded.get("/api/facts", headers={"Authorization": "Bearer wrong"}).status == 401
    assert guarded.get("/api/facts", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
    assert guarded.get("/", token="wrong").status == 401

    entered = guarded.get("/", token=TOKEN, since="15m")
    assert entered.status == 303
    assert entered.headers["location"] == "/?since=15m"
    cookie = entered.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert TOKEN not in cookie
    session = cookie.split(";", 1)[0]
    assert session.startswith(f"{cookie_name(TOKEN)}=")
    assert guarded.get("/api/facts", headers={"Cookie": session}).status == 200
    assert guarded.get("/", headers={"Cookie": f"{cookie_name(TOKEN)}=forged"}).status == 401


def test_the_session_cookie_follows_links_from_other_sites_and_expires(guarded: Site) -> None:
    """SameSite=Lax, not Strict: a shared link followed from a chat or a ticket carries
    the session (every endpoint is a read-only GET); a working day's Max-Age."""
    attributes = [
        part.strip() for part in guarded.get("/", token=TOKEN).headers["set-cookie"].split(";")
    ]
    assert "SameSite=Lax" in attributes
    assert "Max-Age=43200" in attributes
    assert "Path=/" in attributes


def test_another_applications_cookie_does_not_hide_the_session(guarded: Site) -> None:
    """Cookies are per host: another application's cookie that is not a valid cookie
    token (JSON, say) sits beside pglog's in the same header, and the session still
    counts."""
    session = guarded.get("/", token=TOKEN).headers["set-cookie"].split(";", 1)[0]
    for header in (
        f'prefs={{"theme":"dark"}}; {session}',
        f'{session}; prefs={{"theme":"dark"}}',
        f"a=b c; {session}; tz=Europe/Berlin",
    ):
        assert guarded.get("/api/facts", headers={"Cookie": header}).status == 200, header


def test_two_servers_on_one_host_keep_their_sessions_apart(
    guarded: Site, pg_dsn: str, table: str
) -> None:
    """Browsers keep cookies per host, not per port: a second pglog serve (another token)
    names its cookie differently, so signing in to one doesn't sign out of the other, and
    neither cookie opens the other server."""
    other_token = "another-token-long-enough-too"
    for other in serving(Settings(pg_dsn, TableName("public", table), token=other_token)):
        mine = guarded.get("/", token=TOKEN).headers["set-cookie"].split(";", 1)[0]
        theirs = other.get("/", token=other_token).headers["set-cookie"].split(";", 1)[0]
        assert mine.split("=")[0] != theirs.split("=")[0]
        assert mine.split("=")[0] == cookie_name(TOKEN)
        both = {"Cookie": f"{mine}; {theirs}"}
        assert guarded.get("/api/facts", headers=both).status == 200
        assert other.get("/api/facts", headers=both).status == 200
        assert guarded.get("/api/facts", headers={"Cookie": theirs}).status == 401
        assert other.get("/api/facts", headers={"Cookie": mine}).status == 401


@pytest.mark.parametrize("path", ["//evil.example/", "///evil.example/", "/\\evil.example/"])
def test_the_token_link_never_sends_the_browser_to_another_site(guarded: Site, path: str) -> None:
    """/?token= redirects to the same path without the token; a path that starts with
    two slashes (or a slash and a backslash) would be another host to a browser, so it
    keeps a single leading slash."""
    entered = guarded.get(path, token=TOKEN, since="15m")
    assert entered.status == 303
    assert entered.headers["location"] == "/evil.example/?since=15m"


def test_answers_on_a_kept_alive_connection_do_not_wait_for_a_delayed_ack(site: Site) -> None:
    """Browsers reuse connections; with Nagle's algorithm left on, every answer after the
    first would wait about 40 ms for the browser's delayed ACK."""
    address = urllib.parse.urlsplit(site.url)
    conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    took = []
    try:
        for _ in range(9):
            began = time.perf_counter()
            conn.request("GET", "/static/favicon.svg")
            conn.getresponse().read()
            took.append(time.perf_counter() - began)
    finally:
        conn.close()
    assert sorted(took)[4] < 0.025, took


def test_serving_beyond_loopback_needs_a_token_worth_having() -> None:
    """0.0.0.0 without a token, or with a short one, is refused before anything listens."""
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("0.0.0.0", TOKEN)
    with pytest.raises(ValueError, match="would show the logs to the network"):
        check_exposure("0.0.0.0", None)
    with pytest.raises(ValueError, match="would show the logs to the network"):
        check_exposure("logs.internal", None)
    with pytest.raises(ValueError, match="16 or more"):
        check_exposure("0.0.0.0", "short")


def _pglog() -> str:
    return shutil.which("pglog", path=str(Path(sys.executable).parent)) or "pglog"


def test_pglog_serve_refuses_the_network_without_a_token(pg_dsn: str) -> None:
    """One line, exit 2, nothing served."""
    env = {k: v for k, v in os.environ.items() if k != "PGLOG_TOKEN"}
    result = subprocess.run(
        [_pglog(), "serve", "--dsn", pg_dsn, "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("pglog: error: --host 0.0.0.0 would show the logs")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_pglog_serve_refuses_a_port_that_is_not_one(port: str) -> None:
    """--port outside 0..65535: argparse's usage and one error line, exit 2, no traceback."""
    result = subprocess.run(
        [_pglog(), "serve", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"pglog serve: error: argument --port: {port!r} is not a port: use 0 to 65535"
    )
    assert "Traceback" not in result.stderr


def test_pglog_serve_serves_the_table_until_stopped(
    pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """pglog serve --table T says where it listens, answers there, and stops quietly on
    SIGTERM; a token from $PGLOG_TOKEN is required."""
    ensure_table(db, TableName("public", table))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [_pglog(), "serve", "--dsn", pg_dsn, "--table", table, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PGLOG_TOKEN": TOKEN},
    ) as server:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith(f"pglog serve: http://127.0.0.1:{port}/ (the first visit needs")
        assert f"public.{table}" in line
        assert "read-only" in line
        site = Site(f"http://127.0.0.1:{port}", Starlette())
        assert site.get("/api/facts").status == 401
        facts = site.get("/api/facts", headers={"Authorization": f"Bearer {TOKEN}"})
        assert facts.json()["table"] == f"public.{table}"
        server.terminate()
        # uvicorn shuts down, then re-raises the signal so a supervisor sees why it ended
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
        assert server.stderr is not None
        assert server.stderr.read() == ""
