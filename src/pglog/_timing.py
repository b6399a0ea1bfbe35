"""Timing: one record per timed operation, with how long it took and how it ended.

``extra_data`` gets ``operation``, ``duration_ms`` and ``outcome``: ``"ok"``;
``"error"`` with ``error_type``, the exception's class (module-qualified unless built
in); or ``"cancelled"`` (with ``error_type``) when a ``BaseException`` that is not an
error ended it: a cancelled task, ``KeyboardInterrupt``, ``SystemExit``. So
``WHERE extra_data->>'operation' = 'checkout'`` gives durations to chart and failures to
count. The exception itself propagates untouched: the application logs it, or not, as
it always did; the timing record carries no traceback to repeat it. Nor can logging the
record ever change what the timed code returns or raises.

The record is attributed to the timed code: as a decorator, to the decorated
function (its module's logger, its name and line); as a context manager, to the line
of the ``with`` (the logger of the module it is in).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar

from pglog._text import shown

P = ParamSpec("P")
R = TypeVar("R")

#: When each open ``with timed(...)`` block began, per timer (by id), in this context:
#: one timer may be open in several tasks or threads at once, and nested in itself.
_STARTED: ContextVar[Mapping[int, tuple[float, ...]]] = ContextVar(
    "pglog_timed", default=MappingProxyType({})
)


class timed:  # noqa: N801 - used like contextlib's helpers: @pglog.timed("x"), with pglog.timed("x")
    """Time a block or a function (sync or async) and log one record when it ends.

    ``logger``: a Logger or a logger name (default: the timed code's module);
    ``level``: for an operation that succeeded or was cancelled (default INFO); one that
    raised an error is logged at ``error_level`` (default ERROR). Levels may be names.
    """

    def __init__(
        self,
        operation: str,
        *,
        logger: logging.Logger | str | None = None,
        level: int | str = logging.INFO,
        error_level: int | str = logging.ERROR,
    ) -> None:
        if not isinstance(logger, (logging.Logger, str, type(None))):
            raise TypeError(f"logger must be a Logger or a logger name, got {shown(logger)}")
        self.operation = str(operation)
        self.level = _level(level, "level")
        self.error_level = _level(error_level, "error_level")
        self._logger = logger

    # -- as a context manager -----------------------------------------------------------------

    def __enter__(self) -> timed:
        started = _STARTED.get()
        mine = (*started.get(id(self), ()), time.perf_counter())
        _STARTED.set(MappingProxyType({**started, id(self): mine}))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ended = time.perf_counter()
        started = dict(_STARTED.get())
        *rest, began = started.pop(id(self))
        if rest:
            started[id(self)] = tuple(rest)
        _STARTED.set(MappingProxyType(started))
        caller = sys._getframe(1)
        where = (caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name)
        self._log(ended - began, kind, caller.f_globals.get("__name__", "root"), where)

    # -- as a decorator -----------------------------------------------------------------------

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise TypeError(
                f"timed can't time the generator {function.__qualname__}: calling it only"
                " makes the generator; time the loop that consumes it instead"
            )
        code = getattr(inspect.unwrap(function), "__code__", None)
        name = getattr(function, "__name__", type(function).__name__)
        where = (code.co_filename, code.co_firstlineno, name) if code else ("", 0, name)
        module = getattr(function, "__module__", None) or "root"

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_coroutine(*args: P.args, **kwargs: P.kwargs) -> Any:
                started, kind = time.perf_counter(), None
                try:
                    return await function(*args, **kwargs)
                except BaseException as exc:
                    kind = type(exc)
                    raise
                finally:
                    self._log(time.perf_counter() - started, kind, module, where)

            return timed_coroutine  # type: ignore[return-value]

        @functools.wraps(function)
        def timed_function(*args: P.args, **kwargs: P.kwargs) -> R:
            started, kind = time.perf_counter(), None
            try:
                return function(*args, **kwargs)
            except BaseException as exc:
                kind = type(exc)
                raise
            finally:
                self._log(time.perf_counter() - started, kind, module, where)

        return timed_function

    # -- the record ---------------------------------------------------------------------------

    def _log(
        self,
        elapsed: float,
        kind: type[BaseException] | None,
        module: str,
        where: tuple[str, int, str],
    ) -> None:
        """Log the record; a failure here (a raising filter, say) is printed the way a
        handler's would be, never raised into the timed code's caller."""
        try:
            logger = self._logger
            if not isinstance(logger, logging.Logger):
                logger = logging.getLogger(logger or module)
            failed = kind is not None and issubclass(kind, Exception)
            level = self.error_level if failed else self.level
            if not logger.isEnabledFor(level):
                return
            duration_ms = round(elapsed * 1000, 3)
            extra: dict[str, Any] = {"operation": self.operation, "duration_ms": duration_ms}
            args: tuple[object, ...]
            if kind is None:
                extra["outcome"] = "ok"
                message, args = "%s took %.1f ms", (self.operation, duration_ms)
            else:
                error_type = kind.__qualname__
                if kind.__module__ != "builtins":
                    error_type = f"{kind.__module__}.{error_type}"
                extra["outcome"] = "error" if failed else "cancelled"
                extra["error_type"] = error_type
                message = f"%s {'failed' if failed else 'cancelled'} after %.1f ms: %s"
                args = (self.operation, duration_ms, error_type)
            filename, lineno, function = where
            record = logger.makeRecord(
                logger.name, level, filename, lineno, message, args, None, function, extra
            )
            logger.handle(record)
        except Exception:
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.stderr)


def _level(level: int | str, option: str) -> int:
    """A level number, from a number or a name; a ValueError naming the option if neither."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else None
    if not isinstance(number, int):
        raise ValueError(f"{option} must be a level number or name, got {shown(level)}")
    return number
