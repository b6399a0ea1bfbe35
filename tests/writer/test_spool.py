"""Outages longer than memory: the durable spool keeps every record, in order, exactly once."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from faultproxy import FaultProxy
from helpers import Blackhole, ListHandler, run_python
from pgserver import PostgresServer

import pglog
from pglog import DatabaseLogHandler
from pglog._capture.capture import capture
from pglog._capture.entry import named
from pglog._capture.row import to_row
from pglog._table.schema import TableName, copy_statement
from pglog._writer.segments import key_for

TABLE = "logs"


def stored(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [m for (m,) in conn.execute(f"SELECT message FROM {TABLE} ORDER BY id").fetchall()]


def balanced(stats: dict[str, Any]) -> bool:
    return bool(
        stats["enqueued"]
        == stats["written"] + stats["dropped"] + stats["fallback"] + stats["pending"]
    )


@pytest.fixture
def log(logger: logging.Logger) -> logging.Logger:
    """This module's name for the private logger of conftest."""
    return logger


def make_table(dsn: str) -> None:
    handler = DatabaseLogHandler(dsn, table=TABLE, fallback=None)
    assert handler.check_database() is None
    handler.close()


def spooling(dsn: str, tmp_path: Path, log: logging.Logger, **options: Any) -> DatabaseLogHandler:
    """A handler writing to TABLE that spools to ``tmp_path / "spool"``, added to ``log``."""
    handler = DatabaseLogHandler(dsn, table=TABLE, spool_dir=tmp_path / "spool", **options)
    log.addHandler(handler)
    return handler


def test_an_outage_longer_than_memory_loses_nothing(
    server: PostgresServer, tmp_path: Path, log: logging.Logger
) -> None:
    """20,000 records at up to 20,000 a second against a stopped server, with room for 2,000
    in memory: none dropped, the ledger balances at every step, and after the restart all
    arrive once, in order."""
    make_table(server.dsn)
    fallback = ListHandler()
    handler = spooling(
        server.dsn,
        tmp_path,
        log,
        queue_size=2_000,
        batch_size=100,
        flush_interval=0.05,
        fallback=fallback,
    )
    log.info("m-0")
    assert handler.flush(10)
    server.stop("fast")
    emitted = ["m-0"]
    pace = threading.Event()
    for i in range(1, 20_000):
        log.info("m-%d", i)
        emitted.append(f"m-{i}")
        if i % 20 == 0:
            pace.wait(0.001)
        if i % 997 == 0:
            assert balanced(handler.stats())
    stats = handler.stats()
    assert stats["dropped"] == 0
    assert stats["spooled"] > 15_000
    assert stats["failed_batches"] < 50  # backing off, not spinning
    assert stats["queue_depth"] + stats["in_flight"] <= 2_000
    server.start()
    assert handler.flush(60)
    assert stored(server.dsn) == emitted
    stats = handler.stats()
    assert (stats["written"], stats["pending"], stats["replayed"]) == (20_000, 0, stats["spooled"])
    assert balanced(stats)
    assert fallback.messages(log.name) == []  # pglog said what went on; no record went there
    handler.close()
    assert list((tmp_path / "spool").glob("*.rows")) == []


def test_a_spool_left_by_an_earlier_run_is_replayed_first(
    server: PostgresServer, tmp_path: Path
) -> None:
    """A program that exits while the database is down spools what it could not write; the
    next run replays it before its own records, and nothing is stored twice."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    server.stop("fast")
    first = f"""
import logging
import pglog
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({server.dsn!r}, table={TABLE!r}, spool_dir={str(spool_dir)!r},
                             connect_timeout=2, close_timeout=2, fallback=None)
logging.getLogger().addHandler(handler)
for i in range(3000):
    logging.getLogger("first").warning("first-%d", i)
handler.close()
print(handler.stats()["pending"], handler.stats()["fallback"])
"""
    result = run_python(first)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3000", "0"]  # all of it pending, in the spool
    server.start()
    second = f"""
