"""Pace: a transaction that outlives write_timeout halves the next one's rows, down to
one; quick transactions that carried all they might double them back."""

from __future__ import annotations

from pglog._writer.pace import Pace


def test_the_whole_batch_goes_until_a_transaction_times_out() -> None:
    """Nothing has timed out: every row available goes in one transaction, even after a
    quick one."""
    pace = Pace(write_timeout=1.0)
    pace.wrote(500, 0.01)
    assert pace.rows(10_000) == 10_000


def test_each_timeout_halves_the_rows_down_to_one() -> None:
    """100 rows timed out: 50 next; 50 timed out: 25; ... one row is not halved further."""
    pace = Pace(write_timeout=1.0)
    sizes = []
    count = 100
    while pace.timed_out(count):
        count = pace.rows(100)
        sizes.append(count)
    assert sizes == [50, 25, 12, 6, 3, 1]
    assert pace.rows(100) == 1


def test_quick_full_transactions_grow_it_back_slow_or_short_ones_do_not() -> None:
    """Under half of write_timeout with all the rows allowed doubles the limit; a
    transaction that took longer, or carried fewer (the tail of a batch), leaves it."""
    pace = Pace(write_timeout=1.0)
    pace.timed_out(100)
    pace.timed_out(50)
    assert pace.rows(100) == 25
    pace.wrote(25, 0.6)  # took over half of write_timeout: stays
    assert pace.rows(100) == 25
    pace.wrote(10, 0.01)  # quick, but not a full transaction: stays
    assert pace.rows(100) == 25
    pace.wrote(25, 0.1)
    assert pace.rows(100) == 50
    pace.wrote(50, 0.1)
    assert pace.rows(100) == 100
