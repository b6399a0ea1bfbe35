"""pglog.bind and pglog.timed, and the structured loggers users put in front of pglog."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import HandlerFactory
from helpers import fetch

import pglog

EXAMPLES = Path(__file__).parents[2] / "examples"


def extras(db: psycopg.Connection[Any], table: str) -> list[tuple[str, dict[str, Any]]]:
    return [(m, e) for m, e in fetch(db, table, "message, extra_data")]


def test_bind_adds_fields_nests_and_restores(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Inner blocks add to outer ones; a record's own extra= wins; leaving a block, even
    by an exception, restores what was bound before."""
    handler = make_handler()
    logger.addHandler(handler)

    def inner() -> None:
        with pglog.bind(user_id=8, step="pay"):
            logger.info("inner", extra={"step": "own"})
            raise KeyError("x")

    with pglog.bind(request_id="r1", user_id=7):
        logger.info("outer")
        with pytest.raises(KeyError):
            inner()
        logger.info("outer again")
    logger.info("outside")
    assert handler.flush(10)
    assert extras(db, table) == [
        ("outer", {"request_id": "r1", "user_id": 7}),
        ("inner", {"request_id": "r1", "user_id": 8, "step": "own"}),
        ("outer again", {"request_id": "r1", "user_id": 7}),
        ("outside", {}),
    ]


def test_bind_follows_asyncio_tasks(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Concurrent tasks, interleaved at every await, each keep their own fields; a task
    created inside a block keeps its fields after the block has ended."""
    handler = make_handler()
    logger.addHandler(handler)

    async def request(n: int) -> None:
        with pglog.bind(request_id=n):
            for step in range(3):
                await asyncio.sleep(0)  # hand over to the other tasks
                logger.info("request %d step %d", n, step)

    async def late() -> None:
        await started.wait()
        logger.info("late")

    async def main() -> None:
        with pglog.bind(origin="main"):
            task = asyncio.create_task(late())
        await asyncio.gather(*(request(n) for n in range(5)))
        started.set()
        await task

    started = asyncio.Event()
    asyncio.run(main())
    assert handler.flush(10)
    stored = extras(db, table)
    assert len(stored) == 16
    for message, extra in stored[:-1]:
        assert extra == {"request_id": int(message.split()[1])}
    assert stored[-1] == ("late", {"origin": "main"})


def test_bind_stays_in_its_thread(
    make_handler: HandlerFactory, logger: logging.Logger, db: psycopg.Connection[Any], table: str
) -> None:
    """Two threads binding at once never see each other's fields; a thread started inside
    a block starts without them unless given the context (as run_in_executor does)."""
    handler = make_handler()
    logger.addHandler(handler)
    both = threading.Barrier(2)

    def work(name: str) -> None:
        with pglog.bind(worker=name):
            both.wait(10)
            for i in range(100):
                logger.info("%s %d", name, i)
            both.wait(10)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with pglog.bind(job="nightly"):
        plain = threading.Thread(target=logger.info, args=("plain thread",))
        given = threading.Thread(
            target=contextvars.copy_context().run, args=(logger.info, "given the context")
        )
        for thread in (plain, given):
            thread.start()
            thread.join()
    assert handler.flush(10)
    stored = extras(db, table)
    assert len(stored) == 202
    for message, extra in stored[:200]:
        assert extra == {"worker": message.split()[0]}
    assert ("plain thread", {}) in stored
    assert ("given the context", {"job": "nightly"}) in stored


@pglog.timed("checkout")
def checkout(fail: bool) -> str:
    if fail:
        raise ValueError("card declined")
    return "done"


@pglog.timed("fetch", logger="shop.fetch")
async def fetch_async() -> int:
    await asyncio.sleep(0.01)
    return 3


@pytest.fixture
def module_logger(make_handler: HandlerFactory) -> Iterator[pglog.DatabaseLogHandler]:
    """The handler on this module's logger and shop.fetch: where timed() logs by default."""
    handler = make_handler()
    loggers = [logging.getLogger(__name__), logging.getLogger("shop.fetch")]
    for each in loggers:
        each.addHandler(handler)
        each.setLevel(logging.INFO)
    yield handler
    for each in loggers:
        each.removeHandler(handler)


def test_timed_logs_duration_and_outcome(
    module_logger: pglog.DatabaseLogHandler, db: psycopg.Connection[Any], table: str
) -> None:
    """One record per call, from the timed code's place: the duration, "ok" or "error"
    with the exception's type; the result and the exception pass through untouched."""
    assert checkout(False) == "done"
    with pytest.raises(ValueError, match="card declined"):
        checkout(True)
    assert asyncio.run(fetch_async()) == 3
    with pglog.bind(request_id="r9"), pglog.timed("render"):
        sum(range(1000))
    with pytest.raises(KeyError), pglog.timed("lookup"):
        raise KeyError("k")
    assert module_logger.flush(10)
    rows = fetch(db, table, "level, logger_name, function_name, lineno, message, extra_data")
    assert len(rows) == 5
    by_operation = {row[5]["operation"]: row for row in rows}
    ok, failed = rows[0], rows[1]
    assert ok[:3] == ("INFO", __name__, "checkout")
    assert ok[3] == checkout.__wrapped__.__code__.co_firstlineno  # type: ignore[attr-defined]
    assert ok[4].startswith("checkout took ")
    assert ok[5]["outcome"] == "ok"
    assert ok[5]["duration_ms"] >= 0
    assert failed[0] == "ERROR"
    assert failed[5]["outcome"] == "error"
    assert failed[5]["error_type"] == "ValueError"
    fetched = by_operation["fetch"]
    assert fetched[1:3] == ("shop.fetch", "fetch_async")
    assert fetched[5]["duration_ms"] >= 10
    render = by_operation["render"]
    assert render[1:3] == (__name__, "test_timed_logs_duration_and_outcome")
    assert render[5]["request_id"] == "r9"
    assert by_operation["lookup"][5]["error_type"] == "KeyError"


def _example(name: str) -> Any:
    """The recipe module under examples/, loaded from the file the README shows."""
    path = EXAMPLES / name / "logging_setup.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_structlog_fields_land_in_extra_data(
    make_handler: HandlerFactory, db: psycopg.Connection[Any], table: str
) -> None:
    """The README's structlog set-up: key-value pairs and bound context variables in
    extra_data, the event as the message, a traceback in its column."""
    import structlog

    handler = make_handler()
    root = logging.getLogger()
    level = root.level
    _example("structlog").configure(handler)
    try:
        log = structlog.get_logger("shop")
        structlog.contextvars.bind_contextvars(request_id="s-1")
        log.info("order placed", order_id=7, amount=9.5)
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.exception("payment failed", order_id=8)
        log.debug("not at this level")
        assert handler.flush(10)
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        root.removeHandler(handler)
        root.setLevel(level)
    rows = fetch(db, table, "level, logger_name, message, extra_data, exception")
    assert [row[:4] for row in rows] == [
        ("INFO", "shop", "order placed", {"order_id": 7, "amount": 9.5, "request_id": "s-1"}),
        ("ERROR", "shop", "payment failed", {"order_id": 8, "request_id": "s-1"}),
    ]
    assert rows[0][4] is None
    assert "ZeroDivisionError: division by zero" in rows[1][4]


