"""A Python program a fault test runs as a child, its output read line by line as it comes.

The fault tests need to see what a program says *while it runs* (a report on stderr
within seconds, before the program closes its handler), and to act on it at a given
moment (send SIGTERM once it has logged). So a child's stdout and stderr are read by
two threads into lists of (arrival time, line), and a test waits for a line with a
deadline instead of sleeping.

The child runs until it ends by itself, or until the test closes its stdin (the
programs here block on ``sys.stdin.read()`` to stand for "the application goes on").
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Literal

Stream = Literal["stdout", "stderr"]


class Child:
    """``python -c code``, with its output collected as it arrives."""

    def __init__(self, code: str, *, env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self._changed = threading.Condition()
        self._lines: dict[Stream, list[tuple[float, str]]] = {"stdout": [], "stderr": []}
        self._open: dict[Stream, bool] = {"stdout": True, "stderr": True}
        self._next: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(name, pipe), daemon=True)
            for name, pipe in (("stdout", self.process.stdout), ("stderr", self.process.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: Stream, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self._lines[name].append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._open[name] = False
            self._changed.notify_all()

    # -- what tests do ---------------------------------------------------------------------

    def lines(self, stream: Stream) -> list[str]:
        with self._changed:
            return [line for _, line in self._lines[stream]]

    def text(self, stream: Stream) -> str:
        return "\n".join(self.lines(stream))

    def wait_for(
        self, stream: Stream, wanted: str | Callable[[str], bool], timeout: float
    ) -> tuple[float, str] | None:
        """The first line of ``stream`` that contains ``wanted`` (or satisfies it), with the
        moment it arrived; waits up to ``timeout`` seconds for it. None if none came (or the
        stream ended without it)."""
        test = wanted if callable(wanted) else (lambda line: wanted in line)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for moment, line in self._lines[stream]:
                    if test(line):
                        return moment, line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._open[stream]:
                    return None
                self._changed.wait(remaining)

    def next_line(self, stream: Stream, timeout: float) -> str | None:
        """The line of ``stream`` after the one this last returned (the first, at first), as
        ``readline`` would read them; waits up to ``timeout`` seconds for it. None if none
        came (or the stream ended)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._lines[stream]) <= self._next[stream]:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._open[stream]:
                    return None
                self._changed.wait(remaining)
            self._next[stream] += 1
            return self._lines[stream][self._next[stream] - 1][1]

    def alive(self) -> bool:
        return self.process.poll() is None

    def write(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def finish(self, timeout: float = 60) -> int:
        """Close the child's stdin (it then goes on to its end) and wait for it to exit."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        return self.wait(timeout)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        """Wait for the child to exit and for its output to be read to the end."""
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def close(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.wait(10)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
