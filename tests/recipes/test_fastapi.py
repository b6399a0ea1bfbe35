"""uvicorn/FastAPI recipe: the log config, two worker processes, and SIGTERM made an exit."""

from __future__ import annotations

import re
import signal
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import free_port

from recipes.support import (
    EXAMPLES,
    Program,
    get_json,
    python_module,
    query,
    rows_per_process,
    show_counts,
)

REQUESTS = 150

#: uvicorn's own command line, without serve.py's SIGTERM handler.
UVICORN_CLI = ["app:app", "--workers", "2", "--log-config", "log_config.yaml"]


def test_uvicorn_workers_store_every_record_once(recipe_dsn: str, tmp_path: Path) -> None:
    """uvicorn started by the recipe's serve.py, two (spawned) workers: each request's app
    and access records are stored once, by the worker that served it; every worker's start
    and finish, and the parent's, are stored too, after a SIGTERM to the parent."""
    port = free_port()
    serve = [sys.executable, "serve.py"]
    served, parent, output = _serve_and_stop(serve, port, recipe_dsn, tmp_path)
    _check_every_record_stored_once(recipe_dsn, served, parent, output)


def test_uvicorn_command_line_keeps_each_workers_last_records(
    recipe_dsn: str, tmp_path: Path
) -> None:
    """The same, started with uvicorn's command line: uvicorn raises SIGTERM again after
    its graceful shutdown and dies by it, skipping Python's exit handling; pglog's SIGTERM
    hook (its disposition was the default when pglog started) writes what is pending
    first, so each worker's last records ('Finished server process') are stored too."""
    port = free_port()
    command = python_module("uvicorn", *UVICORN_CLI, "--host", "127.0.0.1", "--port", str(port))
    served, parent, output = _serve_and_stop(command, port, recipe_dsn, tmp_path)
    _check_every_record_stored_once(recipe_dsn, served, parent, output)


def _serve_and_stop(
    command: list[str], port: int, dsn: str, tmp_path: Path
) -> tuple[dict[int, int], int, str]:
    """Start uvicorn, send REQUESTS requests, SIGTERM it: which pid served each item, the
    parent's pid, and what uvicorn printed."""
    env = {"PGLOG_DSN": dsn, "PORT": str(port)}
    with Program(
        command, cwd=EXAMPLES / "fastapi", env=env, output=tmp_path / "uvicorn.log"
    ) as uvicorn:
        uvicorn.wait_for_output("Application startup complete.", count=2)

        def read(n: int) -> tuple[int, int]:
            answer = get_json(f"http://127.0.0.1:{port}/items/{n}")
            return int(answer["item_id"]), int(answer["pid"])

        with ThreadPoolExecutor(8) as pool:
            served = dict(pool.map(read, range(REQUESTS)))
        assert uvicorn.stop(signal.SIGTERM) == 0
        return served, uvicorn.pid, uvicorn.output()


def _check_every_record_stored_once(
    recipe_dsn: str, served: dict[int, int], parent: int, output: str
) -> None:
    workers = {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", output)}
    assert len(workers) == 2
    assert parent not in workers
    per_worker = Counter(served.values())
    assert set(per_worker) <= workers

    stored = query(
        recipe_dsn,
        "SELECT (extra_data->>'item_id')::int, process_id FROM logs WHERE logger_name = 'api'",
    )
    assert dict(stored) == served
    assert len(stored) == REQUESTS
    stored_per_worker = rows_per_process(recipe_dsn, "logger_name = 'api'")
    show_counts("uvicorn (app records)", per_worker, stored_per_worker)
    assert stored_per_worker == per_worker
    assert rows_per_process(recipe_dsn, "logger_name = 'uvicorn.access'") == per_worker
    # Each worker's first and last words, logged by the worker itself, once.
    for message in ("Started server process [%%]", "Finished server process [%%]"):
        assert rows_per_process(recipe_dsn, "message LIKE %s", (message,)) == (
            dict.fromkeys(workers, 1)
        )
    for message in ("Started parent process [%%]", "Stopping parent process [%%]"):
        assert rows_per_process(recipe_dsn, "message LIKE %s", (message,)) == {parent: 1}
    assert " WARNING pglog" not in output
    assert " ERROR pglog" not in output
