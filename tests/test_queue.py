"""RecordQueue: overflow policies, the ledger's invariant, and what flush() waits for."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pglog._capture.entry import Captured, Entry, named
from pglog._writer.queue import RecordQueue


def entry(n: int) -> Entry:
    fields = (float(n), "INFO", "q", None, None, None, None, None, None, None, None)
    return Entry._make((*fields, str(n), None, None, None, None))


def messages(entries: list[Captured]) -> list[str]:
    return [named(e).message for e in entries]


def wait_until_blocked(condition: threading.Condition) -> None:
    """Return once some thread waits on ``condition`` (it has really blocked)."""
    deadline = time.monotonic() + 10
    while not condition._waiters:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the caller never blocked"
        time.sleep(0.001)


def balanced(counts: dict[str, Any]) -> bool:
    return bool(
        counts["enqueued"]
        == counts["written"] + counts["dropped"] + counts["fallback"] + counts["pending"]
    )


def test_drop_oldest_keeps_the_newest_and_counts() -> None:
    """When full, drop_oldest discards from the head and counts every discard."""
    queue = RecordQueue(3, "drop_oldest", batch_size=10)
    for n in range(5):
        assert queue.put(entry(n))
    assert messages(queue.take(10)) == ["2", "3", "4"]
    counts = queue.counts()
    assert (counts["enqueued"], counts["dropped"], counts["pending"]) == (5, 2, 3)
    assert queue.take_unreported_drops() == 2
    assert queue.take_unreported_drops() == 0


def test_drop_newest_keeps_the_oldest_and_counts() -> None:
    """When full, drop_newest refuses the incoming entry and counts it."""
    queue = RecordQueue(3, "drop_newest", batch_size=10)
    for n in range(5):
        queue.put(entry(n))
    assert messages(queue.take(10)) == ["0", "1", "2"]
    assert queue.counts()["dropped"] == 2


def test_block_waits_for_space_then_proceeds() -> None:
    """overflow='block' holds the caller until the writer takes entries, dropping nothing."""
    queue = RecordQueue(2, "block", batch_size=2)
    queue.put(entry(0))
    queue.put(entry(1))
    done = threading.Event()

    def third() -> None:
        queue.put(entry(2))
        done.set()

    caller = threading.Thread(target=third)
    caller.start()
    wait_until_blocked(queue._space)
    assert messages(queue.take(2)) == ["0", "1"]
    assert not done.is_set()  # in flight still counts against the bound
    queue.settle(2, "written")
    caller.join(10)
    assert done.is_set()
    assert messages(queue.take(2)) == ["2"]
    assert queue.counts()["dropped"] == 0


def test_block_is_released_by_close() -> None:
    """A caller blocked on a full queue returns (refused) when the queue closes."""
    queue = RecordQueue(1, "block", batch_size=1)
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
    """enqueued == written + dropped + fallback + pending after each kind of step."""
    queue = RecordQueue(10, "drop_oldest", batch_size=4)
    for n in range(12):
        queue.put(entry(n))
        assert balanced(queue.counts())
    queue.take(4)
    assert balanced(queue.counts())
    queue.settle(2, "written")
    assert balanced(queue.counts())
    queue.settle(2, "fallback")
    assert balanced(queue.counts())
    rest = queue.drain()
    assert len(rest) == 6
    assert balanced(queue.counts())
    assert queue.flush(time.monotonic() + 0.01) is False  # handed over is not settled yet
    queue.settle_drained("fallback")
    counts = queue.counts()
    assert balanced(counts)
    assert counts["pending"] == 0


def test_flush_is_not_fooled_by_drops_behind_the_batch_in_flight() -> None:
    """Entries dropped from the queue don't count as the older batch in flight being settled."""
    queue = RecordQueue(4, "drop_oldest", batch_size=2)
    for n in range(4):
        queue.put(entry(n))
    queue.take(2)  # 0 and 1 in flight
    for n in range(4, 8):
        queue.put(entry(n))  # drops 2, 3, 4, 5 from the queue
    assert queue.counts()["dropped"] == 4
    assert queue.flush(time.monotonic() + 0.05) is False
    queue.settle(2, "written")
    queue.take(2)
    queue.settle(2, "written")
    assert queue.flush(time.monotonic() + 5)


def test_flush_returns_false_when_the_writer_backs_off() -> None:
    """A writer that starts backing off after flush() began ends the wait early."""
    queue = RecordQueue(10, "drop_oldest", batch_size=10)
    queue.put(entry(0))
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(queue.flush(time.monotonic() + 60, until_backoff=True))
    )
    waiter.start()
    wait_until_blocked(queue._settled)
    queue.pause(0.01)
    waiter.join(10)
    assert result == [False]


def test_drain_leaves_a_batch_being_sent_with_the_writer() -> None:
    """close() can't take a batch whose COPY is under way; its fate is the database's."""
    queue = RecordQueue(10, "drop_oldest", batch_size=2)
    for n in range(4):
        queue.put(entry(n))
    queue.take(2)
    assert queue.begin_send()
    assert messages(queue.drain()) == ["2", "3"]
    queue.settle_drained("fallback")
    assert queue.counts()["in_flight"] == 2
    queue.end_send()
    assert messages(queue.drain()) == ["0", "1"]
    queue.settle_drained("fallback")
    assert queue.begin_send() is False
    assert balanced(queue.counts())


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest", "block"])
def test_put_after_close_is_refused(policy: str) -> None:
    """A closed queue refuses entries under every policy."""
    queue = RecordQueue(2, policy, batch_size=1)  # type: ignore[arg-type]
    queue.close()
    assert queue.put(entry(0)) is False
    assert queue.counts()["enqueued"] == 0
