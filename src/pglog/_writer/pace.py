"""Pace: how many rows one transaction may carry, so that it ends within ``write_timeout``.

A COPY that is legitimately slower than ``write_timeout`` (a slow trigger, a server under
load) is given up as a stall, looked up, aborted, and would be sent again whole, with
the same timeout, for ever: nothing written although the server takes every row. So a
transaction cut short by the timeout halves the rows the next one may carry, down to
one; and one that carried all it might in under half of ``write_timeout`` doubles that
again, so a server that is quick again soon gets whole batches back. A stalled network
can't be told from a slow COPY and halves it too; that costs a few quick transactions
once the network is back.
"""

from __future__ import annotations


class Pace:
    """The rows per transaction, learnt from how long transactions take."""

    def __init__(self, write_timeout: float) -> None:
        self._quick = write_timeout / 2
        #: The most rows one transaction may carry; None: the whole batch.
        self.limit: int | None = None

    def rows(self, available: int) -> int:
        """How many of ``available`` rows the next transaction carries."""
        return available if self.limit is None else min(available, self.limit)

    def timed_out(self, count: int) -> bool:
        """A transaction of ``count`` rows outlived ``write_timeout``; True if the next
        carries fewer."""
        if count <= 1:
            return False
        self.limit = count // 2
        return True

    def wrote(self, count: int, seconds: float) -> None:
        """A transaction of ``count`` rows committed in ``seconds``."""
        if self.limit is not None and count >= self.limit and seconds < self._quick:
            self.limit *= 2
