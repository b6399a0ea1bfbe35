"""Spill: records between memory and the spool, and the thread that moves them to disk.

The spiller is a thread of its own, so that memory is kept in check whatever the writer
is doing: backing off from a database that is away, or stuck for a while inside a COPY
on a stalled network. When the queue passes the spill mark (half of ``queue_size``, or
half of ``queue_max_bytes``) it moves the oldest records to the spool, a chunk per
fsync, until the queue is down to half of the mark. While a chunk is on its way the
writer takes nothing from the queue: the chunk is older than what is left there, and is
replayed first.

The batch in flight goes first, if the writer is only waiting to try it again: it holds
the oldest records. A disk that fails (full, failing, removed) never costs a record: the
chunk goes back to the head of the queue, the spool rests for a while (the overflow policy applies
meanwhile, counting and reporting what it drops), and spilling is tried again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pglog._capture.entry import Captured, named
from pglog._writer import process
from pglog._writer.inflight import Batch, InFlight
from pglog._writer.ledger import Place, Run
from pglog._writer.notices import Notices
from pglog._writer.queue import RecordQueue
from pglog._writer.segments import Recorded, SpoolError
from pglog._writer.spool import Spool, SpoolBatch

#: Entries spooled per write (and fsync): spooling must outrun a busy application.
SPILL_CHUNK = 10_000
#: After the spool failed (full, or a disk error), seconds before it is tried again.
SPOOL_REST = 5.0


class Spill:
    """Moves records to and from ``spool`` for ``queue``; runs the spiller thread."""

    def __init__(
        self,
        queue: RecordQueue,
        inflight: InFlight,
        spool: Spool,
        notices: Notices,
        name: str,
        *,
        stranded: Callable[[], None],
    ) -> None:
        self.queue = queue
        self._inflight = inflight
        self.spool = spool
        self._ledger = queue.ledger
        self._notices = notices
        self._mark = max(1, queue.maxsize // 2)
        self._resting_until = 0.0
        self._stopping = False
        self._stranded = stranded
        self._thread = process.own_thread(self._run, name)

    # -- the spiller thread -------------------------------------------------------------------

    def start(self) -> None:
        self.queue.set_spill_mark(self._mark)
        self._thread.start()

    def stop(self, deadline: float) -> bool:
        """Stop spilling; True if the thread ended by ``deadline``."""
        self._stopping = True
        self.queue.wake()
        if self._thread.ident is None:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping:
            try:
                if self._resting():
                    self.queue.wait_to_spill(min(1.0, self._resting_until - time.monotonic()))
                    continue
                if self.queue.wait_to_spill(1.0):
                    self.spill_down()
            except Exception as exc:  # never die: say it, rest, go on
                self._notices.say("spill", type(exc).__name__, f"pglog's spiller failed: {exc!r}")
                self._rest()
        # A chunk the spool refused after close() handed the queue on went back to a
        # queue no writer reads: it must not stay there.
        self._stranded()

    def spill_down(self) -> None:
        """Move the oldest records to the spool until the queue is down to half the mark:
        first the batch in flight, if the writer is only waiting to try it again."""
        idle = self._inflight.take_idle()
        if idle is not None and not self.spool_chunk(idle.run, list(idle.entries)):
            return
        while not self._stopping and self.queue.spill_wanted(self._mark // 2):
            run, chunk = self.queue.take(SPILL_CHUNK, Place.SPILLING)
            if not chunk or not self.spool_chunk(run, chunk):
                return

    # -- to the spool -------------------------------------------------------------------------

    def spool_chunk(self, run: Run, chunk: list[Captured]) -> bool:
        """Append a chunk taken as spilling, as much of it as the spool has room for; what
        it can't take (all of it, on a disk error) goes back to the queue's head, and the
        spool rests. True if all of it is in the spool."""
        try:
            taken = self.spool.append(chunk, run.first, fit=True)
        except SpoolError as trouble:
            self.queue.give_back(Place.SPILLING, run, chunk)
            self.failed(trouble)
            return False
        rest = Run(run.first, run.count)
        with self._ledger.lock:
            spooled = rest.front(taken)
            self._ledger.release(Place.SPILLING, spooled)
            self._ledger.hold(Place.SPOOLED, spooled)
            self._ledger.spooled += spooled.count
        if rest.count:
            self.queue.give_back(Place.SPILLING, rest, chunk[taken:])
            self.failed(
                SpoolError(
                    f"{self.spool.directory} is full: it took {taken} of {len(chunk)} records,"
                    f" and holds {self.spool.size} bytes of its limit of {self.spool.max_bytes}",
                    full=True,
                )
            )
            return False
        self.queue.wake()  # the writer waits for the chunk before taking from the queue
        return True

    def spool_batch(self, batch: Batch) -> bool:
        """Spool a batch close() took over from the writer, with its transaction recorded
        if it had one (its COMMIT may yet have happened); True if it is in the spool."""
        pending = None
        unknown, transaction = batch.unknown, batch.transaction
        if unknown is not None:
            pending = Recorded(
                unknown.xid,
                min(unknown.count, len(batch.entries)),
                unknown.transaction.server_started,
            )
        elif batch.sending and transaction is not None:
            covered = min(batch.carrying, len(batch.entries))  # a part's COMMIT covers the part
            pending = Recorded(transaction.xid, covered, transaction.server_started)
        try:
            self.spool.append(list(batch.entries), batch.run.first, pending)
        except SpoolError as trouble:
            self.failed(trouble)
            return False
        with self._ledger.lock:
            self._ledger.release(batch.place, batch.run)
            self._ledger.hold(Place.SPOOLED, batch.run)
            self._ledger.spooled += batch.run.count
        return True

    def failed(self, trouble: SpoolError) -> None:
        self._rest()
        self._notices.say(
            "spool",
            "full" if trouble.full else trouble.reason,
            f"pglog can't spool any more ({trouble.reason}); it tries again in"
            f" {SPOOL_REST:g} s, and the queue's overflow policy applies meanwhile",
        )

    def _rest(self) -> None:
        self._resting_until = time.monotonic() + SPOOL_REST
        self.queue.set_spill_mark(None)

    def _resting(self) -> bool:
        if not self._resting_until:
            return False
        if time.monotonic() < self._resting_until:
            return True
        self._resting_until = 0.0
        self.queue.set_spill_mark(self._mark)
        return False

    @property
    def usable(self) -> bool:
        """Is the spool worth trying now (not resting after a failure)?"""
        return not self._resting()

    # -- from the spool -----------------------------------------------------------------------

    def claim(self, limit: int) -> SpoolBatch | None:
        """The next batch to replay (None: nothing, or the disk failed: rest)."""
        try:
            return self.spool.claim(limit)
        except SpoolError as trouble:
            self.failed(trouble)
            return None
        finally:
            self.count_lost()

    def load(self, claimed: SpoolBatch) -> Batch:
        """A batch read back from the spool, as the batch in flight."""
        entries = [named(entry) for entry in claimed.entries]
        run = Run(claimed.first, len(entries)) if claimed.own else Run(0, 0)
        if claimed.own:
            with self._ledger.lock:
                self._ledger.release(Place.SPOOLED, run)
                self._ledger.hold(Place.REPLAYING, run)
        return Batch(entries, run, source=claimed)

    def unload(self, batch: Batch) -> None:
        """A batch read back from the spool, out of flight now (put back by the writer, or
        taken over by close()), goes back there unsettled (it is still on disk), to be
        claimed again."""
        assert batch.source is not None
        if batch.own:
            with self._ledger.lock:
                self._ledger.release(batch.place, batch.run)
                self._ledger.hold(Place.SPOOLED, batch.run)
        self.spool.release(batch.source)

    def settle_recorded(self, claimed: SpoolBatch, covered: int, *, committed: bool) -> None:
        """The transaction a spool recorded for ``claimed`` is known: if it committed, the
        ``covered`` entries are written (and skipped); if not, they are replayed."""
        if committed:
            with self._ledger.lock:
                if claimed.own:
                    self._ledger.release(Place.SPOOLED, Run(claimed.first, covered))
                    self._ledger.end("written", covered)
                else:
                    self._ledger.replayed += covered
        self.spool.resolve(claimed, committed)

    def count_lost(self) -> None:
        """Records whose spool files vanished are lost: counted, and said."""
        lost = self.spool.take_lost()
        if not lost:
            return
        with self._ledger.lock:
            for run in lost:
                self._ledger.release(Place.SPOOLED, run)
                self._ledger.end("lost", run.count)
        total = sum(run.count for run in lost)
        self._notices.always(
            f"pglog: {total} records were lost: their spool files in {self.spool.directory}"
            " were removed before they could be written"
        )
