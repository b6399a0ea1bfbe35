"""DDL under a running application: the log table renamed away while a handler writes.

``ALTER TABLE logs RENAME TO logs_old`` keeps the indexes' names with the renamed
table (``idx_logs_level`` now indexes ``logs_old``), so when pglog creates ``logs``
again, ``CREATE INDEX IF NOT EXISTS idx_logs_level`` finds the name taken and skips
it: the new table has its primary key and none of its five indexes. Partitioned, the
same happens to the partitions (``logs_default``, ``logs_p<date>`` stay attached to
``logs_old``), and the new table has no partition for its rows at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import psycopg
import pytest
from helpers import TABLE, ListHandler, wait_until
from pgserver import PostgresServer

from pglog import DatabaseLogHandler
from pglog._table.schema import INDEX_SUFFIXES

#: Records the producer logs per second while the test renames the table under it.
RATE = 200


class Producer(threading.Thread):
    """Logs "record <n>", n = 0, 1, ..., at about RATE a second until stopped."""

    def __init__(self, handler: DatabaseLogHandler) -> None:
        super().__init__(name="producer", daemon=True)
        self.handler = handler
        self.sent = 0
        self._stop_asked = threading.Event()

    def run(self) -> None:
        log = logging.getLogger("app.producer")
        started = time.monotonic()
        while not self._stop_asked.is_set():
            record = log.makeRecord(
                log.name, logging.INFO, __file__, 0, "record %d", (self.sent,), None
            )
            self.handler.handle(record)  # as a logger with this one handler would
            self.sent += 1
            # Pacing, not synchronisation: the next record is due at sent / RATE.
            self._stop_asked.wait(max(0.0, started + self.sent / RATE - time.monotonic()))

    def stop(self) -> int:
        self._stop_asked.set()
        self.join(10)
        return self.sent


def stored(admin: psycopg.Connection[Any], table: str) -> list[int]:
    """The numbers of the producer's records in ``table``; none if it does not exist."""
    exists = admin.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if exists is None or exists[0] is None:
        return []
    rows = admin.execute(
        f"SELECT message FROM {table} WHERE logger_name = 'app.producer'"
    ).fetchall()
    return [int(message.split()[-1]) for (message,) in rows]


def indexes(admin: psycopg.Connection[Any], table: str) -> list[str]:
    rows = admin.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s"
        " ORDER BY indexname",
        (table,),
    ).fetchall()
    return [str(definition) for (definition,) in rows]


@pytest.mark.parametrize("partition", [None, "day"])
def test_a_table_renamed_under_a_running_handler_is_recreated_with_all_its_indexes(
    partition: str | None, server: PostgresServer, admin: psycopg.Connection[Any]
) -> None:
    """While a producer logs 200 records a second, the table is renamed to logs_old: pglog
    creates logs again with as many indexes as the original had (pg_indexes), the records
    logged after the rename are all in the new table, and every record is stored exactly
    once across the two tables."""
    fallback = ListHandler()
    handler = DatabaseLogHandler(
        server.dsn, table=TABLE, partition=partition, flush_interval=0.05, fallback=fallback
    )
    producer = Producer(handler)
    try:
        producer.start()
        wait_until(lambda: len(stored(admin, TABLE)) >= 100, "the first records", timeout=20)
        original = indexes(admin, TABLE)
        admin.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_old")
        renamed_at = producer.sent  # every record from this number on was logged after it
        wait_until(
            lambda: producer.sent >= renamed_at + 400, "records after the rename", timeout=20
        )
        sent = producer.stop()
        assert handler.flush(30)
        stats = handler.stats()
    finally:
        producer.stop()
        handler.close()

    old, new = stored(admin, f"{TABLE}_old"), stored(admin, TABLE)
    times = Counter(old + new)
    doubled = sorted(n for n, c in times.items() if c > 1)
    missing = sorted(set(range(sent)) - set(times))
    after = list(range(renamed_at, sent))
    recreated = indexes(admin, TABLE)
    print(
        f"\nsent {sent} (renamed at {renamed_at}); in {TABLE}_old {len(old)}, in {TABLE}"
        f" {len(new)}; doubled {len(doubled)}, missing {len(missing)};"
        f" fallback {len(fallback.messages('app.producer'))}; stats fallback"
        f" {stats['fallback']}, written {stats['written']}"
        f"\nindexes before: {len(original)}, on the new table: {len(recreated)} {recreated}"
    )
    assert len(original) == 1 + len(INDEX_SUFFIXES)  # the primary key and pglog's
    problems = []
    if len(recreated) != len(original):
        problems.append(f"the new table has {len(recreated)} indexes, not {len(original)}")
    if doubled or missing:
        problems.append(f"{len(doubled)} records stored twice, {len(missing)} never stored")
    if not set(after) <= set(new):
        problems.append(
            f"{len(set(after) - set(new))} of the {len(after)} records logged after the"
            " rename are not in the new table"
        )
    if fallback.messages("app.producer"):
        problems.append(f"{len(fallback.messages('app.producer'))} records went to the fallback")
    assert not problems, "; ".join(problems)
