"""Queue: the bounded FIFO between callers and the writer, with its overflow policy.

Memory is bounded twice: by records (``maxsize``) and by the bytes that records with
more than a little text hold (``max_bytes``). The common record, a short message with
scalar arguments, is counted as a record only: capture keeps it on the short path only
while its text is short, so its bytes are bounded by its count. Everything else is
weighed as it is put (``weight``) and counts against both bounds.

``put()`` of a light record is the hot path of every logging call, so it takes no
lock: a deque's ``append`` is atomic, and each reading under the ledger's lock sees an
append entirely or not at all. Callers racing each other can overshoot ``maxsize`` by a
few entries, never more than there are threads. Everything unusual (a full queue, a
weighed record, a closed queue, a full batch or a spill to wake) takes the lock.

When memory is full the overflow policy decides (``_make_room``): ``drop_oldest``
discards from the head, ``drop_newest`` refuses the newcomer, both counted in the
ledger and left for the writer to report; ``block`` makes the caller wait for room
(or for close). With a spool, the spiller is woken well before that, at the spill mark.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Literal

from pglog._capture.entry import ARGS, EXCEPTION, EXTRAS, MESSAGE, Captured
from pglog._writer.ledger import Ledger, Outcome, Place, Run

Overflow = Literal["drop_oldest", "drop_newest", "block"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop_oldest", "drop_newest", "block")

#: What a queued record costs beyond its text: the tuple, its numbers, the deque's slot.
ENTRY_BYTES = 400


def weight(entry: Captured) -> int:
    """Roughly the bytes ``entry`` holds, for the queue's ``max_bytes`` bound."""
    size = ENTRY_BYTES + len(entry[MESSAGE])
    args, exception, extras = entry[ARGS], entry[EXCEPTION], entry[EXTRAS]
    if args:
        size += sum([len(arg) for arg in args if type(arg) is str])
    if exception:
        size += len(exception)
    if type(extras) is str:
        size += len(extras)
    elif extras:
        size += 64 * len(extras) + sum([len(v) for v in extras.values() if type(v) is str])
    return size


def is_light(entry: Captured) -> bool:
    """Did capture keep ``entry`` on one of its short paths (see ``entry.LIGHT_TEXT``)?"""
    return entry[ARGS] is not None and type(entry[EXTRAS]) is not str


def _counted(entry: Captured) -> int:
    """The bytes ``entry`` counts against ``max_bytes``: none for a light one. Weighing
    and un-weighing both ask this, so nothing an entry put in stays behind."""
    return 0 if is_light(entry) else weight(entry)


