"""Review: pglog's own threads are recognised by ident (``process.OWN_THREADS``), and a
record logged in one of them is skipped without a count. An ident that stays in that set
after its thread ended belongs, once the C library reuses the thread's stack, to an
application thread: whose every record is then skipped by every pglog handler, silently
(not even ``enqueued`` sees it)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from conftest import HandlerFactory
from helpers import stored

from faults.kit import ledger, spiller_threads
from pglog._writer.process import OWN_THREADS

#: Threads started one after the other until one gets the ident of a pglog thread that
#: has ended (glibc hands a finished thread's stack, and so its ident, to the next ones).
ATTEMPTS = 40


def test_a_closed_spooling_handler_leaves_no_ident_behind_and_no_thread_is_muted(
    make_handler: HandlerFactory, table: str, pg_dsn: str, logger: logging.Logger, tmp_path: Path
) -> None:
    """A handler with spool_dir logs once and closes: its writer and spiller end. Then
    threads of the application, started one after another, each log one record to a
    second handler on the same table. Every one of them must be stored, and nothing of
    the ended threads may stay in OWN_THREADS.

    Before the fix, the spiller's ident is added (pipeline._open_spool) and never removed: the first
    application thread that gets that ident has its record skipped by handle() as if
    pglog had logged it: not stored, not counted, not said."""
    spooling = make_handler(spool_dir=tmp_path / "spool", fallback=None)
    logger.addHandler(spooling)
    logger.info("spooling-0")
    assert spooling.flush(10)
    spiller = spiller_threads()[0]
    spiller_ident = spiller.ident
    spooling.close()
    logger.removeHandler(spooling)
    spiller.join(10)
    assert not spiller.is_alive()

    plain = make_handler(fallback=None)
    logger.addHandler(plain)
    logger.info("plain-0")
    assert plain.flush(10)

    live = {t.ident for t in threading.enumerate()}
    stale = sorted(ident for ident in OWN_THREADS if ident not in live)

    emitted, reused = [], 0
    for i in range(ATTEMPTS):
        message = f"thread-{i}"
        worker = threading.Thread(target=logger.info, args=(message,))
        worker.start()
        worker.join()
        emitted.append(message)
        if worker.ident == spiller_ident:
            reused += 1
            if reused == 2:
                break
    assert plain.flush(10)
    rows = stored(pg_dsn, table)
    missing = [m for m in emitted if m not in rows]
    stats = plain.stats()
    print(
        f"threads={len(emitted)} reusing the spiller's ident={reused} missing={len(missing)}"
        f" stale idents in OWN_THREADS={len(stale)} {ledger(stats)}"
    )
    assert not missing, (
        f"{len(missing)} of {len(emitted)} application threads' records were skipped"
        f" without a trace ({missing}); enqueued={stats['enqueued']}: the thread had the ident"
        " of pglog's ended spiller, still in OWN_THREADS"
    )
    assert not stale, f"idents of ended threads still in OWN_THREADS: {stale}"
