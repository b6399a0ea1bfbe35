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
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict, get_type_hints

from pglog._kinds import (
    BOOLEAN,
    FALLBACK,
    FIELDS,
    IDENTIFIER,
    LEVEL,
    NAMES,
    PATH,
    PATTERNS,
    SECONDS,
    Kind,
    OptionError,
    choice,
    count,
)
from pglog._table.layout import ENGINES
from pglog._table.partitions import PERIODS
from pglog._text import shown
from pglog._writer.queue import OVERFLOW_POLICIES


@dataclass(frozen=True)
class Option:
    """One option, as the handler, the YAML and the README's table each need it; ``name``
    is filled in from its key in ``Options``."""

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
        int,
        Option(
            100_000,
            count(),
            "records held in memory (queued and in flight; with `spool_dir`, briefly more"
            " while the spiller moves records to disk)",
        ),
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
            " as stalled (what became of the batch is then looked up, and the next"
            " transactions carry half as many rows, growing back while they are quick)",
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
    scrub: Annotated[
        bool,
        Option(
            True,
            BOOLEAN,
            "replace secrets with `[scrubbed]` before they are stored: the values of keys"
            " such as `password` or `authorization` in the extras, and secret-shaped text"
            " (`Bearer ...`, JWTs, `password=...`) in extras, messages and tracebacks (see"
            ' "Secrets")',
        ),
    ]
    scrub_patterns: Annotated[
        list[str] | tuple[str, ...],
        Option(
            (),
            PATTERNS,
            "more regular expressions to scrub (any case): a key one matches has its value"
            " scrubbed, and text one matches is scrubbed where it matches",
            shown_default="none",
        ),
    ]
    scrub_keep: Annotated[
        list[str] | tuple[str, ...],
        Option(
            (),
            NAMES,
            "keys whose values are stored as logged, whatever their name (any case)",
            shown_default="none",
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
        shown_name = shown(unknown[0], typed=False)
        raise ValueError(f"unknown option {shown_name}; options are: {', '.join(SPEC)}")
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
