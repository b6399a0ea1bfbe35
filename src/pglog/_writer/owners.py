"""Owners: which process a spool's segments belong to, by lock files that die with it.

Each live process holds ``owner-<token>.lock`` (``flock``) for the segments it writes
under ``<token>``. A lock that can be taken belongs to a process that is gone: whoever
takes it replays that process's segments, and removes the lock once they are done. A
lock file whose process is gone and that left no segments at all is removed on sight,
so killed processes don't leave their lock files behind for ever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO


class Owners:
    """This process's owner lock in ``directory``, and the dead owners' it took over."""

    def __init__(self, directory: Path, token: str) -> None:
        self.directory = directory
        self.token = token
        self._own: IO[bytes] | None = None
        self._taken: dict[str, IO[bytes]] = {}

    def _path(self, token: str) -> Path:
        return self.directory / f"owner-{token}.lock"

    def hold(self) -> None:
        """Hold this process's lock (again, if the directory was removed since)."""
        path = self._path(self.token)
        if self._own is not None and path.exists():
            return
        if self._own is not None:
            self._own.close()
        own = path.open("wb")
        fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._own = own

    def holds(self, token: str) -> bool:
        """Are ``token``'s segments ours to replay (this process's, or taken over)?"""
        return token == self.token or token in self._taken or self._take(token)

    def _take(self, token: str) -> bool:
        """Take the lock of ``token`` if its process is gone."""
        try:
            descriptor = os.open(self._path(token), os.O_RDWR)
        except OSError:  # a finished orphan's lock, removed: nothing left to take
            return False
        handle = os.fdopen(descriptor, "rb+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._taken[token] = handle
        return True

    def let_go(self, token: str, *, done: bool) -> None:
        """Release a taken-over lock; ``done``: its segments are all replayed, remove it."""
        handle = self._taken.pop(token, None)
        if handle is not None:
            handle.close()
            if done:
                self._path(token).unlink(missing_ok=True)

    def forget_dead(self, tokens_with_segments: set[str]) -> None:
        """Remove the lock files of processes that are gone and left no segments."""
        try:
            locks = list(self.directory.glob("owner-*.lock"))
        except OSError:
            return
        for lock in locks:
            token = lock.stem.removeprefix("owner-")
            if token == self.token or token in tokens_with_segments:
                continue
            if token in self._taken or self._take(token):
                self.let_go(token, done=True)

    def close(self, *, done: bool) -> None:
        """Release every lock; ``done``: this process leaves no segments, remove its lock."""
        for token in list(self._taken):
            self.let_go(token, done=False)
        if self._own is not None:
            if done:
                with contextlib.suppress(OSError):
                    self._path(self.token).unlink()
            self._own.close()
            self._own = None

    def abandon(self) -> None:
        """In a forked child: drop the inherited files without releasing the parent's locks
        (a lock belongs to the open file, which the parent still has)."""
        for handle in [*self._taken.values(), *([self._own] if self._own else [])]:
            with contextlib.suppress(OSError):
                os.close(handle.fileno())
        self._own, self._taken = None, {}
