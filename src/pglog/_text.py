"""Text: what pglog shows people (on a terminal, in an error, as a line of JSON), safe to show.

Log content is written by whoever can reach the application, and configuration by
whoever edits a file: neither may rewrite the terminal of the person who reads it. A
terminal acts on control characters: ESC starts its sequences (clear the screen, set the
window title, make a hyperlink, query and answer), and the C1 controls (U+0080 to
U+009F) are the same sequences in one character; a carriage return or a backspace
overwrites what was printed. Bidirectional overrides and isolates (U+202A to U+202E,
U+2066 to U+2069) reorder the text that follows them, so a line can read other than
what it holds. Each of these is shown as a visible escape instead (``\\x1b``,
``\\u202e``): the reader sees that it was there and what it was. Tabs stay; newlines
stay only where the text is meant to have lines (a traceback), and anywhere else are
shown as ``\\n``, so a log line can't pass for two.

JSON written for people (``pglog query --format jsonl``, ``export``) escapes the same
characters the JSON way (``\\u009b``), so it stays valid JSON and reads back unchanged.
Values shown in error messages (``shown``) are cut short and never show a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TextIO

#: Bidirectional overrides, embeddings and isolates: they reorder what follows them.
_BIDI = "\u202a-\u202e\u2066-\u2069"
#: What a terminal acts on, newlines included: C0 (but tab), DEL, C1, and bidi controls.
_UNSAFE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI}]")
#: The same, with the newline allowed: for text that is meant to have lines.
_UNSAFE_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
#: What json.dumps(ensure_ascii=False) leaves as it is of the above (it escapes C0).
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")
#: Keys whose values are never shown: a connection string holds its password.
SECRET_KEYS = frozenset({"password", "dsn", "token"})


_NAMED = {0x0A: "\\n", 0x0D: "\\r"}


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _NAMED:
        return _NAMED[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str, *, lines: bool = False) -> str:
    """``text`` with every control character and bidi override shown as an escape; newlines
    kept only when ``lines`` (a traceback), else shown as ``\\n``."""
    pattern = _UNSAFE_BUT_LINES if lines else _UNSAFE
    return pattern.sub(_escape, text) if pattern.search(text) else text


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_line(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as one line of JSON, with no character a terminal would act on: JSON's own
    escapes for C0 (as ``json.dumps`` does), and for DEL, C1 and bidi controls too."""
    text = json.dumps(value, ensure_ascii=False, default=default)
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


def shown(value: object, limit: int = 60, *, key: str | None = None, typed: bool = True) -> str:
    """A value as an error message shows it: its repr (escaped, so safe on a terminal), cut
    to ``limit`` characters, with its type unless ``typed`` is False; for a secret
    ``key`` (the last part of a dotted key path), never the value."""
    if key is not None and key.rsplit(".", 1)[-1].lower() in SECRET_KEYS:
        return "not shown: it is a secret"
    if value is None:
        return "nothing"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = for_terminal(text)
    return f"{text} ({type(value).__name__})" if typed else text


class TerminalSafe:
    """A text stream that passes what is written to it through ``for_terminal`` (newlines
    kept) on its way to ``inner``: the last line of defence of everything a command
    prints. Anything but writing is ``inner``'s."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(for_terminal(text, lines=True))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def underlying(stream: TextIO) -> TextIO:
    """The stream beneath a TerminalSafe one (else ``stream``): for rich, which writes
    colour codes of its own around text that is already escaped."""
    return stream.inner if isinstance(stream, TerminalSafe) else stream
