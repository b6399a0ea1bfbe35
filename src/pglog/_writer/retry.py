"""Retry policy: what an error means for the batch, why it happened, and how long to wait.

Errors are classified by SQLSTATE (appendix A of PostgreSQL's manual); an error without
one comes from the connection itself. ``cause`` says in a few plain words why a
connection failed, for the notice an operator reads: a wrong password and a refused
connection call for different fixes.
"""

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


_RETRY_CLASSES = {"08", "28", "3D", "40", "53", "57", "58"}
# read-only failover, lock not available, object in use
_RETRY_CODES = {"25006", "55P03", "55006"}
_ISOLATE_CLASSES = {"22", "23", "54"}
_MISSING_TABLE_CODES = {"42P01", "3F000"}


def classify(error: BaseException) -> Disposition:
    """Decide by SQLSTATE; an error without one comes from the connection itself.

    A failure to log in (28: a wrong password, a role or database that doesn't exist,
    3D: no such database) is retried, not rejected: nothing is wrong with the batch, and
    the operator's fix should find the records still waiting. So is Citus's internal
    error (XX000) when it reports a lost connection to a worker (see ``_node_lost``):
    its transaction rolled back, and the worker comes back.
    """
    if not isinstance(error, psycopg.Error):
        return Disposition.REJECT
    code = error.sqlstate
    if code is None:
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return Disposition.RETRY
        return Disposition.REJECT
    if code in _RETRY_CODES or code[:2] in _RETRY_CLASSES or _node_lost(error):
        return Disposition.RETRY
    if code in _MISSING_TABLE_CODES:
        return Disposition.RECREATE
    if code[:2] in _ISOLATE_CLASSES:
        return Disposition.ISOLATE
    return Disposition.REJECT


#: What Citus says, as an internal error (XX000), when its connection to a worker failed:
#: libpq's own words, passed on. Remote SQL errors keep their own SQLSTATE instead.
_NODE_LOST = (
    "failure on connection marked as essential",
    "connection to the remote node",
    "server closed the connection",
    "terminating connection",
    "ssl syscall error",
    "ssl error",
    "could not connect",
    "connection not open",
    "connection refused",
    "invalid socket",
    "connection timed out",
    "the database system is",  # starting up, shutting down, in recovery mode, not yet ...
    "postmaster was shut down",
)


def _node_lost(error: psycopg.Error) -> bool:
    """An internal error that is a lost connection to another node (Citus), not a bug."""
    if error.sqlstate != "XX000":
        return False
    text = str(error).lower()
    context = (getattr(error.diag, "context", None) or "").lower()
    return any(words in text for words in _NODE_LOST) or "while executing command on" in context


#: Words in libpq's messages, and what they mean for the person who must fix it.
_CAUSES = (
    (
        ("password authentication failed", "authentication failed", "no password supplied"),
        "authentication failed (check the user and password)",
    ),
    (("no pg_hba.conf entry",), "refused by the server's pg_hba.conf"),
    (("does not exist",), "does not exist (check the database and user names)"),
    (
        (
            "could not translate host name",
            "name or service not known",
            "temporary failure in name resolution",
            "nodename nor servname",
        ),
        "the host name could not be resolved",
    ),
    (("connection refused",), "connection refused (is the server running, on that port?)"),
    (("timeout expired", "timed out", "gave no answer"), "timed out (no answer from the server)"),
    (
        ("server closed the connection", "connection reset", "broken pipe", "terminating"),
        "the server closed the connection",
    ),
    (("too many clients", "remaining connection slots"), "the server has no connection slots left"),
    (
        ("the database system is starting up", "shutting down", "in recovery"),
        "the server is starting up, shutting down or in recovery",
    ),
)


def cause(error: BaseException) -> str:
    """Why ``error`` happened, in a few plain words (never the error's own text)."""
    text = str(error).lower()
    for words, meaning in _CAUSES:
        if any(word in text for word in words):
            return meaning
    code = getattr(error, "sqlstate", None)
    return f"SQLSTATE {code}" if code else type(error).__name__


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
