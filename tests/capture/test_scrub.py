"""scrub: secrets are replaced before they are stored, in the writer's thread, and what was
scrubbed is noted by its path, never its value."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import fetch
from psycopg import sql

import pglog
from pglog import DatabaseLogHandler
from pglog._capture.capture import capture
from pglog._capture.entry import named
from pglog._capture.row import to_row
from pglog._capture.scrub import DEFAULT, OFF, SCRUBBED, SECRET_KEY_WORDS, SHAPES, Scrubber
from pglog._config import ConfigError, load_config
from pglog._table.columns import WRITTEN_NAMES

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
#: Secrets that must never reach the table, each where an application would log it.
SECRETS = {
    "hunter2-pw": "a password extra",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc": "an api_key extra",
    "dGVzdDpzZWNyZXQtYmFzaWM=": "an Authorization header",
    "sid=Xk39dmQ0pl": "a Cookie header",
    "SeSs10nT0ken": "a session id",
    JWT: "a JWT under an innocent key",
    "db-pa55word": "a password in a URI",
    "AKIAIOSFODNN7EXAMPLE": "an AWS access key id",
    "m3ssage-pa55": "a password= in the message",
    "Tr4ceback-Pa55": "a password in a traceback",
    "b0und-api-key": "a bound api key",
}


def row_of(record: logging.LogRecord, scrubber: Scrubber = DEFAULT) -> dict[str, Any]:
    return dict(
        zip(WRITTEN_NAMES, to_row(named(capture(record)), "h", scrubber=scrubber), strict=True)
    )


def make_record(msg: str = "m", **extra: Any) -> logging.LogRecord:
    log = logging.getLogger("scrub.test")
    return log.makeRecord(log.name, logging.INFO, __file__, 1, msg, (), None, extra=extra)


def test_secrets_in_extras_messages_and_tracebacks_never_reach_the_table(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Through a real handler, with the defaults: values under secret keys at any depth,
    and secret-shaped text anywhere, are [scrubbed]; the row holds none of the secrets, and
    says which paths were scrubbed; what is not a secret is stored as logged."""
    handler = make_handler()
    logger.addHandler(handler)
    for _ in range(2):  # the second time, the rows take the writer's fast path
        logger.info(
            "login",
            extra={
                "password": "hunter2-pw",
                "api_key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "user": "ann",
                "note": f"token {JWT}",
            },
        )
        logger.info(
            "request",
            extra={
                "headers": {
                    "Authorization": "Basic dGVzdDpzZWNyZXQtYmFzaWM=",
                    "Cookie": "sid=Xk39dmQ0pl",
                    "Accept": "text/html",
                },
                "users": [{"session_id": "SeSs10nT0ken", "author": "bob"}],
                "dsn": "postgresql://app:db-pa55word@db.internal/app",
                "aws": "AKIAIOSFODNN7EXAMPLE",
            },
        )
        logger.warning("retrying with password=%s for %s", "m3ssage-pa55", "ann")
        try:
            raise ConnectionError("could not log in with password=Tr4ceback-Pa55")
        except ConnectionError:
            logger.exception("connection failed")
        with pglog.bind(api_key="b0und-api-key", request_id="req-1"):
            logger.info("bound")
    assert handler.flush(10)
    rows = db.execute(
        sql.SQL("SELECT message, exception, extra_data, t::text FROM {} t ORDER BY id").format(
            sql.Identifier(table)
        )
    ).fetchall()
    assert len(rows) == 10
    everything = "\n".join(text for *_, text in rows)
    for secret, where in SECRETS.items():
        assert secret not in everything, where
    for first, second in zip(rows[:5], rows[5:], strict=True):
        assert first[:3] == second[:3]  # the fast path scrubs as the careful one does
    (_, _, login_extra, _), (_, _, request, _), (retry, _, retry_extra, _) = rows[:3]
    assert login_extra["password"] == login_extra["api_key"] == SCRUBBED
    assert login_extra["user"] == "ann"
    assert login_extra["note"] == f"token {SCRUBBED}"
    assert sorted(login_extra["_pglog"]["scrubbed"]) == [
        "extra.api_key",
        "extra.note",
        "extra.password",
    ]
    assert request["headers"] == {
        "Authorization": SCRUBBED,
        "Cookie": SCRUBBED,
        "Accept": "text/html",
    }
    assert request["users"] == [{"session_id": SCRUBBED, "author": "bob"}]
    assert request["dsn"] == f"postgresql://app:{SCRUBBED}@db.internal/app"
    assert "extra.users[0].session_id" in request["_pglog"]["scrubbed"]
    assert retry == f"retrying with password={SCRUBBED} for ann"
    assert retry_extra["_pglog"]["scrubbed"] == ["message"]
    _, exception, failed_extra, _ = rows[3]
    assert f"password={SCRUBBED}" in exception
    assert failed_extra["_pglog"]["scrubbed"] == ["exception"]
    _, _, bound, _ = rows[4]
    assert bound == {
        "api_key": SCRUBBED,
        "request_id": "req-1",
        "_pglog": {"scrubbed": ["extra.api_key"]},
    }
    assert handler.stats()["written"] == 10


