"""A PgBouncer a test owns: in front of a test server, on loopback, stopped and started at will.

It runs Debian's ``pgbouncer`` binary in the foreground with an ini file and a
userlist of its own, in a temporary directory. PgBouncer refuses to run as root, so
as root it runs as the account the test PostgreSQL servers use.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from helpers import free_port, wait_until

#: Where Debian's package puts it (not on a non-root user's PATH).
BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> bool:
    return os.access(BINARY, os.X_OK)


class PgBouncer:
    """One PgBouncer process at a time, always on the same port, pooling one database."""

    def __init__(
        self,
        upstream_port: int,
        account: pwd.struct_passwd | None,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 1,
    ) -> None:
        self.account = account
        self.directory = Path(tempfile.mkdtemp(prefix="pglog-pgbouncer-"))
        self.port = free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"
        self.ini = self.directory / "pgbouncer.ini"
        self.log = self.directory / "pgbouncer.log"
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        self.ini.write_text(
            f"""[databases]
postgres = host=127.0.0.1 port={upstream_port} dbname=postgres user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.directory / "userlist.txt"}
admin_users = postgres
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 50
server_login_retry = 1
logfile = {self.log}
"""
        )
        if account is not None:
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections on its port."""
        assert self.process is None or self.process.poll() is not None
        self.process = subprocess.Popen(
            [BINARY, str(self.ini)],
            user=self.account.pw_uid if self.account else None,
            group=self.account.pw_gid if self.account else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
        )
        wait_until(self._listening, f"pgbouncer to listen on {self.port}\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: its immediate shutdown (every connection closed); SIGINT: its safe
        shutdown (waits for transactions); SIGKILL: a crash."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        self.process.wait(30)

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console, as dicts."""
        conninfo = self.dsn.replace("/postgres?", "/pgbouncer?")
        with psycopg.connect(conninfo, autocommit=True, cursor_factory=psycopg.ClientCursor) as c:
            cursor = c.execute(f"SHOW {what}")  # the console only speaks the simple protocol
            names = [column.name for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def destroy(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"pgbouncer exited ({self.process.returncode}):\n{self.log_text()}"
            )
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True
