"""The web view's queries (pglog._web.queries): bounded walks, live arrivals, the volume
chart and table facts, on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pglog._table.filters import Filter
from pglog._table.migrate import ensure_table
from pglog._table.reader import rows as reader_rows
from pglog._table.schema import TableName
from pglog._web import facts, queries, volume
from pglog._web.queries import Cursor

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
Row = tuple[dt.datetime, str, str, str, dict[str, Any]]


def make_table(db: psycopg.Connection[Any], name: str, partition: str | None = None) -> TableName:
    table = TableName("public", name)
    ensure_table(db, table, partition=partition)
    return table


def insert(db: psycopg.Connection[Any], table: TableName, rows: list[Row]) -> None:
    """Rows at the times given: (timestamp, level, logger, message, extra)."""
    with db.cursor() as cur:
        cur.executemany(
            sql.SQL(
                'INSERT INTO {} ("timestamp", level, logger_name, message, extra_data)'
                " VALUES (%s, %s, %s, %s, %s::jsonb)"
            ).format(table.identifier),
            [
                (when, level, name, text, json.dumps(extra))
                for when, level, name, text, extra in rows
            ],
        )


def spread(count: int, span: dt.timedelta, **fields: Any) -> list[Row]:
    """``count`` rows evenly over the ``span`` before NOW, levels in turn."""
    levels = ("DEBUG", "INFO", "INFO", "WARNING", "ERROR")
    return [
        (
            NOW - span + span * (i + 0.5) / count,
            fields.get("level") or levels[i % len(levels)],
            fields.get("logger", f"app.part{i % 3}"),
            fields.get("message", f"request {i}"),
            {"n": i},
        )
        for i in range(count)
    ]


def last_hour(**options: Any) -> Filter:
    return Filter.parse(since="1h", until=NOW.isoformat(), now=NOW, **options)


def test_pages_walk_the_range_newest_first_without_gaps_or_repeats(
    db: psycopg.Connection[Any], table: str
) -> None:
    """Keyset pages of 40 cover every row once, in (timestamp, id) order, ties included."""
    logs = make_table(db, table)
    rows = spread(150, dt.timedelta(minutes=50))
    insert(db, logs, rows + [(rows[7][0], "INFO", "app.tie", f"tie {i}", {}) for i in range(60)])
    expected = [
        row[0]
        for row in db.execute(
            sql.SQL('SELECT id FROM {} ORDER BY "timestamp" DESC, id DESC').format(logs.identifier)
        ).fetchall()
    ]
    seen: list[int] = []
    before: Cursor | None = None
    while True:
        found = queries.page(db, logs, last_hour(), limit=40, before=before)
        seen += [row["id"] for row in found.rows]
        if found.next is None:
            break
        before = Cursor.parse(str(found.next))  # as it travels through a URL
    assert seen == expected
    assert len(seen) == 210


RARE = {100, 350, 351, 700, 999}


def with_rare(
    db: psycopg.Connection[Any], logs: TableName, *, column: int, value: str
) -> list[Row]:
    """1,000 rows over 50 minutes, the rows RARE with ``value`` in ``column``."""
    rows = spread(1000, dt.timedelta(minutes=50))
    changed = [
        tuple(value if i in RARE and n == column else item for n, item in enumerate(row))
        for i, row in enumerate(rows)
    ]
    insert(db, logs, changed)  # type: ignore[arg-type]
    return rows


def test_a_walk_stops_at_its_budget_and_says_where_to_go_on(
    db: psycopg.Connection[Any], table: str
) -> None:
    """A rare match the search index can't find costs at most ``budget`` rows a request;
    following ``next`` finds every match, newest first."""
    logs = make_table(db, table)
    rows = with_rare(db, logs, column=2, value="needle")
    where = last_hour(logger="needle")
    first = queries.page(db, logs, where, limit=100, budget=120)
    assert [row["extra_data"] for row in first.rows] == ['{\n    "n": 999\n}']
    assert first.next is not None
    assert first.next.timestamp == rows[1000 - 120][0]
    found, before, requests = [], None, 0
    while True:
        page = queries.page(db, logs, where, limit=100, before=before, budget=120)
        found += [json.loads(row["extra_data"])["n"] for row in page.rows]
        requests += 1
        if page.next is None:
            break
        before = page.next
    assert found == sorted(RARE, reverse=True)
    assert requests == 9  # 1000 rows, 120 a request


def test_a_search_the_budget_doesnt_satisfy_goes_on_through_the_search_index(
    db: psycopg.Connection[Any], table: str
) -> None:
    """A rare word: the walk's budget finds one match, the search index the rest of the
    range, in the same request; a common word fills its page from the walk alone."""
    logs = make_table(db, table)
    with_rare(db, logs, column=3, value="a needle")
    first = queries.page(db, logs, last_hour(grep="NEEDLE"), limit=100, budget=120)
    assert [json.loads(row["extra_data"])["n"] for row in first.rows] == sorted(RARE, reverse=True)
    assert first.next is None
    two = queries.page(db, logs, last_hour(grep="NEEDLE"), limit=2, budget=120)
    assert [json.loads(row["extra_data"])["n"] for row in two.rows] == [999, 700]
    assert two.next is not None
    rest = queries.page(db, logs, last_hour(grep="needle"), limit=5, before=two.next, budget=120)
    assert [json.loads(row["extra_data"])["n"] for row in rest.rows] == [351, 350, 100]


def test_arrivals_are_the_rows_after_an_id_newest_first(
    db: psycopg.Connection[Any], table: str
) -> None:
    """The live tail: rows after the id, matching the filter, newest first; the newest
    id looked at even when it doesn't match; incomplete when more than fit."""
    logs = make_table(db, table)
    insert(db, logs, spread(20, dt.timedelta(minutes=10)))
    start = queries.newest_id(db, logs)
    insert(db, logs, spread(6, dt.timedelta(minutes=1), level="ERROR"))
    insert(db, logs, spread(1, dt.timedelta(minutes=1), level="INFO"))
    errors = last_hour(level="ERROR")
    found = queries.arrivals(db, logs, errors, after_id=start, limit=10)
    assert [row["id"] for row in found.rows] == list(range(start + 6, start, -1))
    assert found.last_id == start + 7  # the INFO row, looked at but not shown
    assert found.complete
    assert not queries.arrivals(db, logs, errors, after_id=start, limit=5).complete
    assert not queries.arrivals(db, logs, errors, after_id=start, limit=10, budget=3).complete
    nothing = queries.arrivals(db, logs, errors, after_id=start + 7, limit=10)
    assert (nothing.rows, nothing.last_id, nothing.complete) == ([], None, True)


