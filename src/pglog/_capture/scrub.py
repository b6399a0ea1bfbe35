"""Scrub: secrets replaced before they are stored, in the writer's thread.

Log content carries secrets by accident: a request's headers (Authorization, Cookie), a
form's password, an API key passed along, a connection string in a traceback. Stored,
they reach the CLI, the web view and every export. So, as each row is made:

- the value under a key that names a secret is replaced whole by ``[scrubbed]``, at any
  depth of the extras: keys containing password, passwd, pwd, secret, auth (and
  authorization, but not author), credential, private key, api key, session, cookie,
  csrf, xsrf, jwt, ssn, social security or credit card, in any case, with ``_``, ``-``,
  ``.``, a space or nothing between the words (``apiKey``, ``X-Api-Key``, ``db_password``);
- text shaped like a secret is replaced where it stands, in the extras' strings, the
  message and the traceback: a ``Bearer`` or ``Basic`` credential, a JSON Web Token, the
  password in a URI, ``password=...`` (and the other key words) and ``"password": "..."``,
  a private key block, and the access keys of well-known services (AWS, GitHub, Slack,
  Stripe, Google, ``sk-`` keys).

The message and the traceback are scrubbed for shapes only: a word such as "session" in a
sentence is not a secret, but ``Bearer eyJ...`` after it is. What was scrubbed is noted
under ``extra_data._pglog.scrubbed``: each value's path (``extra.headers.Authorization``,
``message``), never the value. More patterns can be given (each is searched in keys, which
scrubs their value, and in text, which scrubs what it matches), and keys can be kept as
logged.

The caller pays nothing: this runs where the row is made (``row.to_row``, in the writer's
thread). A row is first looked at with a few substring tests (whose answers for a
message's format string and for an extra's key are remembered); only a row they flag is
searched with the regular expressions. The writer's pipeline makes the handler's scrubber
from its options once (``Scrubber.of``), and delivery hands it to ``to_row`` with each
entry, as it does the static fields.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

SCRUBBED = "[scrubbed]"
#: What may stand between the words of a key: ``private_key``, ``api-key``, ``apiKey``.
_SEP = r"[-_. ]?"
#: Keys whose values are secrets (searched anywhere in a key, in any case).
SECRET_KEY_WORDS = (
    r"passw(?:or)?d",
    r"(?<![a-z])pwd(?![a-z])",
    r"secret",
    r"auth(?!ors?(?![a-z]))",
    r"credential",
    rf"private{_SEP}key",
    rf"api{_SEP}key",
    r"session",
    r"cookie",
    r"csrf",
    r"xsrf",
    r"jwt",
    r"(?<![a-z])ssn(?![a-z])",
    rf"social{_SEP}security",
    rf"credit{_SEP}card",
)


#: Substrings every secret key word holds, one at least (looked for in lower-case text).
KEY_HINTS = (
    "pass",
    "pwd",
    "secret",
    "auth",
    "cred",
    "private",
    "api",
    "session",
    "cookie",
    "srf",
    "jwt",
    "ssn",
    "social",
)


def holding_any(*hints: str | tuple[str, ...]) -> Callable[[str], bool]:
    """A test of whether a text holds one of ``hints`` (a substring, or several that must
    all be there), made into one chain of ``in``: it runs on every string a row carries,
    and the chain costs half what a loop, ``any()`` or an alternation does (0.4 against 0.8
    to 1.1 us on a short text)."""

    def holds(hint: str | tuple[str, ...]) -> str:
        if isinstance(hint, str):
            return f"{hint!r} in text"
        return "(" + " and ".join(map(holds, hint)) + ")"

    chain = " or ".join(map(holds, hints))
    test: Callable[[str], bool] = eval(f"lambda text: {chain}")  # noqa: S307 - our own text
    return test


_key_hint = holding_any(*KEY_HINTS)

_KEY_WORDS = "|".join(SECRET_KEY_WORDS)
#: A credential after its scheme: 8 or more token characters, with a digit, a +, / or =,
#: or a capital after a small letter: "Basic dXNlcjpwYXNz" is one, "Basic Authentication"
#: is not.
_CREDENTIAL = r"(?=[A-Za-z0-9._~+/=-]*(?:[0-9+/=]|[a-z][A-Z]))[A-Za-z0-9._~+/=-]{8,}"
#: A bare ``key=value``'s value, and a %-placeholder standing alone as one: a template's
#: ``password=%s`` holds no secret, so it is kept for grouping by template.
_VALUE = r"[^\s&,;'\"]+"
_PLACEHOLDER = rf"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%](?!{_VALUE})"
#: Secret shapes in text: (pattern, replacement). ``keep`` is what stays around the secret.
SHAPES: tuple[tuple[str, str], ...] = (
    (r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", ""),
    (r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*", ""),
    (rf"(?P<keep>\b(?i:bearer|basic)\s+){_CREDENTIAL}", ""),
    (r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)", ""),
    (
        rf"(?P<keep>(?i:{_KEY_WORDS})[\w.-]*\s*=\s*)(?!{_PLACEHOLDER})(?:\"[^\"]*\"|'[^']*'|{_VALUE})",
        "",
    ),
    (rf"(?P<keep>\"[^\"]*(?i:{_KEY_WORDS})[^\"]*\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"", '"'),
    (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", ""),
    (r"\bgh[pousr]_[A-Za-z0-9]{36,}|\bgithub_pat_[A-Za-z0-9_]{22,}", ""),
    (r"\bxox[abposr]-[A-Za-z0-9-]{10,}", ""),
    (r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}", ""),
    (r"\bAIza[0-9A-Za-z_-]{35}", ""),
    (r"\bsk-[A-Za-z0-9_-]{20,}", ""),
)


#: Substrings every secret shape but ``key=value`` holds, one at least (and GitHub's
#: classic tokens hold "gh" and "_").
SHAPE_HINTS = (
    "eyJ",
    "://",
    "earer",
    "EARER",
    "asic",
    "ASIC",
    "-----BEGIN",
    "AKIA",
    "ASIA",
    "xox",
    "k_live",
    "k_test",
    "AIza",
    "sk-",
    "github_pat_",
)
_shape_hint = holding_any(*SHAPE_HINTS, ("gh", "_"))


#: No secret shape but ``key=value`` is shorter than this.
_SHORTEST_SHAPE = 8
#: How many answers the substring tests remember (format strings, keys) before starting over.
_REMEMBERED = 10_000
#: The longest list of scrubbed paths noted in one row.
MAX_PATHS = 20


class Scrubber:
    """Replaces secrets in a row's message, traceback and extras. ``patterns``: more regular
    expressions (searched in keys and in text); ``keep``: keys stored as logged, whatever
    their name or value (compared in any case); ``enabled=False``: nothing is scrubbed."""

    def __init__(
        self, patterns: Iterable[str] = (), keep: Iterable[str] = (), *, enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self.patterns = tuple(patterns)
        self.keep = frozenset(key.casefold() for key in keep)
        extra = [f"(?:{pattern})" for pattern in self.patterns]
        self._key = re.compile("|".join([_KEY_WORDS, *extra]), re.IGNORECASE)
        shapes = [(re.compile(pattern), around) for pattern, around in SHAPES]
        shapes += [(re.compile(pattern, re.IGNORECASE), "") for pattern in extra]
        self._shapes = [
            (pattern, functools.partial(_replacement, around=around)) for pattern, around in shapes
        ]
        self._extra = re.compile("|".join(extra), re.IGNORECASE) if extra else None
        self._keys: dict[str, bool] = {}
        self._formats: dict[str, bool] = {}

    # -- the cheap first tests ---------------------------------------------------------

    def suspects(self, text: str) -> bool:
        """Whether ``text`` may hold a secret shape (False: it certainly holds none)."""
        if len(text) >= _SHORTEST_SHAPE and _shape_hint(text):
            return True
        if ("=" in text or '":' in text) and _key_hint(text.lower()):
            return True
        return self._extra is not None and self._extra.search(text) is not None

    def suspects_format(self, text: str) -> bool:
        """``suspects`` for a message's format string, remembered: they recur."""
        found = self._formats.get(text)
        if found is None:
            if len(self._formats) >= _REMEMBERED:
                self._formats.clear()
            found = self._formats[text] = self.suspects(text)
        return found

    def secret_key(self, key: str) -> bool:
        """Whether the value under ``key`` is a secret, remembered: keys recur."""
        found = self._keys.get(key)
        if found is None:
            if len(self._keys) >= _REMEMBERED:
                self._keys.clear()
            found = key.casefold() not in self.keep and self._key.search(key) is not None
            self._keys[key] = found
        return found

    def suspects_json(self, text: str) -> bool:
        """Whether the JSON text of extras may hold a secret (its keys are in it, and so
        are ``=`` and ``":``: the key words are looked for in all of it)."""
        return (
            _shape_hint(text)
            or _key_hint(text.lower())
            or (self._extra is not None and self._extra.search(text) is not None)
        )

    def scalars(self, extras: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
        """A dict of plain scalars (the common extras) scrubbed on the spot: the values of
        secret keys replaced, and their paths; the same dict and no path when it holds no
        secret. None when a text value may hold a secret shape: that takes a careful look.
        """
        known, texts, scrubbed, paths = self._keys, [], extras, []
        for key, value in extras.items():
            secret = known.get(key)
            if secret or (secret is None and self.secret_key(key)):
                if scrubbed is extras:
                    scrubbed = dict(extras)
                scrubbed[key] = SCRUBBED
                paths.append(f"extra.{key}")
            elif type(value) is str:
                texts.append(value)
        if texts and self.suspects(texts[0] if len(texts) == 1 else "\n".join(texts)):
            return None
        return scrubbed, paths

    # -- scrubbing -----------------------------------------------------------------------

    def text(self, text: str, path: str, scrubbed: list[str]) -> str:
        """``text`` with every secret shape replaced; its path noted if any was."""
        if not self.suspects(text):
            return text
        clean = text
        for pattern, replacement in self._shapes:
            clean = pattern.sub(replacement, clean)
        if clean != text:
            scrubbed.append(path)
        return clean

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Scrubber:
        """The scrubber the handler's options ask for (``scrub``, ``scrub_patterns``,
        ``scrub_keep``; see ``pglog._options``)."""
        if not options["scrub"]:
            return OFF
        if not options["scrub_patterns"] and not options["scrub_keep"]:
            return DEFAULT
        return cls(options["scrub_patterns"], options["scrub_keep"])

    def extras(self, text: str, marker: str, scrubbed: list[str]) -> str:
        """The JSON text of extras with the values of secret keys and secret shapes replaced
        (its ``marker`` key, pglog's notes, left alone); the same text if nothing was."""
        if not self.suspects_json(text):
            return text
        value = json.loads(text)
        found: list[str] = []
        for key in list(value):
            if key != marker:
                value[key] = self._value(key, value[key], f"extra.{key}", found)
        if not found:
            return text
        scrubbed.extend(found)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def _value(self, key: str | None, value: Any, path: str, found: list[str]) -> Any:
        if key is not None and key.casefold() in self.keep:
            return value
        if key is not None and self.secret_key(key):
            found.append(path)
            return SCRUBBED
        if isinstance(value, str):
            return self.text(value, path, found)
        if isinstance(value, dict):
            return {k: self._value(k, v, f"{path}.{k}", found) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(None, v, f"{path}[{i}]", found) for i, v in enumerate(value)]
        return value


def _replacement(match: re.Match[str], around: str) -> str:
    keep = match.groupdict().get("keep") or ""
    return f"{keep}{around}{SCRUBBED}{around}"


#: What rows get unless the handler says otherwise: every built-in pattern, no key kept.
DEFAULT = Scrubber()
#: Nothing scrubbed (the handler's ``scrub=False``).
OFF = Scrubber(enabled=False)
