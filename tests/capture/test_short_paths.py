"""The short paths of capture() against the careful one: whatever a record holds, the
writer gets the same entry from either (once named), and the queue weighs what it holds.

Each case makes a record (and, maybe, binds fields around its capture); the careful path
(``_capture_carefully``) is the reference: it looks at every attribute, and the short
paths exist only to be cheaper, never different. The careful path formats the message in
the caller's thread while a short path leaves it to the writer, so entries are compared
as the writer reads them: the message rendered, its template, the extras as stored."""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import sys
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import pytest
from helpers import make_record

import pglog
from pglog._capture.capture import _capture_carefully, capture, render
from pglog._capture.context import BOUND, Bound
from pglog._capture.entry import (
    LIGHT_EXTRAS,
    LIGHT_TEXT,
    LIGHT_TEXT_EXTRAS,
    RECORD_ATTRIBUTES,
    Entry,
    named,
    template_of,
)
from pglog._capture.notes import MARKER_KEY
from pglog._capture.row import to_row
from pglog._capture.sanitize import SCALARS
from pglog._writer.queue import ENTRY_BYTES, is_light, weight
from pglog._writer.segments import line

Case = Callable[[], logging.LogRecord]


def _bare(**extra: object) -> Case:
    return lambda: make_record(**extra)


def _with_args(args: tuple[object, ...], msg: str = "a %s b", **extra: object) -> Case:
    return lambda: make_record(msg, args, **extra)


class Level(enum.IntEnum):
    WARN = 30


class Colour(str, enum.Enum):
    RED = "red"


class Flag(enum.IntFlag):
    A = 1


class Text(str):
    """A str subclass: not a plain scalar, however much it looks like one."""


class Number(int):
    """An int subclass whose text is not its number."""

    def __str__(self) -> str:
        return "not a number"

    __repr__ = __str__


class Thing:
    def __repr__(self) -> str:
        return "<thing>"


def _formatted() -> logging.LogRecord:
    record = make_record(user=1, path="/x")
    logging.Formatter("%(asctime)s %(message)s").format(record)
    return record


def _asctime_only() -> logging.LogRecord:
    record = make_record(user=1)
    record.asctime = "yesterday"
    return record


def _lacking(name: str, **extra: object) -> Case:
    def make() -> logging.LogRecord:
        record = make_record(**extra)
        delattr(record, name)
        return record

    return make


def _moved(name: str, **extra: object) -> Case:
    def make() -> logging.LogRecord:
        record = make_record(**extra)
        value = getattr(record, name)
        delattr(record, name)
        setattr(record, name, value)
        return record

    return make


def _moved_then_more(name: str) -> Case:
    """An own attribute deleted and set again, and an extra added after it (two filters)."""

    def make() -> logging.LogRecord:
        record = _moved(name, user=1, path="/x")()
        record.late = 2
        return record

    return make


def _filtered(msg: object, args: Any) -> Case:
    def make() -> logging.LogRecord:
        record = make_record("orig %s", ("x",), user=1)
        record.msg, record.args = msg, args
        return record

    return make


def _with_exception() -> logging.LogRecord:
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    log = logging.getLogger("short.test")
    return log.makeRecord(log.name, logging.ERROR, __file__, 1, "m", (), info, "f", {"user": 1})


def _with_stack() -> logging.LogRecord:
    log = logging.getLogger("short.test")
    return log.makeRecord(
        log.name, logging.INFO, __file__, 1, "m", (), None, "f", {"user": 1}, sinfo="Stack:\n x"
    )


class Sub(logging.LogRecord):
    pass


def _subclass() -> logging.LogRecord:
    record = Sub("n", logging.INFO, __file__, 1, "m %s", ("a",), None)
    record.user = 1
    return record


def _factory(**added: object) -> Case:
    """A record made through logging's record factory, which adds attributes (as
    OpenTelemetry's instrumentation does)."""

    def make() -> logging.LogRecord:
        old = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = old(*args, **kwargs)
            for key, value in added.items():
                setattr(record, key, value)
            return record

        logging.setLogRecordFactory(factory)
        try:
            return make_record(user=1)
        finally:
            logging.setLogRecordFactory(old)

    return make


def _keyed(key: Any, value: object = "v", **extra: object) -> Case:
    """A record given a key that is not a plain str by hand."""

    def make() -> logging.LogRecord:
        record = make_record(**extra)
        record.__dict__[key] = value
        return record

    return make


OTEL = {
    "otelTraceID": "0af7651916cd43dd8448eb211c80319c",
    "otelSpanID": "b7ad6b7169203331",
    "otelServiceName": "shop",
    "otelTraceSampled": True,
}
FIVE = {"user_id": 42, "path": "/orders/1", "status": 200, "ms": 1.5, "cached": True}
# the message "a %s b" plus its argument: the text around LIGHT_TEXT(_EXTRAS) is the value's
_TEXT = len("a %s b")

