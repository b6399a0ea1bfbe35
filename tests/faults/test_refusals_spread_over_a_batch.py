"""Review 2: three refused rows anywhere in a batch send the rest of the batch, good rows
too, to the fallback.

``Delivery._write_isolating`` counts rows refused even escaped in ``refusals``, and after
``REFUSALS_BEFORE_REJECT`` (3) with the same reason decides that "the table itself is the
problem" (``_TableRefuses``): every entry still in flight goes to the fallback. The list
is meant to count refusals "in a row" (the constant's comment), but it is only reset when
a quarantined row is stored, never when a part of good rows between them is: so three
refusals spread over one batch, separated by good rows the table takes, count as three
in a row.

A table with a CHECK constraint (``message NOT LIKE 'bad%'``, refusing 3 rows of 100, at
positions 10, 40 and 70): rows 0-69 minus the bad ones are stored; the 29 good rows after
the third refusal go to the fallback, although the table takes each of them. README: "one
row the table refuses ... if even that is refused it goes to the fallback; its
batch-mates are stored". Measured: emitted 97 good, stored 68, fallback 29 good + 3 bad,
deterministic.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from conftest import HandlerFactory
from helpers import ListHandler, add_check, make_table, stored

from faults.kit import balanced, ledger

BAD = {10, 40, 70}


def test_refused_rows_spread_over_a_batch_do_not_reject_their_batch_mates(
    make_handler: HandlerFactory,
    table: str,
    db: psycopg.Connection[tuple[Any, ...]],
    pg_dsn: str,
    logger: logging.Logger,
) -> None:
    make_table(pg_dsn, table)
    add_check(db, table, "no_bad", "message NOT LIKE 'bad%'")
    fallback = ListHandler()
    handler = make_handler(batch_size=100, flush_interval=5, fallback=fallback)
    logger.addHandler(handler)
    messages = [f"bad-{i}" if i in BAD else f"good-{i}" for i in range(100)]
    for message in messages:
        logger.info(message)
    assert handler.flush(30)
    stats = handler.stats()
    rows = stored(pg_dsn, table)
    handed = fallback.messages(logger.name)
    good = [m for m in messages if m.startswith("good")]
    good_handed = [m for m in handed if m.startswith("good")]
    print(f"{ledger(stats)} stored={len(rows)} handed={len(handed)} good_handed={len(good_handed)}")
    assert balanced(stats)
    assert sorted(rows) == sorted(good), (
        f"{len(good_handed)} good rows went to the fallback (stored {len(rows)} of"
        f" {len(good)}): three refusals spread over the batch were taken for three in a row"
    )
