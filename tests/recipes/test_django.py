"""Django recipe: the LOGGING setting, served by two gunicorn workers."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import free_port

from recipes.support import (
    EXAMPLES,
    Program,
    check_stored_once_by_its_process,
    get,
    python_module,
    query,
)

ORDERS = 60
MISSING = 5
FAILING = 5


def test_django_logging_setting_stores_app_and_django_records_once(
    recipe_dsn: str, tmp_path: Path
) -> None:
    """A Django site configured by the recipe's LOGGING, in two gunicorn workers that each
    build their own handler: the view's records are stored once per request by the worker
    that served it, and Django's own 404 and 500 records arrive with their status code and
    traceback, after a SIGTERM."""
    port = free_port()
    command = python_module(
        "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:application"
    )
    env = {
        "PGLOG_DSN": recipe_dsn,
        "DJANGO_SECRET_KEY": "test-only",
        "XDG_RUNTIME_DIR": str(tmp_path),  # gunicorn's control socket
    }
    with Program(
        command, cwd=EXAMPLES / "django", env=env, output=tmp_path / "django.log"
    ) as server:
        server.wait_for_output("Booting worker with pid", count=2)

        def order(n: int) -> tuple[int, int]:
            status, body = get(f"http://127.0.0.1:{port}/orders/{n}")
            assert status == 200, body[:500]
            answer = json.loads(body)
            return int(answer["order"]), int(answer["pid"])

        served: dict[int, int] = {}
        with ThreadPoolExecutor(4) as pool:
            # Each worker loads Django after it boots; until both have answered, ask again
            # (these requests count like the others).
            deadline = time.monotonic() + 60
            while len(set(served.values())) < 2:
                assert time.monotonic() < deadline, "only one worker ever answered"
                served.update(pool.map(order, range(len(served), len(served) + 4)))
            served.update(pool.map(order, range(len(served), len(served) + ORDERS)))
            statuses = list(
                pool.map(lambda _: get(f"http://127.0.0.1:{port}/missing")[0], range(MISSING))
            )
            statuses += list(
                pool.map(lambda _: get(f"http://127.0.0.1:{port}/checkout")[0], range(FAILING))
            )
        assert Counter(statuses) == {404: MISSING, 500: FAILING}
        assert server.stop(signal.SIGTERM) == 0
        output = server.output()

    workers = {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", output)}
    per_worker = Counter(served.values())
    assert set(per_worker) <= workers

    check_stored_once_by_its_process(
        recipe_dsn,
        "django (view records)",
        where="logger_name = 'shop'",
        key="(extra_data->>'order')::int",
        done_by=served,
        count=len(served),
    )

    # Django's own records: its request object is kept as text, its status code as is.
    not_found = query(
        recipe_dsn,
        "SELECT level, process_id, extra_data->>'status_code', extra_data->>'request'"
        " FROM logs WHERE logger_name = 'django.request' AND message = 'Not Found: /missing'",
    )
    assert len(not_found) == MISSING
    assert {(level, status) for level, _, status, _ in not_found} == {("WARNING", "404")}
    assert {request for *_, request in not_found} == {"<WSGIRequest: GET '/missing'>"}
    failed = query(
        recipe_dsn,
        "SELECT level, process_id, extra_data->>'status_code', exception FROM logs"
        " WHERE logger_name = 'django.request' AND message = 'Internal Server Error: /checkout'",
    )
    assert len(failed) == FAILING
    assert {(level, status) for level, _, status, _ in failed} == {("ERROR", "500")}
    assert all("RuntimeError: payment service unreachable" in tb for *_, tb in failed)
    assert {pid for _, pid, _, _ in not_found + failed} <= workers
    assert "pglog" not in output  # no fallback output, no complaint from pglog
