"""pglog serve in a real browser: headless Chromium driven by Playwright, against a real
PostgreSQL, with records logged through DatabaseLogHandler while the page is open.

Chromium is /usr/bin/chromium (Debian's package; CI installs it) or $PGLOG_TEST_CHROMIUM;
without it these tests fail and say so. Nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from pgserver import PostgresServer
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from psycopg import sql

from pglog import DatabaseLogHandler
from pglog._table.migrate import ensure_table
from pglog._table.schema import TableName
from pglog._web.app import Settings, create_app
from pglog._web.server import running

CHROMIUM = Path(os.environ.get("PGLOG_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the README's screenshot comes from: ``PGLOG_SCREENSHOT=docs/serve.png pytest
#: tests/webview/test_browser.py`` renews it; otherwise each run writes a scratch copy.
SCREENSHOT = os.environ.get("PGLOG_SCREENSHOT")
ROWS = "#list details.row"

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium"
            " (CI does), or point PGLOG_TEST_CHROMIUM at one",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails if the page throws or breaks its own CSP."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="UTC")
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or "Trusted Type" in message.text
            else None
        ),
    )
    yield opened
    context.close()
    assert problems == []


class Logs:
    """Named loggers that log into the test's table through one DatabaseLogHandler."""

    def __init__(self, handler: DatabaseLogHandler) -> None:
        self.handler = handler
        self.made: list[logging.Logger] = []

    def get(self, name: str, level: int = logging.DEBUG) -> logging.Logger:
        log = logging.getLogger(name)
        log.setLevel(level)
        log.propagate = False
        log.addHandler(self.handler)
        self.made.append(log)
        return log

    def flush(self) -> None:
        assert self.handler.flush(timeout=15)


@pytest.fixture
def logs(make_handler: HandlerFactory) -> Iterator[Logs]:
    made = Logs(make_handler())
    yield made
    for log in made.made:
        log.removeHandler(made.handler)


@pytest.fixture
def web(pg_dsn: str, table: str, db: psycopg.Connection[Any]) -> Iterator[str]:
    """The web view of the test's table, served from a thread: its base URL."""
    ensure_table(db, TableName("public", table))
    with running(create_app(Settings(pg_dsn, TableName("public", table)))) as url:
        yield url


def query_of(page: Page) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)


