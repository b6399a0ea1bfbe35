"""Commit lookup: what became of a COMMIT whose reply was lost, asked of the server.

The connection broke after the batch's transaction began (mid-COPY, before or after the
COMMIT reached the server, or a stall the deadline cut short). The server knows the
transaction's fate: *committed* settles the batch, *aborted* (or an id it no longer
knows) means writing it again. *In progress* means the server has not yet noticed its
client is gone: after a grace period its backend is terminated, which aborts the
transaction. Until the server answers, the batch waits; nothing is written again before.

An id is not forever, though. A server that crashed forgets the ids of transactions
that left nothing durable behind, and gives them again after recovery: "committed" may
then be another transaction's fate. So after a restart "committed" is checked: the
batch's first row is looked for (by its time, logger, process and thread, on the
timestamp index): there, the batch committed; missing, it did not, whatever the id
says. A role that may only insert can't look: it writes the batch again, saying it may
now be stored twice. Without a restart the id is the batch's own and "committed" is
believed as it is: on Citus a committed batch can stay invisible on a worker until the
coordinator's two-phase commit recovery finishes it, and looking for its row then would
write it twice. The backend of a lost connection is terminated only on the server that
gave it.

The same lookup settles a transaction recorded in the spool by a process that stopped
before learning its fate (see ``spool``).
"""

from __future__ import annotations

import enum
import time

from pglog._capture.row import Row
from pglog._writer.delivery import Delivery
from pglog._writer.inflight import Batch
from pglog._writer.parts import Parts

#: How long a lost transaction may stay "in progress" before its backend is terminated.
IN_PROGRESS_GRACE = 2.0


class Verdict(enum.Enum):
    WRITTEN = "written"  # it committed: the batch (or its part) is settled
    AGAIN = "again"  # it did not: write the batch again
    WAIT = "wait"  # still in progress on the server: ask again in a moment
    AWAY = "away"  # the server can't be asked now: back off


class CommitLookup:
    def __init__(self, parts: Parts, delivery: Delivery) -> None:
        self._inflight, self._sink, self._notices, self._counters = parts
        self._delivery = delivery
        self._in_progress: dict[str, float] = {}

    def resolve(self, batch: Batch) -> Verdict:
        """Settle ``batch.unknown``, the transaction of the batch in flight, if the server
        can say what became of it."""
        lost = batch.unknown
        assert lost is not None
        transaction = lost.transaction
        verdict = self.verdict(
            transaction.xid, transaction.server_started, batch.rows[0], transaction.backend_pid
        )
        if verdict in (Verdict.WAIT, Verdict.AWAY):
            return verdict
        batch.unknown = None
        if verdict is Verdict.WRITTEN:
            self._delivery.settle(batch, lost.count)
            self._counters.wrote()
            return verdict
        self._counters.retries += 1  # the rows will be written again
        self._inflight.ended()
        return verdict

    def verdict(
        self, xid: str, server_started: str | None, first_row: Row, backend_pid: int = 0
    ) -> Verdict:
        """What became of transaction ``xid``, given when its server had started and the
        first row it wrote (see the module's docstring)."""
        try:
            status, started_now = self._sink.status(xid)
        except Exception as exc:
            self._delivery.failed(exc)
            self._counters.retries += 1
            return Verdict.AWAY
        restarted = server_started is None or started_now != server_started
        if status == "in progress":
            self._end_if_stuck(xid, 0 if restarted else backend_pid)
            return Verdict.WAIT
        self._in_progress.pop(xid, None)
        if status != "committed" or not first_row:
            if status == "unknown":
                self._say_twice(xid, "its id is no longer known to the server")
            return Verdict.AGAIN
        if not restarted:
            return Verdict.WRITTEN
        try:
            held = self._sink.holds(first_row)
        except Exception as exc:
            self._delivery.failed(exc)
            return Verdict.AWAY
        if held is None:
            self._say_twice(xid, "the server restarted since, and this role may not look")
            return Verdict.AGAIN
        if not held:
            self._notices.say(
                "commit",
                "reused",
                f"pglog: transaction id {xid} says committed, but its rows are not in"
                f" {self._sink.table}: the id was given again after a crash, and the batch"
                " never committed; writing it again",
            )
            return Verdict.AGAIN
        return Verdict.WRITTEN

    def _end_if_stuck(self, xid: str, backend_pid: int) -> None:
        """A transaction in progress for longer than the grace: terminate its backend."""
        now = time.monotonic()
        since = self._in_progress.setdefault(xid, now)
        if now - since >= IN_PROGRESS_GRACE and backend_pid:
            try:
                self._sink.terminate(backend_pid)
            except Exception as exc:
                self._delivery.failed(exc)

    def _say_twice(self, xid: str, why: str) -> None:
        self._notices.say(
            "unknown-commit",
            why,
            f"pglog could not learn whether transaction {xid} committed ({why});"
            " writing its rows again (they may now be stored twice)",
        )
