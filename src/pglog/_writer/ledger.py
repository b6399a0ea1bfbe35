"""Ledger: where every record is, and what became of it, in named states.

A record that reaches ``put()`` is *pending* until it reaches one of four ends:
``written`` (committed to the table), ``fallback`` (handed to the fallback handler),
``dropped`` (by the overflow policy, or with no fallback to take it) or ``lost`` (gone
for a reason outside pglog's control: its spool file removed, a fallback that could not
take it before the close deadline). While pending it is in exactly one place:
``queued`` (the queue's deque), ``in_flight`` (the batch being written), ``replaying``
(the batch being written, read back from the spool), ``spilling`` (a chunk being
written to the spool), ``spooled``, or ``handing`` (being handed to the fallback).
Each change of place or end is one call here, made under ``lock``, so any snapshot
satisfies ``enqueued == written + dropped + fallback + lost + pending``.

Each record has a sequence number, its place in the order of ``put()``; the records of
one place form runs of consecutive numbers (drops only leave gaps between runs), so
"everything put before now is settled" is one comparison with the oldest pending
number: what ``flush()`` waits on. Records read back from a spool that an earlier
process left were never put here: they have no numbers, and are counted only as
``replayed`` or ``replay_fallback``.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Literal

from pglog._writer.locks import held_here

Outcome = Literal["written", "dropped", "fallback", "lost"]
OUTCOMES: tuple[Outcome, ...] = ("written", "dropped", "fallback", "lost")


class Place(enum.Enum):
    """Where a pending record is, besides the queue's deque."""

    IN_FLIGHT = "in_flight"
    #: In flight, read back from the spool: on disk still, so not counted as in memory.
    REPLAYING = "replaying"
    SPILLING = "spilling"
    SPOOLED = "spooled"
    HANDING = "handing"


#: The places whose records count against the queue's bound: held in memory, with nowhere
#: else to go soon. A chunk being spilled doesn't count: it is on its way to disk, and a
#: caller faster than an fsync must not be dropped meanwhile (memory may then briefly
#: hold one spill chunk more than ``queue_size``).
IN_MEMORY = frozenset({Place.IN_FLIGHT, Place.HANDING})


@dataclass
class Run:
    """Consecutive sequence numbers: ``first`` and the ``count`` after it."""

    first: int
    count: int

    def front(self, count: int) -> Run:
        """The first ``count`` numbers, taken off this run."""
        count = min(count, self.count)
        taken = Run(self.first, count)
        self.first += count
        self.count -= count
        return taken


def _first(run: Run) -> int:
    return run.first


class Ledger:
    """The counts and pending runs of one queue; every method wants ``lock`` held."""

    def __init__(self) -> None:
        #: Reentrant so that a signal handler can let go of it (see ``locks``).
        self.lock = threading.RLock()
        #: Notified whenever pending records reach an end (flush waits on it).
        self.settled = threading.Condition(self.lock)
        self.ends: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        self.runs: dict[Place, list[Run]] = {place: [] for place in Place}
        #: Dropped on arrival (drop_newest, a full queue): never given a number.
        self.dropped_on_arrival = 0
        #: Settled without entering the queue (it was closed): never given a number.
        self.settled_unqueued = 0
        #: Records ever written to the spool (a record replayed and spooled again counts twice).
        self.spooled = 0
        self.replayed = 0
        self.replay_fallback = 0
        #: Records held in memory outside the queue's deque that count against the queue's
        #: bound (see IN_MEMORY). Read without the lock by
        #: the hot path, which tolerates a value one step old.
        self.in_memory = 0
        #: Records of the batch in flight that the spiller may take now (the writer left
        #: it idle): while spilling is on they don't count against the queue's bound, as a
        #: chunk being spilled doesn't (the spiller takes them first).
        self.idle = 0

    def hold(self, place: Place, run: Run) -> None:
        """Records numbered ``run`` are now in ``place``."""
        assert held_here(self.lock)
        if not run.count:
            return
        merged: list[Run] = []
        for held in sorted([*self.runs[place], Run(run.first, run.count)], key=_first):
            if merged and merged[-1].first + merged[-1].count == held.first:
                merged[-1].count += held.count
            else:
                merged.append(held)
        self.runs[place] = merged
        if place in IN_MEMORY:
            self.in_memory += run.count

    def release(self, place: Place, run: Run) -> None:
        """Records numbered ``run`` leave ``place`` (for another place, or an end)."""
        assert held_here(self.lock)
        if not run.count:
            return
        start, end = run.first, run.first + run.count
        kept, released = [], 0
        for held in self.runs[place]:
            held_end = held.first + held.count
            if held_end <= start or held.first >= end:
                kept.append(held)
                continue
            if held.first < start:
                kept.append(Run(held.first, start - held.first))
            if held_end > end:
                kept.append(Run(end, held_end - end))
            released += min(held_end, end) - max(held.first, start)
        assert released == run.count, f"{run} is not all held in {place.value}"
        self.runs[place] = kept
        if place in IN_MEMORY:
            self.in_memory -= run.count

    def end(self, outcome: Outcome, count: int) -> None:
        """``count`` records reached ``outcome`` (already released from their place)."""
        assert held_here(self.lock)
        if count:
            self.ends[outcome] += count
            self.settled.notify_all()

    def held(self, place: Place) -> int:
        return sum(run.count for run in self.runs[place])

    def oldest(self, queue_head: int) -> int:
        """The number of the oldest pending record (``queue_head`` if none is older)."""
        firsts = [run.first for runs in self.runs.values() for run in runs if run.count]
        return min([queue_head, *firsts])

    def snapshot(self, queued: int, taken: int) -> dict[str, int]:
        """The counts, given the queue's depth and how many ever left its head."""
        assert held_here(self.lock)
        held = {place: self.held(place) for place in Place}
        pending = queued + sum(held.values())
        counts: dict[str, int] = {outcome: self.ends[outcome] for outcome in OUTCOMES}
        counts.update(
            enqueued=taken + queued + self.dropped_on_arrival + self.settled_unqueued,
            pending=pending,
            queue_depth=queued,
            in_flight=held[Place.IN_FLIGHT] + held[Place.REPLAYING],
            spool_pending=held[Place.SPOOLED],
            spooled=self.spooled,
            replayed=self.replayed,
            replay_fallback=self.replay_fallback,
        )
        return counts
