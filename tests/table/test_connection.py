"""_table/connection: a DSN's password is never shown, not even when libpq can't read it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from test_cli import pglog

from pglog import DatabaseLogHandler
from pglog._table.connection import describe, error_line, redact

SECRET = "Zq9-s3cret"
#: DSNs libpq refuses, and the text of the password in each: a bad % escape in a URI's
#: password, spaces in a URI's password or in an unquoted password= (libpq quotes the
#: piece it stumbled on), a bad escape in the query string's password (each of those
#: messages quotes some of the password), and an unterminated quote.
UNREADABLE = {
    f"postgresql://app:{SECRET}%zz@db.internal/app": f"{SECRET}%zz",
    f"postgresql://app:{SECRET} x@db.internal/app": f"{SECRET} x",
    f"host=db.internal password={SECRET} and more user=app": f"{SECRET} and more",
    f"host=db.internal password={SECRET} extra": f"{SECRET} extra",
    f"host=db.internal user=app password='{SECRET}": SECRET,
    f"postgresql://app@db.internal/app?password={SECRET}%zz": f"{SECRET}%zz",
}
#: DSNs libpq reads, each with a password of a shape of its own.
READABLE = [
    f"postgresql://app:{SECRET}@db.internal:5432/app",
    f"postgresql://app:{SECRET.replace('-', '%2D')}@db.internal/app",
    f"host=db.internal password={SECRET} user=app",
    f"host=db.internal password = '{SECRET} with spaces' user=app",
    f"host=db.internal password='it\\'s {SECRET}' user=app",
    f"postgresql://app@db.internal/app?password={SECRET}&sslmode=disable",
]


def pieces(password: str) -> list[str]:
    """The password and each of its words: libpq quotes the word it stumbled on."""
    return [password, *password.split()]


@pytest.mark.parametrize("dsn", UNREADABLE)
def test_libpqs_own_message_about_an_unreadable_dsn_is_shown_without_the_password(
    dsn: str,
) -> None:
    """libpq's message quotes what it choked on; error_line blanks every piece of the
    password, found by its shape since libpq can't say what it is."""
    with pytest.raises(psycopg.ProgrammingError) as caught:
        conninfo_to_dict(dsn)
    if "unterminated" not in str(caught.value):
        assert any(f'"{piece}"' in str(caught.value) for piece in pieces(UNREADABLE[dsn]))
    line = error_line(caught.value, dsn)
    assert SECRET not in line
    assert all(f'"{piece}"' not in line for piece in pieces(UNREADABLE[dsn]))
    assert describe(dsn) == "<malformed dsn>"


@pytest.mark.parametrize("dsn", READABLE + list(UNREADABLE))
def test_a_dsn_quoted_whole_in_an_error_shows_no_password(dsn: str) -> None:
    """Whatever the shape (URI userinfo, percent-escaped, query string, keyword quoted or
    not), a message that repeats the DSN is shown without the password."""
    shown = redact(f"cannot reach {dsn}: timeout", dsn)
    assert SECRET not in shown
    assert SECRET.replace("-", "%2D") not in shown
    assert shown.startswith("cannot reach ")


@pytest.mark.parametrize("dsn", UNREADABLE)
@pytest.mark.parametrize("source", ["--dsn", "$PGLOG_DSN", "dsn: in the YAML"])
def test_the_cli_names_an_unreadable_dsn_without_its_password(
    dsn: str, source: str, tmp_path: Path
) -> None:
    """Wherever the DSN came from, pglog says it can't read it, in one line, exit 2,
    without the password or any piece of it."""
    env = {"PGLOG_DSN": ""}
    args = ["query", "--table", "logs"]
    if source == "--dsn":
        args += ["--dsn", dsn]
    elif source == "$PGLOG_DSN":
        env["PGLOG_DSN"] = dsn
    else:
        config = tmp_path / "pglog.yml"
        config.write_text(f'database:\n  dsn: "{dsn.replace(chr(92), chr(92) * 2)}"\n')
        args += ["--config", str(config)]
    result = pglog(*args, env=env)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("pglog: error: dsn: not a valid libpq connection string or URI")
    assert SECRET not in line
    assert all(f'"{piece}"' not in line for piece in pieces(UNREADABLE[dsn]))


@pytest.mark.parametrize("dsn", UNREADABLE)
def test_a_handler_given_an_unreadable_dsn_says_so_without_the_password(dsn: str) -> None:
    """DatabaseLogHandler refuses it at construction with a ValueError naming the dsn."""
    with pytest.raises(ValueError, match="dsn") as caught:
        DatabaseLogHandler(dsn)
    assert SECRET not in str(caught.value)


def test_a_short_password_is_blanked_where_it_stands_alone_only() -> None:
    """A password of a few characters is blanked as a word, not inside every other word."""
    dsn = "host=db.internal password=ab cd user=app"
    with pytest.raises(psycopg.ProgrammingError) as caught:
        conninfo_to_dict(dsn)
    line = error_line(caught.value, dsn)
    assert '"cd"' not in line
    assert line == 'missing "=" after "***" in connection info string'


@pytest.mark.parametrize(
    "yaml_text",
    [
        f"database:\n  host: db.internal\n  password: {SECRET}: more\n",
        f"database:\n  host: db.internal\n  password: [{SECRET}]\n",
        f"database:\n  host: db.internal\n  password: '{SECRET}\n",
        f"database:\n  host: db.internal\n  password: {{{SECRET}: 1}}\n",
    ],
    ids=["syntax error on its line", "a list", "unterminated quote", "a mapping"],
)
def test_the_cli_names_a_broken_yaml_password_without_showing_it(
    yaml_text: str, tmp_path: Path
) -> None:
    """A YAML syntax error on the password's line, or a password of the wrong type: the
    command says which file (and key) is wrong, in one line, exit 2, and never the
    password."""
    config = tmp_path / "pglog.yml"
    config.write_text(yaml_text)
    result = pglog("query", "--table", "logs", "--config", str(config), env={"PGLOG_DSN": ""})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert str(config) in line
    assert SECRET not in line
