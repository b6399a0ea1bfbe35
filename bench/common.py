"""What the benchmarks share: the database they run on, and where their results go."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pglog._embedded import embedded_server

RESULTS = Path(__file__).parent / "results"


@contextlib.contextmanager
def database() -> Iterator[str]:
    """$PGLOG_BENCH_DSN, else $PGLOG_TEST_DSN, else a throwaway embedded PostgreSQL."""
    given = os.environ.get("PGLOG_BENCH_DSN") or os.environ.get("PGLOG_TEST_DSN")
    if given:
        yield given
        return
    with embedded_server() as dsn:
        yield dsn


def publish(results: dict[str, Any], report: str, prefix: str = "") -> None:
    """Print the report, and keep the figures as JSON beside the earlier runs'."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{prefix}{results['when'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(report)
    print(f"\n(also written to {path})")
