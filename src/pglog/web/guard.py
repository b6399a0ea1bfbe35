"""Guard: who may look at the logs, and what a browser may do with what it is sent.

Log content is written by whoever can reach the application, so the page treats it as
hostile: every response carries a Content-Security-Policy that allows scripts and styles
from this server only (no inline script, no inline event handler, no ``eval``) and
Trusted Types with no policy, so not even a bug in the page could turn text into HTML.

Access: with a token, every request must carry it, as ``Authorization: Bearer <token>``
or in the cookie a visit to ``/?token=<token>`` sets (the address bar then drops it);
tokens are compared in constant time. Without one (loopback only), the Host header must
name the loopback interface, so a web page elsewhere can't reach the server by pointing
a name of its own at 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "pglog_session"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value for key, value in scope["headers"]}

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((key.encode(), value.encode()) for key, value in HEADERS.items()),
                ]
            await send(message)

        if self.secret is None:
            if _host_name(headers.get("host", b"").decode("latin-1")) not in LOOPBACK_NAMES:
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


@dataclass(frozen=True)
class _Secret:
    token: bytes
    #: What the cookie holds: derived from the token, so the token itself is never
    #: stored in the browser.
    session: bytes

    @classmethod
    def of(cls, token: str) -> _Secret:
        session = hmac.new(token.encode(), b"pglog serve session", hashlib.sha256)
        return cls(token.encode(), session.hexdigest().encode())

    def matches(self, offered: bytes) -> bool:
        return hmac.compare_digest(offered, self.token)

    def admits(self, headers: dict[str, bytes]) -> bool:
        """A request with the token as a bearer, or with the session cookie."""
        authorization = headers.get("authorization", b"")
        if authorization.lower().startswith(b"bearer "):
            return self.matches(authorization[7:].strip())
        held = SimpleCookie(headers.get("cookie", b"").decode("latin-1")).get(COOKIE)
        return held is not None and hmac.compare_digest(held.value.encode(), self.session)


async def _enter(
    secret: _Secret, scope: Scope, offered: str, query: list[tuple[str, str]], send: Send
) -> None:
    """``?token=``: a right one sets the session cookie and reloads the address without
    it (out of the history, out of any Referer); a wrong one is refused."""
    if not secret.matches(offered.encode()):
        await _refuse(send, 401, "wrong token")
        return
    rest = urlencode([(key, value) for key, value in query if key != "token"])
    location = scope["path"] + (f"?{rest}" if rest else "")
    cookie = f"{COOKIE}={secret.session.decode()}; HttpOnly; SameSite=Strict; Path=/"
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


def _host_name(host: str) -> str:
    """The name in a Host header, without its port."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


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
