"""RecordQueue and the ledger: overflow policies, bounds in records and bytes, the ledger's
invariant through every change of place, and what flush() waits for."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pglog._capture.entry import Captured, named
from pglog._writer.inflight import Abandoned, Batch, InFlight
from pglog._writer.ledger import Ledger, Place, Run
from pglog._writer.queue import RecordQueue
from pglog._writer.sink import Transaction


def entry(n: int, text: str = "") -> Captured:
    fields = (float(n), "INFO", "q", None, None, None, None, None, None, None, None)
    return (*fields, f"{n}{text}", () if not text else None, None, None, None)


def messages(entries: list[Captured]) -> list[str]:
    return [named(e).message for e in entries]


def make_queue(
    maxsize: int, overflow: str, batch_size: int, max_bytes: int = 1 << 30
) -> RecordQueue:
    return RecordQueue(
        Ledger(),
        maxsize=maxsize,
        max_bytes=max_bytes,
        overflow=overflow,  # type: ignore[arg-type]
        batch_size=batch_size,
    )


def in_flight(queue: RecordQueue, limit: int) -> InFlight:
    """Take up to ``limit`` entries as the batch in flight, as the writer does."""
    inflight = InFlight(queue.ledger)
    run, taken = queue.take(limit)
    inflight.load(Batch([named(e) for e in taken], run))
    return inflight


def hand_over(queue: RecordQueue) -> tuple[Run, list[Captured]]:
    """Take everything queued to hand to the fallback, as close() does."""
    return queue.take(queue.maxsize + 1, Place.HANDING)


def handed(queue: RecordQueue, run: Run) -> None:
    with queue.ledger.lock:
        queue.ledger.release(Place.HANDING, run)
        queue.ledger.end("fallback", run.count)


def wait_until_blocked(condition: threading.Condition) -> None:
    """Return once some thread waits on ``condition`` (it has really blocked)."""
    deadline = time.monotonic() + 10
    while not condition._waiters:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the caller never blocked"
        time.sleep(0.001)


def balanced(counts: dict[str, Any]) -> bool:
    return bool(
        counts["enqueued"]
        == counts["written"]
        + counts["dropped"]
        + counts["fallback"]
        + counts["lost"]
        + counts["pending"]
    )


def test_drop_oldest_keeps_the_newest_and_counts() -> None:
    """When full, drop_oldest discards from the head and counts every discard."""
    queue = make_queue(3, "drop_oldest", batch_size=10)
    for n in range(5):
        assert queue.put(entry(n))
    assert messages(queue.take(10)[1]) == ["2", "3", "4"]
    counts = queue.counts()
    assert (counts["enqueued"], counts["dropped"], counts["pending"]) == (5, 2, 3)
    assert queue.take_unreported_drops() == 2
    assert queue.take_unreported_drops() == 0


def test_drop_newest_keeps_the_oldest_and_counts() -> None:
    """When full, drop_newest refuses the incoming entry and counts it."""
    queue = make_queue(3, "drop_newest", batch_size=10)
    for n in range(5):
        queue.put(entry(n))
    assert messages(queue.take(10)[1]) == ["0", "1", "2"]
    assert queue.counts()["dropped"] == 2


def test_block_waits_for_space_then_proceeds() -> None:
    """overflow='block' holds the caller until the writer takes entries, dropping nothing."""
    queue = make_queue(2, "block", batch_size=2)
    queue.put(entry(0))
    queue.put(entry(1))
    done = threading.Event()

    def third() -> None:
        queue.put(entry(2))
        done.set()

    caller = threading.Thread(target=third)
    caller.start()
    wait_until_blocked(queue._space)
    inflight = in_flight(queue, 2)
    assert inflight.batch is not None
    assert [e.message for e in inflight.batch.entries] == ["0", "1"]
    assert not done.is_set()  # in flight still counts against the bound
    inflight.settle(2)
    caller.join(10)
    assert done.is_set()
    assert messages(queue.take(2)[1]) == ["2"]
    assert queue.counts()["dropped"] == 0


def test_block_is_released_by_close() -> None:
    """A caller blocked on a full queue returns (refused) when the queue closes."""
    queue = make_queue(1, "block", batch_size=1)
    queue.put(entry(0))
    results: list[bool] = []
    caller = threading.Thread(target=lambda: results.append(queue.put(entry(1))))
    caller.start()
    wait_until_blocked(queue._space)
    queue.close()
    caller.join(10)
    assert results == [False]
    assert balanced(queue.counts())


def test_the_ledger_balances_through_every_transition() -> None:
    """enqueued == written + dropped + fallback + lost + pending after each kind of step."""
    queue = make_queue(10, "drop_oldest", batch_size=4)
    for n in range(12):
        queue.put(entry(n))
        assert balanced(queue.counts())
    inflight = in_flight(queue, 4)
    assert balanced(queue.counts())
    inflight.settle(2)
    assert balanced(queue.counts())
    portion = inflight.take(2)
    assert portion is not None
    assert balanced(queue.counts())
    inflight.handed(portion, "fallback")
    assert balanced(queue.counts())
    run, rest = hand_over(queue)
    assert len(rest) == 6
    assert balanced(queue.counts())
    assert queue.flush(time.monotonic() + 0.01) is False  # handed over is not settled yet
    handed(queue, run)
    counts = queue.counts()
    assert balanced(counts)
    assert counts["pending"] == 0


def test_flush_is_not_fooled_by_drops_behind_the_batch_in_flight() -> None:
    """Entries dropped from the queue don't count as the older batch in flight being settled."""
    queue = make_queue(4, "drop_oldest", batch_size=2)
    for n in range(4):
        queue.put(entry(n))
    inflight = in_flight(queue, 2)  # 0 and 1 in flight
    for n in range(4, 8):
        queue.put(entry(n))  # drops 2, 3, 4, 5 from the queue
    assert queue.counts()["dropped"] == 4
    assert queue.flush(time.monotonic() + 0.05) is False
    inflight.settle(2)
    in_flight(queue, 2).settle(2)
    assert queue.flush(time.monotonic() + 5)


