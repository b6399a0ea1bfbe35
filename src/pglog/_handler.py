"""Handler: the ``logging.Handler`` that callers meet. It captures, queues, and nothing else.

``emit()`` runs in the caller's thread, so it never does I/O, never raises and never
waits (unless ``overflow="block"`` asks it to). It renders the record's message,
puts a small tuple on the queue and, the first time, starts the writer thread. All
the rest happens in that thread.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from threading import get_ident
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg

from pglog._capture.capture import capture
from pglog._capture.entry import Entry, named
from pglog._options import Options, resolve
from pglog._table.connection import describe, resolve_dsn
from pglog._table.schema import TableName
from pglog._writer import fallback as fallback_module
from pglog._writer.fallback import INTERNAL_LOGGER
from pglog._writer.queue import Outcome, Overflow, RecordQueue
from pglog._writer.sink import PostgresSink
from pglog._writer.spool import Spool
from pglog._writer.writer import WRITER_THREADS, Writer

if TYPE_CHECKING:
    from typing_extensions import Unpack

_live_handlers: weakref.WeakSet[DatabaseLogHandler] = weakref.WeakSet()
_writer_names = iter(range(1, 1 << 62))


class DatabaseLogHandler(logging.Handler):
    """Ships log records to a PostgreSQL table from a background thread.

    Every option is a keyword with a default, so ``logging.config.dictConfig`` and
    the YAML manager can build it. No connection is opened here: the writer thread
    connects when the first record arrives.
    """

    #: Set when the interpreter starts to stop its threads: no writer starts after that.
    interpreter_stopping: ClassVar[bool] = False

    def __init__(self, dsn: str | None = None, **options: Unpack[Options]) -> None:
        settings = resolve({"dsn": dsn, **options})
        super().__init__(settings["level"])
        try:
            self._dsn = resolve_dsn(dsn)
        except psycopg.Error:
            raise ValueError("dsn is not a valid libpq connection string or URI") from None
        self.table = TableName(settings["schema"], settings["table"])
        self.batch_size: int = settings["batch_size"]
        self.flush_interval: float = settings["flush_interval"]
        self.queue_size: int = settings["queue_size"]
        self.overflow: Overflow = settings["overflow"]
        self.create_table: bool = settings["create_table"]
        self.partition: str | None = settings["partition"]
        self.spool_dir: str | None = settings["spool_dir"]
        self.spool_max_bytes: int = settings["spool_max_bytes"]
        self.retention_days: int | None = settings["retention_days"]
        self.close_timeout: float = settings["close_timeout"]
        self.connect_timeout: float = settings["connect_timeout"]
        fallback = settings["fallback"]
        self.hostname = socket.gethostname()
        self._fallback = fallback_module.Fallback(fallback_module.resolve(fallback))
        self._start_lock = threading.Lock()
        self._closed = False
        self._failed_flush_deadline: float | None = None
        self._build()
        _live_handlers.add(self)

    def _build(self) -> None:
        """A fresh queue, connection and (unstarted) writer: at start, and in a forked child."""
        self._queue = RecordQueue(self.queue_size, self.overflow, self.batch_size)
        self._sink = PostgresSink(
            self._dsn,
            self.table,
            create_table=self.create_table,
            connect_timeout=self.connect_timeout,
            partition=self.partition,
        )
        self._spool = None
        if self.spool_dir is not None:
            destination = f"{describe(self._dsn)} {self.table}"
            self._spool = Spool(self.spool_dir, self.spool_max_bytes, destination)
        self._writer = Writer(
            self._queue,
            self._sink,
            self._fallback,
            hostname=self.hostname,
            flush_interval=self.flush_interval,
            name=f"pglog-writer-{next(_writer_names)}",
            spool=self._spool,
            retention_days=self.retention_days,
        )
        self._started = False

    # -- the caller's side -------------------------------------------------------------

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
            thread = entry[4]  # Entry.thread, read before the writer names the slots
            if thread in WRITER_THREADS or (thread is None and get_ident() in WRITER_THREADS):
                return record  # logged by a writer as it works (psycopg, pglog): never loop
            if not self._started:
                self._start()
            if not self._queue.put(entry):
                self._after_close(named(entry))
        except Exception:
            self.handleError(record)
        return record

    #: ``handle`` filters, and then does what ``emit`` must: one call instead of two.
    emit = handle

    def start(self) -> None:
        """Start the writer now rather than at the first record: to replay, right away, a
        spool an earlier run left in ``spool_dir``. Does nothing once started or closed."""
        if not self._started:
            self._start()

    def _start(self) -> None:
        # Critical section
        with self._start_lock:
            if self._started or self._closed:
                return
            if not DatabaseLogHandler.interpreter_stopping:
                try:
                    self._writer.start()
                    self._started = True
                    return
                except RuntimeError:  # "can't create new thread at interpreter shutdown"
                    pass
            # The interpreter is on its way out and no thread may start: records go
            # straight to the fallback, where they are seen before the process ends.
            self._queue.close()

    def _after_close(self, entry: Entry) -> None:
        """A record that arrived after close(): the fallback is the only place left.
        pglog's own words about closing are not records of the application's."""
        name = entry.name
        if name == INTERNAL_LOGGER.name or name.startswith(INTERNAL_LOGGER.name + "."):
            return
        outcome: Outcome = "fallback" if self._fallback.enabled else "dropped"
        self._fallback.hand_over([entry])
        self._queue.count_direct(outcome)

    # -- control -----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Wait until every record emitted before this call is committed or handed on;
        False if ``timeout`` passes first.

        Without a timeout (as ``logging.shutdown()`` calls it) the wait is bounded by
        ``close_timeout`` and ends as soon as the writer finds the database away:
        exit must never hang on a database that is down.
        """
        if not self._started:
            return self._queue.counts()["pending"] == 0
        if timeout is not None:
            return self._queue.flush(time.monotonic() + timeout)
        deadline = time.monotonic() + self.close_timeout
        done = self._queue.flush(deadline, until_backoff=True)
        self._failed_flush_deadline = None if done else deadline
        return done

    def close(self) -> None:
        """Write what the database takes within ``close_timeout``, hand the rest to the
        fallback, stop the writer and close its connection. Safe to call twice."""
        # Critical section
        with self._start_lock:
            closing, self._closed = not self._closed, True
        if not closing:
            return
        try:
            if not self._writer.stop(self._close_deadline()):
                self._fallback.report(
                    logging.WARNING,
                    f"pglog writer for {self.table} did not finish within {self.close_timeout}s;"
                    " records it has not sent go to the fallback",
                )
            self._writer.give_up("pglog handler closed")
            self._writer.report_drops(force=True)
        finally:
            _live_handlers.discard(self)
            super().close()

    def _close_deadline(self) -> float:
        """``close_timeout`` from now; but right after a flush() that waited in vain (as
        ``logging.shutdown()`` calls flush, then close) only what that flush had left:
        exit waits for the database once, not twice."""
        now = time.monotonic()
        deadline = now + self.close_timeout
        previous = self._failed_flush_deadline
        if previous is not None and previous > now - self.close_timeout:
            deadline = min(deadline, max(previous, now))
        return deadline

    def check_database(self) -> str | None:
        """Connect once now, from the calling thread, creating the table if asked.

        For start-up code that wants to know before the first record whether the
        database is there. None when it is; otherwise why not, with no secrets.
        """
        probe = PostgresSink(
            self._dsn,
            self.table,
            create_table=self.create_table,
            connect_timeout=self.connect_timeout,
            partition=self.partition,
        )
        try:
            probe.connect()
        except Exception as exc:
            return probe.describe_error(exc)
        finally:
            probe.discard()
        return None

    def stats(self) -> dict[str, Any]:
        """Counters and gauges; ``enqueued == written + dropped + fallback + pending``."""
        return self._writer.stats()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self.table} at {describe(self._dsn)} ({level})>"

    # -- fork ----------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """Start clean: the parent writes what it had queued; its socket is not ours."""
        self._sink.abandon()
        if self._spool is not None:
            self._spool.abandon()
        self._start_lock = threading.Lock()
        self._build()
        if self._closed:
            self._queue.close()


def _reinit_after_fork() -> None:
    DatabaseLogHandler.interpreter_stopping = False  # a child forked at exit lives on
    WRITER_THREADS.clear()
    for handler in list(_live_handlers):
        handler._after_fork_in_child()


def _flush_before_threads_stop() -> None:
    """Flush every handler when the interpreter starts to stop its threads.

    This runs before ``atexit`` at a normal exit, and, unlike ``atexit``, also at the
    end of a ``multiprocessing`` child, which leaves through ``os._exit`` and would
    otherwise take its daemon writer and queued records with it. Only a flush: the
    handlers stay open for whatever ``atexit`` functions still log, until
    ``logging.shutdown()`` closes them.
    """
    DatabaseLogHandler.interpreter_stopping = True
    for handler in list(_live_handlers):
        with contextlib.suppress(Exception):
            handler.flush()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
# The stdlib's own hook for this moment (concurrent.futures uses it too); it is
# private, so fall back to atexit where it is missing.
getattr(threading, "_register_atexit", atexit.register)(_flush_before_threads_stop)
