"""Config: the YAML of DESIGN.md, read strictly.

Every mistake is an error at start-up that names the file and the key: an unknown
key (with the nearest known one suggested), a wrong type, a bad level name, an
unset ``${VAR}``. A typo must never turn into a silent default.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from psycopg.conninfo import make_conninfo

from pglog._writer.queue import OVERFLOW_POLICIES

DEFAULT_CONSOLE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class ConfigError(ValueError):
    """A configuration mistake: where (file and key) and what."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class ConsoleSettings:
    enabled: bool = True
    format: str = DEFAULT_CONSOLE_FORMAT
    level: int | None = None


@dataclass(frozen=True)
class DatabaseSettings:
    """``logging.database``: whether and how records go to the table."""

    enabled: bool = True
    retention_days: int | None = None
    batch_size: int = 500
    flush_interval: float = 1.0
    queue_size: int = 100_000
    overflow: str = "drop_oldest"
    create_table: bool = True
    close_timeout: float = 5.0
    connect_timeout: float = 5.0
    level: int | None = None
    table: str | None = None
    schema: str | None = None
    spool_dir: str | None = None
    spool_max_bytes: int = 1 << 30
    partition: str | None = None


@dataclass(frozen=True)
class Connection:
    """The top-level ``database`` section: where the table lives."""

    dsn: str | None = None
    table_prefix: str | None = None
    schema: str | None = None


@dataclass(frozen=True)
class Config:
    source: str
    level: int = logging.INFO
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    components: Mapping[str, int] = field(default_factory=dict)
    connection: Connection = field(default_factory=Connection)

    @property
    def table(self) -> str:
        if self.database.table:
            return self.database.table
        if self.connection.table_prefix:
            return f"{self.connection.table_prefix}_logs"
        return "logs"

    @property
    def schema(self) -> str:
        return self.database.schema or self.connection.schema or "public"


def load_config(config: Mapping[str, Any] | str | os.PathLike[str] | None) -> Config:
    """Read and check a config from a mapping or a YAML file; None means the defaults."""
    if config is None:
        return Config(source="<defaults>")
    if isinstance(config, Mapping):
        return _parse(config, "<config mapping>")
    path = Path(config)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", "the top level must be a mapping")
    return _parse(data, source)


# -- parsing -------------------------------------------------------------------------------


