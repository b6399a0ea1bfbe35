"""Handler: the ``logging.Handler`` that callers meet. It captures, queues, and nothing else.

``emit()`` runs in the caller's thread, so it never does I/O, never raises and never
waits (unless ``overflow="block"`` asks it to). It captures the record (see
``_capture``), puts it on the queue and, the first time, starts the writer. Everything
else happens in the writer's threads (see ``_writer``).

A closed handler that gets another record opens again, as the standard library's
handlers do (a ``FileHandler`` reopens its file): ``logging.config.dictConfig`` closes
every handler it replaces, yet loggers it leaves alone may still hold them. Only once
the interpreter has begun to exit does a late record go straight to the fallback.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg

from pglog._capture.capture import capture
from pglog._capture.entry import ARGS, EXTRAS, Captured, named
from pglog._options import Options, resolve
from pglog._table.connection import describe, resolve_dsn
from pglog._table.schema import TableName
from pglog._writer import process
from pglog._writer.fallback import Fallback
from pglog._writer.fallback import resolve as resolve_fallback
from pglog._writer.locks import held_here
from pglog._writer.notices import INTERNAL_LOGGER, Notice
from pglog._writer.pipeline import Pipeline
from pglog._writer.process import OWN_THREADS as _OWN_THREADS
from pglog._writer.sink import PostgresSink

_get_ident = threading.get_ident

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: Of close_timeout, the share (at most HAND_ON_MAX seconds) kept for handing on, at close,
#: what the database did not take: to the spool, else the fallback.
HAND_ON_SHARE = 0.2
HAND_ON_MAX = 1.0


class DatabaseLogHandler(logging.Handler):
    """Ships log records to a PostgreSQL table from a background thread.

    Every option is a keyword with a default (see the README's table, or
    ``pglog._options``), so ``logging.config.dictConfig`` and the YAML manager can build
    it. No connection is opened here: the writer connects when the first record arrives.
    """

    #: Notices of pglog's never go through its own handlers (see ``notices``).
    pglog_keeps_its_own_notices_out = True

    def __init__(self, dsn: str | None = None, **options: Unpack[Options]) -> None:
        settings = resolve({"dsn": dsn, **options})
        super().__init__(settings["level"])
        try:
            self._dsn = resolve_dsn(dsn)
        except psycopg.Error:
            raise ValueError("dsn is not a valid libpq connection string or URI") from None
        self._settings = settings
        self.table = TableName(settings["schema"], settings["table"])
        self.close_timeout: float = settings["close_timeout"]
        self.handle_sigterm: bool = settings["handle_sigterm"]
        self.hostname = socket.gethostname()
        self._fallback = Fallback(resolve_fallback(settings["fallback"]))
        #: Decides starting, closing and opening again (reentrant: see ``caller_locks``).
        self._state_lock = threading.RLock()
        self._closed = False
        #: A close() is under way: records that meet it (a caller it released from a full
        #: queue, say) go to the fallback; only after it does a record open the handler.
        self._closing = False
        #: The last close() did not wait (logging's lock was held): its writer finishes in
        #: the background, and the next close() that may wait finishes it (the exit's).
        self._finishing = False
        #: Held by the close() under way, for as long as it runs: a close() in another
        #: thread waits on it for that close to finish (see ``close``).
        self._close_lock = threading.RLock()
        #: The deadline of the close() under way: one that takes it over keeps to it.
        self._close_deadline = 0.0
        self._pipeline = self._build()
        process.register(self)

    def _build(self) -> Pipeline:
        return Pipeline(
            self._settings,
            dsn=self._dsn,
            table=self.table,
            hostname=self.hostname,
            fallback=self._fallback,
        )

    # -- the caller's side --------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter, capture, queue: all of the caller's part, in one call (this runs in every
        logging call), and without the handler lock: the queue has its own."""
        if self.filters:
            accepted: Any = self.filter(record)
            if not accepted:
                return accepted
            if isinstance(accepted, logging.LogRecord):
                record = accepted
        try:
            entry = capture(record)
            thread = entry[4]  # the record's (None when logging.logThreads is off)
            if (thread if thread is not None else _get_ident()) in _OWN_THREADS and not (
                isinstance(record, Notice)  # pglog's own, given to be shown
            ):
                return record  # logged by pglog's own threads (psycopg, pglog): never loop
            pipeline = self._pipeline
            if not pipeline.started:
                pipeline = self._start()
            if entry[ARGS] is not None and type(entry[EXTRAS]) is not str:  # queue.is_light
                accepted = pipeline.queue.put(entry)
            else:
                accepted = pipeline.queue.put_weighed(entry)
            if not accepted:
                self._after_close(entry)
        except Exception:
            self.handleError(record)
        return record

    #: ``handle`` filters, and then does what ``emit`` must: one call instead of two.
    emit = handle

    def start(self) -> None:
        """Start the writer now rather than at the first record: to replay, right away, a
        spool an earlier run left in ``spool_dir``."""
        if not self._pipeline.started:
            self._start()

    def _start(self) -> Pipeline:
        with self._state_lock:  # decides: start the writer, or open again after close
            pipeline = self._pipeline
            if process.stopping():
                pipeline.queue.close()  # no thread may start now: to the fallback
            elif not pipeline.started:
                try:
                    pipeline.start()
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    pipeline.queue.close()
            elif pipeline.queue.closed and not self._closing:
                pipeline.reopen()
                self._closed = self._finishing = False
                process.register(self)
            return pipeline

    def _after_close(self, entry: Captured) -> None:
        """A record that arrived after close(): the handler opens again, unless a close()
        is still under way or the interpreter is on its way out; then the fallback is the
        only place left. pglog's own words about closing are not records of the
        application's."""
        if not (process.stopping() or self._closing):
            pipeline = self._start()
            if pipeline.queue.put_weighed(entry):
                return
        name = entry[2]
        if name == INTERNAL_LOGGER.name or name.startswith(INTERNAL_LOGGER.name + "."):
            return
        queue = self._pipeline.queue
        self._fallback.hand_over([named(entry)])
        queue.count_unqueued("fallback" if self._fallback.enabled else "dropped")

    # -- control ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Wait until every record emitted before this call is committed or handed on;
        False if ``timeout`` passes first.

        Without a timeout (as ``logging.shutdown()`` calls it) the wait is bounded by
        ``close_timeout`` (during exit, by what is left of the exit's) and ends as soon as
        the writer finds the database away: exit must never hang on a database that is
        down. Under logging's module lock (dictConfig) it does not wait at all.
        """
        now = time.monotonic()
        if timeout is not None:
            deadline, until_backoff = now + timeout, False
        elif process.logging_lock_held():  # logging.shutdown() inside dictConfig: see close()
            deadline, until_backoff = now, True
        else:
            # What a close() right after may need to hand the rest on is left to it.
            deadline, until_backoff = self._deadline() - self._reserve, True
        return self._pipeline.flush(deadline, until_backoff=until_backoff)

    def close(self) -> None:
        """Write what the database takes within ``close_timeout``, hand the rest on (to
        the spool, else the fallback), stop the writer and close its connection. Safe to
        call twice; a record after it opens the handler again.

        Called while logging's module lock is held (``dictConfig`` replacing handlers),
        it waits for nothing: the writer finishes in the background, since it may itself
        need that lock; a later close() (the exit's) waits for it.

        A close() that finds another thread's close under way waits for it to finish
        (by that close's deadline, or the exit's if sooner) rather than return with the
        records still being written: the exit, or the SIGTERM hook, ends the process
        right after. The SIGTERM hook interrupts the main thread wherever it is, perhaps
        in its own close(), which then never goes on; the hook lets go of the lock that
        close holds (see ``caller_locks``), and the close that gets it, finding the
        close still under way, takes it over.
        """
        wait = not process.logging_lock_held()
        if held_here(self._close_lock):
            return  # this thread's own close, under way further up the stack
        if not self._close_lock.acquire(timeout=self._wait_for_close() if wait else 0):
            return  # another close is under way, and still is by the deadline
        try:
            with self._state_lock:  # decides: who closes (and who finishes a close left behind)
                # Still closing, with the close lock free: that close was abandoned.
                closing = not self._closed or (wait and (self._finishing or self._closing))
                if closing and not self._closing:
                    self._close_deadline = self._deadline()
                self._closed = True
                self._closing = closing or self._closing
            if closing:
                self._close(wait)
        finally:
            self._close_lock.release()

    def _close(self, wait: bool) -> None:
        """The close itself, by the deadline set when it began (one that takes over an
        abandoned close keeps to that close's time)."""
        try:
            deadline = process.deadline(self._close_deadline)
            self._pipeline.close(deadline, deadline - self._reserve, wait=wait)
        finally:
            with self._state_lock:  # decides: closed, or left finishing
                self._closing, self._finishing = False, not wait
                if wait:
                    process.unregister(self)
                else:
                    process.left_finishing(self)
            super().close()

    def _wait_for_close(self) -> float:
        """Seconds to wait for a close under way: until its deadline (or the exit's), or
        a close_timeout from now if none is (a close may begin meanwhile)."""
        until = self._close_deadline if self._closing else self._deadline()
        return max(0.0, process.deadline(until) - time.monotonic())

    @property
    def caller_locks(self) -> tuple[object, ...]:
        """The locks a caller's thread takes in here: a signal may interrupt the main
        thread holding one, and the SIGTERM hook lets go of them (see ``process``)."""
        return (self._state_lock, self._close_lock, self._pipeline.ledger.lock)

    def _deadline(self) -> float:
        """``close_timeout`` from now, or what is left of the exit's deadline."""
        return process.deadline(time.monotonic() + self.close_timeout)

    @property
    def _reserve(self) -> float:
        """Of ``close_timeout``, the part kept for handing on what could not be written."""
        return min(HAND_ON_MAX, self.close_timeout * HAND_ON_SHARE)

    def check_database(self) -> str | None:
        """Connect once now, from the calling thread, creating the table if asked.

        For start-up code that wants to know before the first record whether the
        database is there. None when it is; otherwise why not, with no secrets.
        """
        settings = self._settings
        probe = PostgresSink.for_handler(self._dsn, self.table, settings)
        try:
            probe.connect()
        except Exception as exc:
            return probe.describe_error(exc)
        finally:
            probe.discard()
        return None

    def stats(self) -> dict[str, Any]:
        """Counters and gauges; ``enqueued == written + dropped + fallback + lost +
        pending``."""
        return self._pipeline.stats()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self.table} at {describe(self._dsn)} ({level})>"

    # -- fork ---------------------------------------------------------------------------------

    def after_fork_in_child(self) -> None:
        """Start clean, as if just built, whatever the parent was doing with this handler
        (closing it, in a thread the child doesn't have): the parent writes what it had
        queued; its sockets are not ours."""
        self._pipeline.abandon()
        self._state_lock, self._close_lock = threading.RLock(), threading.RLock()
        self._closed = self._closing = self._finishing = False
        self._pipeline = self._build()
