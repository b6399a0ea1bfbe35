"""Timing: one record per timed operation, with how long it took and how it ended.

``extra_data`` gets ``operation``, ``duration_ms`` and ``outcome`` (``"ok"``, or
``"error"`` with ``error_type``, the exception's class, module-qualified unless built in), so that
``WHERE extra_data->>'operation' = 'checkout'`` gives durations to chart and failures
to count. The exception itself propagates untouched: the application logs it, or
not, as it always did; the timing record carries no traceback to repeat it.

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
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class timed:  # noqa: N801 - used like contextlib's helpers: @pglog.timed("x"), with pglog.timed("x")
    """Time a block or a function (sync or async) and log one record when it ends.

    ``logger``: a Logger or a logger name (default: the timed code's module);
    ``level``: for an operation that succeeded (default INFO); one that raised is logged
    at ``error_level`` (default ERROR).
    """

    def __init__(
        self,
        operation: str,
        *,
        logger: logging.Logger | str | None = None,
        level: int = logging.INFO,
        error_level: int = logging.ERROR,
    ) -> None:
        self.operation = operation
        self.level = level
        self.error_level = error_level
        self._logger = logger
        self._started: list[float] = []  # a stack: the same object may time nested blocks

    # -- as a context manager --------------------------------------------------------

    def __enter__(self) -> timed:
        self._started.append(time.perf_counter())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        caller = sys._getframe(1)
        where = (caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name)
        self._log(elapsed, kind, caller.f_globals.get("__name__", "root"), where)

    # -- as a decorator ----------------------------------------------------------------

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        code = function.__code__
        where = (code.co_filename, code.co_firstlineno, function.__name__)
        module = function.__module__

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

    # -- the record --------------------------------------------------------------------

    def _log(
        self,
        elapsed: float,
        kind: type[BaseException] | None,
        module: str,
        where: tuple[str, int, str],
    ) -> None:
        logger = self._logger
        if not isinstance(logger, logging.Logger):
            logger = logging.getLogger(logger or module)
        level = self.level if kind is None else self.error_level
        if not logger.isEnabledFor(level):
            return
        duration_ms = round(elapsed * 1000, 3)
        extra: dict[str, Any] = {
            "operation": self.operation,
            "duration_ms": duration_ms,
            "outcome": "ok" if kind is None else "error",
        }
        args: tuple[object, ...]
        if kind is None:
            message, args = "%s took %.1f ms", (self.operation, duration_ms)
        else:
            error_type = kind.__qualname__
            if kind.__module__ != "builtins":
                error_type = f"{kind.__module__}.{error_type}"
            extra["error_type"] = error_type
            message = "%s failed after %.1f ms: %s"
            args = (self.operation, duration_ms, error_type)
        filename, lineno, function = where
        record = logger.makeRecord(
            logger.name, level, filename, lineno, message, args, None, function, extra
        )
        logger.handle(record)
