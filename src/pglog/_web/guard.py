"""Guard: who may look at the logs, and what a browser may do with what it is sent.

Log content is written by whoever can reach the application, so the page treats it as
hostile: every response carries a Content-Security-Policy that allows scripts and styles
from this server only (no inline script, no inline event handler, no ``eval``) and
Trusted Types with no policy, so not even a bug in the page could turn text into HTML.

Access: with a token, every request must carry it, as ``Authorization: Bearer <token>``,
or the session cookie a visit to ``/?token=<token>`` sets (the address bar then drops the
token); tokens are compared in constant time. A session is signed with a key this process
makes at start (so no one can make one offline, token or not, and a restart ends them
all) and carries the time it began: past SESSION_SECONDS it is refused, whatever the
browser kept. Wrong tokens are slowed down per client address (``Attempts``): a few are
answered at once, then each costs a wait that doubles up to a minute, during which every
token from that address is refused (429) unchecked; 1,000 guesses take half a day. The
cookie's name is derived from the token, so two servers on one host (browsers keep
cookies per host, not per port) don't replace each other's. Without a token (loopback
only), the Host header must name the loopback interface, so a web page elsewhere can't
reach the server by pointing a name of its own at 127.0.0.1 (DNS rebinding). Only HTTP
passes: a WebSocket is closed before it opens.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The session cookie's name, followed by 8 hex digits derived from the token.
COOKIE_PREFIX = "pglog_session_"
#: How long a session lasts (the browser keeps its cookie as long, and the server checks):
#: a working day, then the token link again.
SESSION_SECONDS = 12 * 3600
#: Wrong tokens from one address answered at once; after them, each costs a wait of
#: FIRST_WAIT seconds, doubling up to LONGEST_WAIT.
FREE_ATTEMPTS = 5
FIRST_WAIT = 1.0
LONGEST_WAIT = 60.0
#: Addresses whose wrong tokens are remembered, at most (the oldest is forgotten first).
REMEMBERED_ADDRESSES = 10_000
#: A Host header: a name or an IP literal in brackets, then an optional port.
_HOST = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[^\[\]:@/\\\s]*)(?::[0-9]*)?")
HEADERS = {
    "content-security-policy": "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        )
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


class Guard:
    """ASGI middleware: the access check, then the security headers on every response."""

    def __init__(
        self, app: ASGIApp, *, token: str | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.secret = _Secret.of(token, clock) if token else None
        self.attempts = Attempts(clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # nothing here speaks WebSocket: refuse it unopened
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers = {key.decode("latin-1"): value for key, value in scope["headers"]}
        # a client may split its cookies over several headers
        headers["cookie"] = b"; ".join(value for key, value in scope["headers"] if key == b"cookie")

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((key.encode(), value.encode()) for key, value in HEADERS.items()),
                ]
            await send(message)

        if self.secret is None:
            if not loopback_host(headers.get("host", b"").decode("latin-1")):
                await _refuse(secured, 403, "this server answers on localhost only")
                return
            await self.app(scope, receive, secured)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = [value for key, value in query if key == "token"]
        bearer = _bearer(headers)
        if offered or bearer is not None:
            client = (scope.get("client") or ("unknown",))[0]
            wait = self.attempts.wait(client)
            if wait > 0:
                await _too_many(secured, wait)
                return
            right = self.secret.matches((offered[0] if offered else bearer or "").encode())
            self.attempts.record(client, right)
            if not right:
                await _refuse(secured, 401, "wrong token")
            elif offered:
                await _enter(self.secret, scope, query, secured)
            else:
                await self.app(scope, receive, secured)
        elif self.secret.admits(headers):
            await self.app(scope, receive, secured)
        else:
            await _refuse(
                secured,
                401,
                "this server needs its token: open the address it printed"
                " (…/?token=…) or send Authorization: Bearer <token>",
            )


class Attempts:
    """Wrong tokens per client address, and how long each address must wait before its
    next token is looked at. Thread-safe; bounded to REMEMBERED_ADDRESSES."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: address -> (wrong tokens in a row, when the next one may be tried)
        self._failed: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before a token of its is looked at (0: none)."""
        with self._lock:  # Decide: read the address's state
            failures, until = self._failed.get(client, (0, 0.0))
        return max(0.0, until - self._clock()) if failures else 0.0

    def record(self, client: str, right: bool) -> None:
        """A token from ``client`` was looked at: a right one forgets its failures, a wrong
        one adds to them (and, past FREE_ATTEMPTS, to the wait)."""
        now = self._clock()
        with self._lock:  # Decide: the address's new state
            if right:
                self._failed.pop(client, None)
                return
            failures = self._failed.pop(client, (0, 0.0))[0] + 1
            beyond = failures - FREE_ATTEMPTS
            wait = 0.0 if beyond <= 0 else min(LONGEST_WAIT, FIRST_WAIT * 2 ** (beyond - 1))
            self._failed[client] = (failures, now + wait)
            while len(self._failed) > REMEMBERED_ADDRESSES:
                self._failed.popitem(last=False)


def _bearer(headers: dict[str, bytes]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    authorization = headers.get("authorization", b"")
    if authorization[:7].lower() == b"bearer ":
        return authorization[7:].strip().decode("latin-1")
    return None


def cookie_name(token: str) -> str:
    """The session cookie of the server with ``token``: servers with different tokens
    on one host keep their sessions apart."""
    derived = hmac.new(token.encode(), b"pglog serve cookie name", hashlib.sha256)
    return COOKIE_PREFIX + derived.hexdigest()[:8]


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1), bracketed or not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def loopback_host(header: str) -> bool:
    """Whether a Host header names the loopback interface (with any port)."""
    parsed = _HOST.fullmatch(header)
    return parsed is not None and is_loopback(parsed["name"])


@dataclass(frozen=True)
class _Secret:
    token: bytes
    cookie: str
    #: The key sessions are signed with: this process's own, made at start.
    key: bytes
    clock: Callable[[], float]

    @classmethod
    def of(cls, token: str, clock: Callable[[], float]) -> _Secret:
        return cls(token.encode(), cookie_name(token), secrets.token_bytes(32), clock)

    def matches(self, offered: bytes) -> bool:
        return hmac.compare_digest(offered, self.token)

    def session(self) -> str:
        """A new session: when it began (on this process's clock), a random part, and
        their signature."""
        began = f"{math.floor(self.clock())}.{secrets.token_hex(8)}"
        return f"{began}.{self._sign(began)}"

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def valid(self, session: str) -> bool:
        """A session this process signed, begun less than SESSION_SECONDS ago."""
        began, _, signature = session.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(began).encode()):
            return False
        age = self.clock() - int(began.partition(".")[0])
        return 0 <= age < SESSION_SECONDS

    def admits(self, headers: dict[str, bytes]) -> bool:
        """A request with a valid session cookie."""
        # leniently: another application's cookie on this host may not parse as one
        held = cookie_parser(headers.get("cookie", b"").decode("latin-1")).get(self.cookie)
        return held is not None and self.valid(held)


async def _enter(secret: _Secret, scope: Scope, query: list[tuple[str, str]], send: Send) -> None:
    """A right ``?token=``: set a new session's cookie and reload the address without the
    token (out of the history, out of any Referer).

    SameSite=Lax, not Strict: a link to the page followed from another site (a chat, a
    ticket) must carry the session, and every endpoint is a read-only GET."""
    rest = urlencode([(key, value) for key, value in query if key != "token"])
    # one leading slash: "//evil.example/" (or "/\\evil.example/") is another site
    path = quote("/" + scope["path"].lstrip("/\\"))
    location = path + (f"?{rest}" if rest else "")
    cookie = (
        f"{secret.cookie}={secret.session()}; HttpOnly; SameSite=Lax; Path=/;"
        f" Max-Age={SESSION_SECONDS}"
    )
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode()),
                (b"set-cookie", cookie.encode()),
                (b"cache-control", b"no-store"),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _too_many(send: Send, wait: float) -> None:
    seconds = math.ceil(wait)
    message = f"too many wrong tokens from this address: try again in {seconds} s"
    await _refuse(send, 429, message, [(b"retry-after", str(seconds).encode())])


async def _refuse(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message, "kind": "access"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
