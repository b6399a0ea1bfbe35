"""Deadline: a time limit on each operation of the writer's connection, kept from outside.

A network can stall without a word: a dead NAT entry, a hung load balancer that still
answers keepalives, a server that froze. Then nothing inside the connection gives up:
the server's timeouts can't reach the client, libpq waits for bytes that never come,
and the writer would sit inside COPY for as long as the stall lasts. So every operation
the writer starts on a connection is *armed* with a deadline, and one watchdog thread
(for the whole process) shuts the socket down when an armed operation outlives it. The
blocked call then fails at once, as if the server had gone, and the writer takes its
usual path: reconnect, and ask what became of the transaction.

Shutting the socket down (rather than closing it) is safe from another thread: the
descriptor stays the writer's, only the connection under it ends. The watchdog acts
under its lock, and disarming takes the same lock, so it never touches a descriptor the
writer has moved on from.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass


class Expired(Exception):
    """An armed operation outlived its deadline, and its connection was shut down."""


@dataclass(eq=False)
class _Armed:
    descriptor: int
    deadline: float
    fired: bool = False


class Watchdog:
    """Shuts down the sockets of operations past their deadline; one thread for all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._armed: set[_Armed] = set()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def armed(self, descriptor: int, seconds: float) -> Iterator[None]:
        """Bound what runs inside to ``seconds`` on the socket ``descriptor``; raises
        Expired after it, if the watchdog had to cut it short. A block cut short ends in
        an error of its own (libpq's "server closed the connection", from the socket
        shut down): Expired takes its place, since the server did nothing of the kind."""
        guard = _Armed(descriptor, time.monotonic() + seconds)
        with self._lock:
            self._armed.add(guard)
            self._start()
            self._changed.notify()
        try:
            yield
        except BaseException as error:
            self._disarm(guard, seconds, error)
            raise
        self._disarm(guard, seconds, None)

    def _disarm(self, guard: _Armed, seconds: float, error: BaseException | None) -> None:
        """Stop watching ``guard``; raise Expired if the watchdog had cut it short."""
        with self._lock:
            self._armed.discard(guard)
        if guard.fired:
            raise Expired(f"no answer within {seconds:g} s") from error

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="pglog-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for guard in [g for g in self._armed if g.deadline <= now and not g.fired]:
                    guard.fired = True
                    _shut_down(guard.descriptor)
                waiting = [g.deadline for g in self._armed if not g.fired]
                self._changed.wait(min(waiting) - now if waiting else None)

    def after_fork(self) -> None:
        """In a forked child: the thread is gone, and nothing the parent armed is ours."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._armed = set()
        self._thread = None


def _shut_down(descriptor: int) -> None:
    with contextlib.suppress(OSError):
        twin = socket.socket(fileno=socket.dup(descriptor))
        try:
            twin.shutdown(socket.SHUT_RDWR)
        finally:
            twin.close()


#: The one watchdog of this process.
WATCHDOG = Watchdog()
