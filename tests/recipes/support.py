"""What the recipe tests share: the examples' folder, programs they start, waits with deadlines,
and reading back what the programs' processes stored.

A recipe test starts the real program (gunicorn, uvicorn, a Celery worker, PgBouncer)
as a child in a session of its own, so that the test can always end it and every
process it forked, even when the test fails half-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from helpers import wait_until

#: The recipes' code, exactly as the README shows it.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``url``: the status and the body, for error statuses too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(url: str) -> Any:
    status, body = get(url)
    assert status == 200, (url, status, body[:200])
    return json.loads(body)


class Program:
    """A program a test runs in a session of its own, with its output in a file.

    ``stop()`` sends a signal to the program (the master of whatever it forks) and
    waits for it to exit on its own: the clean stop a recipe promises. ``kill()``
    ends the whole session, and runs at the end of the ``with`` block whatever
    happened, so no worker outlives its test.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        output: Path,
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **env}
        self.output_path = output
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Program:
        with self.output_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_for_output(self, text: str, count: int = 1, timeout: float = 60) -> None:
        """Until ``text`` appears ``count`` times in the output; fails at once if the
        program exits first, showing what it said."""

        def seen() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.command[:4]} exited ({self.process.returncode}):\n{self.output()}"
                )
            return self.output().count(text) >= count

        wait_until(seen, f"{count}x {text!r} in the output of {self.command[:4]}", timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` to the program and wait for it to exit; its exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.command[:4]} did not exit within {timeout}s of signal {sig}:\n"
                + self.output()
            ) from None

    def kill(self) -> None:
        """SIGKILL every process of the program's session (itself and what it forked)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def python_module(module: str, *args: str) -> list[str]:
    """``python -m module args``, with this interpreter (the venv's)."""
    return [sys.executable, "-m", module, *args]


def query(dsn: str, text: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows of one query, on a connection of its own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(text, params).fetchall()


def rows_per_process(dsn: str, where: str, params: Sequence[object] = ()) -> dict[int, int]:
    """How many rows of the table ``logs`` match ``where``, per ``process_id``."""
    found = query(dsn, f"SELECT process_id, count(*) FROM logs WHERE {where} GROUP BY 1", params)
    return {int(pid): int(n) for pid, n in found}


def show_counts(recipe: str, emitted: Mapping[int, int], stored: Mapping[int, int]) -> None:
    """Print records emitted and stored per process (seen with ``pytest -s``)."""
    pids = sorted(set(emitted) | set(stored))
    each = ", ".join(f"{pid}: {emitted.get(pid, 0)}/{stored.get(pid, 0)}" for pid in pids)
    total = f"{sum(emitted.values())}/{sum(stored.values())}"
    print(f"\n{recipe}: emitted/stored per process {each}; total {total}")


def check_stored_once_by_its_process(
    dsn: str, recipe: str, *, where: str, key: str, done_by: Mapping[Any, int], count: int
) -> None:
    """The records ``where`` (one a request or a task, named by the SQL ``key``): all
    ``count`` stored once, each by the process ``done_by`` says handled it; so each
    process stored as many as it handled."""
    stored = query(dsn, f"SELECT {key}, process_id FROM logs WHERE {where}")
    assert dict(stored) == done_by
    assert len(stored) == count
    per_process = Counter(done_by.values())
    stored_per_process = rows_per_process(dsn, where)
    show_counts(recipe, per_process, stored_per_process)
    assert stored_per_process == per_process
