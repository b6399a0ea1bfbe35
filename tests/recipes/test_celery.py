"""Celery recipe: a prefork worker on kombu's filesystem broker, stopped warm."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from celery import Celery

from recipes.support import (
    EXAMPLES,
    Program,
    check_stored_once_by_its_process,
    python_module,
    rows_per_process,
)

TASKS = 100


def _celery_config(directory: Path) -> dict[str, object]:
    """A broker and a result store made of folders: no server to run."""
    folders = {name: directory / name for name in ("queue", "control", "processed", "results")}
    for folder in folders.values():
        folder.mkdir()
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
            "store_processed": True,  # else processed messages are moved to /tmp
            "processed_folder": str(folders["processed"]),
            "polling_interval": 0.05,
        },
        "result_backend": f"file://{folders['results']}",
    }


def test_celery_prefork_worker_stores_every_record_once(recipe_dsn: str, tmp_path: Path) -> None:
    """A Celery worker with the recipe's tasks module and two pool processes: each task's
    record is stored once, by the pool process that ran it (which its result names), with
    its task id; Celery's own records of each task too, by the right process, after a warm
    shutdown (SIGTERM)."""
    config = _celery_config(tmp_path)
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "celeryconfig.py").write_text(
        "".join(f"{key} = {value!r}\n" for key, value in config.items())
    )
    command = python_module(
        "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
        "--pool", "prefork", "--concurrency", "2", "--max-tasks-per-child", "10",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    )  # fmt: skip
    env = {"PGLOG_DSN": recipe_dsn, "PYTHONPATH": f"{settings}:{EXAMPLES / 'celery'}"}
    client = Celery("client")
    client.conf.update(config)
    with Program(
        command, cwd=EXAMPLES / "celery", env=env, output=tmp_path / "celery.log"
    ) as worker:
        worker.wait_for_output(" ready.")
        sent = [client.send_task("tasks.charge", args=(n,)) for n in range(TASKS)]
        ran_in = {result.id: int(result.get(timeout=60, interval=0.02)) for result in sent}
        assert worker.stop(signal.SIGTERM) == 0  # warm shutdown
        output = worker.output()

    main = worker.pid
    per_child = Counter(ran_in.values())
    assert main not in per_child

    check_stored_once_by_its_process(
        recipe_dsn,
        "celery (task records)",
        where="logger_name = 'tasks'",
        key="extra_data->>'task_id'",
        done_by=ran_in,
        count=TASKS,
    )
    # Celery's own records: each task received by the main process, run by a pool process.
    received = rows_per_process(recipe_dsn, "message LIKE 'Task tasks.charge[%%] received'")
    succeeded = rows_per_process(recipe_dsn, "message LIKE 'Task tasks.charge[%%] succeeded %%'")
    assert received == {main: TASKS}
    assert succeeded == per_child
    assert " WARNING pglog" not in output
    assert " ERROR pglog" not in output