def test_loguru_fields_land_in_extra_data(
    make_handler: HandlerFactory, db: psycopg.Connection[Any], table: str
) -> None:
    """The README's loguru set-up: bind() and contextualize() fields flat in extra_data,
    the bare message, the traceback in its column, loguru's own levels by name."""
    from loguru import logger

    handler = make_handler()
    sink = _example("loguru")
    logger.remove()
    sink.configure(handler)
    try:
        with logger.contextualize(request_id="l-1"):
            logger.bind(user_id=42).info("signed in as {}", "ada")
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                logger.exception("boom")
        logger.success("paid")
        assert handler.flush(10)
    finally:
        logger.remove()
    rows = fetch(db, table, "level, message, extra_data, exception, function_name")
    assert [row[:3] for row in rows] == [
        ("INFO", "signed in as ada", {"user_id": 42, "request_id": "l-1"}),
        ("ERROR", "boom", {"request_id": "l-1"}),
        ("SUCCESS", "paid", {}),
    ]
    assert rows[0][4] == "test_loguru_fields_land_in_extra_data"
    assert rows[1][3].startswith("Traceback (most recent call last):")
    assert rows[1][3].rstrip().endswith("ZeroDivisionError: division by zero")


def test_one_timer_open_in_overlapping_tasks(
    module_logger: pglog.DatabaseLogHandler, db: psycopg.Connection[Any], table: str
) -> None:
    """A timer shared by tasks whose blocks overlap (not nested) times each on its own."""
    shared = pglog.timed("step")

    async def first() -> None:
        with shared:
            await asyncio.sleep(0.1)

    async def second() -> None:
        await asyncio.sleep(0.05)
        with shared:
            await asyncio.sleep(0.25)

    async def main() -> None:
        await asyncio.gather(first(), second())

    asyncio.run(main())
    assert module_logger.flush(10)
    durations = [extra["duration_ms"] for (extra,) in fetch(db, table, "extra_data")]
    assert len(durations) == 2
    assert durations[0] >= 100  # the first to end: it began first, 100 ms before
    assert durations[1] >= 250


def test_timed_options_are_checked_and_logging_never_breaks_the_code(
    module_logger: pglog.DatabaseLogHandler,
    db: psycopg.Connection[Any],
    table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Mistakes in the options fail where timed() is written; a generator can't be timed
    by calling it; a cancelled task is "cancelled", not an error; a logging failure (a
    raising filter) is printed, and the timed code's result stands."""
    with pytest.raises(ValueError, match="level must be a level number or name"):
        pglog.timed("x", level="LOUD")
    with pytest.raises(TypeError, match="logger must be a Logger"):
        pglog.timed("x", logger=42)  # type: ignore[arg-type]

    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="can't time the generator"):
        pglog.timed("gen")(numbers)

    async def waits() -> None:
        with pglog.timed("slow", level="warning"):
            await asyncio.sleep(60)

    async def cancel() -> None:
        task = asyncio.create_task(waits())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel())

    def refuse(record: logging.LogRecord) -> bool:
        raise RuntimeError("filter broke")

    logger = logging.getLogger(__name__)
    logger.addFilter(refuse)
    try:
        assert pglog.timed("filtered")(lambda: 42)() == 42
    finally:
        logger.removeFilter(refuse)
    assert "RuntimeError: filter broke" in capsys.readouterr().err
    assert module_logger.flush(10)
    [(level, extra)] = fetch(db, table, "level, extra_data")
    assert level == "WARNING"
    assert extra["outcome"] == "cancelled"
    assert extra["error_type"] == "asyncio.exceptions.CancelledError"
