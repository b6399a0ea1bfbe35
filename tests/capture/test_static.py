"""static fields: what every record of a handler carries, under the record's own extras."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import fetch

import pglog
from pglog._capture.capture import capture
from pglog._capture.entry import named
from pglog._capture.row import _careful_row, to_row
from pglog._capture.static import Static
from pglog._config import ConfigError, load_config
from pglog._table.columns import WRITTEN_NAMES

STATIC = Static.of({"service": "shop", "environment": "prod", "version": "1.4.2", "shard": 3})


def extra_data(record: logging.LogRecord, *, careful: bool = False) -> dict[str, Any]:
    entry = named(capture(record))
    row = _careful_row(entry, "host", STATIC) if careful else to_row(entry, "host", STATIC)
    value = json.loads(row[WRITTEN_NAMES.index("extra_data")])
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize("careful", [False, True])
def test_static_fields_are_in_every_row_under_the_records_own(careful: bool) -> None:
    """A record without extras gets the fields; its own extra= and bound fields win over
    them; the careful path (notes, containers) does the same."""
    log = logging.getLogger("static.test")
    plain = log.makeRecord(log.name, logging.INFO, __file__, 1, "hello", (), None)
    assert extra_data(plain, careful=careful) == {
        "service": "shop",
        "environment": "prod",
        "version": "1.4.2",
        "shard": 3,
    }
    with pglog.bind(environment="staging"):
        own = log.makeRecord(
            log.name, logging.INFO, __file__, 1, "x", (), None, extra={"service": "cart", "n": [1]}
        )
        assert extra_data(own, careful=careful) == {
            "service": "cart",
            "environment": "staging",
            "version": "1.4.2",
            "shard": 3,
            "n": [1],
        }


def test_the_option_takes_plain_values_in_python_and_in_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """static_fields: a mapping of names to plain values; in the YAML its values are text
    as written (${VAR} read from the environment); anything else names the key."""
    with pytest.raises(ValueError, match=r"static_fields: n: expected text, a number"):
        pglog.DatabaseLogHandler("", static_fields={"n": [1]})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"static_fields: _pglog is pglog's own key"):
        pglog.DatabaseLogHandler("", static_fields={"_pglog": 1})
    monkeypatch.setenv("APP_VERSION", "1.4.2")
    config = tmp_path / "config.yml"
    config.write_text(
        "logging:\n  database:\n    static_fields:\n      service: shop\n"
        "      version: ${APP_VERSION}\n      build: 0123\n"
    )
    assert load_config(str(config)).database.options["static_fields"] == {
        "service": "shop",
        "version": "1.4.2",
        "build": "0123",
    }
    config.write_text("logging:\n  database:\n    static_fields: shop\n")
    with pytest.raises(ConfigError, match=r"logging\.database\.static_fields: expected a mapping"):
        load_config(str(config))


def test_a_handler_writes_its_static_fields_into_every_record(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """End to end: the handler's static_fields land in the table with each record."""
    handler = make_handler(static_fields={"service": "shop"})
    logger.addHandler(handler)
    logger.info("with the service")
    assert handler.flush(10)
    assert fetch(db, table, "extra_data") == [({"service": "shop"},)]