def insert(db: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows at given times: (timestamp, level, logger, message, extra)."""
    with db.cursor() as cur:
        cur.executemany(
            sql.SQL(
                'INSERT INTO {} ("timestamp", level, logger_name, message, extra_data)'
                " VALUES (%s, %s, %s, %s, %s::jsonb)"
            ).format(sql.Identifier(table)),
            [(*row[:4], json.dumps(row[4])) for row in rows],
        )


def test_the_page_shows_the_newest_rows_with_their_level_in_colour_and_text(
    page: Page, web: str, logs: Logs, table: str
) -> None:
    """Newest first; the level is a coloured badge that says its name; facts and chart
    describe the table; the page is live."""
    shop = logs.get("shop.api")
    shop.info("GET /orders -> 200")
    shop.warning("slow response: 1.2 s")
    shop.error("payment failed")
    logs.flush()
    page.goto(web)
    rows = page.locator(ROWS)
    expect(rows.locator(".message")).to_have_text(
        ["payment failed", "slow response: 1.2 s", "GET /orders -> 200"]
    )
    expect(rows.locator(".level")).to_have_text(["ERROR", "WARNING", "INFO"])
    colours = rows.locator(".level").evaluate_all(
        "nodes => nodes.map(node => getComputedStyle(node).backgroundColor)"
    )
    assert colours[0] == "rgb(209, 36, 47)"
    assert len(set(colours)) == 3
    expect(page.locator("#table-name")).to_have_text(f"public.{table}")
    expect(page.locator("#facts-levels li")).to_have_text(["INFO 1", "WARNING 1", "ERROR 1"])
    expect(page.locator("#chart g.bar rect.level-error")).to_have_count(1)
    expect(page.locator("#legend")).to_contain_text("ERROR 1")
    expect(page.locator("body")).to_have_attribute("data-live", "on")


def test_filters_compose_live_in_the_url_and_a_shared_link_restores_them(
    page: Page, web: str, logs: Logs
) -> None:
    """Level, logger, text, an extra_data condition and the range narrow the rows
    together; the address says so; that address opened elsewhere shows the same; Back
    goes to the previous filter."""
    database, api, billing = logs.get("app.db"), logs.get("app.api"), logs.get("billing")
    database.info("slow query", extra={"user_id": 42})
    database.error("query failed", extra={"user_id": 7})
    api.warning("timeout talking to payments", extra={"user_id": 42})
    api.error("timeout again", extra={"user_id": 7})
    billing.error("timeout in billing", extra={"user_id": 42})
    logs.flush()
    page.goto(web)
    rows = page.locator(ROWS)
    expect(rows).to_have_count(5)

    page.select_option("select[name=level]", "WARNING")
    expect(rows).to_have_count(4)
    page.fill("input[name=logger]", "app")
    page.press("input[name=logger]", "Enter")
    expect(rows).to_have_count(3)
    page.fill("input[name=grep]", "TIMEOUT")
    page.press("input[name=grep]", "Enter")
    expect(rows).to_have_count(2)
    page.fill("input[name=where]", "extra.user_id=42")
    page.press("input[name=where]", "Enter")
    expect(page.locator("#conditions li code")).to_have_text(["extra.user_id=42"])
    expect(rows.locator(".message")).to_have_text(["timeout talking to payments"])
    page.select_option("select[name=range]", "24h")
    expect(page).to_have_url(re.compile(r"since=24h"))
    assert query_of(page) == {
        "level": ["WARNING"],
        "logger": ["app"],
        "since": ["24h"],
        "grep": ["TIMEOUT"],
        "where": ["extra.user_id=42"],
    }

    shared = page.context.new_page()
    shared.goto(page.url)
    expect(shared.locator(ROWS).locator(".message")).to_have_text(["timeout talking to payments"])
    expect(shared.locator("select[name=level]")).to_have_value("WARNING")
    expect(shared.locator("input[name=logger]")).to_have_value("app")
    expect(shared.locator("input[name=grep]")).to_have_value("TIMEOUT")
    expect(shared.locator("select[name=range]")).to_have_value("24h")
    expect(shared.locator("#conditions li code")).to_have_text(["extra.user_id=42"])

    page.go_back()
    expect(page.locator("select[name=range]")).to_have_value("1h")
    page.go_back()
    expect(page.locator("#conditions li")).to_have_count(0)
    expect(rows).to_have_count(2)
    page.locator("#conditions").wait_for(state="hidden")


def test_a_record_logged_now_appears_without_a_reload_and_pause_holds_it(
    page: Page, web: str, logs: Logs
) -> None:
    """Rows that land while the page is open come in at the top; paused, the page asks
    for nothing; resumed, it shows what it held back."""
    app = logs.get("app")
    app.info("already there")
    logs.flush()
    page.clock.install()
    page.goto(web)
    rows = page.locator(ROWS)
    expect(rows).to_have_count(1)

    app.warning("fresh record", extra={"n": 1})
    logs.flush()
    page.clock.run_for(2_500)  # the next poll
    expect(rows.first.locator(".message")).to_have_text("fresh record")
    expect(rows.first).to_have_class(re.compile(r"\barrived\b"))
    expect(rows).to_have_count(2)

    page.click("#pause")
    expect(page.locator("body")).to_have_attribute("data-live", "paused")
    expect(page.locator("#pause")).to_have_text("Resume")
    polled: list[str] = []
    page.on(
        "request",
        lambda request: polled.append(request.url) if "/api/live" in request.url else None,
    )
    app.error("held record")
    logs.flush()
    page.clock.run_for(10_000)  # five polls' worth of time
    expect(rows).to_have_count(2)
    assert polled == []

    page.click("#pause")
    expect(rows.first.locator(".message")).to_have_text("held record")
    expect(rows).to_have_count(3)
    assert polled


def test_a_row_opens_to_its_extra_data_and_exception(page: Page, web: str, logs: Logs) -> None:
    """A row expands to its extra_data as indented JSON (big integers exact) and its
    traceback, and closes again."""
    payments = logs.get("shop.payments")
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        payments.exception(
            "charge failed",
            extra={"order": {"id": 1042, "items": ["Kaffee", "Brötchen"]}, "big": 2**63 - 1},
        )
    logs.flush()
    page.goto(web)
    row = page.locator(ROWS).first
    expect(row.locator("pre.extra")).to_be_hidden()
    row.locator("summary").click()
    expect(row).to_have_attribute("open", "")
    extra = row.locator("pre.extra")
    expect(extra).to_be_visible()
    expect(extra).to_contain_text('"items": [\n            "Kaffee",\n            "Brötchen"')
    expect(extra).to_contain_text('"big": 9223372036854775807')
    expect(row.locator("pre.exception")).to_contain_text("Traceback (most recent call last)")
    expect(row.locator("pre.exception")).to_contain_text("ZeroDivisionError: division by zero")
    expect(row.locator(".row-facts")).to_contain_text("test_browser.py:")
    row.locator("summary").click()
    expect(row.locator("pre.extra")).to_be_hidden()


def test_choosing_a_bar_narrows_the_time_range(
    page: Page, web: str, db: psycopg.Connection[Any], table: str
) -> None:
    """A click on a bar of the chart sets since and until to that bar: the rows, the
    address and the range fields follow, and the page stops being live."""
    now = dt.datetime.now(dt.timezone.utc)
    earlier = (now - dt.timedelta(minutes=30)).replace(second=20, microsecond=0)
    insert(
        db,
        table,
        [
            (earlier, "INFO", "app", "half an hour ago", {}),
            (earlier + dt.timedelta(seconds=5), "ERROR", "app", "and a failure", {}),
            *((now - dt.timedelta(minutes=2), "INFO", "app", f"recent {n}", {}) for n in range(3)),
        ],
    )
    page.goto(f"{web}/?since=1h")
    expect(page.locator(ROWS)).to_have_count(5)
    start = earlier.replace(second=0)
    bar = page.locator(f'#chart g.bar[data-start="{start.isoformat(timespec="microseconds")}"]')
    expect(bar.locator("rect")).to_have_count(3)  # the hit area, INFO, ERROR
    bar.click()
    expect(page).to_have_url(re.compile(r"until="))
    stop = start + dt.timedelta(minutes=1)
    assert query_of(page) == {
        "since": [start.isoformat(timespec="microseconds")],
        "until": [stop.isoformat(timespec="microseconds")],
    }
    expect(page.locator(ROWS).locator(".message")).to_have_text(
        ["and a failure", "half an hour ago"]
    )
    expect(page.locator("select[name=range]")).to_have_value("custom")
    expect(page.locator("input[name=until]")).to_have_value(stop.isoformat(timespec="microseconds"))
    expect(page.locator("body")).to_have_attribute("data-live", "off")
    expect(page.locator("#pause")).to_be_disabled()


def test_hostile_log_content_is_shown_as_text_and_runs_nothing(
    page: Page, web: str, logs: Logs
) -> None:
    """Markup in messages, logger names, extras and tracebacks shows as the characters
    it is; no element is made from it and no script runs."""
    hostile = logs.get("<svg onload=window.__pwned=4>")
    hostile.error(
        "<script>window.__pwned = 1</script>",
        extra={"html": '<img src=x onerror="window.__pwned=3">'},
    )
    hostile.warning('<img src=x onerror="window.__pwned = 2"> & <b>bold</b>')
    try:
        raise ValueError('<iframe src="javascript:window.__pwned=5"></iframe>')
    except ValueError:
        hostile.exception("</summary></details><script>window.__pwned=6</script>")
    logs.flush()
    answer = page.goto(web)
    assert answer is not None
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    rows = page.locator(ROWS)
    expect(rows).to_have_count(3)
    for index in range(3):
        rows.nth(index).locator("summary").click()
    expect(rows.locator(".message")).to_have_text(
        [
            "</summary></details><script>window.__pwned=6</script>",
            '<img src=x onerror="window.__pwned = 2"> & <b>bold</b>',
            "<script>window.__pwned = 1</script>",
        ]
    )
    expect(rows.locator(".logger").first).to_have_text("<svg onload=window.__pwned=4>")
    expect(rows.locator("pre.extra")).to_contain_text(['onerror=\\"window.__pwned=3\\"'])
    expect(rows.locator("pre.exception")).to_contain_text(['<iframe src="javascript:'])
    expect(page.locator("#facts-loggers button")).to_have_text(["<svg onload=window.__pwned=4>"])
    expect(page.locator("#list :is(img, script, svg, iframe, b)")).to_have_count(0)
    expect(page.locator("#facts :is(img, script, svg, iframe, b)")).to_have_count(0)
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_the_link_with_the_token_opens_the_page_and_leaves_the_address_bar(
    page: Page, pg_dsn: str, table: str, db: psycopg.Connection[Any], logs: Logs
) -> None:
    """Served with a token: the printed link signs the browser in (a cookie), the token
    leaves the address, and the page works as without one."""
    ensure_table(db, TableName("public", table))
    logs.get("app").info("behind a token")
    logs.flush()
    token = "a-token-long-enough-to-keep"
    app = create_app(Settings(pg_dsn, TableName("public", table), token=token))
    with running(app) as url:
        refused = page.goto(f"{url}/?since=15m")
        assert refused is not None
        assert refused.status == 401
        page.goto(f"{url}/?since=15m&token={token}")
        expect(page.locator(ROWS).locator(".message")).to_have_text(["behind a token"])
        assert query_of(page) == {"since": ["15m"]}
        expect(page.locator("#table-name")).to_have_text(f"public.{table}")


def test_a_shared_link_followed_from_another_site_keeps_the_session(
    page: Page, pg_dsn: str, table: str, db: psycopg.Connection[Any], logs: Logs
) -> None:
    """Signed in once, a link to the page on another site (a chat, a ticket) opens the
    page, not a 401: the session cookie is SameSite=Lax."""
    ensure_table(db, TableName("public", table))
    logs.get("app").info("shared by link")
    logs.flush()
    token = "a-token-long-enough-to-keep"
    app = create_app(Settings(pg_dsn, TableName("public", table), token=token))
    with running(app) as url:
        page.goto(f"{url}/?token={token}")
        expect(page.locator(ROWS)).to_have_count(1)
        page.route(
            "http://chat.example/",
            lambda route: route.fulfill(
                content_type="text/html",
                body=f'<a id="shared" href="{url}/?since=24h">the logs</a>',
            ),
        )
        page.goto("http://chat.example/")
        with page.expect_navigation() as followed:
            page.click("#shared")
        answer = followed.value
        assert answer is not None
        assert answer.status == 200
        expect(page.locator(ROWS).locator(".message")).to_have_text(["shared by link"])


def test_an_unexplained_server_error_shows_as_an_error_not_as_an_outage(
    page: Page, web: str, logs: Logs
) -> None:
    """A 500 without pglog's JSON (a bug, a proxy's page) is shown by the filters; it is
    not reported as the database being away."""
    logs.get("app").info("still listed")
    logs.flush()
    page.route(
        "**/api/volume?*",
        lambda route: route.fulfill(status=500, content_type="text/plain", body="oops"),
    )
    page.goto(web)
    expect(page.locator(ROWS).locator(".message")).to_have_text(["still listed"])
    expect(page.locator("#error")).to_have_text("pglog serve answered HTTP 500")
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("body")).not_to_have_attribute("data-outage", "yes")


def test_a_new_filter_cancels_the_requests_made_for_the_old_one(
    page: Page, web: str, logs: Logs
) -> None:
    """Rows for the old filter are still on their way when another filter is applied:
    the page cancels that request (it would hold one of the server's connections for
    nothing) and shows the new filter's rows."""
    logs.get("app").info("the second one")
    logs.flush()
    held: list[Route] = []

    def hold(route: Route) -> None:  # and never answer
        held.append(route)

    page.route("**/api/rows?*grep=first*", hold)
    cancelled: list[str] = []
    page.on(
        "requestfailed",
        lambda request: cancelled.append(request.url) if "/api/rows" in request.url else None,
    )
    with page.expect_request(lambda request: "grep=first" in request.url):
        page.goto(f"{web}/?grep=first")
    page.fill("input[name=grep]", "second")
    page.press("input[name=grep]", "Enter")
    expect(page.locator(ROWS).locator(".message")).to_have_text(["the second one"])
    for _ in range(100):  # the failure event may come after the new rows show
        if any("grep=first" in url for url in cancelled):
            break
        page.wait_for_timeout(50)
    assert [url for url in cancelled if "grep=first" in url], cancelled
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#banner")).to_be_hidden()


