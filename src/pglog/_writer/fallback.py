"""Fallback: where records go when the database can't take them, and where pglog reports trouble."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from pglog._capture.capture import render
from pglog._capture.entry import RECORD_FIELDS, Captured, Entry, named

#: pglog's own diagnostics. Records logged by a writer thread are never queued by a
#: pglog handler, so whatever this logger says can't feed back into the database.
INTERNAL_LOGGER = logging.getLogger("pglog")

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, so redirection after start-up works."""

    def __init__(self, level: int = logging.NOTSET, fmt: str = CONSOLE_FORMAT) -> None:
        logging.Handler.__init__(self, level)
        self.setFormatter(logging.Formatter(fmt))

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr


def resolve(target: object) -> logging.Handler | None:
    """The fallback handler for the ``fallback`` option: "console", None or a Handler."""
    if target == "console":
        return StderrHandler()
    if target is None or isinstance(target, logging.Handler):
        return target
    raise ValueError(f'fallback must be "console", None or a logging.Handler, got {target!r}')


def entry_to_record(entry: Entry) -> logging.LogRecord:
    """A LogRecord again, for handlers that only know records."""
    message, _ = render(entry)
    levelno = logging.getLevelName(entry.levelname)
    extras = entry.extras
    attributes = json.loads(extras) if isinstance(extras, str) else dict(extras or {})
    attributes.update(
        dict(zip(RECORD_FIELDS, entry[: len(RECORD_FIELDS)], strict=True)),
        msg=message,
        args=None,
        levelno=levelno if isinstance(levelno, int) else logging.WARNING,
        msecs=(entry.created - int(entry.created)) * 1000,
        exc_text=entry.exception,
    )
    return logging.makeLogRecord(attributes)


class Fallback:
    """Hands entries to the fallback handler, with stderr as the last resort."""

    def __init__(self, handler: logging.Handler | None) -> None:
        self.handler = handler

    @property
    def enabled(self) -> bool:
        return self.handler is not None

    def hand_over(self, entries: Iterable[Captured]) -> None:
        handler = self.handler
        if handler is None:
            return
        for entry in entries:
            try:
                handler.handle(entry_to_record(named(entry)))
            except Exception as exc:
                _last_resort(f"pglog: fallback handler failed ({exc!r}); record: {entry[11]}")

    def report(self, level: int, message: str) -> None:
        """Say something about pglog itself: through the fallback, else the ``pglog`` logger."""
        if self.handler is None:
            INTERNAL_LOGGER.log(level, message)
            return
        record = INTERNAL_LOGGER.makeRecord(
            INTERNAL_LOGGER.name, level, __file__, 0, message, (), None
        )
        try:
            self.handler.handle(record)
        except Exception as exc:
            _last_resort(f"pglog: fallback handler failed ({exc!r}): {message}")


def _last_resort(line: str) -> None:
    stream = sys.stderr or sys.__stderr__
    if stream is None:
        return
    with contextlib.suppress(Exception):  # stderr itself is gone; nothing is left to tell
        stream.write(line + "\n")
