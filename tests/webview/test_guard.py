"""guard: sessions that really expire and can't be made offline, and token guesses slowed
down per client address."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import time
from typing import Any

import pytest

from pglog._web.guard import (
    FREE_ATTEMPTS,
    LONGEST_WAIT,
    SESSION_SECONDS,
    Attempts,
    Guard,
    cookie_name,
)
from webview import test_api
from webview.test_api import TOKEN, Site

#: The web view of an empty table, with a token: the API tests' fixture.
guarded = test_api.guarded


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def ask(
    guard: Guard,
    *,
    token: str | None = None,
    cookie: str | None = None,
    bearer: str | None = None,
    client: str = "203.0.113.9",
) -> tuple[int, dict[str, str]]:
    """One GET / through ``guard`` (straight to its ASGI interface): the status and the
    response headers."""
    headers = [(b"host", b"logs.example")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    if bearer is not None:
        headers.append((b"authorization", f"Bearer {bearer}".encode()))
    scope = {
        "type": "http",
        "path": "/",
        "query_string": f"token={token}".encode() if token is not None else b"",
        "headers": headers,
        "client": (client, 51234),
    }
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    guard.app = app
    asyncio.run(guard(scope, receive, send))
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def session_of(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";", 1)[0]


def test_a_session_cookie_cant_be_made_from_the_token_offline(guarded: Site) -> None:
    """The cookie used to be a fixed HMAC of the token: whoever knew the token could make
    one, and it never expired. Now it is signed with a key of the server's own: the old
    cookie, a cookie of another server with the same token, and a tampered one are all
    refused; the one the server set is accepted."""
    minted = hmac.new(TOKEN.encode(), b"pglog serve session", hashlib.sha256).hexdigest()
    name = cookie_name(TOKEN)
    assert guarded.get("/api/facts", headers={"Cookie": f"{name}={minted}"}).status == 401
    session = session_of(guarded.get("/", token=TOKEN).headers)
    assert guarded.get("/api/facts", headers={"Cookie": session}).status == 200
    began, nonce, signature = session.split("=", 1)[1].split(".")
    earlier = f"{name}={int(began) + 3600}.{nonce}.{signature}"
    assert guarded.get("/api/facts", headers={"Cookie": earlier}).status == 401
    other = Guard(lambda *_: None, token=TOKEN)  # type: ignore[arg-type]
    _, headers = ask(other, token=TOKEN)
    assert guarded.get("/api/facts", headers={"Cookie": session_of(headers)}).status == 401


def test_a_session_expires_on_the_server_whatever_the_browser_keeps() -> None:
    """A session is good for SESSION_SECONDS from when it began, then refused."""
    clock = Clock()
    guard = Guard(lambda *_: None, token=TOKEN, clock=clock)  # type: ignore[arg-type]
    status, headers = ask(guard, token=TOKEN)
    assert status == 303
    session = session_of(headers)
    clock.now += SESSION_SECONDS - 1
    assert ask(guard, cookie=session)[0] == 200
    clock.now += 1
    assert ask(guard, cookie=session)[0] == 401
    assert ask(guard, token=TOKEN)[0] == 303  # the token link starts a new one


def test_a_thousand_guesses_take_more_than_half_a_day() -> None:
    """After FREE_ATTEMPTS wrong tokens an address must wait, doubling up to LONGEST_WAIT,
    and every token it sends meanwhile is refused unchecked, even the right one: a
    guesser who waits just as long as told needs more than 12 hours for 1,000 tries."""
    clock = Clock()
    guard = Guard(lambda *_: None, token=TOKEN, clock=clock)  # type: ignore[arg-type]
    began, tried, waits = clock.now, 0, []
    while tried < 1_000:
        status, headers = ask(guard, bearer=f"guess-{tried}")
        if status == 429:
            waits.append(int(headers["retry-after"]))
            assert ask(guard, bearer=TOKEN)[0] == 429
            clock.now += waits[-1]
            continue
        assert status == 401
        tried += 1
    assert clock.now - began > 12 * 3600
    assert waits[:7] == [1, 2, 4, 8, 16, 32, LONGEST_WAIT]
    assert ask(guard, bearer=TOKEN, client="198.51.100.7")[0] == 200  # another address
    clock.now += LONGEST_WAIT
    assert ask(guard, bearer=TOKEN)[0] == 200
    assert ask(guard, bearer="wrong")[0] == 401  # the right token forgot the failures


def test_guesses_over_http_are_refused_after_the_first_few(guarded: Site) -> None:
    """Through the real server: of 1,000 wrong tokens sent as fast as they go (?token= and
    Bearer alike), only the first few are looked at; the rest get 429 with Retry-After,
    and so does the right token while the wait lasts."""
    statuses, began = [], time.monotonic()
    for n in range(1_000):
        if n % 2:
            answer = guarded.get("/api/facts", headers={"Authorization": f"Bearer guess{n}"})
        else:
            answer = guarded.get("/", token=f"guess{n}")
        statuses.append(answer.status)
    took = time.monotonic() - began
    # FREE_ATTEMPTS, the one that starts the wait, and one more each time it runs out
    looked_at = FREE_ATTEMPTS + 1 + math.ceil(math.log2(took + 1))
    assert FREE_ATTEMPTS + 1 <= statuses.count(401) <= looked_at, (statuses.count(401), took)
    assert statuses.count(401) + statuses.count(429) == 1_000
    refused = guarded.get("/", token=TOKEN)
    assert refused.status == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["kind"] == "access"


def test_attempts_remember_a_bounded_number_of_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest address is forgotten first once REMEMBERED_ADDRESSES are held."""
    from pglog._web import guard

    monkeypatch.setattr(guard, "REMEMBERED_ADDRESSES", 3)
    clock = Clock()
    attempts = Attempts(clock)
    for address in ("a", "b", "c", "d"):
        for _ in range(FREE_ATTEMPTS + 1):
            attempts.record(address, right=False)
    assert attempts.wait("a") == 0
    assert attempts.wait("d") > 0
