"""A slow fallback never stretches close() past close_timeout.

close() hands what it could not write to the fallback, and today hands over every
record however long that takes. When the writer thread is stuck (connecting to a
server that never answers), close() does it itself: a fallback whose emit takes 20 ms
holds close() for 20 ms a record, and a stderr read slowly holds it as long as the
reader takes. When the writer is free (the database refuses connections), the writer
does it, and close() returns on time, but with the records neither handed over nor
counted: still "pending" after close(), and handed over after it returned.

The contract: handing over stops at the deadline, the records not handed over are
counted as ``lost`` (``enqueued == written + dropped + fallback + lost + pending``,
pending 0 once closed), and a line on stderr says how many could not be handed over.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import HandlerFactory
from helpers import Blackhole, closed_port_dsn

from faults.kit import balanced, ledger

CLOSE_TIMEOUT = 1.0
SLACK = 1.0


class SlowHandler(logging.Handler):
    """A fallback that takes 20 ms to emit a record (a remote syslog, a slow disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self._slow = threading.Event()  # never set: waiting on it is how emit is slow

    def emit(self, record: logging.LogRecord) -> None:
        self._slow.wait(0.02)
        self.messages.append(record.getMessage())


@pytest.fixture(params=["refused", "never answers"])
def down_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database that is down: nothing listens on its port (the writer fails at once and
    is free), or the server accepts and never answers (the writer is stuck connecting)."""
    if request.param == "refused":
        yield closed_port_dsn()
        return
    hole = Blackhole()
    yield hole.dsn
    hole.close()


#: What the records handed to stderr say, to tell them from pglog's own lines.
RECORD_TEXT = " of a program whose stderr is read slowly"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?")


def says_lost(line: str, lost: int) -> bool:
    """A line (not a record) that gives the number of records not handed over."""
    if RECORD_TEXT in line:
        return False
    line = TIMESTAMP.sub("", line)  # "20:39:55,450" is not a count of 55 or 450
    return re.search(rf"\b{lost}\b", line) is not None


def test_a_slow_fallback_handler_does_not_stretch_close_past_close_timeout(
    down_dsn: str,
    make_handler: HandlerFactory,
    logger: logging.Logger,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The database down; 500 records wait for a fallback that takes 20 ms each (10 s in
    all): close() returns within close_timeout + 1 s, nothing is pending after it, what
    it did not hand over is counted as lost, and stderr says how many."""
    fallback = SlowHandler()
    handler = make_handler(
        dsn=down_dsn, fallback=fallback, close_timeout=CLOSE_TIMEOUT, connect_timeout=30
    )
    logger.addHandler(handler)
    for i in range(500):
        logger.info("record %d", i)
    began = time.monotonic()
    handler.close()
    took = time.monotonic() - began
    stats = handler.stats()
    handed = len([m for m in fallback.messages if m.startswith("record ")])
    stderr = capfd.readouterr().err
    lost = stats.get("lost", 0)
    print(
        f"\nclose() took {took:.1f}s; handed over {handed}, fallback {stats['fallback']},"
        f" lost {lost}, pending {stats['pending']}; stderr {stderr[-300:]!r}"
    )
    assert took <= CLOSE_TIMEOUT + SLACK, f"close() took {took:.1f}s"
    assert balanced(stats), ledger(stats)
    assert stats["pending"] == 0, "records neither handed over nor counted as lost by close()"
    assert lost > 0
    assert stats["fallback"] <= handed <= stats["fallback"] + 1  # at most the one in hand
    assert any(says_lost(line, lost) for line in stderr.splitlines()), stderr


CHILD = """
import json, logging, time
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler(
    {dsn!r}, table="slow", close_timeout={close_timeout}, connect_timeout=30
)
logging.getLogger().addHandler(handler)
log = logging.getLogger("app")
for i in range({records}):
    log.warning("record %d{record_text}", i)
began = time.monotonic()
handler.close()
took = time.monotonic() - began
print(json.dumps({{"took": took, "stats": handler.stats()}}), flush=True)
"""


def test_stderr_read_slowly_does_not_stretch_close_past_close_timeout(down_dsn: str) -> None:
    """The default fallback, stderr, is a pipe its reader drains at 64 KB a second; 10,000
    records (0.7 MB, 11 s of reading) wait for it: close() returns within close_timeout
    + 1 s, nothing is pending after it, the records not handed over are counted as lost,
    and stderr says how many."""
    code = CHILD.format(
        dsn=down_dsn, close_timeout=CLOSE_TIMEOUT, records=10_000, record_text=RECORD_TEXT
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stderr is not None
    out, err = child.stdout, child.stderr
    drained: list[bytes] = []
    answer: list[bytes] = []
    fast = threading.Event()

    def read_slowly() -> None:
        while chunk := os.read(err.fileno(), 4096):
            drained.append(chunk)
            if not fast.is_set():
                fast.wait(4096 / 65536)  # a slow reader: 64 KB a second

    reader = threading.Thread(target=read_slowly, daemon=True)
    reader.start()
    waiter = threading.Thread(target=lambda: answer.append(out.readline()), daemon=True)
    waiter.start()
    try:
        waiter.join(60)  # the child prints once close() has returned
    finally:
        fast.set()  # from now on drain at full speed, so that the child can end
        child.wait(60)
        reader.join(30)
    stderr = b"".join(drained).decode(errors="replace")
    assert answer, stderr[-2000:]  # the child never printed: close() never returned
    assert answer[0], stderr[-2000:]
    measured: dict[str, Any] = json.loads(answer[0])
    stats, took = measured["stats"], measured["took"]
    lost = stats.get("lost", 0)
    printed = stderr.count(RECORD_TEXT)
    print(
        f"\nclose() took {took:.1f}s; on stderr {printed} records, fallback"
        f" {stats['fallback']}, lost {lost}, pending {stats['pending']}"
    )
    assert child.returncode == 0, stderr[-2000:]
    assert took <= CLOSE_TIMEOUT + SLACK, f"close() took {took:.1f}s"
    assert balanced(stats), ledger(stats)
    assert stats["pending"] == 0, "records neither handed over nor counted as lost by close()"
    assert lost > 0
    assert any(says_lost(line, lost) for line in stderr.splitlines()), stderr[-1000:]
