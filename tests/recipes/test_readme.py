"""The README's recipes are the files under examples/ that the tests run, to the character."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

from recipes.support import EXAMPLES

ROOT = EXAMPLES.parent
README = ROOT / "README.md"

#: ``<!-- recipe: examples/x/y.py -->`` on its own line, then (blank lines allowed) a
#: fenced block: the block must be the file.
MARKER = re.compile(r"^<!-- recipe: (?P<path>\S+) -->[ \t]*$", re.MULTILINE)
FENCED = re.compile(r"\s*^(?P<fence>```+)[^\n]*\n(?P<code>.*?)^(?P=fence)[ \t]*$", re.M | re.S)


def recipe_blocks(text: str) -> dict[str, str]:
    """Each marker's path and the code of the fenced block that follows it. A marker with
    no block right after it, or a path shown twice, is a mistake in the README."""
    blocks: dict[str, str] = {}
    for marker in MARKER.finditer(text):
        path = marker["path"]
        block = FENCED.match(text, marker.end())
        assert block is not None, f"README: no fenced code block right after the marker {path}"
        assert path not in blocks, f"README: {path} is shown twice"
        blocks[path] = block["code"]
    return blocks


def example_files() -> set[str]:
    """Every file under examples/ (what a user would copy), relative to the repository."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in EXAMPLES.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_every_recipe_block_in_the_readme_is_its_example_file() -> None:
    """A README block marked ``<!-- recipe: examples/... -->`` equals that file, which the
    recipe tests run: the README can't show code that was never run."""
    blocks = recipe_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README: no recipe markers"
    for path, code in blocks.items():
        file = ROOT / path
        assert file.is_file(), f"README: the recipe {path} is not a file"
        assert code == file.read_text(encoding="utf-8"), f"README: the block for {path} differs"


def test_every_example_file_is_shown_in_the_readme() -> None:
    """Each file under examples/ has its block in the README: a recipe's files are all
    there to copy, and none is left behind when the examples change."""
    shown = set(recipe_blocks(README.read_text(encoding="utf-8")))
    assert sorted(example_files() - shown) == []


def test_recipe_blocks_are_found_and_compared_exactly() -> None:
    """The parser itself: a marker, blank lines, a fence with a language; the code is the
    text between the fences, its last newline included; a missing block is an error."""
    text = "<!-- recipe: examples/a.py -->\n\n```python\nx = 1\n\ny = 2\n```\n"
    text += "<!-- recipe: examples/b.yaml -->\n````yaml\na: 1\n```\n````\n"
    assert recipe_blocks(text) == {
        "examples/a.py": "x = 1\n\ny = 2\n",
        "examples/b.yaml": "a: 1\n```\n",
    }
    with pytest.raises(AssertionError, match="no fenced code block"):
        recipe_blocks("<!-- recipe: examples/c.py -->\nsome prose\n```python\n```\n")


#: ``<!-- snippet: stores into <table> -->`` on its own line, then a fenced Python block:
#: the block runs as it is shown and stores records into that table.
SNIPPET = re.compile(r"^<!-- snippet: stores into (?P<table>\w+) -->[ \t]*$", re.MULTILINE)


def snippets(text: str) -> list[tuple[str, str]]:
    """Each snippet's table and code."""
    found = []
    for marker in SNIPPET.finditer(text):
        block = FENCED.match(text, marker.end())
        assert block is not None, "README: no fenced code block right after a snippet marker"
        found.append((marker["table"], block["code"]))
    return found


def test_the_readmes_snippets_run_as_shown_and_store_their_records(recipe_dsn: str) -> None:
    """Each marked snippet of the README, run as it is in a fresh interpreter with only
    $PGLOG_DSN set (to a database of its own), stores every message it logs."""
    shown = snippets(README.read_text(encoding="utf-8"))
    assert len(shown) >= 3
    for table, code in shown:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PGLOG_DSN": recipe_dsn},
            check=False,
        )
        assert result.returncode == 0, f"{code}\n{result.stderr}"
        with psycopg.connect(recipe_dsn, autocommit=True) as conn:
            query = sql.SQL("SELECT coalesce(template, message) FROM {}").format(
                sql.Identifier(table)
            )
            stored = {text for (text,) in conn.execute(query)}
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
        logged = set(re.findall(r'\.(?:info|warning|error)\(\s*"([^"]+)"', code))
        assert logged, code
        assert logged <= stored, code