def test_a_template_keeps_its_placeholders_and_loses_its_secrets() -> None:
    """``password=%s`` in a format string is no secret: the template is stored as written
    (errors are grouped by it) and only the message is scrubbed; a secret written into the
    format string itself is scrubbed from both."""
    log = logging.getLogger("scrub.test")
    placeholder = log.makeRecord(
        log.name, logging.ERROR, __file__, 1, "login with password=%s failed", ("pa55-w0rd",), None
    )
    row = row_of(placeholder)
    assert row["template"] == "login with password=%s failed"
    assert row["message"] == f"login with password={SCRUBBED} failed"
    assert '"scrubbed":["message"]' in row["extra_data"]
    literal = log.makeRecord(
        log.name, logging.ERROR, __file__, 1, "password=l1teral-pw for %s", ("ann",), None
    )
    row = row_of(literal)
    assert "l1teral-pw" not in row["template"] + row["message"]
    assert row["template"] == f"password={SCRUBBED} for %s"
    assert '"scrubbed":["message","template"]' in row["extra_data"]


@pytest.mark.parametrize(
    ("message", "extra"),
    [
        ("session started for user 42", {"author": "bob", "authors": "ann, bob"}),
        ("Basic authentication failed; token expired", {"request_id": "req-7f3a"}),
        ("GET /orders/1042?page=2 -> 200", {"path": "/orders/1042", "status": 200}),
        ("Bearer tokens are checked at the gateway", {"classname": "Auditor"}),
    ],
)
def test_what_only_looks_like_a_secret_is_stored_as_logged(
    message: str, extra: dict[str, Any]
) -> None:
    """Words such as "session" and "Basic" in a sentence, keys such as author or classname:
    no secret, nothing scrubbed, no note."""
    row = row_of(make_record(message, **extra))
    assert row["message"] == message
    assert "_pglog" not in row["extra_data"]
    for key in ("classname",):
        assert key not in extra or f'"{key}":"{extra[key]}"' in row["extra_data"]


@pytest.mark.parametrize(
    "key",
    ["password", "PASSWD", "db_pwd", "client_secret", "Authorization", "X-Api-Key", "apiKey",
     "private key", "credentials", "sessionId", "Set-Cookie", "csrftoken", "XSRF-TOKEN",
     "jwt", "ssn", "credit_card_number", "social-security"],
)  # fmt: skip
def test_every_kind_of_secret_key_is_scrubbed(key: str) -> None:
    """The built-in key words, in any case, with _ - . space or nothing between words."""
    row = row_of(make_record(**{key: "v4lue-of-a-secret"}))
    assert "v4lue-of-a-secret" not in row["extra_data"]
    assert SCRUBBED in row["extra_data"]


