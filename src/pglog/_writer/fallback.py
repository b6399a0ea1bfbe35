"""Fallback: where records go that the database can't take.

The fallback is a logging handler (stderr by default): each entry becomes a LogRecord
again and is handed to it. Handing over is bounded by a deadline when closing: a slow
fallback (stderr read slowly through a pipe, a remote handler) must not stretch exit
past ``close_timeout``; what it could not take by then is counted as lost, and said.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from pglog._capture.capture import render
from pglog._capture.entry import RECORD_FIELDS, Entry
from pglog._writer.notices import CONSOLE_FORMAT, last_resort


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


#: A plain record's attributes: what a LogRecord made from an entry starts from.
_PLAIN = vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
_RECORD = logging.LogRecord


def entry_to_record(entry: Entry) -> logging.LogRecord:
    """A LogRecord again, for handlers that only know records. Built without running
    LogRecord's constructor (which would ask for the time, the process, the thread
    again): handing a backlog over at close must be quick."""
    message, _ = render(entry)
    levelno = logging.getLevelName(entry.levelname)
    extras = entry.extras
    attributes = json.loads(extras) if isinstance(extras, str) else dict(extras or {})
    attributes.update(
        _PLAIN,
        **dict(zip(RECORD_FIELDS, entry, strict=False)),
        msg=message,
        args=None,
        levelno=levelno if isinstance(levelno, int) else logging.WARNING,
        msecs=(entry.created - int(entry.created)) * 1000,
        exc_text=entry.exception,
    )
    record: logging.LogRecord = _RECORD.__new__(_RECORD)
    record.__dict__.update(attributes)
    return record


class Fallback:
    """Hands entries to the fallback handler, with stderr as the last resort."""

    def __init__(self, handler: logging.Handler | None) -> None:
        self.handler = handler

    @property
    def enabled(self) -> bool:
        return self.handler is not None

    def hand_over(self, entries: Sequence[Entry], progress: Progress | None = None) -> None:
        """Hand ``entries`` over, oldest first (until ``progress`` says stop, counting
        them there). None is lost silently: a record the handler fails on is written to
        stderr instead."""
        handler = self.handler
        if handler is None:
            return
        for entry in entries:
            if progress is not None and progress.stopped:
                return
            try:
                handler.handle(entry_to_record(entry))
            except Exception as exc:
                last_resort(f"pglog: fallback handler failed ({exc!r}); record: {entry.message}")
            if progress is not None:
                progress.handed += 1

    def hand_over_by(self, entries: Sequence[Entry], deadline: float) -> int:
        """Hand ``entries`` over until ``deadline``; returns how many were handed. The
        handing happens in a thread of its own, so that a handler that blocks (a pipe
        nobody reads) can't hold the caller past the deadline; it stops at the deadline,
        and what it had not handed by then is the caller's to count."""
        if self.handler is None or not entries:
            return 0
        progress = Progress()
        worker = threading.Thread(
            target=self.hand_over, args=(entries, progress), name="pglog-fallback", daemon=True
        )
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        progress.stopped = True
        return progress.handed


class Progress:
    """How far a hand-over has got, and whether it should stop."""

    def __init__(self) -> None:
        self.handed = 0
        self.stopped = False
