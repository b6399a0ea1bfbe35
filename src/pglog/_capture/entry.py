"""Entry: one captured record as it waits in the queue, every slot named.

An entry holds only immutable values (scalars, tuples of scalars, text), so it can wait
in the queue, cross into the writer thread and be written to the spool as it is, and
the garbage collector never has to look at it.

The caller's thread puts a plain tuple of an entry's values on the queue (``Captured``):
naming it there would cost the caller more than everything else it does for a record
together (a tuple subclass can only be made by copying). The writer names it as it
takes it from the queue (``named``), and everything past the queue reads slots by name.

Its first eleven slots are the LogRecord's own attributes under their LogRecord names
(``RECORD_FIELDS``), and the five after them line up with ``msg``, ``args``,
``exc_text``, ``exc_info`` and ``stack_info``: for the common record (no exception, no
extras, arguments that are immutable scalars) one ``operator.itemgetter`` call over the
record's ``__dict__`` reads all sixteen, and that tuple, named, is the entry. So
``message`` holds the format string while ``args`` is not None (the writer formats it,
and keeps that string as the record's template), and the three last read None there:
``exception``, ``extras`` and ``template``.

``template`` is where the careful path (see ``capture``), which formats the message in
the caller's thread, leaves the ``%`` format string of a record that had arguments; it
is None in every other entry, and always None where the common record's ``stack_info``
lands (a record with a stack takes the careful path). The template of an entry is
therefore ``message`` while ``args`` holds arguments, else ``template`` (``template_of``).

A record with plain scalar extras leaves them in two parts (see ``capture``): its own,
read from the end of its ``__dict__`` (so newest first), in ``extras``, and the bound
fields' extras in ``template``'s place; a template is text or None, so a dict there can
only be these, and ``named`` joins the two (``joined``), in the writer's thread: reading
the extras in their order and merging them in the caller's cost it half as much again.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, TypeAlias

from pglog._capture.notes import MARKER_KEY
from pglog._capture.sanitize import as_extras

#: ``extra=`` as captured: None, a dict of plain scalars, or the text of a JSON object.
Extras: TypeAlias = "dict[str, Any] | str | None"


class Entry(NamedTuple):
    created: float
    levelname: str
    name: str
    process: int | None
    thread: int | None
    thread_name: str | None
    func_name: str | None
    module: str | None
    filename: str | None
    lineno: int | None
    pathname: str | None
    #: The message, or its ``%`` format string while ``args`` is not None.
    message: str
    #: The arguments still to format the message with; None once it is formatted.
    args: tuple[Any, ...] | None
    #: The traceback and stack as text, or None.
    exception: str | None
    extras: Extras
    #: The ``%`` format string of a message the caller's thread formatted, or None.
    template: str | None


#: The LogRecord attributes an entry opens with, in slot order.
RECORD_FIELDS = (
    "created",
    "levelname",
    "name",
    "process",
    "thread",
    "threadName",
    "funcName",
    "module",
    "filename",
    "lineno",
    "pathname",
)
#: A LogRecord's own attributes, in the order its constructor sets them.
RECORD_ATTRIBUTES = tuple(
    vars(logging.LogRecord("name", logging.INFO, "path", 1, "msg", None, None))
)
#: Those, and what a Formatter adds while formatting: anything else on a record came with
#: ``extra=`` (or a record factory), and is one of its extras.
STANDARD_ATTRIBUTES = frozenset(RECORD_ATTRIBUTES) | {"message", "asctime"}
#: The LogRecord attributes the common record's entry is read from, in slot order.
RECORD_SLOTS = (*RECORD_FIELDS, "msg", "args", "exc_text", "exc_info", "stack_info")
assert len(RECORD_SLOTS) == len(Entry._fields)

#: Text (message, string arguments) an entry may carry and still be *light*: counted by
#: the queue as a record, not weighed in bytes. Capture keeps only such records on its
#: shortest paths (arguments left to format), so that ``args is not None`` with extras
#: that are not JSON text says "light" at a glance.
LIGHT_TEXT = 256
#: The same for a record with extras that are all plain scalars: the characters of its
#: message and of its extras' string values together.
LIGHT_TEXT_EXTRAS = 1024
#: And that has no more extras than this: each costs the queue a few dozen bytes of its
#: own, text or not, and a record may carry thousands.
LIGHT_EXTRAS = 64

#: Slots read before the writer names the entry (by the queue, weighing it).
MESSAGE, ARGS, EXCEPTION, EXTRAS, TEMPLATE = (
    Entry._fields.index(slot) for slot in ("message", "args", "exception", "extras", "template")
)

#: An entry's values in slot order, as the caller's thread leaves them on the queue.
Captured: TypeAlias = tuple[Any, ...]

_new = tuple.__new__


def template_of(entry: Entry) -> str | None:
    """The ``%`` format string the record's message was made from, if it had arguments."""
    return entry.message if entry.args else entry.template


def named(values: Captured) -> Entry:
    """The entry of ``values``, by one C call (the writer's, for each record it takes), once
    extras left in two parts are joined."""
    if type(values[TEMPLATE]) is dict:
        values = (*values[:EXTRAS], joined(values[EXTRAS], values[TEMPLATE]), None)
    return _new(Entry, values)


#: The kind of key JSON takes as it is (see ``joined``).
_STR = frozenset({str})


def joined(own: dict[Any, Any], bound: dict[str, Any]) -> Extras:
    """A record's own extras, newest first, over the bound ones, in the order they were
    set; what the careful path of ``capture`` would have made of them. A Formatter's
    attributes (and the record's own, moved past its extras by deleting and setting them
    again) are left out; a key named like pglog's marker is moved aside, and one that is
    not a str (``extra={1: ...}``, a str Enum, a key set in ``__dict__`` by hand) made
    text, both noted, by ``as_extras``: a dict left here has str keys only, which the
    spool's JSON needs (a tuple key made it raise) and the caller's thread doesn't check,
    at a cost to every record with extras."""
    extras = bound.copy()
    for key, value in reversed(own.items()):
        if key not in STANDARD_ATTRIBUTES:
            extras[key] = value
    if MARKER_KEY in extras or not _STR.issuperset(map(type, extras)):
        return as_extras(extras)
    return extras or None
