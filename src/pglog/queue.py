"""Queue: the bounded FIFO between callers and the writer, and the ledger of every entry's fate.

Every entry that reaches ``put()`` is counted as enqueued and ends up in exactly one
of written, dropped or fallback; until then it is pending: spooled to disk, held by
the writer (the batch in flight), being handed to the fallback, or queued. All of it
changes under one lock, so a snapshot always satisfies
``enqueued == written + dropped + fallback + pending``.

Entries keep their order. Pending entries sit in groups, oldest first: spooled, in
flight, parked (a batch waiting while older ones are replayed from the spool), being
handed over, queued. The writer takes batches from the head of the
queue, keeps a failed batch in flight until it is settled, settles it front to back,
spools from the front and replays the spool before anything newer. So "everything
put before now is settled" is a comparison of sequence numbers, which is what
``flush()`` waits on.

Entries replayed from a spool an earlier process left behind pass through the batch
in flight too, but were never enqueued here: they are counted as replayed only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Literal

from pglog.record import Entry

Overflow = Literal["drop_oldest", "drop_newest", "block"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop_oldest", "drop_newest", "block")
Outcome = Literal["written", "dropped", "fallback"]


class RecordQueue:
    """Entries waiting for the writer, and the counts of what became of them."""

    def __init__(self, maxsize: int, overflow: Overflow, batch_size: int) -> None:
        self.maxsize = maxsize
        self.overflow = overflow
        self.batch_size = min(batch_size, maxsize)
        #: Wake the writer when this many entries are in memory (it can spool them).
        self.spill_at: int | None = None
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self._settled = threading.Condition(self._lock)
        self._entries: deque[Entry] = deque()
        self._in_flight: list[Entry] = []
        self._in_flight_start = 0
        self._in_flight_foreign = False
        self._in_flight_replayed = False
        self._parked: list[Entry] = []
        self._parked_start = 0
        self._handing = 0
        self._handing_start = 0
        self._spooled = 0
        self._spooled_start = 0
        self._sending = False
        self._accepted = 0
        self._counts = dict.fromkeys(
            ("enqueued", "written", "dropped", "fallback", "spooled", "replayed"), 0
        )
        self._foreign_fallback = 0
        self._unreported_drops = 0
        self._urgent = 0
        self._urgent_calls = 0
        self._urgent_seen = 0
        self._backoffs = 0
        self._closed = False

    # -- callers ---------------------------------------------------------------

    def put(self, entry: Entry) -> bool:
        """Queue ``entry`` by the overflow policy; False once the queue is closed."""
        # Critical section
        with self._lock:
            if self.overflow == "block":
                while self._in_memory() >= self.maxsize and not self._closed:
                    self._space.wait()
            if self._closed:
                return False
            self._counts["enqueued"] += 1
            if self._in_memory() >= self.maxsize:
                if self.overflow == "drop_oldest" and self._entries:
                    self._entries.popleft()
                    self._count_drop()
                else:
                    self._count_drop()
                    return True
            self._entries.append(entry)
            self._accepted += 1
            if len(self._entries) == self.batch_size or self._in_memory() == self.spill_at:
                self._ready.notify()
            return True

    def _in_memory(self) -> int:
        own_in_flight = 0 if self._in_flight_foreign else len(self._in_flight)
        return len(self._entries) + own_in_flight + len(self._parked) + self._handing

    def _count_drop(self) -> None:
        self._counts["dropped"] += 1
        self._unreported_drops += 1
        if self._unreported_drops == 1:
            self._ready.notify()  # let the writer report the start of a burst

    def count_direct(self, outcome: Outcome) -> None:
        """Account for an entry that never entered the queue (it was closed)."""
        # Critical section
        with self._lock:
            self._counts["enqueued"] += 1
            self._counts[outcome] += 1

    def flush(self, deadline: float, *, until_backoff: bool = False) -> bool:
        """Wait until everything put before this call is settled; False at ``deadline``.

        With ``until_backoff``, also give up (False) when the writer starts to back off
        after the call began: the database is away, and waiting would only wait for it.
        """
        # Critical section
        with self._lock:
            target = self._accepted
            backoffs = self._backoffs
            self._urgent += 1
            self._urgent_calls += 1
            self._ready.notify()
            try:
                while self._head() < target:
                    remaining = deadline - time.monotonic()
                    backed_off = until_backoff and self._backoffs != backoffs
                    if remaining <= 0 or backed_off or self._closed:
                        return False
                    self._settled.wait(remaining)
                return True
            finally:
                self._urgent -= 1

    def _head(self) -> int:
        """Sequence number of the oldest entry not yet settled (a lower bound).

        Each group of pending entries is contiguous; drops only leave gaps between
        groups, never inside one."""
        starts = [self._accepted - len(self._entries)]
        if self._in_flight and not self._in_flight_foreign:
            starts.append(self._in_flight_start)
        if self._parked:
            starts.append(self._parked_start)
        if self._handing:
            starts.append(self._handing_start)
        if self._spooled:
            starts.append(self._spooled_start)
        return min(starts)

    # -- the writer --------------------------------------------------------------

    def wait_for_batch(self, timeout: float) -> None:
        """Sleep until a full batch is waiting, a flush or close asks, drops need
        reporting, or ``timeout`` passes."""
        # Critical section
        with self._lock:
            if not self._batch_wanted():
                self._ready.wait(timeout)

    def _batch_wanted(self) -> bool:
        return (
            len(self._entries) >= self.batch_size
            or (self._urgent > 0 and bool(self._entries))
            or self._closed
        )

    def pause(self, timeout: float) -> None:
        """The writer's back-off sleep, cut short by close(), by memory filling up to
        ``spill_at``, or by a flush() that began after the writer's last attempt (one that
        began before has seen that attempt)."""
        deadline = time.monotonic() + timeout
        # Critical section
        with self._lock:
            self._backoffs += 1
            self._settled.notify_all()
            while not self._closed and self._urgent_calls == self._urgent_seen:
                if self.spill_at is not None and self._in_memory() >= self.spill_at:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            self._urgent_seen = self._urgent_calls

    @property
    def urgent(self) -> bool:
        """True while a flush or close is waiting for the writer."""
        return self._urgent > 0 or self._closed

    def in_memory(self) -> int:
        """Entries held in memory: queued, in flight (our own), being handed over."""
        with self._lock:
            return self._in_memory()

    def take(self, limit: int) -> list[Entry]:
        """Make up to ``limit`` entries from the head the batch in flight.

        Returns the batch in flight (possibly the one left by a failed attempt).
        """
        # Critical section
        with self._lock:
            if not self._in_flight and self._parked:
                self._in_flight, self._parked = self._parked, []
                self._in_flight_start = self._parked_start
            elif not self._in_flight and self._entries:
                self._in_flight_start = self._accepted - len(self._entries)
                self._in_flight_foreign = self._in_flight_replayed = False
                count = min(limit, len(self._entries))
                self._in_flight = [self._entries.popleft() for _ in range(count)]
                self._space.notify_all()
            return list(self._in_flight)

    def in_flight(self) -> list[Entry]:
        with self._lock:
            return list(self._in_flight)

    @property
    def in_flight_foreign(self) -> bool:
        """True while the batch in flight came from an earlier process's spool."""
        return self._in_flight_foreign

    def begin_send(self) -> bool:
        """Claim the batch in flight for an attempt; False if close() took it meanwhile.

        While claimed, close() leaves the batch alone: only the database can say
        whether it is written."""
        # Critical section
        with self._lock:
            self._sending = bool(self._in_flight)
            self._urgent_seen = self._urgent_calls
            return self._sending

    def end_send(self, written: int = 0) -> None:
        """Release the claim, settling the first ``written`` entries in flight as written
        in the same step, so close() can never take what was just committed."""
        # Critical section
        with self._lock:
            self._sending = False
            if written:
                self._settle(written, "written")

    def settle(self, count: int, outcome: Outcome) -> None:
        """The first ``count`` entries in flight are done, as ``outcome``."""
        with self._lock:
            self._settle(count, outcome)

    def _settle(self, count: int, outcome: Outcome) -> None:
        count = min(count, len(self._in_flight))
        del self._in_flight[:count]
        self._in_flight_start += count
        if self._in_flight_replayed and outcome == "written":
            self._counts["replayed"] += count
        if not self._in_flight_foreign:
            self._counts[outcome] += count
        elif outcome != "written":
            self._foreign_fallback += count
        if not self._in_flight:
            self._in_flight_foreign = self._in_flight_replayed = False
        self._settled.notify_all()
        self._space.notify_all()

    def spool(self, count: int) -> None:
        """The first ``count`` entries in flight are safe on disk: pending, out of memory."""
        # Critical section
        with self._lock:
            count = min(count, len(self._in_flight))
            if not self._spooled:
                self._spooled_start = self._in_flight_start
            del self._in_flight[:count]
            self._in_flight_start += count
            self._spooled += count
            self._counts["spooled"] += count
            self._space.notify_all()

    def load(self, entries: Sequence[Entry], own: bool) -> None:
        """Make entries read back from the spool the batch in flight. ``own`` entries are
        this process's oldest spooled ones; the others were never enqueued here."""
        # Critical section
        with self._lock:
            if self._in_flight:  # newer than the spool (it couldn't be spooled): it waits
                assert not self._in_flight_replayed
                assert not self._parked
                self._parked, self._parked_start = self._in_flight, self._in_flight_start
            self._in_flight = list(entries)
            self._in_flight_foreign = not own
            self._in_flight_replayed = True
            if own:
                self._in_flight_start = self._spooled_start
                self._spooled -= len(entries)
                self._spooled_start += len(entries)

    def unload(self) -> None:
        """Put a batch read back from the spool back: it is still there, to be read again."""
        # Critical section
        with self._lock:
            if not self._in_flight_replayed:
                return
            if not self._in_flight_foreign:
                self._spooled += len(self._in_flight)
                self._spooled_start = self._in_flight_start
            self._in_flight = []
            self._in_flight_foreign = self._in_flight_replayed = False

    @property
    def in_flight_replayed(self) -> bool:
        """True while the batch in flight was read back from the spool."""
        return self._in_flight_replayed

    def take_unreported_drops(self) -> int:
        # Critical section
        with self._lock:
            count, self._unreported_drops = self._unreported_drops, 0
            return count

    # -- closing -----------------------------------------------------------------

    def close(self) -> None:
        """Refuse new entries and wake everyone who waits."""
        # Critical section
        with self._lock:
            self._closed = True
            self._ready.notify_all()
            self._space.notify_all()
            self._settled.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self) -> list[Entry]:
        """Take everything pending in memory, oldest first, to hand to the fallback; the
        caller then calls ``settle_drained``. Until then the entries still count as pending.

        A batch that is being sent right now stays with the writer: its fate is the
        database's to tell. So does one read back from the spool: it is still on disk,
        for the next run."""
        # Critical section
        with self._lock:
            if self._handing:
                return []  # someone else is handing over; they will settle it all
            take_in_flight = self._in_flight and not (self._sending or self._in_flight_replayed)
            if take_in_flight:
                self._handing_start = self._in_flight_start
                rest = [*self._in_flight, *self._parked, *self._entries]
                self._in_flight = []
            elif self._parked:
                self._handing_start = self._parked_start
                rest = [*self._parked, *self._entries]
            else:
                self._handing_start = self._accepted - len(self._entries)
                rest = list(self._entries)
            self._parked = []
            self._entries.clear()
            self._handing = len(rest)
            return rest

    def settle_drained(self, outcome: Outcome) -> None:
        """What ``drain`` returned is handed over, as ``outcome``."""
        # Critical section
        with self._lock:
            self._counts[outcome] += self._handing
            self._handing = 0
            self._settled.notify_all()
            self._space.notify_all()

    # -- observation ---------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """A consistent snapshot of the ledger."""
        with self._lock:
            counts = dict(self._counts)
            own_in_flight = 0 if self._in_flight_foreign else len(self._in_flight)
            counts["queue_depth"] = len(self._entries)
            counts["in_flight"] = own_in_flight
            counts["spool_pending"] = self._spooled
            counts["pending"] = (
                len(self._entries)
                + own_in_flight
                + len(self._parked)
                + self._handing
                + self._spooled
            )
            counts["replay_fallback"] = self._foreign_fallback
            return counts
