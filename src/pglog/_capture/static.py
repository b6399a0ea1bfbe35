"""Static fields: what every record of a handler says about where it comes from.

``static_fields={"service": "shop", "environment": "prod", "version": "1.4.2"}`` (or
``logging.database.static_fields`` in the YAML) puts these fields in the ``extra_data`` of
every record the handler writes, under the record's own: a record's ``extra=`` and the
fields bound with ``pglog.bind`` win over them. They are made JSON once, when the handler
is built, and joined to each row's JSON as text by the writer: the caller pays nothing,
and the writer no more than a string concatenation (``jsonb`` keeps the last of a key
given twice, which is the record's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pglog._capture.notes import MARKER_KEY
from pglog._capture.sanitize import SCALARS, dumps

_EMPTY = "{}"


@dataclass(frozen=True)
class Static:
    """The static fields of a handler, and their JSON object's text."""

    fields: Mapping[str, Any]
    json: str

    @classmethod
    def of(cls, fields: Mapping[str, Any] | None) -> Static | None:
        """The static fields ``fields`` (checked by the option spec), or None for none."""
        if not fields:
            return None
        return cls(dict(fields), dumps(dict(fields)))

    def under(self, extra_data: str) -> str:
        """The JSON object text ``extra_data`` with these fields under its own."""
        if extra_data == _EMPTY:
            return self.json
        return f"{self.json[:-1]},{extra_data[1:]}"


def check(fields: object) -> dict[str, Any]:
    """A mapping of names to plain values (text, numbers, booleans, None), as a dict;
    ValueError says what is wrong."""
    if not isinstance(fields, Mapping):
        raise ValueError(f"expected a mapping of names to values, got {type(fields).__name__}")
    checked: dict[str, Any] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"field names must be non-empty strings, got {name!r}")
        if name == MARKER_KEY:
            raise ValueError(f"{MARKER_KEY} is pglog's own key")
        if type(value) not in SCALARS or (isinstance(value, str) and "\x00" in value):
            raise ValueError(
                f"{name}: expected text, a number, true, false or null, got {type(value).__name__}"
            )
        checked[name] = value
    return checked
