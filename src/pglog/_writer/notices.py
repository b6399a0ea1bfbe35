"""Notices: pglog's own reports about itself, said at once and then at a bounded rate.

Trouble is said the first time it happens, with its cause in plain words (see
``retry.cause``), and again at most once a minute while it lasts, so a permanent
misconfiguration is never a single line scrolled away. The rate limit is per kind and
reason: a refused connection doesn't silence a full disk. A notice never quotes a
record's contents (the server's messages are cut to their first line, which never holds
a row), nor a password.

Notices go to the fallback handler when there is one, formatted as its records are; as
``Notice`` records, which a fallback that is itself a pglog handler takes although they
are made in pglog's own threads.
Without one, they go to the ``pglog`` logger if some handler that is not pglog's would
show them there (a console on the root logger, say); else straight to stderr: when
pglog's handler is the only one, what the ``pglog`` logger says would reach only pglog's
handler, which never takes records from its own threads, and the notice would vanish.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time

#: pglog's own logger: the name its notices carry.
INTERNAL_LOGGER = logging.getLogger("pglog")
#: The attribute that marks pglog's own handlers (they never show pglog's notices).
OWN_HANDLER = "pglog_keeps_its_own_notices_out"
#: The same kind of trouble, for the same reason, is said at most this often (seconds).
EVERY = 60.0
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STDERR_FORMAT = logging.Formatter(CONSOLE_FORMAT)


class Notices:
    """Says things about pglog, through ``handler`` (the fallback) or to stderr."""

    def __init__(self, handler: logging.Handler | None) -> None:
        self.handler = handler
        self._last: dict[tuple[str, str], float] = {}

    def say(self, kind: str, reason: str, message: str, *, level: int = logging.WARNING) -> bool:
        """Say ``message`` unless the same ``kind`` and ``reason`` were said within EVERY
        seconds; True if it was said."""
        now = time.monotonic()
        key = (kind, reason)
        last = self._last.get(key)
        if last is not None and now - last < EVERY:
            return False
        self._last[key] = now
        self.always(message, level=level)
        return True

    def forget(self, kind: str) -> None:
        """The trouble of ``kind`` is over: the next of its kind is said at once."""
        for key in [key for key in self._last if key[0] == kind]:
            del self._last[key]

    def always(
        self,
        message: str,
        *,
        level: int = logging.WARNING,
        to_stderr: bool = False,
        by: float | None = None,
    ) -> None:
        """Say ``message`` now, whatever was said before; ``to_stderr`` when the fallback
        itself is the trouble (too slow to take what it was given). With ``by`` (a close
        deadline) the saying happens in a thread of its own, waited for until then: a
        stderr nobody reads must not hold a close() past its deadline."""
        if by is None:
            self._say(message, level, to_stderr)
            return
        speaker = threading.Thread(
            target=self._say, args=(message, level, to_stderr), name="pglog-notice", daemon=True
        )
        speaker.start()
        speaker.join(max(0.0, by - time.monotonic()))

    def _say(self, message: str, level: int, to_stderr: bool) -> None:
        if self.handler is not None and not to_stderr:
            try:
                self.handler.handle(
                    Notice(INTERNAL_LOGGER.name, level, __file__, 0, message, (), None)
                )
                return
            except Exception as exc:
                message = f"{message} (the fallback handler failed: {exc!r})"
        record = INTERNAL_LOGGER.makeRecord(
            INTERNAL_LOGGER.name, level, __file__, 0, message, (), None
        )
        if self.handler is None and not to_stderr and _shown_elsewhere(level):
            INTERNAL_LOGGER.handle(record)
            return
        last_resort(_STDERR_FORMAT.format(record))


class Notice(logging.LogRecord):
    """A notice handed to the fallback handler. It is made in one of pglog's own threads,
    whose records pglog's handlers skip (they would loop), yet it is meant to be shown:
    a fallback that is itself a pglog handler (a second database) takes it."""


def _shown_elsewhere(level: int) -> bool:
    """Would a handler that is not pglog's show a ``pglog`` record at ``level``?"""
    if not INTERNAL_LOGGER.isEnabledFor(level):
        return False
    logger: logging.Logger | None = INTERNAL_LOGGER
    while logger is not None:
        for handler in logger.handlers:
            if not getattr(handler, OWN_HANDLER, False) and level >= handler.level:
                return True
        logger = logger.parent if logger.propagate else None
    return False


def last_resort(line: str) -> None:
    """Write ``line`` to stderr, whatever has become of it."""
    stream = sys.stderr or sys.__stderr__
    if stream is None:
        return
    with contextlib.suppress(Exception):  # stderr itself is gone; nothing is left to tell
        stream.write(line + "\n")
        stream.flush()
