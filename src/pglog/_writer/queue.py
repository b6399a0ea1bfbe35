"""Queue: the bounded FIFO between callers and the writer, and the ledger of every entry's fate.

Every entry that reaches ``put()`` is counted as enqueued and ends up in exactly one
of written, dropped or fallback; until then it is pending. All of it changes under
one lock, so a snapshot always satisfies
``enqueued == written + dropped + fallback + pending``.

Each accepted entry has a sequence number: its place in the order of ``put()``.
Pending entries sit in groups: the queue itself; the batch in flight (the writer's);
a chunk being written to the spool; entries being handed to the fallback; entries
in the spool. Each group holds a run of sequence numbers (drops only leave gaps
between runs), so the oldest pending entry is the least of the groups' first
numbers, and "everything put before now is settled" is one comparison: what
``flush()`` waits on.

Entries replayed from a spool an earlier process left behind pass through the batch
in flight too, but were never enqueued here: they are counted as replayed only.

``put()`` is the hot path of every logging call, so it takes no lock: a deque's
``append`` is atomic, and each reading of the ledger (under the lock) sees an append
entirely or not at all. Callers racing each other can overshoot ``maxsize`` by a few
entries, never more than there are threads. Everything unusual (a full queue, a
closed one, a spill to wake, the writer to wake for a full batch) takes the lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Literal

from pglog._capture.entry import Captured as Entry

Overflow = Literal["drop_oldest", "drop_newest", "block"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop_oldest", "drop_newest", "block")
Outcome = Literal["written", "dropped", "fallback"]


class RecordQueue:
    """Entries waiting for the writer, and the counts of what became of them."""

    def __init__(self, maxsize: int, overflow: Overflow, batch_size: int) -> None:
        self.maxsize = maxsize
        self.overflow = overflow
        self.batch_size = min(batch_size, maxsize)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self._settled = threading.Condition(self._lock)
        self._entries: deque[Entry] = deque()
        self._taken = 0  # entries ever removed from the head: the head's sequence number
        self._held = 0  # our own entries in memory outside the queue (in flight, spilling...)
        self._fast_limit = maxsize  # below this, put() appends without a second look
        self._spill_at: int | None = None
        self._in_flight: list[Entry] = []
        self._in_flight_start = 0
        self._in_flight_foreign = False
        self._in_flight_replayed = False
        self._sending = False
        self._spilling: list[Entry] = []
        self._spilling_start = 0
        self._handing = 0
        self._handing_start = 0
        self._spooled = 0
        self._spooled_start = 0
        self._counts = dict.fromkeys(
            ("written", "fallback", "spooled", "replayed", "replay_fallback"), 0
        )
        self._dropped = 0
        self._refused = 0  # dropped on arrival, never queued
        self._direct = 0  # counted after close, without entering the queue
        self._unreported_drops = 0
        self._urgent = 0
        self._urgent_calls = 0
        self._urgent_seen = 0
        self._backoffs = 0
        self._closed = False

    # -- callers ---------------------------------------------------------------

    def put(self, entry: Entry) -> bool:
        """Queue ``entry`` by the overflow policy; False once the queue is closed."""
        entries = self._entries
        if len(entries) + self._held < self._fast_limit:
            entries.append(entry)
            if self._closed:
                return self._withdraw(entry)
            if len(entries) == self.batch_size:
                # Critical section
                with self._lock:
                    self._ready.notify()
            return True
        # Critical section
        with self._lock:
            return self._put_slowly(entry)

    def _withdraw(self, entry: Entry) -> bool:
        """close() came between the check and the append: take the entry back, unless a
        drain already took it (then it is being handed over, and counts as queued)."""
        # Critical section
        with self._lock:
            try:
                self._entries.remove(entry)
            except ValueError:
                return True
            return False

    def _put_slowly(self, entry: Entry) -> bool:
        if self.overflow == "block":
            while len(self._entries) + self._held >= self.maxsize and not self._closed:
                self._space.wait()
        if self._closed:
            return False
        if len(self._entries) + self._held >= self.maxsize:
            self._dropped += 1
            self._unreported_drops += 1
            if self._unreported_drops == 1:
                self._ready.notify()  # let the writer report the start of a burst
            if self.overflow == "drop_newest" or not self._entries:
                self._refused += 1
                return True
            self._entries.popleft()
            self._taken += 1
        self._entries.append(entry)
        if self._spill_at is not None and len(self._entries) >= self._spill_at:
            self._ready.notify()  # the writer can move entries to the spool
        return True

    def count_direct(self, outcome: Outcome) -> None:
        """Account for an entry that never entered the queue (it was closed)."""
        # Critical section
        with self._lock:
            self._direct += 1
            self._count(outcome, 1)

    def flush(self, deadline: float, *, until_backoff: bool = False) -> bool:
        """Wait until everything put before this call is settled; False at ``deadline``.

        With ``until_backoff``, also give up (False) when the writer starts to back off
        after the call began: the database is away, and waiting would only wait for it.
        """
        # Critical section
        with self._lock:
            target = self._taken + len(self._entries)
            backoffs = self._backoffs
            self._urgent += 1
            self._urgent_calls += 1
            self._ready.notify()
            try:
                while self._oldest() < target:
                    remaining = deadline - time.monotonic()
                    backed_off = until_backoff and self._backoffs != backoffs
                    if remaining <= 0 or backed_off or self._closed:
                        return False
                    self._settled.wait(remaining)
                return True
            finally:
                self._urgent -= 1

    def _oldest(self) -> int:
        """Sequence number of the oldest pending entry (a lower bound)."""
        oldest = self._taken
        if self._in_flight and not self._in_flight_foreign:
            oldest = min(oldest, self._in_flight_start)
        if self._spilling:
            oldest = min(oldest, self._spilling_start)
        if self._handing:
            oldest = min(oldest, self._handing_start)
        if self._spooled:
            oldest = min(oldest, self._spooled_start)
        return oldest

    # -- the writer: waiting ------------------------------------------------------

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
        """The writer's back-off sleep, cut short by close(), by the queue filling up to
        the spill mark, or by a flush() that began after the writer's last attempt (one
        that began before has seen that attempt)."""
        deadline = time.monotonic() + timeout
        # Critical section
        with self._lock:
            self._backoffs += 1
            self._settled.notify_all()
            while not self._closed and self._urgent_calls == self._urgent_seen:
                if self._spill_at is not None and len(self._entries) >= self._spill_at:
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

    def set_spill_mark(self, queued: int | None) -> None:
        """Wake the writer when ``queued`` entries wait (it can spool them); None: never."""
        # Critical section
        with self._lock:
            self._spill_at = queued
            self._reset_fast_limit()

    def _reset_fast_limit(self) -> None:
        if self._closed:
            self._fast_limit = -1
        else:
            self._fast_limit = min(self.maxsize, self._spill_at or self.maxsize)

    def spill_wanted(self) -> bool:
        """Are entries piling up past the spill mark?"""
        with self._lock:
            return self._spill_at is not None and len(self._entries) >= self._spill_at

    # -- the writer: the batch in flight ----------------------------------------------

    def take(self, limit: int) -> list[Entry]:
        """Make up to ``limit`` entries from the head the batch in flight.

        Returns the batch in flight (possibly the one left by a failed attempt).
        """
        # Critical section
        with self._lock:
            if not self._in_flight and self._entries:
                count = min(limit, len(self._entries))
                self._in_flight = [self._entries.popleft() for _ in range(count)]
                self._in_flight_start = self._taken
                self._in_flight_foreign = self._in_flight_replayed = False
                self._taken += count
                self._held += count
            return list(self._in_flight)

    def in_flight(self) -> list[Entry]:
        with self._lock:
            return list(self._in_flight)

    @property
    def holds_own_batch(self) -> bool:
        """Is a batch of this process's entries (not read back from the spool) in flight?"""
        return bool(self._in_flight) and not self._in_flight_replayed

    @property
    def in_flight_replayed(self) -> bool:
        """True while the batch in flight was read back from the spool."""
        return bool(self._in_flight) and self._in_flight_replayed

    @property
    def in_flight_start(self) -> int:
        return self._in_flight_start

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

    def _count(self, outcome: Outcome, count: int) -> None:
        if outcome == "dropped":
            self._dropped += count
        else:
            self._counts[outcome] += count

    def _to_spooled(self, start: int, count: int) -> None:
        """Entries numbered from ``start`` are (back) in the spool."""
        self._spooled_start = min(self._spooled_start, start) if self._spooled else start
        self._spooled += count

    def _settle(self, count: int, outcome: Outcome) -> None:
        count = min(count, len(self._in_flight))
        del self._in_flight[:count]
        self._in_flight_start += count
        if self._in_flight_replayed and outcome == "written":
            self._counts["replayed"] += count
        if not self._in_flight_foreign:
            self._held -= count
            self._count(outcome, count)
        elif outcome != "written":
            self._counts["replay_fallback"] += count
        self._settled.notify_all()
        self._space.notify_all()

    # -- the writer: the spool ------------------------------------------------------------

    def claim_spill(self, limit: int) -> tuple[int, list[Entry]]:
        """Take entries to write to the spool: the batch in flight if it is ours and idle,
        else up to ``limit`` from the head of the queue. Returns (first sequence number,
        entries); close() leaves them alone until ``spilled`` or ``spill_failed``."""
        # Critical section
        with self._lock:
            assert not self._spilling, "one spill at a time"
            if self._in_flight and not (self._sending or self._in_flight_replayed):
                self._spilling, self._in_flight = self._in_flight, []
                self._spilling_start = self._in_flight_start
            elif self._entries:
                count = min(limit, len(self._entries))
                self._spilling = [self._entries.popleft() for _ in range(count)]
                self._spilling_start = self._taken
                self._taken += count
                self._held += count
                self._space.notify_all()
            return self._spilling_start, list(self._spilling)

    def spilled(self) -> None:
        """The claimed chunk is safe in the spool: pending, out of memory."""
        # Critical section
        with self._lock:
            count = len(self._spilling)
            self._to_spooled(self._spilling_start, count)
            self._counts["spooled"] += count
            self._held -= count
            self._spilling = []
            self._space.notify_all()

    def spill_failed(self, outcome: Outcome) -> None:
        """The claimed chunk could not be spooled and was handed over instead."""
        # Critical section
        with self._lock:
            count = len(self._spilling)
            self._held -= count
            self._count(outcome, count)
            self._spilling = []
            self._settled.notify_all()
            self._space.notify_all()

    def load(self, entries: Sequence[Entry], own: bool, first: int) -> None:
        """Make entries read back from the spool the batch in flight. ``own`` entries are
        this process's, numbered from ``first`` (replayed oldest first); the others were
        never enqueued here."""
        # Critical section
        with self._lock:
            assert not self._in_flight, "the batch in flight must be settled first"
            self._in_flight = list(entries)
            self._in_flight_foreign = not own
            self._in_flight_replayed = True
            self._in_flight_start = first
            if own:
                count = min(len(entries), self._spooled)
                self._spooled -= count
                self._spooled_start = first + count
                self._held += count

    def unload(self) -> None:
        """Give back a batch read from the spool: it is still there, to be read again."""
        # Critical section
        with self._lock:
            if not (self._in_flight and self._in_flight_replayed) or self._sending:
                return
            if not self._in_flight_foreign:
                self._to_spooled(self._in_flight_start, len(self._in_flight))
                self._held -= len(self._in_flight)
            self._in_flight = []
            self._in_flight_foreign = self._in_flight_replayed = False

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
            self._reset_fast_limit()
            self._ready.notify_all()
            self._space.notify_all()
            self._settled.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self) -> list[Entry]:
        """Take everything pending in memory, oldest first, to hand to the fallback; the
        caller then calls ``settle_drained``. Until then the entries count as pending.

        What the writer is busy with stays with it: a batch being sent (only the
        database can say whether it is written), one read back from the spool (it is
        still on disk), a chunk being spooled."""
        # Critical section
        with self._lock:
            if self._handing:
                return []  # someone else is handing over; they will settle it all
            rest: list[Entry] = []
            if self._in_flight and not (self._sending or self._in_flight_replayed):
                self._handing_start = self._in_flight_start
                rest, self._in_flight = self._in_flight, []
            else:
                self._handing_start = self._taken
            rest.extend(self._entries)
            self._held += len(self._entries)
            self._taken += len(self._entries)
            self._entries.clear()
            self._handing = len(rest)
            return rest

    def settle_drained(self, outcome: Outcome) -> None:
        """What ``drain`` returned is handed over, as ``outcome``."""
        # Critical section
        with self._lock:
            count, self._handing = self._handing, 0
            self._held -= count
            self._count(outcome, count)
            self._settled.notify_all()
            self._space.notify_all()

    # -- observation ---------------------------------------------------------------

    def in_memory(self) -> int:
        """Entries held in memory: queued, and our own in the writer's hands."""
        with self._lock:
            return len(self._entries) + self._held

    def counts(self) -> dict[str, int]:
        """A consistent snapshot of the ledger."""
        with self._lock:
            queued = len(self._entries)
            pending = queued + self._held + self._spooled
            counts = dict(self._counts)
            counts.update(
                enqueued=self._taken + queued + self._refused + self._direct,
                dropped=self._dropped,
                pending=pending,
                queue_depth=queued,
                in_flight=0 if self._in_flight_foreign else len(self._in_flight),
                spool_pending=self._spooled,
            )
            return counts
