"""Counters: how the writer is doing, beyond the ledger: attempts, failures, the last error.

Shared by the parts of the writer (the loop, delivery, the commit lookup, upkeep) and
read by ``stats()`` from any thread: plain attributes, each written by the writer
thread only.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass


@dataclass
class Counters:
    retries: int = 0
    failed_batches: int = 0
    batches: int = 0
    pruned: int = 0
    partitions_dropped: int = 0
    last_error: str | None = None
    last_write: dt.datetime | None = None
    #: When the failures since the last successful write began: how long it's been stuck.
    failing_since: dt.datetime | None = None
    #: The same moment on the monotonic clock, for durations in reports.
    failing_began: float = 0.0
    rows_per_second: float = 0.0

    def failed(self, error: str) -> bool:
        """An attempt failed with ``error`` (already safe to show); True if it is the
        first failure since the last write."""
        self.failed_batches += 1
        self.last_error = error
        if self.failing_since is None:
            self.failing_since = dt.datetime.now(dt.timezone.utc)
            self.failing_began = time.monotonic()
            return True
        return False

    def wrote(self) -> bool:
        """A batch was committed; True if that ended a run of failures."""
        self.batches += 1
        self.last_write = dt.datetime.now(dt.timezone.utc)
        recovered = self.failing_since is not None
        self.failing_since = None
        if recovered:
            self.last_error = None
        return recovered

    def failing_for(self) -> float | None:
        """Seconds since the failures began, or None while writes succeed."""
        return None if self.failing_since is None else time.monotonic() - self.failing_began
