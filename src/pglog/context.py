"""Context: fields bound for a block of code, added to every record logged inside it.

They live in a ``ContextVar``, so they follow the code the way ``contextvars`` does: an
asyncio task keeps the fields bound where it was created, even after that block ends,
and never sees those of its siblings; each thread has its own, and a thread started
inside a block starts without them (pass them on with ``contextvars.copy_context().run``,
as ``asyncio.to_thread`` and ``loop.run_in_executor`` do). Leaving the block restores
the fields as they were, whatever happened inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

_NOTHING: Mapping[str, Any] = MappingProxyType({})

#: The fields bound where the current code runs; read by ``record.capture``.
BOUND: ContextVar[Mapping[str, Any]] = ContextVar("pglog_bound", default=_NOTHING)


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Add ``fields`` to the ``extra_data`` of every record logged inside the block, on top
    of any bound by an enclosing block; a record's own ``extra=`` wins over both.

    Yields the fields now bound (read-only)."""
    merged = MappingProxyType({**BOUND.get(), **fields})
    token = BOUND.set(merged)
    try:
        yield merged
    finally:
        BOUND.reset(token)