class _Reader:
    """Checks values against their expected kinds, naming ``source`` and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    def section(self, data: object, key: str, known: tuple[str, ...]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise self.fail(key, f"expected a mapping, got {_kind(data)}")
        for name in data:
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(
                    f"{key}.{name}" if key else str(name),
                    f"unknown key{hint}; known keys: {', '.join(known)}",
                )
        return {
            str(k): self.interpolate(v, f"{key}.{k}" if key else str(k)) for k, v in data.items()
        }

    def interpolate(self, value: object, key: str) -> object:
        """Replace ``${VAR}`` and ``${VAR:-default}`` in strings; ``$${`` is a literal ``${``."""
        if not isinstance(value, str) or "${" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(3)
            found = os.environ.get(name)
            if found is not None:
                return found
            if default is not None:
                return default
            raise self.fail(key, f"environment variable {name} is not set")

        return _Interpolated(_VARIABLE.sub(substitute, value))

    def boolean(self, value: object, key: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, _Interpolated) and value.lower() in _BOOLEANS:
            return _BOOLEANS[value.lower()]
        raise self.fail(key, f"expected true or false, got {_shown(value)}")

    def integer(self, value: object, key: str, minimum: int = 1) -> int:
        if isinstance(value, _Interpolated) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if type(value) is not int:
            raise self.fail(key, f"expected an integer, got {_shown(value)}")
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, value: object, key: str) -> float:
        if isinstance(value, _Interpolated):
            with contextlib.suppress(ValueError):
                value = float(value)
        if type(value) not in (int, float):
            raise self.fail(key, f"expected a number, got {_shown(value)}")
        if not value > 0:  # type: ignore[operator]
            raise self.fail(key, f"must be greater than 0, got {value}")
        return float(value)  # type: ignore[arg-type]

    def text(self, value: object, key: str) -> str:
        if type(value) is int and not isinstance(value, bool):
            return str(value)  # a port, a numeric password: YAML reads them as numbers
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {_shown(value)}")
        return str(value)

    def level(self, value: object, key: str) -> int:
        if isinstance(value, str):
            number = logging.getLevelName(value.strip().upper())
            if isinstance(number, int):
                return number
        elif type(value) is int and value >= 0:
            return value
        names = ", ".join(_LEVEL_NAMES)
        raise self.fail(key, f"{_shown(value)} is not a level name; use one of {names}")

    def choice(self, value: object, key: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {_shown(value)}")
        return str(value)


class _Interpolated(str):
    """A string that came from the environment: numbers and booleans in it are accepted."""


_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLEANS.update({"false": False, "no": False, "off": False, "0": False})
_LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_TOP = ("logging", "database")
_LOGGING = ("level", "console", "database", "components")
_CONSOLE = ("enabled", "format", "level")
_DATABASE_SETTINGS = (
    "enabled",
    "retention_days",
    "batch_size",
    "flush_interval",
    "queue_size",
    "overflow",
    "create_table",
    "close_timeout",
    "connect_timeout",
    "level",
    "table",
    "schema",
    "spool_dir",
    "spool_max_bytes",
    "partition",
)
_CONNECTION = (
    "dsn",
    "host",
    "port",
    "username",
    "password",
    "database",
    "table_prefix",
    "schema",
    "sslmode",
)


def _parse(data: Mapping[str, Any], source: str) -> Config:
    read = _Reader(source)
    top = read.section(data, "", _TOP)
    logging_section = read.section(top.get("logging"), "logging", _LOGGING)
    console = read.section(logging_section.get("console"), "logging.console", _CONSOLE)
    database = read.section(logging_section.get("database"), "logging.database", _DATABASE_SETTINGS)
    connection = read.section(top.get("database"), "database", _CONNECTION)

    checks: dict[str, Callable[[object, str], object]] = {
        "enabled": read.boolean,
        "create_table": read.boolean,
        "retention_days": read.integer,
        "batch_size": read.integer,
        "queue_size": read.integer,
        "flush_interval": read.number,
        "close_timeout": read.number,
        "connect_timeout": read.number,
        "level": read.level,
        "format": read.text,
        "table": read.text,
        "schema": read.text,
        "spool_dir": read.text,
        "spool_max_bytes": read.integer,
        "overflow": lambda v, k: read.choice(v, k, OVERFLOW_POLICIES),
        "partition": lambda v, k: read.choice(v, k, ("day", "week", "month")),
    }

    def checked(section: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {name: checks[name](value, f"{prefix}.{name}") for name, value in section.items()}

    components_raw = logging_section.get("components") or {}
    if not isinstance(components_raw, Mapping):
        raise read.fail("logging.components", f"expected a mapping, got {_kind(components_raw)}")
    components = {
        str(name): read.level(level, f"logging.components.{name}")
        for name, level in components_raw.items()
    }
    return Config(
        source=source,
        level=read.level(logging_section.get("level", "INFO"), "logging.level"),
        console=ConsoleSettings(**checked(console, "logging.console")),
        database=DatabaseSettings(**checked(database, "logging.database")),
        components=components,
        connection=_connection(read, connection),
    )


def _connection(read: _Reader, section: dict[str, Any]) -> Connection:
    values = {name: read.text(value, f"database.{name}") for name, value in section.items()}
    keys = ("host", "port", "username", "password", "database", "sslmode")
    parts = {k: values[k] for k in keys if k in values}
    if "dsn" in values and any(k in values for k in parts):
        given = ", ".join(sorted(k for k in parts if k in values))
        raise read.fail("database.dsn", f"give either dsn or {given}, not both")
    dsn = values.get("dsn")
    if dsn is None and parts:
        if "port" in parts and not parts["port"].isdigit():
            raise read.fail("database.port", f"expected a port number, got {parts['port']!r}")
        dsn = make_conninfo(
            "",
            host=parts.get("host"),
            port=parts.get("port"),
            user=parts.get("username"),
            password=parts.get("password"),
            dbname=parts.get("database"),
            sslmode=parts.get("sslmode"),
        )
    return Connection(dsn=dsn, table_prefix=values.get("table_prefix"), schema=values.get("schema"))


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _shown(value: object) -> str:
    return "nothing" if value is None else f"{value!r} ({type(value).__name__})"
