"""In flight: the batch being written, kept in one place.

The batch knows its entries and their rows, where they came from (the queue, with their
sequence numbers, or a spool segment) and, once its transaction has begun, its
transaction id. Two threads may decide its fate: the writer, as attempts succeed or
fail, and ``close()``, when the close deadline comes while the writer is stuck inside
an attempt (a stalled network). Each decision is made under the ledger's lock, and the
first one wins: once ``close()`` has taken the batch over, the writer lets it go; once
the writer has settled records, ``close()`` can't take them.

The spiller may take the batch too, to the spool, while the writer leaves it idle (backing
off, or connecting for its next attempt): from ``begin`` until the writer has dealt with
what became of the attempt, the batch is the writer's. Whoever takes records out of
flight (the writer settling or handing them on, the spiller, ``close()``) does so under
the lock, and is then the one who moves them on: nobody acts on records someone else
has taken.

A batch close() takes over mid-attempt may still be committed by the writer a moment
later. So what close() does with it depends on what it knows: with a transaction id and
a spool, the batch is spooled with that id recorded, and the next process asks the
server what became of it before writing it again; without a spool it goes to the
fallback, reported as "may also be stored".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pglog._capture.entry import Entry
from pglog._capture.row import Row
from pglog._writer.ledger import Ledger, Outcome, Place, Run
from pglog._writer.sink import CommitUnknown, Transaction
from pglog._writer.spool import SpoolBatch


class Abandoned(Exception):
    """close() took the batch over; the writer must let it go."""


@dataclass
class Batch:
    entries: list[Entry]
    #: The records' sequence numbers; empty for records of another process's spool.
    run: Run
    #: The spool segment the batch was read back from, if it was.
    source: SpoolBatch | None = None
    #: The rows of the entries not yet settled (made by the writer when it first sends).
    rows: list[Row] = field(default_factory=list)
    #: The transaction of the attempt under way, once it has begun.
    transaction: Transaction | None = None
    #: How many of the first entries that transaction carries: often fewer than all (the
    #: pace's limit, or a part written around a refused row), and a COMMIT close() may
    #: find under way covers those alone.
    carrying: int = 0
    #: An attempt is under way (from before BEGIN to after COMMIT).
    sending: bool = False
    #: From the start of an attempt until the writer has dealt with its outcome.
    busy: bool = False
    #: close() took the batch over.
    taken: bool = False
    #: A transaction whose COMMIT's fate is unknown: looked up before anything else.
    unknown: CommitUnknown | None = None

    @property
    def place(self) -> Place:
        """Where the ledger holds its records: in flight, or replaying (also on disk)."""
        return Place.IN_FLIGHT if self.source is None else Place.REPLAYING

    @property
    def own(self) -> bool:
        """Are these this process's records (not another process's spool)?"""
        return self.source is None or self.source.own

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class Portion:
    """Entries taken out of flight to be handed on: the taker's alone from then on."""

    entries: list[Entry]
    #: Their sequence numbers (empty for another process's).
    run: Run
    #: Where the ledger held them in flight.
    place: Place
    source: SpoolBatch | None
    own: bool

    def __len__(self) -> int:
        return len(self.entries)


class InFlight:
    """The writer's current batch, and every change of its fate."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.batch: Batch | None = None

    def load(self, batch: Batch) -> None:
        """``batch`` (its records already held as in flight) is now the one being written."""
        assert self.batch is None, "the batch in flight must be settled first"
        self.batch = batch

    def idle(self) -> None:
        """The writer leaves the batch (to try it again later, or while it connects): until
        ``begin``, the spiller may take it to the spool."""
        with self._ledger.lock:
            batch = self.batch
            if batch is not None:
                batch.busy = False
                spillable = batch.source is None and batch.unknown is None
                self._ledger.idle = len(batch) if spillable else 0

    def begin(self, count: int) -> Batch:
        """Claim the batch for an attempt carrying its first ``count`` entries; Abandoned
        if close() took it meanwhile."""
        with self._ledger.lock:
            batch = self.batch
            if batch is None or batch.taken:
                raise Abandoned
            batch.sending, batch.busy, batch.transaction = True, True, None
            batch.carrying = count
            self._ledger.idle = 0
            return batch

    def began(self, transaction: Transaction) -> None:
        """The attempt's transaction has begun; Abandoned if close() took the batch before
        it could know its id (the attempt then rolls back)."""
        with self._ledger.lock:
            batch = self.batch
            if batch is None or batch.taken:
                raise Abandoned
            batch.transaction = transaction

    def ended(self) -> None:
        """The attempt is over without settling anything (it failed, or was rolled back)."""
        with self._ledger.lock:
            if self.batch is not None:
                self.batch.sending = False

    def settle(self, count: int) -> int:
        """The first ``count`` entries are written; returns how many that settled (none
        once close() took the batch over)."""
        with self._ledger.lock:
            portion = self._front(count)
            if portion is None:
                return 0
            ledger = self._ledger
            if portion.own:
                ledger.release(portion.place, portion.run)
                ledger.end("written", len(portion))
            else:
                ledger.settled.notify_all()
            if portion.source is not None:
                ledger.replayed += len(portion)
            return len(portion)

    def take(self, count: int) -> Portion | None:
        """The first ``count`` entries, taken out of flight to be handed on (to the
        fallback), held as handing until ``handed``; None once close() took the batch over
        (it is close()'s to hand on)."""
        with self._ledger.lock:
            portion = self._front(count)
            if portion is not None and portion.own:
                self._ledger.release(portion.place, portion.run)
                self._ledger.hold(Place.HANDING, portion.run)
            return portion

    def handed(self, portion: Portion, outcome: Outcome) -> None:
        """The entries ``take`` gave have reached ``outcome``."""
        with self._ledger.lock:
            if portion.own:
                self._ledger.release(Place.HANDING, portion.run)
                self._ledger.end(outcome, len(portion))
            elif portion.source is not None:
                self._ledger.replay_fallback += len(portion)

    def _front(self, count: int) -> Portion | None:
        batch = self.batch
        if batch is None or batch.taken:
            return None
        entries, batch.entries = batch.entries[:count], batch.entries[count:]
        del batch.rows[:count]
        batch.sending = False
        if not batch.entries:
            self.batch = None
        run = batch.run.front(len(entries))
        return Portion(entries, run, batch.place, batch.source, batch.own)

    def put_back(self) -> Batch | None:
        """The batch, if it was read back from the spool, out of flight unsettled, to go
        back there (``Spill.unload``): its records stay held as replaying until then. A
        batch from the queue stays in flight (None)."""
        with self._ledger.lock:
            batch = self.batch
            if batch is None or batch.source is None:
                return None
            self.batch = None
            return batch

    def take_idle(self) -> Batch | None:
        """For the spiller: the batch, if it is this process's, from the queue, and the
        writer left it idle with no transaction unresolved; its records are then
        spilling, and the writer takes nothing from the queue until they land."""
        with self._ledger.lock:
            batch = self.batch
            if (
                batch is None
                or batch.source is not None
                or batch.busy
                or batch.unknown is not None
                or batch.taken
            ):
                return None
            self.batch, self._ledger.idle = None, 0
            self._ledger.release(Place.IN_FLIGHT, batch.run)
            self._ledger.hold(Place.SPILLING, batch.run)
            return batch

    def take_over(self) -> Batch | None:
        """For close(): the batch, taken from the writer whatever it is doing; None if
        there is none. Its records stay held as in flight until the caller moves them."""
        with self._ledger.lock:
            batch, self.batch, self._ledger.idle = self.batch, None, 0
            if batch is not None:
                batch.taken = True
            return batch
