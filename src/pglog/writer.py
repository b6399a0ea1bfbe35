"""Writer: the one background thread of a handler, moving batches from the queue into the table.

The loop takes a batch (``batch_size`` entries, or whatever is there after
``flush_interval``), turns it into rows and hands it to the sink. What happens on
failure depends on what failed (see ``retry.classify``): the batch stays in flight
and is retried after a back-off while the database is away; a vanished table is
created again; a row the server refuses is found and dealt with alone, so it never
sinks its batch-mates; a batch that can never be written goes to the fallback.
Nothing here raises out of the thread: it survives its own errors and says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Sequence

from pglog.fallback import Fallback
from pglog.queue import Outcome, RecordQueue
from pglog.record import Entry
from pglog.retry import Backoff, Disposition, classify
from pglog.row import Row, escaped_row, to_row
from pglog.sink import CommitUnknown, PostgresSink

#: Idents of every live writer thread. A record logged by one of them (psycopg's
#: debug output, pglog's own warnings) is never queued by a pglog handler.
WRITER_THREADS: set[int] = set()

#: Drops are reported at most this often (seconds), with the count since the last report.
DROP_REPORT_INTERVAL = 5.0
#: The same kind of error is reported at most this often (seconds).
ERROR_REPORT_INTERVAL = 60.0

_COPY_LINE = re.compile(r"\bline (\d+)\b")


class _Abandoned(Exception):
    """close() took the batch in flight while the writer was away from it."""


class Writer:
    """Runs the batching loop in a named daemon thread."""

    def __init__(
        self,
        queue: RecordQueue,
        sink: PostgresSink,
        fallback: Fallback,
        *,
        hostname: str,
        flush_interval: float,
        name: str,
        backoff: Backoff | None = None,
    ) -> None:
        self._queue = queue
        self._sink = sink
        self._fallback = fallback
        self._hostname = hostname
        self._flush_interval = flush_interval
        self._backoff = backoff or Backoff()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._rows: list[Row] = []
        self._deadline: float | None = None
        self._last_drop_report = 0.0
        self._last_error_report: dict[str, float] = {}
        self.retries = 0
        self.failed_batches = 0
        self.batches = 0
        self.last_error: str | None = None
        self.last_write: dt.datetime | None = None

    # -- lifecycle (called from other threads) -------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, deadline: float) -> bool:
        """Close the queue and let the loop write what it can by ``deadline``; True if it ended."""
        self._deadline = deadline
        self._queue.close()
        if self._thread.ident is None:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        ident = threading.get_ident()
        WRITER_THREADS.add(ident)
        try:
            while not self._queue.closed:
                self.report_drops()
                self._queue.wait_for_batch(self._flush_interval)
                self._work()
            self._finish()
        except BaseException as exc:  # the last line of defence: say it, keep nothing back
            self._report(
                "crash", f"pglog writer stopped by {exc!r}; pending records go to the fallback"
            )
            self._give_up("writer crashed")
        finally:
            self._sink.discard()
            WRITER_THREADS.discard(ident)

    def _work(self) -> None:
        """Write batches while there are full ones (or any, when asked to flush)."""
        while True:
            batch = self._queue.take(self._queue.batch_size)
            if not batch:
                return
            self._deliver(batch)
            if self._queue.closed or not self._more_waiting():
                return

    def _more_waiting(self) -> bool:
        counts = self._queue.counts()
        return (
            counts["in_flight"] > 0
            or counts["queue_depth"] >= self._queue.batch_size
            or (self._queue.urgent and counts["queue_depth"] > 0)
        )

    def _finish(self) -> None:
        """The queue is closed: write what is left while the database takes it, by the deadline."""
        while not self._past_deadline():
            batch = self._queue.take(self._queue.batch_size)
            if not batch:
                break
            if not self._deliver(batch):
                break
        self._give_up("pglog handler closed")
        self.report_drops(force=True)

    def _give_up(self, reason: str) -> None:
        outcome: Outcome = "fallback" if self._fallback.enabled else "dropped"
        rest = self._queue.drain(outcome)
        if rest:
            self._fallback.hand_over(rest)
            self._report(
                "give-up",
                f"{reason}: {len(rest)} records could not be written to {self._sink.table}"
                + (" and went to the fallback" if self._fallback.enabled else " and were dropped"),
            )

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    # -- one batch -------------------------------------------------------------------

    def _deliver(self, batch: Sequence[Entry]) -> bool:
        """Write the batch in flight, retrying as its errors call for. False when closing
        made the writer give up on it (it is then still in flight, for _give_up)."""
        self._rows = [self._to_row(entry) for entry in batch]
        stale_retried = False
        while self._rows:
            had_connection = self._sink.connected
            try:
                self._write_isolating(self._rows)
                continue
            except _Abandoned:
                self._rows = []
                return False
            except CommitUnknown as lost:
                self._note_failure(lost.cause)
                if not self._resolve(lost):
                    return False
                continue
            except Exception as exc:
                self._note_failure(exc)
                error, disposition = exc, classify(exc)
            if disposition is Disposition.RECREATE:
                if self._sink.create_table and self._recreate():
                    continue
                disposition = Disposition.REJECT
            if disposition is Disposition.REJECT:
                self._reject(error)
                return True
            # Disposition.RETRY: ISOLATE is handled inside _write_isolating.
            self.retries += 1
            if had_connection and not stale_retried:
                stale_retried = True  # an idle connection had gone stale: reconnect at once
                continue
            if self._queue.closed or self._past_deadline():
                return False
            self._queue.pause(self._backoff.next_delay())
        self._backoff.reset()
        return True

    def _write_isolating(self, rows: list[Row]) -> None:
        """Write ``rows``; if the server refuses a row, write the others and deal with it alone."""
        try:
            self._attempt(rows)
        except Exception as exc:
            if classify(exc) is not Disposition.ISOLATE:
                raise
            self._note_failure(exc)
            if len(rows) == 1:
                self._quarantine(rows[0], exc)
                return
            bad = _failing_line(exc, len(rows))
            if bad is None:
                middle = len(rows) // 2
                parts = [rows[:middle], rows[middle:]]
            else:
                parts = [rows[:bad], rows[bad : bad + 1], rows[bad + 1 :]]
            for part in parts:
                if part:
                    self._write_isolating(part)
            return
        self._settle(len(rows), "written")

    def _attempt(self, rows: Sequence[Row]) -> None:
        self._sink.connect()  # may take connect_timeout; until sending, close() may take the batch
        if not self._queue.begin_send():
            raise _Abandoned
        try:
            self._sink.write(rows)
        finally:
            self._queue.end_send()
        self.batches += 1
        self.last_write = dt.datetime.now(dt.timezone.utc)

    def _settle(self, count: int, outcome: Outcome) -> None:
        self._queue.settle(count, outcome)
        del self._rows[:count]

    def _quarantine(self, row: Row, error: BaseException) -> None:
        """A row the server refused even alone: store an escaped copy saying why, else fall back."""
        reason = self._sink.describe_error(error)
        try:
            self._attempt([escaped_row(row, reason)])
        except Exception as exc:
            if classify(exc) is not Disposition.ISOLATE:
                raise
            self._hand_to_fallback(1, f"row refused by the server ({reason})")
            return
        self._settle(1, "written")
        self._report(
            "quarantine", f"pglog stored a row the server refused in escaped form: {reason}"
        )

    def _reject(self, error: BaseException) -> None:
        self._hand_to_fallback(
            len(self._rows),
            f"batch can't be written to {self._sink.table}: {self._sink.describe_error(error)}",
        )

    def _hand_to_fallback(self, count: int, reason: str) -> None:
        outcome: Outcome = "fallback" if self._fallback.enabled else "dropped"
        in_flight = self._queue.in_flight()[:count]
        self._settle(count, outcome)
        self._fallback.hand_over(in_flight)
        self._report(
            reason.split(":", maxsplit=1)[0], f"pglog: {reason}; {count} records to the {outcome}"
        )

    def _recreate(self) -> bool:
        try:
            self._sink.recreate_table()
        except Exception as exc:
            self._note_failure(exc)
            return False
        self._report("recreated", f"pglog created {self._sink.table} again (it had vanished)")
        return True

    def _resolve(self, lost: CommitUnknown) -> bool:
        """Settle a batch whose COMMIT may not have happened; False if closing cut it short."""
        while True:
            try:
                status = self._sink.status(lost)
            except Exception as exc:
                self._note_failure(exc)
                if self._queue.closed or self._past_deadline():
                    return False
                self._queue.pause(self._backoff.next_delay())
                continue
            if status == "committed":
                self._settle(len(self._rows), "written")
                self._backoff.reset()
                return True
            if status == "in progress":
                self._queue.pause(self._backoff.next_delay())
                continue
            if status == "unknown":
                self._report(
                    "unknown-commit",
                    f"pglog could not learn whether transaction {lost.xid} committed; "
                    "writing its batch again (it may now be stored twice)",
                )
            return True  # aborted (or unknown): write it again

    def _to_row(self, entry: Entry) -> Row:
        try:
            return to_row(entry, self._hostname)
        except Exception as exc:  # to_row is written not to raise; if it does, keep the record
            self._report("row", f"pglog could not convert a record ({exc!r}); stored it escaped")
            safe: Entry = (*entry[:6], ascii(entry[6]), None, *entry[8:13], None)
            return to_row(safe, self._hostname)

    # -- reporting ---------------------------------------------------------------------

    def _note_failure(self, error: BaseException) -> None:
        self.failed_batches += 1
        self.last_error = self._sink.describe_error(error)

    def report_drops(self, force: bool = False) -> None:
        """Tell the fallback how many records overflow dropped since the last report."""
        now = time.monotonic()
        if not force and now - self._last_drop_report < DROP_REPORT_INTERVAL:
            return
        dropped = self._queue.take_unreported_drops()
        if dropped:
            self._last_drop_report = now
            self._fallback.report(
                logging.WARNING,
                f"pglog dropped {dropped} records: the queue was full"
                f" ({self._queue.maxsize} records, overflow={self._queue.overflow!r})",
            )

    def _report(self, kind: str, message: str) -> None:
        now = time.monotonic()
        last = self._last_error_report.get(kind)
        if last is not None and now - last < ERROR_REPORT_INTERVAL:
            return
        self._last_error_report[kind] = now
        self._fallback.report(logging.WARNING, message)


def _failing_line(error: BaseException, count: int) -> int | None:
    """Index of the row a COPY error names ("COPY logs, line 3, column ..."), if it names one."""
    context = getattr(getattr(error, "diag", None), "context", None) or ""
    match = _COPY_LINE.search(context)
    if match is None:
        return None
    index = int(match.group(1)) - 1
    return index if 0 <= index < count else None
