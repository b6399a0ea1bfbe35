"""Section 8 of bench/run.py: what scrubbing secrets costs, in the writer and in the caller.

The writer scrubs as it makes each row (``to_row``): its cost is the time, and the CPU
instructions under callgrind, of making rows with pglog's scrubber and without one, for
the kinds of record applications log. The caller does nothing for scrubbing: a record
whose extras hold secrets costs ``logger.info()`` what one of the same shape without
them does, measured side by side (and counted in instructions).
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from pglog import DatabaseLogHandler
from pglog._capture.capture import capture
from pglog._capture.entry import named
from pglog._capture.row import to_row
from pglog._capture.scrub import DEFAULT, OFF

#: What applications log: message, arguments, extras.
#: The caller's two records: the same shape, one with secrets in its extras.
CLEAN = {"user_id": 42, "request_id": "req-7f3a", "path": "/orders/1042"}
SECRET = {"user_id": 42, "password": "hunter2-x", "api_key": "sk_live_4eC39HqLyj"}
ORDER = {"order": {"id": 1042, "items": ["Kaffee", "Brot"], "total": 12.5}}
LOGIN = {"user_id": 42, "password": "hunter2-x", "authorization": "Bearer 9f86d081884c7d659a2f"}
CASES: dict[str, tuple[str, tuple[Any, ...], dict[str, Any] | None]] = {
    "plain": ("msg %s", (1,), None),
    "text argument": ("user %s signed in", ("ann",), None),
    "3-key extra": ("msg %s", (1,), CLEAN),
    "nested extra": ("order placed", (), ORDER),
    "with secrets": ("login %s", ("ann",), LOGIN),
}

_ROW_SCRIPT = """
import logging, sys
sys.path.insert(0, {bench!r})
from scrubbing import CASES
from pglog._capture.capture import capture
from pglog._capture.entry import named
from pglog._capture.row import to_row
from pglog._capture.scrub import DEFAULT, OFF
case, mode, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
msg, args, extra = CASES[case]
log = logging.getLogger("bench.scrub")
entry = named(capture(log.makeRecord(log.name, 20, "f", 1, msg, args, None, extra=extra)))
scrubber = DEFAULT if mode == "on" else OFF
to_row(entry, "h", scrubber=scrubber)
for _ in range(calls):
    to_row(entry, "h", scrubber=scrubber)
import os; os._exit(0)
"""

_CALLER_SCRIPT = """
import logging, sys
sys.path.insert(0, {bench!r})
from scrubbing import CLEAN, SECRET
from pglog import DatabaseLogHandler
which, calls = sys.argv[1], int(sys.argv[2])
handler = DatabaseLogHandler("postgresql://nobody@127.0.0.1:9/none", batch_size=10**8,
                             queue_size=10**8, flush_interval=3600, fallback=None)
log = logging.getLogger("instructions"); log.propagate = False; log.addHandler(handler)
log.setLevel(logging.INFO)
extra = SECRET if which == "secret" else CLEAN
for i in range(calls):
    log.info("msg %s", i, extra=extra)
import os; os._exit(0)
"""


def measure(
    dsn: str, table: str, calls: int, discard: Callable[[DatabaseLogHandler], None]
) -> dict[str, Any]:
    """Both costs; ``discard`` ends a burst handler without writing what it holds."""
    return {"writer": writer_cost(calls), "caller": caller_cost(dsn, table, calls, discard)}


def writer_cost(calls: int) -> dict[str, Any]:
    """ns per row made with and without scrubbing (interleaved chunks, median of chunk
    means), and instructions per row under callgrind."""
    log = logging.getLogger("bench.scrub")
    found: dict[str, Any] = {}
    for case, (msg, args, extra) in CASES.items():
        entry = named(capture(log.makeRecord(log.name, 20, "f", 1, msg, args, None, extra=extra)))
        samples: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(max(1, calls // 1000)):
            for mode, scrubber in (("off", OFF), ("on", DEFAULT)):
                began = time.perf_counter_ns()
                for _ in range(1000):
                    to_row(entry, "h", scrubber=scrubber)
                samples[mode].append((time.perf_counter_ns() - began) / 1000)
        off, on = (statistics.median(samples[mode]) for mode in ("off", "on"))
        found[case] = {"off_ns": round(off), "on_ns": round(on), "ratio": round(on / off, 2)}
        counted = (
            _instructions(_ROW_SCRIPT, [case, "off"]),
            _instructions(_ROW_SCRIPT, [case, "on"]),
        )
        if counted[0] is not None and counted[1] is not None:
            found[case].update(off_instructions=counted[0], on_instructions=counted[1])
    return found


def caller_cost(
    dsn: str, table: str, calls: int, discard: Callable[[DatabaseLogHandler], None]
) -> dict[str, Any]:
    """ns per logger.info() through a pglog handler (burst: the writer idle), with a 3-key
    extra holding secrets and one that doesn't, side by side; instructions too."""
    handlers = {
        which: DatabaseLogHandler(
            dsn, table=table, batch_size=10**7, queue_size=10**7, flush_interval=3600
        )
        for which in ("clean", "secret")
    }
    loggers = {}
    for which, handler in handlers.items():
        log = logging.getLogger(f"bench.scrub.{which}")
        log.handlers[:] = [handler]
        log.propagate = False
        log.setLevel(logging.INFO)
        loggers[which] = log
    samples: dict[str, list[float]] = {"clean": [], "secret": []}
    for round_ in range(calls // 100 + 10):
        for which, log in loggers.items():
            extra = SECRET if which == "secret" else CLEAN
            began = time.perf_counter_ns()
            for i in range(100):
                log.info("msg %s", i, extra=extra)
            if round_ >= 10:  # the first rounds warm up
                samples[which].append((time.perf_counter_ns() - began) / 100)
    for handler in handlers.values():
        discard(handler)
    found: dict[str, Any] = {
        which: {"median_ns": round(statistics.median(values))} for which, values in samples.items()
    }
    for which, figures in found.items():
        counted = _instructions(_CALLER_SCRIPT, [which])
        if counted is not None:
            figures["instructions"] = counted
    return found


def _instructions(script: str, args: list[str]) -> int | None:
    """Instructions per call of ``script``'s loop under callgrind (two lengths, so that
    start-up cancels out); None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    code = script.format(bench=os.path.dirname(os.path.abspath(__file__)))

    def count(calls: int) -> int:
        out = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             "-c", code, *args, str(calls)],
            capture_output=True, text=True, check=True, timeout=900,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        ).stderr  # fmt: skip
        return int(next(line for line in out.splitlines() if "Collected" in line).split()[-1])

    return round((count(6_000) - count(1_000)) / 5_000)


_CALLER_ROWS = {"clean": "no secret", "secret": "password and api_key"}


def tables(found: dict[str, Any]) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    """Section 8 as (title, header, rows) for run.py's report."""
    writer = found["writer"]
    rows = [
        (
            case,
            f["off_ns"],
            f["on_ns"],
            f"{f['ratio']}x",
            f.get("off_instructions", "-"),
            f.get("on_instructions", "-"),
        )
        for case, f in writer.items()
    ]
    caller = found["caller"]
    return [
        (
            "8. Scrubbing secrets, in the writer: making one row (to_row), without and with it",
            ("record", "off ns", "on ns", "ratio", "off instructions", "on instructions"),
            rows,
        ),
        (
            "8b. ... and in the caller: logger.info() with a 3-key extra, burst",
            ("extras", "ns/call", "instructions/call"),
            [
                (_CALLER_ROWS[which], c["median_ns"], c.get("instructions", "-"))
                for which, c in caller.items()
            ],
        ),
    ]
