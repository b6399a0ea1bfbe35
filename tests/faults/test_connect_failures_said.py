"""A database pglog can't connect to is said at once on stderr, with its cause in plain words.

Each test starts a program whose only root handler is pglog (``fallback=None``, so the
console is not the fallback), logs one record, and keeps running. The fault is real:
a role whose password is wrong, a database that does not exist, a port nothing
listens on, a host name that can't be resolved, a server that accepts and never
answers. Within 10 s of the first record a line on stderr must say what is wrong;
the password, right or wrong, never appears.

A permanent misconfiguration is said again while it lasts: once a minute; the last test
shortens the minute (pglog's own rate, not the fault) to see it said more than once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from helpers import Blackhole, closed_port_dsn
from pgserver import PostgresServer
from psycopg.conninfo import make_conninfo

from faults.live import Child

#: The first failure must be on stderr this soon after the first record.
SAY_WITHIN = 10.0
REAL_PASSWORD = "Real-pa55word-4c1d9e"
WRONG_PASSWORD = "Wr0ng-pa55word-7f3a2b"

CHILD = """
import json, logging, sys
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler(
    {dsn!r}, table="said", fallback={fallback!r}, connect_timeout={connect_timeout},
    close_timeout=1, flush_interval=0.05,
)
root = logging.getLogger()
root.setLevel(logging.INFO)
root.addHandler(handler)
logging.getLogger("app").warning("the first record")
print("logged", flush=True)
sys.stdin.read()  # the application runs on until the test closes stdin
print(json.dumps(handler.stats()), flush=True)
"""


def wrong_password(request: pytest.FixtureRequest) -> str:
    server: PostgresServer = request.getfixturevalue("server")
    server.add_password_role("app", REAL_PASSWORD)
    return server.dsn_as("app", WRONG_PASSWORD)


def missing_database(request: pytest.FixtureRequest) -> str:
    return make_conninfo(request.getfixturevalue("pg_dsn"), dbname="no_such_database")


def nothing_listening(request: pytest.FixtureRequest) -> str:
    return closed_port_dsn()


def unresolvable_host(request: pytest.FixtureRequest) -> str:
    return "postgresql://app@nonexistent.invalid:5432/postgres"


def never_answers(request: pytest.FixtureRequest) -> str:
    hole = Blackhole()
    request.addfinalizer(hole.close)
    return hole.dsn


#: cause -> (how to make the DSN, words of which one must be in the line, connect_timeout)
CAUSES: dict[str, tuple[Callable[[pytest.FixtureRequest], str], tuple[str, ...], int]] = {
    "wrong password": (wrong_password, ("authentication",), 5),
    "missing database": (missing_database, ("does not exist",), 5),
    "nothing listening": (nothing_listening, ("refused",), 5),
    "unresolvable host": (unresolvable_host, ("resolve", "translate host name"), 5),
    "server never answers": (never_answers, ("timed out", "timeout"), 2),
}


def run_until_said(dsn: str, words: tuple[str, ...], *, fallback: str | None, timeout: int) -> None:
    code = CHILD.format(dsn=dsn, fallback=fallback, connect_timeout=timeout)
    with Child(code) as child:
        logged = child.wait_for("stdout", "logged", 30)
        assert logged is not None, child.text("stderr")
        said = child.wait_for(
            "stderr", lambda line: any(w in line.lower() for w in words), SAY_WITHIN
        )
        still_running = child.alive()
        assert child.finish(30) == 0, child.text("stderr")
        stderr = child.text("stderr")
        stats: dict[str, Any] = json.loads(child.lines("stdout")[-1])
    print(f"\nstderr: {stderr!r}\nstats: {stats}")
    assert said is not None, (
        f"no line on stderr containing {' or '.join(map(repr, words))} within {SAY_WITHIN}s"
        f" of the first record; stderr was {stderr!r}, last_error {stats['last_error']!r}"
    )
    assert still_running  # said by the running application, not at its exit
    assert said[0] - logged[0] <= SAY_WITHIN
    for secret in (REAL_PASSWORD, WRONG_PASSWORD):
        assert secret not in stderr


@pytest.mark.parametrize("cause", CAUSES)
def test_a_failure_to_connect_is_said_on_stderr_at_once_with_its_cause_without_fallback(
    cause: str, request: pytest.FixtureRequest
) -> None:
    """fallback=None, pglog the only root handler: within 10 s of the first record stderr
    says why pglog can't connect (authentication / does not exist / refused / resolve /
    timed out), and never shows the password."""
    make_dsn, words, timeout = CAUSES[cause]
    run_until_said(make_dsn(request), words, fallback=None, timeout=timeout)


def test_a_wrong_password_is_said_on_stderr_at_once_with_the_console_fallback(
    request: pytest.FixtureRequest,
) -> None:
    """The default fallback (the console): the same line, "authentication", no password."""
    dsn = wrong_password(request)
    run_until_said(dsn, ("authentication",), fallback="console", timeout=5)


def test_a_failure_that_lasts_is_said_again_not_once(request: pytest.FixtureRequest) -> None:
    """A wrong password is said at once, then again while it lasts (at most once per
    minute; here the minute is made one second), each time with its cause."""
    dsn = wrong_password(request)
    code = CHILD.format(dsn=dsn, fallback=None, connect_timeout=2).replace(
        "from pglog import DatabaseLogHandler",
        "from pglog import DatabaseLogHandler\nimport pglog._writer.notices as notices\n"
        "notices.EVERY = 1.0",
    )
    with Child(code) as child:
        assert child.wait_for("stdout", "logged", 30) is not None, child.text("stderr")
        first = child.wait_for("stderr", "authentication", SAY_WITHIN)
        again = child.wait_for("stderr", "still can't write", SAY_WITHIN)
        assert child.finish(30) == 0
        stderr = child.text("stderr")
    assert first is not None, stderr
    assert again is not None, f"said once only: {stderr!r}"
    assert "authentication" in again[1]
    assert REAL_PASSWORD not in stderr
    assert WRONG_PASSWORD not in stderr