def test_volume_counts_exactly_per_level_when_the_range_is_quiet(
    db: psycopg.Connection[Any], table: str
) -> None:
    """Bars of a round width cover the range; each row is counted once, in its bar."""
    logs = make_table(db, table)
    rows = spread(300, dt.timedelta(minutes=59))
    insert(db, logs, rows)
    found = volume.volume(db, logs, last_hour(logger="app.part1"))
    assert found.step == dt.timedelta(minutes=1)
    assert not found.estimated
    assert all(bar.start.second == 0 and bar.start.microsecond == 0 for bar in found.bars)
    counted: Counter[str] = Counter()
    for bar in found.bars:
        counted.update(bar.counts)
    assert counted == Counter(level for _, level, name, _, _ in rows if name == "app.part1")
    ((when, level, *_),) = [row for row in rows if row[4]["n"] == 7]
    (bar,) = [bar for bar in found.bars if bar.start <= when < bar.stop]
    assert bar.counts.get(level, 0) >= 1


def test_volume_estimates_busy_stretches_close_to_the_truth(
    db: psycopg.Connection[Any], table: str
) -> None:
    """Slices busier than their budget are scaled up from the rows they start with."""
    logs = make_table(db, table)
    insert(db, logs, spread(12_000, dt.timedelta(minutes=60)))
    found = volume.volume(db, logs, last_hour(), budget=40)
    assert found.estimated
    total = sum(sum(bar.counts.values()) for bar in found.bars)
    assert 12_000 * 0.9 < total < 12_000 * 1.1
    errors = sum(bar.counts.get("ERROR", 0) for bar in found.bars)
    assert 2_400 * 0.8 < errors < 2_400 * 1.2


