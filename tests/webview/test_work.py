# ruff: noqa: F811 - the fixtures imported from webview.test_browser are parameters by name
"""The web view as a place to work, in headless Chromium: search, the Errors view, fields
that filter, a record's context and permalink, a frozen share link, downloads, the
reader's zone and theme, and the keyboard. Fixtures are webview.test_browser's."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from webview.test_browser import (  # noqa: F401 - the fixtures are used by name
    ROWS,
    SCREENSHOT,
    Logs,
    browser,
    logs,
    page,
    query_of,
    web,
)


def _pay(order: int) -> None:
    raise ValueError(f"DeadlockDetected while charging order {order}")


def failures(logs: Logs) -> None:
    """A shop's errors: a traceback three times, a timeout twice, among other records."""
    shop, db = logs.get("shop.payments"), logs.get("shop.db")
    for order in (1, 2, 3):
        try:
            _pay(order)
        except ValueError:
            shop.exception("payment for order %d failed", order, extra={"order": order})
    for attempt in (1, 2):
        db.error("timeout after %d ms", 5000 + attempt, extra={"request_id": "req-9"})
    shop.info("charged order %d", 4, extra={"request_id": "req-9", "user_id": 42})
    shop.info("charged order %d", 5, extra={"request_id": "req-8", "user_id": 7})
    logs.flush()


def test_search_finds_a_word_deep_in_a_stored_traceback(page: Page, web: str, logs: Logs) -> None:
    """The Text box looks in tracebacks and extras too, in any case."""
    failures(logs)
    page.goto(web)
    page.fill("input[name=grep]", "deadlockdetected")
    page.press("input[name=grep]", "Enter")
    expect(page.locator(ROWS).locator(".message")).to_have_text(
        [f"payment for order {n} failed" for n in (3, 2, 1)]
    )
    page.fill("input[name=grep]", "req-8")
    page.press("input[name=grep]", "Enter")
    expect(page.locator(ROWS).locator(".message")).to_have_text(["charged order 5"])


def test_the_errors_view_groups_kinds_marks_the_new_and_leads_to_their_records(
    page: Page, web: str, logs: Logs, tmp_path: Path
) -> None:
    """Errors: one entry per kind with its count, a trend and NEW; a click on a kind shows
    its records (and says so in a removable condition)."""
    failures(logs)
    page.goto(f"{web}/?since=24h")
    page.click("#views button[data-view=errors]")
    expect(page).to_have_url(re.compile(r"view=errors"))
    groups = page.locator("#errors-list li.group")
    expect(groups).to_have_count(2)
    expect(groups.locator(".count")).to_have_text(["3", "2"])
    expect(groups.first.locator(".kind")).to_have_text("ValueError in webview/test_work.py, _pay")
    expect(groups.locator(".badge")).to_have_text(["new", "new"])
    expect(groups.first.locator(".trend rect")).not_to_have_count(0)
    expect(page.locator("#errors-summary")).to_contain_text("5 error records of 2 kinds")
    shot = SCREENSHOT and Path(SCREENSHOT).with_name("errors.png")
    page.screenshot(path=shot or tmp_path / "errors.png")
    groups.nth(1).locator(".kind").click()
    expect(page.locator(ROWS).locator(".message")).to_have_text(
        ["timeout after 5002 ms", "timeout after 5001 ms"]
    )
    expect(page.locator("#conditions li code")).to_have_text(["kind: shop.db: timeout after %d ms"])
    assert "view" not in query_of(page)


