"""Options: the handler's options, written down once.

Each option is one entry of ``Options`` below: its name, its type, and (in the
``Annotated`` metadata) its default, the kind of value it takes and one line of help.
From that one place come the keywords ``DatabaseLogHandler`` accepts (and their types,
for type checkers), the checks its values get (a ``ValueError`` naming the option),
the keys the YAML reads under ``logging.database`` (read from the text the operator
wrote, and checked the same way, the error then naming the file and the key), the
values the manager passes on, and the README's table of options.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict, get_type_hints

from pglog._capture import static
from pglog._table.filters import LEVELS
from pglog._table.layout import ENGINES
from pglog._table.partitions import PERIODS
from pglog._table.schema import MAX_IDENTIFIER_BYTES
from pglog._writer.queue import OVERFLOW_POLICIES


@dataclass(frozen=True)
class Kind:
    """A kind of value: how to check one given in Python, and how to read one from the text
    an operator wrote in the YAML. Both raise OptionError saying what was expected."""

    check: Callable[[object], object]
    read: Callable[[Any], object]
    #: Written in the YAML as a mapping (``read`` gets it, its values as written).
    mapping: bool = False


class OptionError(ValueError):
    """A value an option can't take; the message says what was expected."""


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message shows it: its repr, cut short, with its type."""
    if value is None:
        return "nothing"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{text} ({type(value).__name__})"


def count(minimum: int = 1) -> Kind:
    """A whole number, at least ``minimum``."""

    def check(value: object) -> int:
        if type(value) is not int:
            raise OptionError(f"expected an integer, got {shown(value)}")
        if value < minimum:
            raise OptionError(f"must be at least {minimum}, got {value}")
        return value

    def read(text: str) -> int:
        if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
            raise OptionError(f"expected an integer, got {shown(text)}")
        return check(int(text))

    return Kind(check, read)


def _check_seconds(value: object) -> float:
    if type(value) not in (int, float):
        raise OptionError(f"expected a number of seconds, got {shown(value)}")
    seconds = float(value)  # type: ignore[arg-type]
    if not seconds > 0:
        raise OptionError(f"must be greater than 0, got {shown(value)}")
    if not math.isfinite(seconds):
        raise OptionError(f"must be a finite number of seconds, got {shown(value)}")
    return seconds


def _read_seconds(text: str) -> float:
    if not re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", text):
        raise OptionError(f"expected a number of seconds, got {shown(text)}")
    return _check_seconds(float(text))


SECONDS = Kind(_check_seconds, _read_seconds)

_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _check_boolean(value: object) -> bool:
    if type(value) is not bool:
        raise OptionError(f"expected true or false, got {shown(value)}")
    return value


def _read_boolean(text: str) -> bool:
    word = _WORDS.get(text.strip().lower())
    if word is None:
        raise OptionError(f"expected true or false, got {shown(text)}")
    return word


BOOLEAN = Kind(_check_boolean, _read_boolean)


def choice(*choices: str) -> Kind:
    """One of ``choices``, written as it is."""

    def check(value: object) -> str:
        if value not in choices:
            raise OptionError(f"expected one of {', '.join(choices)}, got {shown(value)}")
        return str(value)

    return Kind(check, check)


def _check_text(value: object) -> str:
    if type(value) is not str or not value:
        raise OptionError(f"expected a non-empty string, got {shown(value)}")
    return value


TEXT = Kind(_check_text, _check_text)


def _check_identifier(value: object) -> str:
    name = _check_text(value)
    if "\x00" in name:
        raise OptionError("must not contain NUL characters")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise OptionError(f"{shown(name)} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes")
    return name


IDENTIFIER = Kind(_check_identifier, _check_identifier)


def _check_path(value: object) -> str:
    return _check_text(os.fspath(value) if isinstance(value, os.PathLike) else value)


PATH = Kind(_check_path, _check_path)


def _check_level(value: object) -> int:
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str):
        number = logging.getLevelName(value.strip().upper())
        if isinstance(number, int):
            return number
    raise OptionError(f"{shown(value)} is not a level name; use one of {', '.join(LEVELS)}")


def _read_level(text: str) -> int:
    return _check_level(int(text) if text.strip().isdigit() else text)


LEVEL = Kind(_check_level, _read_level)


def _check_fallback(value: object) -> object:
    if value == "console" or isinstance(value, logging.Handler):
        return value
    raise OptionError(f'expected "console", None or a logging.Handler, got {shown(value)}')


FALLBACK = Kind(_check_fallback, _check_fallback)


def _check_fields(value: object) -> dict[str, Any]:
    try:
        return static.check(value)
    except ValueError as exc:
        raise OptionError(str(exc)) from None


#: A mapping of field names to plain values (static_fields).
FIELDS = Kind(_check_fields, _check_fields, mapping=True)


@dataclass(frozen=True)
class Option:
    default: object
    kind: Kind
    help: str
    #: None is a value it may take (besides its kind's).
    optional: bool = False
    #: Read from the YAML under ``logging.database`` (else set by the manager, or not at all).
    yaml: bool = True
    #: The default as the README shows it, when its repr would not say it well.
    shown_default: str | None = None
    name: str = field(default="", compare=False)

    def check(self, value: object) -> Any:
        """The value, checked (and normalised: a level name to its number, a path to str)."""
        if value is None and self.optional:
            return None
        return self.kind.check(value)

    def read(self, text: str | None) -> Any:
        """A value from the YAML, as the operator wrote it (None: the YAML's null)."""
        if text is None and self.optional:
            return None
        if text is None:
            raise OptionError("expected a value, got nothing")
        return self.kind.read(text)


class Options(TypedDict, total=False):
    """The options of ``DatabaseLogHandler``, besides ``dsn``."""

    table: Annotated[str, Option("logs", IDENTIFIER, "the table rows go to; always quoted")]
    schema: Annotated[str, Option("public", IDENTIFIER, "the table's schema")]
    batch_size: Annotated[
        int,
        Option(
            500, count(), "rows per `COPY` transaction; the writer wakes early once this many wait"
        ),
    ]
    flush_interval: Annotated[
        float, Option(1.0, SECONDS, "seconds a record may wait for its batch to fill")
    ]
    queue_size: Annotated[
        int, Option(100_000, count(), "records held in memory (queued and in flight)")
    ]
    queue_max_bytes: Annotated[
        int,
        Option(
            64 << 20,
            count(),
            "bytes that records with more than a little text (over 256 characters) may hold"
            " in memory, roughly; past either bound, the overflow policy applies",
            shown_default="64 MiB",
        ),
    ]
    overflow: Annotated[
        str,
        Option(
            "drop_oldest",
            choice(*OVERFLOW_POLICIES),
            'when memory is full: `"drop_oldest"`, `"drop_newest"` (both counted and reported),'
            ' or `"block"` the caller until there is room',
        ),
    ]
    create_table: Annotated[
        bool, Option(True, BOOLEAN, "create the table and its indexes if missing")
    ]
    partition: Annotated[
        str | None,
        Option(
            None,
            choice(*PERIODS),
            '`"day"`, `"week"` or `"month"`: create the table range-partitioned on `timestamp`'
            ' (see "Partitioned tables"); an existing table keeps its layout',
            optional=True,
        ),
    ]
    engine: Annotated[
        str | None,
        Option(
            None,
            choice(*ENGINES),
            '`"citus"`: create the table distributed by `hostname` over a Citus cluster (write'
            ' through the coordinator); `"timescaledb"`: create it a compressed hypertable'
            ' (see "Past one server"); an existing table keeps its layout',
            optional=True,
        ),
    ]
    spool_dir: Annotated[
        str | os.PathLike[str] | None,
        Option(
            None,
            PATH,
            "a directory for the durable spool: when the database is away longer than memory"
            ' lasts, records go to disk and are replayed first when it returns (see "Delivery'
            ' guarantees")',
            optional=True,
        ),
    ]
    spool_max_bytes: Annotated[
        int,
        Option(
            1 << 30,
            count(),
            "the spool's size limit; once reached, the overflow policy applies again",
            shown_default="1 GiB",
        ),
    ]
    retention_days: Annotated[
        int | None,
        Option(
            None,
            count(),
            'delete rows older than this many days, in the background (see "Retention");'
            " on a hypertable, TimescaleDB's retention policy drops their chunks instead",
            optional=True,
        ),
    ]
    fallback: Annotated[
        str | logging.Handler | None,
        Option(
            "console",
            FALLBACK,
            'where records go that the database can\'t take: `"console"` (stderr), `None`,'
            " or any `logging.Handler`",
            optional=True,
            yaml=False,
        ),
    ]
    level: Annotated[
        int | str, Option(logging.NOTSET, LEVEL, "the handler's level", shown_default="`NOTSET`")
    ]
    close_timeout: Annotated[
        float,
        Option(
            5.0,
            SECONDS,
            "seconds that closing (and exit) may take in all, and `flush()` without a timeout",
        ),
    ]
    connect_timeout: Annotated[
        float, Option(5.0, SECONDS, "seconds one connection attempt (or upkeep step) may take")
    ]
    write_timeout: Annotated[
        float,
        Option(
            10.0,
            SECONDS,
            "seconds a batch's `COPY` and `COMMIT` may take before the connection is given up"
            " as stalled (what became of the batch is then looked up)",
        ),
    ]
    handle_sigterm: Annotated[
        bool,
        Option(
            True,
            BOOLEAN,
            "where SIGTERM would end the process without any clean-up (its default action),"
            " write what is pending within `close_timeout` first, then let it end the process",
        ),
    ]
    static_fields: Annotated[
        Mapping[str, str | int | float | bool | None] | None,
        Option(
            None,
            FIELDS,
            "fields every record of the handler carries in `extra_data`, under its own"
            ' (`{"service": "shop", "environment": "prod"}`); made JSON once',
            optional=True,
        ),
    ]


def _check_dsn(value: object) -> str:
    if type(value) is not str:
        raise OptionError(f"expected a string, got a {type(value).__name__}")
    return value


#: ``dsn``, the handler's one positional option (a libpq string or URI; never shown).
DSN = Option(
    None,
    Kind(_check_dsn, _check_dsn),
    "libpq conninfo or `postgresql://` URI",
    optional=True,
    yaml=False,
    shown_default="`$PGLOG_DSN`, then libpq's defaults (`$PGHOST`...)",
)


def _spec() -> dict[str, Option]:
    hints = get_type_hints(Options, include_extras=True)
    spec = {"dsn": DSN}
    for name, hint in hints.items():
        (option,) = (meta for meta in hint.__metadata__ if isinstance(meta, Option))
        object.__setattr__(option, "name", name)
        spec[name] = option
    return spec


#: Every option by name, in the order of ``Options``.
SPEC: Mapping[str, Option] = _spec()
DEFAULTS: Mapping[str, Any] = {name: option.default for name, option in SPEC.items()}


def resolve(given: Mapping[str, object]) -> dict[str, Any]:
    """Every option, from ``given`` (checked) or its default; a ValueError names the first
    option given that doesn't exist or can't take its value (never showing a DSN)."""
    unknown = [name for name in given if name not in SPEC]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r}; options are: {', '.join(SPEC)}")
    resolved = dict(DEFAULTS)
    for name, value in given.items():
        try:
            resolved[name] = SPEC[name].check(value)
        except OptionError as exc:
            raise ValueError(f"{name}: {exc}") from None
    clash = conflict(resolved)
    if clash is not None:
        raise ValueError(f"{clash[0]}: {clash[1]}")
    return resolved


def conflict(values: Mapping[str, object]) -> tuple[str, str] | None:
    """Options that can't go together: (the option to blame, why), or None."""
    if values.get("engine") == "timescaledb" and values.get("partition") is not None:
        return "engine", (
            "a TimescaleDB hypertable makes its own chunks: give either partition or"
            ' engine "timescaledb", not both'
        )
    return None


def readme_table() -> str:
    """The README's table of options, as Markdown."""
    lines = ["| option | default | meaning |", "|---|---|---|"]
    for name, option in SPEC.items():
        default = option.shown_default or _markdown(option.default)
        lines.append(f"| `{name}` | {default} | {option.help} |")
    return "\n".join(lines) + "\n"


def _markdown(value: object) -> str:
    return f'`"{value}"`' if isinstance(value, str) else f"`{value!r}`"
