"""levels: a level's number, from its name, in the process that logged it."""

from __future__ import annotations

import logging
import uuid

import loguru

from pglog._capture.levels import number_of


def test_standard_custom_and_unnamed_levels_have_their_numbers() -> None:
    """The five, a level added with logging.addLevelName (found however late), and the
    ``Level 37`` logging calls a number it has no name for."""
    assert [number_of(name) for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")] == [
        10,
        20,
        30,
        40,
        50,
    ]
    name = f"SECURITY_{uuid.uuid4().hex[:6].upper()}"
    assert number_of(name) is None
    logging.addLevelName(35, name)
    assert number_of(name) == 35
    assert number_of(logging.getLevelName(37)) == 37


def test_loguru_levels_are_asked_of_loguru() -> None:
    """loguru names its levels itself: SUCCESS is 25 there, and one a program adds is found."""
    assert number_of("SUCCESS") == 25
    name = f"AUDIT_{uuid.uuid4().hex[:6].upper()}"
    loguru.logger.level(name, no=45)
    assert number_of(name) == 45
    assert number_of("NO_SUCH_LEVEL_ANYWHERE") is None
