"""Fingerprint: which kind of error a record is, so that errors of one kind count together.

``pglog errors`` and the web view's Errors page group records by it. A record with a
traceback is known by the exception it raised and where that was raised: the type on
the traceback's last line, and the file and function of its innermost frame (not the
line number, which moves with every edit above it, so a deploy would make every error
look new). Of a chain (``raise ... from``, or an exception during the handling of
another) the one raised last counts. A record at ERROR or worse without a traceback is
known by its logger and its template (``"payment for order %s failed"``); a message
formatted before it was logged (an f-string) has no template, so its numbers and hex
ids are blanked instead: ``payment for order <n> failed``. Other records have none.

Computed by the writer, from what the row holds: free for the caller.
"""

from __future__ import annotations

import re

#: Records at this level or worse are errors even without a traceback (logging.ERROR).
ERROR_LEVEL = 40
#: The longest fingerprint, in characters: the column's width.
MAX_LENGTH = 255

_TRACEBACK = "Traceback (most recent call last):"
_FRAME = re.compile(r'^[ \t]*File "(?P<path>[^"\n]*)", line \d+, in (?P<function>[^\n]+)$', re.M)
_RAISED = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::|$)", re.M)
_VARIABLE = re.compile(
    r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b"  # a UUID
    r"|\b0x[0-9a-f]+\b"
    r"|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"  # a long hex id
    r"|\d+(?:\.\d+)?",  # a number
    re.IGNORECASE,
)


def fingerprint(
    logger: str, levelno: int | None, template: str | None, message: str, exception: str | None
) -> str | None:
    """The kind of error the record is, or None for a record that is not an error."""
    if exception is not None:
        raised = raised_at(exception)
        if raised is not None:
            return raised[:MAX_LENGTH]
    if levelno is None or levelno < ERROR_LEVEL:
        return None
    if template is None:
        template = _VARIABLE.sub(_blank, message.split("\n", 1)[0])
    return f"{logger}: {template}"[:MAX_LENGTH]


def raised_at(exception: str) -> str | None:
    """``ValueError in shop/payments.py, charge``: the exception a traceback ends with and
    where it was raised; None if the text is no traceback."""
    start = exception.rfind(_TRACEBACK)
    if start < 0:
        return None
    last_frame = None
    for last_frame in _FRAME.finditer(exception, start):  # noqa: B007 - the last one counts
        pass
    if last_frame is None:
        return None
    raised = _RAISED.search(exception, last_frame.end())
    if raised is None:
        return None
    path = "/".join(last_frame["path"].replace("\\", "/").rsplit("/", 2)[-2:])
    return f"{raised['type']} in {path}, {last_frame['function'].strip()}"


def _blank(found: re.Match[str]) -> str:
    return "<id>" if not found.group(0).replace(".", "").isdigit() else "<n>"
