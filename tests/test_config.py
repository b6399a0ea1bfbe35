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
    assert conninfo_to_dict(config.destination.dsn or "") == {
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
    assert config.destination.dsn is None


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
    assert config.destination.dsn == "host=db.internal dbname=x"
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


@pytest.mark.parametrize("password", ["0123", "0x1F", "12:30:00", "1e3", "true", "null-ish", "007"])
def test_a_password_is_the_text_written_even_when_it_looks_like_a_number(
    tmp_path: Path, password: str
) -> None:
    """YAML 1.1 would read 0123 as 83 and 12:30:00 as 45000; pglog reads what was typed."""
    config = load_config(write(tmp_path, f"database: {{host: h, password: {password}}}"))
    assert conninfo_to_dict(config.destination.dsn or "")["password"] == password


def test_anchors_aliases_and_deep_nesting_are_refused_at_once(tmp_path: Path) -> None:
    """A "billion laughs" alias bomb and 50,000-deep nesting are ConfigErrors naming the
    file, found before anything is expanded (no MemoryError, no RecursionError)."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    with pytest.raises(ConfigError, match="anchors and aliases") as caught:
        load_config(write(tmp_path, "logging:\n  level: INFO\n" + bomb))
    assert caught.value.source.endswith("pglog.yml")
    with pytest.raises(ConfigError, match="nested more than"):
        load_config(write(tmp_path, "logging: " + "[" * 50_000 + "]" * 50_000))


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 give an error with the file's name and where."""
    path = tmp_path / "latin1.yml"
    path.write_bytes("logging: {level: INFO}\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yml: not UTF-8 text \(byte 0xe9"):
        load_config(path)


@pytest.mark.parametrize("reference", ["${A${B}}", "${1BAD}", "${S", "${U-x}", "x${}"])
def test_a_malformed_reference_is_an_error(
    tmp_path: Path, reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything that starts like ${...} but isn't ${NAME} or ${NAME:-default} is named."""
    monkeypatch.setenv("B", "b")
    with pytest.raises(ConfigError, match="malformed") as caught:
        load_config(write(tmp_path, f"database: {{schema: '{reference}'}}"))
    assert caught.value.key == "database.schema"


@pytest.mark.parametrize(
    ("yaml_text", "key", "problem"),
    [
        ("logging: {database: {close_timeout: .inf}}", "logging.database.close_timeout", "seconds"),
        ("logging: {database: {flush_interval: .nan}}", "logging.database.flush_interval", ""),
        ("logging: {database: {table: " + "t" * 64 + "}}", "logging.database.table", "63 bytes"),
        ("database: {table_prefix: " + "p" * 60 + "}", "database.table_prefix", "63 bytes"),
        ("logging: {file: {max_bytes: 10, when: midnight}}", "logging.file.when", "not both"),
        ("logging: {file: {when: weekly}}", "logging.file.when", "expected one of"),
        ("logging: {file: {backups: -1}}", "logging.file.backups", "at least 0"),
    ],
)
def test_values_that_would_hurt_later_fail_now(
    tmp_path: Path, yaml_text: str, key: str, problem: str
) -> None:
    """An infinite timeout, a name PostgreSQL would cut, a rotation that can't be both:
    each a ConfigError naming file and key at start-up."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, yaml_text))
    assert (caught.value.key, caught.value.source) == (key, str(tmp_path / "pglog.yml"))
    assert problem in caught.value.problem


def test_no_error_shows_a_password(tmp_path: Path) -> None:
    """A syntax error on the password's line, or a password of the wrong type, is reported
    without the password."""
    secret = "s3cr3t-Pa55"
    for text in (
        f"database:\n  password: {secret}: more\n",
        f"database:\n  password: [{secret}]\n",
        f"database:\n  password: '{secret}\n",
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, text))
        assert secret not in str(caught.value)


@pytest.mark.parametrize(
    "yaml_text",
    [
        '"\\e]0;owned\\a%s": 1' % ("k" * 900),
        'logging: {components: {"\\e[2J%s": LOUD}}' % ("n" * 900),
        'logging: {database: {batch_size: "\\e[2J%s"}}' % ("9x" * 5000),
    ],
)
def test_an_error_shows_keys_and_values_cut_short_and_escaped(
    tmp_path: Path, yaml_text: str
) -> None:
    """A key or a value an error names is shown escaped (no ESC reaches a terminal) and
    cut short: a 900-character key makes an error of a line, not of a page."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, yaml_text))
    message = str(caught.value)
    assert "\x1b" not in message
    assert "\\x1b" in message
    assert len(message) < 400


def test_the_readme_lists_every_handler_option_as_the_spec_says() -> None:
    """The README's table of handler options is the one rendered from the options spec."""
    from pglog._options import readme_table

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert readme_table() in readme
