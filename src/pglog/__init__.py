"""pglog: Python logging into PostgreSQL."""

from pglog._capture.context import bind
from pglog._config import ConfigError
from pglog._handler import DatabaseLogHandler
from pglog._manager import LoggerManager, get_logger, initialize_logger, shutdown_logging
from pglog._timing import timed

__all__ = [
    "ConfigError",
    "DatabaseLogHandler",
    "LoggerManager",
    "bind",
    "get_logger",
    "initialize_logger",
    "shutdown_logging",
    "timed",
]
__version__ = "0.1.0"
