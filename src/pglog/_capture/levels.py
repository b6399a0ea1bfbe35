"""Levels: the number of a record's level, from its name, looked up in the writer.

The table has always stored the level's name; schema 3 also stores its number, so
"WARNING and worse" can order levels the standard five don't name (``FATAL`` 60,
``SECURITY`` 35). The caller's thread is not asked for it: the name is enough, because
the writer runs in the process that named the level. ``logging.addLevelName`` puts a
custom level in logging's registry, which is read here live (a level registered late is
found); a number logging has no name for is called ``Level 37`` by logging, and read
back from that; loguru names its own levels (``SUCCESS``, ``TRACE``, and any a program
adds) in its own registry, which is asked when loguru is loaded. A name none of them
knows is stored with no number, and readers order it by its name as before schema 3.
"""

from __future__ import annotations

import logging
import re
import sys

#: logging's registry of names, live: ``addLevelName`` writes into this very dict.
_REGISTRY: dict[str, int] = logging._nameToLevel
_UNNAMED = re.compile(r"Level (\d{1,9})")
#: What loguru said of the names logging doesn't know, bounded like any cache here.
_LOGURU: dict[str, int | None] = {}
_LOGURU_MAX = 1000


def number_of(name: str) -> int | None:
    """The number of the level called ``name`` in this process, or None if unknown."""
    number = _REGISTRY.get(name)
    if number is not None:
        return number
    unnamed = _UNNAMED.fullmatch(name)
    if unnamed is not None:
        return int(unnamed.group(1))
    return _from_loguru(name)


def _from_loguru(name: str) -> int | None:
    if name in _LOGURU:
        return _LOGURU[name]
    loguru = sys.modules.get("loguru")
    if loguru is None:
        return None
    try:
        number = int(loguru.logger.level(name).no)
    except Exception:  # not one of loguru's either (or a loguru that answers otherwise)
        number = None
    if len(_LOGURU) >= _LOGURU_MAX:
        _LOGURU.clear()
    _LOGURU[name] = number
    return number