def test_flush_returns_false_when_the_writer_backs_off() -> None:
    """A writer that starts backing off after flush() began ends the wait early."""
    queue = make_queue(10, "drop_oldest", batch_size=10)
    queue.put(entry(0))
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(queue.flush(time.monotonic() + 60, until_backoff=True))
    )
    waiter.start()
    wait_until_blocked(queue.ledger.settled)
    queue.pause(0.01)
    waiter.join(10)
    assert result == [False]


def test_close_takes_over_a_batch_mid_attempt_and_the_writer_lets_go() -> None:
    """close() takes the batch in flight even while an attempt is under way (a stalled
    network); what the writer settles afterwards changes nothing: one fate per record."""
    queue = make_queue(10, "drop_oldest", batch_size=2)
    for n in range(4):
        queue.put(entry(n))
    inflight = in_flight(queue, 2)
    inflight.begin(2)
    inflight.began(Transaction("1234", 99, "started"))
    taken = inflight.take_over()
    assert taken is not None
    assert taken.transaction is not None
    assert (taken.transaction.xid, taken.sending, [e.message for e in taken.entries]) == (
        "1234",
        True,
        ["0", "1"],
    )
    assert inflight.settle(2) == 0  # the writer's COMMIT came back too late
    with queue.ledger.lock:
        queue.ledger.release(Place.IN_FLIGHT, taken.run)
        queue.ledger.end("fallback", 2)
    counts = queue.counts()
    assert (counts["written"], counts["fallback"], counts["in_flight"]) == (0, 2, 0)
    assert balanced(counts)


def test_the_spiller_takes_the_batch_in_flight_only_while_the_writer_leaves_it_idle() -> None:
    """From the start of an attempt until the writer has dealt with its failure (said it,
    chosen the fallback) the batch is the writer's: the spiller may take it only once the
    writer leaves it idle (backing off, or connecting for the next attempt)."""
    queue = make_queue(10, "drop_oldest", batch_size=2)
    for n in range(4):
        queue.put(entry(n))
    inflight = in_flight(queue, 2)
    inflight.begin(2)
    inflight.ended()
    assert inflight.take_idle() is None  # the failed attempt is still being dealt with
    inflight.idle()
    inflight.begin(2)
    assert inflight.take_idle() is None
    inflight.idle()
    taken = inflight.take_idle()
    assert taken is not None
    with pytest.raises(Abandoned):
        inflight.begin(2)
    assert inflight.take(2) is None  # nothing left for the writer to hand on
    counts = queue.counts()
    assert (counts["in_flight"], queue.ledger.held(Place.SPILLING)) == (0, 2)
    assert balanced(counts)


