"""A model-based test: random sequences of logging, flushing and faults, checked against the
simplest model there is: every record emitted is stored exactly once, or is accounted for
(handed to the fallback, or counted as lost or dropped, and only when a fault allows it).

The faults are real: a proxy that cuts connections at chosen moments, refuses them, or
stalls with every socket open; a spool on a tiny disk that fills up; spool files removed;
a password changed under the running handler; the table renamed away; the handler closed
by a reconfiguration (under logging's lock) and used again; the application restarted,
also in the middle of a stall. The ledger is checked after every step."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import psycopg
from disks import Tmpfs, fill, release
from faultproxy import FaultProxy
from helpers import ListHandler
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pgserver import PostgresServer
from psycopg import sql

from pglog import DatabaseLogHandler

TABLE = "logs"
ROLE, PASSWORD = "model", "s3cret-model"


class DeliveryMachine(RuleBasedStateMachine):
    """One handler, one server behind a proxy; Hypothesis chooses what happens next."""

    server: PostgresServer

    def __init__(self) -> None:
        super().__init__()
        self.proxy = FaultProxy(self.server.port)
        with psycopg.connect(self.server.dsn, autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'logs%'"
            ).fetchall():
                conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(PASSWORD)
                )
            )
        self.dsn = self.proxy.dsn.replace("postgres@", f"{ROLE}:{PASSWORD}@")
        self.fallback = ListHandler()
        self.disk = Tmpfs("4m")
        self.spool_dir = self.disk.path / "spool"
        self.filler: Path | None = None
        self.accounted = 0  # counted lost or dropped by handlers replaced since
        self.removed: set[str] = set()  # messages in spool files the test removed
        self.handler = self._handler()
        self.logger = logging.getLogger("model")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.handlers[:] = [self.handler]
        self.emitted: list[str] = []
        self.down = self.stalled = self.password_wrong = False

    def _handler(self) -> DatabaseLogHandler:
        return DatabaseLogHandler(
            self.dsn,
            table=TABLE,
            batch_size=20,
            flush_interval=0.02,
            queue_size=300,
            spool_dir=self.spool_dir,
            close_timeout=2,
            connect_timeout=1,
            write_timeout=1,
            fallback=self.fallback,
        )

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.server.dsn, autocommit=True) as conn:
            conn.execute(statement)

    @property
    def reachable(self) -> bool:
        return not (self.down or self.stalled or self.password_wrong)

    @rule(count=st.integers(min_value=1, max_value=150))
    def emit(self, count: int) -> None:
        for _ in range(count):
            message = f"m{len(self.emitted)}"
            self.logger.info(message)
            self.emitted.append(message)

    @precondition(lambda self: self.reachable)
    @rule()
    def flush(self) -> None:
        assert self.handler.flush(30)

    @rule(trigger=st.sampled_from(["before_commit", "after_commit", "mid_copy"]))
    def cut_next(self, trigger: Any) -> None:
        self.proxy.arm(trigger)

    @precondition(lambda self: not self.down and not self.stalled)
    @rule()
    def outage(self) -> None:
        self.proxy.refuse()
        self.down = True

    @precondition(lambda self: self.down)
    @rule()
    def restore(self) -> None:
        self.proxy.refuse(False)
        self.down = False

    @precondition(lambda self: not self.down and not self.stalled)
    @rule()
    def stall(self) -> None:
        """Every socket stays open, nothing gets through: a hung middlebox."""
        self.proxy.stall()
        self.stalled = True

    @precondition(lambda self: self.stalled)
    @rule()
    def resume(self) -> None:
        self.proxy.resume(cut_stalled=True)
        self.stalled = False

    @precondition(lambda self: not self.password_wrong)
    @rule()
    def change_the_password(self) -> None:
        """New connections fail to authenticate until the password is put back."""
        self._admin(sql.SQL("ALTER ROLE {} PASSWORD 'changed'").format(sql.Identifier(ROLE)))
        self.password_wrong = True

    @precondition(lambda self: self.password_wrong)
    @rule()
    def put_the_password_back(self) -> None:
        self._admin(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(PASSWORD))
        )
        self.password_wrong = False

    @rule()
    def rename_the_table(self) -> None:
        """DDL under a running application: the table goes away under another name."""
        self._admin(
            sql.SQL("ALTER TABLE IF EXISTS {} RENAME TO {}").format(
                sql.Identifier(TABLE), sql.Identifier(f"logs_gone_{uuid.uuid4().hex[:6]}")
            )
        )

    @precondition(lambda self: self.filler is None)
    @rule()
    def fill_the_disk(self) -> None:
        self.spool_dir.mkdir(exist_ok=True)
        self.filler = self.disk.path / "filler"
        fill(self.filler)

    @precondition(lambda self: self.filler is not None)
    @rule()
    def free_the_disk(self) -> None:
        assert self.filler is not None
        release(self.filler)
        self.filler = None

    @rule()
    def remove_the_spool_files(self) -> None:
        """A tmp cleaner: what was only in those files is lost (this process counts its
        own so; a dead one's can be known only from the files themselves)."""
        for path in self.spool_dir.glob("*.rows"):
            with contextlib.suppress(OSError):
                for line in path.read_text().splitlines():
                    entry = json.loads(line)
                    if isinstance(entry, list):
                        self.removed.add(str(entry[11]))
            path.unlink(missing_ok=True)

    @rule(count=st.integers(min_value=0, max_value=50))
    def reconfigure_logging(self, count: int) -> None:
        """As dictConfig does: the handler closed under logging's module lock; the logger
        keeps it, and the next records must still be stored."""
        with logging._lock:  # type: ignore[attr-defined]
            self.handler.close()
        if count:
            self.emit(count)

    @precondition(lambda self: not self.stalled and self.filler is None)
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
                stats = self.handler.stats()
                code = 0 if stats["fallback"] + stats["lost"] + stats["dropped"] == 0 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's records did not all land"
        self.emitted.extend(messages)

    @rule()
    def restart_the_application(self) -> None:
        """close() and a new handler on the same spool, as a process restart would (also
        in the middle of a stall or an outage)."""
        self.handler.close()
        stats = self.handler.stats()
        assert stats["pending"] == stats["spool_pending"], "close() left records in memory"
        self.accounted += stats["lost"] + stats["dropped"]
        self.handler = self._handler()
        self.logger.handlers[:] = [self.handler]

    @invariant()
    def ledger_balances(self) -> None:
        s = self.handler.stats()
        settled = s["written"] + s["dropped"] + s["fallback"] + s["lost"]
        assert s["enqueued"] == settled + s["pending"]

    def teardown(self) -> None:
        self.proxy.disarm()
        self.proxy.refuse(False)
        self.proxy.resume(cut_stalled=True)
        if self.filler is not None:
            release(self.filler)
        if self.password_wrong:
            self.put_the_password_back()
        try:
            self.handler.start()
            assert self.handler.flush(60)
            self.handler.close()
            final = self.handler.stats()
            self.accounted += final["lost"] + final["dropped"]
            replayer = self._handler()  # anything an earlier handler spooled at close
            replayer.start()
            replayer.close_timeout = 30
            replayer.close()
            stored = self._stored()
            handed_over = self.fallback.messages("model")
            counts = collections.Counter(stored + handed_over)
            twice = [m for m, n in counts.items() if n > 1]
            missing = set(self.emitted) - set(counts) - self.removed
            assert not twice, f"stored or handed over twice: {twice[:5]}"
            assert len(missing) <= self.accounted, f"lost, uncounted: {sorted(missing)[:5]}"
            assert set(counts) <= set(self.emitted)
        finally:
            self.proxy.close()
            self.disk.unmount()

    def _stored(self) -> list[str]:
        with psycopg.connect(self.server.dsn) as conn:
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT c.relname FROM pg_class c WHERE c.relname LIKE 'logs%'"
                    " AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                ).fetchall()
            ]
            return [
                str(message)
                for name in tables
                for (message,) in conn.execute(
                    sql.SQL("SELECT message FROM {}").format(sql.Identifier(name))
                ).fetchall()
            ]


def test_random_faults_leave_every_record_stored_once_or_counted(server: PostgresServer) -> None:
    """Random interleavings of emit, flush, cuts, outages, stalls, a full disk, removed
    spool files, a wrong password, a renamed table, reconfigurations, forks and restarts.
    CI runs a short form; PGLOG_MODEL_EXAMPLES=500 makes it a soak run."""
    server.add_password_role(ROLE, PASSWORD)
    DeliveryMachine.server = server
    machine = DeliveryMachine.TestCase
    machine.settings = settings(
        max_examples=int(os.environ.get("PGLOG_MODEL_EXAMPLES", "25")),
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    machine().runTest()
