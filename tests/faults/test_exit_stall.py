"""A program that ends while the network is stalled: exit takes close_timeout once, and the
batch in flight is never lost (spooled when there is a spool, else handed to the fallback)."""

from __future__ import annotations

import time
from pathlib import Path

from faultproxy import FaultProxy
from helpers import TABLE, make_table, run_python, stored
from pgserver import PostgresServer

from faults.kit import Tally
from faults.live import Child

CLOSE_TIMEOUT = 3.0
SLACK = 1.5
BEFORE, FIRST, DURING = 100, 500, 2_000


def program(dsn: str, spool_dir: Path | None) -> str:
    """Logs BEFORE records and waits until they are stored; says "ready" and waits for the
    test to stall the network (at the next COPY); logs FIRST more and waits until the
    writer has them in flight (the COPY stalls); logs the rest of DURING (they wait in the
    queue), says "end" and simply ends: logging.shutdown() does the rest."""
    spool = "" if spool_dir is None else f", spool_dir={str(spool_dir)!r}"
    return f"""
import logging, sys, threading, time
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({dsn!r}, table={TABLE!r}, close_timeout={CLOSE_TIMEOUT},
                             connect_timeout=2, flush_interval=0.05{spool})
log = logging.getLogger("app")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(handler)
for i in range({BEFORE}):
    log.info("m-%d", i)
assert handler.flush(10)
print("ready", flush=True)
sys.stdin.readline()
for i in range({BEFORE}, {BEFORE + FIRST}):
    log.info("m-%d", i)
deadline = time.monotonic() + 10
while handler.stats()["in_flight"] == 0 and time.monotonic() < deadline:
    threading.Event().wait(0.01)
for i in range({BEFORE + FIRST}, {BEFORE + DURING}):
    log.info("m-%d", i)
print("end", handler.stats()["in_flight"], flush=True)
"""


def end_during_a_stall(proxy: FaultProxy, script: str) -> tuple[float, int, str]:
    """Run ``script`` and stall the proxy when it is ready; returns how long it took to
    exit after its last line, how many records were in flight then, and its stderr."""
    with Child(script) as child:
        assert child.next_line("stdout", 30) == "ready", child.text("stderr")
        proxy.stall(at="copy")
        child.write("go\n")
        end = (child.next_line("stdout", 60) or "").split()
        ended = time.monotonic()
        assert end[:1] == ["end"], end
        child.wait(60)
        took = time.monotonic() - ended
        err = child.text("stderr")
    return took, int(end[1]), err


def app_lines(stderr: str) -> list[str]:
    """The application's records the console fallback printed."""
    return [line.rsplit(" app: ", 1)[1] for line in stderr.splitlines() if " app: m-" in line]


def test_exit_during_a_stall_takes_close_timeout_once_and_loses_no_record(
    server: PostgresServer, proxy: FaultProxy
) -> None:
    """No spool: the program ends while the writer is stuck sending a batch into a stalled
    network. Exit takes at most close_timeout (+1.5 s), and every record is either in the
    table or on stderr (the console fallback): the batch in flight too."""
    make_table(server.dsn)
    emitted = [f"m-{i}" for i in range(BEFORE + DURING)]
    took, in_flight, err = end_during_a_stall(proxy, program(proxy.dsn, None))
    tally = Tally(emitted, stored(server.dsn, TABLE), app_lines(err))
    tally.show("exit in a stall", [f"exit took {took:.1f}s in_flight at exit={in_flight}"])
    assert in_flight > 0
    missing, duplicated = len(tally.missing), len(tally.duplicated)
    assert missing == 0, (
        f"{missing} records neither stored nor on stderr (in flight at exit: {in_flight}),"
        f" e.g. {tally.missing[:3]}"
    )
    assert duplicated == 0
    assert took <= CLOSE_TIMEOUT + SLACK, f"exit took {took:.1f}s, close_timeout={CLOSE_TIMEOUT}"


def test_exit_during_a_stall_spools_everything_for_the_next_run(
    server: PostgresServer, proxy: FaultProxy, tmp_path: Path
) -> None:
    """With a spool: the program ends in a stall within close_timeout (+1.5 s), prints none
    of its records to stderr (close() spools, the batch in flight included), and the next
    run on the same spool_dir, with the network back, stores every record exactly once."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    emitted = [f"m-{i}" for i in range(BEFORE + DURING)]
    took, in_flight, err = end_during_a_stall(proxy, program(proxy.dsn, spool_dir))
    printed = app_lines(err)
    proxy.resume()
    second = f"""
import logging
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({proxy.dsn!r}, table={TABLE!r}, spool_dir={str(spool_dir)!r},
                             close_timeout=20)
logging.getLogger().addHandler(handler)
logging.getLogger("second").warning("second-1")
assert handler.flush(30)
handler.close()
print(handler.stats()["replayed"])
"""
    replay = run_python(second)
    assert replay.returncode == 0, replay.stderr
    rows = stored(server.dsn, TABLE)
    tally = Tally(emitted, rows, printed)
    tally.show(
        "exit in a stall, then the next run",
        [f"exit took {took:.1f}s in_flight at exit={in_flight} replayed={replay.stdout.strip()}"],
    )
    assert in_flight > 0
    on_stderr, missing, duplicated = len(printed), len(tally.missing), len(tally.duplicated)
    assert on_stderr == 0, f"{on_stderr} records went to stderr instead of the spool"
    assert duplicated == 0, f"stored twice: {tally.duplicated[:5]}"
    assert missing == 0, f"{missing} never stored, e.g. {tally.missing[:3]}"
    assert "second-1" in rows
    assert list(spool_dir.glob("*.rows")) == []
    assert took <= CLOSE_TIMEOUT + SLACK, f"exit took {took:.1f}s, close_timeout={CLOSE_TIMEOUT}"