def test_an_idle_batch_in_flight_leaves_room_while_spilling_is_on() -> None:
    """A batch in flight as big as the spill mark, beside a queue at the mark: memory is
    full, and the newcomer would be dropped before the spiller could wake. While the
    writer leaves the batch idle (the spiller takes it first) it leaves room; not while
    an attempt is under way, nor when spilling is off (a resting spool)."""
    queue = make_queue(10, "drop_oldest", batch_size=5)
    queue.set_spill_mark(5)
    for n in range(5):
        queue.put(entry(n))
    inflight = in_flight(queue, 5)
    for n in range(5, 10):
        queue.put(entry(n))
    inflight.begin(5)
    queue.put(entry(10))
    assert queue.counts()["dropped"] == 1
    inflight.idle()
    queue.put(entry(11))
    assert queue.counts()["dropped"] == 1
    queue.set_spill_mark(None)
    queue.put(entry(12))
    assert queue.counts()["dropped"] == 3  # back within the bound: 11 over, and room for 12
    assert balanced(queue.counts())


def test_entries_taken_to_be_handed_on_are_the_takers_alone() -> None:
    """Entries taken to be handed on leave the batch at once: close() then takes over
    only the rest, and they stay pending (handing) until handed."""
    queue = make_queue(10, "drop_oldest", batch_size=3)
    for n in range(3):
        queue.put(entry(n))
    inflight = in_flight(queue, 3)
    portion = inflight.take(1)
    assert portion is not None
    rest = inflight.take_over()
    assert rest is not None
    assert ([e.message for e in portion.entries], [e.message for e in rest.entries]) == (
        ["0"],
        ["1", "2"],
    )
    assert queue.flush(time.monotonic() + 0.01) is False
    inflight.handed(portion, "fallback")
    counts = queue.counts()
    assert (counts["fallback"], counts["in_flight"], counts["pending"]) == (1, 2, 2)
    assert balanced(counts)


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest", "block"])
def test_put_after_close_is_refused(policy: str) -> None:
    """A closed queue refuses entries under every policy."""
    queue = make_queue(2, policy, batch_size=1)
    queue.close()
    assert queue.put(entry(0)) is False
    assert queue.put_weighed(entry(1, "x" * 1000)) is False
    assert queue.counts()["enqueued"] == 0


def test_heavy_records_are_bounded_in_bytes_as_well_as_in_number() -> None:
    """Records over the light limit count against max_bytes: 10 KB records fill a 64 KB
    queue after six, whatever queue_size says; the overflow policy then drops (counted)."""
    queue = make_queue(100_000, "drop_oldest", batch_size=1000, max_bytes=64 * 1024)
    for n in range(20):
        big = entry(n, "x" * 10_000)
        assert queue.put_weighed(big)
    counts = queue.counts()
    assert counts["queue_depth"] == 6
    assert counts["dropped"] == 14
    assert balanced(counts)
    assert messages(queue.take(100)[1])[0].startswith("14")


def test_a_record_bigger_than_max_bytes_alone_still_gets_in() -> None:
    """One record larger than the whole byte bound is kept when nothing else weighed is
    queued: the bound limits many big records, it never refuses one."""
    queue = make_queue(10, "block", batch_size=10, max_bytes=1000)
    huge = entry(0, "y" * 50_000)
    assert queue.put_weighed(huge)
    assert queue.counts()["queue_depth"] == 1


def test_ledger_runs_merge_and_split_as_records_move() -> None:
    """Runs held in one place merge when adjacent and split when a part leaves from the
    middle; the oldest pending number is always the least first number."""
    ledger = Ledger()
    with ledger.lock:
        ledger.hold(Place.SPOOLED, Run(0, 100))
        ledger.hold(Place.SPOOLED, Run(100, 50))
        assert ledger.runs[Place.SPOOLED] == [Run(0, 150)]
        ledger.release(Place.SPOOLED, Run(40, 20))
        assert ledger.runs[Place.SPOOLED] == [Run(0, 40), Run(60, 90)]
        ledger.end("lost", 20)
        ledger.release(Place.SPOOLED, Run(0, 40))
        assert ledger.oldest(1000) == 60
        with pytest.raises(AssertionError):
            ledger.release(Place.SPOOLED, Run(0, 1))
