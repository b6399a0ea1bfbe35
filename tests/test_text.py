"""_text: text made safe for a terminal, JSON lines with no control in them, values shown in
errors cut short and never a secret."""

from __future__ import annotations

import io
import json
import re

import pytest

from pglog._text import TerminalSafe, for_terminal, json_line, shown

#: Everything a terminal acts on, as a hostile log line would carry it.
HOSTILE = (
    "\x1b[2J\x1b[H"  # clear the screen, cursor home
    "\x1b]0;owned\x07"  # OSC: the window title
    "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # OSC 8: a hyperlink
    "\x1bP+q544e\x1b\\"  # DCS: a query the terminal answers
    "\x9b31m"  # C1 CSI: colour, in one character
    "\x9d0;title\x9c"  # C1 OSC ... ST
    "abc\rXYZ\x08\x08\x7f"  # overwrite what was printed
    "\u202eevil\u202c \u2066isolated\u2069"  # bidi override, isolate
)
#: A character a terminal acts on: C0 but tab and newline, DEL, C1, bidi controls.
ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_every_control_and_bidi_override_is_shown_as_an_escape() -> None:
    """ESC, C1 controls, CR, backspace, DEL and bidi overrides become visible escapes;
    the printable text around them is kept as it was."""
    safe = for_terminal(HOSTILE)
    assert not ACTIVE.search(safe)
    assert "\n" not in safe
    assert safe.startswith("\\x1b[2J\\x1b[H\\x1b]0;owned\\x07")
    assert "\\x9b31m" in safe
    assert "abc\\rXYZ\\x08\\x08\\x7f" in safe
    assert "\\u202eevil\\u202c \\u2066isolated\\u2069" in safe
    assert for_terminal("Zahlung erhalten: 12,50 € — 注文 ✅\tok") == (
        "Zahlung erhalten: 12,50 € — 注文 ✅\tok"
    )


def test_newlines_are_lines_only_where_the_text_is_meant_to_have_them() -> None:
    """A traceback keeps its lines; a message's newline is shown as \\n, so a log line
    can't pass for two."""
    traceback = 'Traceback (most recent call last):\n  File "x", line 1\nValueError: \x1b[31m'
    assert for_terminal(traceback, lines=True) == traceback.replace("\x1b", "\\x1b")
    assert for_terminal("one\n2026-11-23 00:00:00.000 INFO     forged") == (
        "one\\n2026-11-23 00:00:00.000 INFO     forged"
    )


def test_a_json_line_has_no_control_in_it_and_reads_back_unchanged() -> None:
    """json.dumps(ensure_ascii=False) escapes C0 but leaves C1 and bidi controls raw;
    json_line escapes those too, the JSON way, so the line stays valid JSON."""
    value = {"message": HOSTILE, "extra_data": {HOSTILE: [HOSTILE, 1, None]}, "ok": "€ 注文"}
    assert ACTIVE.search(json.dumps(value, ensure_ascii=False))
    line = json_line(value)
    assert not ACTIVE.search(line)
    assert "\n" not in line
    assert "\\u009b" in line
    assert "\\u202e" in line
    assert "€ 注文" in line
    assert json.loads(line) == value


def test_a_value_in_an_error_is_cut_short_escaped_and_never_a_secret() -> None:
    """shown(): the repr, at most 60 characters, nothing a terminal acts on; for a secret
    key, not the value at all."""
    assert shown("many") == "'many' (str)"
    assert shown("many", typed=False) == "'many'"
    assert shown(None) == "nothing"
    long = shown("x" * 1_000_000)
    assert len(long) < 80
    assert long.endswith("… (str)")

    class Loud:
        def __repr__(self) -> str:
            return "\x1b]0;owned\x07\u202e"

    assert not ACTIVE.search(shown(Loud()))
    for key in ("password", "database.password", "dsn", "logging.database.Password"):
        assert "s3cret" not in shown("s3cret", key=key)
    assert "s3cret" in shown("s3cret", key="database.host")


def test_a_terminal_safe_stream_passes_text_with_its_lines_and_nothing_else() -> None:
    """What is written through TerminalSafe reaches the stream escaped, newlines kept."""
    inner = io.StringIO()
    stream = TerminalSafe(inner)
    print("pglog: error:", HOSTILE, file=stream)
    stream.writelines(["a\x1bb\n", "c\n"])
    stream.flush()
    written = inner.getvalue()
    assert not ACTIVE.search(written)
    assert written.count("\n") == 3
    assert stream.getvalue() == written  # anything but writing is the inner stream's


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\x85", "\x9f", "\u202a", "\u2069"])
def test_each_escape_names_the_character(character: str) -> None:
    """The escape says which character it was: \\xNN below U+0100, \\uNNNN above."""
    code = ord(character)
    expected = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    assert for_terminal(f"a{character}b") == f"a{expected}b"
