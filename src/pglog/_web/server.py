"""Server: the web view under uvicorn, in the foreground (``pglog serve``) or in a thread
(the tests, the benchmark).

The socket is bound before uvicorn starts, so a port in use is one clear error, and a
test can ask for port 0 and learn the port it got. Only loopback is served without a
token: anything wider would show the logs, and whatever secrets they hold, to the network.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import TextIO

import uvicorn
from starlette.types import ASGIApp

from pglog._table.connection import describe
from pglog._web.app import Settings, create_app
from pglog._web.guard import is_loopback

#: A token shorter than this is refused: it would be guessed.
MIN_TOKEN = 16
STARTUP_TIMEOUT = 15.0
BACKLOG = 2048


def check_exposure(host: str, token: str | None) -> None:
    """Raise ValueError unless ``host`` is loopback or a good enough token is set."""
    if token is not None and len(token) < MIN_TOKEN:
        raise ValueError(
            f"the token is {len(token)} characters; use {MIN_TOKEN} or more, e.g."
            ' python -c "import secrets; print(secrets.token_urlsafe(24))"'
        )
    if token is None and not is_loopback(host):
        raise ValueError(
            f"--host {host} would show the logs to the network: set a token"
            " (PGLOG_TOKEN or --token), or keep the default 127.0.0.1"
        )


def serve(settings: Settings, *, host: str, port: int, out: TextIO) -> int:
    """Serve until interrupted (Ctrl-C, SIGTERM); 1 if the server couldn't start."""
    check_exposure(host, settings.token)
    listening = bind(host, port)
    server = _server(create_app(settings))
    shown = socket.getfqdn() if host in ("0.0.0.0", "::") else host  # noqa: S104
    if ":" in shown:
        shown = f"[{shown.strip('[]')}]"
    print(
        f"pglog serve: http://{shown}:{listening.getsockname()[1]}/"
        f"{' (the first visit needs ?token=<your token>)' if settings.token else ''}"
        f" showing {settings.table} at {describe(settings.dsn)}, read-only; Ctrl-C stops",
        file=out,
        flush=True,
    )
    with listening:
        server.run(sockets=[listening])
    return 0 if server.started else 1


@contextlib.contextmanager
def running(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a thread while the block runs; yields its base URL."""
    listening = bind(host, port)
    server = _server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listening]}, name="pglog-serve", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:  # uvicorn has no startup event to wait on
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            listening.close()
            raise RuntimeError("the web view did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Its protocol is named, not left 0: asyncio turns Nagle's
    algorithm off only on connections it can tell are TCP, and with it on, every
    response on a kept-alive connection waits 40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host.strip("[]"), port))
        listening.listen(BACKLOG)
    except OSError:
        listening.close()
        raise
    return listening


def _server(app: ASGIApp) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,  # leave the host's logging alone; errors still reach stderr
            access_log=False,
            proxy_headers=False,
            server_header=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
    )
