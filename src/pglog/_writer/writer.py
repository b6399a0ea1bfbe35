"""Writer: the one background thread of a handler, moving batches from the queue into the table.

The loop takes a batch (``batch_size`` entries, or whatever is there after
``flush_interval``), turns it into rows and hands it to the sink. What happens on
failure depends on what failed (see ``retry.classify``): the batch stays in flight
and is retried after a back-off while the database is away; a vanished table is
created again; a row the server refuses is found and dealt with alone, so it never
sinks its batch-mates; a batch that can never be written goes to the fallback; a
COMMIT whose reply was lost is looked up before anything is written again.
Nothing raises out of the thread: it survives its own errors and says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from pglog._capture.capture import render
from pglog._capture.entry import Captured, named
from pglog._capture.row import Row, escaped_row, to_row
from pglog._capture.sanitize import Notes, clean_text
from pglog._table.columns import width
from pglog._table.reports import REPORT_EVERY, Identity
from pglog._writer.fallback import Fallback
from pglog._writer.queue import Outcome, RecordQueue
from pglog._writer.retry import Backoff, Disposition, classify
from pglog._writer.sink import CommitUnknown, PostgresSink
from pglog._writer.spool import Spool, SpoolBatch, SpoolFull

#: Idents of every live writer thread. A record logged by one of them (psycopg's
#: debug output, pglog's own warnings) is never queued by a pglog handler.
WRITER_THREADS: set[int] = set()

#: Drops are reported at most this often (seconds), with the count since the last report.
DROP_REPORT_INTERVAL = 5.0
#: The same kind of trouble is reported at most this often (seconds).
ERROR_REPORT_INTERVAL = 60.0
#: After this many rows in a row are refused even in escaped form, for the same reason,
#: the table itself is the problem (a column pglog doesn't fill, say): the rest of the
#: batch goes to the fallback instead of being tried row by row.
REFUSALS_BEFORE_REJECT = 3
#: Retention deletes this many rows per transaction; upkeep runs this often (seconds).
PRUNE_BATCH = 10_000
PRUNE_EVERY = 3600.0
#: After upkeep failed (a lock it waited too long for, a lost connection): try again then.
UPKEEP_RETRY = 60.0
#: Under a backlog, up to this many batches go in one transaction (see _batch_limit).
BACKLOG_BATCHES = 10
#: Entries spooled per write (and fsync): spooling must outrun a busy application.
SPILL_CHUNK = 10_000
#: After the spool failed (full, or a disk error), seconds before it is tried again.
SPOOL_REST = 60.0
#: How long a lost transaction may stay "in progress" before its backend is terminated.
IN_PROGRESS_GRACE = 2.0

_COPY_LINE = re.compile(r"^COPY .*, line (\d+)", re.MULTILINE)


class _Abandoned(Exception):
    """close() took the batch in flight while the writer was away from it."""


class _TableRefuses(Exception):
    """Row after row is refused for the same reason; the remaining rows go to the fallback."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
        spool: Spool | None = None,
        retention_days: int | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._retention_days = retention_days
        self._next_upkeep = 0.0
        self.pruned = 0
        self.partitions_dropped = 0
        self._queue = queue
        self._spool = spool
        self._spool_resting_until = 0.0
        self._source: SpoolBatch | None = None
        self._sink = sink
        self._fallback = fallback
        self._hostname = clean_text(hostname, width("hostname"), "hostname", Notes())
        self._flush_interval = flush_interval
        self._backoff = backoff or Backoff()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._rows: list[Row] = []
        self._deadline: float | None = None
        self._last_drop_report = 0.0
        self._last_report: dict[str, float] = {}
        self.retries = 0
        self.failed_batches = 0
        self.batches = 0
        self.last_error: str | None = None
        self.last_write: dt.datetime | None = None
        #: When the failures since the last successful write began: how long it's been stuck.
        self.failing_since: dt.datetime | None = None
        self._failing_began = 0.0  # the same moment on the monotonic clock, for reports
        self.rows_per_second = 0.0
        self._rate_mark = (time.monotonic(), 0)
        self._next_publish = 0.0
        self._identity = Identity(self._hostname, os.getpid(), dt.datetime.now(dt.timezone.utc))

    # -- lifecycle (called from other threads) -------------------------------------

    def start(self) -> None:
        self._thread.start()

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
            self._open_spool()
            while not self._queue.closed:
                self.report_drops()
                self._queue.wait_for_batch(self._flush_interval)
                self._work()
                self._maintain()
                self._publish()
            self._finish()
        except BaseException as exc:  # the last line of defence: say it, keep nothing back
            self._queue.close()  # from now on records go straight to the fallback
            self._report("crash", f"pglog writer stopped by {exc!r}")
            self.give_up("the writer crashed")
        finally:
            self._sink.discard()
            if self._spool is not None:
                self._spool.close()
            WRITER_THREADS.discard(ident)

    def _work(self) -> None:
        """Write batches while there are full ones (or any, when asked to flush): a batch
        already in flight first, then the spool, which holds older records, then the queue."""
        while not self._queue.closed:
            if not self._queue.holds_own_batch and self._spool_backlog():
                if not self._replay():
                    return
                continue
            batch = self._queue.take(self._batch_limit())
            if not batch or not self._deliver(batch) or not self._more_waiting():
                return

    def _batch_limit(self) -> int:
        """``batch_size``; but when a backlog has built up, several batches' worth in one
        transaction: each transaction costs round trips, and every round trip costs this
        thread a wait for the GIL while the application logs (up to the interpreter's
        switch interval, 5 ms), so under load fewer, larger transactions keep up."""
        queued = self._queue.counts()["queue_depth"]
        size = self._queue.batch_size
        if queued < 2 * size:
            return size
        # Never more than a quarter of the queue: a batch in flight is kept even when the
        # overflow policy is dropping, so it must leave room for what that policy keeps.
        return max(size, min(queued, size * BACKLOG_BATCHES, self._queue.maxsize // 4))

    def _more_waiting(self) -> bool:
        counts = self._queue.counts()
        return (
            counts["in_flight"] > 0
            or counts["queue_depth"] >= self._queue.batch_size
            or (self._queue.urgent and counts["queue_depth"] > 0)
        )

    def _finish(self) -> None:
        """The queue is closed: write what is left while the database takes it, by the
        deadline; spool the rest if there is a spool, else hand it to the fallback."""
        self._queue.unload()  # a replay that closing cut short: those entries are spooled
        while not self._past_deadline():
            if not self._queue.holds_own_batch and self._spool_backlog():
                if not self._replay():
                    break
                continue
            batch = self._queue.take(self._batch_limit())
            if not batch or not self._deliver(batch):
                break
        self._queue.unload()  # a batch read back from the spool stays there
        self._spill(everything=True)
        self.give_up("pglog handler closed")
        self.report_drops(force=True)
        self._publish(stopped=True)

    def give_up(self, reason: str) -> None:
        """Hand everything still pending (not being sent) to the fallback. Also called by
        close() when the thread did not finish in time."""
        rest = self._queue.drain()
        if not rest:
            return
        self._fallback.hand_over(rest)
        outcome = self._fallback_outcome()
        self._queue.settle_drained(outcome)
        self._report(
            "give-up",
            f"{reason}: {len(rest)} records could not be written to {self._sink.table}"
            + (" and went to the fallback" if outcome == "fallback" else " and were dropped"),
        )

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _closing(self) -> bool:
        return self._queue.closed or self._past_deadline()

    # -- one batch -------------------------------------------------------------------

    def _deliver(self, batch: Sequence[Captured]) -> bool:
        """Write the batch in flight, as its errors call for. False if it is not written:
        closing cut the attempt short (it is then still in flight, for give_up), or the
        database is away and the batch went to the spool."""
        self._rows = [self._to_row(entry) for entry in batch]
        recreated = stale_retried = False
        while self._rows:
            had_connection = self._sink.connected
            try:
                self._write_isolating()
                continue
            except _Abandoned:
                self._rows = []
                return False
            except _TableRefuses as refusal:
                self._hand_to_fallback(len(self._rows), refusal.reason)
                return True
            except CommitUnknown as lost:
                self._note_failure(lost.cause)
                if not self._resolve(lost):
                    return False
                continue
            except Exception as exc:
                self._note_failure(exc)
                error, disposition = exc, classify(exc)
            if disposition is Disposition.RECREATE and self._sink.create_table and not recreated:
                recreated = True  # once per batch: a table that exists can't be created again
                if self._recreate():
                    continue
            if disposition in (Disposition.RECREATE, Disposition.REJECT):
                reason = f"can't write to {self._sink.table}: {self._sink.describe_error(error)}"
                self._hand_to_fallback(len(self._rows), reason)
                return True
            self.retries += 1  # Disposition.RETRY; ISOLATE is handled by _write_isolating
            if had_connection and not stale_retried:
                stale_retried = True  # an idle connection had gone stale: reconnect at once
                continue
            if self._closing():
                return False
            if self._source is not None:  # read back from the spool: it is safe there
                self._queue.unload()
                self._rows = []
            self._back_off(self._backoff.next_delay())
            if not self._rows:
                return False  # the batch is in the spool now; replay comes first
        self._backoff.reset()
        return True

    def _write_isolating(self) -> None:
        """Write the rows in flight; when the server refuses some row, split the batch
        around it (COPY names the line) or in halves, until it stands alone."""
        parts = [len(self._rows)]  # sizes of the parts still to write, the next one last
        refusals: list[str] = []
        while parts:
            size = parts.pop()
            try:
                self._attempt(size)
                continue
            except Exception as exc:
                if classify(exc) is not Disposition.ISOLATE:
                    raise
                self._note_failure(exc)
                error = exc
            if size == 1:
                refusal = self._quarantine(error)
                refusals = [*refusals, refusal] if refusal else []
                if len(refusals) >= REFUSALS_BEFORE_REJECT and len(set(refusals)) == 1:
                    raise _TableRefuses(f"{self._sink.table} refuses rows: {refusal}")
                continue
            bad = _failing_line(error, size)
            if bad is None:
                pieces = [size // 2, size - size // 2]
            else:
                pieces = [n for n in (bad, 1, size - bad - 1) if n]
            parts.extend(reversed(pieces))

    def _attempt(self, count: int) -> None:
        """Write the first ``count`` rows in flight in one transaction; settle them if it does."""
        self._sink.connect()  # may take connect_timeout; until sending, close() may take the batch
        if not self._queue.begin_send():
            raise _Abandoned
        source, spool = self._source, self._spool
        before_commit = None
        if source is not None and spool is not None:

            def before_commit(xid: str) -> None:
                spool.prepare_commit(source, count, xid)

        try:
            self._sink.write(self._rows[:count], before_commit)
        except CommitUnknown:
            raise  # the batch stays claimed until the server says what became of it
        except BaseException:
            self._queue.end_send()
            raise
        self._written(count)

    def _written(self, count: int) -> None:
        self._queue.end_send(written=count)
        self._advance_spool(count)
        del self._rows[:count]
        self.batches += 1
        self.last_write = dt.datetime.now(dt.timezone.utc)
        self.failing_since = None

    def _quarantine(self, error: BaseException) -> str | None:
        """The first row in flight was refused alone: store it escaped, saying why.
        Returns the reason if even that was refused (the row then went to the fallback)."""
        reason = self._sink.describe_error(error)
        self._rows[0] = escaped_row(self._rows[0], reason)
        try:
            self._attempt(1)
        except Exception as exc:
            if classify(exc) is not Disposition.ISOLATE:
                raise
            self._hand_to_fallback(1, f"row refused by the server ({reason})")
            return getattr(exc, "sqlstate", None) or reason
        self._report("quarantine", f"pglog stored a row the server refused, escaped: {reason}")
        return None

    def _hand_to_fallback(self, count: int, reason: str) -> None:
        """Hand the first ``count`` entries in flight to the fallback, then settle them."""
        outcome = self._fallback_outcome()
        self._fallback.hand_over(self._queue.in_flight()[:count])
        self._queue.settle(count, outcome)
        self._advance_spool(count)
        del self._rows[:count]
        self._report(
            reason.split(":", maxsplit=1)[0], f"pglog: {reason}; {count} records to the {outcome}"
        )

    # -- retention -----------------------------------------------------------------------

    def _maintain(self) -> None:
        """Between batches, the table's upkeep: partitions for the periods ahead, and one
        round of retention (old partitions dropped, one batch of older rows deleted);
        again at once if there was more to delete, else in an hour. Records wait only for
        that long."""
        if time.monotonic() < self._next_upkeep or not self._sink.connected:
            return
        now = dt.datetime.now(dt.timezone.utc)
        deleted, again = 0, PRUNE_EVERY
        try:
            self._sink.make_partitions(now)  # routine: said only if it fails
            self._sink.forget_writers()
            if self._retention_days is not None:
                cutoff = now - dt.timedelta(days=self._retention_days)
                dropped, deleted = self._sink.prune(cutoff, PRUNE_BATCH)
                self.partitions_dropped += len(dropped)
        except Exception as exc:  # the writes go on: not a failure of the writer's
            again = UPKEEP_RETRY
            if classify(exc) is not Disposition.RETRY:  # a lost server: the batches say so
                self.last_error = self._sink.describe_error(exc)
                self._report("upkeep", f"pglog table upkeep failed: {self.last_error}")
        self.pruned += deleted
        self._next_upkeep = time.monotonic() + (0 if deleted == PRUNE_BATCH else again)

    # -- the spool -----------------------------------------------------------------------

    def _open_spool(self) -> None:
        if self._spool is None:
            return
        try:
            self._spool.open()
        except OSError as exc:
            self._report("spool", f"pglog can't use spool_dir {self._spool.directory}: {exc}")
            self._spool = None
            return
        self._queue.set_spill_mark(self._spill_mark)

    @property
    def _spill_mark(self) -> int:
        """Spool once the queue is half full; the batch in flight counts too."""
        return max(1, self._queue.maxsize // 2)

    def _spool_ready(self) -> bool:
        """Is there a spool that works? After a failure it rests for a while."""
        if self._spool is None:
            return False
        if self._spool_resting_until:
            if time.monotonic() < self._spool_resting_until:
                return False
            self._spool_resting_until = 0.0
            self._queue.set_spill_mark(self._spill_mark)
        return True

    def _spool_backlog(self) -> bool:
        return self._spool is not None and self._spool.has_backlog()

    def _back_off(self, delay: float) -> None:
        """Wait before trying again; meanwhile, keep memory from filling if a spool can,
        and say how it is going if the server still talks to us (a busy or read-only one)."""
        self._publish()
        self._spill()
        self._queue.pause(delay)
        self._spill()

    def _spill(self, everything: bool = False) -> bool:
        """Move entries from memory to the spool while the queue is past the spill mark
        (down to half of it), or all of them when closing. True if anything was spooled."""
        if not self._spool_ready() or not (everything or self._queue.spill_wanted()):
            return False
        spilled = False
        while everything or self._queue.counts()["queue_depth"] > self._spill_mark // 2:
            first, chunk = self._queue.claim_spill(SPILL_CHUNK)  # one fsync for many entries
            if not chunk or not self._spool_chunk(first, chunk):
                break
            spilled = True
        if not self._queue.holds_own_batch:
            self._rows = []  # the batch in flight, if it was ours, went with the spill
        return spilled

    def _spool_chunk(
        self, first: int, chunk: list[Captured], pending: tuple[str, int] | None = None
    ) -> bool:
        """Append a claimed chunk to the spool; if that fails, hand it to the fallback."""
        assert self._spool is not None
        try:
            self._spool.append(chunk, first, pending)
        except (SpoolFull, OSError) as exc:
            self._fallback.hand_over(chunk)
            self._queue.spill_failed(self._fallback_outcome())
            self._spool_resting_until = time.monotonic() + SPOOL_REST
            self._queue.set_spill_mark(None)
            self._report(
                "spool-full",
                f"pglog can't spool any more ({exc}); {len(chunk)} records to the"
                f" {self._fallback_outcome()}, and the queue's overflow policy applies",
            )
            return False
        self._queue.spilled()
        return True

    def _replay(self) -> bool:
        """Write the next batch from the spool; False if the database is away."""
        assert self._spool is not None
        batch = self._spool.claim(self._queue.batch_size)
        if batch is None:
            return True
        if batch.pending is not None:
            return self._settle_recorded(batch, *batch.pending)
        self._queue.load(batch.entries, batch.own, batch.first)
        self._source = batch
        try:
            return self._deliver(batch.entries)
        finally:
            self._source = None

    def _settle_recorded(self, batch: SpoolBatch, xid: str, covered: int) -> bool:
        """A process stopped between recording transaction ``xid`` and learning its fate:
        ask the server, and skip the ``covered`` entries if it committed."""
        assert self._spool is not None
        try:
            status = self._sink.status(xid)
        except Exception as exc:
            self._note_failure(exc)
            self._back_off(self._backoff.next_delay())
            return False
        if status == "in progress":
            self._back_off(IN_PROGRESS_GRACE)
            return False
        committed = status == "committed"
        if committed:
            self._queue.load(batch.entries[:covered], batch.own, batch.first)
            self._queue.settle(covered, "written")
        self._spool.resolve(batch, committed)
        return True

    def _advance_spool(self, count: int) -> None:
        if self._source is not None and self._spool is not None:
            self._spool.advance(self._source, count)

    def _fallback_outcome(self) -> Outcome:
        return "fallback" if self._fallback.enabled else "dropped"

    def _recreate(self) -> bool:
        try:
            created = self._sink.recreate_table()
        except Exception as exc:
            self._note_failure(exc)
            return False
        if created:
            self._report("recreated", f"pglog created {self._sink.table} again (it had vanished)")
        return created

    def _resolve(self, lost: CommitUnknown) -> bool:
        """Settle the rows of a transaction whose COMMIT may have happened, by asking the
        server. True to carry on (written, or to be written again); False if closing cut
        the wait short: the rows then go to the fallback, though they may also be stored."""
        in_progress_since: float | None = None
        terminated = False
        while True:
            status: str
            try:
                status = self._sink.status(lost.xid)
            except Exception as exc:
                self._note_failure(exc)
                self.retries += 1
                status = "unreachable"
            if status == "committed":
                self._written(lost.count)
                self._backoff.reset()
                return True
            if status in ("aborted", "unknown"):
                self.retries += 1  # the rows will be written again
                if status == "unknown":
                    self._report(
                        "unknown-commit",
                        f"pglog could not learn whether transaction {lost.xid} committed;"
                        " writing its rows again (they may now be stored twice)",
                    )
                self._queue.end_send()
                return True
            if status == "in progress":
                now = time.monotonic()
                in_progress_since = in_progress_since or now
                if not terminated and now - in_progress_since >= IN_PROGRESS_GRACE:
                    terminated = True
                    self._terminate(lost.backend_pid)
            if self._closing():
                self._queue.end_send()
                self._keep_unresolved(lost)
                return False
            self._back_off(0.05 if status == "in progress" else self._backoff.next_delay())

    def _keep_unresolved(self, lost: CommitUnknown) -> None:
        """Closing before the server said whether ``lost`` committed: with a spool, keep
        the rows there with the transaction recorded, for the next process to look up;
        without, they go to the fallback, and may also be stored."""
        if self._source is not None:
            return  # read back from the spool, whose progress file records the transaction
        if self._spool_ready():
            first, chunk = self._queue.claim_spill(0)
            if self._spool_chunk(first, chunk, (lost.xid, lost.count)):
                self._rows = []
                return
        self._report(
            "unknown-commit",
            f"pglog closed before learning whether transaction {lost.xid} committed;"
            f" its {lost.count} records go to the fallback and may also be stored",
        )

    def _terminate(self, backend_pid: int) -> None:
        try:
            self._sink.terminate(backend_pid)
        except Exception as exc:
            self._note_failure(exc)

    def _to_row(self, captured: Captured) -> Row:
        entry = named(captured)
        try:
            return to_row(entry, self._hostname)
        except Exception as exc:  # to_row is written not to raise; if it does, keep the record
            self._report("row", f"pglog could not convert a record ({exc!r}); stored it escaped")
            message, _ = render(entry)
            return to_row(
                entry._replace(message=ascii(message), args=None, exception=None, extras=None),
                self._hostname,
            )

    # -- reporting ---------------------------------------------------------------------

    def _note_failure(self, error: BaseException) -> None:
        self.failed_batches += 1
        self.last_error = self._sink.describe_error(error)
        if self.failing_since is None:
            self.failing_since = dt.datetime.now(dt.timezone.utc)
            self._failing_began = time.monotonic()

    def stats(self) -> dict[str, Any]:
        """The queue's ledger with the writer's own counters (see DatabaseLogHandler.stats)."""
        stats: dict[str, Any] = self._queue.counts()
        stats.update(
            spool_bytes=self._spool.size if self._spool is not None else 0,
            retries=self.retries,
            pruned=self.pruned,
            partitions_dropped=self.partitions_dropped,
            failed_batches=self.failed_batches,
            batches=self.batches,
            rows_per_second=round(self.rows_per_second, 1),
            connected=self._sink.connected,
            last_error=self.last_error,
            last_write=_iso(self.last_write),
            failing_since=_iso(self.failing_since),
        )
        return stats

    def _publish(self, stopped: bool = False) -> None:
        """Every REPORT_EVERY seconds (and at the end): measure the write rate, and publish
        the stats for monitors outside the process (see ``writers``) if connected."""
        now = time.monotonic()
        if (now < self._next_publish and not stopped) or self._past_deadline():
            return
        self._next_publish = now + REPORT_EVERY
        stats = self.stats()
        if self.failing_since is not None:
            stats["failing_for_s"] = round(now - self._failing_began, 1)
        if self.last_write is not None:
            age = dt.datetime.now(dt.timezone.utc) - self.last_write
            stats["last_write_age_s"] = round(age.total_seconds(), 1)
        since, before = self._rate_mark
        if now > since:
            self.rows_per_second = (stats["written"] - before) / (now - since)
        self._rate_mark = (now, stats["written"])
        stats["rows_per_second"] = round(self.rows_per_second, 1)
        if not self._sink.connected:
            return
        try:
            self._sink.publish(self._identity, stats, stopped=stopped)
        except Exception as exc:
            if classify(exc) is not Disposition.RETRY:  # a lost connection: the batches say it
                error = self._sink.describe_error(exc)
                self._report("publish", f"pglog could not publish its stats: {error}")

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
        last = self._last_report.get(kind)
        if last is not None and now - last < ERROR_REPORT_INTERVAL:
            return
        self._last_report[kind] = now
        self._fallback.report(logging.WARNING, message)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _failing_line(error: BaseException, count: int) -> int | None:
    """Index of the row a COPY error names ("COPY logs, line 3, column ..."), if it names one."""
    context = getattr(getattr(error, "diag", None), "context", None) or ""
    match = _COPY_LINE.search(context)
    if match is None:
        return None
    index = int(match.group(1)) - 1
    return index if 0 <= index < count else None