CASES: dict[str, Case] = {
    "no extras": _bare(),
    "one extra": _bare(user=1),
    "five extras": _bare(**FIVE),
    "str": _bare(v="text"),
    "int": _bare(v=-(10**30)),
    "float": _bare(v=2.5),
    "nan": _bare(v=float("nan")),
    "inf": _bare(v=float("-inf")),
    "bool": _bare(v=False),
    "none": _bare(v=None),
    "empty str": _bare(v=""),
    "nul and surrogate": _bare(a="x\x00y", b="\ud800"),
    "huge int": _bare(v=10**4200),
    "args str": _with_args(("arg",), user=1),
    "args int": _with_args((5,), msg="a %d b", user=1),
    "args none": _with_args((None,), user=1),
    "args empty": _with_args((), msg="no args", user=1),
    "args two": _with_args(("x", 2), msg="%s %s", user=1),
    "args dict": lambda: make_record("%(a)s", ({"a": 1},), user=1),
    "args list": _with_args((["x"],), user=1),
    "bad format": _with_args(("x",), msg="%d", user=1),
    "light text, plain": _with_args(("x" * (LIGHT_TEXT - _TEXT),)),
    "light text + 1, plain": _with_args(("x" * (LIGHT_TEXT - _TEXT + 1),)),
    "light text, extras": _with_args(("x",), v="y" * (LIGHT_TEXT_EXTRAS - _TEXT - 1)),
    "light text + 1, extras": _with_args(("x",), v="y" * (LIGHT_TEXT_EXTRAS - _TEXT)),
    "light text in args": _with_args(("x" * (LIGHT_TEXT_EXTRAS - _TEXT),), v=1),
    "light text + 1 in args": _with_args(("x" * (LIGHT_TEXT_EXTRAS - _TEXT + 1),), v=1),
    "dict among scalars": _bare(a=1, d={"k": [1, 2]}, b="x"),
    "list among scalars": _bare(a=1, items=[1, "2"], b="x"),
    "bytes among scalars": _bare(a=1, raw=b"\x00\xff", b="x"),
    "object among scalars": _bare(a=1, thing=Thing(), b="x"),
    "tuple among scalars": _bare(a=1, t=(1, 2), b="x"),
    "marker": _bare(**{MARKER_KEY: "forged", "a": 1}),
    "marker and its rename": _bare(**{MARKER_KEY: 1, MARKER_KEY + "_": 2}),
    "extra holding a dict": _bare(extra={"loguru": 1, "user": 2}, user=3),
    "extra holding a scalar": _bare(extra="scalar", user=3),
    "extra holding none": _bare(extra=None),
    "formatted": _formatted,
    "asctime only": _asctime_only,
    "lacking msecs, two extras": _lacking("msecs", user=1, path="/x"),
    "lacking processName, no extras": _lacking("processName"),
    "lacking the last own, two extras": _lacking(RECORD_ATTRIBUTES[-1], user=1, path="/x"),
    "lacking funcName": _lacking("funcName", user=1),
    "moved msecs": _moved("msecs", user=1, path="/x"),
    "moved msg": _moved("msg", user=1),
    "moved args": _moved("args", user=1),
    "moved the last own": _moved(RECORD_ATTRIBUTES[-1], user=1, path="/x"),
    "moved the last own, then an extra": _moved_then_more(RECORD_ATTRIBUTES[-1]),
    "moved msecs, then an extra": _moved_then_more("msecs"),
    "moved msecs, no extras": _moved("msecs"),
    "filter sets msg": _filtered("new %s", ("y",)),
    "filter sets msg, no args": _filtered("plain", ()),
    "filter sets args none": _filtered("plain", None),
    "filter sets args dict": _filtered("%(a)s", {"a": 1}),
    "filter sets msg not str": _filtered(42, ()),
    "exc_info": _with_exception,
    "stack_info": _with_stack,
    "subclass": _subclass,
    "factory": _factory(tenant="acme", n=1),
    "factory otel": _factory(**OTEL),
    "otel extras": _bare(**OTEL, user=1),
    "int enum": _bare(level=Level.WARN, a=1),
    "str enum": _bare(colour=Colour.RED, a=1),
    "int flag": _bare(flag=Flag.A, a=1),
    "str subclass": _bare(text=Text("t"), a=1),
    "int subclass": _bare(n=Number(7), a=1),
    "int key": _keyed(1),
    "none key": _keyed(None),
    "tuple key": _keyed(("a", "b")),
    "str subclass key": _keyed(Text("sk")),
    "int key and extras": _keyed(1, "v", user=1),
    "light extras": _bare(**{f"k{i}": i for i in range(LIGHT_EXTRAS)}),
    "light extras + 1": _bare(**{f"k{i}": i for i in range(LIGHT_EXTRAS + 1)}),
    "many extras": _bare(**{f"k{i}": i for i in range(20_000)}),
}


@contextlib.contextmanager
def _otel_bound(**fields: Any) -> Iterator[None]:
    """The trace context as ``correlation`` binds it when nothing else is bound."""
    ids = {"otelTraceID": "1" * 32, "otelSpanID": "2" * 16, **fields}
    token = BOUND.set(Bound(MappingProxyType(ids), ids, ids))
    try:
        yield
    finally:
        BOUND.reset(token)


@contextlib.contextmanager
def _nested() -> Iterator[None]:
    with pglog.bind(tenant="acme", user=7), pglog.bind(zone="eu", user=8):
        yield