import logging
import pglog
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({server.dsn!r}, table={TABLE!r}, spool_dir={str(spool_dir)!r})
logging.getLogger().addHandler(handler)
logging.getLogger("second").warning("second-0")
assert handler.flush(30)
print(handler.stats()["replayed"])
"""
    result = run_python(second)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3000"]
    assert stored(server.dsn) == [f"first-{i}" for i in range(3000)] + ["second-0"]
    assert list(spool_dir.glob("*.rows")) == []


def write_orphan_segment(
    dsn: str, spool_dir: Path, messages: list[str], progress: dict[str, Any], token: str = "1x0dead"
) -> list[Any]:
    """A spool as a process that died would leave it: entries, progress, a lock file that
    no one holds. Returns the entries."""
    spool_dir.mkdir(exist_ok=True)
    key = key_for(f"public.{TABLE}")
    log = logging.getLogger("orphan")
    entries = [
        capture(log.makeRecord("orphan", logging.INFO, __file__, 1, message, (), None))
        for message in messages
    ]
    segment = spool_dir / f"{key}-{1:020d}-{token}-{0:012d}.rows"
    segment.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    segment.with_suffix(".done").write_text(json.dumps(progress))
    (spool_dir / f"owner-{token}.lock").touch()
    return entries


@pytest.mark.parametrize("fate", ["committed", "aborted"])
def test_a_commit_recorded_but_never_confirmed_is_looked_up(
    fate: str, server: PostgresServer, tmp_path: Path
) -> None:
    """A process died between recording transaction X for entries 0-4 and learning its fate.
    If X committed, those five are not written again; if it aborted, they are."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    with psycopg.connect(server.dsn) as conn:
        xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]  # type: ignore[index]
        entries = write_orphan_segment(
            server.dsn, spool_dir, [f"o-{i}" for i in range(10)], {"done": 0, "pending": [xid, 5]}
        )
        with conn.cursor().copy(copy_statement(TableName("public", TABLE))) as copy:
            for entry in entries[:5]:  # what the dead process's transaction wrote
                copy.write_row(to_row(named(entry), "dead-host"))
        if fate == "committed":
            conn.commit()
        else:
            conn.rollback()
    handler = DatabaseLogHandler(server.dsn, table=TABLE, spool_dir=spool_dir)
    handler.start()
    assert handler.flush(30)
    handler.close()
    assert stored(server.dsn) == [f"o-{i}" for i in range(10)]
    assert handler.stats()["replayed"] == 10
    assert list(spool_dir.glob("*.rows")) == []


def test_processes_sharing_a_spool_replay_orphans_exactly_once(
    server: PostgresServer, tmp_path: Path
) -> None:
    """Six processes start together on a spool that forty dead processes left: every entry
    is stored once, and no writer trips over another's progress."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    expected = []
    for n in range(40):
        messages = [f"o{n}-{i}" for i in range(50)]
        expected += messages
        write_orphan_segment(
            server.dsn, spool_dir, messages, {"done": 0, "pending": None}, token=f"{n}x0dead"
        )
    script = f"""
import pglog
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({server.dsn!r}, table={TABLE!r}, spool_dir={str(spool_dir)!r},
                             batch_size=100)
handler.start()
assert handler.flush(60)
handler.close()
"""
    workers = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert "writer stopped" not in err
    assert sorted(stored(server.dsn)) == sorted(expected)
    assert list(spool_dir.glob("*.rows")) == []


def test_a_killed_process_loses_only_what_was_not_yet_spooled(
    server: PostgresServer, tmp_path: Path
) -> None:
    """SIGKILL while spooling during an outage: the next run stores every record that reached
    the spool, once; what was only in memory is the bounded loss."""
    make_table(server.dsn)
    spool_dir = tmp_path / "spool"
    server.stop("fast")
    script = f"""
import logging, sys, threading
import pglog
from pglog import DatabaseLogHandler
handler = DatabaseLogHandler({server.dsn!r}, table={TABLE!r}, spool_dir={str(spool_dir)!r},
                             queue_size=2000, batch_size=50, connect_timeout=2, fallback=None)
logging.getLogger().addHandler(handler)
pace = threading.Event()
i = 0
while True:
    logging.getLogger("k").warning("k-%d", i)
    i += 1
    if i % 20 == 0:
        pace.wait(0.001)
    if i % 1000 == 0 and handler.stats()["spooled"] >= 5000:
        print(handler.stats()["spooled"], handler.stats()["dropped"], flush=True)
        sys.stdin.readline()   # wait here to be killed