@pytest.mark.parametrize(
    "text",
    ["-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", f"token {JWT}",
     "Authorization: Bearer dGVzdDpzZWNyZXQ=", "BASIC dXNlcjpwYXNz", "postgres://u:pa55@db/x",
     "api_key=abc123", '{"Session": "s3cr3t"}', "AKIAIOSFODNN7EXAMPLE",
     "ghp_" + "a" * 36, "github_pat_" + "b" * 22, "xoxb-1234567890-abc", "sk_live_4eC39HqLyjW",
     "rk_test_4eC39HqLyjW", "AIza" + "c" * 35, "sk-" + "d" * 20],
)  # fmt: skip
def test_the_substring_tests_let_every_secret_shape_through(text: str) -> None:
    """The cheap first tests (``KEY_HINTS``, ``SHAPE_HINTS``) stand for every shape: each
    text here is one (a shape's pattern finds it), and they flag it for the careful look."""
    assert any(re.search(pattern, text) for pattern, _ in SHAPES)
    assert DEFAULT.suspects(text)
    assert DEFAULT.text(text, "message", []) != text


@pytest.mark.parametrize("word", SECRET_KEY_WORDS)
def test_the_substring_tests_let_every_secret_key_word_through(word: str) -> None:
    """Each key word holds one of ``KEY_HINTS``: spelt out (as the word's pattern finds it), it
    is flagged in ``key=value`` text and in the JSON text of extras; a text holding no hint
    is not."""
    key = next(
        key
        for key in ("password", "passwd", "pwd", "secret", "auth", "credential", "private_key",
                    "api-key", "session", "cookie", "csrf", "xsrf", "jwt", "ssn",
                    "social security", "credit.card")
        if re.search(word, key)
    )  # fmt: skip
    assert DEFAULT.suspects(f"{key.upper()}=v4lue")
    assert DEFAULT.suspects_json(json.dumps({key: "v4lue"}))
    assert not DEFAULT.suspects("user=alice order=12345 status=shipped")


def test_patterns_add_to_what_is_scrubbed_and_kept_keys_are_stored_as_logged() -> None:
    """A pattern scrubs the value of a key it matches and the text it matches; a key in
    keep is stored as logged; OFF scrubs nothing."""
    scrubber = Scrubber(patterns=[r"acme-[0-9a-f]{8}", r"^internal_ref$"], keep=["Session_Count"])
    record = make_record(
        "called with acme-deadbeef",
        internal_ref="r-1",
        session_count=3,
        password="still-scrubbed",
        note="key acme-0badf00d here",
    )
    row = row_of(record, scrubber)
    assert row["message"] == f"called with {SCRUBBED}"
    assert '"internal_ref":"[scrubbed]"' in row["extra_data"]
    assert '"session_count":3' in row["extra_data"]
    assert "still-scrubbed" not in row["extra_data"]
    assert f'"note":"key {SCRUBBED} here"' in row["extra_data"]
    unscrubbed = row_of(record, OFF)
    assert "still-scrubbed" in unscrubbed["extra_data"]
    assert unscrubbed["message"] == "called with acme-deadbeef"
    assert Scrubber.of({"scrub": False, "scrub_patterns": (), "scrub_keep": ()}) is OFF
    assert Scrubber.of({"scrub": True, "scrub_patterns": (), "scrub_keep": ()}) is DEFAULT


def test_the_caller_pays_nothing_for_scrubbing() -> None:
    """capture(), in the caller's thread, takes the extras as they are: the secret is still
    in the entry it queues, and only the row (made in the writer) is scrubbed."""
    record = make_record(password="hunter2-pw")
    entry = named(capture(record))
    assert entry.extras == {"password": "hunter2-pw"}
    assert "hunter2-pw" not in row_of(record)["extra_data"]


