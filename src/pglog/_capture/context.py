"""Context: fields bound for a block of code, added to every record logged inside it.

They live in a ``ContextVar``, so they follow the code the way ``contextvars`` does: an
asyncio task keeps the fields bound where it was created, even after that block ends,
and never sees those of its siblings; each thread has its own, and a thread started
inside a block starts without them (pass them on with ``contextvars.copy_context().run``,
as ``asyncio.to_thread`` and ``loop.run_in_executor`` do). Leaving the block restores
the fields as they were, whatever happened inside. A block must not span a ``yield``:
a generator suspended inside it would carry the fields out to its caller.

The fields are taken as they are when bound: their extras (see ``capture``) are made
once, here, so that binding costs a logging call next to nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pglog._capture.sanitize import as_extras


@dataclass(frozen=True, slots=True)
class Bound:
    """The fields bound where the code runs, and the same as a record's extras."""

    fields: Mapping[str, Any]
    extras: dict[str, Any] | str
    #: ``extras`` while it is the dict of the fields (all plain scalars), else None: what
    #: a record's own plain scalar extras can go over (see ``entry.joined``).
    scalars: dict[str, Any] | None


def binding(fields: dict[str, Any]) -> Bound:
    """``fields`` as bound: their extras made once, here, not in each logging call."""
    extras = as_extras(fields)
    return Bound(MappingProxyType(fields), extras, extras if type(extras) is dict else None)


#: What is bound where the current code runs (None: nothing); read by ``capture``.
BOUND: ContextVar[Bound | None] = ContextVar("pglog_bound", default=None)


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Add ``fields`` to the ``extra_data`` of every record logged inside the block, on top
    of any bound by an enclosing block; a record's own ``extra=`` wins over both.

    Yields the fields now bound (read-only)."""
    outer = BOUND.get()
    merged = {**(outer.fields if outer is not None else {}), **fields}
    token = BOUND.set(binding(merged))
    try:
        yield MappingProxyType(merged)
    finally:
        with contextlib.suppress(ValueError):  # closed in another context (a finalised
            BOUND.reset(token)  # async generator): there is nothing of ours to restore