@pytest.mark.parametrize("partition", [None, "day"])
def test_facts_count_a_small_table_and_estimate_a_big_one(
    db: psycopg.Connection[Any], table: str, partition: str | None
) -> None:
    """Small: exact counts. Past the count limit: the planner's statistics, summed over
    the partitions. Either way: size, newest and oldest row, schema version."""
    logs = make_table(db, table, partition)
    rows = spread(400, dt.timedelta(minutes=50))
    insert(db, logs, rows)
    small = facts.facts(db, logs)
    assert small.basis == "counted"
    assert small.estimated_rows == 400
    assert dict(small.by_level) == dict(Counter(row[1] for row in rows))
    assert [name for name, _ in small.by_level] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert small.newest == rows[-1][0]
    assert small.oldest == rows[0][0]
    assert small.total_bytes > 0
    assert small.schema_version is not None

    db.execute(sql.SQL("ANALYZE {}").format(logs.identifier))
    big = facts.facts(db, logs, count_limit=100)
    assert big.basis == "statistics"
    assert 360 <= big.estimated_rows <= 440
    assert dict(big.by_level).keys() == dict(small.by_level).keys()
    assert abs(dict(big.by_level)["INFO"] - 160) <= 16
    assert {name for name, _ in big.by_logger} == {"app.part0", "app.part1", "app.part2"}


def test_the_filter_is_the_one_pglog_query_uses(db: psycopg.Connection[Any], table: str) -> None:
    """Every filter picks the same rows here as in pglog query (reader.rows)."""
    logs = make_table(db, table)
    rows = spread(120, dt.timedelta(minutes=50))
    insert(db, logs, rows)
    insert(
        db,
        logs,
        [
            (
                NOW - dt.timedelta(minutes=5),
                "ERROR",
                "app.part1.db",
                "100% broke",
                {"user": {"id": 42}},
            )
        ],
    )
    cases: list[dict[str, Any]] = [
        {"level": "warning"},
        {"logger": "app.part1"},
        {"grep": "request 1"},
        {"grep": "100%"},
        {"where": ["extra.n>=100"]},
        {"where": ["extra.user.id=42"], "level": "ERROR"},
        {"where": ["extra.n~^1.$"], "logger": "app"},
        {"since": "20m"},
    ]
    for options in cases:
        where = Filter.parse(**{"since": "1h", **options}, until=NOW.isoformat(), now=NOW)
        ours = [row["id"] for row in queries.page(db, logs, where, limit=500).rows]
        theirs = [row["id"] for row in reader_rows(db, logs, where, limit=500)]
        assert ours == theirs, options
        assert ours, options


def test_a_cursor_that_is_not_one_is_refused() -> None:
    """Cursors come back from the page; anything else says so."""
    assert Cursor.parse("2026-11-23T10:00:00.5+00:00/42") == Cursor(
        dt.datetime(2026, 11, 23, 10, 0, 0, 500000, tzinfo=dt.timezone.utc), 42
    )
    for text in ("", "42", "yesterday/42", "2026-11-23T10:00:00/x"):
        with pytest.raises(ValueError, match="can't read the cursor"):
            Cursor.parse(text)


def test_bars_have_round_widths() -> None:
    """About sixty bars, each of a width people read at a glance."""
    assert volume.bar_width(dt.timedelta(minutes=15), 60) == dt.timedelta(seconds=15)
    assert volume.bar_width(dt.timedelta(hours=1), 60) == dt.timedelta(minutes=1)
    assert volume.bar_width(dt.timedelta(hours=24), 60) == dt.timedelta(minutes=30)
    assert volume.bar_width(dt.timedelta(days=31), 60) == dt.timedelta(days=1)
    assert volume.bar_width(dt.timedelta(days=400), 60) == dt.timedelta(days=7)
