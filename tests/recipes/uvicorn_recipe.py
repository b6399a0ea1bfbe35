"""The FastAPI recipe run by uvicorn, and what it must store: shared by the recipe's test
and the SIGTERM fault test, which run it two ways."""

from __future__ import annotations

import re
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recipes.support import (
    EXAMPLES,
    Program,
    check_stored_once_by_its_process,
    get_json,
    rows_per_process,
)

REQUESTS = 150

#: uvicorn's own command line, without serve.py's SIGTERM handler.
UVICORN_CLI = ["app:app", "--workers", "2", "--log-config", "log_config.yaml"]


def serve_and_stop(
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


def check_every_record_stored_once(
    recipe_dsn: str, served: dict[int, int], parent: int, output: str
) -> None:
    """Each request's app and access records stored once, by the worker that served it;
    each worker's start and finish, and the parent's, once, by the process itself; and
    nothing said by pglog."""
    workers = {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", output)}
    assert len(workers) == 2
    assert parent not in workers
    per_worker = Counter(served.values())
    assert set(per_worker) <= workers

    check_stored_once_by_its_process(
        recipe_dsn,
        "uvicorn (app records)",
        where="logger_name = 'api'",
        key="(extra_data->>'item_id')::int",
        done_by=served,
        count=REQUESTS,
    )
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