def test_slow_queries_holding_every_connection_show_as_busy_and_the_page_recovers(
    page: Page, pg_dsn: str, table: str, db: psycopg.Connection[Any], logs: Logs
) -> None:
    """Every connection of pglog serve is held by a query that waits on a lock: the
    banner says the database is busy (not away); when the query ends the banner goes."""
    logs.get("app").info("behind a lock")
    logs.flush()
    logs_table = TableName("public", table)
    settings = Settings(pg_dsn, logs_table, pool_size=1, pool_timeout=0.5)
    with running(create_app(settings)) as url, psycopg.connect(pg_dsn) as blocker:
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(logs_table.identifier)
        )
        page.goto(url)
        banner = page.locator("#banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("The database is busy")
        expect(banner).not_to_contain_text("can't be reached")
        expect(page.locator("body")).to_have_attribute("data-outage", "busy")
        blocker.rollback()
        expect(banner).to_be_hidden()
        expect(page.locator(ROWS).locator(".message")).to_have_text(["behind a lock"])


def test_bidi_controls_in_log_text_stay_inside_their_cell(page: Page, web: str, logs: Logs) -> None:
    """A right-to-left override in a logger name or message is isolated to its own cell,
    so it can't reorder what the page shows beside it."""
    logs.get("app.\u202eevil").info("\u202egnp.exe")
    logs.flush()
    page.goto(web)
    row = page.locator(ROWS).first
    expect(row.locator(".message")).to_have_text("\u202egnp.exe")
    for cell in (".logger", ".message"):
        style = row.locator(cell).evaluate("node => getComputedStyle(node).unicodeBidi")
        assert style == "isolate", cell


def test_a_bad_filter_shows_the_servers_message_and_no_outage(
    page: Page, web: str, logs: Logs
) -> None:
    """A 4xx is the filter's fault: its message shows by the filters, no banner."""
    logs.get("app").info("a row with a number", extra={"n": 1})
    logs.flush()
    page.goto(web)
    expect(page.locator(ROWS)).to_have_count(1)
    page.fill("input[name=where]", "extra.n~[")
    page.press("input[name=where]", "Enter")
    expect(page.locator("#error")).to_contain_text("invalid regular expression")
    page.goto(f"{web}/?level=LOUD")
    expect(page.locator("#error")).to_have_text(
        "unknown level 'LOUD'; use one of DEBUG, INFO, WARNING, ERROR, CRITICAL,"
        " or a level's number"
    )
    expect(page.locator("#banner")).to_be_hidden()


def test_a_database_outage_shows_a_banner_and_the_page_recovers(
    page: Page, server: PostgresServer, make_handler: HandlerFactory, logger: logging.Logger
) -> None:
    """The database stops: a banner says so and what was shown stays. It comes back:
    the banner goes and rows logged since appear."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        ensure_table(conn, TableName("public", "logs"))
    handler = make_handler(dsn=server.dsn, table="logs")
    logger.addHandler(handler)
    logger.info("before the outage")
    assert handler.flush(timeout=15)
    app = create_app(Settings(server.dsn, TableName("public", "logs"), pool_timeout=1))
    with running(app) as url:
        page.goto(url)
        rows = page.locator(ROWS)
        expect(rows.locator(".message")).to_have_text(["before the outage"])
        server.stop()
        banner = page.locator("#banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("The database can't be reached")
        expect(page.locator("body")).to_have_attribute("data-outage", "yes")
        expect(rows).to_have_count(1)
        server.start()
        expect(banner).to_be_hidden(timeout=45_000)
        logger.info("after the outage")
        assert handler.flush(timeout=30)
        expect(rows.locator(".message")).to_have_text(["after the outage", "before the outage"])


def test_screenshot_of_a_realistic_session_for_the_readme(  # noqa: PLR0917
    page: Page, web: str, logs: Logs, db: psycopg.Connection[Any], table: str, tmp_path: Path
) -> None:
    """The README's screenshot (docs/serve.png, with PGLOG_SCREENSHOT set), from a real run:
    an hour of a small shop's logs with a burst of errors, the last minute logged through
    the handler, the failed payment opened."""
    now = dt.datetime.now(dt.timezone.utc)
    history: list[tuple[Any, ...]] = []
    for second in range(0, 3600, 3):
        moment = now - dt.timedelta(seconds=3600 - second)
        level = "WARNING" if second % 41 == 0 else "INFO"
        text = f"GET /orders/{1000 + second % 97} -> 200"
        if 1500 <= second < 1800 and second % 2 == 0:
            level, text = "ERROR", "database timeout after 5 s"
        history.append((moment, level, "shop.api", text, {"request_id": f"req-{second}"}))
        if second % 9 == 0:
            history.append(
                (moment, "DEBUG", "shop.auth", "token checked", {"user_id": second % 500})
            )
    insert(db, table, history)
    api, auth = logs.get("shop.api"), logs.get("shop.auth")
    payments, cache = logs.get("shop.payments"), logs.get("shop.cache")
    cache.warning("product cache is cold", extra={"entries": 0})
    for number in range(6):
        request = {"request_id": f"req-9{number:03d}", "user_id": 100 + 37 * number}
        auth.debug("token checked", extra=request)
        api.info("GET /orders/%d -> 200", 1040 + number, extra={**request, "duration_ms": 12.5})
    auth.warning("5 failed logins for %s", "mallory@example.com", extra={"ip": "203.0.113.9"})
    try:
        amount = "12,50"  # as the checkout form sent it
        payments.info("charged %d cents", int(amount) * 100)
    except ValueError:
        payments.exception(
            "payment for order %d failed", 1043, extra={"order_id": 1043, "amount": amount}
        )
    api.error("POST /orders/1043/pay -> 500", extra={"request_id": "req-9006", "duration_ms": 31.0})
    logs.flush()
    page.goto(web)
    failed = page.locator(ROWS).filter(has_text="payment for order 1043 failed")
    failed.locator("summary").click()
    expect(failed.locator("pre.exception")).to_contain_text("ValueError: invalid literal for int()")
    expect(page.locator("#chart g.bar rect.level-error")).not_to_have_count(0)
    expect(page.locator("#facts-loggers li")).to_have_count(4)
    shot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "serve.png"
    page.screenshot(path=shot)
    image = shot.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) > 30_000
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1400, 900)
