"""A tiny WSGI app that logs one record per request."""

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("app")
log.info("app loaded")  # with preload_app, logged once, by the master


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    log.info("handled %s", path, extra={"method": environ["REQUEST_METHOD"], "path": path})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"served by {os.getpid()}\n".encode()]
