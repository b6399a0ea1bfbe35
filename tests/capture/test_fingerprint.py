"""fingerprint: which kind of error a record is, from its traceback or its template."""

from __future__ import annotations

import logging
import traceback

import pytest

from pglog._capture.fingerprint import fingerprint, raised_at


def _traceback_of(error: Exception) -> str:
    try:
        raise error
    except Exception:
        return traceback.format_exc()


def _charge(amount: str) -> int:
    return int(amount) * 100


def test_a_traceback_is_known_by_its_exception_and_where_it_was_raised() -> None:
    """The type on the last line and the file and function of the innermost frame; not
    the line number, so an edit above the raise keeps the kind."""
    try:
        _charge("12,50")
    except ValueError:
        text = traceback.format_exc()
    assert raised_at(text) == "ValueError in capture/test_fingerprint.py, _charge"
    moved = text.replace(", line ", ", line 1").replace("line 1", "line 99")
    assert raised_at(moved) == raised_at(text)


def test_of_a_chain_the_exception_raised_last_counts() -> None:
    """``raise ... from`` and an exception during the handling of another: the kind is the
    one that was raised in the end."""
    try:
        try:
            _charge("x")
        except ValueError as cause:
            raise KeyError("order") from cause
    except KeyError:
        text = traceback.format_exc()
    assert text.count("Traceback (most recent call last):") == 2
    assert raised_at(text) == (
        "KeyError in capture/test_fingerprint.py, test_of_a_chain_the_exception_raised_last_counts"
    )


def test_an_error_without_a_traceback_is_known_by_its_logger_and_template() -> None:
    """ERROR and worse: logger and template; a message formatted beforehand has its
    numbers and ids blanked, so an f-string's records still count together."""
    assert fingerprint("shop", 40, "order %s failed", "order 7 failed", None) == (
        "shop: order %s failed"
    )
    blanked = fingerprint(
        "shop", 50, None, "order 1043 failed for 3fa85f64-5717-4562-b3fc-2c963f66afa6", None
    )
    assert blanked == "shop: order <n> failed for <id>"
    assert fingerprint("shop", 50, None, "order 17 failed for deadbeef42", None) == (
        "shop: order <n> failed for <id>"
    )


@pytest.mark.parametrize("level", [logging.WARNING, logging.INFO, None])
def test_a_record_below_error_without_a_traceback_has_none(level: int | None) -> None:
    """A warning or an unknown level without a traceback is not an error."""
    assert fingerprint("shop", level, "slow %s", "slow 3", None) is None


def test_a_warning_with_a_traceback_is_an_error_of_its_kind() -> None:
    """``log.warning(..., exc_info=True)`` stored a traceback: it is known by it."""
    text = _traceback_of(TimeoutError("late"))
    kind = fingerprint("shop", logging.WARNING, None, "retrying", text)
    assert kind is not None
    assert kind.startswith("TimeoutError in capture/test_fingerprint.py, _traceback_of")


def test_text_that_is_no_traceback_falls_back_to_the_template() -> None:
    """A stack alone, or exception text a formatter wrote its own way: the template."""
    assert fingerprint("shop", 40, "failed %d", "failed 3", "Stack (most recent call last):") == (
        "shop: failed %d"
    )
    assert fingerprint("shop", 30, "odd", "odd", "something happened") is None


def test_a_fingerprint_fits_its_column() -> None:
    """At most 255 characters, whatever the message."""
    kind = fingerprint("shop", 40, None, "x" * 10_000, None)
    assert kind is not None
    assert len(kind) == 255