class RecordQueue:
    """Entries waiting for the writer; their fates are kept in ``ledger``."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        maxsize: int,
        max_bytes: int,
        overflow: Overflow,
        batch_size: int,
    ) -> None:
        self.ledger = ledger
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.overflow = overflow
        self.batch_size = min(batch_size, maxsize)
        lock = ledger.lock
        #: The writer waits here for a full batch, a flush, a close or drops to report.
        self._ready = threading.Condition(lock)
        #: Callers of the "block" policy wait here for room: the ledger's, since what
        #: settles records in flight makes room too.
        self._space = ledger.settled
        #: The spiller waits here for the queue to pass the spill mark.
        self._spill = threading.Condition(lock)
        self._entries: deque[Captured] = deque()
        #: Entries ever removed from the head: the head's sequence number.
        self._taken = 0
        #: Bytes of the weighed entries in the queue.
        self._bytes = 0
        #: Below this many queued entries, put() appends without a second look.
        self._fast_limit = maxsize
        self._spill_at: int | None = None
        self._unreported_drops = 0
        self._urgent = 0
        self._urgent_calls = 0
        self._urgent_seen = 0
        self._backoffs = 0
        self.closed = False

    # -- callers ------------------------------------------------------------------------------

    def put(self, entry: Captured) -> bool:
        """Queue a light entry (see ``is_light``) by the overflow policy; False once closed."""
        entries = self._entries
        if len(entries) + self.ledger.in_memory < self._fast_limit:
            entries.append(entry)
            if self.closed:
                return self._withdraw(entry)
            if len(entries) == self.batch_size:
                with self.ledger.lock:  # a full batch: wake the writer
                    self._ready.notify()
            return True
        with self.ledger.lock:
            return self._put_locked(entry, 0)

    def put_weighed(self, entry: Captured) -> bool:
        """Queue any entry, under the lock, counting its bytes against ``max_bytes`` unless
        it is light; False once closed."""
        with self.ledger.lock:
            return self._put_locked(entry, _counted(entry))

    def _withdraw(self, entry: Captured) -> bool:
        """close() came between the check and the append: take the entry back, unless a
        drain already took it (then it is being handed over, and counts as queued)."""
        with self.ledger.lock:
            try:
                self._entries.remove(entry)
            except ValueError:
                return True
            return False

    def _put_locked(self, entry: Captured, size: int) -> bool:
        if self.closed or not self._make_room(size):
            return not self.closed
        self._entries.append(entry)
        self._bytes += size
        if self._spill_at is not None and self._past_spill_mark():
            self._spill.notify()
        if len(self._entries) >= self.batch_size:
            self._ready.notify()
        return True

    def _full(self, size: int) -> bool:
        """No room for one more entry of ``size`` weighed bytes? An entry bigger than
        max_bytes alone still gets in once no other weighed entry is queued. A batch in
        flight that the spiller will take (see ``Ledger.idle``) leaves room: otherwise,
        with a batch as big as the spill mark, memory would be full as the spiller wakes."""
        held = self.ledger.in_memory
        if self._spill_at is not None:
            held -= self.ledger.idle
        if len(self._entries) + held >= self.maxsize:
            return True
        return size > 0 and self._bytes > 0 and self._bytes + size > self.max_bytes

    def _make_room(self, size: int) -> bool:
        """The overflow policy, under the lock: True if the newcomer may be appended
        (room was made, or was there), False if it was refused (and counted)."""
        if self.overflow == "block":
            while self._full(size) and not self.closed:
                self._space.wait()
            return not self.closed
        while self._full(size):
            self._count_drop()
            if self.overflow == "drop_newest" or not self._entries:
                self.ledger.dropped_on_arrival += 1
                return False
            dropped = self._entries.popleft()
            self._taken += 1
            self._bytes -= _counted(dropped)
        return True

    def _count_drop(self) -> None:
        self.ledger.end("dropped", 1)
        self._unreported_drops += 1
        if self._unreported_drops == 1:
            self._ready.notify()  # let the writer report the start of a burst

    def count_unqueued(self, outcome: Outcome) -> None:
        """Account for an entry that never entered the queue (it was closed)."""
        with self.ledger.lock:
            self.ledger.settled_unqueued += 1
            self.ledger.end(outcome, 1)

    # -- flush --------------------------------------------------------------------------------

    def flush(self, deadline: float, *, until_backoff: bool = False) -> bool:
        """Wait until everything put before this call is settled; False at ``deadline``.

        With ``until_backoff``, also give up (False) when the writer starts to back off
        after the call began: the database is away, and waiting would only wait for it.
        """
        ledger = self.ledger
        with ledger.lock:
            target = self._taken + len(self._entries)
            backoffs = self._backoffs
            self._urgent += 1
            self._urgent_calls += 1
            self._ready.notify()
            try:
                while ledger.oldest(self._taken) < target:
                    remaining = deadline - time.monotonic()
                    backed_off = until_backoff and self._backoffs != backoffs
                    if remaining <= 0 or backed_off:
                        return False
                    ledger.settled.wait(remaining)
                return True
            finally:
                self._urgent -= 1

    # -- the writer ---------------------------------------------------------------------------

    def wait_for_batch(self, timeout: float) -> None:
        """Sleep until a full batch is waiting, a flush or close asks, a burst of drops
        begins (to report it), or ``timeout`` passes."""
        with self.ledger.lock:
            if not self._batch_wanted():
                self._ready.wait(timeout)

    def _batch_wanted(self) -> bool:
        return (
            len(self._entries) >= self.batch_size
            or (self._urgent > 0 and bool(self._entries))
            or self.closed
        )

    def more_waiting(self) -> bool:
        """Is there a full batch, or any entry while a flush or close waits?"""
        with self.ledger.lock:
            urgent = self._urgent > 0 or self.closed
            return len(self._entries) >= self.batch_size or (urgent and bool(self._entries))

    def pause(self, timeout: float) -> None:
        """The writer's back-off sleep, cut short by close(), by the start of a burst of
        drops (to report it), or by a flush() that began after the writer's last attempt
        (one that began before has seen that attempt)."""
        deadline = time.monotonic() + timeout
        with self.ledger.lock:
            self._backoffs += 1
            self.ledger.settled.notify_all()
            quiet = not self._unreported_drops
            while not self.closed and self._urgent_calls == self._urgent_seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (quiet and self._unreported_drops):
                    break  # the time is up, or drops began: to be said at once
                self._ready.wait(remaining)
            self._urgent_seen = self._urgent_calls

    def attempted(self) -> None:
        """The writer is about to try the database: flushes that began before this have
        seen this attempt, and a back-off after it ends their wait."""
        with self.ledger.lock:
            self._urgent_seen = self._urgent_calls

    def take(self, limit: int, place: Place = Place.IN_FLIGHT) -> tuple[Run, list[Captured]]:
        """Up to ``limit`` entries from the head, moved to ``place``; none while a chunk is
        being spooled (it is older than the head and must be replayed first)."""
        with self.ledger.lock:
            return self._take_locked(limit, place)

    def _take_locked(self, limit: int, place: Place) -> tuple[Run, list[Captured]]:
        if self.ledger.held(Place.SPILLING) and place is Place.IN_FLIGHT:
            return Run(self._taken, 0), []
        count = min(limit, len(self._entries))
        popleft = self._entries.popleft
        taken = [popleft() for _ in range(count)]
        run = Run(self._taken, count)
        self._taken += count
        self._bytes -= sum([_counted(e) for e in taken])
        self.ledger.hold(place, run)
        self._space.notify_all()
        return run, taken

    def wait_while_spilling(self, timeout: float) -> None:
        """Sleep while a chunk is on its way to the spool (or until ``timeout``)."""
        with self.ledger.lock:
            if self.ledger.held(Place.SPILLING) and not self.closed:
                self._ready.wait(timeout)

    def give_back(self, place: Place, run: Run, entries: list[Captured]) -> None:
        """Entries taken for ``place`` return to the head, in order (a spool that failed)."""
        with self.ledger.lock:
            self.ledger.release(place, run)
            self._entries.extendleft(reversed(entries))
            self._taken -= run.count
            self._bytes += sum([_counted(e) for e in entries])
            self._ready.notify_all()

    def take_unreported_drops(self) -> int:
        with self.ledger.lock:
            count, self._unreported_drops = self._unreported_drops, 0
            return count

    # -- the spiller --------------------------------------------------------------------------

    def set_spill_mark(self, mark: int | None) -> None:
        """Wake the spiller when ``mark`` entries wait (or half of ``max_bytes``); None:
        never (no spool, or it is resting)."""
        with self.ledger.lock:
            self._spill_at = mark
            self._reset_fast_limit()
            if mark is not None and self._past_spill_mark():
                self._spill.notify()

    def _past_spill_mark(self) -> bool:
        assert self._spill_at is not None
        return len(self._entries) >= self._spill_at or self._bytes >= self.max_bytes // 2

    def wait_to_spill(self, timeout: float) -> bool:
        """Sleep until the queue passes the spill mark (True) or ``timeout`` passes or the
        queue closes (False)."""
        with self.ledger.lock:
            if self._spill_at is None or not self._past_spill_mark():
                self._spill.wait(timeout)
            return not self.closed and self._spill_at is not None and self._past_spill_mark()

    def spill_wanted(self, down_to: int) -> bool:
        """Are more than ``down_to`` entries (or half of max_bytes) still queued?"""
        with self.ledger.lock:
            return len(self._entries) > down_to or self._bytes >= self.max_bytes // 2

    def _reset_fast_limit(self) -> None:
        if self.closed:
            self._fast_limit = -1
        else:
            self._fast_limit = min(self.maxsize, self._spill_at or self.maxsize)

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse new entries and wake everyone who waits."""
        with self.ledger.lock:
            self.closed = True
            self._reset_fast_limit()
            for condition in (self._ready, self._space, self._spill, self.ledger.settled):
                condition.notify_all()

    def reopen(self) -> None:
        """Take entries again (the handler was used again after close())."""
        with self.ledger.lock:
            self.closed = False
            self._reset_fast_limit()

    def wake(self) -> None:
        """Wake the writer and the spiller: something they wait for changed."""
        with self.ledger.lock:
            self._ready.notify_all()
            self._spill.notify_all()
            self.ledger.settled.notify_all()

    # -- observation --------------------------------------------------------------------------

    def depth(self) -> int:
        return len(self._entries)

    def counts(self) -> dict[str, int]:
        """A consistent snapshot of the ledger."""
        with self.ledger.lock:
            return self.ledger.snapshot(len(self._entries), self._taken)