def test_the_options_are_checked_and_read_from_the_yaml(tmp_path: Path) -> None:
    """scrub, scrub_patterns and scrub_keep are handler options: a pattern that isn't a
    regular expression is a ValueError naming the option (in the YAML, a ConfigError with
    the file and the key); a list in the YAML is read as written."""
    with pytest.raises(ValueError, match=r"scrub_patterns: '\(' .*not a regular expression"):
        DatabaseLogHandler("", scrub_patterns=["("])
    with pytest.raises(ValueError, match="scrub_keep: expected a list of strings"):
        DatabaseLogHandler("", scrub_keep=3)  # type: ignore[arg-type]
    config = tmp_path / "pglog.yml"
    config.write_text(
        "logging:\n  database:\n    scrub: yes\n"
        "    scrub_patterns: ['acme-[0-9a-f]{8}', '^pin$']\n    scrub_keep: [session_count]\n"
    )
    options = load_config(config).database.options
    assert options["scrub"] is True
    assert options["scrub_patterns"] == ("acme-[0-9a-f]{8}", "^pin$")
    assert options["scrub_keep"] == ("session_count",)
    config.write_text("logging:\n  database:\n    scrub_patterns: ['[a-']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.key == "logging.database.scrub_patterns"
    assert "not a regular expression" in caught.value.problem


@pytest.mark.parametrize(
    "case",
    [
        ({"scrub": False}, {"password": "hunter2-pw", "api_key": "k3y-v4lue", "pin": "1234"}),
        ({"scrub_keep": ["PASSWORD"]}, {"password": "hunter2-pw", "api_key": SCRUBBED}),
        ({"scrub_patterns": ["^pin$"]}, {"password": SCRUBBED, "pin": SCRUBBED}),
    ],
)
def test_the_handlers_scrub_options_reach_the_writer(
    make_handler: HandlerFactory,
    logger: logging.Logger,
    db: psycopg.Connection[Any],
    table: str,
    case: tuple[dict[str, Any], dict[str, str]],
) -> None:
    """The writer scrubs with the handler's own scrubber, beside its static fields: scrub=False
    stores every value as logged, a kept key is stored as logged while the other secrets are
    still scrubbed, a pattern scrubs a key pglog wouldn't."""
    options, stored = case
    handler = make_handler(static_fields={"service": "shop"}, **options)
    logger.addHandler(handler)
    logger.info("login", extra={"password": "hunter2-pw", "api_key": "k3y-v4lue", "pin": "1234"})
    assert handler.flush(10)
    ((extra,),) = fetch(db, table, "extra_data")
    assert extra["service"] == "shop"
    for key, value in stored.items():
        assert extra[key] == value, key


def test_the_yamls_scrub_keys_reach_the_table(
    pg_dsn: str, table: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """scrub_patterns and scrub_keep written in the YAML, through LoggerManager and a real
    handler: the pattern's key is scrubbed, the kept key is stored as logged, the other
    secrets are scrubbed, and the row says which paths were."""
    path = tmp_path / "pglog.yml"
    path.write_text(
        "logging:\n"
        "  console: {enabled: false}\n"
        "  database:\n"
        f"    table: {table}\n"
        "    scrub_patterns: ['^pin$']\n"
        "    scrub_keep: [session_count]\n"
        "database:\n"
        f"  dsn: '{pg_dsn}'\n"
    )
    assert pglog.initialize_logger(str(path)) is True
    try:
        pglog.get_logger("shop").info(
            "login", extra={"pin": "1234", "session_count": 3, "api_key": "k3y-v4lue"}
        )
    finally:
        pglog.shutdown_logging()
    ((extra,),) = fetch(db, table, "extra_data")
    assert extra["pin"] == extra["api_key"] == SCRUBBED
    assert extra["session_count"] == 3
    assert sorted(extra["_pglog"]["scrubbed"]) == ["extra.api_key", "extra.pin"]
