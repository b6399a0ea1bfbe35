"""The YAML: what it means, and every kind of mistake named by file and key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from pglog._config import ConfigError, load_config

EXAMPLE = Path(__file__).parent.parent / "config.example.yml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pglog.yml"
    path.write_text(text)
    return path


def test_the_example_config_reads_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    """config.example.yml: levels, components, batch settings, the DSN and table_prefix."""
    monkeypatch.setenv("PGPASSWORD", "from-env")
    config = load_config(EXAMPLE)
    assert config.level == logging.INFO
    assert config.console.enabled
    assert config.database.batch_size == 500
    assert config.database.flush_interval == 1.0
    assert config.database.retention_days == 365
    assert config.components == {
        "authentication": logging.DEBUG,
        "database": logging.INFO,
        "apikey": logging.INFO,
        "models": logging.WARNING,
    }
    assert config.table == "myapp_logs"
    assert config.schema == "public"
    assert conninfo_to_dict(config.connection.dsn or "") == {
        "host": "localhost",
        "port": "5432",
        "user": "postgres",
        "password": "from-env",
        "dbname": "app",
    }


def test_defaults_when_nothing_is_given() -> None:
    """No config at all: INFO, console on, database on, table logs in public."""
    config = load_config(None)
    assert (config.level, config.table, config.schema) == (logging.INFO, "logs", "public")
    assert config.connection.dsn is None


def test_environment_interpolation_with_defaults_and_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """${VAR} and ${VAR:-default} fill strings; numbers and booleans from the environment count."""
    monkeypatch.setenv("LOG_BATCH", "250")
    monkeypatch.setenv("LOG_CONSOLE", "false")
    path = write(
        tmp_path,
        "logging:\n"
        "  console: {enabled: '${LOG_CONSOLE}'}\n"
        "  database: {batch_size: '${LOG_BATCH}', flush_interval: '${LOG_FLUSH:-0.5}'}\n"
        "database: {dsn: 'host=${PGLOG_HOST:-db.internal} dbname=x', table_prefix: 'cost$${x}'}\n",
    )
    config = load_config(path)
    assert config.database.batch_size == 250
    assert config.database.flush_interval == 0.5
    assert config.console.enabled is False
    assert config.connection.dsn == "host=db.internal dbname=x"
    assert config.table == "cost${x}_logs"


@pytest.mark.parametrize(
    ("yaml_text", "key", "problem"),
    [
        ("logging: {levle: INFO}", "logging.levle", "unknown key (did you mean 'level'?)"),
        (
            "logging: {database: {batch_size: many}}",
            "logging.database.batch_size",
            "expected an integer",
        ),
        ("logging: {database: {batch_size: 0}}", "logging.database.batch_size", "at least 1"),
        (
            "logging: {database: {flush_interval: -1}}",
            "logging.database.flush_interval",
            "greater than 0",
        ),
        (
            "logging: {console: {enabled: maybe}}",
            "logging.console.enabled",
            "expected true or false",
        ),
        ("logging: {level: LOUD}", "logging.level", "not a level name"),
        ("logging: {components: {auth: VERBOSE}}", "logging.components.auth", "not a level name"),
        (
            "logging: {database: {overflow: drop_all}}",
            "logging.database.overflow",
            "expected one of",
        ),
        (
            "database: {password: '${PGLOG_SURELY_UNSET_VAR}'}",
            "database.password",
            "PGLOG_SURELY_UNSET_VAR is not set",
        ),
        ("database: {dsn: x, host: y}", "database.dsn", "either dsn or host"),
        ("database: {port: http}", "database.port", "expected a port number"),
        ("logging: [1, 2]", "logging", "expected a mapping"),
        ("colour: blue", "colour", "unknown key"),
    ],
)
def test_each_mistake_names_the_file_and_the_key(
    tmp_path: Path, yaml_text: str, key: str, problem: str
) -> None:
    """A ConfigError names the file, the key path and the problem."""
    path = write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_unreadable_and_malformed_files_are_named(tmp_path: Path) -> None:
    """A missing file and broken YAML are ConfigErrors naming the file."""
    with pytest.raises(ConfigError, match=r"nowhere\.yml: cannot read the file"):
        load_config(tmp_path / "nowhere.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "logging: {level: [unclosed"))


def test_a_mapping_is_checked_like_a_file() -> None:
    """Mistakes in a dict config are named with <config mapping> as the source."""
    with pytest.raises(ConfigError, match=r"<config mapping>: logging.database.batch_size"):
        load_config({"logging": {"database": {"batch_size": "x"}}})
