"""Kinds of option values: how each is checked when given in Python, and read from the
text an operator wrote in the YAML. Both raise OptionError saying what was expected, so
the handler can name the option and the config reader the file and the key.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pglog._capture import static
from pglog._table.filters import LEVELS
from pglog._table.schema import MAX_IDENTIFIER_BYTES
from pglog._text import shown


@dataclass(frozen=True)
class Kind:
    """A kind of value: how to check one given in Python, and how to read one from the text
    an operator wrote in the YAML (a list of texts, for a kind that takes ``many``). Both
    raise OptionError saying what was expected."""

    check: Callable[[object], object]
    read: Callable[[Any], object]
    #: Written in the YAML as a mapping (``read`` gets it, its values as written).
    mapping: bool = False
    #: May be written in the YAML as a list of texts (``read`` gets the list).
    many: bool = False


class OptionError(ValueError):
    """A value an option can't take; the message says what was expected."""


def _number(
    what: str,
    types: tuple[type, ...],
    syntax: str,
    convert: Callable[[Any], Any],
    wrong: Callable[[Any], str | None],
) -> Kind:
    """A number: in Python, a value of ``types``; in the YAML, text matching ``syntax``;
    either way ``convert``-ed, once ``wrong`` (which says what is wrong with it, if
    anything) lets it through. ``what`` is what the errors say was expected."""

    def check(value: object) -> Any:
        if type(value) not in types:
            raise OptionError(f"expected {what}, got {shown(value)}")
        problem = wrong(value)
        if problem is not None:
            raise OptionError(problem)
        return convert(value)

    def read(text: str) -> Any:
        if not re.fullmatch(syntax, text):
            raise OptionError(f"expected {what}, got {shown(text)}")
        return check(convert(text))

    return Kind(check, read)


def count(minimum: int = 1) -> Kind:
    """A whole number, at least ``minimum``."""

    def wrong(value: int) -> str | None:
        return f"must be at least {minimum}, got {value}" if value < minimum else None

    return _number("an integer", (int,), r"\s*[+-]?\d+\s*", int, wrong)


def _wrong_seconds(value: float) -> str | None:
    if not value > 0:
        return f"must be greater than 0, got {shown(value)}"
    if not math.isfinite(value):
        return f"must be a finite number of seconds, got {shown(value)}"
    return None


SECONDS = _number(
    "a number of seconds",
    (int, float),
    r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*",
    float,
    _wrong_seconds,
)

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


def _texts(value: object, each: Callable[[object], str]) -> tuple[str, ...]:
    """A list (or tuple) of texts, each checked by ``each``; a single text is a list of one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise OptionError(f"expected a list of strings, got {shown(value)}")
    return tuple(each(item) for item in value)


def _check_pattern(value: object) -> str:
    pattern = _check_text(value)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise OptionError(f"{shown(pattern)} is not a regular expression ({exc})") from None
    return pattern


def _check_patterns(value: object) -> tuple[str, ...]:
    return _texts(value, _check_pattern)


def _check_names(value: object) -> tuple[str, ...]:
    return _texts(value, _check_text)


#: Regular expressions, as a list.
PATTERNS = Kind(_check_patterns, _check_patterns, many=True)
#: Names (of keys), as a list.
NAMES = Kind(_check_names, _check_names, many=True)


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
