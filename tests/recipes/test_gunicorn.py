"""gunicorn recipe: --preload and four workers; every process's records stored once."""

from __future__ import annotations

import re
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import free_port

from recipes.support import (
    EXAMPLES,
    Program,
    get,
    python_module,
    query,
    rows_per_process,
    show_counts,
)

REQUESTS = 200


def test_gunicorn_preload_workers_store_every_record_once(recipe_dsn: str, tmp_path: Path) -> None:
    """gunicorn with the recipe's config (--preload, 4 workers): the records each worker
    logged per request, its boot and its exit, and the master's own, are each stored
    exactly once, with the pid of the process that logged them, after a SIGTERM."""
    port = free_port()
    command = python_module(
        "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "app:app"
    )
    env = {"PGLOG_DSN": recipe_dsn, "XDG_RUNTIME_DIR": str(tmp_path)}  # its control socket
    with Program(
        command, cwd=EXAMPLES / "gunicorn", env=env, output=tmp_path / "gunicorn.log"
    ) as gunicorn:
        gunicorn.wait_for_output("Booting worker with pid", count=4)

        def fetch(n: int) -> tuple[str, int]:
            status, body = get(f"http://127.0.0.1:{port}/orders/{n}")
            assert status == 200, body
            return f"/orders/{n}", int(body.split()[-1])

        with ThreadPoolExecutor(8) as pool:
            served = dict(pool.map(fetch, range(REQUESTS)))
        assert gunicorn.stop(signal.SIGTERM) == 0
        output = gunicorn.output()

    master = gunicorn.pid
    per_worker = Counter(served.values())
    workers = {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", output)}
    assert len(workers) == 4
    assert set(per_worker) <= workers

    # The app's record of each request: stored once, by the worker that answered it.
    stored = query(recipe_dsn, "SELECT message, process_id FROM logs WHERE logger_name = 'app'")
    handled = {m.removeprefix("handled "): pid for m, pid in stored if m.startswith("handled")}
    assert handled == served
    stored_per_worker = rows_per_process(recipe_dsn, "message LIKE 'handled %%'")
    show_counts("gunicorn (app records)", per_worker, stored_per_worker)
    assert stored_per_worker == per_worker
    # gunicorn's access log: one record per request, per worker, too.
    assert rows_per_process(recipe_dsn, "logger_name = 'gunicorn.access'") == per_worker
    # Logged at import by the master (--preload), before the fork: stored once, by it.
    assert rows_per_process(recipe_dsn, "message = 'app loaded'") == {master: 1}
    # Each worker's first and last words, and the master's last.
    booted = rows_per_process(recipe_dsn, "message LIKE 'Booting worker with pid: %%'")
    exiting = rows_per_process(recipe_dsn, "message LIKE 'Worker exiting (pid: %%)'")
    assert booted == exiting == dict.fromkeys(workers, 1)
    assert rows_per_process(recipe_dsn, "message = 'Shutting down: Master'") == {master: 1}
    # Nothing went to the console fallback, and pglog had nothing to complain about.
    assert " WARNING pglog" not in output
    assert " ERROR pglog" not in output
