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