def test_a_field_value_filters_in_or_out_and_becomes_a_column(
    page: Page, web: str, logs: Logs
) -> None:
    """In an opened row, = keeps the records with that value, ≠ drops them, ⊞ shows the
    field as a column of every row."""
    failures(logs)
    page.goto(web)
    row = page.locator(ROWS).filter(has_text="charged order 4")
    row.locator("summary").click()
    field = row.locator(".fields dd").filter(has_text="req-9")
    field.locator("button.field-only").click()
    expect(page.locator("#conditions li code")).to_have_text(['extra.request_id="req-9"'])
    expect(page.locator(ROWS).locator(".message")).to_have_text(
        ["charged order 4", "timeout after 5002 ms", "timeout after 5001 ms"]
    )
    page.locator("#conditions button.remove").click()
    expect(page.locator(ROWS)).to_have_count(7)
    row = page.locator(ROWS).filter(has_text="charged order 5")
    row.locator("summary").click()
    row.locator(".fields dd").filter(has_text="req-8").locator("button.field-not").click()
    expect(page.locator(ROWS)).to_have_count(6)
    expect(page.locator(ROWS).filter(has_text="charged order 5")).to_have_count(0)
    first = page.locator(ROWS).filter(has_text="charged order 4")
    first.locator("summary").click()
    first.locator(".fields dd").filter(has_text="42").locator("button.field-column").click()
    expect(page).to_have_url(re.compile(r"columns=user_id"))
    expect(page.locator("#column-heads span")).to_have_text(["user_id"])
    expect(page.locator(ROWS).filter(has_text="charged order 4").locator(".column")).to_have_text(
        "42"
    )


def test_a_record_opens_in_its_context_and_its_permalink_shows_the_same(
    page: Page, web: str, logs: Logs, browser: Browser
) -> None:
    """ "Around: same request" shows the request's records with the record opened; the
    record's permalink, opened elsewhere, shows it with what its process logged."""
    failures(logs)
    page.goto(web)
    row = page.locator(ROWS).filter(has_text="charged order 4")
    row.locator("summary").click()
    row.locator("button.around-request").click()
    expect(page.locator("body")).to_have_attribute("data-view", "context")
    expect(page.locator(ROWS).locator(".message")).to_have_text(
        ["charged order 4", "timeout after 5002 ms", "timeout after 5001 ms"]
    )
    anchor = page.locator(f"{ROWS}.anchor")
    expect(anchor).to_have_attribute("open", "")
    expect(page.locator("#context-note")).to_contain_text("in the same request around it")
    link = anchor.locator("a.permalink").get_attribute("href")
    assert link is not None
    assert re.fullmatch(r"\?id=\d+", link)
    other = browser.new_context(timezone_id="UTC").new_page()
    other.goto(f"{web}/{link}")
    expect(other.locator(f"{ROWS}.anchor .message")).to_have_text("charged order 4")
    expect(other.locator(ROWS)).to_have_count(7)  # one process logged them all
    other.context.close()
    page.click("#context-back")
    expect(page.locator("body")).to_have_attribute("data-view", "records")


def test_share_freezes_the_range_and_download_gives_what_is_shown(
    page: Page, web: str, logs: Logs
) -> None:
    """Share: a link whose since and until are absolute times; opened later it shows the
    same rows. Download: the rows shown, as JSON lines and as CSV."""
    failures(logs)
    page.goto(f"{web}/?since=1h&level=ERROR")
    expect(page.locator(ROWS)).to_have_count(5)
    page.click("#share")
    link = page.locator("#share-link").input_value()
    shared = dict(item.split("=", 1) for item in link.split("?", 1)[1].split("&"))
    since = dt.datetime.fromisoformat(shared["since"].replace("%3A", ":"))
    until = dt.datetime.fromisoformat(shared["until"].replace("%3A", ":"))
    assert dt.timedelta(minutes=59) < until - since < dt.timedelta(minutes=61)
    assert shared["level"] == "ERROR"
    with page.expect_download() as waited:
        page.click("#download-jsonl")
    lines = Path(waited.value.path()).read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == page.locator(
        f"{ROWS} .message"
    ).all_inner_texts()
    with page.expect_download() as waited:
        page.click("#download-csv")
    text = Path(waited.value.path()).read_text()
    assert text.startswith("id,timestamp,level,logger_name,message")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [row["message"] for row in table] == [json.loads(line)["message"] for line in lines]
    assert json.loads(table[0]["extra_data"]) == json.loads(lines[0])["extra_data"]
    assert table[-1]["exception"].startswith("Traceback (most recent call last):\n")
    page.goto(link)
    expect(page.locator(ROWS)).to_have_count(5)
    expect(page.locator("body")).to_have_attribute("data-live", "off")


