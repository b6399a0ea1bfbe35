"""Guard: who may look at the logs, and what a browser may do with what it is sent.

Log content is written by whoever can reach the application, so the page treats it as
hostile: every response carries a Content-Security-Policy that allows scripts and styles
from this server only (no inline script, no inline event handler, no ``eval``) and
Trusted Types with no policy, so not even a bug in the page could turn text into HTML.

Access: with a token, every request must carry it, as ``Authorization: Bearer <token>``
or in the cookie a visit to ``/?token=<token>`` sets (the address bar then drops it);
tokens are compared in constant time. The cookie's name is derived from the token, so two
servers on one host (browsers keep cookies per host, not per port) don't replace each
other's. Without a token (loopback only), the Host header must name the loopback
interface, so a web page elsewhere can't reach the server by pointing a name of its own at
127.0.0.1 (DNS rebinding). Only HTTP passes: a WebSocket is closed before it opens.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The session cookie's name, followed by 8 hex digits derived from the token.
COOKIE_PREFIX = "pglog_session_"
#: How long a browser keeps the session: a working day, then the token link again.
SESSION_SECONDS = 12 * 3600
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

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.secret = _Secret.of(token) if token else None

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
        if offered:
            await _enter(self.secret, scope, offered[0], query, secured)
        elif self.secret.admits(headers):
            await self.app(scope, receive, secured)
        else:
            await _refuse(
                secured,
                401,
                "this server needs its token: open the address it printed"
                " (…/?token=…) or send Authorization: Bearer <token>",
            )


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
    #: What the cookie holds: derived from the token, so the token itself is never
    #: stored in the browser.
    session: bytes
    cookie: str

    @classmethod
    def of(cls, token: str) -> _Secret:
        session = hmac.new(token.encode(), b"pglog serve session", hashlib.sha256)
        return cls(token.encode(), session.hexdigest().encode(), cookie_name(token))

    def matches(self, offered: bytes) -> bool:
        return hmac.compare_digest(offered, self.token)

    def admits(self, headers: dict[str, bytes]) -> bool:
        """A request with the token as a bearer, or with the session cookie."""
        authorization = headers.get("authorization", b"")
        if authorization.lower().startswith(b"bearer "):
            return self.matches(authorization[7:].strip())
        # leniently: another application's cookie on this host may not parse as one
        held = cookie_parser(headers.get("cookie", b"").decode("latin-1")).get(self.cookie)
        return held is not None and hmac.compare_digest(held.encode(), self.session)


async def _enter(
    secret: _Secret, scope: Scope, offered: str, query: list[tuple[str, str]], send: Send
) -> None:
    """``?token=``: a right one sets the session cookie and reloads the address without
    it (out of the history, out of any Referer); a wrong one is refused.

    SameSite=Lax, not Strict: a link to the page followed from another site (a chat, a
    ticket) must carry the session, and every endpoint is a read-only GET."""
    if not secret.matches(offered.encode()):
        await _refuse(send, 401, "wrong token")
        return
    rest = urlencode([(key, value) for key, value in query if key != "token"])
    # one leading slash: "//evil.example/" (or "/\\evil.example/") is another site
    path = quote("/" + scope["path"].lstrip("/\\"))
    location = path + (f"?{rest}" if rest else "")
    cookie = (
        f"{secret.cookie}={secret.session.decode()}; HttpOnly; SameSite=Lax; Path=/;"
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


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "kind": "access"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