BINDINGS: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
    "unbound": contextlib.nullcontext,
    "bound apart": lambda: pglog.bind(tenant="acme", region="eu"),
    "bound over": lambda: pglog.bind(user=7, a="bound", path="/bound", v="bound"),
    "bound std names": lambda: pglog.bind(msg="bound msg", process="p"),
    "nested": _nested,
    "bound non-scalar": lambda: pglog.bind(tags=["a"]),
    "bound marker": lambda: pglog.bind(**{MARKER_KEY: "forged"}),
    "otel bound": _otel_bound,
}


def _both(case: Case, binding: str) -> tuple[Any, Any, Entry]:
    """The record captured by capture() and by the careful path, the writer's entry of
    the first, within the binding."""
    with BINDINGS[binding]():
        record = case()
        short = capture(record)
        careful = _capture_carefully(record, record.__dict__, BOUND.get())
    return short, careful, named(short)


def _as_written(entry: Entry) -> tuple[Any, ...]:
    """What the writer makes of ``entry``: its fields, the message rendered, the template,
    the exception and the extras, as items in order (a JSON text read back)."""
    message, note = render(entry)
    extras = entry.extras
    if isinstance(extras, str):
        extras = json.loads(extras)
        marker = extras.get(MARKER_KEY, {})
        if note is None and "message" in marker.get("sanitized", {}):
            # the careful path keeps a failed format's note with the extras, the writer
            # with the row's (the rows are compared whole)
            note = marker["sanitized"].pop("message")
            if not marker["sanitized"]:
                del marker["sanitized"]
            if not marker:
                del extras[MARKER_KEY]
    items = None if not extras and note is not None else list((extras or {}).items()) or None
    return (*entry[:11], message, note, template_of(entry), entry.exception, items)


def _row(entry: Entry) -> tuple[Any, ...]:
    row = to_row(entry, "host")
    return (*row[:-1], json.loads(row[-1]))


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("name", CASES)
def test_the_short_paths_give_what_the_careful_one_does(name: str, binding: str) -> None:
    """The writer's entry, and the row it makes, are the careful path's for every record:
    nothing lost, duplicated, moved or stored otherwise."""
    _, careful, entry = _both(CASES[name], binding)
    assert _as_written(entry) == _as_written(named(careful))
    assert _row(entry) == _row(named(careful))


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("name", CASES)
def test_what_the_writer_gets_is_storable_and_plain(name: str, binding: str) -> None:
    """Extras left as a dict hold only plain scalars under str keys (anything else was made
    JSON in the caller's thread); the spool takes every entry as a line, and reads the same
    extras back from it."""
    _, _, entry = _both(CASES[name], binding)
    extras = entry.extras
    if isinstance(extras, dict):
        assert {type(key) for key in extras} <= {str}
        assert {type(value) for value in extras.values()} <= SCALARS
    spooled = json.loads(line(tuple(entry)))
    assert spooled[Entry._fields.index("extras")] == json.loads(json.dumps(extras))


def _held(entry: Any) -> int:
    """The text an entry holds for its record alone (not the bound fields, which every
    record logged under them shares): its message, string arguments, and the string
    values of its own extras."""
    message, args, extras = entry[11], entry[12], entry[14]
    size = len(message) + sum(len(arg) for arg in args or () if type(arg) is str)
    if isinstance(extras, str):
        return size + len(extras)
    for value in (extras or {}).values():
        size += len(value) if type(value) is str else 0
    return size


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("name", CASES)
def test_a_light_entry_holds_little(name: str, binding: str) -> None:
    """An entry the queue counts as a record only (not weighed against queue_max_bytes)
    holds no more than LIGHT_TEXT_EXTRAS characters of its own and LIGHT_EXTRAS extras;
    a weighed one weighs at least the text it holds."""
    short, _, _ = _both(CASES[name], binding)
    if is_light(short):
        assert _held(short) <= LIGHT_TEXT_EXTRAS
        own = short[14]
        assert own is None or type(own) is str or len(own) <= LIGHT_EXTRAS
    else:
        assert weight(short) >= ENTRY_BYTES + _held(short) - len(short[11])


def test_a_scalar_subclass_is_stored_as_its_plain_value() -> None:
    """An IntEnum, a str Enum, a str or int subclass: never a crash, and stored as the
    plain value it stands for."""
    record = make_record(
        level=Level.WARN, colour=Colour.RED, text=Text("t"), n=Number(7), flag=Flag.A
    )
    stored = json.loads(to_row(named(capture(record)), "h")[-1])
    assert {key: stored[key] for key in ("level", "colour", "text", "n", "flag")} == {
        "level": 30,
        "colour": "red",
        "text": "t",
        "n": 7,
        "flag": 1,
    }


def test_a_long_key_is_stored_as_the_careful_path_stores_it() -> None:
    """The row of a record with a long key, whichever path captured it: the key cut."""
    record = make_record(**{"k" * 10_000: 1})
    careful = named(_capture_carefully(record, record.__dict__, BOUND.get()))
    assert _row(named(capture(record))) == _row(careful)
