"""LoggerManager and the module functions: YAML in, levels per component, console always on."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import closed_port_dsn, count, fetch, run_python

import pglog


@pytest.fixture(autouse=True)
def clean_root() -> Iterator[None]:
    """Each test starts and ends with the root logger as it found it."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    pglog.shutdown_logging()
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name in ("authentication", "models", "payments"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def config(dsn: str, table: str, **database: Any) -> dict[str, Any]:
    return {
        "logging": {
            "level": "INFO",
            "console": {"enabled": True, "format": "%(levelname)s %(name)s %(message)s"},
            "database": {"flush_interval": 0.05, "table": table, **database},
            "components": {"authentication": "DEBUG", "models": "WARNING"},
        },
        "database": {"dsn": dsn},
    }


def test_component_levels_decide_what_is_stored(
    pg_dsn: str, table: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """DEBUG from authentication is stored, INFO from models is not, the rest follows INFO."""
    assert pglog.initialize_logger(config(pg_dsn, table)) is True
    pglog.get_logger("authentication").debug("token ok")
    pglog.get_logger("models").info("not stored")
    pglog.get_logger("models").warning("cache cold")
    pglog.get_logger("payments").debug("not stored either")
    pglog.get_logger("payments").info("paid")
    pglog.shutdown_logging()
    assert fetch(db, table, "logger_name, level, message") == [
        ("authentication", "DEBUG", "token ok"),
        ("models", "WARNING", "cache cold"),
        ("payments", "INFO", "paid"),
    ]
    assert "WARNING models cache cold" in capsys.readouterr().err


def test_shutdown_is_safe_twice_and_detaches_the_handlers(pg_dsn: str, table: str) -> None:
    """shutdown_logging() twice is fine; afterwards pglog's handlers are gone from the root."""
    pglog.initialize_logger(config(pg_dsn, table))
    installed = set(logging.getLogger().handlers)
    pglog.shutdown_logging()
    pglog.shutdown_logging()
    assert not installed & set(logging.getLogger().handlers)


def test_an_unreachable_database_leaves_the_console_working(
    table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """initialize_logger() returns False, says why, and the console still logs."""
    assert pglog.initialize_logger(config(closed_port_dsn(), table)) is False
    pglog.get_logger("payments").error("still visible")
    pglog.shutdown_logging()
    err = capsys.readouterr().err
    assert "the database is unreachable" in err
    assert "ERROR payments still visible" in err


def test_a_disabled_database_means_console_only(
    pg_dsn: str, table: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """database.enabled: false installs no database handler and creates no table."""
    assert pglog.initialize_logger(config(pg_dsn, table, enabled=False)) is False
    pglog.get_logger("payments").warning("console only")
    assert "console only" in capsys.readouterr().err
    assert db.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,)


def test_initialising_again_replaces_the_previous_setup(pg_dsn: str, table: str) -> None:
    """A second initialize_logger() closes the first set-up's handlers instead of doubling them."""
    pglog.initialize_logger(config(pg_dsn, table))
    first = set(logging.getLogger().handlers)
    pglog.initialize_logger(config(pg_dsn, table))
    assert not first & set(logging.getLogger().handlers)
    assert sum(isinstance(h, pglog.DatabaseLogHandler) for h in logging.getLogger().handlers) == 1


def test_a_bad_config_fails_before_anything_is_installed(tmp_path: Path) -> None:
    """A ConfigError at initialisation names the file; the root logger is left untouched."""
    path = tmp_path / "bad.yml"
    path.write_text("logging:\n  database:\n    batch_size: lots\n")
    before = list(logging.getLogger().handlers)
    with pytest.raises(pglog.ConfigError, match=f"{path}: logging.database.batch_size"):
        pglog.initialize_logger(str(path))
    assert logging.getLogger().handlers == before


def test_config_from_pglog_config_and_shutdown_at_exit(
    pg_dsn: str, table: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A program using $PGLOG_CONFIG and get_logger(), never calling shutdown, stores all rows."""
    path = tmp_path / "pglog.yml"
    path.write_text(
        "logging:\n"
        "  console: {enabled: false}\n"
        "  database: {flush_interval: 60}\n"
        "database:\n"
        "  dsn: ${TEST_DSN}\n"
        f"  table_prefix: {table}\n"
    )
    script = """
import pglog
assert pglog.initialize_logger() is True
log = pglog.get_logger("worker")
for i in range(1234):
    log.info("job %d done", i)
"""
    result = run_python(script, env={"PGLOG_CONFIG": str(path), "TEST_DSN": pg_dsn})
    assert result.returncode == 0, result.stderr
    assert count(db, f"{table}_logs") == 1234
    db.execute(f'DROP TABLE "{table}_logs"')


def test_the_file_handler_rotates_by_size_and_stores_beside_the_table(
    pg_dsn: str, table: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """logging.file writes every record to a file that rotates at max_bytes, keeping
    `backups` files, while the table gets every record too."""
    settings = config(pg_dsn, table)
    settings["logging"]["console"] = {"enabled": False}
    settings["logging"]["file"] = {
        "enabled": True,
        "path": str(tmp_path / "app.log"),
        "max_bytes": 2000,
        "backups": 2,
        "format": "%(levelname)s %(message)s",
    }
    assert pglog.initialize_logger(settings) is True
    for i in range(500):
        pglog.get_logger("payments").info("payment %03d", i)
    pglog.shutdown_logging()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["app.log", "app.log.1", "app.log.2"]
    assert all((tmp_path / name).stat().st_size <= 2000 for name in files)
    newest = (tmp_path / "app.log").read_text().splitlines()
    assert newest[-1] == "INFO payment 499"
    assert count(db, table) == 500


def test_the_file_handler_rotates_by_time_and_keeps_records_when_the_database_is_away(
    tmp_path: Path, table: str
) -> None:
    """With `when`, a TimedRotatingFileHandler; with the database unreachable and the
    console off, the file holds every record (nothing is written twice)."""
    settings = config(closed_port_dsn(), table)
    settings["logging"]["console"] = {"enabled": False}
    settings["logging"]["database"]["close_timeout"] = 0.5
    settings["logging"]["file"] = {
        "enabled": True,
        "path": str(tmp_path / "t.log"),
        "when": "midnight",
    }
    manager = pglog.LoggerManager(settings)
    assert manager.install() is False
    assert isinstance(manager.file_handler, logging.handlers.TimedRotatingFileHandler)
    for i in range(5):
        pglog.get_logger("payments").warning("kept %d", i)
    manager.shutdown()
    lines = (tmp_path / "t.log").read_text().splitlines()
    assert [line.rsplit(" ", 1)[-1] for line in lines if "payments" in line] == list("01234")


def test_a_missing_log_directory_fails_before_anything_is_installed(
    tmp_path: Path, pg_dsn: str, table: str
) -> None:
    """logging.file.path in a directory that doesn't exist is a ConfigError naming the key,
    raised before any handler or level is touched."""
    settings = config(pg_dsn, table)
    settings["logging"]["file"] = {"enabled": True, "path": str(tmp_path / "no" / "app.log")}
    before = list(logging.getLogger().handlers)
    with pytest.raises(pglog.ConfigError, match=r"logging\.file\.path: the directory"):
        pglog.initialize_logger(settings)
    assert logging.getLogger().handlers == before


def test_initialising_again_with_a_bad_config_keeps_the_set_up_in_place(
    tmp_path: Path, pg_dsn: str, table: str, db: psycopg.Connection[Any]
) -> None:
    """A replacement that fails (a missing log directory) changes nothing: the set-up in
    place stays on the root logger and current, so shutdown_logging() still writes and
    closes it."""
    assert pglog.initialize_logger(config(pg_dsn, table)) is True
    installed = list(logging.getLogger().handlers)
    settings = config(pg_dsn, table)
    settings["logging"]["file"] = {"enabled": True, "path": str(tmp_path / "no" / "app.log")}
    with pytest.raises(pglog.ConfigError):
        pglog.initialize_logger(settings)
    assert logging.getLogger().handlers == installed
    pglog.get_logger("payments").info("still stored")
    pglog.shutdown_logging()
    assert not set(installed) & set(logging.getLogger().handlers)
    assert fetch(db, table, "message") == [("still stored",)]
