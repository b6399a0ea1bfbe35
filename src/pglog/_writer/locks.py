"""Locks: does this thread hold one, and letting go of it for a while.

The locks a caller's thread takes inside pglog (a handler's state lock, its queue's) are
reentrant for one reason: a signal handler runs in the main thread, wherever it was
interrupted, perhaps inside one of them or inside ``logging`` (whose module lock is
reentrant too). Of a reentrant lock, a thread can tell whether it holds it, and let go
of it entirely for a while (as ``threading.Condition.wait`` does) so that another thread
can do what needs it; the SIGTERM hook does, while its closing runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Protocol, cast


class _Reentrant(Protocol):
    """The part of ``threading.RLock`` that ``threading.Condition`` uses."""

    def _is_owned(self) -> bool: ...

    def _release_save(self) -> object: ...

    def _acquire_restore(self, state: object) -> None: ...


def held_here(lock: object) -> bool:
    """Does this thread hold ``lock`` (a reentrant one; any other: no one can tell)?"""
    owned = getattr(lock, "_is_owned", None)
    return bool(owned is not None and owned())


@contextlib.contextmanager
def let_go(locks: Iterable[object]) -> Iterator[None]:
    """Inside, this thread holds none of ``locks``, however deep it held them; after,
    it holds them again as before. Whatever they guard may be half changed: only for
    a thread that will not go back to that change (the process is about to end)."""
    saved: list[tuple[_Reentrant, object]] = []
    try:
        for lock in {id(lock): lock for lock in locks}.values():
            if held_here(lock):
                reentrant = cast(_Reentrant, lock)
                saved.append((reentrant, reentrant._release_save()))
        yield
    finally:
        for reentrant, state in reversed(saved):
            reentrant._acquire_restore(state)
