"""pglog's reports about trouble: one per kind *and reason*, and never a record's contents.

Two different refusals within a minute are two things to know about; today both
share one rate-limit key ("can't write to <table>") and the second is never said.
And a refused row's report quotes the server's DETAIL ("Failing row contains (...)"),
which is the record itself: its message and its extras, secrets included, in a
report that goes wherever the fallback goes. The record may go to the fallback as a
record; the report about it must not repeat it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
import pytest
from helpers import (
    INSERT_ONLY,
    TABLE,
    ListHandler,
    attach,
    grant_insert_only,
    make_table_as_a_writer_does,
    stored,
)
from pgserver import PostgresServer


def reports(fallback: ListHandler, stderr: str) -> list[str]:
    """What pglog said about itself: its records in the fallback, and stderr's lines."""
    said = [
        f"{r.getMessage()} {r.exc_text or ''}"
        for r in fallback.records
        if r.name.split(".")[0] == "pglog"
    ]
    return said + [line for line in stderr.splitlines() if line.strip()]


def test_two_different_refusals_within_a_minute_are_both_reported(
    server: PostgresServer,
    admin: psycopg.Connection[Any],
    logger: logging.Logger,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A revoked INSERT (42501), then, seconds later, a trigger that raises (P0001): two
    reasons a batch can't be written, both said; the records go to the fallback."""
    make_table_as_a_writer_does(admin, logger, server.dsn)
    grant_insert_only(admin)
    dsn = server.dsn_as(INSERT_ONLY)
    handler, fallback = attach(logger, dsn, create_table=False)
    logger.info("before")
    assert handler.flush(10)

    admin.execute(f"REVOKE INSERT ON {TABLE} FROM {INSERT_ONLY}")
    logger.info("while revoked")
    assert handler.flush(10)

    admin.execute(f"GRANT INSERT ON {TABLE} TO {INSERT_ONLY}")
    admin.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'the audit trigger says no'; END $$"
    )
    admin.execute(
        f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    logger.info("while the trigger refuses")
    assert handler.flush(10)

    admin.execute(f"DROP TRIGGER refuse ON {TABLE}")
    logger.info("after")
    assert handler.flush(10)
    stats = handler.stats()
    handler.close()

    said = reports(fallback, capfd.readouterr().err)
    print(f"\nreports: {said}\nstats: {stats}")
    assert stored(server.dsn, TABLE) == ["before", "after"]
    assert fallback.messages(logger.name) == ["while revoked", "while the trigger refuses"]
    assert (stats["written"], stats["fallback"], stats["pending"]) == (2, 2, 0)
    assert any("InsufficientPrivilege" in r or "permission denied" in r for r in said), said
    assert any("RaiseException" in r or "the audit trigger says no" in r for r in said), said


#: constraint -> (DDL that makes the table refuse the record, a word the report must say,
#: whether the record's escaped form (ASCII only) is accepted, and stored)
REFUSALS = {
    "check": (
        f"ALTER TABLE {TABLE} ADD CONSTRAINT no_forbidden CHECK (message NOT LIKE '%forbidden%')",
        "check",
        False,
    ),
    "not null": (f"ALTER TABLE {TABLE} ADD COLUMN tenant text NOT NULL", "null", False),
    "check, stored escaped": (
        f"ALTER TABLE {TABLE} ADD CONSTRAINT ascii_only CHECK (message ~ '^[ -~]*$')",
        "check",
        True,
    ),
}


@pytest.mark.parametrize("constraint", REFUSALS)
def test_a_refusal_report_never_quotes_the_refused_record(
    constraint: str,
    server: PostgresServer,
    admin: psycopg.Connection[Any],
    logger: logging.Logger,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A CHECK or NOT NULL constraint refuses a record holding a card number in its message
    (first, where the server's CONTEXT line quotes it too) and an API key in its extras:
    the record goes to the fallback (or, accepted in escaped form, is stored so), a
    report says why, and neither secret appears in any report (nor on stderr)."""
    ddl, reason, escaped = REFUSALS[constraint]
    make_table_as_a_writer_does(admin, logger, server.dsn)
    admin.execute(ddl)
    card, key = f"card-{uuid.uuid4().hex}", f"key-{uuid.uuid4().hex}"
    handler, fallback = attach(logger, server.dsn)
    logger.info("%s paid a forbidden order (\u00fcber)", card, extra={"api_key": key})
    assert handler.flush(10)
    stats = handler.stats()
    handler.close()

    stderr = capfd.readouterr().err
    said = reports(fallback, stderr)
    print(f"\nreports: {said}\nstats: {stats}")
    message = f"{card} paid a forbidden order (\u00fcber)"
    if escaped:
        assert stored(server.dsn, TABLE) == [message.replace("\u00fc", "\\xfc")]
        assert fallback.messages(logger.name) == []
    else:
        assert stored(server.dsn, TABLE) == []
        assert fallback.messages(logger.name) == [message]
        assert stats["fallback"] == 1
    assert any(reason in r.lower() for r in said), said  # the report is there, and says why
    # Even the start of a secret is too much (the server's CONTEXT quotes a row's first
    # hundred characters): "card-" or "key-" and 5 random hex digits.
    secrets = (card[:10], key[:9])
    leaking = [r for r in said if any(secret in r for secret in secrets)]
    assert leaking == [], "a report quotes the refused record"
    assert not any(secret in stderr for secret in secrets)
