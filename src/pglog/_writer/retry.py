"""Retry policy: what a database error means for the batch, and how long to wait to try again."""

from __future__ import annotations

import enum
import random

import psycopg


class Disposition(enum.Enum):
    """What the writer does with a batch whose write raised."""

    RETRY = "retry"  # the database is away or busy: keep the batch, back off, reconnect
    RECREATE = "recreate"  # the table or schema vanished: create it again, then retry
    ISOLATE = "isolate"  # some row is unacceptable: find it, write the others
    REJECT = "reject"  # this batch can't be written here: hand it to the fallback


# SQLSTATE classes and codes, from the PostgreSQL manual's appendix A.
_RETRY_CLASSES = {"08", "40", "53", "57", "58"}
_RETRY_CODES = {"25006", "55P03", "55006"}  # read-only failover, lock not available, object in use
_ISOLATE_CLASSES = {"22", "23", "54"}
_MISSING_TABLE_CODES = {"42P01", "3F000"}


def classify(error: BaseException) -> Disposition:
    """Decide by SQLSTATE; an error without one comes from the connection itself."""
    if not isinstance(error, psycopg.Error):
        return Disposition.REJECT
    code = error.sqlstate
    if code is None:
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return Disposition.RETRY
        return Disposition.REJECT
    if code in _RETRY_CODES or code[:2] in _RETRY_CLASSES:
        return Disposition.RETRY
    if code in _MISSING_TABLE_CODES:
        return Disposition.RECREATE
    if code[:2] in _ISOLATE_CLASSES:
        return Disposition.ISOLATE
    return Disposition.REJECT


class Backoff:
    """Exponential back-off with jitter and a cap.

    Each failure doubles the delay from ``initial`` up to ``cap``; each delay is
    spread by +/- ``jitter`` so that many processes that lost the same server don't
    reconnect in lockstep. ``reset()`` after a success.
    """

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 10.0,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Seconds to wait after one more failure."""
        delay = min(self.cap, self.initial * 2.0 ** min(self.failures, 60))
        self.failures += 1
        return delay * (1.0 + self._rng.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.failures = 0
