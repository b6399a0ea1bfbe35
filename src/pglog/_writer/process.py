"""Process: what pglog's handlers do when the process forks, exits, or is told to stop.

- **Fork.** A child starts clean: every handler, open or closed (even one closing at the
  fork, in another thread), is as if just built: open, with a new pipeline (empty queue,
  no connection, no threads); the parent writes what it had queued.
- **Exit.** When the interpreter starts to stop its threads (before ``atexit``, and also
  at the end of a ``multiprocessing`` child, which leaves through ``os._exit``), every
  handler is flushed, and that moment sets the one deadline of the whole exit:
  ``close_timeout`` from then. Every flush and close during the exit ends by it, so an
  exit takes ``close_timeout`` at most, however many steps ask (this hook, ``atexit``,
  ``logging.shutdown()``). At ``atexit`` every handler still open is closed, including
  one that was closed and then used again (``dictConfig`` drops such handlers from
  logging's own list, so ``logging.shutdown()`` would not).
- **SIGTERM.** Where SIGTERM would end the process without any clean-up (its disposition
  is the default: a container being stopped, ``kill``, ``uvicorn`` re-raising it after
  its own shutdown), pglog installs a handler that closes every handler within the exit
  deadline, then restores the default and raises the signal again, so the process ends
  as it would have. A handler the application installed is never replaced. The signal
  may have interrupted the main thread inside logging (``dictConfig`` holds its module
  lock throughout) or inside pglog, holding a lock the closing needs: the closing runs
  in a thread of its own, and the main thread lets go of those locks while it waits
  (see ``locks``); it never goes back to what it was doing.
- **Reconfiguration.** ``logging.config.dictConfig`` closes handlers while holding
  logging's module lock; a writer may need that lock to log (psycopg logs at DEBUG
  inside it). ``logging_lock_held`` tells close() not to wait then; such a handler stays
  known here (held, even if the application lets go of it) until a close that may wait
  finishes it: at exit, the exit's close does.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from pglog._writer.locks import held_here, let_go

#: Idents of pglog's threads running now (see ``own_thread``): a record logged in one of
#: them (psycopg's debug output, say) is never queued by pglog (``DatabaseLogHandler.handle``
#: looks, inline: it runs in every logging call). Cleared in place, never rebound.
OWN_THREADS: set[int] = set()


class Closable(Protocol):
    close_timeout: float
    handle_sigterm: bool

    @property
    def caller_locks(self) -> tuple[object, ...]: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...

    def after_fork_in_child(self) -> None: ...


class _Exit:
    """The exit under way, if one is: its deadline, and that no writer may start now."""

    deadline: float | None = None
    begun = False


#: Every handler built: a forked child renews them all.
_every: weakref.WeakSet[Closable] = weakref.WeakSet()
#: Handlers the exit must close: open ones, and those whose close did not wait.
_live: weakref.WeakSet[Closable] = weakref.WeakSet()
#: Handlers whose close did not wait, held until a close finishes them: their writer may
#: still hold records, and nothing else may refer to them (dictConfig dropped them).
_finishing: set[Closable] = set()
_exit = _Exit()


def stopping() -> bool:
    """Has the interpreter begun to exit (no thread may start now)?"""
    return _exit.begun


def own_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread of pglog's whose records pglog never queues. Its ident is pglog's
    only while ``target`` runs, added and removed by the thread itself: an ident outlives
    its thread (the C library hands it to the next one), and a stale one would mute an
    application thread, silently."""

    def run() -> None:
        ident = threading.get_ident()
        OWN_THREADS.add(ident)
        try:
            target()
        finally:
            OWN_THREADS.discard(ident)

    return threading.Thread(target=run, name=name, daemon=True)


def register(handler: Closable) -> None:
    """A handler now open; installs the SIGTERM hook if it wants one and it's possible."""
    _every.add(handler)
    _live.add(handler)
    _finishing.discard(handler)
    if handler.handle_sigterm:
        _install_sigterm()


def left_finishing(handler: Closable) -> None:
    """A close that did not wait: the exit still closes ``handler``, and waits then."""
    _live.add(handler)
    _finishing.add(handler)


def unregister(handler: Closable) -> None:
    """``handler`` is closed, and its writer done or given up on."""
    _live.discard(handler)
    _finishing.discard(handler)


def deadline(own: float) -> float:
    """``own`` deadline, or the exit's if one is under way and sooner."""
    return own if _exit.deadline is None else min(own, _exit.deadline)


def logging_lock_held() -> bool:
    """Does this thread hold logging's module lock (as dictConfig does while closing)?"""
    return held_here(getattr(logging, "_lock", None))


def _begin_exit() -> None:
    _exit.begun = True
    if _exit.deadline is None:
        longest = max((h.close_timeout for h in list(_live)), default=0.0)
        _exit.deadline = time.monotonic() + longest


def _flush_before_threads_stop() -> None:
    """The interpreter starts to stop its threads: flush every handler, by the exit's
    deadline. Only a flush: the handlers stay open for what ``atexit`` functions log."""
    _begin_exit()
    for handler in list(_live):
        with contextlib.suppress(Exception):
            handler.flush()


def _close_at_exit() -> None:
    _begin_exit()
    _close_all(list(_live))


def _after_fork_in_child() -> None:
    _exit.begun, _exit.deadline = False, None  # a child forked at exit lives on
    OWN_THREADS.clear()
    from pglog._writer.deadline import WATCHDOG

    WATCHDOG.after_fork()
    _finishing.clear()
    for handler in list(_every):
        handler.after_fork_in_child()
        _live.add(handler)


# -- SIGTERM ---------------------------------------------------------------------------------


def _install_sigterm() -> None:
    """Install the SIGTERM hook where SIGTERM's disposition is the default, from the main
    thread (only it may); elsewhere, or if the application has a handler, do nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter
        return


def _on_sigterm(signum: int, frame: object) -> None:
    _begin_exit()
    wanted = [h for h in list(_live) if h.handle_sigterm]
    closer = threading.Thread(target=_close_all, args=(wanted,), name="pglog-sigterm", daemon=True)
    held = [
        getattr(logging, "_lock", None),
        *(lock for h in list(_live) for lock in h.caller_locks),
    ]
    with let_go(held):
        closer.start()
        closer.join(max(0.0, (_exit.deadline or time.monotonic()) - time.monotonic()) + 0.5)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _close_all(handlers: list[Closable]) -> None:
    for handler in handlers:
        with contextlib.suppress(Exception):
            handler.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
# The stdlib's own hook for this moment (concurrent.futures uses it too); it is private,
# so fall back to atexit where it is missing.
getattr(threading, "_register_atexit", atexit.register)(_flush_before_threads_stop)
atexit.register(_close_at_exit)