"""
    victim = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert victim.stdout is not None
    spooled, dropped = map(int, victim.stdout.readline().split())
    assert dropped == 0
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    server.start()
    handler = DatabaseLogHandler(server.dsn, table=TABLE, spool_dir=spool_dir)
    handler.start()
    assert handler.flush(60)
    handler.close()
    rows = stored(server.dsn)
    assert len(rows) == len(set(rows))  # nothing twice
    assert len(rows) >= spooled  # everything that reached the spool
    numbers = [int(m.split("-")[1]) for m in rows]
    assert numbers == sorted(numbers)
    assert numbers[:spooled] == list(range(spooled))


def test_a_full_spool_falls_back_to_the_overflow_policy(
    server: PostgresServer, tmp_path: Path, log: logging.Logger
) -> None:
    """When spool_max_bytes is reached, spooling stops, the queue drops by its policy (counted
    and reported), and what was spooled is still written once the database is back."""
    make_table(server.dsn)
    fallback = ListHandler()
    handler = spooling(
        server.dsn,
        tmp_path,
        log,
        queue_size=500,
        batch_size=50,
        spool_max_bytes=100_000,
        fallback=fallback,
    )
    server.stop("fast")
    pace = threading.Event()
    for i in range(5_000):
        log.info("f-%d", i)
        if i % 20 == 0:
            pace.wait(0.001)
    stats = handler.stats()
    assert stats["dropped"] > 0
    assert 0 < stats["spool_bytes"] <= 100_000
    assert balanced(stats)
    server.start()
    assert handler.flush(60)
    handler.close()
    rows = stored(server.dsn)
    stats = handler.stats()
    assert len(rows) == stats["written"] == 5_000 - stats["dropped"] - stats["fallback"]
    assert len(rows) == len(set(rows))
    assert any("can't spool any more" in m for m in fallback.messages("pglog"))
    assert any("dropped" in m for m in fallback.messages("pglog"))


def test_closing_during_an_outage_spools_instead_of_falling_back(
    server: PostgresServer, tmp_path: Path, log: logging.Logger
) -> None:
    """close() with the database down puts every pending record in the spool, none in the
    fallback, and returns promptly."""
    make_table(server.dsn)
    fallback = ListHandler()
    handler = spooling(server.dsn, tmp_path, log, fallback=fallback)
    server.stop("immediate")
    for i in range(700):
        log.info("c-%d", i)
    handler.close()
    stats = handler.stats()
    assert (stats["pending"], stats["spooled"], stats["fallback"]) == (700, 700, 0)
    assert fallback.messages(log.name) == []
    assert os.listdir(tmp_path / "spool")


def test_records_with_scalar_extras_keep_them_through_the_spool(
    server: PostgresServer, tmp_path: Path, log: logging.Logger
) -> None:
    """Records with plain scalar extras (and bound fields under them), spilled to the spool
    during an outage as the caller's thread left them, are stored with the extras they
    were logged with: the two parts of those are joined before an entry is written out
    (see ``entry``)."""
    make_table(server.dsn)
    handler = spooling(
        server.dsn, tmp_path, log, queue_size=200, batch_size=20, flush_interval=0.05, fallback=None
    )
    log.info("up")
    assert handler.flush(10)
    server.stop("fast")
    pace = threading.Event()
    with pglog.bind(request_id="r-1", user_id=7):
        for i in range(1_000):
            log.info("order %s", i, extra={"user_id": i, "path": f"/orders/{i}", "ok": True})
            if i % 20 == 0:
                pace.wait(0.001)
    assert handler.stats()["spooled"] > 500
    server.start()
    assert handler.flush(60)
    with psycopg.connect(server.dsn) as conn:
        rows = conn.execute(f"SELECT message, extra_data FROM {TABLE} ORDER BY id").fetchall()
    assert rows == [("up", {})] + [
        (f"order {i}", {"request_id": "r-1", "user_id": i, "path": f"/orders/{i}", "ok": True})
        for i in range(1_000)
    ]
    handler.close()


def test_a_spool_write_that_fails_part_way_leaves_nothing_half_counted(
    server: PostgresServer, tmp_path: Path
) -> None:
    """The spool's file hits a size limit mid-write (as a full disk would): the partial
    write is undone, those records go back to the queue (a disk never costs a record its
    place), the spool rests and the overflow policy applies meanwhile; nothing is stored
    twice, nothing is both stored and handed over, and every record is accounted for."""
    make_table(server.dsn)
    server.stop("fast")
    script = f"""
import logging, resource, signal, threading, json
import pglog
from pglog import DatabaseLogHandler
from helpers import ListHandler
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
fallback = ListHandler()
handler = DatabaseLogHandler({server.dsn!r}, table={TABLE!r}, spool_dir={str(tmp_path / "spool")!r},
                             queue_size=200, batch_size=50, fallback=fallback, connect_timeout=2)
log = logging.getLogger("p"); log.propagate = False; log.addHandler(handler)
log.warning("first")          # opens the spool directory before the limit
handler.flush(1)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
pace = threading.Event()
for i in range(600):
    log.warning("m-%d", i)
    if i % 20 == 0:
        pace.wait(0.002)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
