"""Connection: where the database is, how to reach it safely, how to name it without secrets.

A DSN's password must never be shown, and the DSNs that most need an error message are
the ones libpq can't read (a bad ``%`` escape in a URI's password, an unquoted password
with a space), whose messages quote the very text it choked on. So the password is
found by its shape, whether libpq can read the DSN or not: the userinfo of a URI, a
``password=`` in its query, a ``password=`` keyword quoted or not (an unquoted one runs
to the next ``keyword=``); ``redact`` blanks each of them, their pieces and anything
quoted that is part of one, wherever an error shows them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import unquote

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


#: A connection as pglog's modules take one (each reads its rows as it knows them).
Connection: TypeAlias = "psycopg.Connection[Any]"


class BadDsn(ValueError):
    """A DSN libpq can't read; the message says why, without the password."""


def resolve_dsn(dsn: str | None) -> str:
    """The DSN given, else ``$PGLOG_DSN``, else the empty string (libpq's own defaults);
    BadDsn if libpq can't read it, before any thread starts."""
    if dsn is None:
        dsn = os.environ.get("PGLOG_DSN", "")
    try:
        conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise BadDsn(
            f"dsn: not a valid libpq connection string or URI ({error_line(exc, dsn)})"
        ) from None
    return dsn


def with_defaults(dsn: str, **overrides: str | int) -> str:
    """``dsn`` with pglog's connection settings filled in where it says nothing."""
    given = conninfo_to_dict(dsn)
    extra: dict[str, str | int] = {
        k: v for k, v in {**DEFAULTS, **overrides}.items() if k not in given
    }
    return make_conninfo(dsn, **extra)


def connect(conninfo: str) -> Connection:
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


def passwords(dsn: str) -> set[str]:
    """Every text that may be the password of ``dsn``, or a piece of it: what libpq reads,
    and what has a password's shape, whether libpq can read the DSN or not."""
    found: set[str] = set()
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        password = None
    if password:
        found.add(str(password))
    uri = _URI.match(dsn)
    if uri:
        userinfo = uri.group("rest").rpartition("@")[0]  # the last @ ends it, for libpq too
        for info in {userinfo, userinfo.partition("@")[0]} if userinfo else ():
            found.add(info.partition(":")[2])
        found.update(_URI_PASSWORD.findall(dsn))
    else:
        for quoted, bare in _KEYWORD_PASSWORD.findall(dsn):
            found.add(re.sub(r"\\(.)", r"\1", quoted) if quoted else bare)
    for text in list(found):
        found.add(unquote(text))
        found.update(text.split())
    found.discard("")
    return found


def redact(text: str, dsn: str) -> str:
    """``text`` without the password of ``dsn`` (see ``passwords``), nor any piece of it
    that an error quotes, nor any ``password=...`` or URI password of its own."""
    secrets = sorted(passwords(dsn), key=len, reverse=True)
    for secret in secrets:
        if len(secret) >= _SHORTEST_ANYWHERE:
            text = text.replace(secret, "***")
        else:  # a short one only where it stands alone: "a" must not blank every a
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)

    def quoted(match: re.Match[str]) -> str:
        inside = match.group(2)
        if any(inside in secret for secret in secrets):
            return f"{match.group(1)}***{match.group(1)}"
        return match.group(0)

    text = _QUOTED.sub(quoted, text)
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
#: A URI (libpq's two schemes), and a password given in its query string.
_URI = re.compile(r"\s*postgres(?:ql)?://(?P<rest>.*)", re.DOTALL)
_URI_PASSWORD = re.compile(r"[?&]password=([^&]*)")
#: ``password=`` in a keyword string: quoted (to the closing quote, or the end), or bare,
#: running to the next ``keyword=`` (an unquoted password with a space is all password).
_KEYWORD_PASSWORD = re.compile(
    r"(?<![\w])password\s*=\s*(?:'((?:[^'\\]|\\.)*)'?|(.*?)(?=\s+\w+\s*=|\s*$))", re.DOTALL
)
#: Text an error quotes, in double or single quotes.
_QUOTED = re.compile(r"([\"'])([^\"']+)\1")
#: A password shorter than this is blanked only where it stands alone.
_SHORTEST_ANYWHERE = 4
