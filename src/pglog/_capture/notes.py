"""Notes: what pglog changed in a record to store it, said in the record itself.

A record is never dropped for what it holds: whatever had to change (a NUL written as
``\\x00``, a value cut, a key stored as text, a secret scrubbed) is noted under
``extra_data._pglog``, so whoever reads the row knows it is not exactly what was logged,
and why. The notes are bounded, so that a pathological record stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Key under ``extra_data`` where pglog notes what it had to change in a record.
MARKER_KEY = "_pglog"
#: How many sanitisation notes one record carries before they are summarised.
MAX_NOTES = 20
#: The longest field name or note, in characters.
MAX_NOTE = 300


class Notes(dict[str, str]):
    """What was changed in a record, by field; bounded, so a pathological record stays small:
    MAX_NOTES fields, each name and each note cut to MAX_NOTE characters, a few notes a
    field."""

    dropped = 0

    def add(self, field: str, what: str) -> None:
        if len(field) > MAX_NOTE:
            field = field[: MAX_NOTE - 1] + "…"
        if len(what) > MAX_NOTE:
            what = what[: MAX_NOTE - 1] + "…"
        if field in self:
            if what not in self[field] and len(self[field]) < 3 * MAX_NOTE:
                self[field] += "; " + what
        elif len(self) < MAX_NOTES:
            self[field] = what
        else:
            self.dropped += 1

    def as_marker(self, scrubbed: Sequence[str] = ()) -> dict[str, Any]:
        """What goes under MARKER_KEY: these notes, and the paths of the values ``scrub``
        replaced (MAX_NOTES of them at most)."""
        marker: dict[str, Any] = {}
        if self:
            marker["sanitized"] = dict(self)
        if self.dropped:
            marker["more_notes_omitted"] = self.dropped
        if scrubbed:
            marker["scrubbed"] = [path[:MAX_NOTE] for path in scrubbed[:MAX_NOTES]]
            if len(scrubbed) > MAX_NOTES:
                marker["more_scrubbed"] = len(scrubbed) - MAX_NOTES
        return marker