handler.close()
stats = handler.stats()
handed = [r.getMessage() for r in fallback.records if r.name == "p"]
print(json.dumps({{"stats": stats, "handed": handed}}))
"""
    result = run_python(script, env={"PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    stats, handed = outcome["stats"], outcome["handed"]
    assert balanced(stats)
    assert stats["fallback"] == len(handed)
    assert stats["spooled"] > 0
    server.start()
    replayer = DatabaseLogHandler(server.dsn, table=TABLE, spool_dir=tmp_path / "spool")
    replayer.start()
    replayer.close()
    rows = stored(server.dsn)
    assert not set(rows) & set(handed)  # nothing both stored and handed over
    assert len(rows) == len(set(rows))
    assert len(rows) + len(handed) + stats["dropped"] == 601


def test_close_while_a_slow_spool_write_is_under_way_never_doubles_a_record(
    server: PostgresServer,
    proxy: FaultProxy,
    tmp_path: Path,
    log: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow disk: close() times out while the writer is still spooling. What is being
    spooled stays with the writer, which finishes after close() has returned (close()
    says so); nothing ends up in both the spool and the fallback."""
    make_table(server.dsn)
    slow = os.fsync

    def slow_fsync(descriptor: int) -> None:
        threading.Event().wait(0.2)
        slow(descriptor)

    monkeypatch.setattr("pglog._writer.spool.os.fsync", slow_fsync)
    proxy.refuse()
    fallback = ListHandler()
    earlier = set(threading.enumerate())  # other tests' writers may still be finishing
    handler = spooling(
        proxy.dsn, tmp_path, log, queue_size=100_000, fallback=fallback, close_timeout=0.3
    )
    for i in range(30_000):
        log.info("s-%d", i)
    writers = [
        t for t in threading.enumerate() if t.name.startswith("pglog-writer") and t not in earlier
    ]
    assert writers
    handler.close()
    handed = fallback.messages(log.name)
    monkeypatch.undo()
    for writer in writers:
        writer.join(60)
        assert not writer.is_alive(), "the writer never finished spooling"
    assert any("still being spooled" in m for m in fallback.messages("pglog"))
    proxy.refuse(False)
    replayer = DatabaseLogHandler(proxy.dsn, table=TABLE, spool_dir=tmp_path / "spool")
    replayer.start()
    replayer.close_timeout = 60
    replayer.close()
    rows = stored(server.dsn)
    assert not set(rows) & set(handed)
    assert sorted(rows + handed, key=lambda m: int(m[2:])) == [f"s-{i}" for i in range(30_000)]


def test_an_outage_that_begins_mid_copy_spools_while_the_commit_is_looked_up(
    server: PostgresServer, proxy: FaultProxy, tmp_path: Path, log: logging.Logger
) -> None:
    """The connection breaks mid-COPY and the server then refuses connections: while the
    writer waits to learn the lost transaction's fate it keeps spooling, without spinning;
    afterwards every record is stored once."""
    make_table(server.dsn)
    handler = spooling(proxy.dsn, tmp_path, log, queue_size=5_000, batch_size=100)
    log.info("m-0")
    assert handler.flush(10)
    proxy.arm("mid_copy")
    emitted = ["m-0"]
    pace = threading.Event()
    for i in range(1, 10_000):
        log.info("m-%d", i)
        emitted.append(f"m-{i}")
        if i == 150:
            proxy.refuse()
        if i % 20 == 0:
            pace.wait(0.001)
    stats = handler.stats()
    assert stats["dropped"] == 0
    assert stats["spooled"] > 2_500
    assert stats["failed_batches"] < 50
    proxy.refuse(False)
    assert handler.flush(60)
    handler.close()
    assert stored(server.dsn) == emitted


def test_close_while_replaying_into_a_hung_server_keeps_the_spool(
    tmp_path: Path, log: logging.Logger
) -> None:
    """close() arrives while the writer, replaying a spool, waits on a server that accepted
    the connection and never answers: the replay is cut short, its entries stay in the
    spool for the next run, and nothing goes to the fallback (the writer must not trip
    over the batch it was replaying)."""
    hung = Blackhole()
    try:
        spool_dir = tmp_path / "spool"
        messages = [f"o-{i}" for i in range(50)]
        write_orphan_segment(hung.dsn, spool_dir, messages, {"done": 0, "pending": None})
        fallback = ListHandler()
        handler = DatabaseLogHandler(
            hung.dsn,
            table=TABLE,
            spool_dir=spool_dir,
            connect_timeout=1,
            close_timeout=10,
            fallback=fallback,
        )
        handler.start()
        hung.accept(timeout=30)  # the writer is inside its connection attempt now
        handler.close()
        assert fallback.messages(log.name) == []  # pglog said what went on; no record went there
        assert handler.stats()["replay_fallback"] == 0
        [segment] = spool_dir.glob("*.rows")
        assert len(segment.read_text().splitlines()) == 50
        assert json.loads(segment.with_suffix(".done").read_text())["done"] == 0
    finally:
        hung.close()
