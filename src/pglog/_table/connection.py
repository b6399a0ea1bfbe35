"""Connection: where the database is, how to reach it safely, how to name it without secrets."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: Settings pglog adds unless the DSN chooses otherwise. Keepalives let the writer
#: notice a server that vanished without closing the socket; the connect timeout
#: bounds how long an attempt can take when the host doesn't answer at all.
DEFAULTS = {
    "application_name": "pglog",
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def resolve_dsn(dsn: str | None) -> str:
    """The DSN given, else ``$PGLOG_DSN``, else the empty string (libpq's own defaults)."""
    if dsn is None:
        dsn = os.environ.get("PGLOG_DSN", "")
    conninfo_to_dict(dsn)  # raises ProgrammingError on a malformed DSN, before any thread starts
    return dsn


def with_defaults(dsn: str, **overrides: str | int) -> str:
    """``dsn`` with pglog's connection settings filled in where it says nothing."""
    given = conninfo_to_dict(dsn)
    extra: dict[str, str | int] = {
        k: v for k, v in {**DEFAULTS, **overrides}.items() if k not in given
    }
    return make_conninfo(dsn, **extra)


def connect(conninfo: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection for the writer: explicit transactions, no server-side prepared
    statements (they break behind PgBouncer in transaction mode)."""
    return psycopg.connect(conninfo, autocommit=False, prepare_threshold=None)


@dataclass(frozen=True)
class Address:
    """Where a DSN points, with libpq's defaults from the environment filled in."""

    hosts: tuple[str, ...]
    port: str
    dbname: str
    user: str | None


def address(dsn: str) -> Address | None:
    """Where ``dsn`` points; None if libpq can't read it."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return None
    host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    user = params.get("user") or os.environ.get("PGUSER")
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user or ""
    hosts = tuple(h for h in host.split(",") if h) or ("localhost",)
    return Address(hosts, port.split(",", maxsplit=1)[0], str(dbname), str(user) if user else None)


def describe(dsn: str) -> str:
    """Where ``dsn`` points, for people: ``user@host:port/dbname``, never the password."""
    found = address(dsn)
    if found is None:
        return "<malformed dsn>"
    where = f"{','.join(found.hosts)}:{found.port}/{found.dbname}"
    return f"{found.user}@{where}" if found.user else where


def redact(text: str, dsn: str) -> str:
    """``text`` with the DSN's password, and any ``password=...`` it quotes, blanked out."""
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        password = None
    if password:
        text = text.replace(str(password), "***")
    text = _PASSWORD_KEYWORD.sub(r"\1***", text)
    return _PASSWORD_IN_URI.sub(r"\1***", text)


def error_line(error: BaseException, dsn: str) -> str:
    """A database error in one line, safe to show: the server's own message without the
    SQL it quotes, and no password."""
    diag = error.diag if isinstance(error, psycopg.Error) else None
    primary = diag.message_primary if diag else None
    return redact(" ".join((primary or str(error)).split()) or type(error).__name__, dsn)


_PASSWORD_KEYWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_PASSWORD_IN_URI = re.compile(r"(://[^:/@\s]*:)[^@\s]+(?=@)")
