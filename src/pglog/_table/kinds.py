"""Kinds: which rows are errors, and which kind of error each is, in SQL.

A row stored since schema 3 is an error when the writer gave it a fingerprint (a
traceback, or a level of ERROR or worse: see ``_capture.fingerprint``), and its kind is
that fingerprint. A row stored before has no fingerprint and no level number: it is an
error when it has a traceback or an error's level name, and its kind is its logger and
message (there was no template to group by). Both halves are written so that the
planner finds their partial indexes (``schema.INDEXES``).
"""

from __future__ import annotations

from psycopg import sql

from pglog._table.schema import LEGACY_ERRORS

#: The kind of an error stored before schema 3, for grouping.
LEGACY_KIND = sql.SQL("logger_name || ': ' || left(message, 200)")
#: Each half of the errors, with its kind: read apart, each through its partial index
#: (a planner can't use either for the two joined by OR).
HALVES = (
    (sql.SQL("fingerprint"), sql.SQL("fingerprint IS NOT NULL"), True),
    (LEGACY_KIND, LEGACY_ERRORS, False),
)


def of_kind(name: str) -> sql.Composed:
    """The condition "the row is an error of the kind in parameter ``name``"."""
    return sql.SQL(
        "(fingerprint = %({name})s OR ({legacy}"
        " AND logger_name || ': ' || left(message, 200) = %({name})s))"
    ).format(name=sql.SQL(name), legacy=LEGACY_ERRORS)
