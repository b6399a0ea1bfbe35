"""Upkeep: the table's chores, done by the writer between batches, on a timer.

Partitions for the periods ahead (for a partitioned table), one round of retention (old
partitions dropped, one batch of older rows deleted; again at once if there was more,
else in an hour), and the writer's report in ``pglog_writers`` every REPORT_EVERY
seconds (and once more when it stops). Records wait only for as long as one chore
takes. A chore that fails is not a failure of the writes: it is said, and tried again
a minute later.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import psycopg

from pglog._table import partitions, reports, retention
from pglog._table.connection import Connection
from pglog._writer.parts import Parts
from pglog._writer.retry import Disposition, classify

#: Upkeep runs this often (seconds), or again at once while retention has more to delete.
PRUNE_EVERY = 3600.0
#: After upkeep failed (a lock it waited too long for, a lost connection): try again then.
UPKEEP_RETRY = 60.0
#: A reports table missing, or one this role may not touch: reports are given up.
_CLOSED_TO_US = (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege)


class Upkeep:
    def __init__(
        self,
        parts: Parts,
        *,
        retention_days: int | None,
        identity: reports.Identity,
        stats: Callable[[], dict[str, Any]],
    ) -> None:
        self._sink, self._notices, self._counters = parts.sink, parts.notices, parts.counters
        self._retention_days = retention_days
        self._identity = identity
        self._stats = stats
        self._next = 0.0
        self._next_publish = 0.0
        self._rate_mark = (time.monotonic(), 0)
        self._publishing = self._forgetting = True
        parts.sink.on_connect.append(self._create_reports)

    def run(self) -> None:
        """The chores that are due, if the writer is connected."""
        if time.monotonic() >= self._next and self._sink.connected:
            self._maintain()
        self.publish()

    def _maintain(self) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        again = PRUNE_EVERY
        try:
            with self._sink.session() as conn:
                if self._sink.period is not None:
                    partitions.ensure_ahead(conn, self._sink.table, self._sink.period, now)
                if self._forgetting and self._publishing:
                    self._forget_old(conn)
                if self._retention_days is not None:
                    done = retention.keep(conn, self._sink.table, self._retention_days)
                    self._counters.partitions_dropped += len(done.partitions)
                    self._counters.pruned += done.rows
                    if done.more:
                        again = 0.0
        except Exception as exc:  # the writes go on: not a failure of the writer's
            again = UPKEEP_RETRY
            if classify(exc) is not Disposition.RETRY:  # a lost server: the batches say so
                error = self._sink.describe_error(exc)
                self._notices.say(
                    "upkeep", type(exc).__name__, f"pglog table upkeep failed: {error}"
                )
        self._next = time.monotonic() + again

    def publish(self, *, stopped: bool = False) -> None:
        """Every REPORT_EVERY seconds (and at the end): measure the write rate, and publish
        the stats for monitors outside the process (see ``reports``) if connected."""
        now = time.monotonic()
        if now < self._next_publish and not stopped:
            return
        self._next_publish = now + reports.REPORT_EVERY
        stats = self._stats()
        since, before = self._rate_mark
        if now > since:
            self._counters.rows_per_second = (stats["written"] - before) / (now - since)
        self._rate_mark = (now, stats["written"])
        stats["rows_per_second"] = round(self._counters.rows_per_second, 1)
        failing_for = self._counters.failing_for()
        if failing_for is not None:
            stats["failing_for_s"] = round(failing_for, 1)
        if self._counters.last_write is not None:
            age = dt.datetime.now(dt.timezone.utc) - self._counters.last_write
            stats["last_write_age_s"] = round(age.total_seconds(), 1)
        if not (self._publishing and self._sink.connected):
            return
        try:
            with self._sink.session() as conn:
                reports.publish(conn, self._sink.table, self._identity, stats, stopped=stopped)
        except _CLOSED_TO_US:
            self._publishing = False
        except Exception as exc:
            if classify(exc) is not Disposition.RETRY:  # a lost connection: the batches say it
                error = self._sink.describe_error(exc)
                self._notices.say(
                    "publish", type(exc).__name__, f"pglog could not publish its stats: {error}"
                )

    def _create_reports(self, conn: Connection) -> None:
        """Make the reports table if it is missing and this role may: reports are optional."""
        if not self._sink.create_table:
            return
        try:
            reports.create(conn, self._sink.table)
        except _CLOSED_TO_US:
            self._publishing = self._forgetting = False
        except psycopg.Error:
            pass  # busy, or the connection failed (and the next step says so): try when publishing

    def _forget_old(self, conn: Connection) -> None:
        try:
            reports.forget_old(conn, self._sink.table)
        except _CLOSED_TO_US:
            self._forgetting = False
