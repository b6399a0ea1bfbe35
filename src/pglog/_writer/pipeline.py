"""Pipeline: the writer's side of one handler, from the queue to the table, put together.

A pipeline is built (without any I/O) when its handler is, started at the first record,
and closed once. A handler builds a new one in a forked child, and when a record arrives
after the handler was closed (``logging.config.dictConfig`` closes every handler it
replaces, and the stdlib's handlers carry on if used again: so does pglog's).

Closing is bounded by one deadline. The writer writes what the database takes until
shortly before it, then hands on the rest (``save_rest``); if the writer is stuck (a
stalled network, a hung server), ``close()`` takes the batch in flight over and hands it
on itself. Handing on means the spool when there is one (the batch in flight with its
transaction id, if its COMMIT may have happened: the next process looks it up), else the
fallback, as far as the deadline allows; whatever is left is counted as lost, and said.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from pglog._capture.entry import Entry, named
from pglog._capture.scrub import Scrubber
from pglog._capture.static import Static
from pglog._table.reports import Identity
from pglog._table.schema import TableName
from pglog._writer.commit import CommitLookup
from pglog._writer.counters import Counters
from pglog._writer.delivery import Delivery
from pglog._writer.fallback import Fallback
from pglog._writer.inflight import Batch, InFlight
from pglog._writer.ledger import Ledger, Outcome, Place, Run
from pglog._writer.notices import Notices
from pglog._writer.parts import Parts
from pglog._writer.queue import RecordQueue
from pglog._writer.segments import SpoolError, destination_of
from pglog._writer.sink import PostgresSink
from pglog._writer.spill import SPILL_CHUNK, Spill
from pglog._writer.spool import Spool
from pglog._writer.upkeep import Upkeep
from pglog._writer.writer import Writer

#: How long, past the close deadline, saying what was lost may take (a stderr read slowly).
LAST_WORD = 0.3
#: How long the spiller, ending after close(), may take to hand on what it left queued.
STRANDED_GRACE = 2.0
_NUMBERS = itertools.count(1)


@dataclass
class Saved:
    """What one close() handed on from memory: records, and how many the fallback took."""

    count: int = 0
    handed: int = 0


class Pipeline:
    def __init__(
        self,
        settings: dict[str, Any],
        *,
        dsn: str,
        table: TableName,
        hostname: str,
        fallback: Fallback,
    ) -> None:
        #: The writer thread's name; its spiller's is the same with "spiller".
        self.name = f"pglog-writer-{next(_NUMBERS)}"
        self._settings = settings
        self._fallback = fallback
        self.notices = Notices(fallback.handler)
        self.ledger = Ledger()
        self.queue = RecordQueue(
            self.ledger,
            maxsize=settings["queue_size"],
            max_bytes=settings["queue_max_bytes"],
            overflow=settings["overflow"],
            batch_size=settings["batch_size"],
        )
        self.inflight = InFlight(self.ledger)
        self.counters = Counters()
        self.sink = PostgresSink.for_handler(dsn, table, settings)
        self.spool: Spool | None = None
        self.spill: Spill | None = None
        parts = Parts(self.inflight, self.sink, self.notices, self.counters)
        self.delivery = Delivery(
            parts,
            fallback,
            hostname=hostname,
            static=Static.of(settings["static_fields"]),
            scrubber=Scrubber.of(settings),
            spool=None,
            fallback_outcome=self.fallback_outcome,
        )
        self.lookup = CommitLookup(parts, self.delivery)
        identity = Identity(hostname, os.getpid(), dt.datetime.now(dt.timezone.utc))
        self.upkeep = Upkeep(
            parts,
            retention_days=settings["retention_days"],
            identity=identity,
            stats=self.stats,
        )
        self._parts = parts
        self.writer = self._new_writer()
        self.started = False
        self._saving = threading.Lock()

    def _new_writer(self) -> Writer:
        return Writer(
            self._parts,
            self.queue,
            delivery=self.delivery,
            lookup=self.lookup,
            upkeep=self.upkeep,
            name=self.name,
            flush_interval=self._settings["flush_interval"],
            opening=self._open_spool,
            finishing=self.save_rest,
            ending=self._ended,
        )

    # -- starting -----------------------------------------------------------------------------

    def start(self) -> None:
        self.writer.start()
        self.started = True

    def reopen(self) -> None:
        """Take records again after close(): the writer goes on if it is still finishing,
        else a new one starts. Same queue, ledger and spool: one account of every record."""
        self.queue.reopen()
        if not self.writer.resume():
            self.writer = self._new_writer()
            self.writer.start()

    def _open_spool(self) -> Spill | None:
        """In the writer thread, as it starts: the spool (resolving the DSN's hosts is I/O)."""
        spool_dir = self._settings["spool_dir"]
        if spool_dir is None:
            return None
        spool = self.spool
        if spool is None:  # the first writer: later ones (the handler opened again) reuse it
            destination = destination_of(self.sink.dsn, str(self.sink.table))
            spool = Spool(spool_dir, self._settings["spool_max_bytes"], destination)
        try:
            spool.open()
        except SpoolError as trouble:
            self.notices.say("spool", "open", f"pglog can't use spool_dir {spool_dir}: {trouble}")
            return None
        if self.spool is None:
            self.spool = spool
            self.delivery.spool = spool
            self.sink.on_connect.append(lambda _: spool.identify(self.sink.server))
        spiller = self.name.replace("writer", "spiller")
        self.spill = Spill(
            self.queue, self.inflight, spool, self.notices, spiller, stranded=self._stranded
        )
        self.spill.start()
        return self.spill

    # -- flushing and closing -----------------------------------------------------------------

    def flush(self, deadline: float, *, until_backoff: bool = False) -> bool:
        if not self.started:
            return self.queue.counts()["pending"] == 0
        return self.queue.flush(deadline, until_backoff=until_backoff)

    def close(self, deadline: float, writing_until: float, *, wait: bool) -> None:
        """Write what the database takes until ``writing_until``, hand on the rest by
        ``deadline``, stop the threads. Without ``wait`` (logging's lock is held), the
        writer does all of it in the background and nothing here waits; its hand-over
        then gets as long as this close would have had, from when it begins."""
        window = max(0.0, deadline - time.monotonic())
        stopped = self.writer.stop(writing_until, wait=wait, hand_on=window)
        if not wait:
            return
        if not stopped:
            self.notices.always(
                f"pglog writer for {self.sink.table} did not finish within close_timeout"
                f" (last error: {self.counters.last_error or 'none'}); handing on what it holds",
                by=deadline,
            )
            self.save_rest(deadline)
            self.writer.report_drops(force=True)
            self.writer.join(deadline)
            in_memory = self.queue.counts()["pending"] - self.ledger.held(Place.SPOOLED)
            if in_memory:
                self.notices.always(
                    f"pglog: close_timeout ran out with {in_memory} records still being"
                    f" spooled or handed over for {self.sink.table}; that goes on in the"
                    " background, and what has not finished when the process exits is lost",
                    by=deadline,
                )

    def _ended(self) -> None:
        """The writer's last act: stop the spiller, let go of the spool and the connection."""
        if self.spill is not None:
            self.spill.stop(time.monotonic() + 1.0)
        if self.spool is not None:
            self.spool.close()
        self.sink.discard()

    def save_rest(self, deadline: float) -> None:
        """Hand on everything still pending in memory: the batch in flight (taken over
        from the writer, whatever it is doing) and the queue. Called by the writer as it
        finishes, and by close() when the writer is stuck: one at a time (the second waits
        for the first, by ``deadline``, and then finds nothing left)."""
        if not self._saving.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return
        try:
            self._save_rest(deadline)
        finally:
            self._saving.release()

    def _save_rest(self, deadline: float) -> None:
        spill = self.spill
        saved = Saved()
        batch = self.inflight.take_over()
        if batch is not None:
            if batch.source is not None and spill is not None:
                spill.unload(batch)  # read back from the spool: it is still there
            elif spill is None or not spill.spool_batch(batch):
                self._hand_over_batch(batch, deadline, saved)
        while spill is not None:
            run, chunk = self.queue.take(SPILL_CHUNK, Place.SPILLING)
            if not chunk or not spill.spool_chunk(run, chunk):
                break
        self._hand_over_queue(deadline, saved)
        self._say_saved(saved, deadline)

    def _stranded(self) -> None:
        """The spiller's last act: once the writer has ended and the queue is closed, what
        is in it (a chunk the spool refused after close() had handed the queue on) goes
        to the fallback, else it would stay pending, in memory, until it is lost unsaid."""
        if not self.queue.closed:  # open again: a writer reads it
            return
        deadline = time.monotonic() + STRANDED_GRACE
        if not self._saving.acquire(timeout=STRANDED_GRACE):
            return
        try:
            saved = Saved()
            self._hand_over_queue(deadline, saved)
            self._say_saved(saved, deadline)
        finally:
            self._saving.release()

    def _hand_over_queue(self, deadline: float, saved: Saved) -> None:
        """Whatever is still queued goes to the fallback."""
        run, rest = self.queue.take(self.queue.maxsize + 1, Place.HANDING)
        if rest:
            self._hand_over(Place.HANDING, run, [named(entry) for entry in rest], deadline, saved)

    def _hand_over_batch(self, batch: Batch, deadline: float, saved: Saved) -> None:
        """A batch of this process's, taken over from the writer, goes to the fallback."""
        transaction = batch.transaction
        if batch.unknown is not None or (batch.sending and transaction is not None):
            xid = transaction.xid if transaction is not None else "?"
            self.notices.always(
                f"pglog closed before learning whether transaction {xid} committed;"
                f" its {len(batch)} records go to the fallback and may also be stored",
                by=deadline,
            )
        self._hand_over(batch.place, batch.run, list(batch.entries), deadline, saved)

    def _hand_over(
        self, place: Place, run: Run, entries: list[Entry], deadline: float, saved: Saved
    ) -> None:
        """Hand ``entries`` (held in ``place`` as ``run``) to the fallback by ``deadline``;
        what it could not take by then is lost. Counted here, said once by the caller."""
        count = run.count
        outcome = self.fallback_outcome()
        handed = count if outcome == "dropped" else self._fallback.hand_over_by(entries, deadline)
        with self.ledger.lock:
            self.ledger.release(place, run)
            self.ledger.end(outcome, handed)
            self.ledger.end("lost", count - handed)
        saved.count += count
        saved.handed += handed

    def _say_saved(self, saved: Saved, deadline: float) -> None:
        """One line for everything close() could not write: the batch in flight and the
        queue together, so the number said is the number counted. Nothing handed on:
        nothing said."""
        count, handed = saved.count, saved.handed
        if not count:
            return
        if self.fallback_outcome() == "dropped":
            self.notices.always(
                f"pglog handler closed: {count} records could not be written to {self.sink.table}"
                " and were dropped (no fallback)",
                by=deadline,
            )
        elif handed == count:
            self.notices.always(
                f"pglog handler closed: {count} records could not be written to {self.sink.table}"
                " and went to the fallback",
                by=deadline,
            )
        else:  # said past the deadline, briefly: it is the one thing that must get out
            self.notices.always(
                f"pglog handler closed: {count - handed} records are lost: they could not be"
                f" written to {self.sink.table}, and the fallback took only {handed} of {count}"
                " before close_timeout",
                to_stderr=True,
                by=time.monotonic() + LAST_WORD,
            )

    def fallback_outcome(self) -> Outcome:
        return "fallback" if self._fallback.enabled else "dropped"

    # -- fork ---------------------------------------------------------------------------------

    def abandon(self) -> None:
        """In a forked child: let go of the parent's connection and files untouched."""
        self.sink.abandon()
        if self.spool is not None:
            self.spool.abandon()

    # -- observation --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The ledger with the writer's own counters (see DatabaseLogHandler.stats)."""
        stats: dict[str, Any] = self.queue.counts()
        counters = self.counters
        stats.update(
            spool_bytes=self.spool.size if self.spool is not None else 0,
            retries=counters.retries,
            pruned=counters.pruned,
            partitions_dropped=counters.partitions_dropped,
            failed_batches=counters.failed_batches,
            batches=counters.batches,
            rows_per_second=round(counters.rows_per_second, 1),
            connected=self.sink.connected,
            last_error=counters.last_error,
            last_write=_iso(counters.last_write),
            failing_since=_iso(counters.failing_since),
        )
        return stats


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
