"""Reading a table back through every face: the CLI's commands and the web view's API,
compared with what plain SQL says is in the table. The engine tests seed a table of
realistic rows over the last three days, then check that ``tail``, ``query`` (levels,
text search, extras), ``export``, ``stats``, ``health``, ``errors`` and the web view's
rows, live poll, volume chart, errors and facts all see exactly those rows, on Citus and
on compressed chunks."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
from collections import Counter
from typing import Any

import psycopg
from psycopg import sql
from test_cli import pglog
from webview.test_api import serving

from pglog._table.schema import TableName
from pglog._web.app import Settings

LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR", "INFO", "CRITICAL")
HOSTS = ("web-1", "web-2", "worker-1", "batch-1")
LOGGERS = ("app.api", "app.db", "app.api.auth", "worker")
#: The reads compared, each as the CLI's arguments.
QUERIES = {
    "errors": ("--level", "ERROR"),
    "timeouts": ("--grep", "timeout"),
    "user 7": ("--where", "extra.user_id=7"),
    "api, a day": ("--logger", "app.api", "--since", "1d"),
}


def seed(dsn: str, table: str, rows: int = 900, span: dt.timedelta = dt.timedelta(days=3)) -> None:
    """``rows`` log rows spread over the last ``span``, oldest first, as writers send them
    (an error's kind, as pglog gives one logged without a traceback, its logger and
    template)."""
    now = dt.datetime.now(dt.timezone.utc)
    columns: tuple[str, ...] = ("timestamp", "level", "levelno", "logger_name", "hostname")
    columns += ("message", "template", "fingerprint", "extra_data")
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with psycopg.connect(dsn) as conn, conn.cursor().copy(copy) as out:
        for i in range(rows):
            template = "request %s timeout after 30 s" if i % 11 == 0 else "request %s ok"
            extra = {"user_id": i % 13, "request_id": f"r-{i}"}
            level, logger = LEVELS[i % len(LEVELS)], LOGGERS[i % len(LOGGERS)]
            number = int(getattr(logging, level))
            kind = f"{logger}: {template}" if number >= logging.ERROR else None
            out.write_row(
                (
                    now - span + span * (i + 0.5) / rows,
                    level,
                    number,
                    logger,
                    HOSTS[i % len(HOSTS)],
                    template % i,
                    template,
                    kind,
                    json.dumps(extra),
                )
            )


def truth(dsn: str, table: str) -> dict[str, Any]:
    """What plain SQL says the reads must show."""
    name = sql.Identifier(table)
    newest_first = sql.SQL('ORDER BY "timestamp" DESC, id DESC')
    conditions = {
        "errors": "level IN ('ERROR', 'CRITICAL')",
        "timeouts": "message ILIKE '%%timeout%%'",
        "user 7": "extra_data->'user_id' = '7'",
        "api, a day": "(logger_name = 'app.api' OR logger_name LIKE 'app.api.%%')"
        " AND \"timestamp\" >= now() - interval '1 day'",
    }
    with psycopg.connect(dsn, autocommit=True) as conn:

        def ids(where: str) -> list[int]:
            query = sql.SQL("SELECT id FROM {} WHERE {} {}").format(
                name, sql.SQL(where), newest_first
            )
            return [int(i) for (i,) in conn.execute(query).fetchall()]

        levels = conn.execute(
            sql.SQL("SELECT level, count(*) FROM {} GROUP BY 1").format(name)
        ).fetchall()
        tail = conn.execute(
            sql.SQL("SELECT message FROM {} {} LIMIT 3").format(name, newest_first)
        ).fetchall()
        recent = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} WHERE level IN ('ERROR', 'CRITICAL')"
                " AND \"timestamp\" >= now() - interval '4 days'"
            ).format(name)
        ).fetchone()
        return {
            "error records": int(recent[0]) if recent else 0,
            "tail": [str(message) for (message,) in reversed(tail)],
            "all": ids("TRUE"),
            **{label: ids(where) for label, where in conditions.items()},
            "levels": {str(level): int(n) for level, n in levels},
        }


def read_back(dsn: str, table: str) -> dict[str, Any]:
    """The same reads, through the CLI and the web view."""
    target = ("--dsn", dsn, "--table", table)
    found: dict[str, Any] = {}
    exported = _ok(pglog("export", *target, "--format", "jsonl"))
    rows = sorted(
        map(json.loads, exported.splitlines()),
        key=lambda r: (r["timestamp"], r["id"]),
        reverse=True,
    )
    found["all"] = [row["id"] for row in rows]
    for label, options in QUERIES.items():  # printed oldest first
        answer = _ok(pglog("query", *target, *options, "--format", "jsonl", "--limit", "5000"))
        found[label] = [json.loads(line)["id"] for line in reversed(answer.splitlines())]
    found["tail"] = _ok(pglog("tail", *target, "-n", "3")).splitlines()
    kinds = _ok(pglog("errors", *target, "--since", "4d", "--format", "jsonl", "--limit", "500"))
    found["kinds"] = _kinds(json.loads(line) for line in kinds.splitlines())
    stats = _ok(pglog("stats", *target))
    found["stats"] = stats
    found["health"] = pglog("health", *target)
    for site in serving(Settings(dsn, TableName("public", table))):
        found["web"] = _web(site, len(found["all"]))
    return found


def _web(site: Any, total: int) -> dict[str, Any]:
    """The page walked to its end, the live poll from the start, the volume and facts."""
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=4)).isoformat()
    until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)).isoformat()
    walked: list[int] = []
    cursor: str | None = None
    for _ in range(total):  # a walk that never ends is a bug: bound it
        params = {"since": since, "until": until, "limit": 100}
        page = site.get("/api/rows", **params, **({"before": cursor} if cursor else {})).json()
        walked += [row["id"] for row in page["rows"]]
        cursor = page["next"]
        if cursor is None:
            break
    live = site.get("/api/live", after=0, limit=500, since=since, until=until).json()
    volume = site.get("/api/volume", since=since, until=until).json()
    kinds = site.get("/api/errors", since=since, until=until).json()
    by_level: Counter[str] = Counter()
    for bar in volume["bars"]:
        by_level.update(bar["counts"])
    return {
        "page": walked,
        "live": [row["id"] for row in live["rows"]],
        "live complete": live["complete"],
        "volume": dict(by_level),
        "volume estimated": volume["estimated"],
        "facts": site.get("/api/facts").json(),
        "kinds": _kinds(kinds["groups"]),
        "error records": kinds["records"],
    }


def _kinds(groups: Any) -> dict[str, int]:
    """Error kind -> records of it."""
    return {group["kind"]: group["count"] for group in groups}


def assert_read_back(found: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every face showed what SQL says is there."""
    assert found["all"] == expected["all"]
    for label in QUERIES:
        assert found[label] == expected[label], label
        assert found[label], f"{label}: the seed should give this read something to find"
    assert len(found["tail"]) == 3
    for line, message in zip(found["tail"], expected["tail"], strict=True):
        assert line.endswith(message) or f": {message}  " in line, (line, message)
    for level, count in expected["levels"].items():
        assert any(line.split() == [level, f"{count:,}"] for line in found["stats"].splitlines())
    assert " 0 bytes" not in found["stats"]
    assert found["health"].returncode == 0, found["health"].stdout
    assert sum(found["kinds"].values()) == expected["error records"] > 0
    assert found["web"]["kinds"] == found["kinds"]
    assert found["web"]["error records"] == expected["error records"]
    web = found["web"]
    assert web["page"] == expected["all"]
    assert web["live"] == sorted(expected["all"], reverse=True)[:500]
    assert web["live complete"] == (len(expected["all"]) <= 500)
    if web["volume estimated"]:  # a slice busier than its budget: scaled, not counted
        assert set(web["volume"]) == set(expected["levels"])
    else:
        assert web["volume"] == expected["levels"]
    assert web["facts"]["total_bytes"] > 0


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout
