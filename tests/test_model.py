"""A model-based test: random sequences of logging, flushing, outages and restores, checked
against the simplest model there is: every record emitted is stored exactly once, or is
accounted for by the fallback."""

from __future__ import annotations

import collections
import logging
import os
import tempfile
from typing import Any

import psycopg
from faultproxy import FaultProxy
from helpers import ListHandler
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pgserver import PostgresServer

from pglog import DatabaseLogHandler

TABLE = "logs"


class DeliveryMachine(RuleBasedStateMachine):
    """One handler, one server behind a proxy; Hypothesis chooses what happens next."""

    server: PostgresServer

    def __init__(self) -> None:
        super().__init__()
        self.proxy = FaultProxy(self.server.port)
        with psycopg.connect(self.server.dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.fallback = ListHandler()
        self.spool_dir = tempfile.mkdtemp(prefix="pglog-model-")
        self.handler = self._handler()
        self.logger = logging.getLogger("model")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.handlers[:] = [self.handler]
        self.emitted: list[str] = []
        self.down = False

    def _handler(self) -> DatabaseLogHandler:
        return DatabaseLogHandler(
            self.proxy.dsn,
            table=TABLE,
            batch_size=20,
            flush_interval=0.02,
            queue_size=200,
            overflow="block",
            spool_dir=self.spool_dir,
            close_timeout=2,
            fallback=self.fallback,
        )

    @rule(count=st.integers(min_value=1, max_value=150))
    def emit(self, count: int) -> None:
        for _ in range(count):
            message = f"m{len(self.emitted)}"
            self.logger.info(message)
            self.emitted.append(message)

    @precondition(lambda self: not self.down)
    @rule()
    def flush(self) -> None:
        assert self.handler.flush(30)

    @rule(trigger=st.sampled_from(["before_commit", "after_commit", "mid_copy"]))
    def cut_next(self, trigger: Any) -> None:
        self.proxy.arm(trigger)

    @precondition(lambda self: not self.down)
    @rule()
    def outage(self) -> None:
        self.proxy.refuse()
        self.down = True

    @precondition(lambda self: self.down)
    @rule()
    def restore(self) -> None:
        self.proxy.refuse(False)
        self.down = False

    @rule(count=st.integers(min_value=1, max_value=100))
    def fork_a_child_that_logs(self, count: int) -> None:
        """A forked child logs, closes its handler (writing, or spooling if the database is
        away) and leaves with os._exit, as a worker process would."""
        messages = [f"c{len(self.emitted) + i}" for i in range(count)]
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                for message in messages:
                    self.logger.info(message)
                self.handler.close()
                code = 0 if self.handler.stats()["fallback"] == 0 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's records reached its fallback"
        self.emitted.extend(messages)

    @rule()
    def restart_the_application(self) -> None:
        """close() and a new handler on the same spool, as a process restart would."""
        self.handler.close()
        self.handler = self._handler()
        self.logger.handlers[:] = [self.handler]

    @invariant()
    def ledger_balances(self) -> None:
        s = self.handler.stats()
        assert s["enqueued"] == s["written"] + s["dropped"] + s["fallback"] + s["pending"]
        assert s["dropped"] == 0  # overflow="block" and a spool: nothing may be dropped

    def teardown(self) -> None:
        self.proxy.disarm()
        self.proxy.refuse(False)
        try:
            self.handler.start()
            assert self.handler.flush(60)
            self.handler.close()
            replayer = self._handler()  # anything an earlier handler spooled at close
            replayer.start()
            replayer.close()
            with psycopg.connect(self.server.dsn) as conn:
                exists = conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()
                query = f"SELECT message FROM {TABLE}"
                stored = [m for (m,) in conn.execute(query)] if exists != (None,) else []
            handed_over = self.fallback.messages("model")
            counts = collections.Counter(stored + handed_over)
            twice = [m for m, n in counts.items() if n > 1]
            lost = set(self.emitted) - set(counts)
            assert not twice, f"stored or handed over twice: {twice[:5]}"
            assert not lost, f"lost: {sorted(lost)[:5]}"
            assert len(counts) == len(self.emitted)
        finally:
            self.proxy.close()


def test_delivery_model(server: PostgresServer) -> None:
    """Random interleavings of emit, flush, cuts, outages, restores, forks and restarts. CI
    runs a short form; PGLOG_MODEL_EXAMPLES=500 makes it a soak run."""
    DeliveryMachine.server = server
    machine = DeliveryMachine.TestCase
    machine.settings = settings(
        max_examples=int(os.environ.get("PGLOG_MODEL_EXAMPLES", "25")),
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    machine().runTest()
