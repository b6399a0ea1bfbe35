"""Sizes: how big each part of a row may be, one policy for every field.

A text column takes what ``columns`` says it takes: a ``varchar``'s width, ``MAX_TEXT``
characters (1 MiB) for a message, a traceback or a path. ``extra_data`` has the same
bound for its JSON as a whole, and a budget within it, so that one field can't crowd
out the rest and no record costs more than a bounded amount of work to store:

- ``MAX_VALUES`` keys and list items in all, at every depth;
- ``MAX_VALUE`` characters for one string (or a key, ``MAX_KEY``);
- ``MAX_DEPTH`` levels of nesting.

What doesn't fit is cut, and each cut is noted under ``extra_data._pglog.sanitized``:
the first ``MAX_VALUES`` values are kept, a long string keeps its beginning, deeper
levels are kept as the text of their repr.

The caller's thread encodes extras that are not plain scalars (to snapshot them) and
must not pay for a huge one first and find out after: ``fits`` looks at sizes only,
stops at the first thing over budget, and costs a few dozen instructions per value;
what doesn't fit takes the careful path, which stops where the budget does (``Budget``).
"""

from __future__ import annotations

from typing import Any

from pglog._table.columns import width

#: extra_data's JSON, in characters: the same bound as a message's.
MAX_EXTRA = width("extra_data")
#: Of MAX_EXTRA, what pglog's own notes may need (they are bounded: see ``Notes``); the
#: values get the rest.
NOTES_ROOM = 1 << 16
#: Keys and list items in extra_data, counted at every depth.
MAX_VALUES = 10_000
#: One string in extra_data, in characters: a fair share of MAX_EXTRA.
MAX_VALUE = 1 << 16
#: One key, in characters.
MAX_KEY = 255
#: Levels of nesting kept; deeper levels are stored as text.
MAX_DEPTH = 100

#: What a scalar (a number, a date, a UUID...) counts for in MAX_EXTRA.
_SCALAR_SIZE = 32


def fits(extras: dict[Any, Any]) -> bool:
    """Whether ``extras`` is within the budget (an estimate of its JSON's length, short of
    escapes), found from sizes alone; False at the first value that isn't, or that can't
    be looked at (the careful path deals with it)."""
    left, chars, longest = MAX_VALUES, 0, MAX_VALUE
    containers, scalars = _CONTAINERS, _SCALARS
    level: list[Any] = [extras]
    try:
        for _ in range(MAX_DEPTH):
            nested: list[Any] = []
            for container in level:
                left -= len(container)
                if left < 0:
                    return False
                if type(container) is dict:
                    for key in container:
                        if len(key) > MAX_KEY:  # a key that isn't text: the careful path
                            return False
                        chars += len(key)
                    container = container.values()  # noqa: PLW2901
                for item in container:
                    kind = type(item)
                    if kind is str:
                        if len(item) > longest:
                            return False
                        chars += len(item)
                    elif kind in containers:
                        nested.append(item)
                    elif kind not in scalars and not _small(kind):
                        return False
            if chars + _SCALAR_SIZE * (MAX_VALUES - left) > MAX_EXTRA - NOTES_ROOM:
                return False
            if not nested:
                return True
            level = nested
    except Exception:
        return False
    return False  # nested MAX_DEPTH deep


_CONTAINERS = frozenset({dict, list, tuple})
_SCALARS = frozenset({int, float, bool, type(None)})


def _small(kind: type) -> bool:
    """Whether a type that is neither a scalar nor a plain container has JSON of a bounded
    size: anything but a mapping, a collection or a dataclass (a date, a UUID, a path)."""
    return not (
        hasattr(kind, "__len__")
        or hasattr(kind, "__iter__")
        or hasattr(kind, "__dataclass_fields__")
    )


class Budget:
    """What is left of the extras' budget while the careful path walks them."""

    __slots__ = ("chars", "values")

    def __init__(self) -> None:
        self.values = MAX_VALUES
        self.chars = MAX_EXTRA - NOTES_ROOM

    def take_values(self, wanted: int) -> int:
        """How many of ``wanted`` values may be kept (and counts them as kept)."""
        granted = max(0, min(wanted, self.values))
        self.values -= granted
        return granted

    def text_limit(self) -> int:
        """How long the next string may be: a value's share, or what is left, if less."""
        return max(1, min(MAX_VALUE, self.chars))

    def spend(self, chars: int) -> None:
        """Count ``chars`` characters of JSON as kept."""
        self.chars -= chars

    @property
    def spent(self) -> bool:
        return self.chars <= 0
