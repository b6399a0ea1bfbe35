"""Delivery: one attempt to write the batch in flight, as its errors call for.

What happens depends on what failed (see ``retry.classify``): while the database is
away the batch is kept and the loop backs off; a vanished table is created again; a row
the server refuses is found and dealt with alone, so it never sinks its batch-mates; a
batch that can never be written goes to the fallback; a COMMIT whose reply was lost is
left for the commit lookup before anything is written again. A failing disk under the
spool is never a reason to reject anything: the batch goes back where it came from.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Callable

from pglog._capture.capture import render
from pglog._capture.entry import Entry
from pglog._capture.row import Row, escaped_row, to_row
from pglog._capture.scrub import Scrubber
from pglog._capture.static import Static
from pglog._writer.fallback import Fallback
from pglog._writer.inflight import Abandoned, Batch
from pglog._writer.ledger import Outcome
from pglog._writer.pace import Pace
from pglog._writer.parts import Parts
from pglog._writer.retry import Disposition, cause, classify
from pglog._writer.segments import SpoolError
from pglog._writer.sink import CommitUnknown, Stalled, Transaction
from pglog._writer.spool import Spool

#: After this many rows in a row are refused even in escaped form, for the same reason,
#: the table itself is the problem (a column pglog doesn't fill, say): the rest of the
#: batch goes to the fallback instead of being tried row by row.
REFUSALS_BEFORE_REJECT = 3

#: After this many transactions of the same row alone outlived write_timeout (each looked
#: up and found aborted), that row is what keeps the rest waiting: it is set aside like a
#: row the table refuses (tried once escaped, then to the fallback), so the rows behind
#: it are written. One could be a slow moment of the server's; each costs the rows
#: behind it write_timeout and the lookup's grace more.
TIMEOUTS_BEFORE_SET_ASIDE = 2

_COPY_LINE = re.compile(r"^COPY .*, line (\d+)", re.MULTILINE)


class Result(enum.Enum):
    #: Every entry of the batch is settled (written, quarantined, or handed over).
    DONE = "done"
    #: The database is away: the batch is kept, to be tried again after a back-off.
    AWAY = "away"
    #: The connection broke after the transaction began: ``Batch.unknown`` says which
    #: transaction to look up before anything is written again.
    UNKNOWN = "unknown"
    #: The spool could not record the transaction: the batch goes back to the spool.
    DISK = "disk"
    #: close() took the batch over.
    ABANDONED = "abandoned"


class _TableRefuses(Exception):
    """Row after row is refused for the same reason; the remaining rows go to the fallback."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Delivery:
    """Writes batches through ``sink``, settling them in ``inflight``."""

    def __init__(
        self,
        parts: Parts,
        fallback: Fallback,
        *,
        hostname: str,
        static: Static | None,
        scrubber: Scrubber,
        spool: Spool | None,
        fallback_outcome: Callable[[], Outcome],
    ) -> None:
        self._inflight, self._sink, self._notices, self._counters = parts
        self._fallback = fallback
        self._hostname = hostname
        self._static = static
        self._scrubber = scrubber
        self.spool = spool
        self._fallback_outcome = fallback_outcome
        self._pace = Pace(parts.sink.write_timeout)
        self.last_failure: BaseException | None = None
        #: The row (as it was captured) whose transactions alone outlived write_timeout
        #: ``_slow_times`` times in a row; ``_escaped_slow``: its escaped form, once tried.
        self._slow_row: Row | None = None
        self._slow_times = 0
        self._escaped_slow: Row | None = None

    def deliver(self, batch: Batch) -> Result:
        """Write ``batch`` (the one in flight) as far as it can be written now."""
        if not batch.rows and batch.entries:
            batch.rows = [self.row_of(entry) for entry in batch.entries]
        recreated = stale_retried = False
        while self._inflight.batch is batch and batch.entries:
            had_connection = self._sink.connected
            try:
                self._write_isolating(batch)
                continue
            except Abandoned:
                return Result.ABANDONED
            except _TableRefuses as refusal:
                self.hand_to_fallback(len(batch.entries), refusal.reason, "refuses")
                return Result.DONE
            except CommitUnknown as lost:
                self.failed(lost.cause)
                batch.unknown = lost
                return Result.UNKNOWN
            except SpoolError as trouble:
                self._inflight.ended()
                self.last_failure = trouble
                return Result.DISK
            except Exception as exc:
                error, disposition = exc, classify(exc)
                if had_connection and not self._sink.connected:
                    disposition = Disposition.RETRY  # whatever it said, it broke the connection
                self.failed(exc, retried=disposition is Disposition.RETRY)
            if disposition is Disposition.RECREATE and self._sink.create_table and not recreated:
                recreated = True  # once per batch: a table that exists can't be created again
                if self._recreate():
                    continue
            if disposition in (Disposition.RECREATE, Disposition.REJECT):
                reason = f"can't write to {self._sink.table}: {self._sink.describe_error(error)}"
                self.hand_to_fallback(len(batch.entries), reason, _code(error))
                return Result.DONE
            self._counters.retries += 1  # Disposition.RETRY; ISOLATE is handled below
            if had_connection and not stale_retried:
                stale_retried = True  # an idle connection had gone stale: reconnect at once
                continue
            return Result.AWAY
        return Result.DONE

    # -- one attempt, and isolating a bad row -------------------------------------------------

    def _write_isolating(self, batch: Batch) -> None:
        """Write the rows in flight; when the server refuses some row, split the batch
        around it (COPY names the line) or in halves, until it stands alone. Only as
        many rows as the pace allows go in one transaction; the caller sends the rest."""
        if self._set_aside(batch):
            return
        parts = [self._pace.rows(len(batch.rows))]  # sizes of the parts to write, next last
        refusals: list[str] = []
        while parts:
            size = parts.pop()
            try:
                self.attempt(batch, size)
                refusals = []  # the table took these rows: later refusals are not in a row
                continue
            except Exception as exc:
                if classify(exc) is not Disposition.ISOLATE:
                    raise
                self.failed(exc)
                error = exc
            if size == 1:
                reason = self._sink.describe_error(error)
                refusal = self._quarantine(batch, reason, _code(error), "the server refused")
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

    def attempt(self, batch: Batch, count: int) -> None:
        """Write the first ``count`` rows in flight in one transaction; settle them if it does."""
        self._inflight.idle()  # connecting may take connect_timeout: the spiller may take it
        self._sink.connect()  # and close() too, until sending
        self._inflight.begin(count)
        source, spool = batch.source, self.spool
        before_commit = None
        if source is not None and spool is not None:

            def before_commit(transaction: Transaction) -> None:
                spool.prepare_commit(source, count, transaction.xid, transaction.server_started)

        started = time.monotonic()
        try:
            self._sink.write(batch.rows[:count], self._inflight.began, before_commit)
        except CommitUnknown as lost:
            if isinstance(lost.cause, Stalled):
                self._slow(batch, count)
            raise  # the batch stays claimed until the server says what became of it
        except BaseException:
            self._inflight.ended()
            raise
        self._pace.wrote(count, time.monotonic() - started)
        self._slow_row = self._escaped_slow = None  # the first row is written, whatever it was
        self._slow_times = 0
        self.settle(batch, count)
        failing_for = self._counters.failing_for()
        if self._counters.wrote():
            self._notices.forget("write")
            self._notices.always(
                f"pglog writes to {self._sink.table} again, after {failing_for or 0:.0f} s",
                level=logging.INFO,
            )

    def _slow(self, batch: Batch, count: int) -> None:
        """A transaction of ``count`` rows outlived write_timeout: the next carry fewer;
        one of a row alone is counted against that row (see ``_set_aside``)."""
        head = batch.rows[0]
        if count == 1 and head in (self._slow_row, self._escaped_slow):
            self._slow_times += 1
        elif count == 1:
            self._slow_row, self._slow_times, self._escaped_slow = head, 1, None
        if self._pace.timed_out(count):
            self._notices.say(
                "pace",
                "timed out",
                f"pglog writes at most {self._pace.limit} rows per transaction to"
                f" {self._sink.table} for now: a transaction of {count} outlived"
                f" write_timeout ({self._sink.write_timeout:g} s)",
            )

    def settle(self, batch: Batch, count: int) -> None:
        """The first ``count`` entries are written; the spool learns it too."""
        source = batch.source
        settled = self._inflight.settle(count)
        if settled and source is not None and self.spool is not None:
            self.spool.advance(source, settled)

    def _set_aside(self, batch: Batch) -> bool:
        """The first row in flight outlived write_timeout alone too often: it blocks
        every row behind it, for ever if the server is that slow for it (a trigger, a
        lock). Try it escaped, once; if that times out too, hand it to the fallback.
        True if it was dealt with so (the caller goes on with the rest)."""
        original, times = self._slow_row, self._slow_times
        if original is None or times < TIMEOUTS_BEFORE_SET_ASIDE:
            return False
        if batch.rows[0] not in (original, self._escaped_slow):
            return False
        timeout = f"write_timeout ({self._sink.write_timeout:g} s)"
        if times > TIMEOUTS_BEFORE_SET_ASIDE:  # its escaped form timed out too
            self.hand_to_fallback(1, f"a row outlived {timeout} alone {times} times", "slow")
            return True
        self._notices.say(
            "slow-row",
            "set aside",
            f"pglog: one row outlived {timeout} alone {times} times, and every row behind"
            f" it waited; trying it escaped once, else it goes to the fallback",
        )
        batch.rows[0] = original  # escaped from the row as captured, not twice
        self._escaped_slow = escaped_row(original, f"outlived {timeout}")
        self._quarantine(batch, f"outlived {timeout}", "slow", "too slow alone")
        return True

    def _quarantine(self, batch: Batch, reason: str, code: str, what: str) -> str | None:
        """The first row in flight was refused alone (``what`` happened to it, for
        ``reason``, said once a minute for each ``code``): store it escaped, saying why.
        Returns the reason if even that was refused (the row then went to the fallback)."""
        batch.rows[0] = escaped_row(batch.rows[0], reason)
        try:
            self.attempt(batch, 1)
        except Exception as exc:
            if classify(exc) is not Disposition.ISOLATE:
                raise
            self.hand_to_fallback(1, f"row refused by the server ({reason})", _code(exc))
            return getattr(exc, "sqlstate", None) or reason
        self._notices.say("quarantine", code, f"pglog stored a row {what}, escaped: {reason}")
        return None

    def hand_to_fallback(self, count: int, reason: str, why: str) -> None:
        """Hand the first ``count`` entries in flight to the fallback; said once a minute
        for each ``why`` (an error's SQLSTATE, say). They are taken out of flight first, so
        that only the writer hands them on: close() may take the batch over meanwhile."""
        portion = self._inflight.take(count)
        if portion is None:
            return
        outcome = self._fallback_outcome()
        try:
            self._fallback.hand_over(portion.entries)
        finally:
            self._inflight.handed(portion, outcome)
        if portion.source is not None and self.spool is not None:
            self.spool.advance(portion.source, len(portion))
        self._notices.say(
            "rejected", why, f"pglog: {reason}; {len(portion)} records to the {outcome}"
        )

    def _recreate(self) -> bool:
        try:
            created = self._sink.recreate_table()
        except Exception as exc:
            self.failed(exc)
            return False
        if created:
            self._notices.say(
                "recreated",
                str(self._sink.table),
                f"pglog created {self._sink.table} again (it had vanished)",
            )
        return created

    def row_of(self, entry: Entry) -> Row:
        try:
            return to_row(entry, self._hostname, self._static, scrubber=self._scrubber)
        except Exception as exc:  # to_row is written not to raise; if it does, keep the record
            self._notices.say(
                "row",
                type(exc).__name__,
                f"pglog could not convert a record ({type(exc).__name__}); stored its text only",
            )
            message, _ = render(entry)
            plain = entry._replace(message=ascii(message), args=None, exception=None, extras=None)
            return to_row(plain, self._hostname, self._static, scrubber=self._scrubber)

    def failed(self, error: BaseException, *, retried: bool = True) -> None:
        """An attempt failed: count it, and say so at once, then once a minute while it
        lasts (a wrong password must not be a single line scrolled away). ``retried``
        False: the records go elsewhere next, which the next notice says."""
        self.last_failure = error
        described = self._sink.describe_error(error)
        why = cause(error)
        if self._counters.failed(described):
            message = f"pglog can't write to {self._sink.table}: {why} ({described})" + (
                "; records are kept and retried" if retried else ""
            )
        else:
            message = (
                f"pglog still can't write to {self._sink.table} after"
                f" {self._counters.failing_for() or 0:.0f} s: {why} ({described})"
            )
        self._notices.say("write", why, message)


def _code(error: BaseException) -> str:
    """What tells one kind of refusal from another: the SQLSTATE, else the error's type."""
    return getattr(error, "sqlstate", None) or type(error).__name__


def _failing_line(error: BaseException, count: int) -> int | None:
    """Index of the row a COPY error names ("COPY logs, line 3, column ..."), if it names one."""
    context = getattr(getattr(error, "diag", None), "context", None) or ""
    match = _COPY_LINE.search(context)
    if match is None:
        return None
    index = int(match.group(1)) - 1
    return index if 0 <= index < count else None
