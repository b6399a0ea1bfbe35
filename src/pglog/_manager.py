"""Manager: logging set up from the YAML (console, rotating file, database), per-component
levels, and a clean shutdown at exit."""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pglog._config import Config, ConfigError, FileSettings, load_config
from pglog._handler import DatabaseLogHandler
from pglog._writer.fallback import StderrHandler
from pglog._writer.notices import INTERNAL_LOGGER

ConfigSource = Config | Mapping[str, Any] | str | os.PathLike[str] | None


#: Bytes a log file grows to before it is rotated, unless ``max_bytes`` or ``when`` says.
DEFAULT_MAX_BYTES = 10 << 20


class LoggerManager:
    """Installs a console handler, a rotating file handler and a database handler on the
    root logger, as configured.

    The database handler needs a fallback only where nothing else keeps the records: with
    the console or the file on, every record is there already and is not written twice;
    with both off, records the database can't take go to stderr.
    """

    def __init__(self, config: ConfigSource) -> None:
        self.config: Config = config if isinstance(config, Config) else load_config(config)
        self.console_handler: logging.Handler | None = None
        self.file_handler: logging.Handler | None = None
        self.database_handler: DatabaseLogHandler | None = None
        self.database_error: str | None = None
        self._installed: list[logging.Handler] = []

    def install(self, replacing: LoggerManager | None = None) -> bool:
        """Attach the handlers and set the levels; True if records are reaching the database.

        Connects once to find out (and creates the table if asked). An unreachable
        database is reported and tolerated: records wait in memory and are written
        when it returns, and the console keeps working throughout.

        The handlers go on the root logger together, in one step that also takes off
        those of ``replacing`` (left for its ``shutdown()`` to close): a record logged
        meanwhile meets one set or the other, never neither (the old set's close may
        take its close_timeout) and never both (it would be written twice).
        """
        config = self.config
        if config.file.enabled:  # first: a missing directory fails before anything changes
            self.file_handler = _file_handler(config.file, config.source)
        root = logging.getLogger()
        root.setLevel(config.level)
        for name, level in config.components.items():
            logging.getLogger(name).setLevel(level)

        handlers: list[logging.Handler] = []
        if config.console.enabled:
            console = StderrHandler(config.console.level or logging.NOTSET, config.console.format)
            self.console_handler = console
            handlers.append(console)
        if self.file_handler is not None:
            handlers.append(self.file_handler)

        if config.database.enabled:
            self.database_handler = self._database_handler()
            self.database_error = self.database_handler.check_database()
            handlers.append(self.database_handler)
            if config.database.spool_dir is not None:
                self.database_handler.start()  # replay what an earlier run spooled, now
        self._attach(handlers, replacing)
        if self.database_handler is None:
            return False
        if self.database_error is not None:
            INTERNAL_LOGGER.warning(
                "pglog: the database is unreachable (%s); logging to the console, and records"
                " are kept to be written when it returns",
                self.database_error,
            )
            return False
        return True

    def _database_handler(self) -> DatabaseLogHandler:
        config = self.config
        elsewhere = config.console.enabled or config.file.enabled
        options = {**config.database.options, "table": config.table, "schema": config.schema}
        options.setdefault("fallback", None if elsewhere else "console")
        return DatabaseLogHandler(config.destination.dsn, **options)

    def _attach(self, handlers: list[logging.Handler], replacing: LoggerManager | None) -> None:
        """Put ``handlers`` on the root logger in place of ``replacing``'s, in one step.

        A new list, not the old one changed: a thread logging meanwhile goes on through
        the list it began with. Under logging's lock, as ``addHandler`` changes the list.
        """
        root = logging.getLogger()
        old = replacing._installed if replacing is not None else []
        with getattr(logging, "_lock", None) or contextlib.nullcontext():
            root.handlers = [h for h in root.handlers if h not in old] + handlers
        self._installed.extend(handlers)

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
    with _manager_lock:  # one manager is current; the one it replaces is shut down after
        reaching = manager.install(replacing=_manager)  # raises: the previous one stays
        previous, _manager = _manager, manager
        atexit.unregister(shutdown_logging)  # registered once, however often this runs
        atexit.register(shutdown_logging)
    if previous is not None:
        previous.shutdown()  # its handlers are off the root logger already: only closes
    return reaching


def get_logger(component: str) -> logging.Logger:
    """The logger for ``component``. Works before ``initialize_logger`` too: the level
    configured for the component applies from the moment logging is initialised."""
    return logging.getLogger(component)


def shutdown_logging(timeout: float = 5.0) -> None:
    """Flush and close pglog's handlers. Registered at exit; safe to call twice."""
    global _manager
    with _manager_lock:  # whoever takes the manager shuts it down; a second call finds none
        manager, _manager = _manager, None
    if manager is not None:
        manager.shutdown(timeout)


def _file_handler(settings: FileSettings, source: str) -> logging.Handler:
    """The rotating file of ``logging.file``; opened at the first record, not now."""
    directory = Path(settings.path).parent
    if not directory.is_dir():
        raise ConfigError(source, "logging.file.path", f"the directory {directory} does not exist")
    handler: logging.Handler
    if settings.when is not None:
        handler = logging.handlers.TimedRotatingFileHandler(
            settings.path,
            when=settings.when,
            backupCount=settings.backups,
            delay=True,
            encoding="utf-8",
        )
    else:
        handler = logging.handlers.RotatingFileHandler(
            settings.path,
            maxBytes=settings.max_bytes or DEFAULT_MAX_BYTES,
            backupCount=settings.backups,
            delay=True,
            encoding="utf-8",
        )
    handler.setLevel(settings.level or logging.NOTSET)
    handler.setFormatter(logging.Formatter(settings.format))
    return handler
