"""YAML as written: a configuration file read into plain data, refusing what could hurt.

Values are read as text, the way they were typed, and only then (by ``_config``) as what
their key takes: YAML 1.1 would turn a password written ``0123`` into the number 83 and
``12:30:00`` into 45000. Anchors and aliases are refused (a configuration has no use for
them, and an alias bomb expands without end) and nesting is bounded, both before
anything is built. A file that can't be read is refused too, and no refusal quotes the
file's text: the line at fault may hold a password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: How deep a configuration may nest; the deepest pglog reads is three levels.
MAX_DEPTH = 20


class Unreadable(Exception):
    """The file is not a configuration pglog can read: the message says why and where,
    without its text."""


def read_yaml(path: Path) -> object:
    """The file's YAML: mappings, lists, and every scalar as the text it was written as
    (or None for a null)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot read the file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        raise Unreadable(f"not valid YAML{where}: {problem}") from None
    except yaml.YAMLError:
        raise Unreadable("not valid YAML") from None


def as_written(value: object) -> object:
    """A mapping given in Python, with its scalars as text, as if it had been YAML."""
    if isinstance(value, Mapping):
        return {key: as_written(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_written(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


class _Loader(yaml.SafeLoader):
    """Plain YAML: mappings, lists, and every scalar as the text it was written as (or
    None for a null), nested at most MAX_DEPTH deep, with no anchors or aliases."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - of its base class; only the null stays
        first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _refused("anchors and aliases (& and *) are not supported", event)
        depth = getattr(self, "_depth", 0)
        if depth >= MAX_DEPTH:
            raise _refused(f"nested more than {MAX_DEPTH} levels deep", event)
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


def _refused(problem: str, event: Any) -> Unreadable:
    mark = event.start_mark
    return Unreadable(f"{problem} (line {mark.line + 1}, column {mark.column + 1})")
