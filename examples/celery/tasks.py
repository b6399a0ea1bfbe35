"""Celery tasks whose records, from the worker and from each pool process, go to PostgreSQL."""

import logging
import logging.config
import os
from typing import Any

from celery import Celery, Task
from celery.signals import setup_logging, worker_process_shutdown
from celery.utils.log import get_task_logger

app = Celery("tasks")
app.config_from_object("celeryconfig")  # broker_url and the rest of your settings

# The database comes from $PGLOG_DSN; the table ("logs") is created on first use.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "db": {"class": "pglog.DatabaseLogHandler"},
    },
    "root": {"level": "INFO", "handlers": ["console", "db"]},
}


@setup_logging.connect
def configure_logging(**kwargs: Any) -> None:
    """Celery sends this instead of taking over the root logger itself. The worker sets
    up logging once, before it forks its pool: each pool process's handler starts clean."""
    logging.config.dictConfig(LOGGING)


@worker_process_shutdown.connect
def flush_logging(**kwargs: Any) -> None:
    """A pool process leaves with os._exit(), which skips Python's exit handling: write
    what it still holds first."""
    logging.shutdown()


log = get_task_logger(__name__)


@app.task(bind=True)
def charge(self: Task, order: int) -> int:
    log.info("charged order %s", order, extra={"order": order, "task_id": self.request.id})
    return os.getpid()
