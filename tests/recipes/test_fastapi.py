"""uvicorn/FastAPI recipe: the log config, two worker processes, and SIGTERM made an exit."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers import free_port

from recipes.support import python_module
from recipes.uvicorn_recipe import UVICORN_CLI, check_every_record_stored_once, serve_and_stop


def test_uvicorn_workers_store_every_record_once(recipe_dsn: str, tmp_path: Path) -> None:
    """uvicorn started by the recipe's serve.py, two (spawned) workers: each request's app
    and access records are stored once, by the worker that served it; every worker's start
    and finish, and the parent's, are stored too, after a SIGTERM to the parent."""
    port = free_port()
    serve = [sys.executable, "serve.py"]
    served, parent, output = serve_and_stop(serve, port, recipe_dsn, tmp_path)
    check_every_record_stored_once(recipe_dsn, served, parent, output)


def test_uvicorn_command_line_keeps_each_workers_last_records(
    recipe_dsn: str, tmp_path: Path
) -> None:
    """The same, started with uvicorn's command line: uvicorn raises SIGTERM again after
    its graceful shutdown and dies by it, skipping Python's exit handling; pglog's SIGTERM
    hook (its disposition was the default when pglog started) writes what is pending
    first, so each worker's last records ('Finished server process') are stored too."""
    port = free_port()
    command = python_module("uvicorn", *UVICORN_CLI, "--host", "127.0.0.1", "--port", str(port))
    served, parent, output = serve_and_stop(command, port, recipe_dsn, tmp_path)
    check_every_record_stored_once(recipe_dsn, served, parent, output)
