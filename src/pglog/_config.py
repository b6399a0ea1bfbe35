"""Config: the YAML (`logging:` levels, console, file and database), checked strictly.

Every mistake is an error at start-up that names the file and the key: an unknown key
(with the nearest known one suggested), a value its key can't take, a bad level name,
an unset or malformed ``${VAR}``. A typo must never turn into a silent default.

Values come as the text they were written as (``_yaml`` reads the file, and refuses
what could hurt), and are only then read as what their key takes. An error never
shows a secret's value nor more than a few dozen characters of any value.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from pglog._kinds import BOOLEAN, LEVEL, TEXT, Kind, OptionError, choice, count
from pglog._options import DEFAULTS, SPEC, conflict
from pglog._text import SECRET_KEYS, shown
from pglog._yaml import Unreadable, as_written, read_yaml

DEFAULT_CONSOLE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
#: ``when`` values of ``logging.handlers.TimedRotatingFileHandler``.
ROTATE_WHEN = ("S", "M", "H", "D", "midnight", *(f"W{day}" for day in range(7)))


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
class FileSettings:
    """``logging.file``: a rotating log file, by size (``max_bytes``) or time (``when``)."""

    enabled: bool = False
    path: str = "logs/app.log"
    max_bytes: int | None = None
    when: str | None = None
    backups: int = 5
    format: str = DEFAULT_CONSOLE_FORMAT
    level: int | None = None


@dataclass(frozen=True)
class DatabaseSettings:
    """``logging.database``: whether records go to the table, and the handler options set
    there (see ``pglog._options``); an option not set has its default."""

    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name in DEFAULTS:
            return self.options.get(name, DEFAULTS[name])
        raise AttributeError(name)


@dataclass(frozen=True)
class Destination:
    """The top-level ``database`` section: where the table lives."""

    dsn: str | None = None
    table_prefix: str | None = None
    schema: str | None = None


@dataclass(frozen=True)
class Config:
    source: str
    level: int = logging.INFO
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    file: FileSettings = field(default_factory=FileSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    components: Mapping[str, int] = field(default_factory=dict)
    destination: Destination = field(default_factory=Destination)

    @property
    def table(self) -> str:
        if "table" in self.database.options:
            return str(self.database.options["table"])
        if self.destination.table_prefix:
            return f"{self.destination.table_prefix}_logs"
        return str(DEFAULTS["table"])

    @property
    def schema(self) -> str:
        if "schema" in self.database.options:
            return str(self.database.options["schema"])
        return self.destination.schema or str(DEFAULTS["schema"])


def load_config(config: Mapping[str, Any] | str | os.PathLike[str] | None) -> Config:
    """Read and check a config from a mapping or a YAML file; None means the defaults."""
    if config is None:
        return Config(source="<defaults>")
    if isinstance(config, Mapping):
        return _parse(as_written(config), "<config mapping>")
    path = Path(config)
    try:
        data = read_yaml(path)
    except Unreadable as exc:
        raise ConfigError(str(path), "", str(exc)) from None
    return _parse(data, str(path))


# -- reading ---------------------------------------------------------------------------------


class _Reader:
    """Reads sections and values, naming ``source`` and the key path in every error."""

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
                hint = f" (did you mean {shown(close[0], typed=False)}?)" if close else ""
                raise self.fail(
                    _path(key, name), f"unknown key{hint}; known keys: {', '.join(known)}"
                )
        return {str(k): self.interpolate(v, _path(key, k)) for k, v in data.items()}

    def interpolate(self, value: object, key: str) -> object:
        """``${VAR}`` and ``${VAR:-default}`` from the environment; ``$${`` is a literal
        ``${``; any other ``${`` is a mistake."""
        if isinstance(value, Mapping | list):
            return value  # a section of its own, or a list: read by whoever reads it
        if not isinstance(value, str) or "${" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group("name"), match.group("default")
            if name is None:
                raise self.fail(
                    key, "a malformed ${...}: write ${NAME} or ${NAME:-default}, $${ for ${"
                )
            found = os.environ.get(name)
            if found is not None:
                return found
            if default is not None:
                return default
            raise self.fail(key, f"environment variable {name} is not set")

        return _REFERENCE.sub(substitute, value)

    def value(self, kind: Kind, value: object, key: str, *, optional: bool = False) -> Any:
        """``value`` as ``kind`` reads it; a secret's value is never shown."""
        if value is None and optional:
            return None
        try:
            if value is None:
                raise OptionError("expected a value, got nothing")
            if kind.mapping:
                if not isinstance(value, Mapping):
                    raise OptionError(f"expected a mapping, got {_kind(value)}")
                return kind.read(
                    {name: self.interpolate(item, _path(key, name)) for name, item in value.items()}
                )
            if kind.many and isinstance(value, list):
                items = [self.interpolate(item, f"{key}[{i}]") for i, item in enumerate(value)]
                if not all(isinstance(item, str) for item in items):
                    raise OptionError("expected a list of single values")
                return kind.read(items)
            if not isinstance(value, str):
                raise OptionError(f"expected a single value, got {_kind(value)}")
            return kind.read(value)
        except OptionError as exc:
            problem = str(exc)
            if key.rsplit(".", 1)[-1] in SECRET_KEYS:
                problem = f"not a usable value ({shown(value, key=key)})"
            raise self.fail(key, problem) from None


#: ``$${``, a well-formed ``${NAME}`` or ``${NAME:-default}``, or any other ``${``.
_REFERENCE = re.compile(
    r"\$\$\{|\$\{(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^${}]*))?\})?"
)

_TOP = ("logging", "database")
_LOGGING = ("level", "console", "file", "database", "components")
_CONSOLE = {"enabled": BOOLEAN, "format": TEXT, "level": LEVEL}
_FILE = {
    "enabled": BOOLEAN,
    "path": TEXT,
    "max_bytes": count(),
    "when": choice(*ROTATE_WHEN),
    "backups": count(0),
    "format": TEXT,
    "level": LEVEL,
}
_DATABASE = ("enabled", *(name for name, option in SPEC.items() if option.yaml))
_DESTINATION = (
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


def _parse(data: object, source: str) -> Config:
    read = _Reader(source)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", "the top level must be a mapping")
    top = read.section(data, "", _TOP)
    section = read.section(top.get("logging"), "logging", _LOGGING)
    return Config(
        source=source,
        level=read.value(LEVEL, section.get("level", "INFO"), "logging.level"),
        console=_console(read, section.get("console")),
        file=_file(read, section.get("file")),
        database=_database(read, section.get("database")),
        components=_components(read, section.get("components")),
        destination=_destination(read, top.get("database")),
    )


def _checked(
    read: _Reader, values: dict[str, Any], kinds: Mapping[str, Kind], key: str
) -> dict[str, Any]:
    return {
        name: read.value(kinds[name], value, _path(key, name)) for name, value in values.items()
    }


def _console(read: _Reader, data: object) -> ConsoleSettings:
    values = read.section(data, "logging.console", tuple(_CONSOLE))
    return ConsoleSettings(**_checked(read, values, _CONSOLE, "logging.console"))


def _file(read: _Reader, data: object) -> FileSettings:
    values = read.section(data, "logging.file", tuple(_FILE))
    settings = FileSettings(**_checked(read, values, _FILE, "logging.file"))
    if settings.max_bytes is not None and settings.when is not None:
        raise read.fail("logging.file.when", "give either max_bytes or when, not both")
    return settings


def _database(read: _Reader, data: object) -> DatabaseSettings:
    values = read.section(data, "logging.database", _DATABASE)
    key = "logging.database"
    enabled = True
    if "enabled" in values:
        enabled = read.value(BOOLEAN, values.pop("enabled"), f"{key}.enabled")
    options = {
        name: read.value(SPEC[name].kind, value, _path(key, name), optional=SPEC[name].optional)
        for name, value in values.items()
    }
    clash = conflict(options)
    if clash is not None:
        raise read.fail(f"{key}.{clash[0]}", clash[1])
    return DatabaseSettings(enabled=enabled, options=options)


def _components(read: _Reader, data: object) -> dict[str, int]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise read.fail("logging.components", f"expected a mapping, got {_kind(data)}")
    return {
        str(name): read.value(
            LEVEL,
            read.interpolate(level, _path("logging.components", name)),
            _path("logging.components", name),
        )
        for name, level in data.items()
    }


def _destination(read: _Reader, data: object) -> Destination:
    section = read.section(data, "database", _DESTINATION)
    values = {name: read.value(TEXT, value, f"database.{name}") for name, value in section.items()}
    parts = {
        k: values[k]
        for k in ("host", "port", "username", "password", "database", "sslmode")
        if k in values
    }
    if "dsn" in values and parts:
        given = ", ".join(sorted(parts))
        raise read.fail("database.dsn", f"give either dsn or {given}, not both")
    if "port" in parts and not parts["port"].isdigit():
        raise read.fail("database.port", f"expected a port number, got {shown(parts['port'])}")
    for name in ("table_prefix", "schema"):
        if name in values:
            try:
                SPEC["table"].check(
                    values[name] + "_logs" if name == "table_prefix" else values[name]
                )
            except OptionError as exc:
                raise read.fail(f"database.{name}", str(exc)) from None
    dsn = values.get("dsn")
    if dsn is None and parts:
        dsn = make_conninfo(
            "",
            host=parts.get("host"),
            port=parts.get("port"),
            user=parts.get("username"),
            password=parts.get("password"),
            dbname=parts.get("database"),
            sslmode=parts.get("sslmode"),
        )
    return Destination(
        dsn=dsn, table_prefix=values.get("table_prefix"), schema=values.get("schema")
    )


def _path(key: str, name: object) -> str:
    """The key path to ``name``, as an error shows it: a name too long or with characters a
    terminal would act on is shown escaped and cut short."""
    text = str(name)
    if len(text) > 60 or not text.isprintable():
        text = shown(text, typed=False)
    return f"{key}.{text}" if key else text


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
