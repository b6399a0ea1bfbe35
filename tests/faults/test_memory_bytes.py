"""The memory queued records hold is bounded in bytes (``queue_max_bytes``, 64 MiB by
default), not only in records (``queue_size``, 100,000 by default).

With the database down, 100,000 records of 10 KB each fit within ``queue_size`` and
would take a gigabyte; the bound in bytes must drop records (counted) long before
that. The program measures its own resident memory (VmRSS) as it logs.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from helpers import closed_port_dsn, run_python

from pglog import DatabaseLogHandler

MIB = 1 << 20
#: queue_max_bytes' default, twice (the bytes pglog counts are an estimate), and slack
#: for the interpreter's own growth and the allocator.
ALLOWED_GROWTH = 2 * 64 * MIB + 32 * MIB
RECORDS = 100_000
RECORD_BYTES = 10_000

CHILD = """
import json, logging
from pglog import DatabaseLogHandler

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")

handler = DatabaseLogHandler(
    {dsn!r}, table="big", fallback=None, flush_interval=0.05, close_timeout=0.5,
)
log = logging.getLogger("app")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(handler)
log.info("the writer starts, and finds the database down")
payload = "x" * {size}
before = peak = rss()
for i in range({records}):
    log.info(f"{{i:06d}} {{payload}}")  # a 10 KB string of its own per record (an f-string)
    if i % 1000 == 0:
        peak = max(peak, rss())
peak = max(peak, rss())
stats = handler.stats()
handler.close()
print(json.dumps({{"before": before, "peak": peak, "stats": stats}}))
"""


def test_records_queued_against_a_down_database_are_bounded_in_bytes() -> None:
    """Nothing listens on the database's port; 100,000 records of 10 KB (within the default
    queue_size) must not grow the process by more than 2 x 64 MiB + slack: the queue
    drops by bytes instead, and counts it, and the ledger balances."""
    code = CHILD.format(dsn=closed_port_dsn(), size=RECORD_BYTES, records=RECORDS)
    result = run_python(code, timeout=120)
    assert result.returncode == 0, result.stderr
    measured: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    stats = measured["stats"]
    growth = measured["peak"] - measured["before"]
    print(
        f"\nRSS growth {growth / MIB:.0f} MiB (allowed {ALLOWED_GROWTH / MIB:.0f} MiB);"
        f" enqueued {stats['enqueued']}, dropped {stats['dropped']},"
        f" pending {stats['pending']}, lost {stats.get('lost', 0)}"
    )
    settled = stats["written"] + stats["dropped"] + stats["fallback"] + stats.get("lost", 0)
    assert stats["enqueued"] == settled + stats["pending"] == RECORDS + 1
    assert growth <= ALLOWED_GROWTH, f"RSS grew by {growth / MIB:.0f} MiB"
    assert stats["dropped"] > 0


@pytest.mark.parametrize("extra", [None, {"user_id": 42}], ids=["plain", "with-extras"])
def test_a_long_argument_is_weighed_whether_or_not_the_record_has_extras(
    extra: dict[str, Any] | None,
) -> None:
    """Twenty records whose one argument is a 1 MB string, against a down database, with
    queue_max_bytes of 4 MB: the queue must refuse most of them by bytes. A record with
    scalar extras (structured logging) was counted light whatever its arguments held: all
    twenty queued, 20 MB against a bound of 4."""
    handler = DatabaseLogHandler(
        closed_port_dsn(),
        table="big",
        fallback=None,
        overflow="drop_newest",
        queue_max_bytes=4 << 20,
        flush_interval=3600,
        close_timeout=0.2,
    )
    log = logging.getLogger(f"weighed.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        for i in range(20):
            log.info("%s", f"{i:02d}" + "x" * 1_000_000, extra=extra)
        stats = handler.stats()
    finally:
        log.removeHandler(handler)
        handler.close()
    # The queue holds four (4 MB); the writer may have taken up to four of them into its
    # batch in flight before that, so at least twelve are refused.
    assert stats["dropped"] >= 12, stats
    assert stats["enqueued"] == 20, stats
