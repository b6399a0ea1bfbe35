"""Manager: logging set up from the YAML, per-component levels, and a clean shutdown at exit."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from pglog._config import Config, load_config
from pglog._handler import DatabaseLogHandler
from pglog._writer.fallback import INTERNAL_LOGGER, StderrHandler

ConfigSource = Config | Mapping[str, Any] | str | os.PathLike[str] | None


class LoggerManager:
    """Installs a console handler and a database handler on the root logger, as configured.

    The database handler's fallback is the console when the console handler is off;
    when it is on, every record is already on the console and nothing is printed twice.
    """

    def __init__(self, config: ConfigSource) -> None:
        self.config: Config = config if isinstance(config, Config) else load_config(config)
        self.console_handler: logging.Handler | None = None
        self.database_handler: DatabaseLogHandler | None = None
        self.database_error: str | None = None
        self._installed: list[logging.Handler] = []

    def install(self) -> bool:
        """Attach the handlers and set the levels; True if records are reaching the database.

        Connects once to find out (and creates the table if asked). An unreachable
        database is reported and tolerated: records wait in memory and are written
        when it returns, and the console keeps working throughout.
        """
        config = self.config
        root = logging.getLogger()
        root.setLevel(config.level)
        for name, level in config.components.items():
            logging.getLogger(name).setLevel(level)

        if config.console.enabled:
            console = StderrHandler(config.console.level or logging.NOTSET, config.console.format)
            self.console_handler = console
            self._attach(console)

        if not config.database.enabled:
            return False
        self.database_handler = self._database_handler()
        self.database_error = self.database_handler.check_database()
        self._attach(self.database_handler)
        if self.config.database.spool_dir is not None:
            self.database_handler.start()  # replay what an earlier run spooled, now
        if self.database_error is not None:
            INTERNAL_LOGGER.warning(
                "pglog: the database is unreachable (%s); logging to the console, and records"
                " are kept to be written when it returns",
                self.database_error,
            )
            return False
        return True

    def _database_handler(self) -> DatabaseLogHandler:
        settings = self.config.database
        return DatabaseLogHandler(
            self.config.connection.dsn,
            table=self.config.table,
            schema=self.config.schema,
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval,
            queue_size=settings.queue_size,
            overflow=settings.overflow,  # type: ignore[arg-type]
            create_table=settings.create_table,
            fallback=None if self.config.console.enabled else "console",
            level=settings.level if settings.level is not None else logging.NOTSET,
            close_timeout=settings.close_timeout,
            connect_timeout=settings.connect_timeout,
            spool_dir=settings.spool_dir,
            retention_days=settings.retention_days,
            partition=settings.partition,
            spool_max_bytes=settings.spool_max_bytes,
        )

    def _attach(self, handler: logging.Handler) -> None:
        logging.getLogger().addHandler(handler)
        self._installed.append(handler)

    def get_logger(self, component: str) -> logging.Logger:
        """The logger for ``component``; its level comes from ``logging.components``."""
        return logging.getLogger(component)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush and close what ``install()`` attached, within ``timeout`` seconds. Safe twice."""
        root = logging.getLogger()
        installed, self._installed = self._installed, []
        for handler in installed:
            root.removeHandler(handler)
            if isinstance(handler, DatabaseLogHandler):
                handler.close_timeout = timeout
            try:
                if not isinstance(handler, DatabaseLogHandler):
                    handler.flush()  # the database handler's close() flushes, by a deadline
            except Exception as exc:
                INTERNAL_LOGGER.warning("pglog: flushing %r at shutdown failed: %s", handler, exc)
            finally:
                handler.close()


_manager: LoggerManager | None = None
_manager_lock = threading.Lock()


def initialize_logger(config: ConfigSource = None) -> bool:
    """Set up logging from ``config`` (a YAML path or a mapping; None: ``$PGLOG_CONFIG``,
    else the defaults). True if records reach the database, False if only the console.

    Calling it again replaces the previous set-up. Raises ConfigError on a bad config.
    """
    global _manager
    if config is None:
        config = os.environ.get("PGLOG_CONFIG") or None
    manager = LoggerManager(config)
    # Critical section
    with _manager_lock:
        previous, _manager = _manager, manager
        atexit.unregister(shutdown_logging)  # registered once, however often this runs
        atexit.register(shutdown_logging)
    if previous is not None:
        previous.shutdown()
    return manager.install()


def get_logger(component: str) -> logging.Logger:
    """The logger for ``component``. Works before ``initialize_logger`` too: the level
    configured for the component applies from the moment logging is initialised."""
    return logging.getLogger(component)


def shutdown_logging(timeout: float = 5.0) -> None:
    """Flush and close pglog's handlers. Registered at exit; safe to call twice."""
    global _manager
    # Critical section
    with _manager_lock:
        manager, _manager = _manager, None
    if manager is not None:
        manager.shutdown(timeout)
