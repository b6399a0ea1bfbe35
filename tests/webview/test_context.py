# ruff: noqa: F811 - the fixture imported from webview.test_api is a parameter by name
"""The web view's context and errors endpoints: a record with what was logged around it,
and a range's errors by kind, over HTTP against a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import psycopg
from psycopg import sql

from webview.test_api import Site, site  # noqa: F401


def seed(db: psycopg.Connection[Any], table: str) -> dict[str, int]:
    """Two processes logging a minute apart, two requests, one error kind; the ids by message."""
    now = dt.datetime.now(dt.timezone.utc)
    rows = [
        (now - dt.timedelta(seconds=90), 1, "p1 early", {}, None),
        (now - dt.timedelta(seconds=30), 1, "p1 before", {"request_id": "r-1"}, None),
        (now - dt.timedelta(seconds=29), 2, "p2 beside", {"request_id": "r-2"}, None),
        (now - dt.timedelta(seconds=28), 1, "p1 the one", {"request_id": "r-1"}, None),
        (now - dt.timedelta(seconds=27), 2, "p2 after", {"request_id": "r-1"}, "shop: failed %s"),
        (now - dt.timedelta(seconds=26), 1, "p1 after", {}, "shop: failed %s"),
    ]
    with db.cursor() as cur:
        for moment, process, message, extra, kind in rows:
            cur.execute(
                sql.SQL(
                    'INSERT INTO {} ("timestamp", level, levelno, logger_name, message,'
                    " hostname, process_id, extra_data, fingerprint)"
                    " VALUES (%s, %s, %s, 'shop', %s, 'h', %s, %s::jsonb, %s)"
                ).format(sql.Identifier(table)),
                (
                    moment,
                    "ERROR" if kind else "INFO",
                    40 if kind else 20,
                    message,
                    process,
                    json.dumps(extra),
                    kind,
                ),
            )
    found = db.execute(sql.SQL("SELECT message, id FROM {}").format(sql.Identifier(table)))
    return dict(found.fetchall())


def messages(answer: dict[str, Any]) -> list[str]:
    return [row["message"] for row in answer["rows"]]


def test_a_record_comes_with_what_its_process_or_request_logged_around_it(
    site: Site, db: psycopg.Connection[Any], table: str
) -> None:
    """around=process: the same host and process, oldest first, within the window;
    around=request: the same request_id; around=all: everything near."""
    ids = seed(db, table)
    one = ids["p1 the one"]
    process = site.get("/api/context", id=one).json()
    assert process["record"]["message"] == "p1 the one"
    assert messages(process) == ["p1 early", "p1 before", "p1 the one", "p1 after"]
    narrow = site.get("/api/context", id=one, window="30s").json()
    assert messages(narrow) == ["p1 before", "p1 the one", "p1 after"]
    request = site.get("/api/context", id=one, around="request").json()
    assert messages(request) == ["p1 before", "p1 the one", "p2 after"]
    everything = site.get("/api/context", id=one, around="all", window="10s").json()
    assert messages(everything) == ["p1 before", "p2 beside", "p1 the one", "p2 after", "p1 after"]
    assert everything["cut"] is False
    assert site.get("/api/context", id=10**12).json() == {
        "record": None,
        "rows": [],
        "around": "process",
        "cut": False,
    }
    for params, says in (
        ({"id": "x"}, "id must be a row id"),
        ({"id": one, "around": "thread"}, "around must be one of process, request, all"),
        ({"id": one, "window": "3d"}, "window must be more than 0 and at most"),
        ({"id": one, "since": "1h"}, "unknown parameter 'since'"),
    ):
        answer = site.get("/api/context", **params)
        assert answer.status == 400, params
        assert says in answer.json()["error"]


def test_errors_by_kind_and_a_kinds_records(
    site: Site, db: psycopg.Connection[Any], table: str
) -> None:
    """/api/errors: the kind with its count and trend; /api/rows?kind= its records."""
    seed(db, table)
    errors = site.get("/api/errors", since="1h").json()
    (group,) = errors["groups"]
    assert (group["kind"], group["count"], group["new"]) == ("shop: failed %s", 2, True)
    assert sum(group["trend"]) == 2
    assert errors["records"] == 2
    rows = site.get("/api/rows", since="1h", kind="shop: failed %s").json()
    assert messages(rows) == ["p1 after", "p2 after"]
    request = site.get("/api/rows", since="1h", request="r-1").json()
    assert messages(request) == ["p2 after", "p1 the one", "p1 before"]
