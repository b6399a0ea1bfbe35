"""Writer: the background thread of a handler, and its loop.

Each round: report drops if there were any; wait for a full batch (or a flush, or
``flush_interval``); then write batches while there are full ones: the batch in flight
first (after looking up what became of its last transaction, if the connection broke
during it), then the spool, which holds older records, then the queue; then the
table's upkeep. While the database is away the loop backs off (0.5 s doubling to 10 s,
with jitter); the spiller keeps memory in check meanwhile.

The thread never dies of an error and never spins. Anything unexpected puts the batch
in flight back where it came from (it stays in flight, or goes back to the spool), is
said, backs off, and the loop carries on.

When asked to stop, the writer writes what the database takes by the deadline, then
hands on the rest (see ``pipeline.Pipeline.save_rest``): to the spool, else the fallback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pglog._capture.entry import named
from pglog._writer import process
from pglog._writer.commit import CommitLookup, Verdict
from pglog._writer.delivery import Delivery, Result
from pglog._writer.inflight import Batch
from pglog._writer.parts import Parts
from pglog._writer.queue import RecordQueue
from pglog._writer.retry import Backoff
from pglog._writer.segments import SpoolError
from pglog._writer.spill import Spill
from pglog._writer.spool import SpoolBatch
from pglog._writer.upkeep import Upkeep

#: Under a backlog, up to this many batches go in one transaction (see _batch_limit).
BACKLOG_BATCHES = 10
#: While a lost transaction is still in progress on the server: look again this soon.
IN_PROGRESS_POLL = 0.05
#: Drops are reported at most this often (seconds), with the count since the last report.
DROP_REPORT_INTERVAL = 5.0


class Writer:
    """Runs the loop in a named daemon thread."""

    def __init__(
        self,
        parts: Parts,
        queue: RecordQueue,
        *,
        delivery: Delivery,
        lookup: CommitLookup,
        upkeep: Upkeep,
        name: str,
        flush_interval: float,
        opening: Callable[[], Spill | None],
        finishing: Callable[[float], None],
        ending: Callable[[], None],
        backoff: Backoff | None = None,
    ) -> None:
        self._inflight, self._notices, self._counters = (
            parts.inflight,
            parts.notices,
            parts.counters,
        )
        self._queue = queue
        self._delivery, self._lookup, self._upkeep = delivery, lookup, upkeep
        self._flush_interval = flush_interval
        self._opening = opening
        self._finishing = finishing
        self._ending = ending
        self._backoff = backoff or Backoff()
        self._spill: Spill | None = None
        self._deadline: float | None = None
        #: For a stop nobody waits for: how long handing on may take, from when the writer
        #: gets to it (None: by the stop's own deadline, which someone waits for).
        self._hand_on: float | None = None
        #: Decides, at the end of a close, whether the writer ends or goes on (reopened).
        self._fate = threading.Lock()
        self._ended = False
        self._last_drop_report = 0.0
        self._thread = process.own_thread(self._run, name)

    # -- lifecycle (called from other threads) ------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, deadline: float, *, wait: bool, hand_on: float = 0.0) -> bool:
        """Ask the loop to write what it can by ``deadline`` and stop; with ``wait``, wait
        until then; True if it has stopped. Without ``wait`` nobody waits for the writer:
        a write stuck past ``deadline`` (a stall, until write_timeout) must not leave the
        hand-over no time, so it gets ``hand_on`` seconds from when it begins."""
        self._hand_on = None if wait else hand_on
        self._deadline = deadline
        self._queue.close()
        if self._thread.ident is None:
            return True
        if wait:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def resume(self) -> bool:
        """Go on writing after a stop was asked (the handler was used again); False if
        the writer has ended already (start a new one)."""
        with self._fate:
            if self._ended or self._thread.ident is None:
                return False
            self._deadline = None
            return True

    def join(self, deadline: float) -> None:
        if self._thread.ident is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._spill = self._opening()
            while True:
                while not self._queue.closed:
                    self._guarded(self._round)
                self._guarded(self._finish)
                with self._fate:  # decides: end, or go on if the handler opened again
                    if self._queue.closed:
                        self._ended = True
                        break
                    self._deadline = None
        finally:
            self._ended = True
            self._guarded(self._ending)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run ``step``; whatever it raises is said, and the loop backs off and goes on."""
        try:
            step()
        except Exception as exc:
            self._notices.say(
                "writer", type(exc).__name__, f"pglog's writer met an unexpected error: {exc!r}"
            )
            self._put_back()
            if not self._queue.closed:
                self._inflight.idle()
                self._queue.pause(self._backoff.next_delay())

    def _round(self) -> None:
        self.report_drops()
        if self._inflight.batch is None:  # a batch in flight is tried again at once
            self._queue.wait_for_batch(self._flush_interval)
        self._work()
        self._upkeep.run()

    def _work(self) -> None:
        """Write batches while there are full ones (or any, when a flush waits)."""
        while not self._stopping:
            batch = self._next_batch()
            if batch is None or not self._write(batch) or not self._more_waiting():
                return

    @property
    def _stopping(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def _finish(self) -> None:
        """Closing: write what the database takes by the deadline (the spool's backlog
        first, as ever), then hand on the rest."""
        deadline = self._deadline or time.monotonic()
        while time.monotonic() < deadline:
            batch = self._next_batch()
            if batch is None and self._spill is not None and self._spill.spool.has_backlog():
                continue  # a recorded transaction was settled: on to the next
            if batch is None or not self._write(batch, closing=True):
                break
        hand_on = self._hand_on
        if hand_on is not None:  # nobody waits: the hand-over's window starts now
            deadline = process.deadline(max(deadline, time.monotonic() + hand_on))
        self._finishing(deadline)
        self.report_drops(force=True)
        if time.monotonic() < deadline:
            self._upkeep.publish(stopped=True)

    # -- choosing the next batch --------------------------------------------------------------

    def _next_batch(self) -> Batch | None:
        """The batch in flight, else the next from the spool (it holds older records), else
        from the queue."""
        if self._inflight.batch is not None:
            return self._inflight.batch
        spill = self._spill
        if spill is not None and spill.usable and spill.spool.has_backlog():
            claimed = spill.claim(self._queue.batch_size)
            if claimed is not None and claimed.pending is not None:
                self._settle_recorded(spill, claimed)
                return None
            if claimed is not None:
                batch = spill.load(claimed)
                self._inflight.load(batch)
                return batch
        return self._from_queue()

    def _from_queue(self) -> Batch | None:
        run, captured = self._queue.take(self._batch_limit())
        if not captured:
            # A chunk on its way to the spool is older than the queue's head: wait for it
            # to land (it is then replayed first), rather than go round and round.
            self._queue.wait_while_spilling(self._flush_interval)
            return None
        batch = Batch([named(entry) for entry in captured], run)
        self._inflight.load(batch)
        return batch

    def _batch_limit(self) -> int:
        """``batch_size``; but when a backlog has built up, several batches' worth in one
        transaction: each transaction costs round trips, and every round trip costs this
        thread a wait for the GIL while the application logs (up to the interpreter's
        switch interval, 5 ms), so under load fewer, larger transactions keep up."""
        queued = self._queue.depth()
        size = self._queue.batch_size
        if queued < 2 * size:
            return size
        # Never more than a quarter of the queue: a batch in flight is kept even when the
        # overflow policy is dropping, so it must leave room for what that policy keeps.
        return max(size, min(queued, size * BACKLOG_BATCHES, self._queue.maxsize // 4))

    def _more_waiting(self) -> bool:
        spill = self._spill
        return (
            self._inflight.batch is not None
            or self._queue.more_waiting()
            or (spill is not None and spill.usable and spill.spool.has_backlog())
        )

    # -- one batch ----------------------------------------------------------------------------

    def _write(self, batch: Batch, *, closing: bool = False) -> bool:
        """Write ``batch`` as far as the database lets; False when the loop should not go
        on now (it backed off, or must wait)."""
        self._queue.attempted()
        if batch.unknown is not None:
            verdict = self._lookup.resolve(batch)
            if verdict is Verdict.WAIT:
                self._queue.pause(IN_PROGRESS_POLL)
                return False
            if verdict is Verdict.AWAY:
                return self._away(closing)
            if verdict is Verdict.WRITTEN:
                self._backoff.reset()
                return True
        result = self._delivery.deliver(batch)
        if result is Result.DONE:
            self._backoff.reset()
            return True
        if result is Result.UNKNOWN:
            self._put_back()  # one from the spool goes back there: it records the transaction
            return True  # looked up at once, next time round
        if result is Result.DISK:
            self._put_back()
            trouble = self._delivery.last_failure
            if self._spill is not None and isinstance(trouble, SpoolError):
                self._spill.failed(trouble)  # the spool rests; meanwhile the queue is written
            return True
        if result is Result.AWAY:
            return self._away(closing)
        return False  # Result.ABANDONED: close() took it

    def _away(self, closing: bool) -> bool:
        """The database is away: a batch from the spool goes back there (it is safe on
        disk); then back off, unless closing."""
        self._put_back()
        if not closing:
            self._back_off(self._backoff.next_delay())
        return False

    def _put_back(self) -> None:
        """Let go of the batch in flight without settling it: one read back from the
        spool goes back there; one from the queue stays in flight."""
        batch = self._inflight.put_back()
        if batch is not None and self._spill is not None:
            self._spill.unload(batch)

    def _settle_recorded(self, spill: Spill, claimed: SpoolBatch) -> None:
        """A process stopped between recording a transaction in the spool and learning its
        fate: ask the server, and skip the entries it covers if it committed."""
        pending = claimed.pending
        assert pending is not None
        first_row = self._delivery.row_of(claimed.entries[0]) if claimed.entries else ()
        verdict = self._lookup.verdict(pending.xid, pending.server_started, first_row)
        if verdict is Verdict.AWAY:
            spill.spool.release(claimed)
            self._back_off(self._backoff.next_delay())
        elif verdict is Verdict.WAIT:
            spill.spool.release(claimed)
            self._queue.pause(IN_PROGRESS_POLL)
        else:
            spill.settle_recorded(claimed, pending.count, committed=verdict is Verdict.WRITTEN)

    def _back_off(self, delay: float) -> None:
        """Wait before trying again, saying how it is going if the server still talks to us
        (a busy or read-only one); drops are reported as they happen, not only at the end.
        Meanwhile the spiller may take the batch in flight to the spool."""
        self._inflight.idle()
        self._upkeep.publish()
        self._queue.pause(delay)
        self.report_drops()

    def report_drops(self, *, force: bool = False) -> None:
        """Say how many records overflow dropped since the last report."""
        now = time.monotonic()
        if not force and now - self._last_drop_report < DROP_REPORT_INTERVAL:
            return
        dropped = self._queue.take_unreported_drops()
        if dropped:
            self._last_drop_report = now
            self._notices.always(
                f"pglog dropped {dropped} records: the queue was full"
                f" ({self._queue.maxsize} records, overflow={self._queue.overflow!r})"
            )