def test_the_csv_download_is_safe_to_open_in_a_spreadsheet(
    page: Page, web: str, logs: Logs
) -> None:
    """Cells a spreadsheet would run as a formula (=, +, -, @, tab or CR first) start with
    a ' in the CSV the page downloads, as in ``pglog export`` (OWASP's advice); other
    cells, and the JSON lines, are as stored."""
    formulas = ['=HYPERLINK("https://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx"]
    shop = logs.get("=cmd|'/c calc'!A1")
    for text in formulas:
        shop.error(text, extra={"cell": text})
    shop.error("a plain message")
    logs.flush()
    page.goto(f"{web}/?since=1h")
    expect(page.locator(ROWS)).to_have_count(len(formulas) + 1)
    with page.expect_download() as waited:
        page.click("#download-csv")
    text = Path(waited.value.path()).read_text()
    table = list(csv.DictReader(io.StringIO(text)))
    assert [row["message"] for row in reversed(table)] == [
        *("'" + formula for formula in formulas),
        "a plain message",
    ]
    assert {row["logger_name"] for row in table} == {"'=cmd|'/c calc'!A1"}
    with page.expect_download() as waited:
        page.click("#download-jsonl")
    lines = [json.loads(line) for line in Path(waited.value.path()).read_text().splitlines()]
    assert [line["extra_data"].get("cell") for line in reversed(lines)] == [*formulas, None]


def test_times_are_local_or_utc_and_labelled(browser: Browser, web: str, logs: Logs) -> None:
    """In Tokyo the page shows Tokyo time and says so; the Times button switches to UTC."""
    logs.get("app").info("what time is it")
    logs.flush()
    context = browser.new_context(timezone_id="Asia/Tokyo")
    tokyo = context.new_page()
    tokyo.goto(web)
    row = tokyo.locator(ROWS).first
    stamp = row.locator("time").get_attribute("datetime")
    assert stamp is not None
    local = dt.datetime.fromisoformat(stamp).astimezone(dt.timezone(dt.timedelta(hours=9)))
    expect(row.locator(".when")).to_have_text(local.strftime("%H:%M:%S.%f")[:-3])
    expect(tokyo.locator("#when-head")).to_have_text("Time (GMT+9)")
    tokyo.click("#zone")
    expect(tokyo.locator("#zone")).to_have_text("Times: UTC")
    utc = dt.datetime.fromisoformat(stamp).astimezone(dt.timezone.utc)
    expect(tokyo.locator(ROWS).first.locator(".when")).to_have_text(
        utc.strftime("%H:%M:%S.%f")[:-3]
    )
    expect(tokyo.locator("#when-head")).to_have_text("Time (UTC)")
    context.close()


def test_dark_mode_follows_the_system_and_can_be_chosen(browser: Browser, web: str) -> None:
    """prefers-color-scheme: dark gives a dark page; the Theme button chooses light (or
    dark) whatever the system says, and the choice is kept."""
    context = browser.new_context(color_scheme="dark")
    dark = context.new_page()
    dark.goto(web)

    def paper() -> str:
        return str(dark.evaluate("getComputedStyle(document.body).backgroundColor"))

    expect(dark.locator("#theme")).to_have_text("Theme: auto")
    assert paper() == "rgb(13, 17, 23)"
    dark.click("#theme")  # auto -> dark
    dark.click("#theme")  # dark -> light
    expect(dark.locator("#theme")).to_have_text("Theme: light")
    assert paper() == "rgb(246, 248, 250)"
    dark.reload()
    expect(dark.locator("#theme")).to_have_text("Theme: light")
    assert paper() == "rgb(246, 248, 250)"
    context.close()


def test_the_keyboard_searches_moves_and_opens_and_the_chart_is_one_tab_stop(
    page: Page, web: str, logs: Logs
) -> None:
    """/ focuses the search; j and k move the current record; Enter opens it; the chart
    takes one Tab, and its arrow keys choose a bar."""
    failures(logs)
    page.goto(web)
    rows = page.locator(ROWS)
    expect(rows).to_have_count(7)
    page.keyboard.press("/")
    expect(page.locator("input[name=grep]")).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    expect(page.locator(f"{ROWS}.current")).to_have_count(1)
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
    page.keyboard.press("Enter")
    expect(rows.nth(1)).to_have_attribute("open", "")
    stops = page.evaluate(
        "[...document.querySelectorAll('#chart, #chart *')].filter(n => n.tabIndex >= 0).length"
    )
    assert stops == 1
    page.focus("#chart")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"until="))
