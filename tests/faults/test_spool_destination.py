"""A spool belongs to where the records go (server, database, schema, table), not to how the
DSN was spelled; and the lock files of processes that died do not stay behind."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from helpers import TABLE, ListHandler, make_table, stored
from pgserver import PostgresServer

from faults.kit import Tally, ledger
from faults.live import Child
from pglog import DatabaseLogHandler


def replay(dsn: str, spool_dir: Path, fallback: ListHandler, last: str) -> dict[str, object]:
    """The next process: starts on ``spool_dir``, logs ``last`` and waits until it is
    stored (what the spool holds is replayed before it), then closes."""
    handler = DatabaseLogHandler(
        dsn, table=TABLE, spool_dir=spool_dir, close_timeout=15, fallback=fallback
    )
    handler.start()
    log = logging.getLogger(f"next.{id(handler)}")
    log.propagate = False
    log.addHandler(handler)
    log.warning(last)
    handler.flush(30)
    handler.close()
    log.removeHandler(handler)
    return handler.stats()


def test_a_spool_left_under_another_spelling_of_the_dsn_is_replayed(
    server: PostgresServer, tmp_path: Path
) -> None:
    """A program logs through postgresql://postgres@127.0.0.1:PORT/postgres, the server stops,
    it logs 2,900 more and exits: they wait in the spool. The next program, on the same
    spool_dir and the same server spelled postgresql://postgres@localhost:PORT/postgres,
    replays them: every record stored exactly once, no segment left."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    by_address = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    by_name = f"postgresql://postgres@localhost:{server.port}/postgres"
    first = Child(f"""
import logging, sys
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({by_address!r}, table={TABLE!r}, spool_dir={str(spool_dir)!r},
                             connect_timeout=2, close_timeout=2, fallback=None)
log = logging.getLogger("first")
log.addHandler(handler)
for i in range(100):
    log.warning("a-%d", i)
assert handler.flush(10)
print("ready", flush=True)
sys.stdin.readline()
for i in range(100, 3000):
    log.warning("a-%d", i)
handler.close()
print(handler.stats()["pending"], handler.stats()["fallback"], flush=True)
""")
    with first:
        assert first.next_line("stdout", 30) == "ready", first.text("stderr")
        server.stop("fast")
        first.write("go\n")
        said = first.next_line("stdout", 30)
        assert said, first.text("stderr")
        pending, handed = map(int, said.split())
        first.wait(30)
    assert (pending, handed) == (2_900, 0), "the first program did not spool"
    segments = sorted(p.name for p in spool_dir.glob("*.rows"))
    server.start()
    fallback = ListHandler()
    stats = replay(by_name, spool_dir, fallback, "b-0")
    emitted = [f"a-{i}" for i in range(3000)] + ["b-0"]
    tally = Tally(emitted, stored(server.dsn, TABLE), fallback.messages())
    left = sorted(p.name for p in spool_dir.glob("*.rows"))
    tally.show("another spelling", [ledger(stats), f"segments before={segments} after={left}"])
    missing, duplicated = len(tally.missing), len(tally.duplicated)
    assert missing == 0, (
        f"{missing} records spooled under {by_address} never replayed under {by_name}"
    )
    assert duplicated == 0, f"stored twice: {tally.duplicated[:3]}"
    assert left == [], f"segments left in the spool: {left}"


#: A process that had written everything when it was killed: a lock file, no segment.
QUIET = """
for i in range(10):
    log.warning("q-%d", i)
assert handler.flush(10)
print("ready", flush=True)
sys.stdin.readline()
"""
#: A process that had spooled 2,000+ records during an outage when it was killed.
SPOOLER = """
pace = threading.Event()
i = 0
while handler.stats()["spooled"] < 2000:
    log.warning("k-%d", i)
    i += 1
    if i % 20 == 0:
        pace.wait(0.001)
print(handler.stats()["spooled"], flush=True)
sys.stdin.readline()
"""


def test_lock_files_of_killed_processes_do_not_stay_behind(
    server: PostgresServer, tmp_path: Path
) -> None:
    """Two processes on one spool_dir are SIGKILLed: one had written everything (it leaves a
    lock file and no segment), one had spooled 2,000+ records during an outage (a lock file
    and segments). The next process replays the segments, every spooled record once, and
    afterwards no owner-*.lock file of a dead process is left (nor any segment)."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    common = f"""
import logging, sys, threading
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({server.dsn!r}, table={TABLE!r}, spool_dir={str(spool_dir)!r},
                             queue_size=2000, batch_size=50, connect_timeout=2, fallback=None)
log = logging.getLogger("k")
log.addHandler(handler)
"""
    with Child(common + QUIET) as quiet:
        assert quiet.next_line("stdout", 30) == "ready", quiet.text("stderr")
        server.stop("fast")
        with Child(common + SPOOLER) as spooler:
            said = spooler.next_line("stdout", 120)
            assert said, spooler.text("stderr")
            spooled = int(said)
            locks_before = sorted(p.name for p in spool_dir.glob("owner-*.lock"))
            for child in (quiet, spooler):
                child.signal(signal.SIGKILL)
                child.wait(30)
    server.start()
    fallback = ListHandler()
    stats = replay(server.dsn, spool_dir, fallback, "r-0")
    rows = stored(server.dsn, TABLE)
    spooled_rows = [m for m in rows if m.startswith("k-")]
    locks = sorted(p.name for p in spool_dir.glob("owner-*.lock"))
    segments = sorted(p.name for p in spool_dir.glob("*.rows"))
    emitted = [f"q-{i}" for i in range(10)] + [f"k-{i}" for i in range(spooled)] + ["r-0"]
    tally = Tally(emitted, rows, fallback.messages())
    tally.show(
        "killed processes",
        [ledger(stats), f"spooled={spooled} locks before={locks_before} after={locks}"],
    )
    assert len(locks_before) == 2
    duplicated = len(tally.duplicated)
    assert duplicated == 0, f"stored twice: {tally.duplicated[:3]}"
    assert len(spooled_rows) >= spooled, f"{len(spooled_rows)} of {spooled} spooled were stored"
    assert segments == []
    assert locks == [], f"lock files of dead processes left behind: {locks}"
